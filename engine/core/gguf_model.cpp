// engine/core/gguf_model.cpp: GGUF metadata -> ModelConfig, GGUF tensors -> HF-named fp32 tensors
// (see gguf_model.h).
#include "engine/core/gguf_model.h"

#include <algorithm>
#include <map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"
#include "engine/core/gguf_quant.h"

namespace minfer {
namespace {

// GGUF layer tensor part -> HF layer tensor part (without the ".weight" / ".bias" suffix).
const std::pair<const char*, const char*> kLayerParts[] = {
    {"attn_norm", "input_layernorm"},      {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},        {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},   {"attn_q_norm", "self_attn.q_norm"},
    {"attn_k_norm", "self_attn.k_norm"},   {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},         {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "blk.12.attn_q.weight" -> {12, "attn_q", "weight"}; false if the name is not of that form.
bool split_layer_name(const std::string& name, const std::string& prefix, const std::string& sep, int& layer,
                      std::string& part, std::string& kind) {
  if (name.rfind(prefix, 0) != 0) return false;
  const size_t num_end = name.find(sep, prefix.size());
  if (num_end == std::string::npos || num_end == prefix.size()) return false;
  const std::string num = name.substr(prefix.size(), num_end - prefix.size());
  if (num.size() > 6 || !std::all_of(num.begin(), num.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return false;
  layer = std::stoi(num);
  const std::string rest = name.substr(num_end + sep.size());
  const size_t dot = rest.rfind('.');
  if (dot == std::string::npos) return false;
  part = rest.substr(0, dot);
  kind = rest.substr(dot + 1);
  return kind == "weight" || kind == "bias";
}

// A tensor name mapped between the GGUF scheme and the HF one (to_hf: GGUF -> HF), or "" when the
// name has no counterpart (a tensor the engine does not read).
std::string map_name(const std::string& name, bool to_hf) {
  static const std::pair<const char*, const char*> kGlobal[] = {
      {"token_embd.weight", "model.embed_tokens.weight"},
      {"output_norm.weight", "model.norm.weight"},
      {"output.weight", "lm_head.weight"},
  };
  for (const auto& [g, h] : kGlobal)
    if (name == (to_hf ? g : h)) return to_hf ? h : g;
  const std::string from = to_hf ? "blk." : "model.layers.", to = to_hf ? "model.layers." : "blk.";
  int layer = 0;
  std::string part, kind;
  if (!split_layer_name(name, from, ".", layer, part, kind)) return "";
  for (const auto& [g, h] : kLayerParts)
    if (part == (to_hf ? g : h)) return to + std::to_string(layer) + "." + (to_hf ? h : g) + "." + kind;
  return "";
}

// Rows of a (rows, cols) tensor back from GGUF's per-head interleaved order to HF's: HF row
// h*hd + j*hd/2 + i is GGUF row h*hd + 2i + j (i < hd/2, j < 2).
std::vector<float> unpermute_rows(const std::vector<float>& v, int64_t rows, int64_t cols, int64_t heads) {
  const int64_t hd = rows / heads, half = hd / 2;
  std::vector<float> out(v.size());
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < 2; ++j)
      for (int64_t i = 0; i < half; ++i) {
        const int64_t src = h * hd + 2 * i + j, dst = h * hd + j * half + i;
        std::copy_n(v.begin() + src * cols, cols, out.begin() + dst * cols);
      }
  return out;
}

class GgufSource : public TensorSource {
 public:
  GgufSource(std::shared_ptr<const GgufFile> f, const ModelConfig& c)
      : f_(std::move(f)), heads_(c.heads), kv_heads_(c.kv_heads), permute_qk_(c.arch == Arch::Llama) {
    for (const GgufTensorInfo& t : f_->tensors()) {
      const std::string hf = map_name(t.name, true);
      if (!hf.empty()) by_hf_[hf] = t.name;
    }
  }
  std::string describe() const override { return "gguf " + f_->path(); }
  std::vector<std::string> names() const override {
    std::vector<std::string> n;
    for (const auto& [hf, g] : by_hf_) n.push_back(hf);
    return n;  // std::map order: sorted
  }
  std::optional<TensorMeta> meta(const std::string& name) const override {
    auto it = by_hf_.find(name);
    if (it == by_hf_.end()) return std::nullopt;
    return TensorMeta{f_->info(it->second).shape(), "F32"};
  }
  std::string file_of(const std::string& /*name*/) const override { return f_->path(); }
  std::vector<float> read_f32(const std::string& name) const override {
    auto it = by_hf_.find(name);
    if (it == by_hf_.end()) throw BadInput(f_->path(), name, "no GGUF tensor serves this name");
    const GgufTensorInfo& t = f_->info(it->second);
    if (!gguf_can_dequantize(t.ggml_type()))
      throw BadInput(f_->path(), "tensor '" + t.name + "'", "type " + ggml_type_name(t.type) + " is not decoded");
    std::vector<float> v(static_cast<size_t>(t.numel));
    dequantize(t.ggml_type(), f_->data(t.name), t.nbytes, v.data(), t.numel);
    const bool q = ends_with(name, "self_attn.q_proj.weight") || ends_with(name, "self_attn.q_proj.bias");
    const bool k = ends_with(name, "self_attn.k_proj.weight") || ends_with(name, "self_attn.k_proj.bias");
    if (permute_qk_ && (q || k)) {
      const std::vector<int64_t> shape = t.shape();
      const int64_t rows = shape[0], cols = shape.size() > 1 ? shape[1] : 1, heads = q ? heads_ : kv_heads_;
      if (heads <= 0 || rows % heads != 0 || (rows / heads) % 2 != 0)
        throw BadInput(f_->path(), "tensor '" + t.name + "'",
                       std::to_string(rows) + " rows do not split into " + std::to_string(heads) +
                           " heads of an even size (needed to undo the Q/K permutation)");
      v = unpermute_rows(v, rows, cols, heads);
    }
    return v;
  }

 private:
  std::shared_ptr<const GgufFile> f_;
  int64_t heads_, kv_heads_;
  bool permute_qk_;
  std::map<std::string, std::string> by_hf_;  // HF name -> GGUF name
};

}  // namespace

bool is_gguf_path(const std::string& spec) { return ends_with(spec, ".gguf"); }

std::string gguf_name_for(const std::string& hf) { return map_name(hf, false); }

ModelConfig config_from_gguf(const GgufFile& f) {
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3")
    throw BadInput(f.path(), "key 'general.architecture'",
                   "\"" + arch + "\" is not a dense family the engine runs (llama, qwen2, qwen3)");
  auto key = [&](const char* k) { return arch + "." + k; };
  nlohmann::json j;
  j["model_type"] = arch;
  j["hidden_size"] = f.get_u32(key("embedding_length"));
  j["intermediate_size"] = f.get_u32(key("feed_forward_length"));
  j["num_hidden_layers"] = f.get_u32(key("block_count"));
  const uint32_t heads = f.get_u32(key("attention.head_count"));
  j["num_attention_heads"] = heads;
  j["num_key_value_heads"] = f.has(key("attention.head_count_kv")) ? f.get_u32(key("attention.head_count_kv")) : heads;
  uint32_t head_dim = heads ? f.get_u32(key("embedding_length")) / heads : 0;
  if (f.has(key("attention.key_length"))) head_dim = f.get_u32(key("attention.key_length"));
  j["head_dim"] = head_dim;
  if (f.has(key("rope.dimension_count")) && f.get_u32(key("rope.dimension_count")) != head_dim)
    throw BadInput(f.path(), "key '" + key("rope.dimension_count") + "'",
                   std::to_string(f.get_u32(key("rope.dimension_count"))) + " != head_dim " +
                       std::to_string(head_dim) + " (partial rotary embeddings are not supported)");
  j["rms_norm_eps"] = f.get_f64(key("attention.layer_norm_rms_epsilon"));
  j["rope_theta"] = f.has(key("rope.freq_base")) ? f.get_f64(key("rope.freq_base")) : 10000.0;
  if (f.has(key("rope.scaling.type")) && f.get_string(key("rope.scaling.type")) != "none")
    throw BadInput(f.path(), "key '" + key("rope.scaling.type") + "'",
                   "\"" + f.get_string(key("rope.scaling.type")) + "\": rope scaling from GGUF is not supported");
  if (f.has_tensor("rope_freqs.weight"))
    throw BadInput(f.path(), "tensor 'rope_freqs.weight'", "llama-3 rope scaling from GGUF is not supported");
  if (f.has(key("context_length"))) j["max_position_embeddings"] = f.get_u32(key("context_length"));
  if (f.has(key("vocab_size"))) {
    j["vocab_size"] = f.get_u32(key("vocab_size"));
  } else if (f.has("tokenizer.ggml.tokens")) {
    j["vocab_size"] = f.get_string_array_view("tokenizer.ggml.tokens").size();
  } else if (f.has_tensor("token_embd.weight") && f.info("token_embd.weight").ne.size() == 2) {
    j["vocab_size"] = f.info("token_embd.weight").ne[1];
  }
  j["tie_word_embeddings"] = !f.has_tensor("output.weight");
  j["attention_bias"] = f.has_tensor("blk.0.attn_q.bias");
  j["torch_dtype"] = "float32";  // dequantized on read
  if (f.has("tokenizer.ggml.bos_token_id")) j["bos_token_id"] = f.get_u32("tokenizer.ggml.bos_token_id");
  if (f.has("tokenizer.ggml.eos_token_id")) j["eos_token_id"] = f.get_u32("tokenizer.ggml.eos_token_id");
  return config_from_json(j, f.path());
}

std::unique_ptr<TensorSource> gguf_tensor_source(std::shared_ptr<const GgufFile> f, const ModelConfig& c) {
  return std::make_unique<GgufSource>(std::move(f), c);
}

}  // namespace minfer
