// kernels/kv_cache.cu: QK-norm + RoPE on q and k, and the KV cache write (see kv_cache.h).
// v2: grid (T, ceil((nh + 2*nkv) / 4)), 128 threads; warp w of block (t, y) takes head 4y + w of
// the nh + 2*nkv heads of token t (q heads, then k heads, then v heads): one head per warp (the
// arithmetic in kernels/common/rope_head.cuh, shared with decode attention's fused prologue), so a decode
// step (T = batch) has every head's loads in flight at once (v1, one block per token looping over the
// heads, was ~11 us per layer at T = 1, H200). Lane l holds pairs i = l + 32 r (r < 4) of its head.
// Also the decode position advance (one thread per row).
#include "kernels/kv_cache.h"

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/pdl.cuh"
#include "kernels/common/rope_head.cuh"

namespace minfer {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kPairsPerLane = kern::kRopePairsPerLane;  // hd/2 <= 128

template <typename T>
__global__ void qkv_rope_cache_kernel(QkvRopeParams p) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  const int64_t t = blockIdx.x;
  const int hd = p.head_dim, nh = p.heads, nkv = p.kv_heads, lane = threadIdx.x & 31;
  const int64_t width = static_cast<int64_t>(nh + 2 * nkv) * hd;
  const T* row = static_cast<const T*>(p.qkv) + t * width;  // (nh + 2 nkv, hd)
  T* q_out = static_cast<T*>(p.q_out) + t * nh * hd;        // (nh, hd)
  const int slot = p.token_slot[t];
  const int pos = p.positions[t];
  const bool live = slot >= 0 && pos >= 0 && pos < p.max_positions && pos < p.capacity;
  const int64_t cache_row = live ? (static_cast<int64_t>(slot) * p.capacity + pos) * nkv * hd : 0;
  const float* cs = p.cos_sin + (live ? static_cast<int64_t>(pos) * hd : 0);  // (hd/2, 2)
  const int u = static_cast<int>(blockIdx.y) * kWarps + (threadIdx.x >> 5);
  if (u < nh + 2 * nkv) {
    const T* src = row + static_cast<int64_t>(u) * hd;
    if (!live) {
      if (u < nh)
        for (int d = lane; d < hd; d += 32) q_out[u * hd + d] = kern::from_float<T>(0.0f);
    } else if (u < nh) {
      kern::rope_head<T>(src, q_out + u * hd, static_cast<const T*>(p.q_norm), p.norm_eps, cs, hd);
    } else if (u < nh + nkv) {
      T* dst = static_cast<T*>(p.k_cache) + cache_row + static_cast<int64_t>(u - nh) * hd;
      kern::rope_head<T>(src, dst, static_cast<const T*>(p.k_norm), p.norm_eps, cs, hd);
    } else {
      T* dst = static_cast<T*>(p.v_cache) + cache_row + static_cast<int64_t>(u - nh - nkv) * hd;
      for (int d = lane; d < hd; d += 32) dst[d] = src[d];
    }
  }
}

__global__ void decode_advance_kernel(DecodeAdvanceParams p) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  const int b = blockIdx.x * blockDim.x + threadIdx.x;
  if (b >= p.rows || p.slot[b] < 0) return;
  p.positions[b] += 1;
  p.cache_lens[b] += 1;
}

}  // namespace

Status decode_advance_forward(const DecodeAdvanceParams& p, cudaStream_t stream) {
  MINFER_REQUIRE(p.rows > 0 && p.positions && p.cache_lens && p.slot, "rows", "rows > 0 and every pointer set");
  MINFER_CUDA_RETURN(kern::launch_pdl(decode_advance_kernel, kern::blocks_for(p.rows, 256), 256, 0, stream, p));
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

Status qkv_rope_cache_forward(const QkvRopeParams& p, cudaStream_t stream) {
  MINFER_REQUIRE(p.head_dim > 0 && p.head_dim % 2 == 0 && p.head_dim <= 2 * 32 * kPairsPerLane, "head_dim",
                 "must be even and at most 256, got " + std::to_string(p.head_dim));
  MINFER_REQUIRE(p.heads > 0 && p.kv_heads > 0 && p.heads + 2 * p.kv_heads <= 65535 * kWarps, "heads",
                 "heads and kv_heads must be positive, heads + 2 * kv_heads at most " + std::to_string(65535 * kWarps));
  MINFER_REQUIRE(p.num_tokens > 0 && p.num_tokens < (1ll << 31), "num_tokens",
                 "must be in [1, 2^31), got " + std::to_string(p.num_tokens));
  MINFER_REQUIRE(p.qkv && p.q_out && p.k_cache && p.v_cache && p.positions && p.token_slot && p.cos_sin, "qkv",
                 "every pointer except the norm weights must be set");
  MINFER_DISPATCH_DTYPE(p.dtype, T, {
    const unsigned units = static_cast<unsigned>((p.heads + 2 * p.kv_heads + kWarps - 1) / kWarps);
    const dim3 grid(static_cast<unsigned>(p.num_tokens), units);
    MINFER_CUDA_RETURN(kern::launch_pdl(qkv_rope_cache_kernel<T>, grid, kThreads, 0, stream, p));
    MINFER_LAUNCH_RETURN();
    return Status::ok();
  });
}

}  // namespace minfer
