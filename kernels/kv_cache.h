// kernels/kv_cache.h: the fused step between the QKV projection and attention. Versions: v1 (one
// block per token, one warp per head). From the fused projection row [q | k | v] of each token:
// q and k get the optional per-head QK-norm (qwen3) and RoPE (half-split, as kernels/rope.h), q is
// written to q_out, k and v are written into the KV cache at (slot, position). One rounding for q
// and k at the end, as ref::rope; v is copied unchanged (it was rounded by the projection).
// T tokens, nh/nkv heads, hd head_dim (even, <= 256), P table positions, C cache capacity.
// Reference: ref::rope on q and k, then the cache append of reference/model.cpp.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct QkvRopeParams {
  DType dtype = DType::BF16;
  const void* qkv = nullptr;           // (T, nh*hd + 2*nkv*hd): [q | k | v] per token
  void* q_out = nullptr;               // (T, nh, hd)
  void* k_cache = nullptr;             // (slots, C, nkv, hd) this layer
  void* v_cache = nullptr;             // (slots, C, nkv, hd)
  const int32_t* positions = nullptr;  // (T) position of each token (its row in the cache)
  const int32_t* token_slot = nullptr; // (T) cache slot of each token; < 0: padding (q row zeroed, nothing cached)
  const float* cos_sin = nullptr;      // (P, hd/2, 2) fp32 cos, sin
  const void* q_norm = nullptr;        // (hd) or null
  const void* k_norm = nullptr;        // (hd) or null
  float norm_eps = 1e-6f;
  int64_t num_tokens = 0;              // T
  int64_t max_positions = 0;           // P; a position outside [0, min(P, C)) is treated as padding
  int64_t capacity = 0;                // C
  int heads = 0;                       // nh
  int kv_heads = 0;                    // nkv
  int head_dim = 0;                    // hd
};

Status qkv_rope_cache_forward(const QkvRopeParams& p, cudaStream_t stream);

// After a decode step (inside the captured graph): each live row (slot >= 0) moves one position on:
// positions[b] += 1, cache_lens[b] += 1. Padding rows are left alone. B rows.
struct DecodeAdvanceParams {
  int32_t* positions = nullptr;     // (B) position of the next token
  int32_t* cache_lens = nullptr;    // (B) cached tokens once the next token is appended
  const int32_t* slot = nullptr;    // (B) cache slot, < 0 for padding or finished rows
  int rows = 0;                     // B
};

Status decode_advance_forward(const DecodeAdvanceParams& p, cudaStream_t stream);

}  // namespace minfer
