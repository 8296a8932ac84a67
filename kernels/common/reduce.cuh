// kernels/common/reduce.cuh: fp32 sum reductions over a group of lanes, a warp and a block.
// Every lane of the warp must call group_sum / warp_sum (full-mask shuffles); every thread of the
// block must call block_sum (it synchronises).
#pragma once

namespace minfer::kern {

// Sum over aligned groups of G consecutive lanes (G a power of two, <= 32); every lane gets its group's sum.
template <int G>
__device__ __forceinline__ float group_sum(float v) {
  static_assert(G >= 1 && G <= 32 && (G & (G - 1)) == 0, "G must be a power of two <= 32");
#pragma unroll
  for (int off = G / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}

__device__ __forceinline__ float warp_sum(float v) { return group_sum<32>(v); }

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the sum.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int warps = static_cast<int>(blockDim.x) >> 5;
  v = warp_sum(v);
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  float t = lane < warps ? partial[lane] : 0.f;
  t = warp_sum(t);
  __syncthreads();  // partial may be reused by a later call
  return t;
}

}  // namespace minfer::kern
