// kernels/decode_attention.cu: split-KV decode attention (see decode_attention.h). Versions held
// here: v2 tensor-core path (fp16, bf16; pages of a multiple of 16 tokens) and the v1 scalar path
// (fp32, and fp16/bf16 with other page sizes); head_dim 16, 32, 64, 128 (16 and 32 serve the engine's
// tiny test models).
// Both: grid (NS, nkv * head groups, B). A block owns one key range of one split of
// one sequence and up to 16 query heads of one KV head (a head group), so each KV byte is read once
// per group. With NS == 1 the block writes the final output, else a partial (normalised output,
// log2-sum-exp) per split; the combine pass, grid (B * nh), weighs them by exp2(lse_s - max lse).
// v2 (fp16, bf16): 4 warps; each warp streams its own 16 keys of every 64-key step through shared
// memory with cp.async, double-buffered and synchronised per warp only (no block barrier in the key
// loop, so the next step's loads are in flight while the tensor cores work). The group's query heads
// are the 16 rows of an mma.sync m16n8k16 A operand (rows past the group are zero): S = Q K^T, online
// softmax in fp32 per warp, O += P V with P split as hi + lo in the storage type (as in
// kernels/flash_prefill.cu: P rounded once costs ~2e-3 relative error). The 4 warps' (max, sum, O)
// are merged through shared memory at the end. v2's key ranges are near-equal shares of whole 16-key
// runs (tc_split_range); v1's are chunks of a multiple of 32 keys. A warp's 16 keys of a step
// are 16 consecutive cache rows when the cache is contiguous or its pages hold a multiple of 16 tokens:
// v2 needs that (the block-table rows of a warp's steps are loaded 32 steps ahead, one per lane, and
// shuffled out: no dependent global load in the key loop); other page sizes take v1. The key loop is
// kept short (H100, session 26: 1090 -> 493 SASS instructions a step, decode 0.94x the time over 22 cases):
// each 16-key run's copies are straight-line code in one of six compile-time forms (L2 hint x zero-fill
// operand, picked once per run), addressed by byte strides; K fragments by ldmatrix.x4; the scale
// folded into one FFMA per score and the hardware exp2.
// v1 (fp32, and fp16/bf16 with pages of other sizes): 128 threads, tiles of 32 keys staged in shared
// memory as fp32; thread (head, key) scores; warp w keeps the online softmax of heads w, w + 4, ...;
// thread d accumulates output dim d.
#include "kernels/decode_attention.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/common/bulk.cuh"
#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/env.h"
#include "kernels/common/pdl.cuh"
#include "kernels/common/mma.cuh"
#include "kernels/common/rope_head.cuh"
#include "kernels/common/tensor_map.h"

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
  int heads_fast;  // 1: grid (nkv * groups, NS, B), the KV heads of one key range side by side; 0: (NS, nkv * groups, B)
};

// This block's (head-group index over nkv * groups, split) from its grid position (see SplitOut).
__device__ __forceinline__ int2 block_head_split(const SplitOut& so) {
  return so.heads_fast ? make_int2(blockIdx.x, blockIdx.y) : make_int2(blockIdx.y, blockIdx.x);
}

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
  const int2 hs = block_head_split(so);
  const int b = blockIdx.z, kvh = hs.x / so.groups, split = hs.y;
  const int group = p.heads / p.kv_heads, g0 = (hs.x % so.groups) * kMaxGroup;
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

template <typename T, int HD, int kStages>
constexpr int tc_pipe_bytes() {  // K and V, kStages stages, every warp
  return kTcWarps * kStages * 2 * kWarpKeys * (HD + kTcPad) * static_cast<int>(sizeof(T));
}
template <int HD>
constexpr int tc_merge_bytes() {  // per warp: O (16, HD), max (16), sum (16), fp32
  return kTcWarps * (16 * HD + 32) * static_cast<int>(sizeof(float));
}
template <typename T, int HD, int kStages>
constexpr int tc_smem_bytes() {
  return tc_pipe_bytes<T, HD, kStages>() > tc_merge_bytes<HD>() ? tc_pipe_bytes<T, HD, kStages>() : tc_merge_bytes<HD>();
}

// Keys [x, y) of split `split` of a sequence of len keys: the len / 16 runs of 16 keys dealt out in
// near-equal whole-run shares (split i starts at run i * runs / splits), so every split of a sequence
// reads within 16 keys of the same number and each warp's 16 keys start on a multiple of 16 (a page
// boundary or inside one page). The last split ends at len.
__device__ __forceinline__ int2 tc_split_range(int len, int split, int splits) {
  const int64_t runs = (len + kWarpKeys - 1) / kWarpKeys;
  const int x = static_cast<int>(split * runs / splits) * kWarpKeys;
  const int y = static_cast<int>((split + 1) * runs / splits) * kWarpKeys;
  return make_int2(x, min(len, y));
}

// The keys of tc_split_range's longest split of a len-key cache over `splits` splits:
// whole 16-key runs, ceil(runs / splits) of them.
__host__ __device__ __forceinline__ int64_t tc_longest_split_keys(int64_t len, int64_t splits) {
  const int64_t runs = (std::max<int64_t>(len, 1) + kWarpKeys - 1) / kWarpKeys, s = std::max<int64_t>(splits, 1);
  return (runs + s - 1) / s * kWarpKeys;
}

// A warp's walk over its keys k, k + kStepKeys, k + 2 kStepKeys, ... (steps s = 0, 1, 2, ...) of
// sequence b. Pages hold a multiple of 16 tokens, so the warp's keys k .. k + 15 of a step are 16
// consecutive cache rows. For a paged cache the block-table lookups run 32 steps ahead, off the key
// loop's path: lane l holds the cache row of step 32 j + l of the current batch j (cur) and of the
// next (next, loaded when the batch before it starts), and a step's row is a shuffle of cur.
struct KeyCursor {
  int k, s;
  int64_t cur, next;
};
// Cache row of key k of sequence b in a paged cache (0 when k >= kend: nothing is read).
__device__ __forceinline__ int64_t tc_paged_row(const DecodeAttentionParams& p, int b, int k, int kend) {
  if (k >= kend) return 0;
  const int64_t page = p.block_table[static_cast<int64_t>(b) * p.max_pages + k / p.page_size];
  return page * p.page_size + k % p.page_size;
}
__device__ __forceinline__ KeyCursor tc_cursor(const DecodeAttentionParams& p, int b, int k, int kend, int lane) {
  KeyCursor c{k, 0, 0, 0};
  if (p.block_table) {
    c.cur = tc_paged_row(p, b, k + lane * kStepKeys, kend);
    c.next = tc_paged_row(p, b, k + (32 + lane) * kStepKeys, kend);
  }
  return c;
}
__device__ __forceinline__ void tc_cursor_step(const DecodeAttentionParams& p, int b, int kend, int lane, KeyCursor& c) {
  c.k += kStepKeys;
  if (++c.s % 32 == 0 && p.block_table) {  // a new batch of 32 steps: load the one after it
    c.cur = c.next;
    c.next = tc_paged_row(p, b, c.k + (32 + lane) * kStepKeys, kend);
  }
}
// Cache row of the cursor's key (row0 of its 16). 0 when the key is >= kend (no key of the step is
// read). Warp-uniform (the paged form shuffles).
__device__ __forceinline__ int64_t tc_cursor_row(const DecodeAttentionParams& p, int b, const KeyCursor& c, int kend) {
  if (c.k >= kend) return 0;
  if (!p.block_table) return static_cast<int64_t>(b) * p.max_len + c.k;
  return __shfl_sync(0xffffffffu, c.cur, c.s % 32);
}

// Element offset of cache row `row` (tc_cursor_row's: b L + k for a contiguous cache) of KV head kvh.
template <int HD>
__device__ __forceinline__ int64_t tc_cache_off(const DecodeAttentionParams& p, int kvh, int64_t row) {
  return (row * p.kv_heads + kvh) * HD;
}

// Keys [k0, k0 + 16) of (b, kvh), the cache rows row0 .. row0 + 15, into this warp's K and V stage
// buffers (rows of HD + kTcPad); keys >= kend are zero-filled and never read from global memory.
// skip: a key whose rows are not copied at all (the fused prologue writes them; -1: none).
template <typename T, int HD, int L2, bool kWhole>
__device__ __forceinline__ void tc_load_run_form(const DecodeAttentionParams& p, int kvh, int64_t row0, int k0,
                                                 int kend, T* ks, T* vs, int lane, int skip) {
  constexpr int kChunks = HD / 8, kRowsPerPass = 32 / kChunks;  // a pass: 32 lanes x 16 bytes
  static_assert(32 % kChunks == 0, "a row's 16-byte chunks divide a warp");
  // The lane's first row and chunk; pass j is j * kRowsPerPass cache rows on (byte offsets, 32-bit: a
  // run spans 16 rows of kv_heads * HD elements). A zero-filled copy (key past kend) keeps the first
  // row's address, which it does not read.
  const int r0 = lane / kChunks, c = (lane % kChunks) * 8;
  const int64_t off0 = tc_cache_off<HD>(p, kvh, row0 + r0) + c;
  const char* kb = reinterpret_cast<const char*>(static_cast<const T*>(p.k_cache) + off0);
  const char* vb = reinterpret_cast<const char*>(static_cast<const T*>(p.v_cache) + off0);
  const int pass_bytes = kRowsPerPass * p.kv_heads * HD * static_cast<int>(sizeof(T));
#pragma unroll
  for (int j = 0; j < kWarpKeys / kRowsPerPass; ++j) {
    const int r = r0 + j * kRowsPerPass;
    if (k0 + r == skip) continue;
    const bool ok = kWhole || k0 + r < kend;
    const int o = ok ? j * pass_bytes : 0;
    kern::cp_async16_form<L2, kWhole>(ks + r * (HD + kTcPad) + c, kb + o, ok);
    kern::cp_async16_form<L2, kWhole>(vs + r * (HD + kTcPad) + c, vb + o, ok);
  }
}

// The copy form (L2 hint, zero-fill operand) is chosen once per run, not per copy: both are warp-uniform.
template <typename T, int HD>
__device__ __forceinline__ void tc_load_run(const DecodeAttentionParams& p, int kvh, int64_t row0, int k0, int kend,
                                            T* ks, T* vs, int lane, int skip = -1) {
  const bool whole = p.zfill_edge == 1 && k0 + kWarpKeys <= kend;  // no zero-fill operand needed
  if (whole) {
    if (p.l2_prefetch == 128) tc_load_run_form<T, HD, 128, true>(p, kvh, row0, k0, kend, ks, vs, lane, skip);
    else if (p.l2_prefetch == 256) tc_load_run_form<T, HD, 256, true>(p, kvh, row0, k0, kend, ks, vs, lane, skip);
    else tc_load_run_form<T, HD, 0, true>(p, kvh, row0, k0, kend, ks, vs, lane, skip);
  } else {
    if (p.l2_prefetch == 128) tc_load_run_form<T, HD, 128, false>(p, kvh, row0, k0, kend, ks, vs, lane, skip);
    else if (p.l2_prefetch == 256) tc_load_run_form<T, HD, 256, false>(p, kvh, row0, k0, kend, ks, vs, lane, skip);
    else tc_load_run_form<T, HD, 0, false>(p, kvh, row0, k0, kend, ks, vs, lane, skip);
  }
}

// The bulk-copy form of tc_load_run (MINFER_DECODE_COPY=bulk): lane r < 16 copies key row r and lane
// 16 + r value row r with one cp.async.bulk each, completing on bar, armed here for those bytes. Rows
// past kend repeat the last key's row (finite values; their scores are masked), so no row past the
// sequence is read. k0 < kend. H100: 1.01-1.04x cp.async at batch 64 (three blocks an SM), 0.70-0.99x
// with one block an SM (reports/logs/h100/ab/ab_decode_l2_prefetch_bulk.csv); opt-in.
template <typename T, int HD>
__device__ __forceinline__ void bulk_load_run(const DecodeAttentionParams& p, int kvh, int64_t row0, int k0, int kend,
                                              T* ks, T* vs, uint64_t* bar, int lane) {
  constexpr unsigned kRow = HD * sizeof(T);
  if (lane == 0) kern::mbar_expect_tx(bar, 2 * kWarpKeys * kRow);
  __syncwarp();
  const int r = lane & (kWarpKeys - 1), n = min(kWarpKeys, kend - k0);
  const int64_t off = tc_cache_off<HD>(p, kvh, row0 + min(r, n - 1));
  const T* src = (lane < kWarpKeys ? static_cast<const T*>(p.k_cache) : static_cast<const T*>(p.v_cache)) + off;
  kern::bulk_copy((lane < kWarpKeys ? ks : vs) + r * (HD + kTcPad), src, kRow, bar);
}

// One warp step's copies: cp.async (zero-filled past kend), or bulk copies on bar (none past kend).
template <typename T, int HD, bool kBulk>
__device__ __forceinline__ void tc_issue(const DecodeAttentionParams& p, int kvh, int64_t row0, int k0, int kend, T* ks,
                                         T* vs, uint64_t* bar, int lane, int skip = -1) {
  if constexpr (kBulk) {
    if (k0 < kend) bulk_load_run<T, HD>(p, kvh, row0, k0, kend, ks, vs, bar, lane);
  } else {
    tc_load_run<T, HD>(p, kvh, row0, k0, kend, ks, vs, lane, skip);
  }
}

// The TMA form (MINFER_DECODE_COPY=tma, DecodeAttentionParams::tma; head_dim 64 and 128, sm_90+): the
// K and V caches as 2-D tensor maps (cache rows x kv_heads * HD; boxes of 64 columns x 16 rows, 128-byte
// swizzle: kernels/common/tensor_map.h), and a warp's 16-key run copied by lane 0 as HD / 64 boxes each
// of K and V, completing on the stage's barrier: 2 (hd 64) or 4 (hd 128) copies a step where cp.async
// takes 16 instructions of 32 lanes and the bulk form 32 row copies. Its stages are unpadded (rows of
// HD elements, the swizzle keeps ldmatrix free of bank conflicts), 1024-byte aligned. Rows past the
// sequence's end inside a run are copied as they are (the next sequence's rows or stale cache rows; the
// tensor's end reads as zero): their scores are masked, and their V rows are zeroed in shared memory
// before use (0 x NaN would be NaN), so the output equals the cp.async form's bit for bit. H100, 22 bf16
// cases at head_dim 128 (reports/logs/h100/session31/ab/ab_decode_tma.csv): 1.018x the cp.async form
// (1.008-1.035, every case), 1.03-1.05x with three stages at batch 64 (e478b85, whose ldmatrix addresses
// were 64-bit: 138 registers at head_dim 64 against cp.async's 96; now 32-bit shared addresses with the
// swizzle as one XOR a slice, tma_slice_at: 96 at head_dim 64, 168 at 128 as before; not yet re-timed).
// Opt-in until head_dim 64 and the engine's steps are timed.
struct TcMapsOn {
  CUtensorMap k, v;
};
struct TcMapsOff {};
template <bool kTma>
using TcMaps = std::conditional_t<kTma, TcMapsOn, TcMapsOff>;

template <typename T, int HD>
constexpr int tma_stage_bytes() {  // K then V of one warp's stage: 2 x HD / 64 boxes of 16 rows x 128 bytes
  return 2 * kWarpKeys * HD * static_cast<int>(sizeof(T));
}
// Byte offset, inside one K or V run of the TMA form, of 16-byte chunk `chunk` (of HD / 8) of row r.
__device__ __forceinline__ uint32_t tma_swizzled(int r, int chunk) {
  return static_cast<uint32_t>((chunk >> 3) * (kWarpKeys * 128) + r * 128 + (((chunk & 7) ^ (r & 7)) << 4));
}
// The ldmatrix row address of 16-column slice j (columns 16 j .. 16 j + 15) of a TMA-form run at `run`
// (shared address), for the lane whose row is r and whose 8-column half is h: chunk 2 j + h of row r,
// i.e. tma_swizzled(r, 2 j + h). Since 2 j + h = 2 j ^ h and the run's rows start on 128-byte
// boundaries, that is the lane's slice-0 address `at0` = run + r * 128 + ((h ^ (r % 8)) << 4) with the
// box's 2048 bytes added and (j % 4) << 5 XORed in: one instruction a slice (tma_lane_at0 gives at0).
__device__ __forceinline__ uint32_t tma_lane_at0(uint32_t run, int r, int h) {
  return run + static_cast<uint32_t>(r * 128 + ((h ^ (r & 7)) << 4));
}
__device__ __forceinline__ uint32_t tma_slice_at(uint32_t at0, int j) {
  return (at0 + static_cast<uint32_t>((j >> 2) * (kWarpKeys * 128))) ^ static_cast<uint32_t>((j & 3) << 5);
}
template <typename T, int HD>
__device__ __forceinline__ void tma_load_run(const TcMapsOn& maps, int kvh, int64_t row0, T* ks, T* vs, uint64_t* bar,
                                             int lane) {
  if (lane == 0) {
    kern::mbar_expect_tx(bar, static_cast<unsigned>(tma_stage_bytes<T, HD>()));
    const uint32_t kd = kern::smem_addr(ks), vd = kern::smem_addr(vs);
    const int row = static_cast<int>(row0);
#pragma unroll
    for (int j = 0; j < HD / 64; ++j) {
      kern::tma_load_2d(kd + j * kWarpKeys * 128, &maps.k, kvh * HD + j * 64, row, bar);
      kern::tma_load_2d(vd + j * kWarpKeys * 128, &maps.v, kvh * HD + j * 64, row, bar);
    }
  }
}
// Zeroes V rows [n, 16) of a TMA-form run (the keys past the sequence's end), then syncs the warp.
template <typename T, int HD>
__device__ __forceinline__ void tma_zero_tail(T* vs, int n, int lane) {
  constexpr int kChunks = HD / 8;
  char* base = reinterpret_cast<char*>(vs);
  for (int i = n * kChunks + lane; i < kWarpKeys * kChunks; i += 32) {
    const int r = i / kChunks, c = i % kChunks;
    *reinterpret_cast<uint4*>(base + tma_swizzled(r, c)) = make_uint4(0u, 0u, 0u, 0u);
  }
  __syncwarp();
}

// Whether a row of the fused prologue is live: a cache slot, and a position inside the cos/sin table
// and the cache (else padding: q zero, nothing written).
__device__ __forceinline__ bool rope_row_live(const QkvRopeParams& r, int slot, int pos) {
  return slot >= 0 && pos >= 0 && pos < r.max_positions && pos < r.capacity;
}

// The fused prologue's query rows (kRope): up to 16 heads of HD elements, after the stages.
template <typename T, int HD>
constexpr int tc_rope_q_bytes() {
  return kMaxGroup * HD * static_cast<int>(sizeof(T));
}

// kRope (DecodeAttentionParams::rope): qkv_rope_cache's work for row b before the key loop. The
// block's query heads [h0, h0 + gn) are normed and rotated into qs (kMaxGroup, HD) (zero for a padding
// row); the blocks whose keys [kbeg, kend) hold the row's position, and block (last split, first head
// group), which exists for every row, write its K (normed, rotated) and V into the cache, so the
// cache ends as qkv_rope_cache leaves it (writers of one row write the same bits). The block barrier
// after the writes orders them before any warp's cp.async reads them (same block). Warps take the
// query heads in turn, then warp 3 the key and warp 2 the value.
template <typename T, int HD>
__device__ __forceinline__ void tc_rope_prologue(const DecodeAttentionParams& p, int b, int kvh, int h0, int gn,
                                                 bool writer, int kbeg, int kend, T* qs, int warp, int lane) {
  const QkvRopeParams& r = p.rope;
  const int nh = p.heads, nkv = p.kv_heads;
  const T* row = static_cast<const T*>(r.qkv) + static_cast<int64_t>(b) * (nh + 2 * nkv) * HD;
  const int slot = r.token_slot[b], pos = r.positions[b];
  const bool live = rope_row_live(r, slot, pos);
  const float* cs = r.cos_sin + (live ? static_cast<int64_t>(pos) * HD : 0);
  for (int j = warp; j < gn; j += kTcWarps) {
    if (live) {
      kern::rope_head<T>(row + static_cast<int64_t>(h0 + j) * HD, qs + j * HD, static_cast<const T*>(r.q_norm),
                         r.norm_eps, cs, HD);
    } else {
      for (int d = lane; d < HD; d += 32) qs[j * HD + d] = kern::from_float<T>(0.0f);
    }
  }
  if (live && (writer || (pos >= kbeg && pos < kend))) {
    const int64_t cache_row = (static_cast<int64_t>(slot) * r.capacity + pos) * nkv * HD + static_cast<int64_t>(kvh) * HD;
    if (warp == kTcWarps - 1) {
      kern::rope_head<T>(row + static_cast<int64_t>(nh + kvh) * HD, static_cast<T*>(r.k_cache) + cache_row,
                         static_cast<const T*>(r.k_norm), r.norm_eps, cs, HD);
    } else if (warp == kTcWarps - 2) {
      const T* src = row + static_cast<int64_t>(nh + nkv + kvh) * HD;
      T* dst = static_cast<T*>(r.v_cache) + cache_row;
      for (int d = lane; d < HD; d += 32) dst[d] = src[d];
    }
  }
  __syncthreads();  // qs written; this block's cache writes before any warp's copies read them
}

// The overlapped form of tc_rope_prologue (DecodeAttentionParams::rope_overlap), the same work and
// bits in parts: tc_rope_weights before the wait (the norms' weights: no kernel writes them),
// tc_rope_slot and tc_rope_rows right after it (the row's slot and position, this warp's first query
// head, the K row in warp 3 and the V row in warp 2: loads that wait on nothing but the previous kernel,
// issued with the cache length's), tc_rope_cs (the position's cos and sin), then the caller issues its
// first copies, leaving out the new key's row where it falls in them, and tc_rope_late rotates and
// writes; it also writes the new key's K and V rows into this block's stage buffers (patch, or null),
// where they would have landed. With prewait (DecodeAttentionParams::prewait) everything up to the
// copies goes before the wait, and only tc_rope_rows after it.
template <typename T, int HD>
struct RopeEarly {
  kern::RopeRegs q, qw, k, kw;  // this warp's first query head and the query norm; the K row and the key norm
  kern::RopeRegs cs;            // the position's cos, sin pairs (tc_rope_cs)
  T v[(HD + 31) / 32];          // the V row (warp kTcWarps - 2): elements lane + 32 i
  int slot = -1, pos = -1;
  bool live = false;            // rope_row_live(slot, pos)
};

template <typename T, int HD>
__device__ __forceinline__ void tc_rope_weights(const DecodeAttentionParams& p, int gn, int warp, RopeEarly<T, HD>& e) {
  if (warp < gn && p.rope.q_norm) e.qw = kern::rope_load<T>(static_cast<const T*>(p.rope.q_norm), HD);
  if (warp == kTcWarps - 1 && p.rope.k_norm) e.kw = kern::rope_load<T>(static_cast<const T*>(p.rope.k_norm), HD);
}

// The row's slot and position (written by the step's advance, never by the previous kernel).
template <typename T, int HD>
__device__ __forceinline__ void tc_rope_slot(const DecodeAttentionParams& p, int b, RopeEarly<T, HD>& e) {
  e.slot = p.rope.token_slot[b], e.pos = p.rope.positions[b];
  e.live = rope_row_live(p.rope, e.slot, e.pos);
}

// The row's query heads (this warp's first), K and V rows: the previous kernel's output.
template <typename T, int HD>
__device__ __forceinline__ void tc_rope_rows(const DecodeAttentionParams& p, int b, int kvh, int h0, int gn, int warp,
                                             int lane, RopeEarly<T, HD>& e) {
  const QkvRopeParams& r = p.rope;
  const T* row = static_cast<const T*>(r.qkv) + static_cast<int64_t>(b) * (p.heads + 2 * p.kv_heads) * HD;
  if (warp < gn) e.q = kern::rope_load<T>(row + static_cast<int64_t>(h0 + warp) * HD, HD);
  if (warp == kTcWarps - 1) e.k = kern::rope_load<T>(row + static_cast<int64_t>(p.heads + kvh) * HD, HD);
  if (warp == kTcWarps - 2) {
    const T* src = row + static_cast<int64_t>(p.heads + p.kv_heads + kvh) * HD;
#pragma unroll
    for (int i = 0; i < (HD + 31) / 32; ++i)
      if (lane + 32 * i < HD) e.v[i] = src[lane + 32 * i];
  }
}

// The position's cos, sin pairs, loaded before the block's copies are issued (so that they do not
// queue behind them) by the warps that rotate: those with a query head, and the key's.
template <typename T, int HD>
__device__ __forceinline__ void tc_rope_cs(const DecodeAttentionParams& p, int gn, int warp, RopeEarly<T, HD>& e) {
  if (e.live && (warp < gn || warp == kTcWarps - 1))
    e.cs = kern::rope_load_cs(p.rope.cos_sin + static_cast<int64_t>(e.pos) * HD, HD);
}

// Whether row b's new key is written by this block (tc_rope_prologue's rule) and a live row.
template <typename T, int HD>
__device__ __forceinline__ bool tc_rope_writes(const RopeEarly<T, HD>& e, bool writer, int kbeg, int kend) {
  return e.live && (writer || (e.pos >= kbeg && e.pos < kend));
}

template <typename T, int HD>
__device__ __forceinline__ void tc_rope_late(const DecodeAttentionParams& p, const RopeEarly<T, HD>& e, int b, int kvh,
                                             int h0, int gn, bool writes, T* patch, T* qs, int warp, int lane) {
  const QkvRopeParams& r = p.rope;
  const int nh = p.heads, nkv = p.kv_heads;
  const int slot = e.slot, pos = e.pos;
  const bool live = e.live;
  const float* cs = r.cos_sin + (live ? static_cast<int64_t>(pos) * HD : 0);
  if (warp < gn) {
    if (live) {
      kern::rope_finish<T>(e.q, e.qw, r.q_norm != nullptr, r.norm_eps, e.cs, HD, qs + warp * HD);
    } else {
      for (int d = lane; d < HD; d += 32) qs[warp * HD + d] = kern::from_float<T>(0.0f);
    }
  }
  const T* row = static_cast<const T*>(r.qkv) + static_cast<int64_t>(b) * (nh + 2 * nkv) * HD;
  for (int j = warp + kTcWarps; j < gn; j += kTcWarps) {  // the heads past the first of each warp
    if (live) {
      kern::rope_head<T>(row + static_cast<int64_t>(h0 + j) * HD, qs + j * HD, static_cast<const T*>(r.q_norm),
                         r.norm_eps, cs, HD);
    } else {
      for (int d = lane; d < HD; d += 32) qs[j * HD + d] = kern::from_float<T>(0.0f);
    }
  }
  if (writes) {
    const int64_t cache_row = (static_cast<int64_t>(slot) * r.capacity + pos) * nkv * HD + static_cast<int64_t>(kvh) * HD;
    if (warp == kTcWarps - 1) {
      kern::rope_finish<T>(e.k, e.kw, r.k_norm != nullptr, r.norm_eps, e.cs, HD,
                           static_cast<T*>(r.k_cache) + cache_row, patch);
    } else if (warp == kTcWarps - 2) {
      T* dst = static_cast<T*>(r.v_cache) + cache_row;
      T* pv = patch ? patch + kWarpKeys * (HD + kTcPad) : nullptr;  // the V row of the same stage
#pragma unroll
      for (int i = 0; i < (HD + 31) / 32; ++i) {
        const int d = lane + 32 * i;
        if (d >= HD) continue;
        dst[d] = e.v[i];
        if (pv) pv[d] = e.v[i];
      }
    }
  }
  __syncthreads();  // qs and the patched rows written; the cache writes before any later copy reads them
}

// The cluster form (DecodeAttentionParams::cluster): at most 16 splits a cluster (8 by default:
// DecodeAttentionParams::cluster_max). Its receive area,
// after the stages (and the fused prologue's query rows): the slices of the normalised outputs the
// other splits push to this block, (splits, ceil(gn * HD / splits)) fp32, then their log2-sum-exps,
// (kMaxClusterSplits, kMaxGroup).
constexpr int kMaxClusterSplits = 16;
template <int HD>
constexpr int tc_cluster_bytes() {
  return (kMaxGroup * HD + kMaxClusterSplits + kMaxClusterSplits * kMaxGroup) * static_cast<int>(sizeof(float));
}

// One trace record (DecodeAttentionParams::trace): the block, its SM, then the globaltimer at points
// 0 .. 7 (entry, waited, prologue, first keys, loop, merge, end, and after the cluster barrier).
constexpr int kTraceWords = 9;

__device__ __forceinline__ unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Thread 0's globaltimer at trace point i (DecodeAttentionParams::trace), kept in shared memory.
__device__ __forceinline__ void trace_mark(const DecodeAttentionParams& p, unsigned long long* tr, int i) {
  if (p.trace && threadIdx.x == 0) tr[i] = global_ns();
}

// Cluster barrier halves (sm_90+; every thread of every block of the cluster, warps converged).
__device__ __forceinline__ void cluster_arrive_relaxed() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.relaxed.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_arrive_release() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.arrive.release.aligned;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void cluster_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("barrier.cluster.wait.acquire.aligned;\n" ::: "memory");
#endif
}
// *at in the shared memory of the cluster's block `rank` (at: this block's address of the same variable).
__device__ __forceinline__ void store_cluster(float* at, unsigned rank, float v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  const unsigned local = static_cast<unsigned>(__cvta_generic_to_shared(at));
  unsigned remote;
  asm volatile("mapa.shared::cluster.u32 %0, %1, %2;\n" : "=r"(remote) : "r"(local), "r"(rank));
  asm volatile("st.shared::cluster.f32 [%0], %1;\n" ::"r"(remote), "f"(v) : "memory");
#endif
}

// One warp step's online softmax over raw scores s (rows g: s[.][0..1], g + 8: s[.][2..3]; the key of
// s[nt][e] and s[nt][2 + e] is key0 + nt * 8 + t * 2 + e, key0 the warp's first key of the step):
// keys >= kend masked, only on a step that reaches kend; the scale (positive) folded into one FFMA
// per score, since the raw row max times the scale is the scaled max; the hardware exp2 (results
// below 2^-126 flushed to 0, as the sm90 prefill's). m: running max (scaled, log2 domain), l: this
// lane's part of the row sum.
template <int HD>
__device__ __forceinline__ void tc_softmax(float (&s)[2][4], float (&o)[HD / 8][4], float& m_a, float& m_b, float& l_a,
                                           float& l_b, float scale_log2, int key0, int t, int kend, bool skip_unit) {
  if (key0 + kWarpKeys > kend) {  // the warp's run reaches kend (warp-uniform)
#pragma unroll
    for (int nt = 0; nt < 2; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e)
        if (key0 + nt * 8 + t * 2 + e >= kend) s[nt][e] = s[nt][2 + e] = -INFINITY;
  }
  float base_a, base_b, corr_a, corr_b;
  kern::quad_max_fold(fmaxf(fmaxf(s[0][0], s[0][1]), fmaxf(s[1][0], s[1][1])),
                      fmaxf(fmaxf(s[0][2], s[0][3]), fmaxf(s[1][2], s[1][3])), scale_log2, m_a, m_b, base_a, base_b,
                      corr_a, corr_b);
  l_a *= corr_a, l_b *= corr_b;
  if (!(skip_unit && __all_sync(0xffffffffu, corr_a == 1.f && corr_b == 1.f))) {
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) o[i][0] *= corr_a, o[i][1] *= corr_a, o[i][2] *= corr_b, o[i][3] *= corr_b;
  }
#pragma unroll
  for (int nt = 0; nt < 2; ++nt) {
    s[nt][0] = kern::exp2_ftz(fmaf(s[nt][0], scale_log2, -base_a));
    s[nt][1] = kern::exp2_ftz(fmaf(s[nt][1], scale_log2, -base_a));
    s[nt][2] = kern::exp2_ftz(fmaf(s[nt][2], scale_log2, -base_b));
    s[nt][3] = kern::exp2_ftz(fmaf(s[nt][3], scale_log2, -base_b));
    l_a += s[nt][0] + s[nt][1];
    l_b += s[nt][2] + s[nt][3];
  }
}

// The split kernel's dynamic shared memory: the stages (or the merge area), the bulk copies' barriers,
// the fused prologue's query rows, the cluster's receive area (launch_tc's, and the occupancy query's).
// The TMA form: 1024 bytes of slack for aligning the stages, the stages (or the merge area), the barriers.
template <typename T, int HD, int kStages>
constexpr int tma_body_bytes() {
  return 1024 + (kTcWarps * kStages * tma_stage_bytes<T, HD>() > tc_merge_bytes<HD>() ? kTcWarps * kStages * tma_stage_bytes<T, HD>()
                                                                                         : tc_merge_bytes<HD>());
}
template <typename T, int HD, int kStages, bool kBulk, bool kRope, bool kCluster, bool kTma = false>
constexpr int tc_kernel_smem() {
  if constexpr (kTma) return tma_body_bytes<T, HD, kStages>() + kTcWarps * kStages * 8;
  return tc_smem_bytes<T, HD, kStages>() + (kBulk ? kTcWarps * kStages * 8 : 0) + (kRope ? tc_rope_q_bytes<T, HD>() : 0) +
         (kCluster ? tc_cluster_bytes<HD>() : 0);
}

template <typename T, int HD, int kStages, bool kBulk, bool kSkipUnit = false, bool kRope = false, bool kCluster = false,
          bool kTma = false>
__global__ void __launch_bounds__(kTcThreads)
    decode_split_tc(DecodeAttentionParams p, SplitOut so, float scale_log2, const __grid_constant__ TcMaps<kTma> maps) {
  static_assert(!kTma || (!kBulk && !kSkipUnit && !kRope && !kCluster && HD >= 64), "the TMA form is a plain form");
  static_assert(!kRope || (!kBulk && !kSkipUnit), "the fused prologue takes the default form (cp.async, 2 or 3 stages)");
  static_assert(!kCluster || (!kBulk && !kSkipUnit), "the cluster form takes the default form (cp.async, 2 or 3 stages)");
  static_assert(kStages >= 2, "the pipeline needs a stage in flight while one is read");
  __shared__ unsigned long long tr[8];  // the trace points (DecodeAttentionParams::trace)
  trace_mark(p, tr, 0);
  if (p.trace && threadIdx.x == 0) tr[3] = 0, tr[7] = 0;  // stay 0 without a key step, a cluster barrier
  if constexpr (kCluster) cluster_arrive_relaxed();  // this block has started (waited on before any push)
  kern::pdl_launch_dependents();
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int kS = HD + kTcPad;                    // shared row stride, elements
  constexpr int kRow = kTma ? HD : kS;               // shared row stride of K and V runs, elements
  constexpr int kWarpStage = 2 * kWarpKeys * kRow;   // K then V of one stage of one warp, elements
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  // kTma: the stages start at the first 1024-byte boundary (the 128-byte swizzle's alignment).
  unsigned char* stage_raw = smem_raw;
  if constexpr (kTma) stage_raw += (1024 - kern::smem_addr(smem_raw) % 1024) % 1024;
  T* wbuf = reinterpret_cast<T*>(stage_raw) + warp * kStages * kWarpStage;  // this warp's stages
  // kBulk, kTma: one barrier a stage a warp, after the stages (and the merge area).
  uint64_t* bars = reinterpret_cast<uint64_t*>(smem_raw + (kTma ? tma_body_bytes<T, HD, kStages>() : tc_smem_bytes<T, HD, kStages>())) +
                   warp * kStages;
  if constexpr (kBulk || kTma) {
    if (lane == 0)
      for (int st = 0; st < kStages; ++st) kern::mbar_init(&bars[st], 1);
    kern::fence_mbarrier_init();
    __syncwarp();
  }

  const int2 hs = block_head_split(so);
  const int b = blockIdx.z, kvh = hs.x / so.groups, split = hs.y;
  const int group = p.heads / p.kv_heads, g0 = (hs.x % so.groups) * kMaxGroup;
  const int gn = min(kMaxGroup, group - g0), h0 = kvh * group + g0;  // heads [h0, h0 + gn)
  // prewait: the previous kernel let this one launch only after its own wait (the caller's guarantee),
  // so what the kernels before it wrote (cache lengths, positions, slots, earlier keys) is final here.
  const bool prewait = kRope && p.prewait == 1;
  const bool overlap = kRope && (p.rope_overlap == 1 || prewait);
  [[maybe_unused]] RopeEarly<T, HD> early;
  if constexpr (kRope)
    if (overlap) tc_rope_weights<T, HD>(p, gn, warp, early);
  if (!prewait) {
    kern::pdl_wait();  // every read and write below depends on the previous kernel
    trace_mark(p, tr, 1);
  }
  if constexpr (kRope) {
    if (overlap) tc_rope_slot<T, HD>(p, b, early);
    if (overlap && !prewait) tc_rope_rows<T, HD>(p, b, kvh, h0, gn, warp, lane, early);
  }
  const int len = p.cache_lens[b];
  if constexpr (kRope)
    if (overlap) tc_rope_cs<T, HD>(p, gn, warp, early);
  const int2 kr = tc_split_range(len, split, so.splits);
  const int kbeg = kr.x, kend = kr.y;
  const int steps = kend > kbeg ? (kend - kbeg + kStepKeys - 1) / kStepKeys : 0;
  T* qs = reinterpret_cast<T*>(smem_raw + tc_smem_bytes<T, HD, kStages>());  // kRope: (kMaxGroup, HD)
  const bool writer = split == so.splits - 1 && g0 == 0;
  if constexpr (kRope)
    if (!overlap) tc_rope_prologue<T, HD>(p, b, kvh, h0, gn, writer, kbeg, kend, qs, warp, lane);
  // overlap: the new key, where this block writes it and it falls in the steps issued before the
  // prologue's rotation (the first kStages), is left out of their copies and written into its stage row
  // by tc_rope_late (patch).
  int skip = -1;
  [[maybe_unused]] T* patch = nullptr;
  [[maybe_unused]] bool writes = false;
  if constexpr (kRope) {
    writes = overlap && tc_rope_writes<T, HD>(early, writer, kbeg, kend);
    if (writes && early.pos >= kbeg && early.pos < kend && early.pos - kbeg < kStages * kStepKeys) {
      const int off = early.pos - kbeg, st = off / kStepKeys, w = (off % kStepKeys) / kWarpKeys;
      skip = early.pos;
      patch = reinterpret_cast<T*>(smem_raw) + w * kStages * kWarpStage + st * kWarpStage + (off % kWarpKeys) * kS;
    }
  }

  // This warp's first key of step s is kbeg + s * kStepKeys + warp * kWarpKeys. Steps 0 .. kStages - 2
  // are issued here, step it + kStages - 1 at step it (into the stage step it - 1 freed); the cache
  // row of the next step to issue is looked up one issue ahead (one block-table load per warp step,
  // off the path of the copies it addresses). Every step commits a group, empty past the last step,
  // so wait<kStages - 1> always means "step it has landed".
  // overlap: every stage is filled before the prologue's rotation (the loop's first issue, step
  // kStages - 1, goes out here, its group committed here), so that no copy waits behind the prologue.
  const int pre = overlap ? kStages : kStages - 1;
  const int wk0 = kbeg + warp * kWarpKeys;
  KeyCursor cur = tc_cursor(p, b, wk0, kend, lane);  // the next step to look up (one step ahead of the issue)
  int64_t row_next = steps > 0 ? tc_cursor_row(p, b, cur, kend) : 0;
#pragma unroll
  for (int st = 0; st < kStages; ++st) {
    if (st >= pre) break;
    if (st < steps) {
      T* sb = wbuf + st * kWarpStage;
      if constexpr (kTma) {
        if (wk0 + st * kStepKeys < kend) tma_load_run<T, HD>(maps, kvh, row_next, sb, sb + kWarpKeys * kRow, &bars[st], lane);
      } else {
        tc_issue<T, HD, kBulk>(p, kvh, row_next, wk0 + st * kStepKeys, kend, sb, sb + kWarpKeys * kS, &bars[st], lane,
                               skip);
      }
      tc_cursor_step(p, b, kend, lane, cur);
      row_next = st + 1 < steps ? tc_cursor_row(p, b, cur, kend) : 0;
    }
    kern::cp_async_commit();
  }
  if constexpr (kRope) {
    if (prewait) {  // the first copies are out: now the previous kernel's output
      kern::pdl_wait();
      trace_mark(p, tr, 1);
      tc_rope_rows<T, HD>(p, b, kvh, h0, gn, warp, lane, early);
    }
    if (overlap) tc_rope_late<T, HD>(p, early, b, kvh, h0, gn, writes, patch, qs, warp, lane);
  }
  trace_mark(p, tr, 2);

  // Q fragments: rows g and g + 8 of the group (zero past gn), dims kk * 16 + t * 2 (+1, +8, +9).
  const T* qg = kRope ? qs : static_cast<const T*>(p.q) + (static_cast<int64_t>(b) * p.heads + h0) * HD;  // (gn, HD)
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
    const int nx = it + kStages - 1;  // the step issued now
    if (nx >= pre) {  // (else issued and committed before the prologue's rotation)
      if (nx < steps) {
        T* nb = wbuf + (nx % kStages) * kWarpStage;
        const int k1 = wk0 + nx * kStepKeys;
        if constexpr (kTma) {
          if (k1 < kend) tma_load_run<T, HD>(maps, kvh, row_next, nb, nb + kWarpKeys * kRow, &bars[nx % kStages], lane);
        } else {
          tc_issue<T, HD, kBulk>(p, kvh, row_next, k1, kend, nb, nb + kWarpKeys * kS, &bars[nx % kStages], lane);
        }
        tc_cursor_step(p, b, kend, lane, cur);
        row_next = nx + 1 < steps ? tc_cursor_row(p, b, cur, kend) : 0;
      }
      kern::cp_async_commit();
    }
    const int key0 = wk0 + it * kStepKeys;
    if constexpr (kBulk || kTma) {
      if (key0 >= kend) continue;  // nothing of this warp's was copied (nor will be: later steps are past kend)
      while (!kern::mbar_try_wait(&bars[it % kStages], (it / kStages) & 1)) {
      }
    } else {
      kern::cp_async_wait<kStages - 1>();
    }
    if (it == 0) trace_mark(p, tr, 3);
    __syncwarp();
    const T* kt = wbuf + (it % kStages) * kWarpStage;  // (16, kRow)
    const T* vt = kt + kWarpKeys * kRow;         // (16, kRow)
    if constexpr (kTma)
      if (key0 + kWarpKeys > kend) tma_zero_tail<T, HD>(const_cast<T*>(vt), kend - key0, lane);

    // S = Q K^T: 16 rows x 16 keys; s[nt]: keys nt * 8 + t * 2 + {0, 1}, rows g (0, 1), g + 8 (2, 3).
    // K fragments by ldmatrix.x4: matrices (keys 0-7, dims +0), (0-7, +8), (8-15, +0), (8-15, +8) of
    // each 16 dims, i.e. the B fragments of both 8-key halves.
    float s[2][4];
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
    [[maybe_unused]] const T* krow = kt + ((lane >> 4) * 8 + (lane & 7)) * kS + ((lane >> 3) & 1) * 8;
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) {
      uint32_t kb[4];
      if constexpr (kTma)
        kern::ldmatrix_x4_at(kb, tma_slice_at(tma_lane_at0(kern::smem_addr(kt), (lane >> 4) * 8 + (lane & 7), (lane >> 3) & 1), kk));
      else
        kern::ldmatrix_x4(kb, krow + kk * 16);
      kern::mma16816<T>(s[0], qf[kk], kb[0], kb[1]);
      kern::mma16816<T>(s[1], qf[kk], kb[2], kb[3]);
    }
    tc_softmax<HD>(s, o, m_a, m_b, l_a, l_b, scale_log2, key0, t, kend, kSkipUnit);

    // O += P V over the 16 keys; P as hi + lo in T.
    const uint32_t ph[4] = {kern::pack2<T>(s[0][0], s[0][1]), kern::pack2<T>(s[0][2], s[0][3]),
                            kern::pack2<T>(s[1][0], s[1][1]), kern::pack2<T>(s[1][2], s[1][3])};
    uint32_t pl[4];
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const float x = s[r / 2][(r % 2) * 2], y = s[r / 2][(r % 2) * 2 + 1];
      pl[r] = kern::pack2<T>(kern::round_rest<T>(x), kern::round_rest<T>(y));
    }
    [[maybe_unused]] const T* vrow = vt + (((lane >> 3) & 1) * 8 + (lane & 7)) * kS + (lane >> 4) * 8;
#pragma unroll
    for (int dp = 0; dp < HD / 16; ++dp) {
      uint32_t vb[4];
      if constexpr (kTma)
        kern::ldmatrix_x4_trans_at(vb, tma_slice_at(tma_lane_at0(kern::smem_addr(vt), ((lane >> 3) & 1) * 8 + (lane & 7), lane >> 4), dp));
      else
        kern::ldmatrix_x4_trans(vb, vrow + dp * 16);
      kern::mma16816<T>(o[2 * dp], ph, vb[0], vb[1]);
      kern::mma16816<T>(o[2 * dp], pl, vb[0], vb[1]);
      kern::mma16816<T>(o[2 * dp + 1], ph, vb[2], vb[3]);
      kern::mma16816<T>(o[2 * dp + 1], pl, vb[2], vb[3]);
    }
    __syncwarp();  // this stage is refilled by the next step's prefetch
  }

  trace_mark(p, tr, 4);
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
  // Only the gn rows of heads are read below (the MMA rows past them are padding).
  if (g < gn) {
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) {
      const int c = i * 8 + t * 2;
      ow[g * HD + c] = o[i][0], ow[g * HD + c + 1] = o[i][1];
    }
    if (t == 0) ms[warp * 16 + g] = m_a, ls[warp * 16 + g] = l_a;
  }
  if (g + 8 < gn) {
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) {
      const int c = i * 8 + t * 2;
      ow[(g + 8) * HD + c] = o[i][2], ow[(g + 8) * HD + c + 1] = o[i][3];
    }
    if (t == 0) ms[warp * 16 + g + 8] = m_b, ls[warp * 16 + g + 8] = l_b;
  }
  __syncthreads();
  // kCluster: this block's output is pushed in slices of `per` elements, slice j to the cluster's block j
  // (the split of that rank), into its receive area at row `split`.
  [[maybe_unused]] float* recv_o = reinterpret_cast<float*>(smem_raw + tc_smem_bytes<T, HD, kStages>() + (kRope ? tc_rope_q_bytes<T, HD>() : 0));
  [[maybe_unused]] float* recv_l = recv_o + kMaxGroup * HD + kMaxClusterSplits;  // (kMaxClusterSplits, kMaxGroup)
  [[maybe_unused]] const int per = (gn * HD + so.splits - 1) / so.splits;
  if constexpr (kCluster) cluster_wait();  // every block of the cluster has started: its shared memory exists
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
    if constexpr (kCluster) {
      const int owner = i / per;
      store_cluster(recv_o + split * per + (i - owner * per), owner, val);
      if (d == 0) {
        const float lse = den > 0.f ? mx + log2f(den) : -INFINITY;
#pragma unroll
        for (int j = 0; j < kMaxClusterSplits; ++j)  // unrolled to the cluster bound: the stores issue together
          if (j < so.splits) store_cluster(recv_l + split * kMaxGroup + r, j, lse);
      }
      continue;
    }
    if (so.splits == 1) {
      static_cast<T*>(p.out)[bh * HD + d] = kern::from_float<T>(val);
      continue;
    }
    so.o[(bh * so.splits + split) * HD + d] = val;
    if (d == 0) so.lse[bh * so.splits + split] = den > 0.f ? mx + log2f(den) : -INFINITY;
  }
  trace_mark(p, tr, 5);
  if constexpr (kCluster) {
    cluster_arrive_release();  // every push of every block is visible to its owner after the wait
    cluster_wait();
    trace_mark(p, tr, 7);
    // This block's slice of the outputs: decode_combine's arithmetic and order over the splits. The
    // splits' loads are unrolled to the cluster bound (entries past so.splits read as -inf, skipped like
    // a split that saw no key), so that they issue together instead of one dependent load a split.
    for (int off = threadIdx.x; off < per; off += kTcThreads) {
      const int e = split * per + off;
      if (e >= gn * HD) break;
      const int r = e / HD, d = e % HD;
      float lse[kMaxClusterSplits], ov[kMaxClusterSplits];
#pragma unroll
      for (int s2 = 0; s2 < kMaxClusterSplits; ++s2) {
        lse[s2] = s2 < so.splits ? recv_l[s2 * kMaxGroup + r] : -INFINITY;
        ov[s2] = s2 < so.splits ? recv_o[s2 * per + off] : 0.f;
      }
      float mx = -INFINITY;
#pragma unroll
      for (int s2 = 0; s2 < kMaxClusterSplits; ++s2) mx = fmaxf(mx, lse[s2]);
      float num = 0.f, den = 0.f;
      if (mx > -INFINITY) {
#pragma unroll
        for (int s2 = 0; s2 < kMaxClusterSplits; ++s2) {
          if (lse[s2] == -INFINITY) continue;
          const float w = exp2f(lse[s2] - mx);
          num += w * ov[s2];
          den += w;
        }
      }
      const int64_t bh = static_cast<int64_t>(b) * p.heads + h0 + r;
      static_cast<T*>(p.out)[bh * HD + d] = kern::from_float<T>(den > 0.f ? num / den : 0.f);
    }
  }
  trace_mark(p, tr, 6);
  if (p.trace && threadIdx.x == 0) {  // one record: block, SM, the eight points
    const unsigned long long slot = atomicAdd(p.trace, 1ull);
    if (slot < p.trace[1]) {
      unsigned smid;
      asm volatile("mov.u32 %0, %%smid;" : "=r"(smid));
      unsigned long long* rec = p.trace + 2 + slot * kTraceWords;
      rec[0] = blockIdx.x | static_cast<unsigned long long>(blockIdx.y) << 16 |
               static_cast<unsigned long long>(blockIdx.z) << 32 | static_cast<unsigned long long>(smid) << 48;
      for (int j = 0; j < kTraceWords - 1; ++j) rec[1 + j] = tr[j];
    }
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

// Stages of each warp's copy pipeline in v2: 2, or MINFER_DECODE_STAGES=3 (head_dim 64 and 128:
// a step more in flight per warp, fewer blocks per SM at head_dim 128), or 4 (the TMA form only: three
// steps in flight a warp, for grids of one block an SM). Read once.
// decode_stages_env: MINFER_DECODE_STAGES's count, 0 where it is unset (then the TMA form's stage rule
// may choose, see auto_stages).
int decode_stages_env() {
  static const int stages = [] {
    const char* v = std::getenv("MINFER_DECODE_STAGES");
    if (!v || !*v) return 0;
    return std::array<int, 3>{2, 3, 4}[env_choice("MINFER_DECODE_STAGES", {"2", "3", "4"})];
  }();
  return stages;
}
int decode_stages() { return decode_stages_env() > 0 ? decode_stages_env() : 2; }

// Block order: the splits of one (KV head, sequence) side by side (default), or with
// MINFER_DECODE_ORDER=heads the KV heads of one key range side by side, so that blocks resident
// together read neighbouring bytes of the same cache rows. Read once.
bool decode_heads_fast() {
  static const bool heads = env_choice("MINFER_DECODE_ORDER", {"splits", "heads"}) == 1;
  return heads;
}

// Split-count rule (decode_attention_splits): sm (default), or MINFER_DECODE_SPLITS=waves (the rule
// before 2026-12-06: about two waves of SMs) or =fill (decode_attention_splits_fill). Read once.
constexpr int kRuleSm = 0, kRuleWaves = 1, kRuleFill = 2;
int decode_split_rule() {
  static const int rule = env_choice("MINFER_DECODE_SPLITS", {"sm", "waves", "fill"});
  return rule;
}

template <typename K>
cudaError_t allow_smem(K* kernel, int bytes) {
  return bytes > 48 * 1024 ? cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes)
                           : cudaSuccess;
}

// v2 needs each warp's 16 keys in 16 consecutive cache rows: a contiguous cache, or pages of a
// multiple of 16 tokens; other page sizes (and fp32) take v1.
template <typename T>
bool takes_v2(int page_size /*0: contiguous*/) {
  return !std::is_same_v<T, float> && page_size % kWarpKeys == 0;
}

// v2's cp.async copies of a whole 16-key run without the zero-fill operand (only a run that crosses the
// sequence's end zero-fills): MINFER_DECODE_ZFILL=edge (read once; the same bits). ncu counts 36% L2
// hits for v2's streaming reads where cuDNN's kernel has 1.7%: whether the zero-fill form splits
// requests is what this times.
bool decode_zfill_edge_env() {
  static const bool on = env_choice("MINFER_DECODE_ZFILL", {"always", "edge"}) == 1;
  return on;
}

// v2 skips the rescale of O on steps where no row of the warp moved its maximum:
// MINFER_DECODE_RESCALE=skip (read once; the same bits; two cp.async stages only, the default's form).
bool decode_skip_unit_env() {
  static const bool on = env_choice("MINFER_DECODE_RESCALE", {"always", "skip"}) == 1;
  return on;
}

// The K/V copies of v2 at head_dim 64 and 128: MINFER_DECODE_COPY=cp.async (0, the default), bulk (1:
// cp.async.bulk a row, on mbarriers), tma (2: tensor-map boxes, sm_90+, in 2 stages unless asked for
// more) or auto (3: the TMA form where it runs, its stages by auto_stages' rule; cp.async
// elsewhere). Read once; DecodeAttentionParams::bulk, ::tma and ::stages override.
int decode_copy_env() {
  static const int copy = env_choice("MINFER_DECODE_COPY", {"cp.async", "bulk", "tma", "auto"});
  return copy;
}
bool decode_bulk_env() { return decode_copy_env() == 1; }
bool decode_tma_env() { return decode_copy_env() == 2; }
bool decode_auto_env() { return decode_copy_env() == 3; }

// Whether p asks for the TMA form (DecodeAttentionParams::tma, else MINFER_DECODE_COPY=tma or auto,
// auto only where p does not ask for the bulk copies).
bool tma_asked(const DecodeAttentionParams& p) {
  return p.tma >= 0 ? p.tma == 1 : decode_tma_env() || (decode_auto_env() && p.bulk != 1);
}

// Whether p's stage count is the TMA form's rule's (auto_stages): MINFER_DECODE_COPY=auto, with
// neither p.tma, p.stages nor MINFER_DECODE_STAGES set.
bool stages_by_rule(const DecodeAttentionParams& p) {
  return decode_auto_env() && p.tma < 0 && p.bulk != 1 && p.stages == 0 && decode_stages_env() == 0;
}

// The TMA form's maps of p's K and V caches: (rows, kv_heads x HD), rows the contiguous cache's batch x
// max_len, or for a paged pool (whose page count the params do not carry) the largest row a 32-bit box
// coordinate reaches: every box the kernel asks for lies inside a page the block table names, so the
// extent only bounds the coordinates (a pool of rows of at least 128 bytes has fewer rows on any GPU).
// False where the maps cannot be made (then the copies stay cp.async).
bool make_decode_maps(const DecodeAttentionParams& p, TcMapsOn& maps) {
  const int64_t rows = p.block_table ? int64_t{0x7fffffff} : static_cast<int64_t>(p.batch) * p.max_len;
  const int64_t cols = static_cast<int64_t>(p.kv_heads) * p.head_dim;
  return rows > 0 && rows <= int64_t{0x7fffffff} && kern::encode_map_2d(maps.k, p.k_cache, p.dtype, rows, cols, kWarpKeys) &&
         kern::encode_map_2d(maps.v, p.v_cache, p.dtype, rows, cols, kWarpKeys);
}

bool sm90_device() {
  static const bool yes = [] {
    const int major = kern::device_attribute(cudaDevAttrComputeCapabilityMajor, 0);
    cudaGetLastError();  // no device: not sticky, but not left for the next launch check either
    return major >= 9;
  }();
  return yes;
}

// The L2 prefetch-size hint of v2's cp.async K/V copies: 128 bytes, or MINFER_DECODE_L2_PREFETCH=0
// (none) or 256 (read once). H100, 22 cases: 128 bytes 1.011x no hint (every case >= 1.001x), 256
// bytes 1.007x (reports/logs/h100/ab/ab_decode_l2_prefetch_bulk.csv).
int decode_l2_prefetch_env() {
  static const int bytes = std::array<int, 3>{128, 0, 256}[env_choice("MINFER_DECODE_L2_PREFETCH", {"128", "0", "256"})];
  return bytes;
}

// The fused prologue's loads overlapped with the first copies (DecodeAttentionParams::rope_overlap):
// MINFER_DECODE_ROPE_OVERLAP=0|1 (read once; the same bits); -1 unset.
int decode_rope_overlap_env() {
  static const int mode =
      std::getenv("MINFER_DECODE_ROPE_OVERLAP") ? env_choice("MINFER_DECODE_ROPE_OVERLAP", {"0", "1"}) : -1;
  return mode;
}

template <typename T, int HD, int kStages, bool kBulk = false, bool kSkipUnit = false, bool kRope = false,
          bool kCluster = false, bool kTma = false>
Status launch_tc(const DecodeAttentionParams& p, const SplitOut& so, dim3 grid, float scale_log2, cudaStream_t stream,
                 const TcMaps<kTma>& maps = {}) {
  constexpr int kSmem = tc_kernel_smem<T, HD, kStages, kBulk, kRope, kCluster, kTma>();
  auto* kernel = decode_split_tc<T, HD, kStages, kBulk, kSkipUnit, kRope, kCluster, kTma>;
  MINFER_CUDA_RETURN(allow_smem(kernel, kSmem));
  if constexpr (kCluster) {
    if (so.splits > 8) {  // a non-portable cluster size (decode_attention_cluster_max)
      static const cudaError_t wide = cudaFuncSetAttribute(kernel, cudaFuncAttributeNonPortableClusterSizeAllowed, 1);
      MINFER_CUDA_RETURN(wide);
    }
    MINFER_CUDA_RETURN(kern::launch_pdl_cluster(kernel, grid, kTcThreads, kSmem, stream, static_cast<unsigned>(so.splits),
                                                p, so, scale_log2, maps));
  } else {
    MINFER_CUDA_RETURN(kern::launch_pdl(kernel, grid, kTcThreads, kSmem, stream, p, so, scale_log2, maps));
  }
  return Status::ok();
}

template <typename T, int HD>
Status launch(const DecodeAttentionParams& p, int splits, cudaStream_t stream) {
  SplitOut so;
  so.splits = splits;
  so.groups = (p.heads / p.kv_heads + kMaxGroup - 1) / kMaxGroup;
  so.heads_fast = p.heads_fast >= 0 ? p.heads_fast : decode_heads_fast() ? 1 : 0;
  so.o = p.workspace;
  so.lse = p.workspace + static_cast<size_t>(p.batch) * p.heads * splits * HD;
  const float scale_log2 = static_cast<float>(1.0 / std::sqrt(static_cast<double>(HD))) * kLog2e;
  const unsigned nsplit = static_cast<unsigned>(splits), nhead = static_cast<unsigned>(p.kv_heads * so.groups);
  const dim3 grid(so.heads_fast ? nhead : nsplit, so.heads_fast ? nsplit : nhead, static_cast<unsigned>(p.batch));
  const int stages = p.stages > 0 ? p.stages : decode_stages();
  const bool cluster = decode_attention_cluster_applies(p, splits);
  if (!takes_v2<T>(p.block_table ? p.page_size : 0)) {
    MINFER_CUDA_RETURN(kern::launch_pdl(decode_split<T, HD>, grid, kThreads, 0, stream, p, so, scale_log2));
  } else if constexpr (!std::is_same_v<T, float>) {
    Status st = Status::ok();
    if constexpr (HD >= 64) {
      if (cluster) {  // the splits merged in clusters: no combine launch
        if (stages == 3)
          st = p.rope.qkv ? launch_tc<T, HD, 3, false, false, true, true>(p, so, grid, scale_log2, stream)
                          : launch_tc<T, HD, 3, false, false, false, true>(p, so, grid, scale_log2, stream);
        else
          st = p.rope.qkv ? launch_tc<T, HD, 2, false, false, true, true>(p, so, grid, scale_log2, stream)
                          : launch_tc<T, HD, 2, false, false, false, true>(p, so, grid, scale_log2, stream);
        if (!st.is_ok()) return st;
        MINFER_LAUNCH_RETURN();
        return Status::ok();
      }
    }
    if (p.rope.qkv) {  // the fused prologue: the default form (decode_attention_rope_fits checked it)
      if constexpr (HD >= 64) {
        st = stages >= 3 ? launch_tc<T, HD, 3, false, false, true>(p, so, grid, scale_log2, stream)
                         : launch_tc<T, HD, 2, false, false, true>(p, so, grid, scale_log2, stream);
      } else {
        st = launch_tc<T, HD, 2, false, false, true>(p, so, grid, scale_log2, stream);
      }
    } else if constexpr (HD >= 64) {
      const bool bulk = p.bulk >= 0 ? p.bulk == 1 : decode_bulk_env();
      const bool skip = p.skip_unit_rescale >= 0 ? p.skip_unit_rescale == 1 : decode_skip_unit_env();
      TcMapsOn maps;
      if (tma_asked(p) && sm90_device() && make_decode_maps(p, maps))
        st = stages == 4   ? launch_tc<T, HD, 4, false, false, false, false, true>(p, so, grid, scale_log2, stream, maps)
             : stages >= 3 ? launch_tc<T, HD, 3, false, false, false, false, true>(p, so, grid, scale_log2, stream, maps)
                           : launch_tc<T, HD, 2, false, false, false, false, true>(p, so, grid, scale_log2, stream, maps);
      else if (skip && !bulk && stages == 2)  // the default kernel's form only
        st = launch_tc<T, HD, 2, false, true>(p, so, grid, scale_log2, stream);
      else if (bulk)
        st = stages >= 3 ? launch_tc<T, HD, 3, true>(p, so, grid, scale_log2, stream)
                         : launch_tc<T, HD, 2, true>(p, so, grid, scale_log2, stream);
      else
        st = stages >= 3 ? launch_tc<T, HD, 3>(p, so, grid, scale_log2, stream)
                         : launch_tc<T, HD, 2>(p, so, grid, scale_log2, stream);
    } else {
      st = launch_tc<T, HD, 2>(p, so, grid, scale_log2, stream);
    }
    if (!st.is_ok()) return st;
  }
  MINFER_LAUNCH_RETURN();
  if (splits > 1) {
    const unsigned rows = static_cast<unsigned>(p.batch * p.heads);
    MINFER_CUDA_RETURN(kern::launch_pdl(decode_combine<T, HD>, rows, HD, 0, stream, p, so));
    MINFER_LAUNCH_RETURN();
  }
  return Status::ok();
}

// Blocks of the split kernel that launch() would pick (the TMA form where tma) that fit on one SM at
// once (0 if the query fails).
template <typename T, int HD>
int split_blocks_per_sm(int page_size, int stages, bool tma) {
  int n = 0;
  cudaError_t e = cudaSuccess;
  if (!takes_v2<T>(page_size)) {
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, decode_split<T, HD>, kThreads, 0);
  } else if constexpr (!std::is_same_v<T, float>) {
    auto query = [&](auto kernel, int smem) {
      e = allow_smem(kernel, smem);
      if (e == cudaSuccess) e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, kernel, kTcThreads, smem);
    };
    if constexpr (HD >= 64) {
      if (tma) {
        if (stages == 4)
          query(decode_split_tc<T, HD, 4, false, false, false, false, true>, tc_kernel_smem<T, HD, 4, false, false, false, true>());
        else if (stages == 3)
          query(decode_split_tc<T, HD, 3, false, false, false, false, true>, tc_kernel_smem<T, HD, 3, false, false, false, true>());
        else
          query(decode_split_tc<T, HD, 2, false, false, false, false, true>, tc_kernel_smem<T, HD, 2, false, false, false, true>());
      } else if (decode_bulk_env()) {
        if (stages >= 3) query(decode_split_tc<T, HD, 3, true>, tc_kernel_smem<T, HD, 3, true, false, false>());
        else query(decode_split_tc<T, HD, 2, true>, tc_kernel_smem<T, HD, 2, true, false, false>());
      } else if (stages >= 3) {
        query(decode_split_tc<T, HD, 3, false>, tc_kernel_smem<T, HD, 3, false, false, false>());
      } else {
        query(decode_split_tc<T, HD, 2, false>, tc_kernel_smem<T, HD, 2, false, false, false>());
      }
    } else {
      query(decode_split_tc<T, HD, 2, false>, tc_kernel_smem<T, HD, 2, false, false, false>());
    }
  }
  return e == cudaSuccess ? n : 0;
}

Status check_params(const DecodeAttentionParams& p) {
  MINFER_REQUIRE(p.heads > 0 && p.kv_heads > 0 && p.heads % p.kv_heads == 0, "kv_heads",
                 "must divide heads (" + std::to_string(p.heads) + "), got " + std::to_string(p.kv_heads));
  MINFER_REQUIRE(p.batch > 0 && p.batch <= 65535, "batch", "must be in [1, 65535], got " + std::to_string(p.batch));
  MINFER_REQUIRE(p.max_kv_len > 0, "max_kv_len", "must be > 0, got " + std::to_string(p.max_kv_len));
  MINFER_REQUIRE((p.q || p.rope.qkv) && p.k_cache && p.v_cache && p.out && p.cache_lens, "q",
                 "every pointer must be set (q may be null with the fused prologue, rope.qkv)");
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
  if (p.rope.qkv) {  // the fused prologue (DecodeAttentionParams::rope)
    const QkvRopeParams& r = p.rope;
    MINFER_REQUIRE(r.positions && r.token_slot && r.cos_sin, "rope.positions",
                   "the fused prologue needs positions, token_slot and cos_sin");
    MINFER_REQUIRE(r.num_tokens == p.batch, "rope.num_tokens",
                   "must equal batch (one token a row), got " + std::to_string(r.num_tokens) + " for " +
                       std::to_string(p.batch) + " rows");
    MINFER_REQUIRE(r.heads == p.heads && r.kv_heads == p.kv_heads && r.head_dim == p.head_dim, "rope.heads",
                   "heads, kv_heads and head_dim must be the attention's");
    MINFER_REQUIRE(!p.block_table && r.k_cache == p.k_cache && r.v_cache == p.v_cache && r.capacity == p.max_len,
                   "rope.k_cache", "the fused prologue writes the attention's own contiguous cache (k_cache, "
                   "v_cache, capacity = max_len)");
    MINFER_REQUIRE(p.dtype != DType::F32, "rope.qkv", "the fused prologue runs in v2 (fp16 or bf16)");
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

// Most splits a cache of max_kv_len keys takes: one per min_keys_per_split() keys.
int64_t split_cap(int max_kv_len) {
  return (static_cast<int64_t>(max_kv_len) + min_keys_per_split() - 1) / min_keys_per_split();
}

template <typename T>
int blocks_per_sm_of_hd(int head_dim, int page_size, int stages, bool tma) {
  switch (head_dim) {
    case 16: return split_blocks_per_sm<T, 16>(page_size, stages, tma);
    case 32: return split_blocks_per_sm<T, 32>(page_size, stages, tma);
    case 64: return split_blocks_per_sm<T, 64>(page_size, stages, tma);
    case 128: return split_blocks_per_sm<T, 128>(page_size, stages, tma);
  }
  return 0;
}

int blocks_per_sm_of(DType dtype, int head_dim, int page_size, int stages, bool tma) {
  switch (dtype) {
    case DType::F32: return blocks_per_sm_of_hd<float>(head_dim, page_size, stages, tma);
    case DType::F16: return blocks_per_sm_of_hd<__half>(head_dim, page_size, stages, tma);
    case DType::BF16: return blocks_per_sm_of_hd<__nv_bfloat16>(head_dim, page_size, stages, tma);
  }
  return 0;
}

// Whether the copy switches of the environment put the split kernel of (dtype, head_dim, page_size) in
// the TMA form (MINFER_DECODE_COPY=tma or auto, where the form exists): the form the resident slots are
// counted for when the caller does not say.
bool tma_by_env(DType dtype, int head_dim, int page_size) {
  return (decode_tma_env() || decode_auto_env()) && dtype != DType::F32 && (head_dim == 64 || head_dim == 128) &&
         page_size % kWarpKeys == 0 && sm90_device();
}

// The TMA form's stage rule (MINFER_DECODE_COPY=auto with the stages unset), from the unsplit blocks
// (work) and the SMs: 3 stages where the unsplit blocks overflow the resident slots of the 2-stage form
// (batch 64 x 8 KV heads at head_dim 128: 512 blocks, 396 slots), else 2. At 3 stages a block holds a
// step more in flight a warp and the SM two blocks (264 slots), so the fill rule sizing the splits by
// those slots takes 1 split where it took 2 or 3 (512 blocks in 1.94 rounds, no combine launch). H100,
// session 31 (reports/logs/h100/session31/ab/ab_decode_tma.csv), 2 interleaved rounds, default time /
// time: the TMA form at 2 stages 1.008-1.035 on all 22 cases, at 3 stages 1.041-1.054 at batch 64 but
// 0.994-1.017 elsewhere (slower than 2 stages in 17 of those 18, on grids of one block an SM too, so
// there is no 4-stage branch without a timing; MINFER_DECODE_STAGES=4 times it). At batch 64 that
// timing does not separate the stages from the split count (gpu_run.sh group dauto does).
// The 2-stage form's blocks an SM are queried once per (dtype, head_dim) (the kernel does not depend on
// the page size where the form runs).
int auto_stages(DType dtype, int head_dim, int page_size, int64_t work, int sms) {
  static std::atomic<int> per_sm2[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
  std::atomic<int>& slot = per_sm2[static_cast<int>(dtype) % 3][head_dim == 128 ? 1 : 0];
  int n = slot.load();
  if (n < 0) {
    n = blocks_per_sm_of(dtype, head_dim, page_size, 2, true);
    cudaGetLastError();
    if (n > 0) slot.store(n);
  }
  const int64_t slots2 = static_cast<int64_t>(n) * sms;
  return slots2 > 0 && work > slots2 ? 3 : 2;
}

}  // namespace

int64_t decode_attention_unsplit_blocks(int batch, int heads, int kv_heads) {
  const int groups = (heads / std::max(kv_heads, 1) + kMaxGroup - 1) / kMaxGroup;
  return std::max<int64_t>(static_cast<int64_t>(batch) * kv_heads * groups, 1);
}

int decode_attention_splits(int batch, int heads, int kv_heads, int max_kv_len, int num_sms, int resident_blocks) {
  const int rule = decode_split_rule();
  if (rule == kRuleWaves) return decode_attention_splits_waves(batch, heads, kv_heads, max_kv_len, num_sms, decode_waves());
  const int64_t work = decode_attention_unsplit_blocks(batch, heads, kv_heads);
  if (rule == kRuleSm && work <= num_sms)  // about one block per SM: each block streams at the SM's share
    return static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(num_sms / work, split_cap(max_kv_len)), 1, kMaxSplits));
  if (resident_blocks > 0 && (rule == kRuleFill || work > resident_blocks))
    return decode_attention_splits_fill(batch, heads, kv_heads, max_kv_len, resident_blocks);
  return 1;
}

int decode_attention_splits_chained(int batch, int heads, int kv_heads, int max_kv_len, int num_sms, int resident_blocks) {
  const int splits = decode_attention_splits(batch, heads, kv_heads, max_kv_len, num_sms, resident_blocks);
  const int64_t work = decode_attention_unsplit_blocks(batch, heads, kv_heads);
  if (decode_split_rule() == kRuleSm && splits == 1 && 2 * work > num_sms && work <= num_sms)
    return decode_attention_splits_waves(batch, heads, kv_heads, max_kv_len, num_sms);
  return splits;
}

int decode_attention_splits_waves(int batch, int heads, int kv_heads, int max_kv_len, int num_sms, int waves) {
  const int64_t work = decode_attention_unsplit_blocks(batch, heads, kv_heads);
  const int64_t want = (std::max(waves, 1) * static_cast<int64_t>(num_sms) + work - 1) / work;
  return static_cast<int>(std::clamp<int64_t>(std::min(want, split_cap(max_kv_len)), 1, kMaxSplits));
}

int decode_attention_splits_fill(int batch, int heads, int kv_heads, int max_kv_len, int resident_blocks) {
  constexpr int64_t kBlockKeys = 128;   // a block's fixed cost (query load, first copies, merge), in keys
  constexpr int64_t kCombineKeys = 64;  // the combine launch, in keys of one block
  auto ceil_div = [](int64_t a, int64_t b) { return (a + b - 1) / b; };
  const int64_t work = decode_attention_unsplit_blocks(batch, heads, kv_heads);
  const int64_t slots = std::max(resident_blocks, 1);
  const int64_t len = std::max(max_kv_len, 1);
  const int64_t cap = std::clamp<int64_t>(split_cap(max_kv_len), 1, kMaxSplits);
  int64_t best = 1, best_t = INT64_MAX;
  for (int64_t s = 1; s <= cap; ++s) {
    const int64_t chunk = tc_longest_split_keys(len, s);
    const int64_t t = ceil_div(work * s, slots) * (chunk + kBlockKeys) + (s > 1 ? kCombineKeys : 0);
    if (t < best_t) best_t = t, best = s;
  }
  return static_cast<int>(best);
}

int decode_attention_resident_blocks(DType dtype, int head_dim, int page_size, int stages, int64_t work) {
  int dev = 0, sms = 0;
  if (cudaGetDevice(&dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess) {
    cudaGetLastError();  // no device: the caller falls back to the waves rule
    return 0;
  }
  const bool tma = tma_by_env(dtype, head_dim, page_size);
  int st = stages > 0 ? stages : decode_stages();
  if (stages == 0 && decode_stages_env() == 0 && decode_auto_env() && tma && work > 0)
    st = auto_stages(dtype, head_dim, page_size, work, sms);
  const int per_sm = blocks_per_sm_of(dtype, head_dim, page_size, st, tma);
  cudaGetLastError();
  return per_sm * sms;
}

size_t decode_attention_workspace_bytes(int batch, int heads, int head_dim, int num_splits) {
  if (num_splits <= 1) return 0;
  return static_cast<size_t>(batch) * heads * num_splits * (head_dim + 1) * sizeof(float);
}

namespace {
// Whether p's variant switches (environment defaults resolved) give v2's default form, the one the
// fused prologue and the cluster form are instantiated in: cp.async copies in two stages or three (three
// at head_dim 64 and 128 only; two elsewhere), no bulk copies, no rescale skip. A request for the TMA
// copies does not change it: the fused prologue and the cluster form, where they run, keep cp.async.
bool default_form(const DecodeAttentionParams& p) {
  const int stages = p.stages > 0 ? p.stages : decode_stages();
  const bool bulk = p.bulk >= 0 ? p.bulk == 1 : decode_bulk_env();
  const bool skip = p.skip_unit_rescale >= 0 ? p.skip_unit_rescale == 1 : decode_skip_unit_env();
  return (stages == 2 || stages == 3) && !bulk && !skip;
}
}  // namespace

int decode_attention_cluster_mode() {
  static const int mode = std::getenv("MINFER_DECODE_CLUSTER") ? env_choice("MINFER_DECODE_CLUSTER", {"0", "1"}) : -1;
  return mode;
}

int decode_attention_cluster_max() {
  static const int most = [] {
    if (std::getenv("MINFER_DECODE_CLUSTER_MAX")) return env_choice("MINFER_DECODE_CLUSTER_MAX", {"8", "16"}) == 1 ? 16 : 8;
    // 16, a non-portable cluster size, where the device can hold one: compute capability 9.0 or newer
    // (H100, H200) and at least 16 SMs (a small MIG slice may have fewer); 8 elsewhere.
    const int major = kern::device_attribute(cudaDevAttrComputeCapabilityMajor, 0);
    const int sms = kern::device_attribute(cudaDevAttrMultiProcessorCount, 0);
    cudaGetLastError();  // no device: not sticky, but not left for the next launch check either
    return major >= 9 && sms >= 16 ? 16 : 8;
  }();
  return most;
}

bool decode_attention_cluster_applies(const DecodeAttentionParams& p, int splits) {
  const bool on = p.cluster >= 0 ? p.cluster == 1 : decode_attention_cluster_mode() == 1;
  const int most = p.cluster_max > 0 ? p.cluster_max : decode_attention_cluster_max();
  if (!on || splits < 2 || splits > most || p.dtype == DType::F32) return false;
  if (p.head_dim != 64 && p.head_dim != 128) return false;
  if (p.block_table && p.page_size % kWarpKeys != 0) return false;
  if ((p.heads_fast >= 0 ? p.heads_fast == 1 : decode_heads_fast()) || !default_form(p)) return false;
  return sm90_device();
}

bool decode_attention_rope_overlap_rule(int max_kv_len, int splits) {
  return tc_longest_split_keys(max_kv_len, splits) <= kStepKeys;
}

int decode_attention_splits_cluster(int batch, int heads, int kv_heads, int max_kv_len, int num_sms, int max_splits) {
  static const int64_t min_keys = [] {
    const char* v = std::getenv("MINFER_DECODE_CLUSTER_MIN_KEYS");
    const int64_t k = v ? std::atoll(v) : 64;
    return k >= 16 && k <= 65536 ? k : int64_t{64};
  }();
  const int64_t work = decode_attention_unsplit_blocks(batch, heads, kv_heads);
  const int64_t by_len = (static_cast<int64_t>(std::max(max_kv_len, 1)) + min_keys - 1) / min_keys;
  const int most = max_splits == 8 || max_splits == 16 ? max_splits : decode_attention_cluster_max();
  return static_cast<int>(std::clamp<int64_t>(std::min<int64_t>(num_sms / work, by_len), 1, most));
}

namespace {
unsigned long long* g_trace = nullptr;  // decode_attention_trace_start's buffer: count, capacity, records
int g_trace_records = 0;
}  // namespace

unsigned long long* decode_attention_trace_start(int records) {
  decode_attention_trace_stop();
  const size_t bytes = (2 + static_cast<size_t>(std::max(records, 1)) * kTraceWords) * sizeof(unsigned long long);
  if (cudaMalloc(&g_trace, bytes) != cudaSuccess) {
    cudaGetLastError();
    g_trace = nullptr;
    return nullptr;
  }
  g_trace_records = std::max(records, 1);
  const unsigned long long head[2] = {0, static_cast<unsigned long long>(g_trace_records)};
  cudaMemset(g_trace, 0, bytes);
  cudaMemcpy(g_trace, head, sizeof(head), cudaMemcpyHostToDevice);
  return g_trace;
}

unsigned long long* decode_attention_trace_buffer() { return g_trace; }

std::string decode_attention_trace_csv() {
  std::string out = "record,bx,by,bz,sm,entry_ns,waited_ns,prologue_ns,first_keys_ns,loop_ns,merge_ns,end_ns,barrier_ns\n";
  if (!g_trace) return out;
  unsigned long long n = 0;
  if (cudaDeviceSynchronize() != cudaSuccess || cudaMemcpy(&n, g_trace, sizeof(n), cudaMemcpyDeviceToHost) != cudaSuccess)
    return out;
  n = std::min<unsigned long long>(n, static_cast<unsigned long long>(g_trace_records));
  std::vector<unsigned long long> rec(n * kTraceWords);
  if (n > 0 && cudaMemcpy(rec.data(), g_trace + 2, rec.size() * sizeof(rec[0]), cudaMemcpyDeviceToHost) != cudaSuccess)
    return out;
  char line[320];
  for (unsigned long long i = 0; i < n; ++i) {
    const unsigned long long* r = &rec[i * kTraceWords];
    std::snprintf(line, sizeof(line), "%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu,%llu\n", i,
                  r[0] & 0xffff, (r[0] >> 16) & 0xffff, (r[0] >> 32) & 0xffff, r[0] >> 48, r[1], r[2], r[3], r[4], r[5],
                  r[6], r[7], r[8]);
    out += line;
  }
  return out;
}

void decode_attention_trace_stop() {
  if (g_trace) cudaFree(g_trace);
  g_trace = nullptr;
  g_trace_records = 0;
}

namespace {
// Whether the split pass of p in `splits` splits (0: not known) takes the TMA form, the maps aside.
bool tma_runs(const DecodeAttentionParams& p, int splits) {
  return tma_asked(p) && p.dtype != DType::F32 && (p.head_dim == 64 || p.head_dim == 128) && !p.rope.qkv &&
         !(splits > 0 && decode_attention_cluster_applies(p, splits)) &&
         (!p.block_table || p.page_size % kWarpKeys == 0) && sm90_device();
}
}  // namespace

bool decode_attention_tma_applies(const DecodeAttentionParams& p) {
  TcMapsOn maps;
  return tma_runs(p, p.num_splits) && make_decode_maps(p, maps);
}

int decode_attention_stages(const DecodeAttentionParams& p) {
  if (p.stages > 0) return p.stages;
  if (stages_by_rule(p) && p.num_splits >= 1 && tma_runs(p, p.num_splits)) {
    const int sms = kern::device_attribute(cudaDevAttrMultiProcessorCount, 0);
    cudaGetLastError();
    return auto_stages(p.dtype, p.head_dim, p.block_table ? p.page_size : 0,
                       decode_attention_unsplit_blocks(p.batch, p.heads, p.kv_heads), sms);
  }
  return decode_stages();
}

bool decode_attention_rope_fits(const DecodeAttentionParams& p) {
  return p.rope.qkv && check_params(p).is_ok() && default_form(p);
}

Status decode_attention_forward(const DecodeAttentionParams& in, cudaStream_t stream) {
  const Status st = check_params(in);
  if (!st.is_ok()) return st;
  // The on / off switches: 0, 1, or -1 (their default: the environment's, or a rule's).
  const std::pair<const char*, int> switches[] = {
      {"bulk", in.bulk},           {"zfill_edge", in.zfill_edge},   {"skip_unit_rescale", in.skip_unit_rescale},
      {"rope_overlap", in.rope_overlap}, {"cluster", in.cluster},      {"heads_fast", in.heads_fast},
      {"tma", in.tma}};
  for (const auto& [name, v] : switches)
    MINFER_REQUIRE(v >= -1 && v <= 1, name, "must be 0, 1 or -1 (default), got " + std::to_string(v));
  MINFER_REQUIRE(in.l2_prefetch == -1 || in.l2_prefetch == 0 || in.l2_prefetch == 128 || in.l2_prefetch == 256,
                 "l2_prefetch", "must be 0, 128, 256 or -1 (default), got " + std::to_string(in.l2_prefetch));
  MINFER_REQUIRE(in.prewait == 0 || in.prewait == 1, "prewait", "must be 0 or 1, got " + std::to_string(in.prewait));
  MINFER_REQUIRE(!((in.bulk >= 0 ? in.bulk == 1 : decode_bulk_env()) && tma_asked(in)), "tma",
                 "the TMA copies and the bulk copies are two forms of the same copies: ask for one");
  // The switches the kernel reads from its params, their environment defaults resolved here.
  DecodeAttentionParams p = in;
  if (p.zfill_edge < 0) p.zfill_edge = decode_zfill_edge_env() ? 1 : 0;
  if (p.l2_prefetch < 0) p.l2_prefetch = decode_l2_prefetch_env();
  if (p.rope_overlap < 0) p.rope_overlap = decode_rope_overlap_env();  // (-1 still: the split rule below)
  int splits = p.num_splits;
  const bool rule_stages = stages_by_rule(p);
  const int64_t work = decode_attention_unsplit_blocks(p.batch, p.heads, p.kv_heads);
  int sms = 0;
  if (splits == 0 || rule_stages) {
    int dev = 0;
    MINFER_CUDA_RETURN(cudaGetDevice(&dev));
    MINFER_CUDA_RETURN(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  }
  if (splits == 0) {
    const int resident = decode_split_rule() == kRuleWaves
                             ? 0
                             : decode_attention_resident_blocks(p.dtype, p.head_dim, p.block_table ? p.page_size : 0,
                                                                p.stages, work);
    splits = decode_attention_splits(p.batch, p.heads, p.kv_heads, p.max_kv_len, sms, resident);
  }
  MINFER_REQUIRE(p.stages == 0 || p.stages == 2 || p.stages == 3 || p.stages == 4, "stages",
                 "must be 2, 3, 4 (the TMA form's only) or 0 (default), got " + std::to_string(p.stages));
  MINFER_REQUIRE((p.stages > 0 ? p.stages : decode_stages()) != 4 || tma_asked(p), "stages",
                 "4 stages are the TMA form's only (tma = 1, or MINFER_DECODE_COPY=tma)");
  MINFER_REQUIRE(!p.rope.qkv || default_form(p), "rope.qkv",
                 "the fused prologue takes v2's default form: cp.async in 2 or 3 stages, no bulk copies, no rescale skip");
  MINFER_REQUIRE(p.cluster_max == 0 || p.cluster_max == 8 || p.cluster_max == 16, "cluster_max",
                 "must be 8, 16 or 0 (default), got " + std::to_string(p.cluster_max));
  MINFER_REQUIRE(splits >= 1 && splits <= kMaxSplits, "num_splits",
                 "must be in [1, 64] (or 0: automatic), got " + std::to_string(splits));
  // MINFER_DECODE_COPY=auto: the TMA form's stages by its rule where the form runs (2, cp.async's
  // default, where it does not).
  if (rule_stages && splits >= 1 && splits <= kMaxSplits && tma_runs(p, splits))
    p.stages = auto_stages(p.dtype, p.head_dim, p.block_table ? p.page_size : 0, work, sms);
  if (p.rope_overlap < 0) p.rope_overlap = decode_attention_rope_overlap_rule(p.max_kv_len, splits) ? 1 : 0;
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
