// kernels/common/rope_head.cuh: one warp's QK-norm (optional) and RoPE (half-split) of one head,
// the arithmetic of the step between the QKV projection and attention (kernels/kv_cache.h). Shared by
// qkv_rope_cache and decode attention's fused prologue (kernels/decode_attention.h), so that both
// give the same bits. Lane l holds pairs i = l + 32 r (r < kRopePairsPerLane) of the head: hd <= 256.
#pragma once
#include "kernels/common/dtype_traits.cuh"

namespace minfer::kern {

constexpr int kRopePairsPerLane = 4;  // hd / 2 <= 128

__device__ __forceinline__ float rope_warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// src (hd) -> dst (hd), rounded once; norm (hd) or null; cs (hd / 2, 2): fp32 cos, sin of the position.
// Called by all 32 lanes of a warp (the norm's sum is a warp reduction).
template <typename T>
__device__ void rope_head(const T* src, T* dst, const T* norm, float eps, const float* cs, int hd) {
  const int half = hd / 2, lane = threadIdx.x & 31;
  float x0[kRopePairsPerLane], x1[kRopePairsPerLane];
  float ss = 0.0f;
  for (int r = 0; r < kRopePairsPerLane; ++r) {
    const int i = lane + 32 * r;
    x0[r] = i < half ? to_float(src[i]) : 0.0f;
    x1[r] = i < half ? to_float(src[i + half]) : 0.0f;
    ss += x0[r] * x0[r] + x1[r] * x1[r];
  }
  const float inv = norm ? 1.0f / sqrtf(rope_warp_sum(ss) / static_cast<float>(hd) + eps) : 1.0f;
  for (int r = 0; r < kRopePairsPerLane; ++r) {
    const int i = lane + 32 * r;
    if (i >= half) continue;
    float a = x0[r], b = x1[r];
    if (norm) {
      a = a * inv * to_float(norm[i]);
      b = b * inv * to_float(norm[i + half]);
    }
    const float c = cs[2 * i], s = cs[2 * i + 1];
    dst[i] = from_float<T>(a * c - b * s);
    dst[i + half] = from_float<T>(b * c + a * s);
  }
}

}  // namespace minfer::kern
