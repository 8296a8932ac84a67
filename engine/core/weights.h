// engine/core/weights.h: named tensor sources (checkpoints, presets), the engine's weight slots,
// and the per-architecture weight-name map (HF tensor name -> engine slot, with expected shape).
// Shapes use the legend of engine/core/config.h. Host values are float, holding exactly the values
// of the storage dtype (bf16/fp16 weights are widened without change).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/dtype.h"

namespace minfer {

// Shape and dtype of a named tensor. dtype is spelled as safetensors does: "F32", "F16", "BF16", "I64", ...
struct TensorMeta {
  std::vector<int64_t> shape;
  std::string dtype;
  int64_t numel() const;
};

std::string shape_str(const std::vector<int64_t>& shape);  // "[4, 8]"

// Anything that hands out named tensors: a safetensors checkpoint (one file or shards) or a preset.
class TensorSource {
 public:
  virtual ~TensorSource() = default;
  virtual std::string describe() const = 0;                       // "checkpoint DIR" / "preset:NAME"
  virtual std::vector<std::string> names() const = 0;             // every tensor name, sorted
  virtual std::optional<TensorMeta> meta(const std::string& name) const = 0;
  virtual std::string file_of(const std::string& name) const = 0;  // for errors: the file that holds it
  // The tensor's values as float (F32/F16/BF16/F64 storage). Throws BadInput for other dtypes.
  virtual std::vector<float> read_f32(const std::string& name) const = 0;
};

// A tensor on the host: row-major, values exactly representable in the model's storage dtype.
struct HostTensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
  bool empty() const { return data.empty(); }
  int64_t numel() const { return static_cast<int64_t>(data.size()); }
};

struct LayerWeights {
  HostTensor attn_norm;          // (H)
  HostTensor wq, wk, wv;         // (nh*hd, H), (nkv*hd, H), (nkv*hd, H)
  HostTensor bq, bk, bv;         // (nh*hd), (nkv*hd), (nkv*hd); empty unless attention_bias
  HostTensor wo;                 // (H, nh*hd)
  HostTensor q_norm, k_norm;     // PerHead: (hd), (hd); Full: (nh*hd), (nkv*hd); else empty
  HostTensor ffn_norm;           // (H)
  // dense FFN (empty on MoE layers)
  HostTensor w_gate, w_up;       // (I, H)
  HostTensor w_down;             // (H, I)
  // MoE FFN (empty on dense layers)
  HostTensor router;             // (E, H)
  HostTensor expert_gate, expert_up;  // (E, Im, H)
  HostTensor expert_down;             // (E, H, Im)
};

struct ModelWeights {
  DType storage = DType::F32;   // values were rounded to this dtype on load
  HostTensor embed;             // (V, H)
  std::vector<LayerWeights> layers;
  HostTensor final_norm;        // (H)
  HostTensor lm_head;           // (V, H); empty when tie_embeddings (use embed)
  const HostTensor& head() const { return lm_head.empty() ? embed : lm_head; }
};

// One entry of the weight-name map: an HF tensor name, the engine slot it fills, its shape.
// For MoE experts, `expert` >= 0 names the expert row of a stacked (E, ...) slot.
struct WeightSpec {
  std::string hf_name;                 // e.g. "model.layers.3.self_attn.q_proj.weight"
  std::string slot;                    // e.g. "layers.3.wq" or "layers.3.expert_gate[5]"
  std::vector<int64_t> shape;          // the HF tensor's shape
  std::vector<std::string> alt_names;  // other spellings seen in real checkpoints (tried in order)
  std::function<HostTensor*(ModelWeights&)> target;
  int expert = -1;
};

// The map for cfg's architecture, in HF's legacy per-expert format (what hub checkpoints hold).
std::vector<WeightSpec> weight_map(const ModelConfig& cfg);

// Load every slot from src, checking names and shapes, rounding values to `storage`.
// Missing or mis-shaped tensors throw BadInput(file, tensor name, detail).
// Also accepts transformers-5 fused expert tensors (mlp.experts.gate_up_proj (E, 2*Im, H), down_proj (E, H, Im)).
ModelWeights load_weights(const ModelConfig& cfg, const TensorSource& src, DType storage);

}  // namespace minfer
