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

// One head's values in registers: lane l holds pairs i = l + 32 r (zero past hd / 2).
struct RopeRegs {
  float x0[kRopePairsPerLane], x1[kRopePairsPerLane];
};

// The loads of rope_head, split from its arithmetic so that a caller can issue them early (before the
// loads its other work waits on). src (hd); norm (hd) or null (then the factors are 1).
template <typename T>
__device__ __forceinline__ RopeRegs rope_load(const T* src, int hd) {
  const int half = hd / 2, lane = threadIdx.x & 31;
  RopeRegs x;
#pragma unroll
  for (int r = 0; r < kRopePairsPerLane; ++r) {
    const int i = lane + 32 * r;
    x.x0[r] = i < half ? to_float(src[i]) : 0.0f;
    x.x1[r] = i < half ? to_float(src[i + half]) : 0.0f;
  }
  return x;
}

// The cos, sin pairs of rope_head's lanes: x0 the cos, x1 the sin of pair i (cs: (hd / 2, 2) fp32).
__device__ __forceinline__ RopeRegs rope_load_cs(const float* cs, int hd) {
  const int half = hd / 2, lane = threadIdx.x & 31;
  RopeRegs c;
#pragma unroll
  for (int r = 0; r < kRopePairsPerLane; ++r) {
    const int i = lane + 32 * r;
    c.x0[r] = i < half ? cs[2 * i] : 0.0f;
    c.x1[r] = i < half ? cs[2 * i + 1] : 0.0f;
  }
  return c;
}

// rope_head's arithmetic on loaded values (x: the head, w: its norm or null's ones, has_norm: whether
// to norm at all, cs: rope_load_cs's pairs): dst (hd) and, where dst2 is set, dst2 get the same rounded
// values.
template <typename T>
__device__ __forceinline__ void rope_finish(const RopeRegs& x, const RopeRegs& w, bool has_norm, float eps,
                                            const RopeRegs& cs, int hd, T* dst, T* dst2 = nullptr) {
  const int half = hd / 2, lane = threadIdx.x & 31;
  float ss = 0.0f;
#pragma unroll
  for (int r = 0; r < kRopePairsPerLane; ++r) ss += x.x0[r] * x.x0[r] + x.x1[r] * x.x1[r];
  const float inv = has_norm ? 1.0f / sqrtf(rope_warp_sum(ss) / static_cast<float>(hd) + eps) : 1.0f;
#pragma unroll
  for (int r = 0; r < kRopePairsPerLane; ++r) {
    const int i = lane + 32 * r;
    if (i >= half) continue;
    float a = x.x0[r], b = x.x1[r];
    if (has_norm) {
      a = a * inv * w.x0[r];
      b = b * inv * w.x1[r];
    }
    const float c = cs.x0[r], s = cs.x1[r];
    const T lo = from_float<T>(a * c - b * s), hi = from_float<T>(b * c + a * s);
    dst[i] = lo, dst[i + half] = hi;
    if (dst2) dst2[i] = lo, dst2[i + half] = hi;
  }
}

// src (hd) -> dst (hd), rounded once; norm (hd) or null; cs (hd / 2, 2): fp32 cos, sin of the position.
// Called by all 32 lanes of a warp (the norm's sum is a warp reduction).
template <typename T>
__device__ void rope_head(const T* src, T* dst, const T* norm, float eps, const float* cs, int hd) {
  const RopeRegs x = rope_load<T>(src, hd);
  const RopeRegs w = norm ? rope_load<T>(norm, hd) : RopeRegs{};
  rope_finish<T>(x, w, norm != nullptr, eps, rope_load_cs(cs, hd), hd, dst);
}

}  // namespace minfer::kern
