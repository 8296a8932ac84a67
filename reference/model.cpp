// reference/model.cpp: the full decoder forward of every family (llama, qwen2, qwen3, qwen3_moe,
// mixtral, olmoe) on the scalar reference ops, with a per-sequence KV cache and ragged batches.
// Legend: T new tokens of one sequence, Tk tokens in its cache, H hidden, V vocab, I intermediate,
//         Im moe_intermediate, nh/nkv heads, hd head_dim, E experts, k experts per token.
//
// Layer: h = x + o_proj(attn(norm1(x))); out = h + ffn(norm2(h)). Final RMSNorm, then the LM head
// (embed_tokens when tied).
//
// Rounding points: every value below is rounded to `act` when produced (the engine stores each of
// them in an `act` buffer, so it rounds at exactly these points); everything inside one op is double.
//   1. embedding rows                      7. o_proj output
//   2. norm1 output (attn_norm)            8. residual sum h = x + o_proj   (fused-norm residual_out)
//   3. q, k, v projections (bias included) 9. norm2 output (ffn_norm)
//   4. olmoe only: the full-width q_norm / k_norm outputs (an RMSNorm of the whole projection)
//   5. q and k after RoPE; for qwen3/qwen3_moe the per-head QK-norm is fused into the RoPE op and
//      not rounded in between. The KV cache holds k (after RoPE) and v in `act`.
//   6. attention output (Tq, nh*hd)
//  dense FFN: 10. gate and up projections, 11. SwiGLU output, 12. down projection
//  MoE FFN:   10. router logits (E), 11. routing weights (HF casts them to the hidden dtype),
//             12. per expert: gate/up projections, SwiGLU output, down projection,
//             13. the combine sum_j w_j * down_j (one double sum over the k experts, rounded once)
//  14. residual sum out = h + ffn        15. final norm output        16. logits
#include "reference/model.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/core/error.h"
#include "reference/ops.h"

namespace minfer::ref {
namespace {

using Vec = std::vector<float>;

// What every layer function needs: config, weights, activation dtype.
struct Ctx {
  const ModelConfig& cfg;
  const ModelWeights& w;
  DType act;
};

const char* kWeightsName = "reference model weights";

void need(const HostTensor& t, int64_t n, const std::string& name) {
  if (t.numel() != n)
    throw BadInput(kWeightsName, name, "expected " + std::to_string(n) + " values, got " + std::to_string(t.numel()));
}

int64_t moe_inter(const ModelConfig& cfg) { return cfg.moe_intermediate > 0 ? cfg.moe_intermediate : cfg.intermediate; }

void check_attention_weights(const ModelConfig& c, const LayerWeights& lw, const std::string& p) {
  const int64_t H = c.hidden, q = c.q_dim(), kv = c.kv_dim();
  need(lw.attn_norm, H, p + "attn_norm");
  need(lw.wq, q * H, p + "wq");
  need(lw.wk, kv * H, p + "wk");
  need(lw.wv, kv * H, p + "wv");
  need(lw.wo, H * q, p + "wo");
  need(lw.bq, c.attention_bias ? q : 0, p + "bq");
  need(lw.bk, c.attention_bias ? kv : 0, p + "bk");
  need(lw.bv, c.attention_bias ? kv : 0, p + "bv");
  const bool full = c.qk_norm == QkNorm::Full, none = c.qk_norm == QkNorm::None;
  need(lw.q_norm, none ? 0 : (full ? q : c.head_dim), p + "q_norm");
  need(lw.k_norm, none ? 0 : (full ? kv : c.head_dim), p + "k_norm");
}

void check_ffn_weights(const ModelConfig& c, const LayerWeights& lw, int layer, const std::string& p) {
  const int64_t H = c.hidden;
  need(lw.ffn_norm, H, p + "ffn_norm");
  if (c.layer_is_moe(layer)) {
    const int64_t E = c.num_experts, Im = moe_inter(c);
    need(lw.router, E * H, p + "router");
    need(lw.expert_gate, E * Im * H, p + "expert_gate");
    need(lw.expert_up, E * Im * H, p + "expert_up");
    need(lw.expert_down, E * H * Im, p + "expert_down");
  } else {
    const int64_t I = c.intermediate;
    need(lw.w_gate, I * H, p + "w_gate");
    need(lw.w_up, I * H, p + "w_up");
    need(lw.w_down, H * I, p + "w_down");
  }
}

// Every tensor the forward reads has the size cfg implies (BadInput naming the slot otherwise).
void check_weights(const ModelConfig& c, const ModelWeights& w) {
  if (static_cast<int>(w.layers.size()) != c.layers)
    throw BadInput(kWeightsName, "layers", "expected " + std::to_string(c.layers) + " layers, got " +
                                               std::to_string(w.layers.size()));
  const int64_t VH = static_cast<int64_t>(c.vocab) * c.hidden;
  need(w.embed, VH, "embed");
  need(w.final_norm, c.hidden, "final_norm");
  if (!c.tie_embeddings) need(w.lm_head, VH, "lm_head");
  for (int l = 0; l < c.layers; ++l) {
    const std::string p = "layers." + std::to_string(l) + ".";
    check_attention_weights(c, w.layers[l], p);
    check_ffn_weights(c, w.layers[l], l, p);
  }
}

const float* ptr_or_null(const HostTensor& t) { return t.empty() ? nullptr : t.data.data(); }

// y (R, N) = x (R, K) W^T (+ b), rounded to act.
Vec project(const Ctx& c, const Vec& x, int64_t rows, int64_t in, const HostTensor& w, const HostTensor* b,
            int64_t out) {
  Vec y(static_cast<size_t>(rows * out));
  linear(c.act, x.data(), w.data.data(), b ? ptr_or_null(*b) : nullptr, y.data(), rows, in, out);
  return y;
}

// RMSNorm of `rows` rows of width n, rounded to act.
Vec norm(const Ctx& c, const Vec& x, int64_t rows, int64_t n, const HostTensor& w) {
  Vec y(x.size());
  rmsnorm(c.act, x.data(), nullptr, nullptr, w.data.data(), y.data(), rows, n, c.cfg.rms_eps);
  return y;
}

// a + b elementwise, rounded to act (a residual sum).
Vec add(const Ctx& c, const Vec& a, const Vec& b) {
  Vec y(a.size());
  for (size_t i = 0; i < a.size(); ++i) y[i] = round_to(c.act, static_cast<float>(static_cast<double>(a[i]) + b[i]));
  return y;
}

// SwiGLU FFN on rows of x (R, H): down(silu(gate x) * up x), weights gate/up (I, H), down (H, I).
Vec swiglu_ffn(const Ctx& c, const float* x /*(R,H)*/, int64_t rows, int64_t inter, const float* wg /*(I,H)*/,
               const float* wu /*(I,H)*/, const float* wd /*(H,I)*/) {
  const int64_t H = c.cfg.hidden;
  Vec gate(static_cast<size_t>(rows * inter)), up(gate.size()), gate_up(2 * gate.size());  // (R,I), (R,I), (R,2I)
  linear(c.act, x, wg, nullptr, gate.data(), rows, H, inter);
  linear(c.act, x, wu, nullptr, up.data(), rows, H, inter);
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(gate.begin() + r * inter, inter, gate_up.begin() + 2 * r * inter);
    std::copy_n(up.begin() + r * inter, inter, gate_up.begin() + (2 * r + 1) * inter);
  }
  Vec act(gate.size());  // (R, I)
  swiglu(c.act, gate_up.data(), act.data(), rows, inter, 2 * inter, inter);
  Vec y(static_cast<size_t>(rows * H));  // (R, H)
  linear(c.act, act.data(), wd, nullptr, y.data(), rows, inter, H);
  return y;
}

// MoE FFN: route each token to k experts, combine their SwiGLU outputs weighted (rounded once).
Vec moe_ffn(const Ctx& c, const LayerWeights& lw, const Vec& x /*(T,H)*/, int64_t T) {
  const ModelConfig& cfg = c.cfg;
  const int64_t H = cfg.hidden, Im = moe_inter(cfg), E = cfg.num_experts, k = cfg.top_k;
  const Vec logits = project(c, x, T, H, lw.router, nullptr, E);  // (T, E)
  std::vector<int32_t> ids(static_cast<size_t>(T * k));
  Vec wts(ids.size());  // (T, k)
  moe_route(logits.data(), T, static_cast<int>(E), static_cast<int>(k), cfg.router_order, cfg.norm_topk_prob,
            ids.data(), wts.data());
  Vec y(static_cast<size_t>(T * H));
  std::vector<double> acc(static_cast<size_t>(H));
  for (int64_t t = 0; t < T; ++t) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t j = 0; j < k; ++j) {
      const int64_t e = ids[t * k + j];
      const double wj = round_to(c.act, wts[t * k + j]);
      const Vec out = swiglu_ffn(c, x.data() + t * H, 1, Im, lw.expert_gate.data.data() + e * Im * H,
                                 lw.expert_up.data.data() + e * Im * H, lw.expert_down.data.data() + e * H * Im);
      for (int64_t i = 0; i < H; ++i) acc[i] += wj * out[i];
    }
    for (int64_t i = 0; i < H; ++i) y[t * H + i] = round_to(c.act, static_cast<float>(acc[i]));
  }
  return y;
}

Vec ffn(const Ctx& c, int layer, const Vec& x /*(T,H)*/, int64_t T) {
  const LayerWeights& lw = c.w.layers[layer];
  if (c.cfg.layer_is_moe(layer)) return moe_ffn(c, lw, x, T);
  return swiglu_ffn(c, x.data(), T, c.cfg.intermediate, lw.w_gate.data.data(), lw.w_up.data.data(),
                    lw.w_down.data.data());
}

// Appends `x` (T, nkv*hd) to a per-layer cache vector (Tk, nkv*hd).
void append(std::vector<float>& cache, const Vec& x) { cache.insert(cache.end(), x.begin(), x.end()); }

// Everything attention needs about the sequence: its positions and the shared cos/sin table.
struct SeqView {
  std::vector<float>* k_cache;     // (Tk, nkv*hd) after append
  std::vector<float>* v_cache;     // (Tk, nkv*hd)
  const int32_t* positions;        // (T)
  const std::vector<double>* cos_sin;  // (P, hd/2, 2)
  int64_t table_positions;         // P
};

// Self-attention block for one sequence's T new tokens: returns o_proj(attn(x)) (T, H).
Vec attention_block(const Ctx& c, const LayerWeights& lw, const Vec& x /*(T,H)*/, int64_t T, const SeqView& s) {
  const ModelConfig& cfg = c.cfg;
  const int64_t H = cfg.hidden, qd = cfg.q_dim(), kvd = cfg.kv_dim();
  Vec q = project(c, x, T, H, lw.wq, &lw.bq, qd);   // (T, nh*hd)
  Vec k = project(c, x, T, H, lw.wk, &lw.bk, kvd);  // (T, nkv*hd)
  Vec v = project(c, x, T, H, lw.wv, &lw.bv, kvd);  // (T, nkv*hd)
  if (cfg.qk_norm == QkNorm::Full) {  // olmoe: RMSNorm of the whole projection, before heads and RoPE
    q = norm(c, q, T, qd, lw.q_norm);
    k = norm(c, k, T, kvd, lw.k_norm);
  }
  const bool per_head = cfg.qk_norm == QkNorm::PerHead;
  rope(c.act, q.data(), k.data(), qd, kvd, s.positions, s.cos_sin->data(), per_head ? lw.q_norm.data.data() : nullptr,
       per_head ? lw.k_norm.data.data() : nullptr, cfg.rms_eps, T, s.table_positions, cfg.heads, cfg.kv_heads,
       cfg.head_dim);
  append(*s.k_cache, k);
  append(*s.v_cache, v);
  const int64_t Tk = static_cast<int64_t>(s.k_cache->size()) / kvd;
  Vec o(static_cast<size_t>(T * qd));  // (T, nh*hd)
  attention(c.act, q.data(), s.k_cache->data(), s.v_cache->data(), o.data(), T, Tk, cfg.heads, cfg.kv_heads,
            cfg.head_dim, true, 1.0 / std::sqrt(static_cast<double>(cfg.head_dim)));
  return project(c, o, T, qd, lw.wo, nullptr, H);
}

// One decoder layer on x (T, H); returns the layer's output (T, H).
Vec layer_forward(const Ctx& c, int layer, const Vec& x, int64_t T, const SeqView& s) {
  const LayerWeights& lw = c.w.layers[layer];
  const int64_t H = c.cfg.hidden;
  const Vec a = norm(c, x, T, H, lw.attn_norm);
  const Vec h = add(c, x, attention_block(c, lw, a, T, s));
  const Vec f = ffn(c, layer, norm(c, h, T, H, lw.ffn_norm), T);
  return add(c, h, f);
}

}  // namespace

Model::Model(const ModelConfig& cfg, const ModelWeights& w, DType act) : cfg_(cfg), w_(w), act_(act) {
  check_weights(cfg_, w_);
  reset(1);
}

void Model::reset(int batch) {
  if (batch < 0) throw UsageError("reference model: batch must be >= 0, got " + std::to_string(batch));
  seqs_.assign(static_cast<size_t>(batch), SeqCache{});
  for (SeqCache& s : seqs_) {
    s.k.assign(static_cast<size_t>(cfg_.layers), {});
    s.v.assign(static_cast<size_t>(cfg_.layers), {});
  }
}

int64_t Model::cached(int seq) const { return seqs_.at(static_cast<size_t>(seq)).len; }

std::vector<float> Model::forward(const std::vector<std::vector<int32_t>>& tokens) {
  if (tokens.size() != seqs_.size())
    throw UsageError("reference model: forward got " + std::to_string(tokens.size()) + " sequences, batch is " +
                     std::to_string(seqs_.size()));
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int64_t end = seqs_[i].len + static_cast<int64_t>(tokens[i].size());
    if (cfg_.max_position > 0 && end > cfg_.max_position)
      throw UsageError("reference model: sequence " + std::to_string(i) + " would reach " + std::to_string(end) +
                       " tokens, past max_position_embeddings " + std::to_string(cfg_.max_position));
  }
  std::vector<float> logits;  // (sum T_i, V)
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i].empty()) continue;
    const std::vector<float> l = forward_one(static_cast<int>(i), tokens[i]);
    logits.insert(logits.end(), l.begin(), l.end());
  }
  return logits;
}

void Model::ensure_table(int64_t positions) {
  if (positions <= cos_sin_positions_) return;
  cos_sin_positions_ = std::max({positions, 2 * cos_sin_positions_, int64_t{64}});
  cos_sin_ = rope_cos_sin(cfg_, cos_sin_positions_);
}

std::vector<float> Model::forward_one(int seq, const std::vector<int32_t>& ids) {
  SeqCache& sc = seqs_[static_cast<size_t>(seq)];
  const int64_t T = static_cast<int64_t>(ids.size()), H = cfg_.hidden, V = cfg_.vocab;
  ensure_table(sc.len + T);
  std::vector<int32_t> positions(static_cast<size_t>(T));  // (T)
  for (int64_t t = 0; t < T; ++t) positions[t] = static_cast<int32_t>(sc.len + t);
  const Ctx c{cfg_, w_, act_};
  Vec x(static_cast<size_t>(T * H));  // (T, H)
  embedding(act_, ids.data(), w_.embed.data.data(), x.data(), T, V, H);
  for (int l = 0; l < cfg_.layers; ++l) {
    const SeqView s{&sc.k[l], &sc.v[l], positions.data(), &cos_sin_, cos_sin_positions_};
    x = layer_forward(c, l, x, T, s);
  }
  sc.len += T;
  const Vec n = norm(c, x, T, H, w_.final_norm);
  const HostTensor& head = cfg_.tie_embeddings ? w_.embed : w_.lm_head;
  return project(c, n, T, H, head, nullptr, V);  // (T, V)
}

std::vector<int32_t> Model::generate_greedy(const std::vector<int32_t>& prompt, int max_new_tokens) {
  if (prompt.empty()) throw UsageError("reference model: generate needs a non-empty prompt");
  reset(1);
  std::vector<int32_t> out;
  std::vector<float> logits = forward({prompt});
  const int64_t V = cfg_.vocab;
  for (int i = 0; i < max_new_tokens; ++i) {
    const float* last = logits.data() + static_cast<int64_t>(logits.size()) - V;  // (V)
    const int32_t next = static_cast<int32_t>(std::max_element(last, last + V) - last);  // ties: lowest id
    out.push_back(next);
    if (next == cfg_.eos_token_id || i + 1 == max_new_tokens) break;
    logits = forward({{next}});
  }
  return out;
}

}  // namespace minfer::ref
