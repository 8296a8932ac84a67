// engine/core/config.h: ModelConfig, parsed once from an HF config.json (or a preset) and validated.
// Families: llama, qwen2, qwen3 (dense); qwen3_moe, mixtral, olmoe (mixture of experts).
// Dimension legend used across the engine:
//   H = hidden, I = intermediate (dense FFN), Im = moe_intermediate, L = layers, V = vocab,
//   nh = heads, nkv = KV heads, hd = head_dim, E = experts, k = experts per token.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "engine/core/dtype.h"

namespace minfer {

enum class Arch { Llama, Qwen2, Qwen3, Qwen3Moe, Mixtral, Olmoe };

// How Q and K are normalised before RoPE.
enum class QkNorm {
  None,     // llama, qwen2, mixtral
  PerHead,  // qwen3, qwen3_moe: RMSNorm over each head's hd values, weight (hd)
  Full,     // olmoe: RMSNorm over the whole projection, weights (nh*hd) and (nkv*hd)
};

// Order of the router's softmax and top-k.
enum class RouterOrder {
  SoftmaxThenTopk,  // qwen3_moe, olmoe: p = softmax(logits over E); take top-k of p (renormalise if norm_topk_prob)
  TopkThenSoftmax,  // mixtral: take top-k logits, softmax over those k
};

struct RopeScaling {
  bool llama3 = false;  // rope_scaling.rope_type == "llama3"
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position = 8192;
};

struct ModelConfig {
  std::string model_type;  // as in config.json: "llama", "qwen2", ...
  Arch arch = Arch::Llama;
  int hidden = 0;        // H
  int intermediate = 0;  // I (dense FFN; 0 if every layer is MoE)
  int layers = 0;        // L
  int heads = 0;         // nh
  int kv_heads = 0;      // nkv (divides nh)
  int head_dim = 0;      // hd (config.head_dim, else H / nh)
  int vocab = 0;         // V
  int max_position = 0;  // max_position_embeddings
  double rms_eps = 1e-6;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool attention_bias = false;  // q/k/v projections carry a bias (qwen2)
  bool attention_out_bias = false;
  QkNorm qk_norm = QkNorm::None;
  bool tie_embeddings = false;  // lm_head shares embed_tokens
  DType torch_dtype = DType::BF16;  // config.json's torch_dtype / dtype (storage dtype of the checkpoint)
  int bos_token_id = -1, eos_token_id = -1;

  // Mixture of experts (num_experts == 0: dense)
  int num_experts = 0;       // E
  int top_k = 0;             // k
  int moe_intermediate = 0;  // Im
  bool norm_topk_prob = false;
  RouterOrder router_order = RouterOrder::SoftmaxThenTopk;
  int decoder_sparse_step = 1;     // qwen3_moe: layer l is MoE if (l+1) % step == 0 and l not in mlp_only_layers
  std::vector<int> mlp_only_layers;

  bool is_moe() const { return num_experts > 0; }
  bool layer_is_moe(int layer) const;
  int q_dim() const { return heads * head_dim; }
  int kv_dim() const { return kv_heads * head_dim; }
};

const char* arch_name(Arch a);

// Parse an HF config.json. Throws BadInput naming the file and the field on any problem.
ModelConfig load_config_json(const std::string& path);
// Same from parsed JSON; `source` names the file in errors.
ModelConfig config_from_json(const nlohmann::json& j, const std::string& source);
// Checks every invariant (positive sizes, nkv | nh, top_k <= E, ...). Throws BadInput(source, field, ...).
void validate_config(const ModelConfig& c, const std::string& source);
// The HF config.json that transformers reads back as the same model.
nlohmann::json config_to_hf_json(const ModelConfig& c);

}  // namespace minfer
