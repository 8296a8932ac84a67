// tests/gpu/test_smollm2_gpu.cpp: the real trained model, SmolLM2-135M-Instruct (Q4_1 GGUF: 30 layers,
// hidden 576, 9 heads of 64, 3 KV heads), on the GPU engine in fp32 against HF transformers loading the
// same file (the fixtures tests/cpu/test_smollm2 checks the reference against): logits at the last
// positions of each prompt within 1e-3 normwise, the same argmax, and the same 32-token greedy
// continuation through the engine's own decode loop (Generator: CUDA graphs, GPU sampling); then the
// engine's perplexity over the first 256 tokens of the Book of Ruth within 1e-3 of HF's. Both attention
// backends. Skips without a device; without the model it fails or skips as test_smollm2 does.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/gguf.h"
#include "engine/core/perplexity.h"
#include "engine/core/presets.h"
#include "engine/core/tokenizer.h"
#include "engine/model/model.h"
#include "engine/runtime/generator.h"
#include "tests/cpu/model_cache.h"
#include "validate/op_runner.h"

namespace minfer {
namespace {

namespace fs = std::filesystem;
constexpr double kTol = 1e-3;
const fs::path kFixtures = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures";

nlohmann::json read_json(const fs::path& p) {
  std::ifstream in(p);
  EXPECT_TRUE(in) << p;
  return nlohmann::json::parse(in);
}

class SmolLM2Gpu : public ::testing::TestWithParam<AttentionBackend> {
 protected:
  void SetUp() override {
    if (!val::cuda_device_available()) GTEST_SKIP() << "no CUDA device";
  }
};

TEST_P(SmolLM2Gpu, Fp32LogitsAndGreedyMatchTransformers) {
  MINFER_REQUIRE_SMOLLM2(model);
  const nlohmann::json want = read_json(kFixtures / "smollm2" / "expected.json");
  const LoadedModel m = open_model(model.string(), DType::F32);
  const int64_t V = m.config.vocab;
  int longest = 0;
  for (const auto& c : want["cases"]) {
    longest = std::max(longest, static_cast<int>(c["ids"].size() + c["greedy"].size()));
  }
  RunShape shape;
  shape.batch = 1;
  shape.context = longest + 1;
  shape.max_prefill_tokens = longest;
  shape.all_logits = true;
  shape.attention = GetParam();
  Model eng(m.config, *m.source, DType::F32, shape);
  for (const auto& c : want["cases"]) {
    const std::vector<int32_t> ids = c["ids"].get<std::vector<int32_t>>();
    SCOPED_TRACE(c["text"].get<std::string>());
    eng.reset();
    const std::vector<float> logits = eng.forward({ids});
    ASSERT_EQ(logits.size(), ids.size() * static_cast<size_t>(V));
    for (const auto& p : c["positions"]) {
      const int64_t pos = p["position"].get<int64_t>();
      const auto idx = p["index"].get<std::vector<int64_t>>();
      const auto hf = p["logits"].get<std::vector<double>>();
      const float* row = logits.data() + pos * V;
      double num = 0, den = 0;
      for (size_t i = 0; i < idx.size(); ++i) {
        ASSERT_TRUE(std::isfinite(row[idx[i]]));
        num += (row[idx[i]] - hf[i]) * (row[idx[i]] - hf[i]);
        den += hf[i] * hf[i];
      }
      const double err = std::sqrt(num / den);
      std::printf("%s: ids %zu position %lld: normwise relative error %.3g\n",
                  attention_backend_name(GetParam()), ids.size(), static_cast<long long>(pos), err);
      EXPECT_LE(err, kTol) << "position " << pos;
      int64_t best = 0;
      for (int64_t v = 1; v < V; ++v) best = row[v] > row[best] ? v : best;
      EXPECT_EQ(best, p["top"][0].get<int64_t>()) << "position " << pos << ": argmax";
    }
    // Greedy continuation through the engine's decode loop (graphs, GPU argmax), as long as HF's.
    const auto hf_greedy = c["greedy"].get<std::vector<int32_t>>();
    Generator gen(eng);
    GenerateRequest req;
    req.prompts = {ids};
    req.max_new_tokens = static_cast<int>(hf_greedy.size());
    req.eos_token_id = -1;  // HF's list runs to its length; compare all of it
    const GenerateResult r = gen.generate(req);
    EXPECT_EQ(r.tokens[0], hf_greedy) << "greedy continuation";
  }
}

TEST_P(SmolLM2Gpu, PerplexityMatchesTransformers) {
  MINFER_REQUIRE_SMOLLM2(model);
  const nlohmann::json all = read_json(kFixtures / "smollm2" / "perplexity.json");
  const nlohmann::json* want = nullptr;
  for (const auto& r : all) {
    if (r.contains("ids") && r.value("tokenization", "") == "model") want = &r;
  }
  ASSERT_NE(want, nullptr);
  const auto ids = (*want)["ids"].get<std::vector<int32_t>>();
  const int64_t ctx = (*want)["ctx"].get<int64_t>();
  const LoadedModel m = open_model(model.string(), DType::F32);
  RunShape shape;
  shape.batch = 1;
  shape.context = static_cast<int>(ctx);
  shape.max_prefill_tokens = static_cast<int>(ctx);
  shape.all_logits = true;
  shape.attention = GetParam();
  Model eng(m.config, *m.source, DType::F32, shape);
  PerplexityResult r;
  for (const auto& [b, e] : perplexity_windows(static_cast<int64_t>(ids.size()), ctx)) {
    const std::vector<int32_t> win(ids.begin() + b, ids.begin() + e);
    eng.reset();
    const std::vector<float> logits = eng.forward({win});
    const auto [nll, n] = window_nll(logits.data(), e - b, m.config.vocab, win.data());
    r.nll_sum += nll;
    r.n_predicted += n;
  }
  const double hf = (*want)["ppl"].get<double>();
  std::printf("%s: perplexity engine %.6f, HF transformers %.6f (relative difference %.2e)\n",
              attention_backend_name(GetParam()), r.ppl(), hf, std::abs(r.ppl() - hf) / hf);
  EXPECT_EQ(r.n_predicted, (*want)["n_predicted"].get<int64_t>());
  EXPECT_LE(std::abs(r.ppl() - hf) / hf, kTol);
}

INSTANTIATE_TEST_SUITE_P(Attention, SmolLM2Gpu, ::testing::Values(AttentionBackend::Flash, AttentionBackend::Simple),
                         [](const auto& p) { return std::string(attention_backend_name(p.param)); });

}  // namespace
}  // namespace minfer
