// tests/cpu/test_gguf_model.cpp: a GGUF file as a model (engine/core/gguf_model.h). Each dense tiny
// preset (llama, qwen2, qwen3) is written as a GGUF file the way GGUF's converters lay it out (GGUF
// tensor names, ne reversed, and for llama the Q/K rows permuted per head for an interleaved RoPE),
// then opened with open_model: the config matches the preset's and every tensor comes back equal to
// the preset's (so the permutation is undone exactly, and only for llama). Refusals name the file and
// the key: an architecture the engine does not run, a missing size key, llama-3 rope scaling
// (rope_freqs), partial rotary. gguf_name_for maps every HF name of the presets and back.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <gtest/gtest.h>

#include "engine/core/error.h"
#include "engine/core/gguf.h"
#include "engine/core/gguf_model.h"
#include "engine/core/presets.h"

namespace minfer {
namespace {

namespace fs = std::filesystem;
using V = GgufWriter::Value;

bool ends_with(const std::string& s, const std::string& t) {
  return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
}

// GGUF's llama converter order: GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i.
std::vector<float> permute_rows(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t heads) {
  const int64_t hd = rows / heads, half = hd / 2;
  std::vector<float> out(v.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i)
        std::copy_n(v.begin() + (h * hd + j * half + i) * cols, cols, out.begin() + (h * hd + 2 * i + j) * cols);
  return out;
}

struct Options {
  std::string arch;         // general.architecture; empty: the preset's model_type
  bool drop_hidden = false;  // leave out A.embedding_length
  bool rope_freqs = false;   // add a rope_freqs.weight tensor
  int rope_dims = 0;         // A.rope.dimension_count if > 0
};

// Writes preset `name` (fp32 values) as GGUF at `path`.
void write_preset_gguf(const std::string& name, const std::string& path, const Options& o = {}) {
  const ModelConfig c = preset_config(name);
  const std::unique_ptr<TensorSource> src = preset_source(name, DType::F32);
  const std::string arch = o.arch.empty() ? c.model_type : o.arch;
  GgufWriter w;
  w.add("general.architecture", V::str(arch));
  auto key = [&](const char* k) { return arch + "." + k; };
  if (!o.drop_hidden) w.add(key("embedding_length"), V::u32(static_cast<uint32_t>(c.hidden)));
  w.add(key("feed_forward_length"), V::u32(static_cast<uint32_t>(c.intermediate)));
  w.add(key("block_count"), V::u32(static_cast<uint32_t>(c.layers)));
  w.add(key("attention.head_count"), V::u32(static_cast<uint32_t>(c.heads)));
  w.add(key("attention.head_count_kv"), V::u32(static_cast<uint32_t>(c.kv_heads)));
  w.add(key("attention.key_length"), V::u32(static_cast<uint32_t>(c.head_dim)));
  w.add(key("attention.layer_norm_rms_epsilon"), V::f32(static_cast<float>(c.rms_eps)));
  w.add(key("rope.freq_base"), V::f32(static_cast<float>(c.rope_theta)));
  if (o.rope_dims > 0) w.add(key("rope.dimension_count"), V::u32(static_cast<uint32_t>(o.rope_dims)));
  w.add(key("context_length"), V::u32(static_cast<uint32_t>(c.max_position)));
  w.add(key("vocab_size"), V::u32(static_cast<uint32_t>(c.vocab)));
  const bool permute = arch == "llama";
  for (const std::string& hf : src->names()) {
    const std::string g = gguf_name_for(hf);
    ASSERT_FALSE(g.empty()) << hf;
    std::vector<int64_t> shape = src->meta(hf)->shape;
    std::vector<float> v = src->read_f32(hf);
    const bool q = ends_with(hf, "q_proj.weight") || ends_with(hf, "q_proj.bias");
    const bool k = ends_with(hf, "k_proj.weight") || ends_with(hf, "k_proj.bias");
    if (permute && (q || k)) v = permute_rows(v, shape[0], shape.size() > 1 ? shape[1] : 1, q ? c.heads : c.kv_heads);
    std::reverse(shape.begin(), shape.end());
    w.add_tensor_f32(g, shape, v);
  }
  if (o.rope_freqs) w.add_tensor_f32("rope_freqs.weight", {c.head_dim / 2}, std::vector<float>(c.head_dim / 2, 1.f));
  w.write(path);
}

class GgufModel : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("minfer_gguf_model_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& n) const { return (dir_ / n).string(); }
  fs::path dir_;
};

TEST_F(GgufModel, DensePresetsRoundTripThroughGguf) {
  for (const std::string name : {"tiny", "tiny-qwen2", "tiny-qwen3"}) {
    SCOPED_TRACE(name);
    const std::string p = path(name + ".gguf");
    write_preset_gguf(name, p);
    ASSERT_TRUE(is_gguf_path(p));
    const LoadedModel m = open_model(p, DType::F32);
    const ModelConfig want = preset_config(name);
    const ModelConfig& got = m.config;
    EXPECT_EQ(got.arch, want.arch);
    EXPECT_EQ(got.hidden, want.hidden);
    EXPECT_EQ(got.intermediate, want.intermediate);
    EXPECT_EQ(got.layers, want.layers);
    EXPECT_EQ(got.heads, want.heads);
    EXPECT_EQ(got.kv_heads, want.kv_heads);
    EXPECT_EQ(got.head_dim, want.head_dim);
    EXPECT_EQ(got.vocab, want.vocab);
    EXPECT_EQ(got.max_position, want.max_position);
    EXPECT_EQ(static_cast<float>(got.rms_eps), static_cast<float>(want.rms_eps));
    EXPECT_EQ(static_cast<float>(got.rope_theta), static_cast<float>(want.rope_theta));
    EXPECT_EQ(got.tie_embeddings, want.tie_embeddings);
    EXPECT_EQ(got.attention_bias, want.attention_bias);
    EXPECT_EQ(got.qk_norm, want.qk_norm);
    const std::unique_ptr<TensorSource> ref = preset_source(name, DType::F32);
    EXPECT_EQ(m.source->names(), ref->names());
    for (const std::string& n : ref->names()) {
      ASSERT_TRUE(m.source->meta(n).has_value()) << n;
      EXPECT_EQ(m.source->meta(n)->shape, ref->meta(n)->shape) << n;
      EXPECT_EQ(m.source->read_f32(n), ref->read_f32(n)) << n;  // exact: fp32 storage, permutation undone
    }
  }
}

TEST_F(GgufModel, GgufNamesMapBothWays) {
  const std::unique_ptr<TensorSource> src = preset_source("tiny-qwen3", DType::F32);
  for (const std::string& hf : src->names()) EXPECT_FALSE(gguf_name_for(hf).empty()) << hf;
  EXPECT_EQ(gguf_name_for("model.layers.7.self_attn.q_proj.weight"), "blk.7.attn_q.weight");
  EXPECT_EQ(gguf_name_for("model.layers.0.self_attn.k_proj.bias"), "blk.0.attn_k.bias");
  EXPECT_EQ(gguf_name_for("model.layers.3.post_attention_layernorm.weight"), "blk.3.ffn_norm.weight");
  EXPECT_EQ(gguf_name_for("model.embed_tokens.weight"), "token_embd.weight");
  EXPECT_EQ(gguf_name_for("lm_head.weight"), "output.weight");
  EXPECT_EQ(gguf_name_for("model.layers.x.mlp.up_proj.weight"), "");
  EXPECT_EQ(gguf_name_for("something.else"), "");
}

// The BadInput of opening p, which must name the file and contain `field`.
void expect_refused(const std::string& p, const std::string& field) {
  try {
    (void)open_model(p, DType::F32);
    ADD_FAILURE() << "no error for " << p;
  } catch (const BadInput& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(p), std::string::npos) << msg;
    EXPECT_NE(msg.find(field), std::string::npos) << msg;
  }
}

TEST_F(GgufModel, RefusalsNameTheFileAndTheKey) {
  Options moe;
  moe.arch = "mixtral";
  write_preset_gguf("tiny", path("moe.gguf"), moe);
  expect_refused(path("moe.gguf"), "general.architecture");
  Options no_hidden;
  no_hidden.drop_hidden = true;
  write_preset_gguf("tiny", path("nohidden.gguf"), no_hidden);
  expect_refused(path("nohidden.gguf"), "llama.embedding_length");
  Options freqs;
  freqs.rope_freqs = true;
  write_preset_gguf("tiny", path("freqs.gguf"), freqs);
  expect_refused(path("freqs.gguf"), "rope_freqs.weight");
  Options partial;
  partial.rope_dims = preset_config("tiny").head_dim / 2;
  write_preset_gguf("tiny", path("partial.gguf"), partial);
  expect_refused(path("partial.gguf"), "llama.rope.dimension_count");
}

}  // namespace
}  // namespace minfer
