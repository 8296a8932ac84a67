// kernels/rope.cu: in-place RoPE (half-split pairs (i, i + hd/2)) on q and k in one launch, with
// optional per-head RMSNorm (QK-norm) before the rotation. Versions: v1: a group of G threads per
// kHP (= 1) head vectors of one token; each thread owns PPT pairs of each vector, read as 16-byte
// packs of the first and the second half (G = hd/2 / (16/sizeof(T))); scalar fallback (G = 32,
// 1-element accesses) when a pointer or a token stride is not 16-byte aligned. fp32 math, one
// rounding at the store.
// T = tokens, nh = query heads, nkv = KV heads, hd = head_dim, P = table positions.
// A position outside [0, P) writes NaN into its vectors, so a bad position cannot pass unnoticed.
// Reference: ref::rope.
#include "kernels/rope.h"

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/reduce.cuh"

namespace minfer {
namespace {

constexpr int kThreads = 256;
// Head vectors of one token per thread group. Measured on H200, bf16, 16384 tokens: 1 gives 78-83% of
// copy bandwidth; 4 (cos/sin loaded once for 4 heads) needs 120 registers and gives 66-70%; one block
// per token with the cos/sin row in shared memory gave 74-79%.
constexpr int kHP = 1;

template <typename T>
struct RopeArgs {
  T* q;                      // (T, nh, hd) token stride q_stride
  T* k;                      // (T, nkv, hd) token stride k_stride, or null
  const int32_t* positions;  // (T)
  const float* cos_sin;      // (P, hd/2, 2)
  const T* q_norm;           // (hd) or null
  const T* k_norm;           // (hd) or null
  int64_t q_stride, k_stride, num_tokens, max_positions;
  int heads, kv_heads;
  float eps;
};

// Loads PPT consecutive elements of T at p as packs of W.
template <typename T, int W, int PPT>
__device__ __forceinline__ void load_run(const T* p, float (&f)[PPT]) {
  using P = kern::Pack<T, W>;
#pragma unroll
  for (int c = 0; c < PPT / W; ++c) {
    const P v = reinterpret_cast<const P*>(p)[c];
#pragma unroll
    for (int j = 0; j < W; ++j) f[c * W + j] = kern::to_float(v.v[j]);
  }
}

template <typename T, int W, int PPT>
__device__ __forceinline__ void store_run(T* p, const float (&f)[PPT]) {
  using P = kern::Pack<T, W>;
#pragma unroll
  for (int c = 0; c < PPT / W; ++c) {
    P v;
#pragma unroll
    for (int j = 0; j < W; ++j) v.v[j] = kern::from_float<T>(f[c * W + j]);
    reinterpret_cast<P*>(p)[c] = v;
  }
}

// Loads PPT (cos, sin) pairs from the table row at cs (pairs 16-byte aligned when PPT is even).
template <int PPT>
__device__ __forceinline__ void load_cos_sin(const float* cs, float (&c)[PPT], float (&s)[PPT]) {
  if constexpr (PPT % 2 == 0) {
#pragma unroll
    for (int j = 0; j < PPT / 2; ++j) {
      const float4 v = reinterpret_cast<const float4*>(cs)[j];
      c[2 * j] = v.x, s[2 * j] = v.y, c[2 * j + 1] = v.z, s[2 * j + 1] = v.w;
    }
  } else {
#pragma unroll
    for (int j = 0; j < PPT; ++j) {
      const float2 v = reinterpret_cast<const float2*>(cs)[j];
      c[j] = v.x, s[j] = v.y;
    }
  }
}

// Slot s of a token: q head s for s < nh, else k head s - nh. Null when s is past the token's heads.
template <typename T>
__device__ __forceinline__ T* slot_ptr(const RopeArgs<T>& a, int64_t t, int s, const T*& norm) {
  if (s < a.heads) { norm = a.q_norm; return a.q + t * a.q_stride; }
  norm = a.k_norm;
  return (a.k != nullptr && s < a.heads + a.kv_heads) ? a.k + t * a.k_stride : nullptr;
}

// One group of G threads per kHP head vectors of one token (the cos/sin row is loaded once for them);
// W = elements per access; PPT = pairs per thread.
template <typename T, int HD, int W, int G>
__global__ void rope_kernel(RopeArgs<T> a) {
  constexpr int PPT = HD / 2 / G;
  static_assert(PPT % W == 0 && PPT >= 1, "bad rope tiling");
  const int slots = a.heads + (a.k ? a.kv_heads : 0);
  const int chunks = (slots + kHP - 1) / kHP;  // groups per token
  const int64_t gid = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / G;
  const bool valid = gid < a.num_tokens * chunks;  // a whole group is valid or not: shuffles stay full-warp
  const int64_t t = valid ? gid / chunks : 0;
  const int s0 = static_cast<int>(gid % chunks) * kHP;
  const int i0 = static_cast<int>(threadIdx.x % G) * PPT;

  T* v[kHP];            // (hd) per head, or null
  const T* norm[kHP];   // (hd) or null
  float x1[kHP][PPT], x2[kHP][PPT];
#pragma unroll
  for (int u = 0; u < kHP; ++u) {
    T* row = valid ? slot_ptr(a, t, s0 + u, norm[u]) : nullptr;
    if (!valid) norm[u] = nullptr;
    v[u] = row ? row + ((s0 + u) < a.heads ? s0 + u : s0 + u - a.heads) * int64_t{HD} : nullptr;
    if (v[u]) {
      load_run<T, W, PPT>(v[u] + i0, x1[u]);
      load_run<T, W, PPT>(v[u] + HD / 2 + i0, x2[u]);
    } else {
#pragma unroll
      for (int j = 0; j < PPT; ++j) x1[u][j] = x2[u][j] = 0.f;
    }
  }
  float c[PPT], s[PPT];
  const int64_t pos = valid ? a.positions[t] : 0;
  if (pos >= 0 && pos < a.max_positions) {
    load_cos_sin<PPT>(a.cos_sin + (pos * (HD / 2) + i0) * 2, c, s);
  } else {
#pragma unroll
    for (int j = 0; j < PPT; ++j) c[j] = s[j] = __int_as_float(0x7fc00000);
  }
#pragma unroll
  for (int u = 0; u < kHP; ++u) {
    // The reduction runs in every lane whenever either norm is set (a warp may hold q and k groups);
    // its result is applied only where this vector's norm weight exists.
    if (a.q_norm != nullptr || a.k_norm != nullptr) {
      float ss = 0.f;
#pragma unroll
      for (int j = 0; j < PPT; ++j) ss += x1[u][j] * x1[u][j] + x2[u][j] * x2[u][j];
      const float rstd = rsqrtf(kern::group_sum<G>(ss) / HD + a.eps);
      if (v[u] != nullptr && norm[u] != nullptr) {
        float w1[PPT], w2[PPT];
        load_run<T, W, PPT>(norm[u] + i0, w1);
        load_run<T, W, PPT>(norm[u] + HD / 2 + i0, w2);
#pragma unroll
        for (int j = 0; j < PPT; ++j) x1[u][j] = x1[u][j] * rstd * w1[j], x2[u][j] = x2[u][j] * rstd * w2[j];
      }
    }
    if (v[u] == nullptr) continue;
    float y1[PPT], y2[PPT];
#pragma unroll
    for (int j = 0; j < PPT; ++j) {
      y1[j] = x1[u][j] * c[j] - x2[u][j] * s[j];
      y2[j] = x2[u][j] * c[j] + x1[u][j] * s[j];
    }
    store_run<T, W, PPT>(v[u] + i0, y1);
    store_run<T, W, PPT>(v[u] + HD / 2 + i0, y2);
  }
}

template <typename T, int HD, int W>
Status launch(const RopeParams& p, cudaStream_t stream) {
  constexpr int G = W == 1 ? 32 : HD / 2 / W;
  const RopeArgs<T> a{static_cast<T*>(p.q), static_cast<T*>(p.k), p.positions, p.cos_sin,
                      static_cast<const T*>(p.q_norm), static_cast<const T*>(p.k_norm),
                      p.q_stride, p.k_stride, p.num_tokens, p.max_positions, p.heads, p.kv_heads, p.norm_eps};
  const int64_t slots = p.heads + (p.k ? p.kv_heads : 0);
  const int64_t groups = p.num_tokens * ((slots + kHP - 1) / kHP);
  rope_kernel<T, HD, W, G><<<kern::blocks_for(groups * G, kThreads), kThreads, 0, stream>>>(a);
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

Status check_args(const RopeParams& p) {
  MINFER_REQUIRE(p.q != nullptr, "q", "null pointer");
  MINFER_REQUIRE(p.positions != nullptr, "positions", "null pointer");
  MINFER_REQUIRE(p.cos_sin != nullptr, "cos_sin", "null pointer");
  MINFER_REQUIRE(p.num_tokens > 0 && p.num_tokens <= 0x7fffffff, "num_tokens",
                 "must be in [1, 2^31), got " + std::to_string(p.num_tokens));
  MINFER_REQUIRE(p.max_positions > 0, "max_positions", "must be > 0, got " + std::to_string(p.max_positions));
  MINFER_REQUIRE(p.heads > 0, "heads", "must be > 0, got " + std::to_string(p.heads));
  MINFER_REQUIRE(p.q_stride >= static_cast<int64_t>(p.heads) * p.head_dim, "q_stride",
                 "must be >= heads*head_dim = " + std::to_string(int64_t{p.heads} * p.head_dim) + ", got " +
                     std::to_string(p.q_stride));
  if (p.k != nullptr) {
    MINFER_REQUIRE(p.kv_heads > 0, "kv_heads", "must be > 0 when k is set, got " + std::to_string(p.kv_heads));
    MINFER_REQUIRE(p.k_stride >= static_cast<int64_t>(p.kv_heads) * p.head_dim, "k_stride",
                   "must be >= kv_heads*head_dim = " + std::to_string(int64_t{p.kv_heads} * p.head_dim) +
                       ", got " + std::to_string(p.k_stride));
  }
  MINFER_REQUIRE(p.norm_eps >= 0.f, "norm_eps", "must be >= 0, got " + std::to_string(p.norm_eps));
  return Status::ok();
}

// 16-byte accesses need q, k, the norm weights and both token strides aligned (hd/2 always is).
bool vector_ok(const RopeParams& p, int n) {
  return kern::aligned16(p.q) && p.q_stride % n == 0 &&
         (p.k == nullptr || (kern::aligned16(p.k) && p.k_stride % n == 0)) &&
         kern::aligned16(p.q_norm) && kern::aligned16(p.k_norm);
}

}  // namespace

Status rope_forward(const RopeParams& p, cudaStream_t stream) {
  MINFER_DISPATCH_HEAD_DIM(p.head_dim, HD, {
    if (Status s = check_args(p); !s) return s;
    MINFER_DISPATCH_DTYPE(p.dtype, T, {
      constexpr int N = kern::kVec16<T>;
      return vector_ok(p, N) ? launch<T, HD, N>(p, stream) : launch<T, HD, 1>(p, stream);
    });
  });
}

}  // namespace minfer
