// tests/cpu/test_hf_fixtures.cpp: minfer's reference forward against HF transformers' own logits.
// Fixtures (tests/fixtures/<family>/: config.json, model.safetensors, expected.json) are tiny random
// models written by tools/make_hf_fixtures.py. For each sequence the reference runs (a) one prefill over
// the whole sequence and (b) token by token through its KV cache; both must match HF's fp32 logits at
// every position within 1e-3 normwise (DESIGN.md section 4). A missing fixture fails the test unless
// MINFER_ALLOW_MISSING_FIXTURES=1.
// Legend: T = tokens of a sequence, V = vocab.
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/config.h"
#include "engine/core/safetensors.h"
#include "engine/core/weights.h"
#include "reference/model.h"

namespace fs = std::filesystem;

namespace {

constexpr double kTol = 1e-3;

struct Sequence {
  std::vector<int32_t> tokens;  // (T)
  std::vector<float> logits;    // (T, V) row-major
};

std::vector<Sequence> load_expected(const std::string& path, int vocab) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  const nlohmann::json j = nlohmann::json::parse(in);
  std::vector<Sequence> out;
  for (const auto& s : j.at("sequences")) {
    Sequence seq;
    for (const auto& t : s.at("tokens")) seq.tokens.push_back(t.get<int32_t>());
    const auto& rows = s.at("logits");
    EXPECT_EQ(rows.size(), seq.tokens.size()) << path;
    for (const auto& row : rows) {
      EXPECT_EQ(static_cast<int>(row.size()), vocab) << path;
      for (const auto& v : row) seq.logits.push_back(v.get<float>());
    }
    out.push_back(std::move(seq));
  }
  return out;
}

// ||got - want|| / ||want||, and whether every value is finite.
double normwise_error(const std::vector<float>& got, const std::vector<float>& want, bool* finite) {
  double num = 0, den = 0;
  *finite = got.size() == want.size();
  for (size_t i = 0; i < got.size() && i < want.size(); ++i) {
    *finite = *finite && std::isfinite(got[i]);
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  bool finite = false;
  const double err = normwise_error(got, want, &finite);
  EXPECT_TRUE(finite) << what << ": NaN or Inf in the reference logits";
  EXPECT_LE(err, kTol) << what << ": normwise relative error " << err;
}

// Token by token through the KV cache: logits of each step appended, (T, V).
std::vector<float> decode_stepwise(minfer::ref::Model& m, const std::vector<int32_t>& tokens) {
  m.reset(1);
  std::vector<float> all;
  for (int32_t t : tokens) {
    const std::vector<float> step = m.forward({{t}});
    all.insert(all.end(), step.begin(), step.end());
  }
  return all;
}

class HfFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(HfFixture, ReferenceMatchesTransformers) {
  const std::string family = GetParam();
  const fs::path dir = fs::path(MINFER_SOURCE_DIR) / "tests" / "fixtures" / family;
  if (!fs::exists(dir / "expected.json")) {
    const char* allow = std::getenv("MINFER_ALLOW_MISSING_FIXTURES");
    const std::string msg = "fixture " + dir.string() +
                            " is missing: run `python3 tools/make_hf_fixtures.py --out tests/fixtures` "
                            "(needs torch + transformers), or set MINFER_ALLOW_MISSING_FIXTURES=1";
    if (allow != nullptr && std::string(allow) == "1") GTEST_SKIP() << msg;
    FAIL() << msg;
  }
  const minfer::ModelConfig cfg = minfer::load_config_json((dir / "config.json").string());
  const auto src = minfer::open_checkpoint(dir.string());
  const minfer::ModelWeights w = minfer::load_weights(cfg, *src, minfer::DType::F32);
  const std::vector<Sequence> seqs = load_expected((dir / "expected.json").string(), cfg.vocab);
  ASSERT_FALSE(seqs.empty());

  minfer::ref::Model model(cfg, w, minfer::DType::F32);
  for (const Sequence& s : seqs) {
    const std::string what = family + " T=" + std::to_string(s.tokens.size());
    model.reset(1);
    const std::vector<float> prefill = model.forward({s.tokens});  // (T, V)
    EXPECT_EQ(model.cached(0), static_cast<int64_t>(s.tokens.size())) << what;
    expect_close(prefill, s.logits, what + " prefill");
    expect_close(decode_stepwise(model, s.tokens), s.logits, what + " token by token");
  }
}

INSTANTIATE_TEST_SUITE_P(Families, HfFixture,
                         ::testing::Values("llama", "qwen2", "qwen3", "qwen3_moe", "mixtral", "olmoe"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

}  // namespace
