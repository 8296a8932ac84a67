// tests/cpu/test_presets.cpp: presets: every config validates and survives config.json; weights are
// deterministic per (seed, tensor, index), differ across seeds and tensors, are rounded to the
// storage dtype and scaled per tensor kind; open_model; export_checkpoint of the tiny presets (single
// file and forced sharding, fp32 and bf16) reloads through open_checkpoint + load_weights to
// identical values.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <tuple>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/core/presets.h"
#include "engine/core/safetensors.h"

namespace fs = std::filesystem;
using namespace minfer;

namespace {

const std::vector<std::string> kTiny = {"tiny", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe", "tiny-mixtral",
                                        "tiny-olmoe"};

class PresetExport : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "minfer_presets_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  fs::path dir_;
};

TEST(Presets, NamesCoverEveryFamilyAndRealShapes) {
  auto names = preset_names();
  std::set<std::string> set(names.begin(), names.end());
  EXPECT_EQ(set.size(), names.size());
  for (const char* n : {"tiny", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3-moe", "tiny-mixtral", "tiny-olmoe",
                        "qwen3-0.6b", "qwen2.5-0.5b", "llama-3.1-8b", "qwen3-30b-a3b", "mixtral-8x7b",
                        "olmoe-1b-7b", "seed-small", "seed-medium", "seed-large"}) {
    EXPECT_TRUE(set.count(n)) << n;
  }
  std::set<Arch> archs;
  for (const auto& n : kTiny) archs.insert(preset_config(n).arch);
  EXPECT_EQ(archs.size(), 6u);
}

TEST(Presets, EveryConfigValidatesAndRoundTrips) {
  for (const std::string& name : preset_names()) {
    SCOPED_TRACE(name);
    ModelConfig c = preset_config(name);
    EXPECT_NO_THROW(validate_config(c, name));
    ModelConfig back = config_from_json(config_to_hf_json(c), name);
    EXPECT_EQ(back.arch, c.arch);
    EXPECT_EQ(back.hidden, c.hidden);
    EXPECT_EQ(back.head_dim, c.head_dim);
    EXPECT_EQ(back.kv_heads, c.kv_heads);
    EXPECT_EQ(back.num_experts, c.num_experts);
    EXPECT_EQ(back.moe_intermediate, c.moe_intermediate);
    EXPECT_EQ(back.intermediate, c.intermediate);
    EXPECT_EQ(back.tie_embeddings, c.tie_embeddings);
    EXPECT_EQ(back.mlp_only_layers, c.mlp_only_layers);
  }
}

TEST(Presets, TinyAndRealShapes) {
  ModelConfig t = preset_config("tiny");
  EXPECT_EQ(t.arch, Arch::Llama);
  EXPECT_EQ(t.layers, 2);
  EXPECT_EQ(t.hidden, 64);
  EXPECT_EQ(t.intermediate, 128);
  EXPECT_EQ(t.heads, 4);
  EXPECT_EQ(t.kv_heads, 2);
  EXPECT_EQ(t.head_dim, 16);
  EXPECT_EQ(t.vocab, 256);
  EXPECT_EQ(t.max_position, 1024);
  EXPECT_TRUE(preset_config("tiny-qwen2").tie_embeddings);
  for (const char* moe : {"tiny-qwen3-moe", "tiny-mixtral", "tiny-olmoe"}) {
    ModelConfig c = preset_config(moe);
    EXPECT_EQ(c.num_experts, 4) << moe;
    EXPECT_EQ(c.top_k, 2) << moe;
    EXPECT_EQ(c.moe_intermediate, 32) << moe;
  }
  ModelConfig l = preset_config("llama-3.1-8b");
  EXPECT_TRUE(l.rope_scaling.llama3);
  EXPECT_DOUBLE_EQ(l.rope_scaling.factor, 8.0);
  EXPECT_DOUBLE_EQ(l.rope_scaling.low_freq_factor, 1.0);
  EXPECT_DOUBLE_EQ(l.rope_scaling.high_freq_factor, 4.0);
  EXPECT_EQ(l.rope_scaling.original_max_position, 8192);
  EXPECT_DOUBLE_EQ(l.rope_theta, 500000.0);
  for (const auto& [name, L, H, nh] : std::vector<std::tuple<std::string, int, int, int>>{
           {"seed-small", 12, 768, 12}, {"seed-medium", 24, 1024, 16}, {"seed-large", 32, 4096, 32}}) {
    ModelConfig s = preset_config(name);
    EXPECT_EQ(s.arch, Arch::Mixtral) << name;
    EXPECT_EQ(s.layers, L) << name;
    EXPECT_EQ(s.hidden, H) << name;
    EXPECT_EQ(s.heads, nh) << name;
    EXPECT_EQ(s.num_experts, 8) << name;
    EXPECT_EQ(s.top_k, 2) << name;
    EXPECT_LT(s.kv_heads, s.heads) << name;  // GQA
  }
}

TEST(Presets, UnknownNameIsUsageError) {
  try {
    preset_config("tiny-gpt2");
    FAIL() << "no error";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("tiny-gpt2"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("tiny-mixtral"), std::string::npos);  // lists the known names
    EXPECT_EQ(e.exit_code(), 2);
  }
  EXPECT_THROW(open_model("preset:nope", DType::F32), UsageError);
}

TEST(Presets, DeterministicAndSeeded) {
  const std::string n = "model.layers.1.self_attn.q_proj.weight";
  auto a = preset_source("tiny", DType::F32)->read_f32(n);
  auto b = preset_source("tiny", DType::F32)->read_f32(n);
  EXPECT_EQ(a, b);
  EXPECT_EQ(preset_source("tiny", DType::F32, 0)->read_f32(n), a);  // 0 = the preset's own seed
  auto c = preset_source("tiny", DType::F32, 7)->read_f32(n);
  auto d = preset_source("tiny", DType::F32, 8)->read_f32(n);
  EXPECT_EQ(preset_source("tiny", DType::F32, 7)->read_f32(n), c);
  EXPECT_NE(c, a);
  EXPECT_NE(c, d);
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i] == c[i];
  EXPECT_LT(same, a.size() / 100);
  // Different tensors of the same shape differ; so do different presets.
  EXPECT_NE(preset_source("tiny", DType::F32)->read_f32("model.layers.0.self_attn.q_proj.weight"), a);
  EXPECT_NE(preset_source("tiny-qwen3", DType::F32)->read_f32(n), a);
}

TEST(Presets, SourceListsWeightMapNamesSorted) {
  for (const auto& name : kTiny) {
    auto src = preset_source(name, DType::BF16);
    auto names = src->names();
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    auto map = weight_map(preset_config(name));
    EXPECT_EQ(names.size(), map.size());
    for (const WeightSpec& s : map) {
      auto m = src->meta(s.hf_name);
      ASSERT_TRUE(m.has_value()) << s.hf_name;
      EXPECT_EQ(m->shape, s.shape);
      EXPECT_EQ(m->dtype, "BF16");
    }
    EXPECT_FALSE(src->meta("model.layers.9.mlp.up_proj.weight").has_value());
    EXPECT_THROW(src->read_f32("model.layers.9.mlp.up_proj.weight"), BadInput);
  }
}

TEST(Presets, ValuesRoundedAndScaledPerKind) {
  auto src = preset_source("tiny-qwen2", DType::BF16);
  auto check = [&](const std::string& name, float lo, float hi) {
    auto v = src->read_f32(name);
    double sum = 0;
    for (float x : v) {
      EXPECT_EQ(x, round_to(DType::BF16, x)) << name;
      EXPECT_GE(x, lo) << name;
      EXPECT_LE(x, hi) << name;
      sum += x;
    }
    return sum / static_cast<double>(v.size());
  };
  const float lin = std::sqrt(3.0f / 64.0f) * 1.01f;
  EXPECT_NEAR(check("model.layers.0.input_layernorm.weight", 0.89f, 1.11f), 1.0, 0.05);
  EXPECT_NEAR(check("model.layers.0.self_attn.q_proj.weight", -lin, lin), 0.0, 0.02);
  EXPECT_NEAR(check("model.layers.0.self_attn.q_proj.bias", -0.051f, 0.051f), 0.0, 0.02);
  const float down = std::sqrt(3.0f / 128.0f) * 1.01f;  // fan_in = I
  EXPECT_NEAR(check("model.layers.1.mlp.down_proj.weight", -down, down), 0.0, 0.02);
  const float head = 2.0f * std::sqrt(3.0f / 64.0f) * 1.01f;  // tied embedding doubles as the head
  EXPECT_NEAR(check("model.embed_tokens.weight", -head, head), 0.0, 0.02);
  // Values really spread over the range (not a constant).
  auto q = src->read_f32("model.layers.0.self_attn.q_proj.weight");
  EXPECT_GT(*std::max_element(q.begin(), q.end()), 0.8f * lin);
  EXPECT_LT(*std::min_element(q.begin(), q.end()), -0.8f * lin);
}

TEST(Presets, LargePresetTensorOnDemand) {
  auto src = preset_source("llama-3.1-8b", DType::BF16);
  auto v = src->read_f32("model.layers.31.input_layernorm.weight");  // one small tensor of an 8B model
  ASSERT_EQ(v.size(), 4096u);
  EXPECT_EQ(src->meta("model.layers.31.mlp.down_proj.weight")->shape, (std::vector<int64_t>{4096, 14336}));
}

TEST(Presets, OpenModelPreset) {
  LoadedModel m = open_model("preset:tiny-olmoe", DType::F16);
  EXPECT_EQ(m.config.arch, Arch::Olmoe);
  EXPECT_EQ(m.spec, "preset:tiny-olmoe");
  EXPECT_EQ(m.source->describe(), "preset:tiny-olmoe");
  EXPECT_EQ(m.source->meta("model.norm.weight")->dtype, "F16");
}

void expect_identical(const ModelWeights& a, const ModelWeights& b) {
  EXPECT_EQ(a.embed.data, b.embed.data);
  EXPECT_EQ(a.final_norm.data, b.final_norm.data);
  EXPECT_EQ(a.lm_head.data, b.lm_head.data);
  ASSERT_EQ(a.layers.size(), b.layers.size());
  for (size_t l = 0; l < a.layers.size(); ++l) {
    const LayerWeights &x = a.layers[l], &y = b.layers[l];
    for (auto m : {&LayerWeights::attn_norm, &LayerWeights::wq, &LayerWeights::wk, &LayerWeights::wv,
                   &LayerWeights::bq, &LayerWeights::bk, &LayerWeights::bv, &LayerWeights::wo,
                   &LayerWeights::q_norm, &LayerWeights::k_norm, &LayerWeights::ffn_norm, &LayerWeights::w_gate,
                   &LayerWeights::w_up, &LayerWeights::w_down, &LayerWeights::router, &LayerWeights::expert_gate,
                   &LayerWeights::expert_up, &LayerWeights::expert_down}) {
      EXPECT_EQ((x.*m).shape, (y.*m).shape) << "layer " << l;
      EXPECT_TRUE((x.*m).data == (y.*m).data) << "layer " << l;
    }
  }
}

// Export, reopen as a checkpoint directory, load: identical to loading the preset directly.
void export_and_reload(const std::string& preset, const fs::path& out, DType dtype, uint64_t max_shard,
                       size_t want_files) {
  SCOPED_TRACE(preset + " " + dtype_name(dtype) + " shard " + std::to_string(max_shard));
  ModelConfig cfg = preset_config(preset);
  auto src = preset_source(preset, dtype);
  export_checkpoint(cfg, *src, out.string(), dtype, max_shard);
  size_t st_files = 0;
  for (const auto& e : fs::directory_iterator(out)) {
    st_files += e.path().extension() == ".safetensors";
    EXPECT_NE(e.path().extension(), ".tmp") << e.path();
  }
  EXPECT_EQ(st_files, want_files);
  EXPECT_EQ(fs::exists(out / "model.safetensors.index.json"), want_files > 1);
  ModelConfig back = load_config_json((out / "config.json").string());
  EXPECT_EQ(back.torch_dtype, dtype);
  EXPECT_EQ(back.arch, cfg.arch);
  auto ck = open_checkpoint(out.string());
  EXPECT_EQ(ck->names(), src->names());
  expect_identical(load_weights(back, *ck, dtype), load_weights(cfg, *src, dtype));
  LoadedModel m = open_model(out.string(), dtype);
  EXPECT_EQ(m.config.hidden, cfg.hidden);
}

TEST_F(PresetExport, SingleFileEveryTinyFamily) {
  for (const auto& name : kTiny) export_and_reload(name, dir_ / name, DType::F32, 5000000000ull, 1);
}

// The shard count export_checkpoint's rule gives: greedy in name order, a new shard when the next
// tensor would pass the limit (a tensor larger than the limit sits alone).
size_t planned_shards(const std::string& preset, DType dtype, uint64_t limit) {
  auto src = preset_source(preset, dtype);
  size_t n = 0;
  uint64_t cur = 0;
  for (const auto& name : src->names()) {
    uint64_t b = static_cast<uint64_t>(src->meta(name)->numel()) * dtype_size(dtype);
    if (n == 0 || (cur > 0 && cur + b > limit)) {
      ++n;
      cur = 0;
    }
    cur += b;
  }
  return n;
}

TEST_F(PresetExport, ForcedShardingEveryTinyFamily) {
  for (const auto& name : kTiny) {
    const size_t want = planned_shards(name, DType::F32, 100000);
    ASSERT_GE(want, 3u) << name;  // every tiny model holds > 300 KB of fp32 weights
    export_and_reload(name, dir_ / (name + "-sharded"), DType::F32, 100000, want);
  }
}

TEST_F(PresetExport, Bf16AndIndexContents) {
  const fs::path out = dir_ / "bf16";
  const size_t want = planned_shards("tiny-mixtral", DType::BF16, 40000);
  ASSERT_GE(want, 3u);
  export_and_reload("tiny-mixtral", out, DType::BF16, 40000, want);
  std::ifstream in(out / "model.safetensors.index.json");
  nlohmann::json idx = nlohmann::json::parse(in);
  auto src = preset_source("tiny-mixtral", DType::BF16);
  uint64_t total = 0;
  for (const auto& n : src->names()) total += static_cast<uint64_t>(src->meta(n)->numel()) * 2;
  EXPECT_EQ(idx["metadata"]["total_size"].get<uint64_t>(), total);
  EXPECT_EQ(idx["weight_map"].size(), src->names().size());
  for (const auto& [name, file] : idx["weight_map"].items()) {
    EXPECT_TRUE(fs::exists(out / file.get<std::string>())) << name;
    EXPECT_EQ(file.get<std::string>().find("model-0000"), 0u);
    SafetensorsFile f((out / file.get<std::string>()).string());
    EXPECT_TRUE(f.has(name));
    EXPECT_EQ(f.meta(name).dtype, "BF16");
    EXPECT_EQ(f.metadata().at("format"), "pt");
  }
  std::ifstream cin(out / "config.json");
  nlohmann::json cfg = nlohmann::json::parse(cin);
  EXPECT_EQ(cfg["torch_dtype"], "bfloat16");
  EXPECT_EQ(cfg["dtype"], "bfloat16");
  EXPECT_EQ(cfg["architectures"][0], "MixtralForCausalLM");
}

TEST_F(PresetExport, ReexportReplacesStaleShards) {
  const fs::path out = dir_ / "re";
  auto src = preset_source("tiny", DType::F32);
  export_checkpoint(preset_config("tiny"), *src, out.string(), DType::F32, 50000);
  ASSERT_TRUE(fs::exists(out / "model.safetensors.index.json"));
  export_checkpoint(preset_config("tiny"), *src, out.string(), DType::F32, 0);  // 0: no sharding
  auto files = std::distance(fs::directory_iterator(out), fs::directory_iterator{});
  EXPECT_EQ(files, 2);  // config.json + model.safetensors
  EXPECT_FALSE(fs::exists(out / "model.safetensors.index.json"));
  EXPECT_NO_THROW(load_weights(preset_config("tiny"), *open_checkpoint(out.string()), DType::F32));
}

TEST_F(PresetExport, OpenModelMissingPathIsBadInput) {
  try {
    open_model((dir_ / "absent").string(), DType::F32);
    FAIL() << "no error";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), (dir_ / "absent").string());
  }
  fs::create_directories(dir_ / "noconfig");
  try {
    open_model((dir_ / "noconfig").string(), DType::F32);
    FAIL() << "no error";
  } catch (const BadInput& e) {
    EXPECT_NE(e.file().find("config.json"), std::string::npos);
  }
}

}  // namespace
