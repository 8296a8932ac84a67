// kernels/attention.cu: simple causal attention over a contiguous KV cache (see attention.h).
// v1: grid (T, nh), 128 threads. Keys in chunks of 128: each thread scores one key (fp32 dot
// product), the block keeps a running max and sum (online softmax), and thread d accumulates output
// dims d and d + 128 over the chunk's probabilities. Output rounded once.
#include "kernels/attention.h"

#include <cmath>

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"

namespace minfer {
namespace {

constexpr int kThreads = 128;
constexpr int kChunk = kThreads;
constexpr int kMaxHeadDim = 2 * kThreads;

// Block-wide max (is_max) or sum of v; every thread gets the result. red: (kThreads / 32) floats.
__device__ float block_reduce(float v, bool is_max, float* red) {
  for (int o = 16; o > 0; o >>= 1) {
    const float w = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, w) : v + w;
  }
  __syncthreads();  // red is free (its last readers are done)
  if ((threadIdx.x & 31) == 0) red[threadIdx.x >> 5] = v;
  __syncthreads();
  float r = red[0];
  for (int i = 1; i < kThreads / 32; ++i) r = is_max ? fmaxf(r, red[i]) : r + red[i];
  return r;
}

// Sequence owning query row `row` (cu_seqlens (B+1)), or -1 for a row past the last sequence.
__device__ int find_seq(const int32_t* cu, int batch, int64_t row) {
  int lo = 0, hi = batch;  // invariant: cu[lo] <= row < cu[hi]
  if (row >= cu[batch]) return -1;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (cu[mid] <= row) lo = mid; else hi = mid;
  }
  return lo;
}

template <typename T>
__global__ void attention_kernel(AttentionParams p, float scale) {
  __shared__ float qs[kMaxHeadDim];  // (hd) this query head in fp32
  __shared__ float ps[kChunk];       // (chunk) probabilities
  __shared__ float red[kThreads / 32];
  const int64_t row = blockIdx.x;
  const int h = blockIdx.y, hd = p.head_dim, tid = threadIdx.x;
  T* out = static_cast<T*>(p.out) + (row * p.heads + h) * hd;  // (hd)
  const int b = find_seq(p.cu_seqlens, p.batch, row);
  const int slot = b >= 0 ? p.slot[b] : -1;
  if (slot < 0) {
    for (int d = tid; d < hd; d += kThreads) out[d] = kern::from_float<T>(0.0f);
    return;
  }
  const int tq = p.cu_seqlens[b + 1] - p.cu_seqlens[b];
  const int nkeys = p.cache_lens[b] - tq + static_cast<int>(row - p.cu_seqlens[b]) + 1;
  const T* q = static_cast<const T*>(p.q) + (row * p.heads + h) * hd;  // (hd)
  for (int d = tid; d < hd; d += kThreads) qs[d] = kern::to_float(q[d]);
  __syncthreads();
  const int kvh = h / (p.heads / p.kv_heads);
  const int64_t stride = static_cast<int64_t>(p.kv_heads) * hd;  // elements between cached tokens
  const int64_t base = static_cast<int64_t>(slot) * p.capacity * stride + static_cast<int64_t>(kvh) * hd;
  const T* kc = static_cast<const T*>(p.k_cache) + base;  // (C, ., hd) with token stride `stride`
  const T* vc = static_cast<const T*>(p.v_cache) + base;
  float m = -INFINITY, l = 0.0f, acc0 = 0.0f, acc1 = 0.0f;
  for (int j0 = 0; j0 < nkeys; j0 += kChunk) {
    const int j = j0 + tid;
    float s = -INFINITY;
    if (j < nkeys) {
      float dot = 0.0f;
      for (int d = 0; d < hd; ++d) dot += qs[d] * kern::to_float(kc[j * stride + d]);
      s = dot * scale;
    }
    const float mnew = fmaxf(m, block_reduce(s, true, red));
    const float pj = j < nkeys ? expf(s - mnew) : 0.0f;
    ps[tid] = pj;
    const float csum = block_reduce(pj, false, red);  // its barriers publish ps
    const float corr = expf(m - mnew);
    l = l * corr + csum;
    acc0 *= corr;
    acc1 *= corr;
    const int n = min(kChunk, nkeys - j0);
    for (int jj = 0; jj < n; ++jj) {
      const T* vr = vc + (j0 + jj) * stride;  // (hd)
      if (tid < hd) acc0 += ps[jj] * kern::to_float(vr[tid]);
      if (tid + kThreads < hd) acc1 += ps[jj] * kern::to_float(vr[tid + kThreads]);
    }
    m = mnew;
  }
  if (tid < hd) out[tid] = kern::from_float<T>(acc0 / l);
  if (tid + kThreads < hd) out[tid + kThreads] = kern::from_float<T>(acc1 / l);
}

}  // namespace

Status attention_forward(const AttentionParams& p, cudaStream_t stream) {
  MINFER_REQUIRE(p.head_dim > 0 && p.head_dim <= kMaxHeadDim, "head_dim",
                 "must be in [1, 256], got " + std::to_string(p.head_dim));
  MINFER_REQUIRE(p.heads > 0 && p.kv_heads > 0 && p.heads % p.kv_heads == 0, "kv_heads",
                 "must divide heads (" + std::to_string(p.heads) + "), got " + std::to_string(p.kv_heads));
  MINFER_REQUIRE(p.batch > 0 && p.num_tokens > 0 && p.capacity > 0, "batch", "batch, tokens, capacity must be > 0");
  MINFER_REQUIRE(p.q && p.k_cache && p.v_cache && p.out && p.cu_seqlens && p.cache_lens && p.slot, "q",
                 "every pointer must be set");
  MINFER_REQUIRE(p.num_tokens < (1ll << 31), "num_tokens", "must fit the grid");
  const dim3 grid(static_cast<unsigned>(p.num_tokens), static_cast<unsigned>(p.heads));
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_dim)));
  MINFER_DISPATCH_DTYPE(p.dtype, T, {
    attention_kernel<T><<<grid, kThreads, 0, stream>>>(p, scale);
    MINFER_LAUNCH_RETURN();
    return Status::ok();
  });
}

}  // namespace minfer
