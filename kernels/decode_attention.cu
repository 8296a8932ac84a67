// kernels/decode_attention.cu: split-KV decode attention (see decode_attention.h). Versions held
// here: v2 tensor-core path (fp16, bf16; pages of a multiple of 16 tokens) and the v1 scalar path
// (fp32, and fp16/bf16 with other page sizes); head_dim 16, 32, 64, 128 (16 and 32 serve the engine's
// tiny test models).
// Both: grid (NS, nkv * head groups, B). A block owns keys [split * chunk, (split + 1) * chunk) of
// one sequence and up to 16 query heads of one KV head (a head group), so each KV byte is read once
// per group. With NS == 1 the block writes the final output, else a partial (normalised output,
// log2-sum-exp) per split; the combine pass, grid (B * nh), weighs them by exp2(lse_s - max lse).
// v2 (fp16, bf16): 4 warps; each warp streams its own 16 keys of every 64-key step through shared
// memory with cp.async, double-buffered and synchronised per warp only (no block barrier in the key
// loop, so the next step's loads are in flight while the tensor cores work). The group's query heads
// are the 16 rows of an mma.sync m16n8k16 A operand (rows past the group are zero): S = Q K^T, online
// softmax in fp32 per warp, O += P V with P split as hi + lo in the storage type (as in
// kernels/flash_prefill.cu: P rounded once costs ~2e-3 relative error). The 4 warps' (max, sum, O)
// are merged through shared memory at the end. chunk is a multiple of 64. A warp's 16 keys of a step
// are 16 consecutive cache rows when the cache is contiguous or its pages hold a multiple of 16 tokens:
// v2 needs that (one block-table load per warp step, issued a step ahead); other page sizes take v1.
// v1 (fp32, and fp16/bf16 with pages of other sizes): 128 threads, tiles of 32 keys staged in shared
// memory as fp32; thread (head, key) scores; warp w keeps the online softmax of heads w, w + 4, ...;
// thread d accumulates output dim d.
#include "kernels/decode_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/pdl.cuh"
#include "kernels/common/mma.cuh"

namespace minfer {
namespace {

constexpr float kLog2e = 1.4426950408889634f;
constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kTile = 32;       // keys per shared tile (one per lane in the softmax)
constexpr int kMaxGroup = 16;   // query heads per block
constexpr int kMaxSplits = 64;
constexpr int kMinKeysPerSplit = 128;

// Row (hd elements) of token `pos` of sequence b, KV head kvh, in the contiguous or paged cache.
template <typename T>
__device__ __forceinline__ const T* kv_row(const DecodeAttentionParams& p, const T* base /*cache*/, int b,
                                           int pos, int kvh, int hd) {
  int64_t row;
  if (p.block_table) {
    const int64_t page = p.block_table[static_cast<int64_t>(b) * p.max_pages + pos / p.page_size];
    row = page * p.page_size + pos % p.page_size;
  } else {
    row = static_cast<int64_t>(b) * p.max_len + pos;
  }
  return base + (row * p.kv_heads + kvh) * hd;
}

// Keys [t0, t0 + n) of (b, kvh) into ks (kTile, HD+1) and vs (kTile, HD) as fp32; rows >= n are zero.
template <typename T, int HD>
__device__ __forceinline__ void load_kv(const DecodeAttentionParams& p, int b, int kvh, int t0, int n,
                                        float (*ks)[HD + 1], float (*vs)[HD]) {
  constexpr int V = kern::kVec16<T>, kPer = HD / V;  // elements per access, accesses per row
  using P = kern::Pack<T, V>;
  for (int i = threadIdx.x; i < kTile * kPer; i += kThreads) {
    const int r = i / kPer, c = (i % kPer) * V;
    float kf[V], vf[V];
    if (r < n) {
      kern::unpack(*reinterpret_cast<const P*>(kv_row(p, static_cast<const T*>(p.k_cache), b, t0 + r, kvh, HD) + c), kf);
      kern::unpack(*reinterpret_cast<const P*>(kv_row(p, static_cast<const T*>(p.v_cache), b, t0 + r, kvh, HD) + c), vf);
    } else {
#pragma unroll
      for (int e = 0; e < V; ++e) kf[e] = vf[e] = 0.f;
    }
#pragma unroll
    for (int e = 0; e < V; ++e) ks[r][c + e] = kf[e], vs[r][c + e] = vf[e];
  }
}

struct SplitOut {
  float* o;    // (B, nh, NS, hd) partial outputs, normalised
  float* lse;  // (B, nh, NS) log2-sum-exp of the scaled scores (-inf: empty split)
  int splits;  // NS
  int groups;  // head groups per KV head
};

template <typename T, int HD>
__global__ void __launch_bounds__(kThreads) decode_split(DecodeAttentionParams p, SplitOut so, float scale_log2) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  constexpr int kRowsPerThread = kMaxGroup * HD / kThreads;  // output rows (heads) per thread
  constexpr int kRowPhase = kThreads / HD;                   // threads sharing a dim
  __shared__ float qs[kMaxGroup][HD];     // (heads of the block, HD)
  __shared__ float ks[kTile][HD + 1];     // (keys, HD) padded: lanes read different rows
  __shared__ float vs[kTile][HD];         // (keys, HD)
  __shared__ float ps[kMaxGroup][kTile];  // scores, then probabilities
  __shared__ float corr_s[kMaxGroup], m_s[kMaxGroup], l_s[kMaxGroup];
  const int b = blockIdx.z, kvh = blockIdx.y / so.groups, split = blockIdx.x;
  const int group = p.heads / p.kv_heads, g0 = (blockIdx.y % so.groups) * kMaxGroup;
  const int gn = min(kMaxGroup, group - g0), h0 = kvh * group + g0;  // heads [h0, h0 + gn)
  const int len = p.cache_lens[b];
  const int chunk = ((len + so.splits - 1) / so.splits + kTile - 1) / kTile * kTile;
  const int kbeg = split * chunk, kend = min(len, kbeg + chunk);
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;

  const T* qg = static_cast<const T*>(p.q) + (static_cast<int64_t>(b) * p.heads + h0) * HD;  // (gn, HD)
  for (int i = tid; i < kMaxGroup * HD; i += kThreads)
    qs[i / HD][i % HD] = i / HD < gn ? kern::to_float(qg[i]) : 0.f;
  float m[kMaxGroup / kWarps], l[kMaxGroup / kWarps], acc[kRowsPerThread];
#pragma unroll
  for (int i = 0; i < kMaxGroup / kWarps; ++i) m[i] = -INFINITY, l[i] = 0.f;
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) acc[i] = 0.f;
  const int d = tid % HD, r0 = tid / HD;  // this thread's output dim and first head row

  for (int t0 = kbeg; t0 < kend; t0 += kTile) {
    const int n = min(kTile, kend - t0);
    load_kv<T, HD>(p, b, kvh, t0, n, ks, vs);
    __syncthreads();  // also publishes qs on the first tile
    for (int i = tid; i < gn * kTile; i += kThreads) {
      const int gq = i / kTile, j = i % kTile;
      float dot = 0.f;
#pragma unroll 8
      for (int e = 0; e < HD; ++e) dot += qs[gq][e] * ks[j][e];
      ps[gq][j] = j < n ? dot * scale_log2 : -INFINITY;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kMaxGroup / kWarps; ++i) {
      const int gq = warp + kWarps * i;
      if (gq >= gn) continue;  // warp-uniform
      const float s = ps[gq][lane];
      float mx = s;
      for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
      const float mn = fmaxf(m[i], mx);  // finite: key t0 is valid
      const float pj = exp2f(s - mn), corr = exp2f(m[i] - mn);
      float sum = pj;
      for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
      l[i] = l[i] * corr + sum;
      m[i] = mn;
      ps[gq][lane] = pj;
      if (lane == 0) corr_s[gq] = corr;
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kRowsPerThread; ++i) {
      const int gq = r0 + kRowPhase * i;
      if (gq >= gn) continue;
      float a = acc[i] * corr_s[gq];
      for (int j = 0; j < n; ++j) a += ps[gq][j] * vs[j][d];
      acc[i] = a;
    }
    __syncthreads();  // ks, vs, ps are refilled next tile
  }

#pragma unroll
  for (int i = 0; i < kMaxGroup / kWarps; ++i) {
    const int gq = warp + kWarps * i;
    if (gq < gn && lane == 0) m_s[gq] = m[i], l_s[gq] = l[i];
  }
  __syncthreads();
#pragma unroll
  for (int i = 0; i < kRowsPerThread; ++i) {
    const int gq = r0 + kRowPhase * i;
    if (gq >= gn) continue;
    const float lv = l_s[gq], o = lv > 0.f ? acc[i] / lv : 0.f;
    const int64_t bh = static_cast<int64_t>(b) * p.heads + h0 + gq;
    if (so.splits == 1) {
      static_cast<T*>(p.out)[bh * HD + d] = kern::from_float<T>(o);
      continue;
    }
    so.o[(bh * so.splits + split) * HD + d] = o;
    if (d == 0) so.lse[bh * so.splits + split] = lv > 0.f ? m_s[gq] + log2f(lv) : -INFINITY;
  }
}

// ---- v2: tensor-core path (fp16, bf16) ------------------------------------------------------------

constexpr int kTcWarps = 4;
constexpr int kTcThreads = kTcWarps * 32;
constexpr int kWarpKeys = 16;                    // keys per warp per step
constexpr int kStepKeys = kWarpKeys * kTcWarps;  // keys per block per step (chunk granularity)
constexpr int kTcPad = 8;                        // elements of padding per shared row (16 bytes)

template <typename T, int HD>
constexpr int tc_pipe_bytes() {  // K and V, 2 stages, every warp
  return kTcWarps * 2 * 2 * kWarpKeys * (HD + kTcPad) * static_cast<int>(sizeof(T));
}
template <int HD>
constexpr int tc_merge_bytes() {  // per warp: O (16, HD), max (16), sum (16), fp32
  return kTcWarps * (16 * HD + 32) * static_cast<int>(sizeof(float));
}
template <typename T, int HD>
constexpr int tc_smem_bytes() {
  return tc_pipe_bytes<T, HD>() > tc_merge_bytes<HD>() ? tc_pipe_bytes<T, HD>() : tc_merge_bytes<HD>();
}

// Cache row of key k0 of sequence b (k0 a multiple of 16, pages of a multiple of 16 tokens, so the
// warp's keys k0 .. k0 + 15 are rows row0 .. row0 + 15). 0 when k0 >= kend (no key of the step is read).
__device__ __forceinline__ int64_t tc_first_row(const DecodeAttentionParams& p, int b, int k0, int kend) {
  if (k0 >= kend) return 0;
  if (!p.block_table) return static_cast<int64_t>(b) * p.max_len + k0;
  const int64_t page = p.block_table[static_cast<int64_t>(b) * p.max_pages + k0 / p.page_size];
  return page * p.page_size + k0 % p.page_size;
}

// Keys [k0, k0 + 16) of (b, kvh), the cache rows row0 .. row0 + 15, into this warp's K and V stage
// buffers (rows of HD + kTcPad); keys >= kend are zero-filled and never read from global memory.
template <typename T, int HD>
__device__ __forceinline__ void tc_load_run(const DecodeAttentionParams& p, int kvh, int64_t row0, int k0, int kend,
                                            T* ks, T* vs, int lane) {
  constexpr int kChunks = HD / 8;
  const T* kc = static_cast<const T*>(p.k_cache);
  const T* vc = static_cast<const T*>(p.v_cache);
#pragma unroll
  for (int j = 0; j < kWarpKeys * kChunks / 32; ++j) {
    const int i = lane + 32 * j;
    const int r = i / kChunks, c = (i % kChunks) * 8;
    const bool ok = k0 + r < kend;
    const int64_t off = ((row0 + r) * p.kv_heads + kvh) * HD + c;
    kern::cp_async16(ks + r * (HD + kTcPad) + c, ok ? kc + off : kc, ok);
    kern::cp_async16(vs + r * (HD + kTcPad) + c, ok ? vc + off : vc, ok);
  }
}

template <typename T, int HD>
__global__ void __launch_bounds__(kTcThreads) decode_split_tc(DecodeAttentionParams p, SplitOut so, float scale_log2) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int kS = HD + kTcPad;                    // shared row stride, elements
  constexpr int kWarpStage = 2 * kWarpKeys * kS;     // K then V of one stage of one warp, elements
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  T* wbuf = reinterpret_cast<T*>(smem_raw) + warp * 2 * kWarpStage;  // this warp's 2 stages

  const int b = blockIdx.z, kvh = blockIdx.y / so.groups, split = blockIdx.x;
  const int group = p.heads / p.kv_heads, g0 = (blockIdx.y % so.groups) * kMaxGroup;
  const int gn = min(kMaxGroup, group - g0), h0 = kvh * group + g0;  // heads [h0, h0 + gn)
  const int len = p.cache_lens[b];
  const int chunk = ((len + so.splits - 1) / so.splits + kStepKeys - 1) / kStepKeys * kStepKeys;
  const int kbeg = split * chunk, kend = min(len, kbeg + chunk);
  const int steps = kend > kbeg ? (kend - kbeg + kStepKeys - 1) / kStepKeys : 0;

  // This warp's first key of step s is kbeg + s * kStepKeys + warp * kWarpKeys; the cache row of step
  // s + 1 is looked up during step s - 1 (one block-table load per warp step, off the path of the
  // copies it addresses).
  const int wk0 = kbeg + warp * kWarpKeys;
  if (steps > 0) tc_load_run<T, HD>(p, kvh, tc_first_row(p, b, wk0, kend), wk0, kend, wbuf, wbuf + kWarpKeys * kS, lane);
  kern::cp_async_commit();
  int64_t row_next = steps > 1 ? tc_first_row(p, b, wk0 + kStepKeys, kend) : 0;

  // Q fragments: rows g and g + 8 of the group (zero past gn), dims kk * 16 + t * 2 (+1, +8, +9).
  const T* qg = static_cast<const T*>(p.q) + (static_cast<int64_t>(b) * p.heads + h0) * HD;  // (gn, HD)
  uint32_t qf[HD / 16][4];
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
    const int c = kk * 16 + t * 2;
    qf[kk][0] = g < gn ? *reinterpret_cast<const uint32_t*>(qg + g * HD + c) : 0u;
    qf[kk][1] = g + 8 < gn ? *reinterpret_cast<const uint32_t*>(qg + (g + 8) * HD + c) : 0u;
    qf[kk][2] = g < gn ? *reinterpret_cast<const uint32_t*>(qg + g * HD + c + 8) : 0u;
    qf[kk][3] = g + 8 < gn ? *reinterpret_cast<const uint32_t*>(qg + (g + 8) * HD + c + 8) : 0u;
  }
  float o[HD / 8][4];
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;  // rows g, g + 8 (l: this lane's part)

  for (int it = 0; it < steps; ++it) {
    if (it + 1 < steps) {
      T* nb = wbuf + ((it + 1) & 1) * kWarpStage;
      const int k1 = wk0 + (it + 1) * kStepKeys;
      tc_load_run<T, HD>(p, kvh, row_next, k1, kend, nb, nb + kWarpKeys * kS, lane);
      row_next = it + 2 < steps ? tc_first_row(p, b, k1 + kStepKeys, kend) : 0;
      kern::cp_async_commit();
      kern::cp_async_wait<1>();
    } else {
      kern::cp_async_wait<0>();
    }
    __syncwarp();
    const T* kt = wbuf + (it & 1) * kWarpStage;  // (16, kS)
    const T* vt = kt + kWarpKeys * kS;           // (16, kS)
    const int key0 = wk0 + it * kStepKeys;

    // S = Q K^T: 16 rows x 16 keys; s[nt]: keys nt * 8 + t * 2 + {0, 1}, rows g (0, 1), g + 8 (2, 3).
    float s[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
      const T* kr = kt + (nt * 8 + g) * kS + t * 2;
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk)
        kern::mma16816<T>(s[nt], qf[kk], *reinterpret_cast<const uint32_t*>(kr + kk * 16),
                          *reinterpret_cast<const uint32_t*>(kr + kk * 16 + 8));
    }
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const bool ok = key0 + nt * 8 + t * 2 + e < kend;
        s[nt][e] = ok ? s[nt][e] * scale_log2 : -INFINITY;
        s[nt][2 + e] = ok ? s[nt][2 + e] * scale_log2 : -INFINITY;
      }
    kern::softmax_step(s, o, m_a, m_b, l_a, l_b);

    // O += P V over the 16 keys; P as hi + lo in T.
    const uint32_t ph[4] = {kern::pack2<T>(s[0][0], s[0][1]), kern::pack2<T>(s[0][2], s[0][3]),
                            kern::pack2<T>(s[1][0], s[1][1]), kern::pack2<T>(s[1][2], s[1][3])};
    uint32_t pl[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const float x = s[r / 2][(r % 2) * 2], y = s[r / 2][(r % 2) * 2 + 1];
      pl[r] = kern::pack2<T>(kern::round_rest<T>(x), kern::round_rest<T>(y));
    }
    const T* vrow = vt + (((lane >> 3) & 1) * 8 + (lane & 7)) * kS + (lane >> 4) * 8;
#pragma unroll
    for (int dp = 0; dp < HD / 16; ++dp) {
      uint32_t vb[4];
      kern::ldmatrix_x4_trans(vb, vrow + dp * 16);
      kern::mma16816<T>(o[2 * dp], ph, vb[0], vb[1]);
      kern::mma16816<T>(o[2 * dp], pl, vb[0], vb[1]);
      kern::mma16816<T>(o[2 * dp + 1], ph, vb[2], vb[3]);
      kern::mma16816<T>(o[2 * dp + 1], pl, vb[2], vb[3]);
    }
    __syncwarp();  // this stage is refilled by the next step's prefetch
  }

  // Row sums over the quad; then the 4 warps' states meet in shared memory (over the key buffers).
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l_a += __shfl_xor_sync(0xffffffffu, l_a, off);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, off);
  }
  __syncthreads();  // every warp is done with its key buffers
  float* os = reinterpret_cast<float*>(smem_raw);    // (warps, 16, HD)
  float* ms = os + kTcWarps * 16 * HD;                // (warps, 16)
  float* ls = ms + kTcWarps * 16;                     // (warps, 16)
  float* ow = os + warp * 16 * HD;
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) {
    const int c = i * 8 + t * 2;
    ow[g * HD + c] = o[i][0], ow[g * HD + c + 1] = o[i][1];
    ow[(g + 8) * HD + c] = o[i][2], ow[(g + 8) * HD + c + 1] = o[i][3];
  }
  if (t == 0) {
    ms[warp * 16 + g] = m_a, ms[warp * 16 + g + 8] = m_b;
    ls[warp * 16 + g] = l_a, ls[warp * 16 + g + 8] = l_b;
  }
  __syncthreads();
  for (int i = threadIdx.x; i < gn * HD; i += kTcThreads) {
    const int r = i / HD, d = i % HD;
    float mx = -INFINITY;
#pragma unroll
    for (int w = 0; w < kTcWarps; ++w) mx = fmaxf(mx, ms[w * 16 + r]);
    float num = 0.f, den = 0.f;
    if (mx > -INFINITY) {
#pragma unroll
      for (int w = 0; w < kTcWarps; ++w) {
        const float wt = exp2f(ms[w * 16 + r] - mx);  // 0 for a warp that saw no key
        num += wt * os[(w * 16 + r) * HD + d];
        den += wt * ls[w * 16 + r];
      }
    }
    const float val = den > 0.f ? num / den : 0.f;
    const int64_t bh = static_cast<int64_t>(b) * p.heads + h0 + r;
    if (so.splits == 1) {
      static_cast<T*>(p.out)[bh * HD + d] = kern::from_float<T>(val);
      continue;
    }
    so.o[(bh * so.splits + split) * HD + d] = val;
    if (d == 0) so.lse[bh * so.splits + split] = den > 0.f ? mx + log2f(den) : -INFINITY;
  }
}

// out (B, nh, HD) from the splits' partials; one block per (b, h), thread d per output dim.
template <typename T, int HD>
__global__ void __launch_bounds__(HD) decode_combine(DecodeAttentionParams p, SplitOut so) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  const int64_t bh = blockIdx.x;
  const float* lse = so.lse + bh * so.splits;          // (NS)
  const float* o = so.o + bh * so.splits * HD;         // (NS, HD)
  float mx = -INFINITY;
  for (int s = 0; s < so.splits; ++s) mx = fmaxf(mx, lse[s]);
  float num = 0.f, den = 0.f;
  if (mx > -INFINITY) {
    for (int s = 0; s < so.splits; ++s) {
      if (lse[s] == -INFINITY) continue;
      const float w = exp2f(lse[s] - mx);
      num += w * o[s * HD + threadIdx.x];
      den += w;
    }
  }
  static_cast<T*>(p.out)[bh * HD + threadIdx.x] = kern::from_float<T>(den > 0.f ? num / den : 0.f);
}

template <typename T, int HD>
Status launch(const DecodeAttentionParams& p, int splits, cudaStream_t stream) {
  SplitOut so;
  so.splits = splits;
  so.groups = (p.heads / p.kv_heads + kMaxGroup - 1) / kMaxGroup;
  so.o = p.workspace;
  so.lse = p.workspace + static_cast<size_t>(p.batch) * p.heads * splits * HD;
  const float scale_log2 = static_cast<float>(1.0 / std::sqrt(static_cast<double>(HD))) * kLog2e;
  const dim3 grid(static_cast<unsigned>(splits), static_cast<unsigned>(p.kv_heads * so.groups),
                  static_cast<unsigned>(p.batch));
  // v2 needs each warp's 16 keys in 16 consecutive cache rows: a contiguous cache, or pages of a
  // multiple of 16 tokens; other page sizes (and fp32) take v1.
  const bool runs16 = !p.block_table || p.page_size % kWarpKeys == 0;
  if (std::is_same_v<T, float> || !runs16) {
    MINFER_CUDA_RETURN(kern::launch_pdl(decode_split<T, HD>, grid, kThreads, 0, stream, p, so, scale_log2));
  } else if constexpr (!std::is_same_v<T, float>) {
    constexpr int kSmem = tc_smem_bytes<T, HD>();
    if constexpr (kSmem > 48 * 1024)
      MINFER_CUDA_RETURN(
          cudaFuncSetAttribute(decode_split_tc<T, HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
    MINFER_CUDA_RETURN(kern::launch_pdl(decode_split_tc<T, HD>, grid, kTcThreads, kSmem, stream, p, so, scale_log2));
  }
  MINFER_LAUNCH_RETURN();
  if (splits > 1) {
    const unsigned rows = static_cast<unsigned>(p.batch * p.heads);
    MINFER_CUDA_RETURN(kern::launch_pdl(decode_combine<T, HD>, rows, HD, 0, stream, p, so));
    MINFER_LAUNCH_RETURN();
  }
  return Status::ok();
}

Status check_params(const DecodeAttentionParams& p) {
  MINFER_REQUIRE(p.heads > 0 && p.kv_heads > 0 && p.heads % p.kv_heads == 0, "kv_heads",
                 "must divide heads (" + std::to_string(p.heads) + "), got " + std::to_string(p.kv_heads));
  MINFER_REQUIRE(p.batch > 0 && p.batch <= 65535, "batch", "must be in [1, 65535], got " + std::to_string(p.batch));
  MINFER_REQUIRE(p.max_kv_len > 0, "max_kv_len", "must be > 0, got " + std::to_string(p.max_kv_len));
  MINFER_REQUIRE(p.q && p.k_cache && p.v_cache && p.out && p.cache_lens, "q", "every pointer must be set");
  MINFER_REQUIRE(kern::aligned16(p.k_cache) && kern::aligned16(p.v_cache), "k_cache",
                 "k_cache and v_cache must be 16-byte aligned");
  if (p.block_table) {
    MINFER_REQUIRE(p.page_size >= 16, "page_size", "must be >= 16, got " + std::to_string(p.page_size));
    MINFER_REQUIRE(p.max_pages > 0 && static_cast<int64_t>(p.max_pages) * p.page_size >= p.max_kv_len, "max_pages",
                   "max_pages * page_size must cover max_kv_len (" + std::to_string(p.max_kv_len) + ")");
  } else {
    MINFER_REQUIRE(p.max_len >= p.max_kv_len, "max_len",
                   "contiguous capacity must be >= max_kv_len (" + std::to_string(p.max_kv_len) + ")");
  }
  return Status::ok();
}

// Waves of blocks the split count aims at: 2, or MINFER_DECODE_WAVES (1..8) for an A/B timing (v2 holds
// 3 blocks per SM at head_dim 128, so 3 waves may keep more bytes in flight). Read once.
int decode_waves() {
  static const int waves = [] {
    const char* v = std::getenv("MINFER_DECODE_WAVES");
    const int w = v ? std::atoi(v) : 2;
    return w >= 1 && w <= 8 ? w : 2;
  }();
  return waves;
}

// Fewest keys per split: 128, or MINFER_DECODE_MIN_KEYS (16..65536) for an A/B timing (a larger value
// leaves short caches with one split and no combine launch). Read once.
int64_t min_keys_per_split() {
  static const int64_t keys = [] {
    const char* v = std::getenv("MINFER_DECODE_MIN_KEYS");
    const int64_t k = v ? std::atoll(v) : kMinKeysPerSplit;
    return k >= 16 && k <= 65536 ? k : int64_t{kMinKeysPerSplit};
  }();
  return keys;
}

}  // namespace

int decode_attention_splits(int batch, int heads, int kv_heads, int max_kv_len, int num_sms) {
  const int groups = (heads / std::max(kv_heads, 1) + kMaxGroup - 1) / kMaxGroup;
  const int64_t work = static_cast<int64_t>(batch) * kv_heads * groups;  // blocks with one split
  const int64_t want = (decode_waves() * static_cast<int64_t>(num_sms) + work - 1) / std::max<int64_t>(work, 1);
  const int64_t cap = (static_cast<int64_t>(max_kv_len) + min_keys_per_split() - 1) / min_keys_per_split();
  return static_cast<int>(std::clamp<int64_t>(std::min(want, cap), 1, kMaxSplits));
}

size_t decode_attention_workspace_bytes(int batch, int heads, int head_dim, int num_splits) {
  if (num_splits <= 1) return 0;
  return static_cast<size_t>(batch) * heads * num_splits * (head_dim + 1) * sizeof(float);
}

Status decode_attention_forward(const DecodeAttentionParams& p, cudaStream_t stream) {
  const Status st = check_params(p);
  if (!st.is_ok()) return st;
  int splits = p.num_splits;
  if (splits == 0) {
    int dev = 0, sms = 0;
    MINFER_CUDA_RETURN(cudaGetDevice(&dev));
    MINFER_CUDA_RETURN(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    splits = decode_attention_splits(p.batch, p.heads, p.kv_heads, p.max_kv_len, sms);
  }
  MINFER_REQUIRE(splits >= 1 && splits <= kMaxSplits, "num_splits",
                 "must be in [1, 64] (or 0: automatic), got " + std::to_string(splits));
  const size_t need = decode_attention_workspace_bytes(p.batch, p.heads, p.head_dim, splits);
  MINFER_REQUIRE(p.workspace_bytes >= need && (need == 0 || p.workspace), "workspace",
                 "needs " + std::to_string(need) + " bytes for " + std::to_string(splits) + " splits, got " +
                     std::to_string(p.workspace_bytes));
  switch (p.head_dim) {
    case 16: MINFER_DISPATCH_DTYPE(p.dtype, T, { return launch<T, 16>(p, splits, stream); });
    case 32: MINFER_DISPATCH_DTYPE(p.dtype, T, { return launch<T, 32>(p, splits, stream); });
    case 64: MINFER_DISPATCH_DTYPE(p.dtype, T, { return launch<T, 64>(p, splits, stream); });
    case 128: MINFER_DISPATCH_DTYPE(p.dtype, T, { return launch<T, 128>(p, splits, stream); });
  }
  return Status::error("head_dim: unsupported value " + std::to_string(p.head_dim) + " (supported: 16, 32, 64, 128)");
}

}  // namespace minfer
