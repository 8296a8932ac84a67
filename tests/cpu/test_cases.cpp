// tests/cpu/test_cases.cpp: the shared case lists (validate/case.h): every sweep's cases carry its
// axes in order, come in all three dtypes, hold the odd sizes and the labelled real model shapes,
// include launches big enough to measure bandwidth, and quick is a proper subset.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>

#include "engine/core/error.h"
#include "validate/case.h"

namespace {

using minfer::DType;
using minfer::val::Case;
using minfer::val::sweep_axes;
using minfer::val::sweep_cases;
using minfer::val::sweep_names;

bool any_case(const std::vector<Case>& cs, const std::function<bool(const Case&)>& f) {
  return std::any_of(cs.begin(), cs.end(), f);
}

// Bytes one launch must move in bf16 (inputs once, outputs once), by the ops' definitions.
double bf16_bytes(const Case& c) {
  if (c.sweep == "norm") return 2.0 * c.axis("rows") * c.axis("hidden") * (c.axis("residual") ? 4 : 2);
  if (c.sweep == "rope")
    return 2.0 * 2 * c.axis("tokens") * (c.axis("heads") + c.axis("kv_heads")) * c.axis("head_dim");
  if (c.sweep == "swiglu") return 2.0 * 3 * c.axis("rows") * c.axis("inter");
  return 2.0 * 2 * c.axis("tokens") * c.axis("hidden");
}

}  // namespace

TEST(Cases, KnownSweepsAndAxes) {
  EXPECT_EQ(sweep_names(), (std::vector<std::string>{"embedding", "norm", "rope", "swiglu"}));
  EXPECT_EQ(sweep_axes("norm"), (std::vector<std::string>{"rows", "hidden", "residual"}));
  EXPECT_EQ(sweep_axes("rope"),
            (std::vector<std::string>{"tokens", "heads", "kv_heads", "head_dim", "qk_norm", "llama3"}));
  EXPECT_EQ(sweep_axes("swiglu"), (std::vector<std::string>{"rows", "inter"}));
  EXPECT_EQ(sweep_axes("embedding"), (std::vector<std::string>{"tokens", "vocab", "hidden"}));
  EXPECT_THROW(sweep_cases("nope", false), minfer::UsageError);
  EXPECT_THROW(sweep_axes("nope"), minfer::UsageError);
}

TEST(Cases, EveryCaseHasItsSweepsAxesInOrder) {
  for (const auto& sw : sweep_names()) {
    const auto names = sweep_axes(sw);
    for (bool quick : {false, true}) {
      const auto cs = sweep_cases(sw, quick);
      ASSERT_FALSE(cs.empty()) << sw;
      for (const auto& c : cs) {
        EXPECT_EQ(c.sweep, sw);
        ASSERT_EQ(c.axes.size(), names.size()) << c.id();
        for (size_t i = 0; i < names.size(); ++i) {
          EXPECT_EQ(c.axes[i].first, names[i]) << c.id();
          EXPECT_GE(c.axes[i].second, 0) << c.id();
        }
      }
    }
  }
}

TEST(Cases, AllThreeDtypesWithTheSameShapes) {
  for (const auto& sw : sweep_names()) {
    for (bool quick : {false, true}) {
      std::map<DType, std::multiset<std::string>> shapes;
      for (const auto& c : sweep_cases(sw, quick)) {
        std::string key = c.label;
        for (const auto& [k, v] : c.axes) key += "/" + k + "=" + std::to_string(v);
        shapes[c.dtype].insert(key);
      }
      ASSERT_EQ(shapes.size(), 3u) << sw;
      EXPECT_EQ(shapes[DType::F32], shapes[DType::F16]) << sw;
      EXPECT_EQ(shapes[DType::F32], shapes[DType::BF16]) << sw;
    }
  }
}

TEST(Cases, IdsAreUniqueAndReadable) {
  std::set<std::string> ids;
  for (const auto& sw : sweep_names())
    for (const auto& c : sweep_cases(sw, false)) EXPECT_TRUE(ids.insert(c.id()).second) << "duplicate " << c.id();
  Case c{"norm", DType::BF16, {{"rows", 4096}, {"hidden", 4096}, {"residual", 1}}, ""};
  EXPECT_EQ(c.id(), "norm/bf16/rows=4096/hidden=4096/residual=1");
  EXPECT_EQ(c.axis("hidden"), 4096);
  EXPECT_THROW(c.axis("heads"), std::out_of_range);
}

TEST(Cases, OddSizesPresent) {
  const auto norm = sweep_cases("norm", false);
  for (int64_t r : {1, 3, 17, 1023})
    EXPECT_TRUE(any_case(norm, [r](const Case& c) { return c.axis("rows") == r; })) << r;
  for (int64_t h : {896, 1000})
    EXPECT_TRUE(any_case(norm, [h](const Case& c) { return c.axis("hidden") == h && c.label.empty(); })) << h;
  EXPECT_TRUE(any_case(norm, [](const Case& c) { return c.axis("residual") == 0; }));
  EXPECT_TRUE(any_case(norm, [](const Case& c) { return c.axis("residual") == 1; }));

  const auto rope = sweep_cases("rope", false);
  for (int64_t t : {1, 3, 17, 1023})
    EXPECT_TRUE(any_case(rope, [t](const Case& c) { return c.axis("tokens") == t && c.axis("heads") == 14; })) << t;
  EXPECT_TRUE(any_case(rope, [](const Case& c) { return c.axis("kv_heads") == 2 && c.axis("qk_norm") == 1; }));
  EXPECT_TRUE(any_case(rope, [](const Case& c) { return c.axis("llama3") == 1 && c.label.empty(); }));

  const auto swiglu = sweep_cases("swiglu", false);
  for (int64_t r : {1, 3, 17, 1023})
    EXPECT_TRUE(any_case(swiglu, [r](const Case& c) { return c.axis("rows") == r; })) << r;
  EXPECT_TRUE(any_case(swiglu, [](const Case& c) { return c.axis("inter") == 1000; }));

  const auto emb = sweep_cases("embedding", false);
  for (int64_t t : {1, 3, 17, 1023})
    EXPECT_TRUE(any_case(emb, [t](const Case& c) { return c.axis("tokens") == t; })) << t;
  EXPECT_TRUE(any_case(emb, [](const Case& c) { return c.axis("hidden") == 1000; }));
}

TEST(Cases, RealModelShapesAreLabelled) {
  const auto rope = sweep_cases("rope", false);
  auto has_rope = [&](const char* label, int64_t h, int64_t kv, int64_t hd, int64_t qk, int64_t l3) {
    return any_case(rope, [&](const Case& c) {
      return c.label == label && c.axis("heads") == h && c.axis("kv_heads") == kv && c.axis("head_dim") == hd &&
             c.axis("qk_norm") == qk && c.axis("llama3") == l3;
    });
  };
  EXPECT_TRUE(has_rope("qwen3-0.6b", 16, 8, 128, 1, 0));
  EXPECT_TRUE(has_rope("qwen2.5-0.5b", 14, 2, 64, 0, 0));
  EXPECT_TRUE(has_rope("llama-3.1-8b", 32, 8, 128, 0, 1));
  EXPECT_TRUE(has_rope("qwen3-30b-a3b", 32, 4, 128, 1, 0));

  const auto norm = sweep_cases("norm", false);
  for (auto [label, h] : {std::pair{"qwen3-0.6b", 1024}, {"qwen2.5-0.5b", 896}, {"llama-3.1-8b", 4096},
                          {"qwen3-30b-a3b", 2048}})
    EXPECT_TRUE(any_case(norm, [&](const Case& c) { return c.label == label && c.axis("hidden") == h; })) << label;

  const auto swiglu = sweep_cases("swiglu", false);
  for (auto [label, i] : {std::pair{"qwen3-0.6b", 3072}, {"qwen2.5-0.5b", 4864}, {"llama-3.1-8b", 14336}})
    EXPECT_TRUE(any_case(swiglu, [&](const Case& c) { return c.label == label && c.axis("inter") == i; })) << label;

  const auto emb = sweep_cases("embedding", false);
  EXPECT_TRUE(any_case(emb, [](const Case& c) { return c.label == "llama-3.1-8b" && c.axis("vocab") == 128256; }));
  EXPECT_TRUE(any_case(emb, [](const Case& c) { return c.label == "qwen3-0.6b" && c.axis("vocab") == 151936; }));

  // Every labelled shape appears at 1 and 16384 tokens; every unlabelled one is an odd size.
  for (const auto& sw : sweep_names()) {
    const auto cs = sweep_cases(sw, false);
    const std::string tok = sweep_axes(sw)[0];
    EXPECT_TRUE(any_case(cs, [&](const Case& c) { return !c.label.empty() && c.axis(tok) == 1; })) << sw;
    EXPECT_TRUE(any_case(cs, [&](const Case& c) { return !c.label.empty() && c.axis(tok) == 16384; })) << sw;
  }
}

TEST(Cases, LargestLaunchesMoveTensOfMegabytes) {
  for (const auto& sw : sweep_names()) {
    double most = 0;
    for (const auto& c : sweep_cases(sw, false)) most = std::max(most, bf16_bytes(c));
    EXPECT_GE(most, 100e6) << sw << ": the biggest bf16 case moves only " << most << " bytes";
  }
}

TEST(Cases, QuickIsAShortProperSubset) {
  for (const auto& sw : sweep_names()) {
    const auto full = sweep_cases(sw, false), quick = sweep_cases(sw, true);
    std::set<std::string> ids;
    for (const auto& c : full) ids.insert(c.id());
    EXPECT_LT(quick.size(), full.size() / 3) << sw;
    EXPECT_GE(quick.size(), 3u) << sw;
    for (const auto& c : quick) EXPECT_TRUE(ids.count(c.id())) << c.id();
    EXPECT_TRUE(any_case(quick, [](const Case& c) { return !c.label.empty(); })) << sw;
  }
}

// ---- whole-model sweeps (validate_all --sweep model, bench_all --sweep e2e) ----------------------

TEST(ModelCases, AxesAndNotAmongTheOpSweeps) {
  using minfer::val::is_model_sweep;
  using minfer::val::model_sweep_names;
  EXPECT_EQ(model_sweep_names(), (std::vector<std::string>{"model", "e2e"}));
  EXPECT_EQ(sweep_axes("model"), (std::vector<std::string>{"batch", "prompt_len", "ragged", "steps", "flash"}));
  EXPECT_EQ(sweep_axes("e2e"), (std::vector<std::string>{"batch", "prompt_len", "new_tokens"}));
  for (const auto& sw : sweep_names()) EXPECT_FALSE(is_model_sweep(sw)) << sw;
  EXPECT_TRUE(is_model_sweep("model"));
  EXPECT_TRUE(is_model_sweep("e2e"));
}

TEST(ModelCases, ModelSweepCoversFamiliesOddSizesAndDtypes) {
  for (bool quick : {false, true}) {
    const auto cs = sweep_cases("model", quick);
    ASSERT_FALSE(cs.empty());
    std::set<std::string> presets;
    for (const auto& c : cs) {
      EXPECT_EQ(c.sweep, "model");
      EXPECT_EQ(c.axis("steps"), c.dtype != DType::F32 ? 64 : (c.label == "qwen2.5-0.5b" ? 2 : 4)) << c.id();
      presets.insert(c.label);
    }
    for (const char* p : {"tiny", "tiny-qwen2", "tiny-qwen3"}) EXPECT_TRUE(presets.count(p)) << p << " quick=" << quick;
    // Every preset has a ragged batch of 3 in each dtype.
    for (const char* p : {"tiny", "tiny-qwen2", "tiny-qwen3"})
      for (DType t : {DType::F32, DType::F16, DType::BF16})
        EXPECT_TRUE(any_case(cs, [&](const Case& c) {
          return c.label == p && c.dtype == t && c.axis("batch") == 3 && c.axis("ragged") == 1;
        })) << p;
  }
  const auto full = sweep_cases("model", false);
  for (int64_t len : {1, 7, 33})
    EXPECT_TRUE(any_case(full, [&](const Case& c) { return c.dtype == DType::F32 && c.axis("batch") == 1 && c.axis("prompt_len") == len; }))
        << len;
  EXPECT_TRUE(any_case(full, [](const Case& c) { return c.label == "qwen2.5-0.5b"; }));
  EXPECT_FALSE(any_case(sweep_cases("model", true), [](const Case& c) { return c.label == "qwen2.5-0.5b"; }));
}

TEST(ModelCases, RaggedPromptLengthsDiffer) {
  using minfer::val::case_prompt_lens;
  for (const auto& c : sweep_cases("model", false)) {
    const auto lens = case_prompt_lens(c);
    ASSERT_EQ(static_cast<int64_t>(lens.size()), c.axis("batch")) << c.id();
    EXPECT_EQ(lens[0], c.axis("prompt_len")) << c.id();
    if (c.axis("ragged")) EXPECT_EQ(lens, (std::vector<int>{33, 1, 7})) << c.id();
    else for (int n : lens) EXPECT_EQ(n, c.axis("prompt_len")) << c.id();
  }
}

TEST(ModelCases, E2eGridAndQuickSubset) {
  const auto full = sweep_cases("e2e", false), quick = sweep_cases("e2e", true);
  EXPECT_EQ(full.size(), 4u * 4u * 4u);  // 4 models x 4 batches x 4 prompt lengths, bf16 only
  for (const char* m : {"qwen3-0.6b", "qwen2.5-0.5b", "llama-3.1-8b", "seed-medium"})
    for (int64_t b : {1, 4, 16, 32})
      for (int64_t p : {128, 512, 2048, 8192})
        EXPECT_TRUE(any_case(full, [&](const Case& c) {
          return c.label == m && c.axis("batch") == b && c.axis("prompt_len") == p && c.dtype == DType::BF16 &&
                 c.axis("new_tokens") == 64;
        })) << m << " " << b << " " << p;
  EXPECT_FALSE(quick.empty());
  EXPECT_LT(quick.size(), full.size());
  std::set<std::string> ids;
  for (const auto& c : full) ids.insert(c.id());
  EXPECT_EQ(ids.size(), full.size());  // ids are unique
  for (const auto& c : quick) EXPECT_TRUE(ids.count(c.id())) << c.id();
}

TEST(ModelCases, IdsNameTheModel) {
  for (const auto& c : sweep_cases("e2e", true)) EXPECT_NE(c.id().find("/" + c.label + "/"), std::string::npos) << c.id();
  for (const auto& c : sweep_cases("norm", true)) EXPECT_EQ(c.id().find("//"), std::string::npos) << c.id();
}

// attention and decode: the validate grid and the bench grid are separate lists (quick cases in both);
// the op sweeps give both drivers the same list.
TEST(Cases, ValidateAndBenchGridsSplitWhereTheyDiffer) {
  using minfer::val::CaseUse;
  auto ids = [](const std::vector<Case>& cs) {
    std::set<std::string> s;
    for (const auto& c : cs) s.insert(c.id());
    return s;
  };
  for (const std::string sw : {"attention", "decode"}) {
    const auto val = ids(sweep_cases(sw, false, CaseUse::Validate)), bench = ids(sweep_cases(sw, false, CaseUse::Bench));
    const auto any = ids(sweep_cases(sw, false)), quick = ids(sweep_cases(sw, true));
    ASSERT_FALSE(quick.empty()) << sw;
    std::set<std::string> all = val;
    size_t bench_only = 0, val_only = 0;
    for (const auto& id : bench) {
      bench_only += val.count(id) ? 0 : 1;
      all.insert(id);
    }
    for (const auto& id : val) val_only += bench.count(id) ? 0 : 1;
    for (const auto& id : quick) EXPECT_TRUE(val.count(id) && bench.count(id)) << id;  // quick: in both
    EXPECT_EQ(all, any) << sw;
    EXPECT_GT(bench_only, 0u) << sw;
    EXPECT_GT(val_only, 0u) << sw;
  }
  // The bench grid of issue 4: uniform batches only; attention up to 16384 tokens, decode up to 32768.
  int64_t longest = 0;
  for (const auto& c : sweep_cases("attention", false, CaseUse::Bench)) {
    if (c.axis("ragged") == 0 && c.axis("prefix") == 0) longest = std::max(longest, c.axis("seqlen"));
  }
  EXPECT_EQ(longest, 16384);
  for (const auto& c : sweep_cases("attention", false, CaseUse::Validate)) EXPECT_LE(c.axis("seqlen"), 8192) << c.id();
  for (const auto& sw : sweep_names())
    EXPECT_EQ(ids(sweep_cases(sw, false, CaseUse::Validate)), ids(sweep_cases(sw, false, CaseUse::Bench))) << sw;
}

// The drivers' selection: dtype filter, quick subset, and --case ids looked up in every grid.
TEST(Cases, SelectCasesFiltersAndFindsRepros) {
  using minfer::val::CaseUse;
  using minfer::val::select_cases;
  const auto bf16 = select_cases({"decode"}, "decode", "bf16", false, {}, CaseUse::Bench);
  ASSERT_FALSE(bf16.empty());
  for (const auto& c : bf16) EXPECT_EQ(c.dtype, DType::BF16) << c.id();
  EXPECT_EQ(bf16.size(), sweep_cases("decode", false, CaseUse::Bench).size() / 3);
  // A bench-grid id is found by the validate driver too, even with quick set.
  const std::string id = bf16.back().id();
  const auto one = select_cases({"decode"}, "decode", "all", true, {id}, CaseUse::Validate);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].id(), id);
  try {
    select_cases({"decode"}, "decode", "all", false, {"decode/bf16/batch=0"}, CaseUse::Validate);
    FAIL() << "an unknown id must throw";
  } catch (const minfer::UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("decode/bf16/batch=0"), std::string::npos) << e.what();
  }
}
