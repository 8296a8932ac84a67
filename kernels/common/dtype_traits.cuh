// kernels/common/dtype_traits.cuh: device-side storage types (float, __half, __nv_bfloat16), their
// load/store to fp32, and Pack<T, N>: N elements moved as one access (16 bytes when N = 16/sizeof(T)),
// unpacked to fp32 (widen: bf16 by bit operations). Host side: alignment, and a device attribute.
// Math is always fp32; a value is rounded to its storage type once, when stored.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

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

// unpack, with bf16 widened by bit operations (the library conversion costs registers in the GEMVs).
template <typename T, typename P, int V>
__device__ __forceinline__ void widen(const P& p, float (&f)[V]) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    uint32_t w[V / 2];
    memcpy(w, &p, sizeof w);
#pragma unroll
    for (int k = 0; k < V / 2; ++k) {
      f[2 * k] = __uint_as_float(w[k] << 16);
      f[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
    }
  } else {
    unpack(p, f);
  }
}

// Host side: may a pointer be accessed as 16-byte vectors?
inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// An attribute of the current device, or `fallback` when it cannot be read (no device).
inline int device_attribute(cudaDeviceAttr a, int fallback) {
  int dev = 0, v = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) return fallback;
  return v;
}

}  // namespace minfer::kern
