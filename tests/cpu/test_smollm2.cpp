// tests/cpu/test_smollm2.cpp: the real trained model, SmolLM2-135M-Instruct (Q4_1 GGUF), through
// minfer's GGUF reader, dequantizers and scalar reference forward in fp32, against HF transformers
// loading the same file (tests/fixtures/smollm2/expected.json, tools/make_smollm2_fixtures.py):
// for each prompt, the logits at the last positions over the fixture's index set within 1e-3
// normwise, the same argmax there, and the same greedy continuation token for token (HF's, up to and
// including its end-of-turn token). The model comes from scripts/fetch_smollm2.sh (the model cache:
// $MINFER_MODEL_CACHE or <repo>/models); without it the test fails saying how to fetch it, or skips
// when MINFER_ALLOW_MISSING_MODEL=1.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/presets.h"
#include "engine/core/weights.h"
#include "engine/core/gguf.h"
#include "engine/core/perplexity.h"
#include "engine/core/tokenizer.h"
#include "reference/model.h"
#include "tests/cpu/model_cache.h"

namespace minfer {
namespace {

namespace fs = std::filesystem;
constexpr double kTol = 1e-3;

TEST(SmolLM2, ReferenceMatchesTransformersOnTheSameGguf) {
  MINFER_REQUIRE_SMOLLM2(model);
  const fs::path fixture = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "smollm2" / "expected.json";
  std::ifstream in(fixture);
  ASSERT_TRUE(in) << fixture;
  const nlohmann::json want = nlohmann::json::parse(in);

  const LoadedModel m = open_model(model.string(), DType::F32);
  const ModelWeights w = load_weights(m.config, *m.source, DType::F32);
  ref::Model ref(m.config, w, DType::F32);
  const int64_t V = m.config.vocab;
  ASSERT_EQ(V, 49152);
  ASSERT_FALSE(want["cases"].empty());
  for (const auto& c : want["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    SCOPED_TRACE(c["text"].get<std::string>());
    ref.reset(1);
    const std::vector<float> logits = ref.forward({ids});  // (T, V)
    ASSERT_EQ(logits.size(), ids.size() * static_cast<size_t>(V));
    for (const auto& p : c["positions"]) {
      const int64_t pos = p["position"].get<int64_t>();
      const std::vector<int64_t> idx = p["index"].get<std::vector<int64_t>>();
      const std::vector<double> hf = p["logits"].get<std::vector<double>>();
      const float* row = logits.data() + pos * V;
      double num = 0, den = 0;
      for (size_t i = 0; i < idx.size(); ++i) {
        ASSERT_TRUE(std::isfinite(row[idx[i]])) << "position " << pos << " id " << idx[i];
        num += (row[idx[i]] - hf[i]) * (row[idx[i]] - hf[i]);
        den += hf[i] * hf[i];
      }
      const double err = std::sqrt(num / den);
      std::printf("ids %zu position %lld: normwise relative error %.3g\n", ids.size(), static_cast<long long>(pos), err);
      EXPECT_LE(err, kTol) << "position " << pos << ": normwise relative error";
      int64_t best = 0;
      for (int64_t v = 1; v < V; ++v)
        if (row[v] > row[best]) best = v;
      EXPECT_EQ(best, p["top"][0].get<int64_t>()) << "position " << pos << ": argmax";
    }
    // Greedy continuation, token by token through the KV cache, as long as HF's.
    const std::vector<int32_t> hf_greedy = c["greedy"].get<std::vector<int32_t>>();
    std::vector<int32_t> got;
    const float* last = logits.data() + (ids.size() - 1) * static_cast<size_t>(V);
    std::vector<float> step(last, last + V);
    for (size_t t = 0; t < hf_greedy.size(); ++t) {
      int32_t best = 0;
      for (int32_t v = 1; v < static_cast<int32_t>(V); ++v)
        if (step[static_cast<size_t>(v)] > step[static_cast<size_t>(best)]) best = v;
      got.push_back(best);
      if (t + 1 < hf_greedy.size()) step = ref.forward({{best}});
    }
    EXPECT_EQ(got, hf_greedy) << "greedy continuation";
  }
}

// Perplexity over a real text (tests/fixtures/text/ruth_kjv.txt, the Book of Ruth from Debian's
// bible-kjv-text): our tokenizer gives the ids HF's tokenizers give for SmolLM2's pipeline, and the
// reference's perplexity over the first 256 of them (windows of 128) is HF transformers' within 1e-3
// relative (tests/fixtures/smollm2/perplexity.json, tools/hf_perplexity.py).
TEST(SmolLM2, PerplexityMatchesTransformers) {
  MINFER_REQUIRE_SMOLLM2(model);
  const fs::path dir = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures";
  std::ifstream in(dir / "smollm2" / "perplexity.json");
  ASSERT_TRUE(in);
  const nlohmann::json all = nlohmann::json::parse(in);
  const nlohmann::json* want = nullptr;
  for (const auto& r : all) {
    if (r.contains("ids") && r.value("tokenization", "") == "model") want = &r;
  }
  ASSERT_NE(want, nullptr) << "no entry with ids";
  std::ifstream tin(dir / "text" / "ruth_kjv.txt", std::ios::binary);
  const std::string text((std::istreambuf_iterator<char>(tin)), std::istreambuf_iterator<char>());
  GgufFile f(model.string());
  const Tokenizer tok = Tokenizer::from_gguf(f);
  std::vector<int32_t> ids = tok.encode(text, false);
  for (const auto& r : all) {  // the whole-text entries count every token
    if (!r.contains("ids") && r.value("tokenization", "") == "model") {
      EXPECT_EQ(static_cast<int64_t>(ids.size()), r["n_tokens"].get<int64_t>()) << "tokens of the whole text";
    }
  }
  const auto want_ids = (*want)["ids"].get<std::vector<int32_t>>();
  ASSERT_GE(ids.size(), want_ids.size());
  ids.resize(want_ids.size());
  ASSERT_EQ(ids, want_ids);

  const LoadedModel m = open_model(model.string(), DType::F32);
  const ModelWeights w = load_weights(m.config, *m.source, DType::F32);
  ref::Model ref(m.config, w, DType::F32);
  PerplexityResult r;
  for (const auto& [b, e] : perplexity_windows(static_cast<int64_t>(ids.size()), (*want)["ctx"].get<int64_t>())) {
    const std::vector<int32_t> win(ids.begin() + b, ids.begin() + e);
    ref.reset(1);
    const std::vector<float> logits = ref.forward({win});
    const auto [nll, n] = window_nll(logits.data(), e - b, m.config.vocab, win.data());
    r.nll_sum += nll;
    r.n_predicted += n;
  }
  EXPECT_EQ(r.n_predicted, (*want)["n_predicted"].get<int64_t>());
  const double hf = (*want)["ppl"].get<double>();
  std::printf("perplexity: reference %.6f, HF transformers %.6f (relative difference %.2e)\n", r.ppl(), hf,
              std::abs(r.ppl() - hf) / hf);
  EXPECT_LE(std::abs(r.ppl() - hf) / hf, kTol);
}

}  // namespace
}  // namespace minfer
