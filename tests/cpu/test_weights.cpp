// tests/cpu/test_weights.cpp: the weight-name map per family (names and shapes of the published
// models), and load_weights: every slot filled with the right shape, values rounded to the storage
// dtype, missing and mis-shaped tensors refused naming the tensor, and the transformers-5 fused
// expert layout accepted with the same result as per-expert tensors.
#include <algorithm>
#include <map>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/core/presets.h"
#include "engine/core/weights.h"

using namespace minfer;
using Shape = std::vector<int64_t>;

namespace {

// An in-memory TensorSource: name -> (shape, values), editable by the tests.
class MapSource : public TensorSource {
 public:
  std::map<std::string, HostTensor> t;
  std::string describe() const override { return "map"; }
  std::vector<std::string> names() const override {
    std::vector<std::string> out;
    for (const auto& kv : t) out.push_back(kv.first);
    return out;
  }
  std::optional<TensorMeta> meta(const std::string& n) const override {
    auto it = t.find(n);
    if (it == t.end()) return std::nullopt;
    return TensorMeta{it->second.shape, "F32"};
  }
  std::string file_of(const std::string& n) const override { return "file-of-" + n; }
  std::vector<float> read_f32(const std::string& n) const override { return t.at(n).data; }
};

MapSource copy_of(const TensorSource& src) {
  MapSource m;
  for (const auto& n : src.names()) m.t[n] = HostTensor{src.meta(n)->shape, src.read_f32(n)};
  return m;
}

std::map<std::string, Shape> shapes_of(const std::string& preset) {
  std::map<std::string, Shape> out;
  for (const WeightSpec& s : weight_map(preset_config(preset))) {
    EXPECT_TRUE(out.emplace(s.hf_name, s.shape).second) << "duplicate " << s.hf_name;
  }
  return out;
}

void expect_shape(const std::map<std::string, Shape>& m, const std::string& name, const Shape& shape) {
  auto it = m.find(name);
  ASSERT_NE(it, m.end()) << name << " not in the map";
  EXPECT_EQ(it->second, shape) << name;
}

TEST(WeightMap, Llama31_8b) {
  auto m = shapes_of("llama-3.1-8b");
  EXPECT_EQ(m.size(), 2u + 32u * 9u + 1u);  // embed, norm, lm_head + 9 per layer
  expect_shape(m, "model.embed_tokens.weight", {128256, 4096});
  expect_shape(m, "model.layers.0.input_layernorm.weight", {4096});
  expect_shape(m, "model.layers.31.self_attn.q_proj.weight", {4096, 4096});
  expect_shape(m, "model.layers.31.self_attn.k_proj.weight", {1024, 4096});
  expect_shape(m, "model.layers.31.self_attn.v_proj.weight", {1024, 4096});
  expect_shape(m, "model.layers.31.self_attn.o_proj.weight", {4096, 4096});
  expect_shape(m, "model.layers.5.post_attention_layernorm.weight", {4096});
  expect_shape(m, "model.layers.5.mlp.gate_proj.weight", {14336, 4096});
  expect_shape(m, "model.layers.5.mlp.up_proj.weight", {14336, 4096});
  expect_shape(m, "model.layers.5.mlp.down_proj.weight", {4096, 14336});
  expect_shape(m, "model.norm.weight", {4096});
  expect_shape(m, "lm_head.weight", {128256, 4096});
  EXPECT_EQ(m.count("model.layers.0.self_attn.q_proj.bias"), 0u);
}

TEST(WeightMap, Qwen25BiasesAndTiedHead) {
  auto m = shapes_of("qwen2.5-0.5b");
  expect_shape(m, "model.layers.3.self_attn.q_proj.bias", {896});
  expect_shape(m, "model.layers.3.self_attn.k_proj.bias", {128});
  expect_shape(m, "model.layers.3.self_attn.v_proj.bias", {128});
  expect_shape(m, "model.layers.3.self_attn.k_proj.weight", {128, 896});
  EXPECT_EQ(m.count("model.layers.3.self_attn.o_proj.bias"), 0u);
  EXPECT_EQ(m.count("lm_head.weight"), 0u);  // tied
}

TEST(WeightMap, Qwen3PerHeadNorms) {
  auto m = shapes_of("qwen3-0.6b");
  expect_shape(m, "model.layers.27.self_attn.q_norm.weight", {128});
  expect_shape(m, "model.layers.27.self_attn.k_norm.weight", {128});
  expect_shape(m, "model.layers.27.self_attn.q_proj.weight", {2048, 1024});
  expect_shape(m, "model.layers.27.self_attn.o_proj.weight", {1024, 2048});
  EXPECT_EQ(m.count("lm_head.weight"), 0u);
}

TEST(WeightMap, Qwen3MoeExperts) {
  auto m = shapes_of("qwen3-30b-a3b");
  expect_shape(m, "model.layers.47.mlp.gate.weight", {128, 2048});
  expect_shape(m, "model.layers.47.mlp.experts.127.gate_proj.weight", {768, 2048});
  expect_shape(m, "model.layers.47.mlp.experts.127.up_proj.weight", {768, 2048});
  expect_shape(m, "model.layers.47.mlp.experts.127.down_proj.weight", {2048, 768});
  EXPECT_EQ(m.count("model.layers.0.mlp.gate_proj.weight"), 0u);
  EXPECT_EQ(m.size(), 3u + 48u * (8u + 1u + 128u * 3u));  // 8 attention+norm tensors, router, experts
}

TEST(WeightMap, MixtralNaming) {
  auto m = shapes_of("mixtral-8x7b");
  expect_shape(m, "model.layers.0.block_sparse_moe.gate.weight", {8, 4096});
  expect_shape(m, "model.layers.0.block_sparse_moe.experts.7.w1.weight", {14336, 4096});
  expect_shape(m, "model.layers.0.block_sparse_moe.experts.7.w3.weight", {14336, 4096});
  expect_shape(m, "model.layers.0.block_sparse_moe.experts.7.w2.weight", {4096, 14336});
  for (const WeightSpec& s : weight_map(preset_config("mixtral-8x7b"))) {
    const std::string e7 = "model.layers.0.block_sparse_moe.experts.7.";
    if (s.hf_name == e7 + "w1.weight") {
      EXPECT_EQ(s.slot, "layers.0.expert_gate[7]");
    }
    if (s.hf_name == e7 + "w3.weight") {
      EXPECT_EQ(s.slot, "layers.0.expert_up[7]");
    }
    if (s.hf_name == e7 + "w2.weight") {
      EXPECT_EQ(s.slot, "layers.0.expert_down[7]");
      EXPECT_EQ(s.expert, 7);
    }
  }
}

TEST(WeightMap, OlmoeFullWidthQkNorm) {
  auto m = shapes_of("olmoe-1b-7b");
  expect_shape(m, "model.layers.15.self_attn.q_norm.weight", {2048});
  expect_shape(m, "model.layers.15.self_attn.k_norm.weight", {2048});
  expect_shape(m, "model.layers.15.mlp.gate.weight", {64, 2048});
  expect_shape(m, "model.layers.15.mlp.experts.63.down_proj.weight", {2048, 1024});
}

TEST(WeightMap, Qwen3MoeDenseLayerUsesDenseNames) {
  auto m = shapes_of("tiny-qwen3-moe");  // mlp_only_layers = {0}
  expect_shape(m, "model.layers.0.mlp.gate_proj.weight", {128, 64});
  EXPECT_EQ(m.count("model.layers.0.mlp.gate.weight"), 0u);
  expect_shape(m, "model.layers.1.mlp.gate.weight", {4, 64});
  expect_shape(m, "model.layers.1.mlp.experts.3.up_proj.weight", {32, 64});
}

// Total parameters per preset as transformers 5.17 counts them for the same config.json (the model
// built on the meta device from config_to_hf_json's output; measured once on the GPU machine).
TEST(WeightMap, ParameterCountsMatchTransformers) {
  const std::vector<std::pair<std::string, int64_t>> hf = {
      {"llama-3.1-8b", 8030261248},  {"mixtral-8x7b", 46702792704}, {"olmoe-1b-7b", 6919161856},
      {"qwen2.5-0.5b", 494032768},   {"qwen3-0.6b", 596049920},     {"qwen3-30b-a3b", 30532122624},
      {"seed-large", 19322376192},   {"seed-medium", 1789641728},   {"seed-small", 521104128},
      {"tiny", 106816},              {"tiny-mixtral", 107328},      {"tiny-olmoe", 107520},
      {"tiny-qwen2", 90688},         {"tiny-qwen3", 106880},        {"tiny-qwen3-moe", 107136}};
  for (const auto& [name, want] : hf) {
    int64_t total = 0;
    for (const WeightSpec& s : weight_map(preset_config(name))) {
      int64_t n = 1;
      for (int64_t d : s.shape) n *= d;
      total += n;
    }
    EXPECT_EQ(total, want) << name;
  }
}

TEST(TensorMeta, NumelAndShapeStr) {
  EXPECT_EQ((TensorMeta{{3, 4, 5}, "F32"}.numel()), 60);
  EXPECT_EQ((TensorMeta{{}, "F32"}.numel()), 1);
  EXPECT_EQ(shape_str({4, 8}), "[4, 8]");
  EXPECT_EQ(shape_str({}), "[]");
}

// Every slot of every tiny family is filled with its documented shape and the source's values.
TEST(LoadWeights, FillsEverySlot) {
  for (const std::string preset : {"tiny", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe", "tiny-mixtral", "tiny-olmoe"}) {
    SCOPED_TRACE(preset);
    ModelConfig c = preset_config(preset);
    auto src = preset_source(preset, DType::F32);
    ModelWeights w = load_weights(c, *src, DType::F32);
    const int64_t H = c.hidden, V = c.vocab, E = c.num_experts, Im = c.moe_intermediate;
    EXPECT_EQ(w.embed.shape, (Shape{V, H}));
    EXPECT_EQ(w.embed.data, src->read_f32("model.embed_tokens.weight"));
    EXPECT_EQ(w.final_norm.shape, (Shape{H}));
    EXPECT_EQ(w.lm_head.empty(), c.tie_embeddings);
    EXPECT_EQ(w.head().shape, (Shape{V, H}));
    ASSERT_EQ(w.layers.size(), static_cast<size_t>(c.layers));
    for (int l = 0; l < c.layers; ++l) {
      const LayerWeights& lw = w.layers[static_cast<size_t>(l)];
      EXPECT_EQ(lw.wq.shape, (Shape{c.q_dim(), H}));
      EXPECT_EQ(lw.wo.shape, (Shape{H, c.q_dim()}));
      EXPECT_EQ(lw.bq.empty(), !c.attention_bias);
      EXPECT_EQ(lw.q_norm.empty(), c.qk_norm == QkNorm::None);
      if (c.qk_norm == QkNorm::Full) {
        EXPECT_EQ(lw.k_norm.shape, (Shape{c.kv_dim()}));
      }
      if (c.qk_norm == QkNorm::PerHead) {
        EXPECT_EQ(lw.k_norm.shape, (Shape{c.head_dim}));
      }
      if (c.layer_is_moe(l)) {
        EXPECT_TRUE(lw.w_gate.empty());
        EXPECT_EQ(lw.router.shape, (Shape{E, H}));
        EXPECT_EQ(lw.expert_gate.shape, (Shape{E, Im, H}));
        EXPECT_EQ(lw.expert_up.shape, (Shape{E, Im, H}));
        EXPECT_EQ(lw.expert_down.shape, (Shape{E, H, Im}));
      } else {
        EXPECT_TRUE(lw.expert_gate.empty());
        EXPECT_EQ(lw.w_down.shape, (Shape{H, c.intermediate}));
      }
    }
  }
}

TEST(LoadWeights, ExpertRowsLandInTheirSlot) {
  ModelConfig c = preset_config("tiny-mixtral");
  auto src = preset_source("tiny-mixtral", DType::F32);
  ModelWeights w = load_weights(c, *src, DType::F32);
  auto w2 = src->read_f32("model.layers.1.block_sparse_moe.experts.2.w2.weight");  // (H, Im)
  const auto& down = w.layers[1].expert_down.data;
  const size_t per = w2.size();
  EXPECT_TRUE(std::equal(w2.begin(), w2.end(), down.begin() + static_cast<std::ptrdiff_t>(2 * per)));
  EXPECT_FALSE(std::equal(w2.begin(), w2.end(), down.begin() + static_cast<std::ptrdiff_t>(1 * per)));
}

TEST(LoadWeights, RoundsToStorage) {
  ModelConfig c = preset_config("tiny");
  auto src = preset_source("tiny", DType::F32);
  ModelWeights w = load_weights(c, *src, DType::BF16);
  EXPECT_EQ(w.storage, DType::BF16);
  auto raw = src->read_f32("model.layers.0.self_attn.q_proj.weight");
  size_t changed = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    EXPECT_EQ(w.layers[0].wq.data[i], round_to(DType::BF16, raw[i]));
    changed += w.layers[0].wq.data[i] != raw[i];
  }
  EXPECT_GT(changed, raw.size() / 2);  // fp32 random values really were rounded
}

TEST(LoadWeights, MissingTensorNamed) {
  ModelConfig c = preset_config("tiny-qwen2");
  MapSource m = copy_of(*preset_source("tiny-qwen2", DType::F32));
  const std::string victim = "model.layers.1.self_attn.k_proj.bias";
  m.t.erase(victim);
  try {
    load_weights(c, m, DType::F32);
    FAIL() << "no error";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.field(), victim);
    EXPECT_EQ(e.file(), "file-of-" + victim);
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos);
    EXPECT_EQ(e.exit_code(), 2);
  }
}

TEST(LoadWeights, WrongShapeNamed) {
  ModelConfig c = preset_config("tiny");
  MapSource m = copy_of(*preset_source("tiny", DType::F32));
  const std::string victim = "model.layers.0.mlp.down_proj.weight";  // (64, 128)
  m.t[victim].shape = {128, 64};
  try {
    load_weights(c, m, DType::F32);
    FAIL() << "no error";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.field(), victim);
    EXPECT_EQ(e.file(), "file-of-" + victim);
    EXPECT_NE(std::string(e.what()).find("shape [128, 64] expected [64, 128]"), std::string::npos) << e.what();
  }
}

TEST(LoadWeights, ValueCountMismatchNamed) {
  ModelConfig c = preset_config("tiny");
  MapSource m = copy_of(*preset_source("tiny", DType::F32));
  const std::string victim = "model.norm.weight";
  m.t[victim].data.pop_back();  // meta says 64, data holds 63
  try {
    load_weights(c, m, DType::F32);
    FAIL() << "no error";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.field(), victim);
  }
}

// Per-expert tensors -> transformers-5 fused (E, 2*Im, H) gate_up_proj and (E, H, Im) down_proj.
void fuse_experts(MapSource& m, const ModelConfig& c, int layer, const std::string& prefix, const char* g,
                  const char* u, const char* d) {
  const int64_t E = c.num_experts, Im = c.moe_intermediate, H = c.hidden;
  HostTensor gu{{E, 2 * Im, H}, {}}, dn{{E, H, Im}, {}};
  for (int e = 0; e < E; ++e) {
    const std::string base = prefix + "experts." + std::to_string(e) + ".";
    for (const char* part : {g, u}) {
      auto& v = m.t.at(base + part + ".weight").data;
      gu.data.insert(gu.data.end(), v.begin(), v.end());
    }
    auto& v = m.t.at(base + d + ".weight").data;
    dn.data.insert(dn.data.end(), v.begin(), v.end());
    for (const char* part : {g, u, d}) m.t.erase(base + part + ".weight");
  }
  const std::string fused = "model.layers." + std::to_string(layer) + ".mlp.experts.";
  m.t[fused + "gate_up_proj"] = gu;
  m.t[fused + "down_proj"] = dn;
}

void expect_same_weights(const ModelWeights& a, const ModelWeights& b) {
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    EXPECT_EQ(a.layers[l].expert_gate.data, b.layers[l].expert_gate.data) << l;
    EXPECT_EQ(a.layers[l].expert_up.data, b.layers[l].expert_up.data) << l;
    EXPECT_EQ(a.layers[l].expert_down.data, b.layers[l].expert_down.data) << l;
    EXPECT_EQ(a.layers[l].expert_gate.shape, b.layers[l].expert_gate.shape) << l;
    EXPECT_EQ(a.layers[l].router.data, b.layers[l].router.data) << l;
    EXPECT_EQ(a.layers[l].wq.data, b.layers[l].wq.data) << l;
  }
}

TEST(LoadWeights, FusedExpertLayoutAccepted) {
  for (const std::string preset : {"tiny-qwen3-moe", "tiny-olmoe"}) {
    SCOPED_TRACE(preset);
    ModelConfig c = preset_config(preset);
    auto src = preset_source(preset, DType::F32);
    ModelWeights want = load_weights(c, *src, DType::F32);
    MapSource m = copy_of(*src);
    for (int l = 0; l < c.layers; ++l) {
      if (c.layer_is_moe(l)) fuse_experts(m, c, l, "model.layers." + std::to_string(l) + ".mlp.", "gate_proj", "up_proj", "down_proj");
    }
    EXPECT_EQ(m.t.count("model.layers.1.mlp.experts.0.gate_proj.weight"), 0u);
    expect_same_weights(load_weights(c, m, DType::F32), want);
  }
}

TEST(LoadWeights, MixtralFusedAndV5RouterName) {
  ModelConfig c = preset_config("tiny-mixtral");
  auto src = preset_source("tiny-mixtral", DType::F32);
  ModelWeights want = load_weights(c, *src, DType::F32);
  MapSource m = copy_of(*src);
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "model.layers." + std::to_string(l) + ".";
    fuse_experts(m, c, l, p + "block_sparse_moe.", "w1", "w3", "w2");
    m.t[p + "mlp.gate.weight"] = m.t.at(p + "block_sparse_moe.gate.weight");  // v5 spelling
    m.t.erase(p + "block_sparse_moe.gate.weight");
  }
  expect_same_weights(load_weights(c, m, DType::F32), want);
}

TEST(LoadWeights, FusedWrongShapeNamed) {
  ModelConfig c = preset_config("tiny-olmoe");
  MapSource m = copy_of(*preset_source("tiny-olmoe", DType::F32));
  fuse_experts(m, c, 0, "model.layers.0.mlp.", "gate_proj", "up_proj", "down_proj");
  const std::string victim = "model.layers.0.mlp.experts.gate_up_proj";
  m.t[victim].shape = {4, 32, 128};  // gate and up side by side in columns: not the fused layout
  try {
    load_weights(c, m, DType::F32);
    FAIL() << "no error";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.field(), victim);
    EXPECT_NE(std::string(e.what()).find("shape [4, 32, 128] expected [4, 64, 64]"), std::string::npos) << e.what();
  }
}

}  // namespace
