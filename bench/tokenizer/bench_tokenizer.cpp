// bench/tokenizer/bench_tokenizer.cpp: encoding speed of minfer's tokenizer (engine/core/tokenizer.h), one
// thread, in bytes/s (Google Benchmark's bytes_per_second) and tokens/s, for tokenizer x text:
//   tokenizers: smollm2 (the real model's, from its GGUF in the model cache; the case is skipped, saying how
//               to fetch it, when absent), llama3 and qwen2 (the fixture tokenizer.json files: small
//               vocabularies, the real pre-tokenizer regexes; qwen2 with NFC)
//   texts:      english (tests/fixtures/text/ruth_kjv.txt), multilingual (every text of
//               tests/fixtures/tokenizer/cases.json, joined), code (the code cases, repeated to ~20 KB)
// Each iteration encodes the whole text once. The tokenizer caches the BPE of pieces it has seen, so after
// the first iteration the cache is warm; HF tokenizers caches words the same way, and
// tools/bench_hf_tokenizer.py times it warm too (scripts/bench_tokenizer.sh runs both, one CSV).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/core/tokenizer.h"

namespace {

namespace fs = std::filesystem;
const fs::path kRoot = MINFER_SOURCE_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string text_of(const std::string& name) {
  if (name == "english") return slurp(kRoot / "tests" / "fixtures" / "text" / "ruth_kjv.txt");
  const auto cases = nlohmann::json::parse(slurp(kRoot / "tests" / "fixtures" / "tokenizer" / "cases.json"));
  std::string all, code;
  for (const auto& c : cases["cases"]) {
    const std::string n = c["name"].get<std::string>();
    all += c["text"].get<std::string>() + "\n";
    if (n == "python" || n == "cpp" || n == "tabs_code" || n == "json") code += c["text"].get<std::string>() + "\n";
  }
  if (name == "multilingual") return all;
  std::string rep;
  while (rep.size() < 20000) rep += code;
  return rep;
}

fs::path smollm2_path() {
  const char* cache = std::getenv("MINFER_MODEL_CACHE");
  const fs::path base = cache && *cache ? fs::path(cache) : kRoot / "models";
  return base / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

// One tokenizer per name, loaded on first use; nullptr (with why) when its file is absent.
const minfer::Tokenizer* tokenizer(const std::string& name, std::string* why) {
  static std::map<std::string, std::unique_ptr<minfer::Tokenizer>> cache;
  auto it = cache.find(name);
  if (it != cache.end()) return it->second.get();
  const fs::path p = name == "smollm2" ? smollm2_path() : kRoot / "tests" / "fixtures" / "tokenizer" / name;
  if (!fs::exists(p)) {
    *why = p.string() + " is missing (run scripts/fetch_smollm2.sh)";
    return nullptr;
  }
  auto t = std::make_unique<minfer::Tokenizer>(minfer::Tokenizer::load(p.string()));
  return (cache[name] = std::move(t)).get();
}

void BM_Encode(benchmark::State& state, const std::string& tok_name, const std::string& text_name) {
  std::string why;
  const minfer::Tokenizer* tok = tokenizer(tok_name, &why);
  if (!tok) {
    state.SkipWithError(why.c_str());
    return;
  }
  const std::string text = text_of(text_name);
  size_t tokens = 0;
  for (auto _ : state) {
    const auto ids = tok->encode(text, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
  state.counters["text_bytes"] = static_cast<double>(text.size());
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(tokens), benchmark::Counter::kIsIterationInvariantRate);
}

const int kRegistered = [] {
  for (const char* t : {"smollm2", "llama3", "qwen2"}) {
    for (const char* x : {"english", "multilingual", "code"}) {
      benchmark::RegisterBenchmark((std::string("encode/") + t + "/" + x + "/warm_cache").c_str(),
                                   [t, x](benchmark::State& s) { BM_Encode(s, t, x); })
          ->Unit(benchmark::kMicrosecond);
    }
  }
  return 0;
}();

}  // namespace

BENCHMARK_MAIN();
