// kernels/rope.h: rotary position embedding in HF's half-split layout (pairs (i, i + hd/2)),
// optionally preceded by a per-head RMSNorm of q and k (Qwen3 QK-norm), in place on q and k.
// Versions: v1 (one warp per (token, head), fp32 math, cos/sin from a precomputed table).
// T = tokens, nh = query heads, nkv = KV heads, hd = head_dim, P = table positions.
// For each head vector v (hd values): if norm weight given, v = v / sqrt(mean(v^2) + eps) * w
// (kept in fp32), then for i < hd/2: (v[i], v[i+hd/2]) <- (v[i]*c - v[i+hd/2]*s, v[i+hd/2]*c + v[i]*s)
// with c = cos_sin[pos][i][0], s = cos_sin[pos][i][1]; rounded to dtype once at the end.
// The table is built on the host in double (llama3 scaling included) and stored as fp32, so the
// angles are exact to fp32 at any position. Reference: ref::rope (same argument order).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct RopeParams {
  DType dtype = DType::BF16;        // storage dtype of q, k and the norm weights
  void* q = nullptr;                // (T, nh, hd) with token stride q_stride (elements)
  void* k = nullptr;                // (T, nkv, hd) with token stride k_stride (elements); may be null
  int64_t q_stride = 0;             // elements between consecutive tokens of q (>= nh*hd)
  int64_t k_stride = 0;             // elements between consecutive tokens of k (>= nkv*hd)
  const int32_t* positions = nullptr;  // (T) position of each token, in [0, P)
  const float* cos_sin = nullptr;   // (P, hd/2, 2) fp32 cos, sin
  const void* q_norm = nullptr;     // (hd) or null: per-head RMSNorm weight applied before rotation
  const void* k_norm = nullptr;     // (hd) or null
  float norm_eps = 1e-6f;
  int64_t num_tokens = 0;           // T
  int64_t max_positions = 0;        // P
  int heads = 0;                    // nh
  int kv_heads = 0;                 // nkv
  int head_dim = 0;                 // hd: 64, 128 or 256 (dispatch names any other value it refuses)
};

Status rope_forward(const RopeParams& p, cudaStream_t stream);

}  // namespace minfer
