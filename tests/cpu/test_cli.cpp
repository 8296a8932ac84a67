// tests/cpu/test_cli.cpp: the `minfer` program run as a process (MINFER_CLI_PATH): help and usage
// errors, exit codes (0 ok, 2 bad usage / bad input, never a crash), one-line stderr messages that
// name file and field, presets listing, export then info, and greedy generation on preset:tiny with
// the reference backend (token count, determinism, batches).
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "engine/core/presets.h"
#include "tests/cpu/model_cache.h"

namespace fs = std::filesystem;

namespace {

struct Result {
  int rc = -1;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "minfer_cli_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  // Runs `minfer ARGS` (ARGS as a shell fragment), capturing stdout, stderr and the exit code.
  Result run(const std::string& args) {
    const fs::path out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    std::string cmd = std::string("'") + MINFER_CLI_PATH + "' " + args + " >'" + out.string() + "' 2>'" + err.string() + "'";
    int status = std::system(cmd.c_str());
    Result r;
    r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    r.out = slurp(out);
    r.err = slurp(err);
    return r;
  }
  // A failed run: the expected code and exactly one line on stderr, holding every `needle`.
  void expect_error(const Result& r, int rc, const std::vector<std::string>& needles) {
    EXPECT_EQ(r.rc, rc) << r.err;
    EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
    for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "'" << n << "' not in: " << r.err;
  }
  std::string exported(const std::string& preset, const std::string& extra = "") {
    std::string out = (dir_ / preset).string();
    Result r = run("export --preset " + preset + " --out '" + out + "' " + extra);
    EXPECT_EQ(r.rc, 0) << r.err;
    return out;
  }
  fs::path dir_;
};

TEST_F(CliTest, HelpExitsZeroAndIsComplete) {
  Result r = run("--help");
  EXPECT_EQ(r.rc, 0);
  for (const char* sub : {"presets", "info", "export", "generate", "tokenize", "chat", "perplexity"}) {
    EXPECT_NE(r.out.find(sub), std::string::npos) << sub;
  }
  Result g = run("generate --help");
  EXPECT_EQ(g.rc, 0);
  for (const char* flag : {"--model", "--prompt-tokens", "--batch", "--max-new-tokens", "--backend", "--dtype", "--seed",
                           "--weight-seed", "--temperature", "--top-k", "--top-p", "--attention", "--prompt", "--chat",
                           "--system", "--no-think", "--profile", "--profile-csv", "--timeline", "--timeline-csv"}) {
    EXPECT_NE(g.out.find(flag), std::string::npos) << flag;
  }
  const std::vector<std::pair<std::string, std::vector<std::string>>> text_cmds = {
      {"tokenize", {"--model", "--text", "--file", "--decode", "--add-special", "--no-parse-special", "--pieces"}},
      {"chat", {"--model", "--backend", "--dtype", "--system", "--max-new-tokens", "--ctx", "--temperature", "--top-k",
                "--top-p", "--seed", "--no-think", "/reset", "/exit"}},
      {"perplexity", {"--model", "--text", "--ctx", "--max-tokens", "--backend", "--dtype", "--json"}}};
  for (const auto& [cmd, flags] : text_cmds) {
    Result h = run(cmd + " --help");
    EXPECT_EQ(h.rc, 0) << cmd;
    for (const auto& f : flags) EXPECT_NE(h.out.find(f), std::string::npos) << cmd << " " << f;
  }
  Result e = run("export --help");
  EXPECT_EQ(e.rc, 0);
  for (const char* flag : {"--preset", "--out", "--dtype", "--max-shard-size"}) EXPECT_NE(e.out.find(flag), std::string::npos) << flag;
  Result i = run("info --help");
  EXPECT_EQ(i.rc, 0);
  EXPECT_NE(i.out.find("--model"), std::string::npos);
}

TEST_F(CliTest, BadUsageExitsTwo) {
  expect_error(run("info --model preset:tiny --bogus"), 2, {"--bogus"});
  expect_error(run("frobnicate"), 2, {"unknown subcommand", "frobnicate"});
  expect_error(run(""), 2, {"subcommand"});
  expect_error(run("generate --model preset:tiny"), 2, {"--prompt-tokens"});
  expect_error(run("generate --model preset:tiny --prompt-tokens 1,x"), 2, {"--prompt-tokens", "x"});
  expect_error(run("generate --model preset:tiny --prompt-tokens 1,999"), 2, {"999", "vocab"});
  expect_error(run("generate --model preset:tiny --prompt-tokens 1 --max-new-tokens 2000"), 2,
               {"max_position_embeddings", "1024"});
  expect_error(run("generate --model preset:tiny --prompt-tokens 1 --dtype int4"), 2, {"--dtype", "int4"});
  expect_error(run("generate --model preset:nope --prompt-tokens 1"), 2, {"nope"});
  expect_error(run("export --preset tiny --out '" + (dir_ / "x").string() + "' --max-shard-size 2XB"), 2,
               {"--max-shard-size", "2XB"});
  expect_error(run("info --model '" + (dir_ / "absent").string() + "'"), 2, {"absent"});
}

TEST_F(CliTest, CudaBackendNeedsADeviceAndUnknownBackendsAreRefused) {
  // With a GPU the cuda backend runs (tests/gpu covers it); without one it is refused plainly.
  Result r = run("generate --model preset:tiny --prompt-tokens 1,2 --max-new-tokens 2 --backend cuda");
  if (r.rc == 0) {
    EXPECT_NE(r.out.find("seq 0:"), std::string::npos) << r.out;
  } else {
    expect_error(r, 2, {"no CUDA device"});
  }
  expect_error(run("generate --model preset:tiny --prompt-tokens 1,2 --backend tpu"), 2, {"tpu"});
  // The kernel timeline traces GPU graph steps: refused on the reference backend and with too few steps
  // (before any model is loaded or device is looked for).
  expect_error(run("generate --model preset:tiny --prompt-tokens 1,2 --timeline"), 2, {"--timeline", "--backend cuda"});
  expect_error(run("generate --model preset:tiny --prompt-tokens 1,2 --backend cuda --max-new-tokens 2 --timeline-csv x.csv"),
               2, {"--timeline", "--max-new-tokens 3"});
}

TEST_F(CliTest, PresetsListsEveryPreset) {
  Result r = run("presets");
  EXPECT_EQ(r.rc, 0) << r.err;
  for (const auto& n : minfer::preset_names()) EXPECT_NE(r.out.find(n + " "), std::string::npos) << n;
  EXPECT_NE(r.out.find("8.03B"), std::string::npos);  // llama-3.1-8b parameter count
  EXPECT_NE(r.out.find("46.70B"), std::string::npos);  // mixtral-8x7b
}

TEST_F(CliTest, CorruptConfigNamesFileAndField) {
  std::string dir = exported("tiny");
  const std::string cfg = (fs::path(dir) / "config.json").string();
  std::ofstream(cfg) << R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 2, "num_attention_heads": "four", "vocab_size": 256})";
  expect_error(run("info --model '" + dir + "'"), 2, {cfg, "num_attention_heads"});
  std::ofstream(cfg) << R"({"model_type": "llama", "hidden_size": 64,,})";
  expect_error(run("info --model '" + dir + "'"), 2, {cfg, "byte"});
  std::ofstream(cfg) << R"({"model_type": "llama", "hidden_size": 64, "intermediate_size": 128,
      "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 256})";
  expect_error(run("generate --model '" + dir + "' --prompt-tokens 1"), 2, {cfg, "num_key_value_heads"});
}

TEST_F(CliTest, TruncatedWeightsNameTheFile) {
  std::string dir = exported("tiny");
  const fs::path st = fs::path(dir) / "model.safetensors";
  fs::resize_file(st, fs::file_size(st) / 2);
  Result r = run("info --model '" + dir + "'");
  EXPECT_EQ(r.rc, 2) << r.err;
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u) << r.err;
}

TEST_F(CliTest, ExportThenInfo) {
  std::string dir = exported("tiny-qwen3-moe", "--dtype bf16 --max-shard-size 100KB");
  EXPECT_TRUE(fs::exists(fs::path(dir) / "model.safetensors.index.json"));
  Result r = run("info --model '" + dir + "'");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("qwen3_moe"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("complete"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("bf16"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("107136"), std::string::npos) << r.out;  // exact parameter count
  // A missing shard is bad input naming the shard.
  fs::remove(fs::path(dir) / "model-00002-of-00003.safetensors");
  Result bad = run("info --model '" + dir + "'");
  EXPECT_EQ(bad.rc, 2) << bad.err;
  EXPECT_NE(bad.err.find("model-00002-of-00003.safetensors"), std::string::npos) << bad.err;
}

TEST_F(CliTest, InfoOnPreset) {
  Result r = run("info --model preset:tiny-olmoe --dtype fp16");
  EXPECT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("olmoe"), std::string::npos);
  EXPECT_NE(r.out.find("qk_norm full"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("as fp16"), std::string::npos) << r.out;
}

// "seq I: t1 t2 ..." lines -> token lists.
std::vector<std::vector<int>> parse_seqs(const std::string& out) {
  std::vector<std::vector<int>> seqs;
  for (const auto& line : lines(out)) {
    if (line.rfind("seq ", 0) != 0) continue;
    std::stringstream ss(line.substr(line.find(':') + 1));
    seqs.emplace_back();
    int t;
    while (ss >> t) seqs.back().push_back(t);
  }
  return seqs;
}

TEST_F(CliTest, GenerateReferenceDeterministic) {
  const std::string cmd = "generate --model preset:tiny --prompt-tokens 1,2,3 --max-new-tokens 7 --backend reference";
  Result a = run(cmd), b = run(cmd);
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  auto sa = parse_seqs(a.out), sb = parse_seqs(b.out);
  ASSERT_EQ(sa.size(), 1u) << a.out;
  EXPECT_EQ(sa[0].size(), 7u);
  EXPECT_EQ(sa, sb);
  for (int t : sa[0]) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, 256);
  }
  EXPECT_NE(a.out.find("prefill"), std::string::npos);
  EXPECT_NE(a.out.find("tokens/s"), std::string::npos);
  // Another weight seed gives another model, hence (almost surely) other tokens.
  Result c = run(cmd + " --weight-seed 12345");
  ASSERT_EQ(c.rc, 0) << c.err;
  EXPECT_NE(parse_seqs(c.out), sa);
}

TEST_F(CliTest, GenerateBatchMatchesSingle) {
  Result one = run("generate --model preset:tiny --prompt-tokens 5,6,7,8 --max-new-tokens 5");
  Result other = run("generate --model preset:tiny --prompt-tokens 9 --max-new-tokens 5");
  Result batch = run("generate --model preset:tiny --prompt-tokens '5,6,7,8;9' --batch 3 --max-new-tokens 5");
  ASSERT_EQ(batch.rc, 0) << batch.err;
  auto s = parse_seqs(batch.out);
  ASSERT_EQ(s.size(), 3u) << batch.out;
  EXPECT_EQ(s[0], parse_seqs(one.out).at(0));  // ragged batch == each prompt alone
  EXPECT_EQ(s[1], parse_seqs(other.out).at(0));
  EXPECT_EQ(s[2], s[0]);  // prompts reused in turn
  for (const auto& q : s) EXPECT_EQ(q.size(), 5u);
}

TEST_F(CliTest, GenerateFromExportedCheckpointMatchesPreset) {
  std::string dir = exported("tiny-qwen2", "--dtype fp32");
  Result a = run("generate --model preset:tiny-qwen2 --prompt-tokens 3,1,4,1,5 --max-new-tokens 6");
  Result b = run("generate --model '" + dir + "' --prompt-tokens 3,1,4,1,5 --max-new-tokens 6");
  ASSERT_EQ(a.rc, 0) << a.err;
  ASSERT_EQ(b.rc, 0) << b.err;
  EXPECT_EQ(parse_seqs(a.out), parse_seqs(b.out));
  EXPECT_EQ(parse_seqs(a.out).at(0).size(), 6u);
}

TEST_F(CliTest, GenerateEveryTinyFamily) {
  for (const char* p : {"tiny-qwen3", "tiny-qwen3-moe", "tiny-mixtral", "tiny-olmoe"}) {
    Result r = run(std::string("generate --model preset:") + p + " --prompt-tokens 1,2 --max-new-tokens 3 --dtype bf16");
    EXPECT_EQ(r.rc, 0) << p << ": " << r.err;
    auto s = parse_seqs(r.out);
    ASSERT_EQ(s.size(), 1u) << p;
    EXPECT_EQ(s[0].size(), 3u) << p;
  }
}

// Greedy tokens for prompt 1,2,3,4,5 measured with transformers 5.17.0 (torch 2.11, fp32, H200) on
// the checkpoints `minfer export --dtype fp32` writes for each tiny preset; transformers loaded them
// with no missing, unexpected or mismatched keys. minfer's reference must produce the same tokens.
TEST_F(CliTest, GenerateMatchesTransformersOnExports) {
  const std::vector<std::pair<std::string, std::vector<int>>> hf = {
      {"tiny", {223, 255, 82, 255, 82, 255, 82, 255}},
      {"tiny-qwen2", {131, 131, 131, 131, 131, 68, 68, 68}},
      {"tiny-qwen3", {76, 165, 228, 35, 22, 114, 203, 155}},
      {"tiny-qwen3-moe", {112, 175, 38, 118, 214, 58, 245, 11}},
      {"tiny-mixtral", {57, 57, 57, 57, 57, 57, 57, 57}},
      {"tiny-olmoe", {137, 226, 137, 249, 112, 136, 136, 136}},
  };
  for (const auto& [preset, want] : hf) {
    std::string dir = exported(preset, "--dtype fp32");
    Result r = run("generate --model '" + dir + "' --prompt-tokens 1,2,3,4,5 --max-new-tokens 8");
    ASSERT_EQ(r.rc, 0) << preset << ": " << r.err;
    auto s = parse_seqs(r.out);
    ASSERT_EQ(s.size(), 1u) << preset;
    EXPECT_EQ(s[0], want) << preset;
  }
}

// The text commands on a tokenizer without a model: tests/fixtures/tokenizer/llama3 (tokenizer.json trained
// with HF tokenizers; its expected ids come from `tokenizers` itself).
TEST_F(CliTest, TokenizeMatchesTheFixtureAndDecodesBack) {
  const fs::path fx = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "tokenizer";
  const std::string text = "Hello world! The quick brown fox jumps over the lazy dog.";
  {
    std::ofstream f(dir_ / "in.txt", std::ios::binary);
    f << text;
  }
  Result r = run("tokenize --model '" + (fx / "llama3").string() + "' --file '" + (dir_ / "in.txt").string() + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  // The fixture's ids for this text ("ascii"), from HF tokenizers.
  std::ifstream in(fx / "llama3" / "expected.json");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string exp = ss.str();
  const size_t at = exp.find("\"name\": \"ascii\"");
  ASSERT_NE(at, std::string::npos);
  const size_t b = exp.find("\"ids_no_special\": [", at);
  const size_t e = exp.find(']', b);
  std::string want = exp.substr(b + 19, e - b - 19);
  want.erase(std::remove(want.begin(), want.end(), ' '), want.end());
  EXPECT_EQ(r.out, want + "\n");
  Result d = run("tokenize --model '" + (fx / "llama3").string() + "' --decode " + want);
  ASSERT_EQ(d.rc, 0) << d.err;
  EXPECT_EQ(d.out, text + "\n");
  Result p = run("tokenize --model '" + (fx / "llama3").string() + "' --text 'a<|eot_id|>' --pieces --add-special");
  ASSERT_EQ(p.rc, 0) << p.err;
  EXPECT_NE(p.out.find("<|begin_of_text|>"), std::string::npos) << p.out;
  EXPECT_NE(p.out.find("<|eot_id|>"), std::string::npos) << p.out;
}

TEST_F(CliTest, TextCommandsRefuseClearly) {
  const fs::path fx = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / "tokenizer";
  expect_error(run("generate --model preset:tiny --prompt hi"), 2, {"preset:tiny", "no tokenizer"});
  expect_error(run("generate --model preset:tiny"), 2, {"--prompt"});
  expect_error(run("generate --model preset:tiny --prompt hi --prompt-tokens 1,2"), 2, {"--prompt"});
  expect_error(run("generate --model preset:tiny --prompt-tokens 1,2 --chat"), 2, {"--chat"});
  expect_error(run("tokenize --model '" + dir_.string() + "' --text hi"), 2, {"tokenizer.json", "absent"});
  {
    std::ofstream f(dir_ / "bad.txt", std::ios::binary);
    f << "ok\xC3(";
  }
  expect_error(run("tokenize --model '" + (fx / "qwen2").string() + "' --file '" + (dir_ / "bad.txt").string() + "'"),
               2, {"bad.txt", "UTF-8", "byte 2"});
  // A tokenizer without a chat template cannot chat.
  expect_error(run("chat --model '" + (fx / "qwen2").string() + "' </dev/null"), 2, {"tokenizer.json", "chat_template"});
  expect_error(run("perplexity --model '" + (fx / "qwen2").string() + "' --text '" + (dir_ / "none.txt").string() +
                   "'"),
               2, {"none.txt", "no such file"});
}

// The real model through the CLI on the reference backend (slow: about 15 s).
TEST_F(CliTest, ChatWithSmolLM2OnTheReference) {
  MINFER_REQUIRE_SMOLLM2(model);
  {
    std::ofstream f(dir_ / "turns.txt");
    f << "What is the capital of France?\n/exit\n";
  }
  Result r = run("chat --model '" + model.string() + "' --max-new-tokens 24 <'" + (dir_ / "turns.txt").string() + "'");
  ASSERT_EQ(r.rc, 0) << r.err;
  EXPECT_NE(r.out.find("Paris"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("SmolLM2 ChatML"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("[turn 1: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("tokens/s"), std::string::npos) << r.err;
}

}  // namespace

