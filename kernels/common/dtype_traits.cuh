// kernels/common/dtype_traits.cuh: device-side storage types (float, __half, __nv_bfloat16), their
// load/store to fp32, and Pack<T, N>: N elements moved as one access (16 bytes when N = 16/sizeof(T)).
// Math is always fp32; a value is rounded to its storage type once, when stored.
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

namespace minfer::kern {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_float(__nv_bfloat16 v) { return __bfloat162float(v); }

template <typename T> __device__ __forceinline__ T from_float(float v);
template <> __device__ __forceinline__ float from_float<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_float<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// N elements of T read or written as one aligned access.
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};

// Elements of T in one 16-byte access.
template <typename T>
inline constexpr int kVec16 = static_cast<int>(16 / sizeof(T));

// Unpack to fp32 / round and pack from fp32.
template <typename T, int N>
__device__ __forceinline__ void unpack(const Pack<T, N>& p, float (&f)[N]) {
#pragma unroll
  for (int j = 0; j < N; ++j) f[j] = to_float(p.v[j]);
}
template <typename T, int N>
__device__ __forceinline__ Pack<T, N> pack(const float (&f)[N]) {
  Pack<T, N> p;
#pragma unroll
  for (int j = 0; j < N; ++j) p.v[j] = from_float<T>(f[j]);
  return p;
}

// Host side: may a pointer be accessed as 16-byte vectors?
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

}  // namespace minfer::kern
