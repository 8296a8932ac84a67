// engine/core/config.cpp: HF config.json -> ModelConfig (transformers 4 and 5 spellings), its
// validation, and the reverse (ModelConfig -> config.json that transformers 5 reads back).
// Families: llama, qwen2, qwen3, qwen3_moe, mixtral, olmoe. Defaults follow HF's config classes;
// features the engine does not implement (non-silu activation, MLP bias, an active sliding window,
// olmoe clip_qkv, o_proj bias, rope types other than default/llama3) are refused by name.
#include "engine/core/config.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/core/error.h"

namespace minfer {

using nlohmann::json;

namespace {

// Typed field access: a present, non-null field of the wrong type throws BadInput naming it.
struct Fields {
  const json& j;
  const std::string& src;
  std::string prefix;  // "rope_scaling." for nested objects

  bool has(const char* k) const { return j.contains(k) && !j.at(k).is_null(); }
  [[noreturn]] void fail(const char* k, const std::string& detail) const {
    throw BadInput(src, prefix + k, detail);
  }
  long long integer(const char* k) const {
    if (!has(k)) fail(k, "missing");
    const json& v = j.at(k);
    if (v.is_number_integer()) return v.get<long long>();
    if (v.is_number_float()) {  // accept 4096.0, refuse 4096.5
      double d = v.get<double>();
      if (d == static_cast<double>(static_cast<long long>(d))) return static_cast<long long>(d);
    }
    fail(k, "expected an integer, got " + v.dump());
  }
  int int32(const char* k) const {
    long long v = integer(k);
    if (v < -(1LL << 31) || v >= (1LL << 31)) fail(k, "value " + std::to_string(v) + " out of range");
    return static_cast<int>(v);
  }
  int int32_or(const char* k, int dflt) const { return has(k) ? int32(k) : dflt; }
  double number_or(const char* k, double dflt) const {
    if (!has(k)) return dflt;
    const json& v = j.at(k);
    if (!v.is_number()) fail(k, "expected a number, got " + v.dump());
    return v.get<double>();
  }
  bool boolean_or(const char* k, bool dflt) const {
    if (!has(k)) return dflt;
    const json& v = j.at(k);
    if (!v.is_boolean()) fail(k, "expected true/false, got " + v.dump());
    return v.get<bool>();
  }
  std::string string_or(const char* k, const std::string& dflt) const {
    if (!has(k)) return dflt;
    const json& v = j.at(k);
    if (!v.is_string()) fail(k, "expected a string, got " + v.dump());
    return v.get<std::string>();
  }
  // A token id: an integer, a list of integers (first taken), or null/absent (-1 = none).
  int token_id_or(const char* k, int dflt) const {
    if (!j.contains(k)) return dflt;
    const json& v = j.at(k);
    if (v.is_null()) return -1;
    if (v.is_array()) {
      if (v.empty()) return -1;
      if (!v[0].is_number_integer()) fail(k, "expected integer token ids, got " + v.dump());
      return v[0].get<int>();
    }
    return int32(k);
  }
};

bool arch_from_type(const std::string& t, Arch* a) {
  static const std::pair<const char*, Arch> kTypes[] = {
      {"llama", Arch::Llama},         {"qwen2", Arch::Qwen2},     {"qwen3", Arch::Qwen3},
      {"qwen3_moe", Arch::Qwen3Moe}, {"mixtral", Arch::Mixtral}, {"olmoe", Arch::Olmoe}};
  for (const auto& [name, arch] : kTypes) {
    if (t == name) { *a = arch; return true; }
  }
  return false;
}

// HF defaults that differ per family (transformers' config classes).
struct FamilyDefaults {
  int max_position;
  double rms_eps;
  int bos, eos;
  double rope_theta;
};
FamilyDefaults family_defaults(Arch a) {
  switch (a) {
    case Arch::Llama: return {2048, 1e-6, 1, 2, 10000.0};
    case Arch::Qwen2: return {32768, 1e-6, -1, -1, 10000.0};
    case Arch::Qwen3: return {32768, 1e-6, -1, -1, 10000.0};
    case Arch::Qwen3Moe: return {32768, 1e-6, -1, -1, 10000.0};
    case Arch::Mixtral: return {4096 * 32, 1e-5, 1, 2, 1e6};
    case Arch::Olmoe: return {2048, 1e-5, -1, 50279, 10000.0};
  }
  return {2048, 1e-6, -1, -1, 10000.0};
}

void parse_dtype_field(const Fields& f, ModelConfig& c) {
  // transformers 5 writes "dtype"; 4 writes "torch_dtype". Either may be absent (default bf16).
  for (const char* k : {"dtype", "torch_dtype"}) {
    if (!f.has(k)) continue;
    std::string s = f.string_or(k, "");
    auto d = parse_dtype(s);
    if (!d) f.fail(k, "unsupported dtype \"" + s + "\" (expected float32, float16 or bfloat16)");
    c.torch_dtype = *d;
    return;
  }
}

// A rope block: v4 "rope_scaling" (may be null) or v5 "rope_parameters" (may hold rope_theta too).
void parse_rope_block(const json& r, const std::string& src, const std::string& name, ModelConfig& c) {
  if (r.is_null()) return;
  if (!r.is_object()) throw BadInput(src, name, "expected an object or null, got " + r.dump());
  Fields f{r, src, name + "."};
  if (f.has("rope_theta")) c.rope_theta = f.number_or("rope_theta", c.rope_theta);
  std::string type = f.has("rope_type") ? f.string_or("rope_type", "default") : f.string_or("type", "default");
  if (type == "default") return;
  if (type != "llama3") {
    f.fail(f.has("rope_type") ? "rope_type" : "type", "rope type \"" + type + "\" not implemented (default, llama3)");
  }
  c.rope_scaling.llama3 = true;
  c.rope_scaling.factor = f.number_or("factor", 8.0);
  c.rope_scaling.low_freq_factor = f.number_or("low_freq_factor", 1.0);
  c.rope_scaling.high_freq_factor = f.number_or("high_freq_factor", 4.0);
  c.rope_scaling.original_max_position = f.int32_or("original_max_position_embeddings", 8192);
}

void parse_rope(const json& j, const Fields& f, ModelConfig& c) {
  c.rope_theta = f.number_or("rope_theta", c.rope_theta);
  if (j.contains("rope_scaling")) parse_rope_block(j.at("rope_scaling"), f.src, "rope_scaling", c);
  if (j.contains("rope_parameters")) parse_rope_block(j.at("rope_parameters"), f.src, "rope_parameters", c);
}

// Refuse what the engine does not implement, naming the field.
void refuse_unsupported(const Fields& f, const ModelConfig& c) {
  std::string act = f.string_or("hidden_act", "silu");
  if (act != "silu") f.fail("hidden_act", "\"" + act + "\" not implemented (only silu)");
  if (f.boolean_or("mlp_bias", false)) f.fail("mlp_bias", "MLP bias not implemented");
  if (c.arch == Arch::Olmoe && f.has("clip_qkv")) f.fail("clip_qkv", "clip_qkv not implemented (must be null)");
  bool window_used = false;
  if (c.arch == Arch::Mixtral) {
    window_used = f.has("sliding_window") && f.int32("sliding_window") < c.max_position;
  } else if (c.arch == Arch::Qwen2 || c.arch == Arch::Qwen3 || c.arch == Arch::Qwen3Moe) {
    window_used = f.boolean_or("use_sliding_window", false) && f.has("sliding_window");
  }
  if (window_used) f.fail("sliding_window", "sliding-window attention not implemented");
  if (f.has("layer_types")) {  // transformers 5: one attention kind per layer
    const json& t = f.j.at("layer_types");
    if (!t.is_array()) f.fail("layer_types", "expected a list, got " + t.dump());
    for (const json& v : t) {
      if (v != "full_attention") f.fail("layer_types", "layer type " + v.dump() + " not implemented (full_attention only)");
    }
  }
}

void parse_attention(const Fields& f, ModelConfig& c) {
  c.heads = f.int32("num_attention_heads");
  c.kv_heads = f.int32_or("num_key_value_heads", c.heads);
  int dflt_hd = c.arch == Arch::Qwen3 ? 128 : (c.heads > 0 ? c.hidden / c.heads : 0);
  c.head_dim = f.int32_or("head_dim", dflt_hd);
  bool bias = f.boolean_or("attention_bias", false);
  if (c.arch == Arch::Qwen2) {
    c.attention_bias = true;  // Qwen2 always has q/k/v bias, never o_proj bias
  } else if (bias) {
    f.fail("attention_bias", "o_proj bias not implemented (attention_bias must be false for " + c.model_type + ")");
  }
  if (c.arch == Arch::Qwen3 || c.arch == Arch::Qwen3Moe) c.qk_norm = QkNorm::PerHead;
  if (c.arch == Arch::Olmoe) c.qk_norm = QkNorm::Full;
}

void parse_moe(const Fields& f, ModelConfig& c) {
  // transformers 5 writes num_local_experts for every family; 4 writes num_experts except for mixtral.
  const char* primary = c.arch == Arch::Mixtral ? "num_local_experts" : "num_experts";
  const char* alias = c.arch == Arch::Mixtral ? "num_experts" : "num_local_experts";
  c.num_experts = f.int32(!f.has(primary) && f.has(alias) ? alias : primary);
  if (c.arch == Arch::Mixtral) {
    c.router_order = RouterOrder::TopkThenSoftmax;
    c.norm_topk_prob = true;  // softmax over the k chosen logits sums to 1
  } else {
    c.router_order = RouterOrder::SoftmaxThenTopk;
    c.norm_topk_prob = f.boolean_or("norm_topk_prob", false);
  }
  c.top_k = f.int32("num_experts_per_tok");
  if (c.arch == Arch::Qwen3Moe) {
    c.moe_intermediate = f.int32("moe_intermediate_size");
    c.decoder_sparse_step = f.int32_or("decoder_sparse_step", 1);
    if (f.has("mlp_only_layers")) {
      const json& m = f.j.at("mlp_only_layers");
      if (!m.is_array()) f.fail("mlp_only_layers", "expected a list of layer indices, got " + m.dump());
      for (const json& v : m) {
        if (!v.is_number_integer()) f.fail("mlp_only_layers", "expected integer layer indices, got " + v.dump());
        c.mlp_only_layers.push_back(v.get<int>());
      }
    }
  } else {
    // mixtral and olmoe size their experts with intermediate_size and have no dense FFN.
    c.moe_intermediate = c.intermediate;
    c.intermediate = 0;
  }
}

void check_positive(const std::string& src, const char* field, long long v) {
  if (v <= 0) throw BadInput(src, field, "must be positive, got " + std::to_string(v));
}

}  // namespace

const char* arch_name(Arch a) {
  switch (a) {
    case Arch::Llama: return "llama";
    case Arch::Qwen2: return "qwen2";
    case Arch::Qwen3: return "qwen3";
    case Arch::Qwen3Moe: return "qwen3_moe";
    case Arch::Mixtral: return "mixtral";
    case Arch::Olmoe: return "olmoe";
  }
  return "?";
}

bool ModelConfig::layer_is_moe(int layer) const {
  if (!is_moe()) return false;
  if (std::find(mlp_only_layers.begin(), mlp_only_layers.end(), layer) != mlp_only_layers.end()) return false;
  int step = decoder_sparse_step > 0 ? decoder_sparse_step : 1;
  return (layer + 1) % step == 0;
}

ModelConfig config_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw BadInput(source, "(top level)", "expected a JSON object");
  Fields f{j, source, ""};
  ModelConfig c;
  c.model_type = f.string_or("model_type", "");
  if (c.model_type.empty()) f.fail("model_type", "missing");
  if (!arch_from_type(c.model_type, &c.arch)) {
    f.fail("model_type", "unknown \"" + c.model_type + "\" (llama, qwen2, qwen3, qwen3_moe, mixtral, olmoe)");
  }
  FamilyDefaults d = family_defaults(c.arch);
  c.hidden = f.int32("hidden_size");
  c.intermediate = f.int32("intermediate_size");
  c.layers = f.int32("num_hidden_layers");
  c.vocab = f.int32("vocab_size");
  c.max_position = f.int32_or("max_position_embeddings", d.max_position);
  c.rms_eps = f.number_or("rms_norm_eps", d.rms_eps);
  c.rope_theta = d.rope_theta;
  c.tie_embeddings = f.boolean_or("tie_word_embeddings", false);
  c.bos_token_id = f.token_id_or("bos_token_id", d.bos);
  c.eos_token_id = f.token_id_or("eos_token_id", d.eos);
  parse_dtype_field(f, c);
  parse_attention(f, c);
  parse_rope(j, f, c);
  if (c.arch == Arch::Qwen3Moe || c.arch == Arch::Mixtral || c.arch == Arch::Olmoe) parse_moe(f, c);
  refuse_unsupported(f, c);
  validate_config(c, source);
  return c;
}

ModelConfig load_config_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw BadInput(path, "(file)", "cannot open");
  std::stringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw BadInput(path, "(json)", "invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  }
  return config_from_json(j, path);
}

void validate_config(const ModelConfig& c, const std::string& src) {
  check_positive(src, "hidden_size", c.hidden);
  check_positive(src, "num_hidden_layers", c.layers);
  check_positive(src, "num_attention_heads", c.heads);
  check_positive(src, "num_key_value_heads", c.kv_heads);
  check_positive(src, "head_dim", c.head_dim);
  check_positive(src, "vocab_size", c.vocab);
  check_positive(src, "max_position_embeddings", c.max_position);
  if (c.heads % c.kv_heads != 0) {
    throw BadInput(src, "num_key_value_heads", std::to_string(c.kv_heads) + " does not divide num_attention_heads " +
                                                   std::to_string(c.heads));
  }
  if (c.head_dim % 2 != 0) throw BadInput(src, "head_dim", "must be even for RoPE, got " + std::to_string(c.head_dim));
  if (!(c.rms_eps > 0)) throw BadInput(src, "rms_norm_eps", "must be positive");
  if (!(c.rope_theta > 0)) throw BadInput(src, "rope_theta", "must be positive");
  if (c.rope_scaling.llama3) {
    if (!(c.rope_scaling.factor > 0)) throw BadInput(src, "rope_scaling.factor", "must be positive");
    if (!(c.rope_scaling.high_freq_factor > c.rope_scaling.low_freq_factor)) {
      throw BadInput(src, "rope_scaling.high_freq_factor", "must exceed low_freq_factor");
    }
    check_positive(src, "rope_scaling.original_max_position_embeddings", c.rope_scaling.original_max_position);
  }
  bool any_dense = false;
  for (int l = 0; l < c.layers; ++l) any_dense = any_dense || !c.layer_is_moe(l);
  if (any_dense) check_positive(src, "intermediate_size", c.intermediate);
  const bool moe_family = c.arch == Arch::Qwen3Moe || c.arch == Arch::Mixtral || c.arch == Arch::Olmoe;
  if (!moe_family && !c.is_moe()) return;
  const char* experts_field = c.arch == Arch::Mixtral ? "num_local_experts" : "num_experts";
  check_positive(src, experts_field, c.num_experts);
  check_positive(src, "num_experts_per_tok", c.top_k);
  if (c.top_k > c.num_experts) {
    throw BadInput(src, "num_experts_per_tok", std::to_string(c.top_k) + " exceeds " + experts_field + " " +
                                                   std::to_string(c.num_experts));
  }
  check_positive(src, c.arch == Arch::Qwen3Moe ? "moe_intermediate_size" : "intermediate_size", c.moe_intermediate);
  check_positive(src, "decoder_sparse_step", c.decoder_sparse_step);
  for (int l : c.mlp_only_layers) {
    if (l < 0 || l >= c.layers) throw BadInput(src, "mlp_only_layers", "layer " + std::to_string(l) + " out of range");
  }
}

namespace {

const char* hf_architecture(Arch a) {
  switch (a) {
    case Arch::Llama: return "LlamaForCausalLM";
    case Arch::Qwen2: return "Qwen2ForCausalLM";
    case Arch::Qwen3: return "Qwen3ForCausalLM";
    case Arch::Qwen3Moe: return "Qwen3MoeForCausalLM";
    case Arch::Mixtral: return "MixtralForCausalLM";
    case Arch::Olmoe: return "OlmoeForCausalLM";
  }
  return "?";
}

const char* hf_dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
  }
  return "?";
}

json token_or_null(int id) { return id >= 0 ? json(id) : json(nullptr); }

void moe_to_json(const ModelConfig& c, json& j) {
  j["num_experts_per_tok"] = c.top_k;
  j["router_aux_loss_coef"] = 0.001;
  j["output_router_logits"] = false;
  if (c.arch == Arch::Mixtral) {
    j["num_local_experts"] = c.num_experts;
    j["intermediate_size"] = c.moe_intermediate;
    j["sliding_window"] = nullptr;
    return;
  }
  j["num_experts"] = c.num_experts;
  j["norm_topk_prob"] = c.norm_topk_prob;
  if (c.arch == Arch::Olmoe) {
    j["intermediate_size"] = c.moe_intermediate;
    j["clip_qkv"] = nullptr;
    return;
  }
  j["moe_intermediate_size"] = c.moe_intermediate;
  j["decoder_sparse_step"] = c.decoder_sparse_step;
  j["mlp_only_layers"] = c.mlp_only_layers;
}

}  // namespace

json config_to_hf_json(const ModelConfig& c) {
  json j;
  j["architectures"] = json::array({hf_architecture(c.arch)});
  j["model_type"] = arch_name(c.arch);
  j["hidden_size"] = c.hidden;
  j["intermediate_size"] = c.intermediate;
  j["num_hidden_layers"] = c.layers;
  j["num_attention_heads"] = c.heads;
  j["num_key_value_heads"] = c.kv_heads;
  j["head_dim"] = c.head_dim;
  j["vocab_size"] = c.vocab;
  j["max_position_embeddings"] = c.max_position;
  j["rms_norm_eps"] = c.rms_eps;
  j["hidden_act"] = "silu";
  j["rope_theta"] = c.rope_theta;
  j["rope_scaling"] = nullptr;
  if (c.rope_scaling.llama3) {
    j["rope_scaling"] = {{"rope_type", "llama3"},
                         {"factor", c.rope_scaling.factor},
                         {"low_freq_factor", c.rope_scaling.low_freq_factor},
                         {"high_freq_factor", c.rope_scaling.high_freq_factor},
                         {"original_max_position_embeddings", c.rope_scaling.original_max_position}};
  }
  j["tie_word_embeddings"] = c.tie_embeddings;
  j["torch_dtype"] = hf_dtype_name(c.torch_dtype);
  j["dtype"] = hf_dtype_name(c.torch_dtype);
  j["bos_token_id"] = token_or_null(c.bos_token_id);
  j["eos_token_id"] = token_or_null(c.eos_token_id);
  j["initializer_range"] = 0.02;
  j["use_cache"] = true;
  j["attention_dropout"] = 0.0;
  if (c.arch != Arch::Qwen2 && c.arch != Arch::Mixtral) j["attention_bias"] = false;
  if (c.arch == Arch::Llama) j["mlp_bias"] = false;
  if (c.arch == Arch::Qwen2 || c.arch == Arch::Qwen3 || c.arch == Arch::Qwen3Moe) {
    j["use_sliding_window"] = false;
    j["sliding_window"] = nullptr;
    j["max_window_layers"] = c.layers;
  }
  if (c.is_moe()) moe_to_json(c, j);
  return j;
}

}  // namespace minfer
