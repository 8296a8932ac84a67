// kernels/flash_prefill_sm90.cu: prefill attention v3 for Hopper (sm_90a): the FlashAttention-2
// algorithm of kernels/flash_prefill.cu with both matrix products on warpgroup MMAs (wgmma) instead
// of mma.sync. Same arguments, masking, rounding points and precision policy as v2 (see
// flash_prefill.h); fp16 / bf16 at head_dim 64 and 128.
// Block: 2 warpgroups (256 threads), 128 query rows of one (sequence, head); warpgroup w owns rows
// 64 w .. 64 w + 63. Key/value tiles of 64 rows stream through shared memory with cp.async (4
// stages, copies issued 3 tiles ahead; all 256 threads copy), stored in the 128-byte swizzled layout
// wgmma reads (kernels/common/wgmma.cuh); Q stays in shared memory for the whole block. Per key tile
// and warpgroup: S (64 x 64, fp32 registers) = Q K^T by HD / 16 wgmma m64n64k16 from shared memory
// (both K-major); mask; online softmax in the exp2 domain (as v2; lazy rescaling opt-in: FlashPrefillParams::
// rescale_slack); O (64 x HD, fp32 registers)
// rescaled, then O += P V by wgmma m64nHDk16 with P from registers (the accumulator layout of S is
// the A-fragment layout) and V read N-major from shared memory (V's rows are keys: no transpose
// pass). Software pipeline inside a warpgroup: S of the next tile and P V of this one are issued back
// to back, and the softmax of the next tile runs while P V does (see the main loop). bf16: P as
// hi + lo (two MMAs per key step, as v2: rounding P to bf16 alone costs ~2e-3); fp16: P rounded once.
// Causal: a warpgroup skips the tiles none of its rows can see and masks only the tiles that cross
// its rows' diagonal or Tk_b. Grid: heads fastest, query tiles reversed (heaviest causal tiles
// first). Shared memory: Q 128 x HD plus 4 K and 4 V tiles of 64 x HD (160 KiB at head_dim 128): one
// block per SM at head_dim 128; two at 64 (80 KiB, at most 128 registers: one P buffer, see kOneP).
// H100, bf16, v3 vs v2 in one run: 1.11-1.53x at 512-8192 rows (reports/logs/h100/ab/).
// Small variant (G = 1 warpgroup, ST = 3 stages, head_dim 128; the default up to 1024 query rows,
// MINFER_PREFILL=v3s everywhere): 64-row blocks in 113 KiB, two an SM, so one block's fill and drain
// overlap the other's MMAs; each row's arithmetic is the 128-row block's (the same output bits); one
// K/V tile is copied ahead instead of three.
// Warp-specialised variant (kWS, MINFER_PREFILL=v4; head_dim 64 and 128; opt-in, measured slower: on
// an H100 the same bits as v3 but 0.83x v3, 0.72-1.02x over 26 bf16 cases, head_dim 64 worst, 0.72-0.82x
// (reports/logs/h100/ab/ab_attention_v4_ws.csv): 128 producer threads issuing every 16-byte cp.async
// do not keep two consumer warpgroups fed; FlashAttention-3's producer is one thread issuing TMA
// copies, the next form to try): 384 threads, warpgroup 0 the
// producer (Q and the K/V tiles through the 4 stages with cp.async; per stage a "full" mbarrier it
// arrives on once its copies have landed and been fenced for wgmma, two tiles behind the copies, and
// an "empty" one the 8 consumer warps arrive on when done with the tile; it gives up registers:
// setmaxnreg 56) and warpgroups 1 and 2 the default's two 64-row warpgroups (setmaxnreg 224), with no
// block barrier per tile. Where both consumers run the same tiles (non-causal, both with rows) they
// take turns at issuing their MMAs (named barriers), so one's softmax runs under the other's MMAs
// (FlashAttention-3's ping-pong). A consumer past its causal keys still waits for and releases every
// later tile, in order, so that the producer's stages keep turning for the other.
// Its TMA form (kTma, MINFER_PREFILL=v4t; the default at head_dim 128 past 512 query rows, kernels/
// flash_prefill.cu has the figures; the same bits as v3 on an H100): the producer's thread 0 copies each whole
// K/V tile as HD / 64 boxes each of K and V through tensor maps (PrefillMaps: rows x kv_heads * HD,
// boxes of 64 columns x kBN rows, 128-byte swizzle: the layout load_swizzled writes) on the stage's
// full barrier (one arrival with the tile's bytes); Q and a sequence's last, partial tile still go by
// every producer thread's cp.async (rows past the keys zero-filled, so that NaN past a sequence never
// meets a zero P), announced by one arrival after a producer barrier. The maps need the key tensor's
// row count: k_lens' batch x k_seq_stride or FlashPrefillParams::total_k; without it v4t runs as v4.
// (Its three-consumer form, v4t3 at head_dim 64: 192-row blocks of 512 threads, the producer at 32
// registers and the consumers at 160, no ping-pong, measured 0.820x the default on an H100 (0.60-0.98,
// 14 cases): removed after 36628fe.)
// Persistent variant (kPersist, head_dim 128, MINFER_PREFILL=v3p; measured slower than v3 on an H100,
// 0.60-0.92x on 20 cases, reports/logs/h100/ab/ab_attention_v3p_persistent.csv): the grid is the SMs
// (more blocks only where one would hold more than kMaxItems query tiles); a block deals itself the
// items u = blockIdx.x + i gridDim.x of the one-tile blocks' order into a shared table and runs
// them back to back through one cp.async stream of tiles, so the next item's Q (3 Q buffers) and first
// three tiles are copied while this item's last tiles compute, where v3 leaves an SM idle between
// blocks for that fill (~3.6 us a block on the H100 from the grid's own times, ~20% at 512 keys).
// Each item's arithmetic is v3's in the same order (the same output bits). The stream runs across
// items only when every item of the block has at least 2 key tiles (so that Q buffer n % 3 is free:
// item n - 3 is done); otherwise each item starts its own copies. The default kernels' PTX is
// unchanged by the template parameter (kPersist = false).
#include "kernels/flash_prefill_sm90.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "kernels/common/bulk.cuh"
#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/env.h"
#include "kernels/common/mma.cuh"
#include "kernels/common/tensor_map.h"
#include "kernels/common/wgmma.cuh"

namespace minfer {
namespace {

constexpr int kGroups = 2;              // warpgroups per block
constexpr int kThreads = 128 * kGroups;
constexpr int kBM = 64 * kGroups;       // query rows per block
constexpr int kStages = 4;              // K/V tiles in shared memory (see the main loop)
// The small variant (head_dim 128, MINFER_PREFILL=v3s): one warpgroup of 64 query rows a block and
// three stages (113 KiB), so that two blocks share an SM and one's fill and drain overlap the other's
// MMAs (one 128-row block an SM leaves the SM idle while it fills: latency-bound at 512 keys, ncu).
// At head_dim 64 (opt-in: MINFER_PREFILL=v3s only) four stages (74 KiB), three blocks an SM, at most
// 168 registers (two P buffers, as at 128).
constexpr int kSmallGroups = 1;
template <int HD> constexpr int small_stages() { return HD == 64 ? 4 : 3; }
template <int HD> constexpr int small_blocks_per_sm() { return HD == 64 ? 3 : 2; }

// Keys per tile at head_dim HD.
template <int HD> constexpr int tile_keys() { return 64; }

// One work item of the persistent variant: a 128-row query tile of one (sequence, head); ntiles 0:
// nothing to do (the tile is past the sequence's rows).
struct PrefillItem {
  int64_t q0, k0;  // first query row and first key row of the sequence
  int h, m0, tq, tk, ntiles, pad;
};
constexpr int kMaxItems = 40;  // items of one persistent block (the launch sizes the grid for it)

// Shared-memory plan (bytes) at head_dim HD: Q (kQBufs buffers: 1, or 3 for the persistent variant),
// then kStages K tiles, then kStages V tiles, each a multiple of 1024 bytes (the swizzle atom) from a
// 1024-aligned base; the persistent variant's item table last.
template <int HD, bool kPersist = false, int G = kGroups, int ST = kStages> struct Plan {
  static constexpr int kBN = tile_keys<HD>();
  static constexpr int kQBufs = kPersist ? 3 : 1;
  static constexpr uint32_t kQ = 64 * G * HD * 2;
  static constexpr uint32_t kTile = kBN * HD * 2;
  static constexpr uint32_t kTable = kPersist ? kMaxItems * sizeof(PrefillItem) : 0;
  static constexpr uint32_t kBytes = kQ * kQBufs + 2 * ST * kTile + kTable + 1024;  // + room to align the base
};
static_assert(2 * (Plan<128, false, kSmallGroups, small_stages<128>()>::kBytes + 1024) <= 233472,
              "two small blocks (plus the 1 KiB the runtime reserves for each) fit an SM's 228 KiB");
static_assert(3 * (Plan<64, false, kSmallGroups, small_stages<64>()>::kBytes + 1024) <= 233472,
              "three small blocks at head_dim 64 fit an SM's 228 KiB");
static_assert(Plan<128, true>::kBytes <= 232448, "the persistent plan fits the 227 KiB a block may have");
static_assert(Plan<128>::kBytes + 2 * kStages * 8 <= 232448, "the warp-specialised plan fits the 227 KiB a block may have");
static_assert(Plan<128>::kBytes + 2 * kStages * 8 + kStages * (Plan<128>::kTile + 8 + 4) <= 232448,
              "the warp-specialised plan with fp16 V buffers (pv_fp16) fits the 227 KiB a block may have");

#if defined(MINFER_WGMMA)  // device helpers of the sm_90a kernel body
__device__ __forceinline__ void cp_async16_to(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(valid ? 16 : 0));
}

// Rows [0, ROWS) of one head (HD 16-bit elements, global row r at src + r * row_bytes) into the
// swizzled tile at dst; rows >= valid_rows zero-filled (src is then not read). Thread i copies chunk
// i % (HD / 8) of rows i / (HD / 8) + n kThreads / (HD / 8): its swizzle term (row % 8) is the same
// for every n, so its shared offsets are one base plus multiples of the pass size. kFull: the caller
// knows valid_rows >= ROWS (a whole tile), so no row is tested and no address selected.
template <int HD, int ROWS, int NT = kThreads, bool kFull = false>
__device__ __forceinline__ void load_swizzled(uint32_t dst, const char* src, int64_t row_bytes, int valid_rows) {
  constexpr int kChunks = HD / 8, kRowsPerPass = NT / kChunks;
  static_assert(ROWS % kRowsPerPass == 0 && kRowsPerPass % 8 == 0, "whole passes of whole swizzle atoms");
  const int r = static_cast<int>(threadIdx.x) / kChunks, c = static_cast<int>(threadIdx.x) % kChunks;
  const uint32_t d = dst + kern::swz128_offset(ROWS, r, c);
  const char* g = src + r * row_bytes + c * 16;
  const int64_t pass_bytes = kRowsPerPass * row_bytes;
#pragma unroll
  for (int n = 0; n < ROWS / kRowsPerPass; ++n) {
    const bool ok = kFull || r + n * kRowsPerPass < valid_rows;
    cp_async16_to(d + n * kRowsPerPass * 128, ok ? g + n * pass_bytes : src, ok);
  }
}

// Named barrier `id` (1 ..; 0 is __syncthreads) over `count` threads: wait for it, or arrive
// without waiting (the warp-specialised variant's turn-taking between its two consumer warpgroups).
__device__ __forceinline__ void named_bar_sync(int id, int count) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
__device__ __forceinline__ void named_bar_arrive(int id, int count) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(count) : "memory");
}
// One 16-byte chunk of shared memory (a 32-bit shared address) into / out of registers.
__device__ __forceinline__ uint4 lds128(uint32_t a) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];\n" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(a));
  return v;
}
__device__ __forceinline__ void sts128(uint32_t a, uint4 v) {
  asm volatile("st.shared.v4.u32 [%0], {%1, %2, %3, %4};\n" ::"r"(a), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w) : "memory");
}
// Two bf16 (one 32-bit word) as two fp16 (rounded; exact for magnitudes in [2^-14, 65504]); `top`
// keeps the largest magnitudes seen (fp16x2; infinite where a value overflowed, |x| >= 65520; a NaN
// is not kept, and needs no other path: it reaches the output through either).
__device__ __forceinline__ uint32_t bf16x2_to_f16x2(uint32_t w, __half2& top) {
  const uint32_t h = kern::pack2<__half>(__uint_as_float(w << 16), __uint_as_float(w & 0xffff0000u));
  top = __hmax2(top, __habs2(*reinterpret_cast<const __half2*>(&h)));
  return h;
}

// Named barrier `id` over `count` threads that also ORs a predicate over them (every thread gets the OR).
__device__ __forceinline__ bool named_bar_or(int id, int count, bool pred) {
  uint32_t r;
  asm volatile(
      "{\n .reg .pred p, q;\n setp.ne.u32 p, %1, 0;\n barrier.red.or.pred q, %2, %3, p;\n selp.u32 %0, 1, 0, q;\n}\n"
      : "=r"(r)
      : "r"(static_cast<uint32_t>(pred)), "r"(id), "r"(count)
      : "memory");
  return r != 0;
}

// The registers a warpgroup may hold from here on (a multiple of 8): the producer gives up what the
// consumers take.
template <int N> __device__ __forceinline__ void set_max_regs_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(N));
}
template <int N> __device__ __forceinline__ void set_max_regs_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(N));
}
__device__ __forceinline__ void wait_parity(uint64_t* bar, unsigned parity) {
  while (!kern::mbar_try_wait(bar, parity)) {
  }
}

// Two floats as P's A-fragment register(s): bf16 hi + lo (kern::split_bf16x2), fp16 rounded once.
template <typename T>
__device__ __forceinline__ void split2(float x, float y, uint32_t& hi, uint32_t& lo) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) kern::split_bf16x2(x, y, hi, lo);
  else hi = kern::pack2<T>(x, y);
}
#endif  // MINFER_WGMMA

// Blocks per SM: 2 at head_dim 64 (at most 128 registers a thread), 1 at 128 (2 for the small
// variant: one warpgroup, at most 255 registers).
template <int HD> constexpr int blocks_per_sm() { return HD == 64 ? 2 : 1; }

// The TMA variant's tensor maps of k and v (2-D: rows x kv_heads * HD; boxes of 64 columns x kBN rows,
// 128-byte swizzle, the layout load_swizzled writes); unused (zero) by the other instances.
struct PrefillMaps {
  CUtensorMap k, v;
};

template <typename T, int HD, bool kPersist, int G = kGroups, int ST = kStages, bool kWS = false, bool kTma = false,
          bool kPV16 = false>
__global__ void __launch_bounds__(128 * G + (kWS ? 128 : 0),
                                  kWS ? 1 : G == kGroups ? blocks_per_sm<HD>() : small_blocks_per_sm<HD>())
    flash_prefill_sm90(FlashPrefillParams p, float scale_log2, const __grid_constant__ PrefillMaps maps) {
#if defined(MINFER_WGMMA)
  static_assert(!kPersist || (G == kGroups && ST == kStages), "the persistent variant has the default shape");
  static_assert(!kWS || (!kPersist && G == kGroups), "the warp-specialised variant has two consumer warpgroups");
  // kTma without kWS (kTmaC; MINFER_PREFILL_COPY=tma, opt-in): the default blocks' whole K/V tiles copied
  // by TMA, issued by thread 0 on a barrier a stage (after the V stages), which every thread waits for
  // where it waited for the tile's cp.async group; Q and a sequence's last, partial tile stay cp.async
  // (rows past its keys zero-filled). The per-tile barrier (stage reuse) is unchanged.
  constexpr bool kTmaC = kTma && !kWS;
  static_assert(!kTmaC || (!kPersist && !kPV16), "TMA copies in the default blocks: not persistent, not pv_fp16");
  static_assert(ST >= 3, "the pipeline holds tile j (P V), j + 1 (S) and copies ahead");
  // kWS: warpgroup 0 copies (the producer), warpgroups 1 and 2 compute; copies by the 128 producer
  // threads (kCopyThreads), everything else as the default's warpgroups 0 and 1.
  constexpr int kThreads = 128 * G, kBM = 64 * G, kStages = ST;  // this instance's shape (shadows the defaults)
  constexpr int kCopyThreads = kWS ? 128 : kThreads;
  // kWS: the registers the producer gives up and the consumers take (128 x 56 + 256 x 224 <= 64 Ki).
  constexpr int kProducerRegs = 56, kConsumerRegs = 224;
  using PlanT = Plan<HD, kPersist, G, ST>;
  constexpr int kBN = PlanT::kBN;
  constexpr bool kSplitP = std::is_same_v<T, __nv_bfloat16>;
  // One P buffer (packed after P V of the tile before is done) where two blocks share an SM and
  // registers are short; otherwise two, swapped between iterations (packing overlaps P V).
  constexpr bool kOneP = !kWS && G == kGroups && blocks_per_sm<HD>() > 1;
  // bf16 P V through fp16 (FlashPrefillParams::pv_fp16; the default blocks, and v4t): V tiles converted
  // to fp16 into buffers after the V stages (exact for magnitudes in [2^-14, 65504]) with a vote: a
  // tile with no value that overflows fp16 takes P rounded once to fp16 and one MMA a key step (as
  // fp16 inputs do: fp16 keeps 11 bits of P where bf16 keeps 8); a tile with one takes P as bf16 hi +
  // lo. v3: each thread converts the V chunks its copies wrote into one of 3 buffers before the barrier
  // that publishes the tile, which votes. v4t: the producer converts tile i into buffer i % kStages
  // once it has landed, votes on a named barrier, stores the verdict and announces the tile on a third
  // barrier per stage ("converted"), which the consumers wait for before packing the tile's P.
  // Its own instances (kPV16: launched where pv_fp16 is on), so that the default's loop carries none of it.
  constexpr bool kF16V = kPV16 && kSplitP && !kPersist && G == kGroups && (!kWS || kTma);
  static_assert(!kPV16 || kF16V, "pv_fp16 instances: bf16, the default blocks or v4t");
  constexpr int kV16Bufs = kWS ? kStages : 3;
  constexpr bool f16v = kF16V;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t raw_s = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t base = (raw_s + 1023u) & ~1023u;
  const uint32_t q_s0 = base, k_s = base + PlanT::kQ * PlanT::kQBufs, v_s = k_s + kStages * PlanT::kTile;
  const uint32_t v16_s = v_s + kStages * PlanT::kTile;  // f16v: kV16Bufs fp16 V buffers
  // kWS: per stage a "full" barrier (the producer's 128 threads arrive once their copies of the tile
  // have landed and been fenced for wgmma) and an "empty" one (each of the 8 consumer warps arrives
  // once it is done reading the tile), after the V stages.
  uint64_t* full_bar =
      reinterpret_cast<uint64_t*>(smem_raw + (v16_s + (kWS && f16v ? kV16Bufs * PlanT::kTile : 0) - raw_s));
  uint64_t* empty_bar = full_bar + kStages;
  uint64_t* conv_bar = empty_bar + kStages;                             // kWS && f16v
  int* conv_ok = reinterpret_cast<int*>(conv_bar + kStages);            // kWS && f16v: the verdicts

  // The persistent variant: this block's items (h fastest, query tiles heaviest first, then the
  // sequence; item u = blockIdx.x + i gridDim.x) into the shared table, one thread each. `cross`:
  // every item with work has at least 2 key tiles, so the copy stream may run into the next items
  // (3 tiles ahead, Q of item n into buffer n % 3, which item n - 3 has left); otherwise each item
  // starts its own copies, as the one-item blocks do.
  PrefillItem* table = reinterpret_cast<PrefillItem*>(smem_raw + (v_s + kStages * PlanT::kTile - raw_s));
  int n_items = 1;
  bool cross = false;
  if constexpr (kPersist) {
    const int mt = (p.max_seqlen_q + kBM - 1) / kBM;
    const int total = p.heads * mt * p.batch;
    n_items = (total - static_cast<int>(blockIdx.x) + static_cast<int>(gridDim.x) - 1) / static_cast<int>(gridDim.x);
    bool ok = true;
    if (static_cast<int>(threadIdx.x) < n_items) {
      const int u = static_cast<int>(blockIdx.x) + static_cast<int>(threadIdx.x) * static_cast<int>(gridDim.x);
      PrefillItem it;
      it.h = u % p.heads;
      const int y = (u / p.heads) % mt, bb = u / (p.heads * mt);
      it.m0 = (mt - 1 - y) * kBM;
      it.q0 = p.cu_seqlens_q[bb];
      it.tq = static_cast<int>(p.cu_seqlens_q[bb + 1] - it.q0);
      prefill_key_range(p, bb, it.k0, it.tk);
      const int kend_i = p.causal ? min(it.tk, it.tk - it.tq + min(it.m0 + kBM, it.tq)) : it.tk;
      it.ntiles = it.m0 < it.tq && kend_i > 0 ? (kend_i + kBN - 1) / kBN : 0;
      it.pad = 0;
      table[threadIdx.x] = it;
      ok = it.ntiles != 1;
    }
    cross = __syncthreads_and(ok) != 0;  // also publishes the table
  }
  // The persistent variant's copy cursor (block-uniform): table entry, its next tile, items begun
  // before it (its Q buffer), tiles issued before (the stage).
  int lk = 0, lj = 0, lq = 0, issued = 0;

  for (int ci = 0, cq = 0, tile_base = 0; ci < n_items; ++ci) {

  // Geometry (as v2's seq_tile, with 128-row blocks and kBN-key tiles): this block's one item, or
  // table entry ci of the persistent variant.
  int h, tq, tk, m0, ntiles;
  int64_t q0, k0 = 0;
  if constexpr (kPersist) {
    const PrefillItem& it = table[ci];
    ntiles = it.ntiles;
    if (ntiles == 0) continue;  // block-uniform
    h = it.h, q0 = it.q0, tq = it.tq, k0 = it.k0, tk = it.tk, m0 = it.m0;
  } else {
    const int b = static_cast<int>(blockIdx.z);
    h = static_cast<int>(blockIdx.x);
    q0 = p.cu_seqlens_q[b];
    tq = static_cast<int>(p.cu_seqlens_q[b + 1] - q0);
    tk = 0;
    prefill_key_range(p, b, k0, tk);
    m0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kBM;  // heaviest first
    if (m0 >= tq) return;
  }
  const int kvh = h / (p.heads / p.kv_heads), shift = tk - tq;
  if constexpr (!kPersist) {
    const int kend = p.causal ? min(tk, shift + min(m0 + kBM, tq)) : tk;
    ntiles = (kend + kBN - 1) / kBN;
  }
  const uint32_t q_s = q_s0 + (cq % PlanT::kQBufs) * PlanT::kQ;  // this item's Q

  const int64_t q_stride = static_cast<int64_t>(p.heads) * HD, kv_stride = static_cast<int64_t>(p.kv_heads) * HD;
  const char* qg = reinterpret_cast<const char*>(static_cast<const T*>(p.q) + (q0 + m0) * q_stride + h * HD);
  const char* kg = reinterpret_cast<const char*>(static_cast<const T*>(p.k) + k0 * kv_stride + kvh * HD);
  const char* vg = reinterpret_cast<const char*>(static_cast<const T*>(p.v) + k0 * kv_stride + kvh * HD);
  const int64_t q_bytes = q_stride * 2, kv_bytes = kv_stride * 2;
  // One K/V tile (rows past `rows` zero-filled): a whole tile (every one but a sequence's last) without
  // the per-row tests and address selects (warp-uniform branch; about 20 SASS instructions a tile fewer).
  auto load_kv = [&](uint32_t ks, uint32_t vs, const char* kt, const char* vt, int rows) {
    if (rows >= kBN) {
      load_swizzled<HD, kBN, kCopyThreads, true>(ks, kt, kv_bytes, rows);
      load_swizzled<HD, kBN, kCopyThreads, true>(vs, vt, kv_bytes, rows);
    } else {
      load_swizzled<HD, kBN, kCopyThreads>(ks, kt, kv_bytes, rows);
      load_swizzled<HD, kBN, kCopyThreads>(vs, vt, kv_bytes, rows);
    }
  };
  // f16v: this thread's chunks of V tile i (those its copies wrote: rows past the keys are zeros) as
  // fp16 into buffer i % kV16Bufs, same layout; true where a value overflowed fp16. v3 (3 buffers):
  // buffer i % 3 is written before the barrier that publishes tile i (iteration i - 1) and read by P V
  // of tile i (iteration i): at that barrier every thread is past iteration i - 2, the last reader of
  // the buffer before. v4t (the producer's threads, kStages buffers): see convert_announce.
  auto convert_v = [&](int i) -> bool {
    constexpr int kChunks = HD / 8, kRowsPerPass = kCopyThreads / kChunks;
    const int r = static_cast<int>(threadIdx.x) / kChunks, c = static_cast<int>(threadIdx.x) % kChunks;
    const uint32_t off = kern::swz128_offset(kBN, r, c);
    const uint32_t src = v_s + (i % kStages) * PlanT::kTile + off, dst = v16_s + (i % kV16Bufs) * PlanT::kTile + off;
    __half2 top = __float2half2_rn(0.f);
#pragma unroll
    for (int n = 0; n < kBN / kRowsPerPass; ++n) {
      uint4 w = lds128(src + n * kRowsPerPass * 128);
      w.x = bf16x2_to_f16x2(w.x, top), w.y = bf16x2_to_f16x2(w.y, top);
      w.z = bf16x2_to_f16x2(w.z, top), w.w = bf16x2_to_f16x2(w.w, top);
      sts128(dst + n * kRowsPerPass * 128, w);
    }
    const uint32_t t = *reinterpret_cast<const uint32_t*>(&top);
    return (t & 0xffffu) >= 0x7c00u || (t >> 16) >= 0x7c00u;  // an infinite half
  };
  // Tile i (keys i kBN ..) into stage i % kStages, as one cp.async group (empty past the last tile).
  // The persistent variant ignores i: the next tile of its copy stream (this item's, or with `cross`
  // a later item's, its Q with its first tile), into the stage after the last one issued.
  auto load_tile = [&](int i) {
    if constexpr (kPersist) {
      while (lk < n_items && table[lk].ntiles == 0) ++lk;
      if (lk < n_items && (cross || lk == ci)) {
        const PrefillItem& it = table[lk];
        const int kvh_l = it.h / (p.heads / p.kv_heads), kn = lj * kBN;
        const char* kl = reinterpret_cast<const char*>(static_cast<const T*>(p.k) + it.k0 * kv_stride + kvh_l * HD);
        const char* vl = reinterpret_cast<const char*>(static_cast<const T*>(p.v) + it.k0 * kv_stride + kvh_l * HD);
        if (lj == 0) {
          const char* ql = reinterpret_cast<const char*>(static_cast<const T*>(p.q) + (it.q0 + it.m0) * q_stride + it.h * HD);
          load_swizzled<HD, kBM, kThreads>(q_s0 + (lq % PlanT::kQBufs) * PlanT::kQ, ql, q_bytes, it.tq - it.m0);
        }
        const uint32_t off = (issued % kStages) * PlanT::kTile;
        load_kv(k_s + off, v_s + off, kl + kn * kv_bytes, vl + kn * kv_bytes, it.tk - kn);
        ++issued;
        if (++lj == it.ntiles) ++lk, lj = 0, ++lq;
      }
    } else if (i < ntiles) {
      const int kn = i * kBN;
      const uint32_t off = (i % kStages) * PlanT::kTile;
      if (kTmaC && tk - kn >= kBN) {  // kTmaC: a whole tile by thread 0's TMA copies
        if (threadIdx.x == 0) {
          uint64_t* bar = &full_bar[i % kStages];
          kern::mbar_expect_tx(bar, 2 * PlanT::kTile);
#pragma unroll
          for (int sl = 0; sl < HD / 64; ++sl) {
            kern::tma_load_2d(k_s + off + sl * kBN * 128, &maps.k, kvh * HD + sl * 64, static_cast<int>(k0) + kn, bar);
            kern::tma_load_2d(v_s + off + sl * kBN * 128, &maps.v, kvh * HD + sl * 64, static_cast<int>(k0) + kn, bar);
          }
        }
      } else {
        load_kv(k_s + off, v_s + off, kg + kn * kv_bytes, vg + kn * kv_bytes, tk - kn);
      }
    }
    kern::cp_async_commit();
  };

  // kTmaC: tile i (one this block copies) landed, where TMA copied it (a whole tile); a no-op otherwise.
  auto wait_tma_tile = [&](int i) {
    if constexpr (kTmaC) {
      if (i < ntiles && tk - i * kBN >= kBN) wait_parity(&full_bar[i % kStages], (i / kStages) & 1);
    }
  };

  // The warp-specialised variant: barriers set up, then warpgroup 0 streams Q and the K/V tiles
  // through the stages (a stage is refilled once all 8 consumer warps have released it; a tile is
  // announced full two tiles later, once its copies have landed and been fenced for wgmma) and leaves;
  // warpgroups 1 and 2 run the default's per-warpgroup pipeline on the announced tiles.
  if constexpr (kWS) {
    if (threadIdx.x == 0) {
      for (int st = 0; st < kStages; ++st) {
        kern::mbar_init(&full_bar[st], kTma ? 1 : kCopyThreads);
        kern::mbar_init(&empty_bar[st], 4 * G);
        if (f16v) kern::mbar_init(&conv_bar[st], 1);
      }
    }
    kern::fence_mbarrier_init();
    __syncthreads();
    const bool producer = threadIdx.x < kCopyThreads;
    if (kTma && producer) {
      // TMA: Q by cp.async (complete before tile 0 is announced); each whole K/V tile by one thread's
      // TMA copies (HD / 64 boxes each of K and V) on the stage's full barrier (one arrival with the
      // bytes); the sequence's last, partial tile by every producer thread's cp.async (rows past its
      // keys zero-filled, as v3), announced by one arrival once all have landed.
      set_max_regs_dec<kProducerRegs>();
      load_swizzled<HD, kBM, kCopyThreads>(q_s, qg, q_bytes, tq - m0);
      kern::cp_async_commit();
      kern::cp_async_wait<0>();
      kern::fence_proxy_async();
      named_bar_sync(3, kCopyThreads);
      const int col = kvh * HD;
      // f16v: tile t converted (every producer thread its chunks), voted on, announced: one tile behind
      // the copies issued (t = i - 1 after tile i's), so that it has mostly landed.
      auto convert_announce = [&](int t) {
        wait_parity(&full_bar[t % kStages], (t / kStages) & 1);
        const bool over = convert_v(t);
        kern::fence_proxy_async();
        const bool any = named_bar_or(3, kCopyThreads, over);
        if (threadIdx.x == 0) {
          conv_ok[t % kStages] = any ? 0 : 1;
          kern::mbar_arrive(&conv_bar[t % kStages]);
        }
      };
      for (int i = 0; i < ntiles; ++i) {
        if (i >= kStages) wait_parity(&empty_bar[i % kStages], ((i / kStages) - 1) & 1);
        const int kn = i * kBN;
        uint64_t* bar = &full_bar[i % kStages];
        if (tk - kn >= kBN) {
          if (threadIdx.x == 0) {
            const uint32_t off = (i % kStages) * PlanT::kTile;
            const int row = static_cast<int>(k0) + kn;
            kern::mbar_expect_tx(bar, 2 * PlanT::kTile);
#pragma unroll
            for (int sl = 0; sl < HD / 64; ++sl) {
              kern::tma_load_2d(k_s + off + sl * kBN * 128, &maps.k, col + sl * 64, row, bar);
              kern::tma_load_2d(v_s + off + sl * kBN * 128, &maps.v, col + sl * 64, row, bar);
            }
          }
        } else {
          load_tile(i);
          kern::cp_async_wait<0>();
          kern::fence_proxy_async();
          named_bar_sync(3, kCopyThreads);
          if (threadIdx.x == 0) kern::mbar_arrive(bar);
        }
        if (f16v && i >= 1) convert_announce(i - 1);
      }
      if (f16v && ntiles > 0) convert_announce(ntiles - 1);
      return;
    }
    if (!kTma && producer) {
      set_max_regs_dec<kProducerRegs>();
      constexpr int kLag = 2;  // copy groups left in flight when a tile is announced
      for (int i = 0; i < ntiles; ++i) {
        if (i >= kStages) wait_parity(&empty_bar[i % kStages], ((i / kStages) - 1) & 1);
        if (i == 0) load_swizzled<HD, kBM, kCopyThreads>(q_s, qg, q_bytes, tq - m0);  // with tile 0's group
        load_tile(i);
        if (i >= kLag) {
          kern::cp_async_wait<kLag>();
          kern::fence_proxy_async();
          kern::mbar_arrive(&full_bar[(i - kLag) % kStages]);
        }
      }
      kern::cp_async_wait<0>();
      kern::fence_proxy_async();
      for (int i = max(ntiles - kLag, 0); i < ntiles; ++i) kern::mbar_arrive(&full_bar[i % kStages]);
      return;
    }
    set_max_regs_inc<kConsumerRegs>();
  }
  // Broadcast from lane 0: the compiler then knows wg is warp-uniform and keeps what derives from it (Q's
  // descriptor, the warpgroup's key range, the loop's tile index) in uniform registers. One warpgroup
  // and no producer: the constant 0 (4-12 SASS instructions fewer a loop than the broadcast).
  const int wg = G == 1 && !kWS ? 0 : __shfl_sync(0xffffffffu, static_cast<int>(threadIdx.x) / 128, 0) - (kWS ? 1 : 0);
  const int warp = (static_cast<int>(threadIdx.x) % 128) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32, g = lane / 4, t = lane % 4;
  const int w0 = m0 + 64 * wg;                 // first row of this warpgroup (in the sequence)
  const int row_a = w0 + 16 * warp + g;        // this thread's rows: row_a, row_a + 8
  // Keys [0, w_kend) are seen by some row of the warpgroup (none when it has no rows); keys < w_kfree
  // by every row of it. Both warpgroup-uniform.
  const int w_kend = w0 >= tq ? 0 : (p.causal ? min(tk, shift + min(w0 + 64, tq)) : tk);
  const int w_kfree = p.causal ? min(tk, shift + w0 + 1) : tk;
  const int lim_a = p.causal ? min(tk, shift + row_a + 1) : tk;  // row_a sees keys < lim_a
  const int lim_b = p.causal ? min(tk, shift + row_a + 9) : tk;

  // Descriptors of stage 0 / this warpgroup's Q rows at k-step 0; later stages and k-steps add their
  // byte offset / 16 to the start-address field (no carry: shared addresses are below 256 KiB).
  // Their low words pass through an opaque move: the compiler then adds the offsets to them instead of
  // re-deriving each descriptor from the shared address every tile (a few uniform instructions an MMA).
  auto opaque = [](uint64_t d) {
    uint32_t lo = static_cast<uint32_t>(d);
    asm volatile("mov.b32 %0, %0;\n" : "+r"(lo));
    return (d & 0xFFFFFFFF00000000ull) | lo;
  };
  const uint64_t desc_q = opaque(kern::wgmma_desc(q_s + wg * 64 * 128, 16, 1024));
  const uint64_t desc_k = opaque(kern::wgmma_desc(k_s, 16, 1024));
  const uint64_t desc_v = opaque(kern::wgmma_desc(v_s, kBN * 128, 1024));
  // Byte offset / 16 of K-step kk in a K-major swizzled tile of `rows` rows.
  auto kstep = [](int rows, int kk) { return static_cast<uint32_t>(((kk / 4) * rows * 128 + (kk % 4) * 32) >> 4); };

  // S (64 x kBN) = Q K^T of tile i for this warpgroup, issued (not waited for).
  auto issue_scores = [&](float (&s)[kBN / 2], int i) {
#pragma unroll
    for (int n = 0; n < kBN / 2; ++n) s[n] = 0.f;
    const uint64_t dk = kern::wgmma_desc_add(desc_k, (((tile_base + i) % kStages) * PlanT::kTile) >> 4);
    kern::wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < HD / 16; ++kk) kern::wgmma_ss<T, kBN>(s, kern::wgmma_desc_add(desc_q, kstep(kBM, kk)), kern::wgmma_desc_add(dk, kstep(kBN, kk)), 1);
    kern::wgmma_commit();
  };

  float o[HD / 2];
#pragma unroll
  for (int i = 0; i < HD / 2; ++i) o[i] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;
  // Mask and online softmax (exp2 domain) of tile `key0`'s scores s (s[4n + e] is key key0 + 8n + 2t
  // + e % 2 of row row_a (e < 2) or row_a + 8): updates the running max and sums, gives the factor
  // O must be scaled by before this tile's P V, and P's A fragments for key step kk (keys 16 kk ..):
  // chunks 2 kk (a0 row a, a1 row b) and 2 kk + 1 (a2, a3); bf16 as hi + lo.
  using PFrag = uint32_t[kBN / 16][4];  // (pl: unused for fp16)
  auto softmax_tile = [&](float (&s)[kBN / 2], int key0, float& corr_a, float& corr_b) {
    if (key0 + kBN > w_kfree) {
      const int la = lim_a - key0 - 2 * t, lb = lim_b - key0 - 2 * t;
#pragma unroll
      for (int n = 0; n < kBN / 8; ++n)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          if (8 * n + e >= la) s[4 * n + e] = -INFINITY;
          if (8 * n + e >= lb) s[4 * n + 2 + e] = -INFINITY;
        }
    }
    float ma[kBN / 8], mb[kBN / 8];  // row maxima by a pairwise tree (short dependency chains)
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n) {
      ma[n] = fmaxf(s[4 * n], s[4 * n + 1]);
      mb[n] = fmaxf(s[4 * n + 2], s[4 * n + 3]);
    }
    constexpr int kLevels = kBN == 128 ? 4 : 3;  // log2(kBN / 8)
    static_assert((8 << kLevels) == kBN, "tile_keys: 64 or 128");
#pragma unroll
    for (int lv = 0; lv < kLevels; ++lv)
#pragma unroll
      for (int n = 0; n < (kBN / 16 >> lv); ++n) {
        ma[n] = fmaxf(ma[n], ma[n + (kBN / 16 >> lv)]);
        mb[n] = fmaxf(mb[n], mb[n + (kBN / 16 >> lv)]);
      }
    float base_a, base_b;
    kern::quad_max_fold<true>(ma[0], mb[0], scale_log2, m_a, m_b, base_a, base_b, corr_a, corr_b, p.rescale_slack);
    float sum_a = 0.f, sum_b = 0.f;
#pragma unroll
    for (int n = 0; n < kBN / 8; ++n) {
      s[4 * n] = kern::exp2_ftz(fmaf(s[4 * n], scale_log2, -base_a));
      s[4 * n + 1] = kern::exp2_ftz(fmaf(s[4 * n + 1], scale_log2, -base_a));
      s[4 * n + 2] = kern::exp2_ftz(fmaf(s[4 * n + 2], scale_log2, -base_b));
      s[4 * n + 3] = kern::exp2_ftz(fmaf(s[4 * n + 3], scale_log2, -base_b));
      sum_a += s[4 * n] + s[4 * n + 1];
      sum_b += s[4 * n + 2] + s[4 * n + 3];
    }
    l_a = l_a * corr_a + sum_a;
    l_b = l_b * corr_b + sum_b;
  };
  auto pack_p = [&](const float (&s)[kBN / 2], PFrag& ph, PFrag& pl, bool f16) {
    if (kF16V && f16) {  // P rounded once to fp16 (the tile's V is in an fp16 buffer)
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk)
#pragma unroll
        for (int r = 0; r < 4; ++r) ph[kk][r] = kern::pack2<__half>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
      return;
    }
#pragma unroll
    for (int kk = 0; kk < kBN / 16; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) split2<T>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1], ph[kk][r], pl[kk][r]);
  };

  // Prologue: Q and tiles 0, 1 and 2 in flight (0 and 1 in the small variant; one cp.async group
  // each, Q with tile 0; a group without a tile is empty); S of tile 0 and its softmax.
  if constexpr (kPersist) {
    if (cq == 0 || !cross) {  // else the stream has copied Q and tiles 0..2 already
      if (cq > 0) __syncthreads();  // the item before is done with the stages these copies refill
      load_tile(0);
      load_tile(1);
      load_tile(2);
    }
  } else if constexpr (!kWS) {  // tiles 0 .. kStages - 2 (the small variant: 0 and 1)
    if constexpr (kTmaC) {  // the stages' TMA barriers, before the first copy
      if (threadIdx.x == 0)
        for (int st = 0; st < kStages; ++st) kern::mbar_init(&full_bar[st], 1);
      kern::fence_mbarrier_init();
      __syncthreads();
    }
    load_swizzled<HD, kBM, kThreads>(q_s, qg, q_bytes, tq - m0);
#pragma unroll
    for (int i = 0; i < kStages - 1; ++i) load_tile(i);
  }
  bool f16_cur = false, f16_nxt = false;  // f16v: P V of tile j / j + 1 through fp16 (block-uniform)
  if constexpr (!kWS) {
    kern::cp_async_wait<kStages - 2>();
    wait_tma_tile(0);
    const bool over = f16v && 0 < ntiles && convert_v(0);
    kern::fence_proxy_async();
    if (f16v) f16_cur = __all_sync(0xffffffffu, __syncthreads_or(over) == 0);  // (a vote: ptxas sees it uniform)
    else __syncthreads();
  }
  // kWS: both consumer warpgroups run the same tiles (non-causal, both with rows): they take turns at
  // issuing their MMAs (named barriers 1 and 2: warpgroup 0 first), so one's softmax runs under the
  // other's MMAs. Warpgroup 1 gives warpgroup 0 its first turn here.
  const bool pingpong = kWS && !p.causal && m0 + 64 < tq;
  if (pingpong && wg == 1) named_bar_arrive(2, 256);
  PFrag ph, pl;  // P of the current tile (pl unused for fp16)
  float corr_a = 1.f, corr_b = 1.f;
  if (0 < w_kend) {
    if constexpr (kWS) {
      wait_parity(&full_bar[0], 0);
      kern::fence_proxy_async();
    }
    float s[kBN / 2];
    issue_scores(s, 0);
    kern::wgmma_wait<0>();
    kern::reg_fence<kBN / 2>(s);
    softmax_tile(s, 0, corr_a, corr_b);
    if constexpr (kWS && kF16V) {
      if (f16v) {
        wait_parity(&conv_bar[0], 0);
        f16_cur = __all_sync(0xffffffffu, conv_ok[0] != 0);
      }
    }
    pack_p(s, ph, pl, f16_cur);
  }

  // Iteration j, P of tile j in (ph, pl): issue S of tile j + 1, rescale O, issue O += P V of tile j;
  // wait for S (P V runs on), mask and softmax it into (nh, nl) while P V runs, then wait for P V.
  // Both MMA groups are done by the end of the iteration. At its start tile j + 1 has landed (the
  // newest group, tile j + 2, may still be in flight), and tile j + 3 is copied into the stage of
  // tile j - 1 (every thread is past iteration j - 1 at the barrier); in the small variant's three
  // stages nothing is in flight then, and tile j + 2 is copied. S of tile j + 1 is issued even
  // past the last tile this warpgroup needs (the stage then holds an older tile or one being copied;
  // the result is unused): unconditional MMAs and waits keep ptxas from serialising the pipeline.
  // Returns false past the warpgroup's last tile. The loop runs two iterations per pass with the P
  // buffers swapped, so that no registers are copied.
  auto iteration = [&](int j, PFrag& ph, PFrag& pl, PFrag& nh, PFrag& nl) {
    if constexpr (kPersist) {  // every iteration keeps the stream 3 tiles ahead
      if (j + 1 < ntiles) kern::cp_async_wait<1>();
      else kern::cp_async_wait<2>();  // the next tile is the next item's: its prologue waits for it
      kern::fence_proxy_async();
      __syncthreads();
      load_tile(j + 3);
    } else if constexpr (kWS) {  // tile j + 1 announced (for S); a tile past this warpgroup's keys released
      if (j * kBN >= w_kend) {
        wait_parity(&full_bar[j % kStages], (j / kStages) & 1);
        __syncwarp();
        kern::mbar_arrive_if(&empty_bar[j % kStages], lane == 0);
        return;
      }
      if ((j + 1) * kBN < w_kend) {
        wait_parity(&full_bar[(j + 1) % kStages], ((j + 1) / kStages) & 1);
        kern::fence_proxy_async();
      }
      if (pingpong) named_bar_sync(wg == 0 ? 2 : 1, 256);  // this warpgroup's turn
    } else if (j + 1 < ntiles) {  // kStages - 3 groups may stay in flight (the small variant: none)
      kern::cp_async_wait<kStages - 3>();
      wait_tma_tile(j + 1);
      const bool over = f16v && convert_v(j + 1);
      kern::fence_proxy_async();
      if (f16v) f16_nxt = __all_sync(0xffffffffu, __syncthreads_or(over) == 0);
      else __syncthreads();
      load_tile(j + kStages - 1);
    }
    const int key0 = j * kBN;
    if (key0 >= w_kend) return;  // warpgroup-uniform; so is every later tile
    float sn[kBN / 2];
    issue_scores(sn, j + 1);
    // Some row maximum of the warp moved (with p.rescale_slack > 0 only by more than the slack: few tiles).
    if (!__all_sync(0xffffffffu, corr_a == 1.f && corr_b == 1.f)) {
#pragma unroll
      for (int i = 0; i < HD / 8; ++i) {
        o[4 * i] *= corr_a, o[4 * i + 1] *= corr_a;
        o[4 * i + 2] *= corr_b, o[4 * i + 3] *= corr_b;
      }
    }
    kern::wgmma_fence();
    if (kF16V && f16_cur) {
      const uint64_t dv = kern::wgmma_desc_add(desc_v, (v16_s - v_s + (j % kV16Bufs) * PlanT::kTile) >> 4);
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) kern::wgmma_rs_tb<__half, HD>(o, ph[kk], kern::wgmma_desc_add(dv, kk * 128));
    } else {
      const uint64_t dv = kern::wgmma_desc_add(desc_v, (((tile_base + j) % kStages) * PlanT::kTile) >> 4);
#pragma unroll
      for (int kk = 0; kk < kBN / 16; ++kk) {
        kern::wgmma_rs_tb<T, HD>(o, ph[kk], kern::wgmma_desc_add(dv, kk * 128));  // 16 rows of 128 bytes per k-step
        if constexpr (kSplitP) kern::wgmma_rs_tb<T, HD>(o, pl[kk], kern::wgmma_desc_add(dv, kk * 128));
      }
    }
    kern::wgmma_commit();
    if (pingpong) {  // the other warpgroup's turn (warpgroup 1 owes none after its last tile)
      if (wg == 0) named_bar_arrive(1, 256);
      else if (j + 1 < ntiles) named_bar_arrive(2, 256);
    }
    kern::wgmma_wait<1>();  // S of tile j + 1 (P V of tile j may still run)
    kern::reg_fence<kBN / 2>(sn);
    const bool more = key0 + kBN < w_kend;
    if (more) softmax_tile(sn, key0 + kBN, corr_a, corr_b);
    if constexpr (kWS && kF16V) {  // tile j + 1 converted (the producer's verdict), before its P is packed
      if (f16v && more) {
        wait_parity(&conv_bar[(j + 1) % kStages], ((j + 1) / kStages) & 1);
        f16_nxt = __all_sync(0xffffffffu, conv_ok[(j + 1) % kStages] != 0);
      }
    }
    if constexpr (!kOneP) {
      if (more) pack_p(sn, nh, nl, f16_nxt);
    }
    kern::wgmma_wait<0>();
    kern::reg_fence<HD / 2>(o);
    kern::reg_fence(ph);  // P of tile j stays in its registers until its MMAs are done
    if constexpr (kSplitP) kern::reg_fence(pl);
    if constexpr (kOneP) {  // P of tile j + 1 into the registers P of tile j has left
      if (more) pack_p(sn, nh, nl, f16_nxt);
    }
    if constexpr (kF16V) f16_cur = f16_nxt;
    if constexpr (kWS) {  // tile j is read (S of it last iteration, P V of it now): the stage is free
      __syncwarp();
      kern::mbar_arrive_if(&empty_bar[j % kStages], lane == 0);
    }
  };
  if constexpr (kOneP) {
#pragma unroll 1
    for (int j = 0; j < ntiles; ++j) iteration(j, ph, pl, ph, pl);
  } else {
    PFrag ph2, pl2;
#pragma unroll 1
    for (int j = 0; j < ntiles; j += 2) {
      iteration(j, ph, pl, ph2, pl2);
      if (j + 1 < ntiles) iteration(j + 1, ph2, pl2, ph, pl);
    }
  }
  // The loop's last barrier may be skipped by warpgroups that finished early: no shared memory is
  // written after it, so none is needed here (the persistent variant's next item starts with one).
  if constexpr (kPersist) {
    tile_base += ntiles, ++cq;
    if (w_kend == 0) continue;
  } else {
    if (w_kend == 0) return;
  }

  // Finish the row sums over the quad, normalise, store the rows inside the sequence.
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l_a += __shfl_xor_sync(0xffffffffu, l_a, off);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, off);
  }
  const float inv_a = 1.f / l_a, inv_b = 1.f / l_b;
  T* out = static_cast<T*>(p.out) + (q0 + row_a) * q_stride + h * HD + 2 * t;  // row_a, this lane's dims
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) {
    if (row_a < tq) *reinterpret_cast<uint32_t*>(out + i * 8) = kern::pack2<T>(o[4 * i] * inv_a, o[4 * i + 1] * inv_a);
    if (row_a + 8 < tq)
      *reinterpret_cast<uint32_t*>(out + 8 * q_stride + i * 8) =
          kern::pack2<T>(o[4 * i + 2] * inv_b, o[4 * i + 3] * inv_b);
  }
  }  // items
#endif  // MINFER_WGMMA
}

// The K and V maps of p (boxes of box_rows keys), where the key tensor's rows are known (k_lens: batch x
// k_seq_stride, else total_k) and both encode; false otherwise (then the copies stay cp.async).
bool make_kv_maps(const FlashPrefillParams& p, int head_dim, int box_rows, PrefillMaps& maps) {
  const int64_t rows = p.k_lens ? static_cast<int64_t>(p.batch) * p.k_seq_stride : p.total_k;
  const int64_t cols = static_cast<int64_t>(p.kv_heads) * head_dim;
  return rows > 0 && rows < (int64_t{1} << 31) && kern::encode_map_2d(maps.k, p.k, p.dtype, rows, cols, box_rows) &&
         kern::encode_map_2d(maps.v, p.v, p.dtype, rows, cols, box_rows);
}

// MINFER_PREFILL_COPY=cp.async|tma: the K/V copies of the non-warp-specialised bf16 blocks (v3, v3s) by
// cp.async (the default) or, where the key tensor's rows are known and the maps encode, whole tiles by
// TMA (kTmaC). Read once.
bool prefill_copy_tma_env() {
  static const bool on = env_choice("MINFER_PREFILL_COPY", {"cp.async", "tma"}) == 1;
  return on;
}

// G warpgroups (64 G query rows) a block, ST K/V stages: the default blocks, or the small variant's
// (head_dim 128: G = 1, ST = 3, two blocks an SM).
template <typename T, int HD, int G = kGroups, int ST = kStages>
Status launch(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream, bool copy_tma = false) {
  // bf16 P V through fp16 (the default blocks; its own instance): 3 fp16 V buffers after the V stages.
  constexpr bool kCanPV16 = std::is_same_v<T, __nv_bfloat16> && G == kGroups && ST == kStages;
  const bool pv16 = kCanPV16 && p.pv_fp16 > 0;
  uint32_t smem = Plan<HD, false, G, ST>::kBytes + (pv16 ? 3 * Plan<HD, false, G, ST>::kTile : 0);
  auto* kernel = flash_prefill_sm90<T, HD, false, G, ST>;
  if constexpr (kCanPV16) {
    if (pv16) kernel = flash_prefill_sm90<T, HD, false, G, ST, false, false, true>;
  }
  // MINFER_PREFILL_COPY=tma (bf16): whole K/V tiles by TMA (kTmaC), a barrier a stage after the V stages.
  PrefillMaps maps{};
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (!pv16 && (copy_tma || prefill_copy_tma_env()) && make_kv_maps(p, HD, Plan<HD, false, G, ST>::kBN, maps)) {
      kernel = flash_prefill_sm90<T, HD, false, G, ST, false, true>;
      smem += ST * sizeof(uint64_t);
    }
  }
  MINFER_CUDA_RETURN(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const dim3 grid(static_cast<unsigned>(p.heads), kern::blocks_for(p.max_seqlen_q, 64 * G),
                  static_cast<unsigned>(p.batch));
  kernel<<<grid, 128 * G, smem, stream>>>(p, scale_log2, maps);
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

// The warp-specialised variant (MINFER_PREFILL=v4): the default blocks' 128 rows on two consumer
// warpgroups plus a producer warpgroup (384 threads, one block an SM), the stages' barriers after them.
// tma: whole K/V tiles by TMA where the key tensor's rows are known (k_lens: batch x k_seq_stride, else
// total_k) and the maps encode; otherwise the cp.async producer, or (v3_otherwise: the default's choice)
// the 128-row v3.
template <typename T, int HD>
Status launch_ws(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream, const Sm90PrefillForm& f) {
  PrefillMaps maps{};
  const bool use_tma = f.tma && make_kv_maps(p, HD, Plan<HD>::kBN, maps);
  if (f.tma && !use_tma && f.v3_otherwise) return launch<T, HD>(p, scale_log2, stream);
  // bf16 P V through fp16 (v4t): kStages fp16 V buffers, a "converted" barrier and a verdict a stage.
  const bool f16v = std::is_same_v<T, __nv_bfloat16> && use_tma && p.pv_fp16 > 0;
  const uint32_t smem = Plan<HD>::kBytes + 2 * kStages * sizeof(uint64_t) +
                        (f16v ? kStages * (Plan<HD>::kTile + sizeof(uint64_t) + sizeof(int)) : 0);
  auto* kernel = use_tma ? flash_prefill_sm90<T, HD, false, kGroups, kStages, true, true>
                         : flash_prefill_sm90<T, HD, false, kGroups, kStages, true>;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    if (f16v) kernel = flash_prefill_sm90<T, HD, false, kGroups, kStages, true, true, true>;
  }
  MINFER_REQUIRE(kern::blocks_for(p.max_seqlen_q, kBM) <= 65535, "max_seqlen_q", "too many query tiles");
  MINFER_CUDA_RETURN(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const dim3 grid(static_cast<unsigned>(p.heads), kern::blocks_for(p.max_seqlen_q, kBM),
                  static_cast<unsigned>(p.batch));
  kernel<<<grid, kThreads + 128, smem, stream>>>(p, scale_log2, maps);
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

// The persistent variant (head_dim 128): one block per SM, or more where a block would hold more than
// kMaxItems items; items dealt round-robin.
template <typename T>
Status launch_persistent(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  constexpr uint32_t kSmem = Plan<128, true>::kBytes;
  MINFER_CUDA_RETURN(
      cudaFuncSetAttribute(flash_prefill_sm90<T, 128, true>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  const int64_t items = static_cast<int64_t>(p.heads) * kern::blocks_for(p.max_seqlen_q, kBM) * p.batch;
  const int64_t sms = kern::device_attribute(cudaDevAttrMultiProcessorCount, 132);
  const int64_t blocks = std::max(std::min(items, sms), (items + kMaxItems - 1) / kMaxItems);
  MINFER_REQUIRE(items <= INT32_MAX && blocks <= INT32_MAX, "batch", "too many query tiles for the persistent prefill");
  flash_prefill_sm90<T, 128, true><<<static_cast<unsigned>(blocks), kThreads, kSmem, stream>>>(p, scale_log2,
                                                                                              PrefillMaps{});
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

// Whether the current device runs the sm_90a code (compute capability 9.0). Read once per process.
bool device_is_sm90() {
  static const bool sm90 = [] {
    int dev = 0, major = 0, minor = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) return false;
    return major == 9 && minor == 0;
  }();
  return sm90;
}

// MINFER_PREFILL_RESCALE_SLACK=S (FlashPrefillParams::rescale_slack = -1): the sm90 kernels' lazy
// rescaling, S in [0, 8] (log2 units; 8: a row's maximum moves only when a tile's exceeds it 256-fold).
// Unset: kDefaultRescaleSlack (8; H100, session 30: 1.011x at head_dim 64 and 1.033x at 128 over 96
// bf16 non-causal cases, rel_err unchanged; reports/logs/h100/session30/). 0: the running maximum.
// Read once; a value that is not a number in [0, 8] is reported once and ignored (the default).
constexpr float kDefaultRescaleSlack = 8.f;
float prefill_rescale_slack_env() {
  static const float slack = [] {
    const char* e = std::getenv("MINFER_PREFILL_RESCALE_SLACK");
    if (!e || !*e) return kDefaultRescaleSlack;
    char* end = nullptr;
    const float v = std::strtof(e, &end);
    if (*end != '\0' || !(v >= 0.f && v <= 8.f)) {
      std::fprintf(stderr, "minfer: MINFER_PREFILL_RESCALE_SLACK=%s is not a number in [0, 8]; using %g\n", e,
                   static_cast<double>(kDefaultRescaleSlack));
      return kDefaultRescaleSlack;
    }
    return v;
  }();
  return slack;
}

}  // namespace

bool prefill_pv_f16_env() {
  static const bool on = env_choice("MINFER_PREFILL_PV", {"bf16", "f16"}) == 1;
  return on;
}

bool flash_prefill_sm90_applies(const FlashPrefillParams& p) {
  return (p.dtype == DType::F16 || p.dtype == DType::BF16) && (p.head_dim == 64 || p.head_dim == 128) &&
         kern::blocks_for(p.max_seqlen_q, kBM) <= 65535 && device_is_sm90();
}

Status flash_prefill_sm90_forward(const FlashPrefillParams& in, float scale_log2, cudaStream_t stream,
                                  const Sm90PrefillForm& f) {
  FlashPrefillParams p = in;
  if (p.rescale_slack == -1.f) p.rescale_slack = prefill_rescale_slack_env();
  if (p.pv_fp16 == -1) p.pv_fp16 = prefill_pv_f16_env() ? 1 : 0;
  MINFER_REQUIRE(p.pv_fp16 == 0 || p.pv_fp16 == 1, "pv_fp16", "must be 0, 1 or -1 (the environment's), got " + std::to_string(p.pv_fp16));
  MINFER_REQUIRE(p.rescale_slack >= 0.f && p.rescale_slack <= 8.f, "rescale_slack",
                 "must be in [0, 8] or -1 (the environment's), got " + std::to_string(p.rescale_slack));
  MINFER_REQUIRE(flash_prefill_sm90_applies(p), "head_dim",
                 "the sm_90 prefill takes fp16 / bf16 at head_dim 64 or 128 on a compute capability 9.0 device");
  if (f.ws) {
    if (p.head_dim == 64) {
      if (p.dtype == DType::F16) return launch_ws<__half, 64>(p, scale_log2, stream, f);
      return launch_ws<__nv_bfloat16, 64>(p, scale_log2, stream, f);
    }
    if (p.dtype == DType::F16) return launch_ws<__half, 128>(p, scale_log2, stream, f);
    return launch_ws<__nv_bfloat16, 128>(p, scale_log2, stream, f);
  }
  if (f.persistent && p.head_dim == 128) {
    if (p.dtype == DType::F16) return launch_persistent<__half>(p, scale_log2, stream);
    return launch_persistent<__nv_bfloat16>(p, scale_log2, stream);
  }
  if (f.small) {
    MINFER_REQUIRE(kern::blocks_for(p.max_seqlen_q, 64) <= 65535, "max_seqlen_q", "too many 64-row query tiles");
    if (p.head_dim == 64) {
      if (p.dtype == DType::F16) return launch<__half, 64, kSmallGroups, small_stages<64>()>(p, scale_log2, stream);
      return launch<__nv_bfloat16, 64, kSmallGroups, small_stages<64>()>(p, scale_log2, stream, f.copy_tma);
    }
    if (p.dtype == DType::F16) return launch<__half, 128, kSmallGroups, small_stages<128>()>(p, scale_log2, stream);
    return launch<__nv_bfloat16, 128, kSmallGroups, small_stages<128>()>(p, scale_log2, stream, f.copy_tma);
  }
  if (p.head_dim == 64) {
    if (p.dtype == DType::F16) return launch<__half, 64>(p, scale_log2, stream);
    return launch<__nv_bfloat16, 64>(p, scale_log2, stream, f.copy_tma);
  }
  if (p.dtype == DType::F16) return launch<__half, 128>(p, scale_log2, stream);
  return launch<__nv_bfloat16, 128>(p, scale_log2, stream, f.copy_tma);
}

}  // namespace minfer
