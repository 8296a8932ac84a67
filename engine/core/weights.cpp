// engine/core/weights.cpp: the per-architecture weight-name map (HF legacy names -> engine slots,
// with shapes) and load_weights, which fills every slot from a TensorSource, checking names and
// shapes and rounding values to the storage dtype. Accepts per-expert tensors (hub checkpoints) and
// the transformers-5 fused expert layout (mlp.experts.gate_up_proj (E, 2*Im, H), down_proj (E, H, Im)).
// Legend as in engine/core/config.h.
#include "engine/core/weights.h"

#include <sstream>

#include "engine/core/error.h"

namespace minfer {

int64_t TensorMeta::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

namespace {

using Shape = std::vector<int64_t>;
using Target = std::function<HostTensor*(ModelWeights&)>;

Target layer_slot(int l, HostTensor LayerWeights::*m) {
  return [l, m](ModelWeights& w) { return &(w.layers[static_cast<size_t>(l)].*m); };
}

// Adds one entry. slot "layers.L.NAME" or a top-level name.
struct MapBuilder {
  std::vector<WeightSpec>& out;
  void add(std::string hf, std::string slot, Shape shape, Target t, int expert = -1,
           std::vector<std::string> alts = {}) {
    out.push_back(WeightSpec{std::move(hf), std::move(slot), std::move(shape), std::move(alts), std::move(t), expert});
  }
  void layer(int l, const std::string& hf_suffix, const char* slot, Shape shape, HostTensor LayerWeights::*m) {
    std::string p = "model.layers." + std::to_string(l) + ".";
    add(p + hf_suffix, "layers." + std::to_string(l) + "." + slot, std::move(shape), layer_slot(l, m));
  }
};

void add_attention(MapBuilder& b, const ModelConfig& c, int l) {
  const int64_t H = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), hd = c.head_dim;
  b.layer(l, "input_layernorm.weight", "attn_norm", {H}, &LayerWeights::attn_norm);
  b.layer(l, "self_attn.q_proj.weight", "wq", {Q, H}, &LayerWeights::wq);
  b.layer(l, "self_attn.k_proj.weight", "wk", {KV, H}, &LayerWeights::wk);
  b.layer(l, "self_attn.v_proj.weight", "wv", {KV, H}, &LayerWeights::wv);
  if (c.attention_bias) {
    b.layer(l, "self_attn.q_proj.bias", "bq", {Q}, &LayerWeights::bq);
    b.layer(l, "self_attn.k_proj.bias", "bk", {KV}, &LayerWeights::bk);
    b.layer(l, "self_attn.v_proj.bias", "bv", {KV}, &LayerWeights::bv);
  }
  b.layer(l, "self_attn.o_proj.weight", "wo", {H, Q}, &LayerWeights::wo);
  if (c.qk_norm == QkNorm::PerHead) {
    b.layer(l, "self_attn.q_norm.weight", "q_norm", {hd}, &LayerWeights::q_norm);
    b.layer(l, "self_attn.k_norm.weight", "k_norm", {hd}, &LayerWeights::k_norm);
  } else if (c.qk_norm == QkNorm::Full) {
    b.layer(l, "self_attn.q_norm.weight", "q_norm", {Q}, &LayerWeights::q_norm);
    b.layer(l, "self_attn.k_norm.weight", "k_norm", {KV}, &LayerWeights::k_norm);
  }
  b.layer(l, "post_attention_layernorm.weight", "ffn_norm", {H}, &LayerWeights::ffn_norm);
}

void add_dense_ffn(MapBuilder& b, const ModelConfig& c, int l) {
  const int64_t H = c.hidden, I = c.intermediate;
  b.layer(l, "mlp.gate_proj.weight", "w_gate", {I, H}, &LayerWeights::w_gate);
  b.layer(l, "mlp.up_proj.weight", "w_up", {I, H}, &LayerWeights::w_up);
  b.layer(l, "mlp.down_proj.weight", "w_down", {H, I}, &LayerWeights::w_down);
}

void add_moe_ffn(MapBuilder& b, const ModelConfig& c, int l) {
  const int64_t H = c.hidden, Im = c.moe_intermediate, E = c.num_experts;
  const std::string p = "model.layers." + std::to_string(l) + ".";
  const std::string s = "layers." + std::to_string(l) + ".";
  const bool mixtral = c.arch == Arch::Mixtral;
  const std::string moe = p + (mixtral ? "block_sparse_moe." : "mlp.");
  b.add(moe + "gate.weight", s + "router", {E, H}, layer_slot(l, &LayerWeights::router), -1,
        mixtral ? std::vector<std::string>{p + "mlp.gate.weight"} : std::vector<std::string>{});
  const char* names[3] = {"gate_proj", "up_proj", "down_proj"};
  if (mixtral) { names[0] = "w1"; names[1] = "w3"; names[2] = "w2"; }
  HostTensor LayerWeights::*slots[3] = {&LayerWeights::expert_gate, &LayerWeights::expert_up, &LayerWeights::expert_down};
  const char* slot_names[3] = {"expert_gate", "expert_up", "expert_down"};
  for (int e = 0; e < E; ++e) {
    for (int k = 0; k < 3; ++k) {
      Shape shape = k < 2 ? Shape{Im, H} : Shape{H, Im};
      b.add(moe + "experts." + std::to_string(e) + "." + names[k] + ".weight",
            s + slot_names[k] + "[" + std::to_string(e) + "]", shape, layer_slot(l, slots[k]), e);
    }
  }
}

}  // namespace

std::vector<WeightSpec> weight_map(const ModelConfig& c) {
  std::vector<WeightSpec> out;
  MapBuilder b{out};
  const int64_t V = c.vocab, H = c.hidden;
  b.add("model.embed_tokens.weight", "embed", {V, H}, [](ModelWeights& w) { return &w.embed; });
  for (int l = 0; l < c.layers; ++l) {
    add_attention(b, c, l);
    if (c.layer_is_moe(l)) {
      add_moe_ffn(b, c, l);
    } else {
      add_dense_ffn(b, c, l);
    }
  }
  b.add("model.norm.weight", "final_norm", {H}, [](ModelWeights& w) { return &w.final_norm; });
  if (!c.tie_embeddings) b.add("lm_head.weight", "lm_head", {V, H}, [](ModelWeights& w) { return &w.lm_head; });
  return out;
}

namespace {

// The name under which src holds spec (hf_name or one of its alternatives), or "" if none.
std::string find_name(const TensorSource& src, const WeightSpec& spec) {
  if (src.meta(spec.hf_name)) return spec.hf_name;
  for (const auto& alt : spec.alt_names) {
    if (src.meta(alt)) return alt;
  }
  return "";
}

void check_shape(const TensorSource& src, const std::string& name, const Shape& expected) {
  auto m = src.meta(name);
  if (!m) throw BadInput(src.file_of(name), name, "missing");
  if (m->shape != expected) {
    throw BadInput(src.file_of(name), name, "shape " + shape_str(m->shape) + " expected " + shape_str(expected));
  }
}

// Reads `name` and checks it holds exactly `count` values (a source whose meta and data disagree).
std::vector<float> read_checked(const TensorSource& src, const std::string& name, int64_t count) {
  std::vector<float> v = src.read_f32(name);
  if (static_cast<int64_t>(v.size()) != count) {
    throw BadInput(src.file_of(name), name,
                   "holds " + std::to_string(v.size()) + " values, expected " + std::to_string(count));
  }
  return v;
}

// Copies values (rounded to storage) into dst starting at element `offset`.
void store_rounded(const std::vector<float>& v, size_t first, size_t count, HostTensor& dst, size_t offset,
                   DType storage) {
  for (size_t i = 0; i < count; ++i) dst.data[offset + i] = round_to(storage, v[first + i]);
}

// Sizes a slot on first touch: (E, rows, cols) for expert slots, else the spec's shape.
void ensure_slot(HostTensor& t, const WeightSpec& spec, const ModelConfig& c) {
  if (!t.empty()) return;
  t.shape = spec.shape;
  if (spec.expert >= 0) t.shape.insert(t.shape.begin(), c.num_experts);
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  t.data.assign(static_cast<size_t>(n), 0.0f);
}

// transformers-5 fused experts of layer l, if src holds them: fills expert_gate/up/down, returns true.
bool load_fused_experts(const ModelConfig& c, const TensorSource& src, int l, ModelWeights& w, DType storage) {
  const std::string p = "model.layers." + std::to_string(l) + ".";
  std::string base = p + "mlp.experts.";
  if (!src.meta(base + "gate_up_proj") && c.arch == Arch::Mixtral) base = p + "block_sparse_moe.experts.";
  const std::string gu = base + "gate_up_proj", dn = base + "down_proj";
  if (!src.meta(gu)) return false;
  const int64_t E = c.num_experts, Im = c.moe_intermediate, H = c.hidden;
  check_shape(src, gu, {E, 2 * Im, H});
  check_shape(src, dn, {E, H, Im});
  LayerWeights& lw = w.layers[static_cast<size_t>(l)];
  const size_t per = static_cast<size_t>(Im * H);
  lw.expert_gate = HostTensor{{E, Im, H}, std::vector<float>(per * static_cast<size_t>(E))};
  lw.expert_up = HostTensor{{E, Im, H}, std::vector<float>(per * static_cast<size_t>(E))};
  std::vector<float> v = read_checked(src, gu, E * 2 * Im * H);
  for (size_t e = 0; e < static_cast<size_t>(E); ++e) {
    store_rounded(v, e * 2 * per, per, lw.expert_gate, e * per, storage);      // gate rows first
    store_rounded(v, e * 2 * per + per, per, lw.expert_up, e * per, storage);  // then up rows
  }
  v = read_checked(src, dn, E * H * Im);
  lw.expert_down = HostTensor{{E, H, Im}, std::vector<float>(v.size())};
  store_rounded(v, 0, v.size(), lw.expert_down, 0, storage);
  return true;
}

int layer_of_slot(const std::string& slot) {  // "layers.3.xxx" -> 3
  return std::stoi(slot.substr(7, slot.find('.', 7) - 7));
}

void load_one(const ModelConfig& c, const TensorSource& src, const WeightSpec& spec, ModelWeights& w,
              DType storage) {
  std::string name = find_name(src, spec);
  if (name.empty()) throw BadInput(src.file_of(spec.hf_name), spec.hf_name, "missing");
  check_shape(src, name, spec.shape);
  int64_t n = 1;
  for (int64_t d : spec.shape) n *= d;
  std::vector<float> v = read_checked(src, name, n);
  HostTensor* t = spec.target(w);
  ensure_slot(*t, spec, c);
  size_t offset = spec.expert >= 0 ? static_cast<size_t>(spec.expert) * static_cast<size_t>(n) : 0;
  store_rounded(v, 0, static_cast<size_t>(n), *t, offset, storage);
}

}  // namespace

ModelWeights load_weights(const ModelConfig& c, const TensorSource& src, DType storage) {
  ModelWeights w;
  w.storage = storage;
  w.layers.resize(static_cast<size_t>(c.layers));
  std::vector<bool> fused(static_cast<size_t>(c.layers), false);
  for (int l = 0; l < c.layers; ++l) {
    if (c.layer_is_moe(l)) fused[static_cast<size_t>(l)] = load_fused_experts(c, src, l, w, storage);
  }
  for (const WeightSpec& spec : weight_map(c)) {
    if (spec.expert >= 0 && fused[static_cast<size_t>(layer_of_slot(spec.slot))]) continue;
    load_one(c, src, spec, w, storage);
  }
  return w;
}

}  // namespace minfer
