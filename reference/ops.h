// reference/ops.h: the scalar reference of every kernel: the spec. Host only, double accumulation.
// Inputs are float arrays holding values already rounded to the storage dtype `dtype`; each op
// rounds its output to `dtype` (round_to in engine/core/dtype.h) at the points the kernel stores.
// Argument order follows the kernel's params struct (kernels/<op>.h).
// Legend: T tokens, V vocab, H hidden, R rows, I intermediate, nh/nkv heads, hd head_dim,
//         P positions, E experts, k experts per token.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/dtype.h"

namespace minfer::ref {

// out[t] = table[ids[t]]; an id outside [0, V) gives a row of zeros.
void embedding(DType dtype, const int32_t* ids /*(T)*/, const float* table /*(V,H)*/, float* out /*(T,H)*/,
               int64_t num_tokens, int64_t vocab, int64_t hidden);

// RMSNorm with optional fused residual add (see kernels/rmsnorm.h for the exact semantics).
// residual_in may be null; residual_out may alias residual_in; out may alias x.
void rmsnorm(DType dtype, const float* x /*(R,H)*/, const float* residual_in /*(R,H)|null*/,
             float* residual_out /*(R,H)|null*/, const float* weight /*(H)*/, float* out /*(R,H)*/,
             int64_t rows, int64_t hidden, double eps);

// cos/sin table in double for positions [0, P), pairs i < rotary_dim/2, with llama3 scaling when set.
// Layout (P, hd/2, 2). rope_inv_freq gives the (scaled) inverse frequencies used.
std::vector<double> rope_inv_freq(const ModelConfig& cfg);
std::vector<double> rope_cos_sin(const ModelConfig& cfg, int64_t positions);

// In-place RoPE (half-split layout) on q and k with optional per-head QK-norm before rotation;
// rounds once at the end (see kernels/rope.h). cos_sin is the double table above.
void rope(DType dtype, float* q /*(T,nh,hd) stride q_stride*/, float* k /*(T,nkv,hd) stride k_stride|null*/,
          int64_t q_stride, int64_t k_stride, const int32_t* positions /*(T)*/,
          const double* cos_sin /*(P,hd/2,2)*/, const float* q_norm /*(hd)|null*/,
          const float* k_norm /*(hd)|null*/, double norm_eps, int64_t num_tokens, int64_t max_positions,
          int heads, int kv_heads, int head_dim);

// out[r, j] = silu(gate_up[r, j]) * gate_up[r, I + j].
void swiglu(DType dtype, const float* gate_up /*(R,2I) stride in_stride*/, float* out /*(R,I) stride out_stride*/,
            int64_t rows, int64_t inter, int64_t in_stride, int64_t out_stride);

// y = x W^T (+ b): x (R, K), W (N, K), b (N)|null, y (R, N), rounded to dtype.
void linear(DType dtype, const float* x, const float* w, const float* b, float* y, int64_t rows, int64_t in,
            int64_t out);

// Attention for one sequence against its KV cache (GQA: query head h reads KV head h / (nh/nkv)).
// q (Tq, nh, hd); k, v (Tk, nkv, hd) hold the whole cache including the new tokens; the new
// tokens are the last Tq positions. causal: query i (absolute position Tk - Tq + i) sees keys <= it.
// Softmax scale 1/sqrt(hd). out (Tq, nh, hd), rounded to dtype.
void attention(DType dtype, const float* q, const float* k, const float* v, float* out, int64_t tq, int64_t tk,
               int heads, int kv_heads, int head_dim, bool causal, double scale);

// Router: logits (T, E) -> for each token the k chosen experts and their weights, by cfg's order
// (softmax->top-k with optional renormalisation, or top-k->softmax). Ties break to the lower index.
void moe_route(const float* logits /*(T,E)*/, int64_t tokens, int experts, int top_k, RouterOrder order,
               bool norm_topk_prob, int32_t* ids /*(T,k)*/, float* weights /*(T,k)*/);

}  // namespace minfer::ref
