// kernels/gemv.cu: GEMV for decode rows, plain or fused with RMSNorm / residual / SwiGLU (see gemv.h).
// Also implements gemm.h's gemv_forward / gemv_supports (the plain GEMV the GEMM tuner times).
#include "kernels/gemv.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "kernels/common/bulk.cuh"
#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/pdl.cuh"
#include "kernels/common/reduce.cuh"
#include "kernels/gemm.h"

namespace minfer {
namespace {

constexpr int kWarps = 8;  // warps per block
constexpr int kThreads = kWarps * 32;
constexpr int kUnroll = 4;  // W packs in flight per lane
constexpr int kMaxSplit = kWarps;
constexpr int kMinBlocks = 4;  // RT = 1: resident blocks per SM the registers must allow (64 per thread)
constexpr int64_t kMaxGridY = 65535;

enum Epi : int { kPlain = 0, kResidual = 1, kSwiglu = 2, kResidualNorm = 3 };

// 16-byte loads: W streamed once (kStream: evict-first), x through the read-only cache (reused by
// every warp).
template <bool kStream, typename P>
__device__ __forceinline__ P load16(const P* p) {
  static_assert(sizeof(P) == 16, "16-byte packs only");
  const uint4* q = reinterpret_cast<const uint4*>(p);
  const uint4 u = kStream ? __ldcs(q) : __ldg(q);
  P r;
  memcpy(&r, &u, sizeof r);
  return r;
}
template <typename P> __device__ __forceinline__ P load_stream(const P* p) { return load16<true>(p); }
template <typename P> __device__ __forceinline__ P load_ro(const P* p) { return load16<false>(p); }

struct GemvArgs {
  const void* x;       // (R, K)
  const void* w;       // (N, K) or (2N, K)
  const void* bias;    // (N) or null
  void* y;             // (R, N)
  const void* resid;   // (R, N) or null
  float eps;
  int64_t rows, in, out;
  int split;
  void* norm_out;         // kResidualNorm: (R, N)
  const void* out_norm_w; // kResidualNorm: (N)
  unsigned* counters;     // kResidualNorm: one per block row, zero between launches
  const void* in_norm_w;  // kNormIn: (K), the RMSNorm weight folded into x
  float in_eps;           // kNormIn: its eps
  int late_trigger;       // GemvParams::trigger_after_wait
};

template <int RT>
__device__ __forceinline__ void warp_sum(float (&acc)[RT]) {
#pragma unroll
  for (int r = 0; r < RT; ++r)
#pragma unroll
    for (int off = 16; off > 0; off /= 2) acc[r] += __shfl_xor_sync(0xffffffffu, acc[r], off);
}

// Thread (j, r)'s output from its summed dot products v (with SwiGLU: v the gate's, u the up's), then
// the form's epilogue. scale: the folded RMSNorm's 1 / rms(x) of the row (kNormIn), else 1.
template <typename T, int EPI>
__device__ __forceinline__ void epilogue(const GemvArgs& a, float v, float u, int64_t at, float bv, float rv,
                                         float scale) {
  T* y = static_cast<T*>(a.y);
  if constexpr (EPI == kSwiglu) {
    const float g = kern::to_float(kern::from_float<T>(v * scale));
    u = kern::to_float(kern::from_float<T>(u * scale));
    y[at] = kern::from_float<T>(g / (1.f + expf(-g)) * u);
  } else {
    v *= scale;
    if constexpr (EPI == kResidual || EPI == kResidualNorm) {
      const float yr = kern::to_float(kern::from_float<T>(v + bv));
      y[at] = kern::from_float<T>(rv + yr);
    } else {
      y[at] = kern::from_float<T>(v + bv);
    }
  }
}

// kResidualNorm: the last block of each block row to finish (a counter per block row, the
// threadfence-reduction pattern) computes norm_out = RMSNorm(y) for the row block's rows, as
// kernels/rmsnorm rounds it, from y read through L2 (other blocks wrote it), then re-arms the counter.
template <typename T, int RT>
__device__ __forceinline__ void last_block_norm(const GemvArgs& a, int64_t r0, int nr) {
  constexpr int V = kern::kVec16<T>;
  using P = kern::Pack<T, V>;
  __shared__ bool last;
  __threadfence();  // this block's y stores are visible device-wide before it is counted
  __syncthreads();
  if (threadIdx.x == 0) last = atomicAdd(&a.counters[blockIdx.y], 1u) == gridDim.x - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  const int64_t packs = a.out / V;
  for (int q = 0; q < nr; ++q) {
    const uint4* yrow = reinterpret_cast<const uint4*>(static_cast<const T*>(a.y) + (r0 + q) * a.out);
    auto y_pack = [&](int64_t i, float (&f)[V]) {  // through L2: other blocks wrote y
      const uint4 u = __ldcg(yrow + i);
      P v;
      memcpy(&v, &u, sizeof v);
      kern::unpack(v, f);
    };
    float ss = 0.f;
    for (int64_t i = threadIdx.x; i < packs; i += kThreads) {
      float f[V];
      y_pack(i, f);
#pragma unroll
      for (int e = 0; e < V; ++e) ss += f[e] * f[e];
    }
    const float rstd = rsqrtf(kern::block_sum(ss) / static_cast<float>(a.out) + a.eps);
    P* orow = static_cast<P*>(a.norm_out) + (r0 + q) * packs;
    for (int64_t i = threadIdx.x; i < packs; i += kThreads) {
      float f[V], g[V];
      y_pack(i, f);
      kern::unpack(load_ro(static_cast<const P*>(a.out_norm_w) + i), g);
#pragma unroll
      for (int e = 0; e < V; ++e) f[e] = f[e] * rstd * g[e];
      orow[i] = kern::pack<T, V>(f);
    }
  }
  if (threadIdx.x == 0) a.counters[blockIdx.y] = 0;  // ready for the next launch
}

// Thread (j, r)'s output j of the tile for row r from the warps' partial sums (gemv_kernel's epilogue).
template <typename T, int EPI, int RT, bool kNormIn, int WR>
__device__ __forceinline__ void finish_output(const GemvArgs& a, const float (&partial)[kWarps * WR][RT],
                                              const float (&partial_ss)[kNormIn ? kWarps : 1][RT], int split, int j,
                                              int r, int64_t at, float bv, float rv) {
  constexpr bool kSw = EPI == kSwiglu;
  // Output j's warps (q = 0 .. split - 1) and the rows holding its gate (or plain) and up sums.
  int w0, k0, w1, k1;
  if constexpr (WR == 1) {
    w0 = (kSw ? 2 * j : j) * split, k0 = 0, w1 = (2 * j + 1) * split, k1 = 0;
  } else if constexpr (kSw) {
    w0 = j * split, k0 = 0, w1 = j * split, k1 = 1;
  } else {
    w0 = (j / 2) * split, k0 = j % 2, w1 = w0, k1 = k0;
  }
  float v = 0.f, u = 0.f, scale = 1.f;
  for (int q = 0; q < split; ++q) {
    v += partial[(w0 + q) * WR + k0][r];
    if constexpr (kSw) u += partial[(w1 + q) * WR + k1][r];
  }
  if constexpr (kNormIn) {  // the sum of x^2 over K from the split warps of this output (the gate's with SwiGLU)
    float s2 = 0.f;
    for (int q = 0; q < split; ++q) s2 += partial_ss[w0 + q][r];
    scale = rsqrtf(s2 / static_cast<float>(a.in) + a.in_eps);
  }
  epilogue<T, EPI>(a, v, u, at, bv, rv, scale);
}

// grid (tiles, ceil(R / RT)): block x computes tile x (per_block outputs) for RT rows. Warp w: virtual
// feature w / S of the tile, K slice w % S. A virtual feature is WR weight rows: WR = 1, one output's
// row (with SwiGLU an output has two features, gate and up); WR = 2 (one row, R = 1), two outputs'
// rows, or with SwiGLU one output's gate and up rows, each x pack loaded once for both (half the warps:
// the grid of a wide projection fits the resident slots). Every block calls pdl_wait()
// (kernels/common/pdl.cuh). kNormIn (GemvParams::in_norm_weight): each lane multiplies its x elements by
// the norm weight's and sums their squares beside the dot product (x never normalised before the loop:
// no pass over x ahead of it); the epilogue scales the sums by 1 / rms(x).
template <typename T, int RT, int EPI, bool kNormIn = false, int WR = 1>
__global__ void __launch_bounds__(kThreads, RT == 1 ? kMinBlocks : 1) gemv_kernel(GemvArgs a) {
  static_assert(!kNormIn || EPI == kPlain || EPI == kSwiglu, "the folded norm takes the plain and SwiGLU forms");
  static_assert(WR == 1 || (WR == 2 && RT == 1), "two weight rows a warp at one row only");
  constexpr int V = kern::kVec16<T>;
  using P = kern::Pack<T, V>;
  constexpr bool kSw = EPI == kSwiglu;
  __shared__ float partial[kWarps * WR][RT];  // warp w's row k: partial[w * WR + k]
  __shared__ float partial_ss[kNormIn ? kWarps : 1][RT];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int split = a.split, part = warp % split, vf = warp / split;
  // Outputs per tile: a SwiGLU output takes two weight rows, as does a feature of WR = 2.
  const int per_block = (kWarps / split) * WR / (kSw ? 2 : 1);
  const int64_t tile = blockIdx.x;
  const int64_t r0 = static_cast<int64_t>(blockIdx.y) * RT;
  const int nr = static_cast<int>(a.rows - r0 < RT ? a.rows - r0 : RT);
  const int64_t packs = a.in / V, first = lane + 32 * part, step = 32 * split;
  // Epilogue: thread t finishes output t / RT of the tile for row t % RT.
  const int t = static_cast<int>(threadIdx.x), j = t / RT, r = t % RT;
  // This warp's weight rows (the row of output 0 where the warp has none: it loads nothing then).
  const P* wp[WR];
  bool active[WR];
#pragma unroll
  for (int k = 0; k < WR; ++k) {
    int64_t o, row;
    if constexpr (WR == 1) {
      o = tile * per_block + (kSw ? vf / 2 : vf);
      row = kSw && (vf & 1) ? a.out + o : o;
    } else if constexpr (kSw) {
      o = tile * per_block + vf;
      row = k ? a.out + o : o;
    } else {
      o = tile * per_block + 2 * vf + k;
      row = o;
    }
    active[k] = o < a.out;
    wp[k] = static_cast<const P*>(a.w) + (active[k] ? row : 0) * packs;
  }

  // Before the wait, what does not depend on the previous kernel: the first kUnroll weight packs of
  // each lane (of each row), and the bias.
  if (!a.late_trigger) kern::pdl_launch_dependents();
  P wv[WR][kUnroll] = {};
#pragma unroll
  for (int k = 0; k < WR; ++k)
#pragma unroll
    for (int u = 0; u < kUnroll; ++u)
      if (active[k] && first + u * step < packs) wv[k][u] = load_stream(wp[k] + first + u * step);
  const int64_t oj = tile * per_block + j;
  const bool mine = j < per_block && r < nr && oj < a.out;
  const int64_t at = (r0 + r) * a.out + oj;
  // The bias element of this thread's output (a weight: before the wait too).
  const float bv = !kSw && mine && a.bias ? kern::to_float(static_cast<const T*>(a.bias)[oj]) : 0.f;
  kern::pdl_wait();
  if (a.late_trigger) kern::pdl_launch_dependents();  // every kernel before this one has completed

  const P* xg = static_cast<const P*>(a.x) + r0 * packs;  // (nr, K / V)
  // The residual element of this thread's output, read before the K loop.
  constexpr bool kResid = EPI == kResidual || EPI == kResidualNorm;
  const float rv = kResid && mine ? kern::to_float(static_cast<const T*>(a.resid)[at]) : 0.f;
  float acc[WR][RT] = {};
  [[maybe_unused]] float ss[RT] = {};  // kNormIn: sums of x^2 over this lane's packs
  if (active[0]) {
    for (int64_t i0 = first; i0 < packs; i0 += step * kUnroll) {
      if (i0 != first) {
#pragma unroll
        for (int k = 0; k < WR; ++k)
#pragma unroll
          for (int u = 0; u < kUnroll; ++u)
            if (active[k] && i0 + u * step < packs) wv[k][u] = load_stream(wp[k] + i0 + u * step);
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        const int64_t i = i0 + u * step;
        if (i >= packs) break;
        [[maybe_unused]] float gf[V];
        if constexpr (kNormIn) kern::widen<T>(load_ro(static_cast<const P*>(a.in_norm_w) + i), gf);
#pragma unroll
        for (int q = 0; q < RT; ++q) {
          if (q >= nr) break;
          float xf[V];
          kern::widen<T>(load_ro(xg + q * packs + i), xf);
          if constexpr (kNormIn) {
#pragma unroll
            for (int e = 0; e < V; ++e) ss[q] = fmaf(xf[e], xf[e], ss[q]), xf[e] *= gf[e];
          }
#pragma unroll
          for (int k = 0; k < WR; ++k) {
            float wf[V];
            kern::widen<T>(wv[k][u], wf);
#pragma unroll
            for (int e = 0; e < V; ++e) acc[k][q] = fmaf(wf[e], xf[e], acc[k][q]);
          }
        }
      }
    }
  }
#pragma unroll
  for (int k = 0; k < WR; ++k) warp_sum(acc[k]);
  if constexpr (kNormIn) warp_sum(ss);
  if (lane == 0)
#pragma unroll
    for (int q = 0; q < RT; ++q) {
#pragma unroll
      for (int k = 0; k < WR; ++k) partial[warp * WR + k][q] = acc[k][q];
      if constexpr (kNormIn) partial_ss[warp][q] = ss[q];
    }
  __syncthreads();
  // Every thread reaches last_block_norm (its barriers) from this one call site, mine or not.
  if (mine) finish_output<T, EPI, RT, kNormIn, WR>(a, partial, partial_ss, split, j, r, at, bv, rv);
  if constexpr (EPI == kResidualNorm) last_block_norm<T, RT>(a, r0, nr);
}


// Single row (R = 1), 16-bit types: the slice form (gemv.h). Block x owns outputs [x rpb, x rpb + rpb)
// and copies their weight rows (with SwiGLU also the matching up rows) into shared memory with the
// bulk-copy engine before pdl_wait(), so the copy runs while earlier kernels of the step do; x is
// staged in shared memory after the wait; warp w computes outputs w, w + 8, .. of the slice, one
// whole K row per warp. At most 128 registers and ~108 KiB of shared memory, so two such blocks (of
// consecutive kernels) fit an SM.
constexpr int kSliceMaxXPacks = 16;            // K <= 16 x 32 packs (4096 16-bit elements)
constexpr int kSliceMaxBytes = 100 * 1024;     // a block's weight slice
constexpr unsigned kSliceChunk = 32 * 1024;    // bytes per bulk copy
template <typename T, int EPI>
__global__ void __launch_bounds__(kThreads, 2) gemv_slice_kernel(GemvArgs a, int rpb, int late_trigger) {
  constexpr int V = kern::kVec16<T>;
  using P = kern::Pack<T, V>;
  extern __shared__ __align__(128) unsigned char slice_smem[];
  __shared__ uint64_t bar;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int64_t o0 = static_cast<int64_t>(blockIdx.x) * rpb;
  const int nrows = static_cast<int>(a.out - o0 < rpb ? a.out - o0 : rpb);
  const int64_t row_bytes = a.in * static_cast<int64_t>(sizeof(T));
  const unsigned part_bytes = static_cast<unsigned>(nrows * row_bytes);  // gate (or plain) rows
  constexpr int kParts = EPI == kSwiglu ? 2 : 1;
  if (threadIdx.x == 0) {
    kern::mbar_init(&bar, 1);
    kern::fence_mbarrier_init();
    kern::mbar_expect_tx(&bar, part_bytes * kParts);
    const char* w = static_cast<const char*>(a.w);
    for (int q = 0; q < kParts; ++q) {
      const char* src = w + (o0 + q * a.out) * row_bytes;
      unsigned char* dst = slice_smem + q * static_cast<int64_t>(rpb) * row_bytes;
      for (unsigned off = 0; off < part_bytes; off += kSliceChunk)
        kern::bulk_copy(dst + off, src + off, min(kSliceChunk, part_bytes - off), &bar);
    }
  }
  __syncthreads();  // the barrier is initialised before anyone waits on it
  if (!late_trigger) kern::pdl_launch_dependents();
  kern::pdl_wait();

  const int64_t packs = a.in / V;
  __shared__ P xs[kSliceMaxXPacks * 32];
  for (int64_t i = threadIdx.x; i < packs; i += kThreads) xs[i] = load_ro(static_cast<const P*>(a.x) + i);
  __syncthreads();
  while (!kern::mbar_try_wait(&bar, 0)) {
  }
  T* y = static_cast<T*>(a.y);
  for (int j = warp; j < nrows; j += kWarps) {
    float acc[kParts] = {};
#pragma unroll
    for (int q = 0; q < kParts; ++q) {
      const P* wr = reinterpret_cast<const P*>(slice_smem + (q * static_cast<int64_t>(rpb) + j) * row_bytes);
#pragma unroll
      for (int u = 0; u < kSliceMaxXPacks; ++u) {
        if (lane + 32 * u >= packs) break;
        float wf[V], xf[V];
        kern::widen<T>(wr[lane + 32 * u], wf);
        kern::widen<T>(xs[lane + 32 * u], xf);
#pragma unroll
        for (int e = 0; e < V; ++e) acc[q] = fmaf(wf[e], xf[e], acc[q]);
      }
#pragma unroll
      for (int off = 16; off > 0; off /= 2) acc[q] += __shfl_xor_sync(0xffffffffu, acc[q], off);
    }
    if (lane != 0) continue;
    const int64_t o = o0 + j;
    if constexpr (EPI == kSwiglu) {
      const float g = kern::to_float(kern::from_float<T>(acc[0]));
      const float u = kern::to_float(kern::from_float<T>(acc[kParts - 1]));
      y[o] = kern::from_float<T>(g / (1.f + expf(-g)) * u);
    } else {
      const float bv = a.bias ? kern::to_float(static_cast<const T*>(a.bias)[o]) : 0.f;
      if constexpr (EPI == kResidual) {
        const float yr = kern::to_float(kern::from_float<T>(acc[0] + bv));
        y[o] = kern::from_float<T>(kern::to_float(static_cast<const T*>(a.resid)[o]) + yr);
      } else {
        y[o] = kern::from_float<T>(acc[0] + bv);
      }
    }
  }
  if (late_trigger) kern::pdl_launch_dependents();
}

// Rows per block row: the smallest of 1, 2, 4, 8, 16 covering R (16 for larger R).
int rows_tile(int64_t rows) {
  int rt = 1;
  while (rt < 16 && rt < rows) rt *= 2;
  return rt;
}

int sm_count() {
  static const int sms = kern::device_attribute(cudaDevAttrMultiProcessorCount, 132);
  return sms;
}


template <typename T, int RT, int EPI, bool kNormIn = false, int WR = 1>
Status launch(const GemvParams& p, int split, cudaStream_t stream) {
  const int per_block = (kWarps / split) * WR / (EPI == kSwiglu ? 2 : 1);
  const dim3 grid(kern::blocks_for(p.out, per_block), kern::blocks_for(p.rows, RT));
  const GemvArgs a{p.x,   p.w,  p.bias, p.y,     p.residual, p.norm_eps,        p.rows,
                   p.in,  p.out, split, p.norm_out, p.norm_weight, p.counters, p.in_norm_weight, p.in_norm_eps,
                   p.trigger_after_wait ? 1 : 0};
  MINFER_CUDA_RETURN(kern::launch_pdl(gemv_kernel<T, RT, EPI, kNormIn, WR>, grid, dim3(kThreads), 0, stream, a));
  return Status::ok();
}

// Two weight rows a warp (GemvParams::warp_rows = 2; one row): plain, SwiGLU and residual, with or
// without the folded input norm (plain and SwiGLU).
template <typename T>
Status dispatch_two_rows(const GemvParams& p, int split, cudaStream_t stream) {
  if (p.in_norm_weight)
    return p.swiglu ? launch<T, 1, kSwiglu, true, 2>(p, split, stream) : launch<T, 1, kPlain, true, 2>(p, split, stream);
  if (p.swiglu) return launch<T, 1, kSwiglu, false, 2>(p, split, stream);
  if (p.residual) return launch<T, 1, kResidual, false, 2>(p, split, stream);
  return launch<T, 1, kPlain, false, 2>(p, split, stream);
}

// Instantiated: plain for every RT (the GEMM tuner's candidate, any decode batch); the fused forms
// for the engine's decode step: SwiGLU (gate/up), residual + RMSNorm (o, down) and residual alone;
// the folded input norm (plain or SwiGLU) for one row.
template <typename T, int RT>
Status dispatch_epi(const GemvParams& p, int split, cudaStream_t stream) {
  if (p.in_norm_weight) {
    if constexpr (RT == 1) {
      return p.swiglu ? launch<T, 1, kSwiglu, true>(p, split, stream) : launch<T, 1, kPlain, true>(p, split, stream);
    } else {
      return Status::error("gemv: the folded input norm takes one row");
    }
  }
  if (p.swiglu) return launch<T, RT, kSwiglu>(p, split, stream);
  if (p.residual && p.norm_out) return launch<T, RT, kResidualNorm>(p, split, stream);
  if (p.residual) return launch<T, RT, kResidual>(p, split, stream);
  return launch<T, RT, kPlain>(p, split, stream);
}

template <typename T>
Status dispatch_rows(const GemvParams& p, int split, cudaStream_t stream) {
  if (p.warp_rows == 2) return dispatch_two_rows<T>(p, split, stream);
  switch (rows_tile(p.rows)) {
    case 1: return dispatch_epi<T, 1>(p, split, stream);
    case 2: return dispatch_epi<T, 2>(p, split, stream);
    case 4: return dispatch_epi<T, 4>(p, split, stream);
    case 8: return dispatch_epi<T, 8>(p, split, stream);
    case 16: return dispatch_epi<T, 16>(p, split, stream);
  }
  return Status::error("gemv: rows tile for rows " + std::to_string(p.rows) + " not instantiated");
}

Status check(const GemvParams& p, int split) {
  const int64_t v = static_cast<int64_t>(16 / dtype_size(p.dtype));
  MINFER_REQUIRE(p.x && p.w && p.y, "gemv", "x, w and y must be set");
  MINFER_REQUIRE(p.rows > 0 && p.in > 0 && p.out > 0, "gemv", "rows, in, out must be > 0");
  MINFER_REQUIRE(p.in % v == 0, "in",
                 "gemv needs a multiple of " + std::to_string(v) + " (16-byte packs), got " + std::to_string(p.in));
  MINFER_REQUIRE(kern::aligned16(p.x) && kern::aligned16(p.w), "x/w", "gemv needs 16-byte aligned pointers");
  MINFER_REQUIRE(!p.norm_weight || kern::aligned16(p.norm_weight), "norm_weight", "gemv needs 16-byte alignment");
  MINFER_REQUIRE(!p.norm_out || kern::aligned16(p.y), "y", "the RMSNorm epilogue needs 16-byte alignment");
  MINFER_REQUIRE((p.rows + 15) / 16 <= kMaxGridY, "rows", "too many for gemv: " + std::to_string(p.rows));
  MINFER_REQUIRE(split == 1 || split == 2 || split == 4 || split == 8, "split",
                 "must be 1, 2, 4 or 8, got " + std::to_string(split));
  MINFER_REQUIRE(!p.swiglu || split <= 4, "split", "must be <= 4 with swiglu, got " + std::to_string(split));
  MINFER_REQUIRE(!p.swiglu || !p.bias, "bias", "not supported with swiglu");
  MINFER_REQUIRE(!(p.swiglu && p.residual), "residual", "not supported with swiglu");
  MINFER_REQUIRE(!p.norm_out || p.residual, "norm_out", "the RMSNorm epilogue needs the residual form");
  MINFER_REQUIRE(!p.norm_out || (p.norm_weight && p.counters), "norm_weight/counters",
                 "the RMSNorm epilogue needs norm_weight and counters");
  MINFER_REQUIRE(p.norm_out || !p.norm_weight, "norm_weight", "set without norm_out (no prologue norm)");
  MINFER_REQUIRE(!p.norm_out || kern::aligned16(p.norm_out), "norm_out", "gemv needs 16-byte alignment");
  MINFER_REQUIRE(!p.norm_out || p.out % v == 0, "out",
                 "the RMSNorm epilogue needs a multiple of " + std::to_string(v) + ", got " + std::to_string(p.out));
  MINFER_REQUIRE(p.norm_eps >= 0.f, "norm_eps", "must be >= 0");
  MINFER_REQUIRE(p.warp_rows == 1 || p.warp_rows == 2, "warp_rows", "must be 1 or 2, got " + std::to_string(p.warp_rows));
  if (p.warp_rows == 2) {
    MINFER_REQUIRE(p.rows == 1, "warp_rows", "two weight rows a warp take one row, got " + std::to_string(p.rows));
    MINFER_REQUIRE(!p.norm_out, "warp_rows", "two weight rows a warp do not take the RMSNorm epilogue");
  }
  if (p.in_norm_weight) {
    MINFER_REQUIRE(p.rows == 1, "in_norm_weight", "the folded input norm takes one row, got " + std::to_string(p.rows));
    MINFER_REQUIRE(!p.residual && !p.norm_out, "in_norm_weight", "the folded input norm takes the plain and SwiGLU forms");
    MINFER_REQUIRE(kern::aligned16(p.in_norm_weight), "in_norm_weight", "gemv needs 16-byte alignment");
    MINFER_REQUIRE(p.in_norm_eps >= 0.f, "in_norm_eps", "must be >= 0");
  }
  return Status::ok();
}

// The slice form's outputs per block (about one block per SM) and its shared-memory bytes.
int slice_rows_per_block(const GemvParams& p) {
  return static_cast<int>((p.out + sm_count() - 1) / sm_count());
}
int64_t slice_bytes(const GemvParams& p) {
  return slice_rows_per_block(p) * p.in * static_cast<int64_t>(dtype_size(p.dtype)) * (p.swiglu ? 2 : 1);
}

bool slice_enabled(const GemvParams& p) {
  if (p.slice >= 0) return p.slice == 1;
  static const bool env = [] {
    const char* v = std::getenv("MINFER_GEMV_SLICE");
    return v && std::string(v) == "1";
  }();
  return env;
}

bool slice_fits(const GemvParams& p) {
  static const bool sm90 = kern::device_attribute(cudaDevAttrComputeCapabilityMajor, 0) >= 9;
  return sm90 && p.rows == 1 && p.warp_rows == 1 && dtype_size(p.dtype) == 2 && !p.norm_out && !p.in_norm_weight &&
         p.in <= static_cast<int64_t>(kSliceMaxXPacks) * 32 * kern::kVec16<__half> && slice_bytes(p) <= kSliceMaxBytes;
}

// A/B switches of the slice form: MINFER_GEMV_SLICE_LATE=1 lets the next kernel launch only once a
// block is done (default: as soon as its copies are issued); MINFER_GEMV_SLICE_CARVEOUT=N sets the
// kernel's preferred shared-memory carveout (percent; default: the driver's choice).
int slice_late_trigger() {
  static const int v = [] {
    const char* e = std::getenv("MINFER_GEMV_SLICE_LATE");
    return e && std::string(e) == "1" ? 1 : 0;
  }();
  return v;
}

template <typename T, int EPI>
cudaError_t slice_attributes() {
  cudaError_t e = cudaFuncSetAttribute(gemv_slice_kernel<T, EPI>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                       kSliceMaxBytes);
  if (const char* c = std::getenv("MINFER_GEMV_SLICE_CARVEOUT"); e == cudaSuccess && c)
    e = cudaFuncSetAttribute(gemv_slice_kernel<T, EPI>, cudaFuncAttributePreferredSharedMemoryCarveout, std::atoi(c));
  return e;
}

template <typename T, int EPI>
Status launch_slice(const GemvParams& p, cudaStream_t stream) {
  static const cudaError_t attr = slice_attributes<T, EPI>();
  MINFER_CUDA_RETURN(attr);
  const int rpb = slice_rows_per_block(p);
  const GemvArgs a{p.x, p.w, p.bias, p.y, p.residual, p.norm_eps, p.rows, p.in, p.out, 1, nullptr, nullptr, nullptr, nullptr, 0.f, 0};
  // (its late trigger, after the block's outputs, is after its wait too)
  const int late = p.trigger_after_wait ? 1 : slice_late_trigger();
  MINFER_CUDA_RETURN(kern::launch_pdl(gemv_slice_kernel<T, EPI>, dim3(kern::blocks_for(p.out, rpb)), dim3(kThreads),
                                      static_cast<size_t>(slice_bytes(p)), stream, a, rpb, late));
  return Status::ok();
}

template <typename T>
Status dispatch_slice(const GemvParams& p, cudaStream_t stream) {
  if constexpr (sizeof(T) != 2) {
    return Status::error("gemv: the slice form takes 16-bit types only");
  } else {
    if (p.swiglu) return launch_slice<T, kSwiglu>(p, stream);
    if (p.residual) return launch_slice<T, kResidual>(p, stream);
    return launch_slice<T, kPlain>(p, stream);
  }
}

Status run(const GemvParams& p, cudaStream_t stream) {
  const int split = p.split == 0 ? gemv_default_split(p) : p.split;
  if (Status s = check(p, split); !s) return s;
  if (slice_enabled(p) && slice_fits(p)) {
    MINFER_DISPATCH_DTYPE(p.dtype, T, { return dispatch_slice<T>(p, stream); });
  }
  MINFER_DISPATCH_DTYPE(p.dtype, T, { return dispatch_rows<T>(p, split, stream); });
}

GemvParams plain(const GemmParams& g, int split) {
  GemvParams p;
  p.dtype = g.dtype;
  p.x = g.x;
  p.w = g.w;
  p.bias = g.bias;
  p.y = g.y;
  p.rows = g.rows;
  p.in = g.in;
  p.out = g.out;
  p.split = split;
  return p;
}

}  // namespace

// Enough warps for ~32 per SM, each lane keeping >= 2 packs (a SwiGLU output counts twice).
int gemv_default_split(const GemvParams& p) {
  const int64_t packs = p.in / static_cast<int64_t>(16 / dtype_size(p.dtype)), target = 32LL * sm_count();
  const int64_t features = p.swiglu ? 2 * p.out : p.out;
  const int max_split = p.swiglu ? 4 : kMaxSplit;
  int split = 1;
  while (split < max_split && features * split < target && packs >= 64LL * split) split *= 2;
  return split;
}

bool gemv_fits_one_wave(const GemvParams& p) {
  const int split = p.split == 0 ? gemv_default_split(p) : p.split;
  const int rt = rows_tile(p.rows);
  const int64_t features = p.swiglu ? 2 * p.out : p.out;
  const int64_t slots = static_cast<int64_t>(rt == 1 ? kMinBlocks : 1) * sm_count();
  return static_cast<int64_t>(kern::blocks_for(features, kWarps * (p.warp_rows == 2 ? 2 : 1) / split)) *
             kern::blocks_for(p.rows, rt) <= slots;
}

int gemv_one_wave_split(const GemvParams& p) {
  const int64_t packs = p.in / static_cast<int64_t>(16 / dtype_size(p.dtype));
  const int max_split = p.swiglu ? 4 : kMaxSplit;
  GemvParams q = p;
  int best = 1;
  for (int split = 1; split <= max_split; split *= 2) {
    if (split > 1 && packs < 32LL * split) break;  // lanes with no pack
    q.split = split;
    if (gemv_fits_one_wave(q)) best = split;
  }
  return best;
}

int gemv_one_wave_warp_rows(const GemvParams& p) {
  if (p.rows != 1 || p.norm_out) return 1;
  GemvParams one = p, two = p;
  one.warp_rows = 1;
  one.split = gemv_one_wave_split(one);
  two.warp_rows = 2;
  two.split = 1;
  return !gemv_fits_one_wave(one) && gemv_fits_one_wave(two) ? 2 : 1;
}

bool gemv_slice_applies(const GemvParams& p) {
  return check(p, p.split == 0 ? gemv_default_split(p) : p.split).is_ok() && slice_enabled(p) && slice_fits(p);
}

bool gemv_fused_supports(const GemvParams& p) {
  return check(p, p.split == 0 ? gemv_default_split(p) : p.split).is_ok();
}

Status gemv_fused_forward(const GemvParams& p, cudaStream_t stream) { return run(p, stream); }

bool gemv_supports(const GemmParams& p) { return check(plain(p, 1), 1).is_ok(); }

Status gemv_forward(const GemmParams& p, cudaStream_t stream, int split) { return run(plain(p, split), stream); }

}  // namespace minfer
