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
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/presets.h"
#include "engine/core/weights.h"
#include "reference/model.h"

namespace minfer {
namespace {

namespace fs = std::filesystem;
constexpr double kTol = 1e-3;

fs::path model_path() {
  const char* cache = std::getenv("MINFER_MODEL_CACHE");
  const fs::path base = cache && *cache ? fs::path(cache) : fs::path(MINFER_SOURCE_DIR) / "models";
  return base / "smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

TEST(SmolLM2, ReferenceMatchesTransformersOnTheSameGguf) {
  const fs::path model = model_path();
  if (!fs::exists(model)) {
    const std::string msg = model.string() + " is missing: run scripts/fetch_smollm2.sh, or set "
                                             "MINFER_ALLOW_MISSING_MODEL=1 to skip";
    const char* allow = std::getenv("MINFER_ALLOW_MISSING_MODEL");
    if (allow != nullptr && std::string(allow) == "1") GTEST_SKIP() << msg;
    FAIL() << msg;
  }
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

}  // namespace
}  // namespace minfer
