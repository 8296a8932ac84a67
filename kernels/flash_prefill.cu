// kernels/flash_prefill.cu: fused prefill attention (see flash_prefill.h). Versions held here:
// v2 tensor-core path (fp16, bf16 at head_dim 64 and 128: the default), v1.1 tensor-core path (fp16,
// bf16 at head_dim 16 and 32, and at 64 and 128 when selected) and a scalar fp32 path.
// Selection: the environment variable MINFER_PREFILL=v1 runs v1.1 where v2 would run (read once),
// so one benchmark run can time both; MINFER_PREFILL_KFRAG=lds makes v1.1 load K fragments as v1 did;
// MINFER_PREFILL_PV=f16 makes bf16 v2 do P V in fp16 (see below; opt-in: faster, but less accurate).
// Both tensor-core paths: key/value tiles of 64 rows stream through shared memory with cp.async,
// double-buffered; S = Q K^T with mma.sync m16n8k16, masking, the online softmax in fp32 (exp2
// domain), then O += P V with P taken from the S accumulators and V fragments loaded by
// ldmatrix.trans. For bf16 P is split as hi + lo in the storage type (two MMAs) so the probabilities
// keep about 16 bits: rounding P to bf16 alone costs ~2e-3 relative error, past the 1e-3 gate. Shared
// rows are padded by 16 bytes (bank-conflict free fragment loads and ldmatrix). Output rounded once.
// v1.1: block = 4 warps = 64 query rows of one head (16 rows per warp: every K and V fragment feeds
// one MMA); Q fragments in registers; K fragments by ldmatrix.x4 (v1: 32-bit loads); P as hi + lo
// for fp16 too.
// v2: block = 4 warps = 128 query rows (32 rows per warp as two m16 row tiles, so every K and V
// fragment read from shared memory feeds two MMAs: shared-memory reads per query row and key fall by
// half at head_dim 64, by a quarter at 128, where Q is re-read); __launch_bounds__(128, 2), 2 blocks
// per SM. Q fragments in registers at head_dim 64, by ldmatrix per step at 128. The softmax runs
// in steps of 64 keys at head_dim 64, 32 at 128 (a 64-key step there would spill: the output
// accumulator alone is 128 registers). fp16 P is rounded once (~3e-4 relative). Causal: fully
// masked steps skipped per warp, the per-element mask applied only to steps that cross a row's
// diagonal or Tk_b; O rescaled only when a row maximum moved. O is staged in the warp's own Q rows
// of shared memory and stored in 16-byte rows. Grid: heads fastest, query tiles reversed (every
// head's heaviest causal tile is issued first).
// v2 bf16 with P.V in fp16 (opt-in: MINFER_PREFILL_PV=f16, read once; bf16 at head_dim 64 and 128
// only; fp16 and v1.1 unchanged. H200, 2026-11-22: test_attention and validate --quick pass; 1.08-1.10x
// the default's speed at length 1024 (8 cases), but rel_err up to 8.5e-4 non-causal against the
// default's 1.1e-4, too close to the 1e-3 gate to be the default): S = Q K^T stays bf16,
// P is rounded once to fp16 (as the fp16 path: ~3e-4 relative) and O += P V runs as one fp16 MMA per
// fragment pair instead of bf16 hi + lo. Each V tile is converted in place in shared memory, after
// its cp.async lands and before any ldmatrix reads it, to V16 = fp16(V 2^E) with one power of two
// per tile: the block max of |V| over the tile (bf16 bits & 0x7fff order like unsigned integers:
// __vmaxu2, warp max, block max through shared memory) with exponent field f gives the tile's own
// exponent 141 - f (clamped to <= 126), which brings the max into [2^14, 2^15); E = the smallest
// exponent seen so far in the block (sentinel 127 until a nonzero tile), so it only falls and the
// fp32 accumulator stays below 2^15 l. When E falls, O (per warp: the warp tracks the exponent its
// O carries) is multiplied by 2^(E_new - E_old) in the existing rescale (folded into corr, so the
// rescale also runs when E changes); at the end O is divided by 2^E (exact) before 1 / l; l is the
// fp32 sum of probabilities as before. Exactness: bf16 has 8 significant bits, fp16 11 (and
// subnormals down to 2^-24), so with the max scaled into [2^14, 2^15) every element within 2^29 of
// the tile max converts exactly (in fact within 2^31: a scaled exponent >= -17 keeps all 8 bits);
// smaller ones keep fp16's absolute precision 2^-24 2^-E, far below the tile max. Precision can be
// lost only where V spans more than ~2^29 across the tiles of one block: a later tile whose values
// are that much smaller than an earlier tile's max uses the running E, not its own (numpy emulation:
// normwise 8e-4 at a 2^29 span carrying half the output, 9e-3 at 2^32; ~2e-4 otherwise, from the fp16
// P). A drop of E by more than 126 in one tile flushes the earlier O (values 2^126 apart). All-zero
// tiles keep E; inf / NaN give E = -114 and an inf / NaN result. Cost: two more barriers per key tile
// (max, then conversion) and one extra read + write of the V tile in shared memory.
// Scalar fp32 path: one warp per (query row, head); lane j scores key j of a 32-key chunk, the
// warp keeps the running max and sum, lane d accumulates output dims d, d + 32, ...
#include "kernels/flash_prefill.h"

#include <cmath>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/mma.cuh"
#include "kernels/flash_prefill_sm90.h"

namespace minfer {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// ---- tensor-core path v1.1 ----------------------------------------------------------------------

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kBlockM = 16 * kWarps;  // query rows per block
constexpr int kBlockN = 64;           // keys per tile
constexpr int kPad = 8;               // elements of padding per shared row (16 bytes)

using kern::cp_async16;
using kern::exp2_ftz;
using kern::split_bf16x2;
using kern::cp_async_commit;
using kern::cp_async_wait;
using kern::ldmatrix_x4;
using kern::ldmatrix_x4_trans;
using kern::mma16816;
using kern::pack2;
using kern::round_rest;

// Rows [0, kRows) of one head, HD elements each, into shared (row stride HD + kPad); global row r
// at src + r * row_stride, rows >= valid_rows zero-filled.
template <typename T, int HD, int kRows>
__device__ __forceinline__ void load_tile(T* dst /*(kRows, HD+kPad)*/, const T* src /*(rows, ., HD)*/,
                                          int64_t row_stride, int valid_rows) {
  constexpr int kChunks = HD / 8;  // 16-byte chunks per row
  for (int i = threadIdx.x; i < kRows * kChunks; i += kThreads) {
    const int r = i / kChunks, c = i % kChunks;
    const bool ok = r < valid_rows;
    const T* g = ok ? src + r * row_stride + c * 8 : src;
    cp_async16(dst + r * (HD + kPad) + c * 8, g, ok);
  }
}

// Sequence geometry of one block.
struct SeqTile {
  int64_t q0, k0;  // first query / key row of the sequence
  int tq, tk;      // Tq_b, Tk_b
  int m0;          // first query row of this block within the sequence (>= tq: nothing to do)
  int kvh;         // KV head of query head h
  int shift;       // query i sits at key position shift + i (Tk_b - Tq_b)
  int kend;        // keys [0, kend) are needed by some row of the block
  int ntiles;      // key tiles of kBlockN covering [0, kend)
};

// The block of query rows [tile * block_m, + block_m) of sequence b and query head h.
__device__ __forceinline__ SeqTile seq_tile(const FlashPrefillParams& p, int b, int h, int tile, int block_m) {
  SeqTile st;
  st.q0 = p.cu_seqlens_q[b], st.tq = static_cast<int>(p.cu_seqlens_q[b + 1] - st.q0);
  prefill_key_range(p, b, st.k0, st.tk);
  st.m0 = tile * block_m;
  st.kvh = h / (p.heads / p.kv_heads);
  st.shift = st.tk - st.tq;
  const int last_row = min(st.m0 + block_m, st.tq) - 1;
  st.kend = p.causal ? min(st.tk, st.shift + last_row + 1) : st.tk;
  st.ntiles = (st.kend + kBlockN - 1) / kBlockN;
  return st;
}

template <typename T, int HD>
__global__ void __launch_bounds__(kThreads) flash_prefill_tc(FlashPrefillParams p, float scale_log2, bool k_ldsm) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int kS = HD + kPad;  // shared row stride, elements
  T* qs = reinterpret_cast<T*>(smem_raw);  // (kBlockM, kS)
  T* ks = qs + kBlockM * kS;               // (2, kBlockN, kS)
  T* vs = ks + 2 * kBlockN * kS;           // (2, kBlockN, kS)

  const int b = blockIdx.z, h = blockIdx.y;
  const SeqTile st = seq_tile(p, b, h, static_cast<int>(gridDim.x - 1 - blockIdx.x), kBlockM);  // heaviest first
  if (st.m0 >= st.tq) return;
  const int kvh = st.kvh, shift = st.shift, ntiles = st.ntiles;

  const int64_t q_stride = static_cast<int64_t>(p.heads) * HD, kv_stride = static_cast<int64_t>(p.kv_heads) * HD;
  const T* qg = static_cast<const T*>(p.q) + (st.q0 + st.m0) * q_stride + h * HD;  // (rows, ., HD)
  const T* kg = static_cast<const T*>(p.k) + st.k0 * kv_stride + kvh * HD;        // (Tk, ., HD)
  const T* vg = static_cast<const T*>(p.v) + st.k0 * kv_stride + kvh * HD;        // (Tk, ., HD)

  load_tile<T, HD, kBlockM>(qs, qg, q_stride, st.tq - st.m0);
  load_tile<T, HD, kBlockN>(ks, kg, kv_stride, st.tk);
  load_tile<T, HD, kBlockN>(vs, vg, kv_stride, st.tk);
  cp_async_commit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int row_a = st.m0 + warp * 16 + g;  // this thread's rows: row_a and row_a + 8 (in the sequence)
  uint32_t qf[HD / 16][4];                  // Q fragments (16 rows x HD) of this warp
  float o[HD / 8][4];                       // output accumulator (16 rows x HD)
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m_a = -INFINITY, m_b = -INFINITY, l_a = 0.f, l_b = 0.f;  // rows row_a, row_a + 8 (l: partial)

  for (int j = 0; j < ntiles; ++j) {
    if (j + 1 < ntiles) {
      const int nb = (j + 1) & 1, kn = (j + 1) * kBlockN;
      load_tile<T, HD, kBlockN>(ks + nb * kBlockN * kS, kg + kn * kv_stride, kv_stride, st.tk - kn);
      load_tile<T, HD, kBlockN>(vs + nb * kBlockN * kS, vg + kn * kv_stride, kv_stride, st.tk - kn);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (j == 0) {
      const T* qw = qs + (warp * 16 + g) * kS + t * 2;  // this lane's first Q element
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
        qf[kk][0] = *reinterpret_cast<const uint32_t*>(qw + kk * 16);
        qf[kk][1] = *reinterpret_cast<const uint32_t*>(qw + 8 * kS + kk * 16);
        qf[kk][2] = *reinterpret_cast<const uint32_t*>(qw + kk * 16 + 8);
        qf[kk][3] = *reinterpret_cast<const uint32_t*>(qw + 8 * kS + kk * 16 + 8);
      }
    }
    const T* kt = ks + (j & 1) * kBlockN * kS;  // (kBlockN, kS)
    const T* vt = vs + (j & 1) * kBlockN * kS;  // (kBlockN, kS)

    // S = Q K^T for this warp's 16 rows x 64 keys; s[nt]: keys nt*8 + t*2 + {0,1}, rows a (0,1), b (2,3).
    // K fragments: with k_ldsm one ldmatrix.x4 per 8 keys x 32 dims (lane l addresses key nt * 8 +
    // l % 8 at dims kk * 16 + 8 (l / 8): registers b0, b1 of k-steps kk and kk + 1), else 32-bit loads.
    float s[kBlockN / 8][4];
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) {
      s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
      bool loaded = false;
      if constexpr (HD % 32 == 0) {
        if (k_ldsm) {
          const T* kl = kt + (nt * 8 + (lane & 7)) * kS + (lane >> 3) * 8;
#pragma unroll
          for (int kk = 0; kk < HD / 16; kk += 2) {
            uint32_t kb[4];
            ldmatrix_x4(kb, kl + kk * 16);
            mma16816<T>(s[nt], qf[kk], kb[0], kb[1]);
            mma16816<T>(s[nt], qf[kk + 1], kb[2], kb[3]);
          }
          loaded = true;
        }
      }
      if (!loaded) {  // v1, and head_dim 16
        const T* kr = kt + (nt * 8 + g) * kS + t * 2;
#pragma unroll
        for (int kk = 0; kk < HD / 16; ++kk)
          mma16816<T>(s[nt], qf[kk], *reinterpret_cast<const uint32_t*>(kr + kk * 16),
                      *reinterpret_cast<const uint32_t*>(kr + kk * 16 + 8));
      }
    }

    // Mask and scale to the exp2 domain, then the online-softmax step.
    const int lim_a = p.causal ? min(st.tk, shift + row_a + 1) : st.tk;  // keys < lim are visible
    const int lim_b = p.causal ? min(st.tk, shift + row_a + 9) : st.tk;
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = j * kBlockN + nt * 8 + t * 2 + e;
        s[nt][e] = key < lim_a ? s[nt][e] * scale_log2 : -INFINITY;
        s[nt][2 + e] = key < lim_b ? s[nt][2 + e] * scale_log2 : -INFINITY;
      }
    }
    kern::softmax_step(s, o, m_a, m_b, l_a, l_b);

    // O += P V, 16 keys per step; P as hi + lo in T.
#pragma unroll
    for (int kk = 0; kk < kBlockN / 16; ++kk) {
      const uint32_t ph[4] = {pack2<T>(s[2 * kk][0], s[2 * kk][1]), pack2<T>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<T>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack2<T>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      uint32_t pl[4];
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float x = s[2 * kk + r / 2][(r % 2) * 2], y = s[2 * kk + r / 2][(r % 2) * 2 + 1];
        pl[r] = pack2<T>(round_rest<T>(x), round_rest<T>(y));
      }
      const T* vrow = vt + (kk * 16 + ((lane >> 3) & 1) * 8 + (lane & 7)) * kS + (lane >> 4) * 8;
#pragma unroll
      for (int dp = 0; dp < HD / 16; ++dp) {
        uint32_t vb[4];
        ldmatrix_x4_trans(vb, vrow + dp * 16);
        mma16816<T>(o[2 * dp], ph, vb[0], vb[1]);
        mma16816<T>(o[2 * dp], pl, vb[0], vb[1]);
        mma16816<T>(o[2 * dp + 1], ph, vb[2], vb[3]);
        mma16816<T>(o[2 * dp + 1], pl, vb[2], vb[3]);
      }
    }
    __syncthreads();  // buffer j & 1 is refilled by iteration j + 1's prefetch
  }

  // Finish the row sums over the quad, normalise, store the rows inside the sequence.
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    l_a += __shfl_xor_sync(0xffffffffu, l_a, off);
    l_b += __shfl_xor_sync(0xffffffffu, l_b, off);
  }
  const float inv_a = 1.f / l_a, inv_b = 1.f / l_b;
  T* out = static_cast<T*>(p.out) + st.q0 * q_stride + h * HD + t * 2;  // (Tq, ., HD) from this lane's dim
#pragma unroll
  for (int i = 0; i < HD / 8; ++i) {
    if (row_a < st.tq)
      *reinterpret_cast<uint32_t*>(out + row_a * q_stride + i * 8) = pack2<T>(o[i][0] * inv_a, o[i][1] * inv_a);
    if (row_a + 8 < st.tq)
      *reinterpret_cast<uint32_t*>(out + (row_a + 8) * q_stride + i * 8) =
          pack2<T>(o[i][2] * inv_b, o[i][3] * inv_b);
  }
}

// K fragments through ldmatrix.x4 (v1.1, the default) or 32-bit shared loads (v1); the environment
// variable MINFER_PREFILL_KFRAG=lds selects v1, for an A/B timing in one run. Read once.
bool k_fragments_by_ldmatrix() {
  static const bool ldsm = [] {
    const char* v = std::getenv("MINFER_PREFILL_KFRAG");
    return !(v && std::string(v) == "lds");
  }();
  return ldsm;
}

template <typename T, int HD>
Status launch_tc(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  constexpr int kSmem = (kBlockM + 4 * kBlockN) * (HD + kPad) * static_cast<int>(sizeof(T));
  MINFER_CUDA_RETURN(cudaFuncSetAttribute(flash_prefill_tc<T, HD>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  const dim3 grid(kern::blocks_for(p.max_seqlen_q, kBlockM), static_cast<unsigned>(p.heads),
                  static_cast<unsigned>(p.batch));
  flash_prefill_tc<T, HD><<<grid, kThreads, kSmem, stream>>>(p, scale_log2, k_fragments_by_ldmatrix());
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

// ---- tensor-core path v2: 32 query rows per warp --------------------------------------------------
// Block = 4 warps = 128 query rows of one (sequence, head); warp w owns rows 32w .. 32w + 31 as two
// m16 row tiles (rt = 0, 1), so every K and V fragment read from shared memory feeds two MMAs (v1.1:
// one). Fragment layouts (mma.sync m16n8k16; lane = 4g + t): A a0 row g cols 2t, 2t+1; a1 row g + 8;
// a2 row g cols 8 + 2t; a3 row g + 8 cols 8 + 2t. B b0 k rows 2t, 2t+1 col g; b1 k rows 8 + 2t.
// C c0, c1 row g cols 2t, 2t+1; c2, c3 row g + 8. Each thread holds 4 rows: 16 rt + g and 16 rt + g + 8.
// Key/value tiles of kBlockN keys are loaded and synchronised as a unit; the math runs on steps of
// kN <= kBlockN keys (one softmax update per step): kN = kBlockN at head_dim 64, 32 at 128, where
// the output accumulator already takes 128 registers and 64 keys of scores would not fit beside it
// without spilling.

constexpr int kBlockM2 = 32 * kWarps;  // query rows per block (v2)

// Keys per softmax step at head_dim HD.
template <int HD> constexpr int step_keys() { return HD <= 64 ? kBlockN : kBlockN / 2; }

// load_tile with each thread's column fixed: thread i copies 16-byte chunk i % (HD / 8) of rows
// i / (HD / 8) + n kThreads / (HD / 8). A rolled loop with one moving pointer.
template <typename T, int HD, int kRows>
__device__ __forceinline__ void load_rows(T* dst /*(kRows, HD+kPad)*/, const T* src /*(rows, ., HD)*/,
                                          int64_t row_stride, int valid_rows) {
  constexpr int kChunks = HD / 8, kStep = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0 && kRows % kStep == 0, "load_rows: whole passes");
  const int r = threadIdx.x / kChunks, c = (threadIdx.x % kChunks) * 8;
  const T* gr = src + r * row_stride + c;
  T* dr = dst + r * (HD + kPad) + c;
  const int64_t step = kStep * row_stride;
#pragma unroll 1
  for (int i = r; i < kRows; i += kStep, gr += step, dr += kStep * (HD + kPad)) {
    const bool ok = i < valid_rows;
    cp_async16(dr, ok ? gr : src, ok);
  }
}

// One K tile and its V tile (rows [0, kBlockN), as load_rows) into shared: K at dst, V at dst +
// 2 kBlockN (HD + kPad) (the V buffers follow the K buffers). V's global rows sit v_bytes past K's,
// so one moving pointer serves both (fewer registers held across the key loop).
template <typename T, int HD>
__device__ __forceinline__ void load_kv(T* dst /*(kBlockN, HD+kPad)*/, const T* ksrc /*(rows, ., HD)*/,
                                        int64_t v_bytes, int64_t row_stride, int valid_rows) {
  constexpr int kChunks = HD / 8, kStep = kThreads / kChunks, kS = HD + kPad;
  static_assert(kThreads % kChunks == 0 && kBlockN % kStep == 0, "load_kv: whole passes");
  const int r = threadIdx.x / kChunks, c = (threadIdx.x % kChunks) * 8;
  const char* gr = reinterpret_cast<const char*>(ksrc + r * row_stride + c);
  const char* g0 = reinterpret_cast<const char*>(ksrc);  // a valid address for the zero-filled rows
  T* dr = dst + r * kS + c;
  const int64_t step = kStep * row_stride * static_cast<int64_t>(sizeof(T));
#pragma unroll 1
  for (int i = r; i < kBlockN; i += kStep, gr += step, dr += kStep * kS) {
    const bool ok = i < valid_rows;
    cp_async16(dr, ok ? gr : g0, ok);
    cp_async16(dr + 2 * kBlockN * kS, ok ? gr + v_bytes : g0, ok);
  }
}

// S = Q K^T for one warp's 32 rows x kN keys: s[rt][nt][e] is row 16 rt + g (+ 8 for e >= 2) of the
// warp, key nt * 8 + 2t + e % 2 of the step. ldmatrix lane patterns (matrix i = lane / 8 is
// addressed by lanes 8i .. 8i + 7, one row each): Q (A) at q_lane, lane l at row (l % 8) + 8 ((l / 8)
// % 2), column 8 (l / 16): registers a0 .. a3 (or from qf when kQRegs). K (B: rows = keys, columns =
// dims) at k_lane, lane l at key (l % 8) + 8 (l / 16), dim 8 ((l / 8) % 2): registers b0, b1 of key
// tile 2 np, then b0, b1 of key tile 2 np + 1 (pairs stay in aligned registers); each K fragment
// feeds both row tiles.
template <typename T, int HD, int kN, bool kQRegs>
__device__ __forceinline__ void scores_v2(float (&s)[2][kN / 8][4], const uint32_t (&qf)[2][kQRegs ? HD / 16 : 1][4],
                                          const T* q_lane /*(32, kS) this warp's Q rows, lane offset*/,
                                          const T* k_lane /*(kN, kS) keys of the step, lane offset*/) {
  constexpr int kS = HD + kPad;
#pragma unroll
  for (int rt = 0; rt < 2; ++rt)
#pragma unroll
    for (int nt = 0; nt < kN / 8; ++nt) s[rt][nt][0] = s[rt][nt][1] = s[rt][nt][2] = s[rt][nt][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < HD / 16; ++kk) {
    uint32_t a[2][4];
#pragma unroll
    for (int rt = 0; rt < 2; ++rt) {
      if constexpr (kQRegs) {
#pragma unroll
        for (int r = 0; r < 4; ++r) a[rt][r] = qf[rt][kk][r];
      } else {
        ldmatrix_x4(a[rt], q_lane + rt * 16 * kS + kk * 16);
      }
    }
#pragma unroll
    for (int np = 0; np < kN / 16; ++np) {
      uint32_t kb[4];
      ldmatrix_x4(kb, k_lane + np * 16 * kS + kk * 16);
#pragma unroll
      for (int rt = 0; rt < 2; ++rt) {
        mma16816<T>(s[rt][2 * np], a[rt], kb[0], kb[1]);
        mma16816<T>(s[rt][2 * np + 1], a[rt], kb[2], kb[3]);
      }
    }
  }
}

// Scores of keys a row may not see to -inf: keys >= Tk_b and, when causal, keys past the row's
// position (row r of the sequence sees keys < shift + r + 1). row0: the sequence row of rt 0, e 0..1
// of this thread; key0: the key of nt 0, e 0 (first key of the step + 2t). Compared as offsets within
// the step (immediates) against each row's limit minus key0.
template <int kN>
__device__ __forceinline__ void mask_v2(float (&s)[2][kN / 8][4], int row0, int key0, int shift, int tk, bool causal) {
#pragma unroll
  for (int rt = 0; rt < 2; ++rt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      const int row = row0 + rt * 16 + hf * 8;
      const int lim = (causal ? min(tk, shift + row + 1) : tk) - key0;  // step offsets >= lim are hidden
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (nt * 8 + e >= lim) s[rt][nt][2 * hf + e] = -INFINITY;
    }
}

// Online softmax over one step, exp2 domain: s (raw scores, masked ones -inf) becomes P; m (running
// max, scaled) and l (this thread's partial row sums) update; corr: the factor O must be scaled by
// (pv_v2 applies it). Row (rt, hf) of this thread: s[rt][.][2 hf + e].
template <int kN>
__device__ __forceinline__ void softmax_v2(float (&s)[2][kN / 8][4], float (&m)[2][2], float (&l)[2][2],
                                           float (&corr)[2][2], float scale_log2) {
#pragma unroll
  for (int rt = 0; rt < 2; ++rt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float mx = -INFINITY;
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[rt][nt][2 * hf], s[rt][nt][2 * hf + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float mn = fmaxf(m[rt][hf], mx * scale_log2);
      const float base = mn == -INFINITY ? 0.f : mn;  // a row with no visible key yet: P = 0, no NaN
      corr[rt][hf] = exp2_ftz(m[rt][hf] - base);
      m[rt][hf] = mn;
      float sum = l[rt][hf] * corr[rt][hf];
#pragma unroll
      for (int nt = 0; nt < kN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          float& x = s[rt][nt][2 * hf + e];
          x = exp2_ftz(fmaf(x, scale_log2, -base));
          sum += x;
        }
      l[rt][hf] = sum;
    }
}

// O = corr O + P V, one k16 slice of keys at a time. O is rescaled only when some row of the warp has
// a new maximum (corr != 1; warp-uniform branch): after the first steps that is rare. P's A
// fragments come from the accumulators of key tiles 2 kk (a0, a1) and 2 kk + 1 (a2, a3). fp16: all
// of P packed first (half the registers of S), one MMA per fragment pair; bf16: P as hi + lo (two
// MMAs), converted slice by slice just before their MMAs (taking S's room as S is consumed). V by
// ldmatrix.x4.trans at v_lane (Q's lane pattern with rows = keys, columns = dims; transposed:
// registers b0, b1 of dim tile 2 dp, then of 2 dp + 1), each feeding both row tiles. kPvF16 (bf16
// only): V in shared memory already holds fp16 (scaled, see v_tile_to_f16); P is rounded once to fp16
// and the MMAs are fp16, as for T = fp16.
template <typename T, int HD, int kN, bool kPvF16 = false>
__device__ __forceinline__ void pv_v2(float (&o)[2][HD / 8][4], const float (&s)[2][kN / 8][4],
                                      const float (&corr)[2][2],
                                      const T* v_lane /*(kN, kS) values of the step, lane offset*/) {
  constexpr int kS = HD + kPad;
  using TP = std::conditional_t<kPvF16, __half, T>;  // the P.V MMA type
  constexpr bool kSplit = std::is_same_v<TP, __nv_bfloat16>;
  uint32_t pa[2][kN / 16][4];  // fp16: P's A fragments (row tile, slice)
#pragma unroll
  for (int rt = 0; rt < 2; ++rt)
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r)
        pa[rt][kk][r] =
            kSplit ? 0u : pack2<TP>(s[rt][2 * kk + r / 2][(r % 2) * 2], s[rt][2 * kk + r / 2][(r % 2) * 2 + 1]);
  const bool same = corr[0][0] == 1.f && corr[0][1] == 1.f && corr[1][0] == 1.f && corr[1][1] == 1.f;
  if (!__all_sync(0xffffffffu, same)) {
#pragma unroll
    for (int rt = 0; rt < 2; ++rt)
#pragma unroll
      for (int i = 0; i < HD / 8; ++i)
        o[rt][i][0] *= corr[rt][0], o[rt][i][1] *= corr[rt][0], o[rt][i][2] *= corr[rt][1], o[rt][i][3] *= corr[rt][1];
  }
#pragma unroll
  for (int kk = 0; kk < kN / 16; ++kk) {
    uint32_t ph[2][4], pl[2][4];
#pragma unroll
    for (int rt = 0; rt < 2; ++rt)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        if constexpr (kSplit) {
          split_bf16x2(s[rt][2 * kk + r / 2][(r % 2) * 2], s[rt][2 * kk + r / 2][(r % 2) * 2 + 1], ph[rt][r],
                       pl[rt][r]);
        } else {
          ph[rt][r] = pa[rt][kk][r];
          pl[rt][r] = 0u;
        }
      }
#pragma unroll
    for (int dp = 0; dp < HD / 16; ++dp) {
      uint32_t vb[4];
      ldmatrix_x4_trans(vb, v_lane + kk * 16 * kS + dp * 16);
#pragma unroll
      for (int rt = 0; rt < 2; ++rt) {
        mma16816<TP>(o[rt][2 * dp], ph[rt], vb[0], vb[1]);
        mma16816<TP>(o[rt][2 * dp + 1], ph[rt], vb[2], vb[3]);
        if constexpr (kSplit) {
          mma16816<TP>(o[rt][2 * dp], pl[rt], vb[0], vb[1]);
          mma16816<TP>(o[rt][2 * dp + 1], pl[rt], vb[2], vb[3]);
        }
      }
    }
  }
}

// ---- v2 bf16 with P.V in fp16 (kPvF16; MINFER_PREFILL_PV=f16) ------------------------------------

constexpr int kPvExpNone = 127;  // V scale exponent before any nonzero V tile (above every tile's own, <= 126)

// 2^d as a float for d <= 127; 0 below 2^-126 (no subnormals).
__device__ __forceinline__ float pow2i(int d) { return d < -126 ? 0.f : __int_as_float((127 + d) << 23); }

// Converts the V tile at vt (kBlockN rows x HD bf16, row stride HD + kPad; rows past Tk_b zero-filled)
// in place to fp16(V 2^e) and returns e = min(e_run, the tile's own exponent). The tile's own exponent
// brings its max |V| into [2^14, 2^15): 141 - f for the max's exponent field f (an all-zero tile:
// kPvExpNone, so e = e_run), at most 126 so 2^e is a normal float (tiles with max < 2^-112 then keep
// every element exact too). Max |V| on the bit patterns: bits & 0x7fff order like unsigned integers
// (inf and NaN above every finite value: e = -114, the result is inf / NaN). Each thread takes the
// chunks load_kv gives it (16 bytes per row, every kThreads / (HD / 8) rows); warp max by redux, block
// max through shared memory. Called by every thread of the block after the barrier that publishes
// the tile; two barriers of its own (max, then conversion before the ldmatrix reads). Block-uniform.
template <int HD>
__device__ __forceinline__ int v_tile_to_f16(__nv_bfloat16* vt /*(kBlockN, HD+kPad)*/, int e_run) {
  constexpr int kChunks = HD / 8, kStep = kThreads / kChunks, kS = HD + kPad;
  static_assert(kThreads % kChunks == 0 && kBlockN % kStep == 0, "v_tile_to_f16: whole passes");
  __shared__ unsigned warp_max[kWarps];
  uint4* c0 = reinterpret_cast<uint4*>(vt + (threadIdx.x / kChunks) * kS + (threadIdx.x % kChunks) * 8);
  constexpr int kRowStep = kStep * kS / 8;  // uint4 per kStep rows
  unsigned mx = 0;
#pragma unroll
  for (int i = 0; i < kBlockN / kStep; ++i) {
    const uint4 w = c0[i * kRowStep];
    constexpr unsigned kAbs = 0x7fff7fffu;  // |x| of both halves
    mx = __vmaxu2(mx, __vmaxu2(__vmaxu2(w.x & kAbs, w.y & kAbs), __vmaxu2(w.z & kAbs, w.w & kAbs)));
  }
  mx = __reduce_max_sync(0xffffffffu, max(mx & 0xffffu, mx >> 16));
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = mx;
  __syncthreads();
  static_assert(kWarps == 4, "v_tile_to_f16: block max of 4 warps");
  mx = max(max(warp_max[0], warp_max[1]), max(warp_max[2], warp_max[3]));
  const int e = min(e_run, mx == 0u ? kPvExpNone : min(126, 141 - static_cast<int>(mx >> 7)));
  const float sc = pow2i(e);  // e in [-114, 127]: exact multiplies
#pragma unroll
  for (int i = 0; i < kBlockN / kStep; ++i) {
    uint4 w = c0[i * kRowStep];
    uint32_t* wr = reinterpret_cast<uint32_t*>(&w);
#pragma unroll
    for (int k = 0; k < 4; ++k)
      wr[k] = pack2<__half>(__uint_as_float(wr[k] << 16) * sc, __uint_as_float(wr[k] & 0xffff0000u) * sc);
    c0[i * kRowStep] = w;
  }
  __syncthreads();
  return e;
}

template <typename T, int HD, bool kPvF16 = false>
__global__ void __launch_bounds__(kThreads, 2) flash_prefill_tc2(FlashPrefillParams p, float scale_log2) {
  static_assert(!kPvF16 || std::is_same_v<T, __nv_bfloat16>, "kPvF16: bf16 only");
  constexpr int kS = HD + kPad;       // shared row stride, elements
  constexpr int kN = step_keys<HD>();  // keys per softmax step
  constexpr bool kQRegs = HD <= 64;   // Q fragments kept in registers (hd 64) or read per step (hd 128)
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* qs = reinterpret_cast<T*>(smem_raw);  // (kBlockM2, kS); warp w's rows 32w .. are its O staging at the end
  T* ks = qs + kBlockM2 * kS;              // (2, kBlockN, kS)
  T* vs = ks + 2 * kBlockN * kS;           // (2, kBlockN, kS)

  const int b = blockIdx.z, h = blockIdx.x;
  const SeqTile st = seq_tile(p, b, h, static_cast<int>(gridDim.y - 1 - blockIdx.y), kBlockM2);  // heaviest first
  if (st.m0 >= st.tq) return;
  const int kvh = st.kvh, shift = st.shift, ntiles = st.ntiles;

  const int64_t q_stride = static_cast<int64_t>(p.heads) * HD, kv_stride = static_cast<int64_t>(p.kv_heads) * HD;
  const T* qg = static_cast<const T*>(p.q) + (st.q0 + st.m0) * q_stride + h * HD;  // (rows, ., HD)
  const T* kg = static_cast<const T*>(p.k) + st.k0 * kv_stride + kvh * HD;        // (Tk, ., HD)
  const int64_t v_bytes = reinterpret_cast<intptr_t>(p.v) - reinterpret_cast<intptr_t>(p.k);  // V row - K row

  load_rows<T, HD, kBlockM2>(qs, qg, q_stride, st.tq - st.m0);
  load_kv<T, HD>(ks, kg, v_bytes, kv_stride, st.tk);
  cp_async_commit();

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane / 4, t = lane % 4;
  const int w0 = st.m0 + warp * 32;  // this warp's first row in the sequence
  // Keys [0, w_kend) this warp needs (none when all its rows are past Tq_b; causal steps past its
  // last row's diagonal are all -inf and would leave m, l, o unchanged), and keys [0, w_kfree) that
  // every row of the warp sees (steps inside need no mask).
  const int w_last = min(w0 + 32, st.tq) - 1;
  const int w_kend = w0 >= st.tq ? 0 : p.causal ? min(st.tk, shift + w_last + 1) : st.tk;
  const int w_kfree = p.causal ? min(st.tk, shift + w0 + 1) : st.tk;

  // ldmatrix lane offsets (see scores_v2): Q and V share one pattern, K has its own.
  const int qv_off = (((lane >> 3) & 1) * 8 + (lane & 7)) * kS + (lane >> 4) * 8;
  const int k_off = ((lane >> 4) * 8 + (lane & 7)) * kS + ((lane >> 3) & 1) * 8;
  const T* q_lane = qs + warp * 32 * kS + qv_off;
  uint32_t qf[2][kQRegs ? HD / 16 : 1][4];  // Q A fragments (kQRegs): row tile, k16 step
  float o[2][HD / 8][4];                    // output accumulator: row tile, dim tile (C layout)
  float m[2][2], l[2][2];                   // running max (scaled) and partial sum: row tile, g / g + 8
#pragma unroll
  for (int rt = 0; rt < 2; ++rt) {
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) o[rt][i][0] = o[rt][i][1] = o[rt][i][2] = o[rt][i][3] = 0.f;
    m[rt][0] = m[rt][1] = -INFINITY, l[rt][0] = l[rt][1] = 0.f;
  }
  // kPvF16: e_blk, the V scale exponent of the current tile (block-uniform, only falls); e_o, the one
  // this warp's O carries (the warp stops at w_kend while e_blk may still fall).
  int e_blk = kPvExpNone, e_o = kPvExpNone;

  for (int j = 0; j < ntiles; ++j) {
    if (j + 1 < ntiles) {
      const int nb = (j + 1) & 1, kn = (j + 1) * kBlockN;
      load_kv<T, HD>(ks + nb * kBlockN * kS, kg + kn * kv_stride, v_bytes, kv_stride, st.tk - kn);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if constexpr (kQRegs) {
      if (j == 0 && w_kend > 0) {
#pragma unroll
        for (int rt = 0; rt < 2; ++rt)
#pragma unroll
          for (int kk = 0; kk < HD / 16; ++kk) ldmatrix_x4(qf[rt][kk], q_lane + rt * 16 * kS + kk * 16);
      }
    }
    if constexpr (kPvF16) e_blk = v_tile_to_f16<HD>(vs + (j & 1) * kBlockN * kS, e_blk);
#pragma unroll 1
    for (int n0 = 0; n0 < kBlockN; n0 += kN) {
      const int key0 = j * kBlockN + n0;  // first key of the step
      if (key0 >= w_kend) break;          // warp-uniform
      const int boff = (j & 1) * kBlockN * kS + n0 * kS;  // the step's rows in the K and V buffers
      float s[2][kN / 8][4];
      scores_v2<T, HD, kN, kQRegs>(s, qf, q_lane, ks + boff + k_off);
      if (key0 + kN > w_kfree) mask_v2<kN>(s, w0 + g, key0 + 2 * t, shift, st.tk, p.causal);
      float corr[2][2];
      softmax_v2<kN>(s, m, l, corr, scale_log2);
      if constexpr (kPvF16) {  // O to this tile's V scale: 2^(e_blk - e_o) <= 1, 1 unless E fell (rescale runs)
        const float fe = pow2i(e_blk - e_o);
        e_o = e_blk;
#pragma unroll
        for (int rt = 0; rt < 2; ++rt) corr[rt][0] *= fe, corr[rt][1] *= fe;
      }
      pv_v2<T, HD, kN, kPvF16>(o, s, corr, vs + boff + qv_off);
    }
    __syncthreads();  // buffer j & 1 is refilled by iteration j + 1's prefetch
  }
  if (w_kend == 0) return;  // no rows of this warp inside the sequence (no barrier follows)

  // Finish the row sums over the quad, normalise, stage O in this warp's own Q rows (only this warp
  // ever read them), then 16-byte stores of the rows inside the sequence.
  T* os = qs + warp * 32 * kS;  // (32, kS)
#pragma unroll
  for (int rt = 0; rt < 2; ++rt)
#pragma unroll
    for (int hf = 0; hf < 2; ++hf) {
      float sum = l[rt][hf];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = 1.f / sum;
      T* orow = os + (rt * 16 + hf * 8 + g) * kS + 2 * t;
      if constexpr (kPvF16) {  // O / 2^e_o (exact; e_o = kPvExpNone only while O = 0), then / l
        const float es = pow2i(-e_o);
#pragma unroll
        for (int i = 0; i < HD / 8; ++i)
          *reinterpret_cast<uint32_t*>(orow + i * 8) =
              pack2<T>(o[rt][i][2 * hf] * es * inv, o[rt][i][2 * hf + 1] * es * inv);
      } else {
#pragma unroll
        for (int i = 0; i < HD / 8; ++i)
          *reinterpret_cast<uint32_t*>(orow + i * 8) = pack2<T>(o[rt][i][2 * hf] * inv, o[rt][i][2 * hf + 1] * inv);
      }
    }
  __syncwarp();
  constexpr int kChunks = HD / 8;  // 16-byte chunks per row
  T* out = static_cast<T*>(p.out) + (st.q0 + w0) * q_stride + h * HD;  // (Tq - w0, ., HD)
  const int rows = min(32, st.tq - w0);
  for (int i = lane; i < rows * kChunks; i += 32) {
    const int r = i / kChunks, c = (i % kChunks) * 8;
    *reinterpret_cast<uint4*>(out + r * q_stride + c) = *reinterpret_cast<const uint4*>(os + r * kS + c);
  }
}

// Prefill version for fp16 / bf16 at head_dim 64 and 128: v3 (kernels/flash_prefill_sm90, on a
// compute capability 9.0 device: the default there), v2 (the default elsewhere), or v1.1. The
// environment variable MINFER_PREFILL=v2 or v1 selects one of the older versions where v3 would run,
// and MINFER_PREFILL=v3 runs v3 wherever it can (also at or below v3_min_rows), v3p / v3s / v4 its
// persistent, small and warp-specialised variants wherever they can (v4t: v4 with TMA copies), for A/B
// timings in one run.
// Read once.
enum class PrefillVersion { kAuto, kV3, kV3P, kV3S, kV4, kV4T, kV2, kV1 };
PrefillVersion prefill_version_selected() {
  static const PrefillVersion v = [] {
    const char* e = std::getenv("MINFER_PREFILL");
    if (e && std::string(e) == "v1") return PrefillVersion::kV1;
    if (e && std::string(e) == "v2") return PrefillVersion::kV2;
    if (e && std::string(e) == "v3") return PrefillVersion::kV3;
    if (e && std::string(e) == "v3p") return PrefillVersion::kV3P;
    if (e && std::string(e) == "v3s") return PrefillVersion::kV3S;
    if (e && std::string(e) == "v4") return PrefillVersion::kV4;
    if (e && std::string(e) == "v4t") return PrefillVersion::kV4T;
    return PrefillVersion::kAuto;
  }();
  return v;
}

// Query tiles go on grid y (at most 65535 of them: Tq_b up to 8,388,480).
template <typename T, int HD, bool kPvF16>
Status launch_tc2_kernel(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  constexpr int kSmem = (kBlockM2 + 4 * kBlockN) * (HD + kPad) * static_cast<int>(sizeof(T));
  const unsigned m_blocks = kern::blocks_for(p.max_seqlen_q, kBlockM2);
  MINFER_CUDA_RETURN(cudaFuncSetAttribute(flash_prefill_tc2<T, HD, kPvF16>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, kSmem));
  // Heads fastest, query tiles reversed: every head's heaviest causal tile is issued before any lighter one.
  const dim3 grid(static_cast<unsigned>(p.heads), m_blocks, static_cast<unsigned>(p.batch));
  flash_prefill_tc2<T, HD, kPvF16><<<grid, kThreads, kSmem, stream>>>(p, scale_log2);
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

template <typename T, int HD>
Status launch_tc2(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    // bf16 v2 with P.V in fp16 (P rounded once, V scaled per tile): MINFER_PREFILL_PV=f16.
    if (prefill_pv_f16_env()) return launch_tc2_kernel<T, HD, true>(p, scale_log2, stream);
  }
  return launch_tc2_kernel<T, HD, false>(p, scale_log2, stream);
}

// ---- scalar fp32 path ---------------------------------------------------------------------------

constexpr int kRowsPerBlock = 4;  // one warp per query row

template <int HD>
__global__ void __launch_bounds__(kRowsPerBlock * 32) flash_prefill_f32(FlashPrefillParams p, float scale_log2) {
  constexpr int kDimsPerLane = (HD + 31) / 32;  // output dims lane, lane + 32, ... (< HD)
  __shared__ float qsh[kRowsPerBlock][HD];  // (rows, HD) this block's query rows of head h
  const int b = blockIdx.z, h = blockIdx.y, warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t q0 = p.cu_seqlens_q[b];
  const int tq = static_cast<int>(p.cu_seqlens_q[b + 1] - q0);
  int64_t k0 = 0;
  int tk = 0;
  prefill_key_range(p, b, k0, tk);
  const int row = blockIdx.x * kRowsPerBlock + warp;
  if (row >= tq) return;  // whole warp leaves together
  const int64_t q_stride = static_cast<int64_t>(p.heads) * HD, kv_stride = static_cast<int64_t>(p.kv_heads) * HD;
  const float* qg = static_cast<const float*>(p.q) + (q0 + row) * q_stride + h * HD;  // (HD)
  for (int d = lane; d < HD; d += 32) qsh[warp][d] = qg[d];
  __syncwarp();
  const int kvh = h / (p.heads / p.kv_heads);
  const float* kg = static_cast<const float*>(p.k) + k0 * kv_stride + kvh * HD;  // (Tk, ., HD)
  const float* vg = static_cast<const float*>(p.v) + k0 * kv_stride + kvh * HD;  // (Tk, ., HD)
  const int nkeys = p.causal ? min(tk, tk - tq + row + 1) : tk;
  float m = -INFINITY, l = 0.f, acc[kDimsPerLane];
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i) acc[i] = 0.f;
  for (int j0 = 0; j0 < nkeys; j0 += 32) {
    const int j = j0 + lane;
    float s = -INFINITY;
    if (j < nkeys) {
      const float4* kr = reinterpret_cast<const float4*>(kg + j * kv_stride);
      float dot = 0.f;
#pragma unroll 4
      for (int d4 = 0; d4 < HD / 4; ++d4) {
        const float4 kv = kr[d4];
        dot += qsh[warp][4 * d4] * kv.x + qsh[warp][4 * d4 + 1] * kv.y + qsh[warp][4 * d4 + 2] * kv.z +
               qsh[warp][4 * d4 + 3] * kv.w;
      }
      s = dot * scale_log2;
    }
    float mx = s;
    for (int off = 16; off > 0; off >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    const float mn = fmaxf(m, mx);  // finite: key j0 is visible
    const float pj = j < nkeys ? exp2f(s - mn) : 0.f, corr = exp2f(m - mn);
    float sum = pj;
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    l = l * corr + sum;
    m = mn;
#pragma unroll
    for (int i = 0; i < kDimsPerLane; ++i) acc[i] *= corr;
    const int n = min(32, nkeys - j0);
    for (int jj = 0; jj < n; ++jj) {
      const float w = __shfl_sync(0xffffffffu, pj, jj);
      const float* vr = vg + (j0 + jj) * kv_stride;  // (HD)
#pragma unroll
      for (int i = 0; i < kDimsPerLane; ++i)
        if (lane + 32 * i < HD) acc[i] += w * vr[lane + 32 * i];
    }
  }
  float* out = static_cast<float*>(p.out) + (q0 + row) * q_stride + h * HD;  // (HD)
#pragma unroll
  for (int i = 0; i < kDimsPerLane; ++i)
    if (lane + 32 * i < HD) out[lane + 32 * i] = acc[i] / l;
}

template <int HD>
Status launch_f32(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  const dim3 grid(kern::blocks_for(p.max_seqlen_q, kRowsPerBlock), static_cast<unsigned>(p.heads),
                  static_cast<unsigned>(p.batch));
  flash_prefill_f32<HD><<<grid, kRowsPerBlock * 32, 0, stream>>>(p, scale_log2);
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

// v3 runs where the longest sequence has more query rows than this (v2 at or below it): on short
// sequences its pipeline fill costs about what it saves. H100, bf16, one run each, v2 time / v3
// time (reports/logs/h100/ab/): at 128 rows 0.90-1.13 (head_dim 128) and 0.93-1.14 (64); at 512
// 1.13-1.53 (128) and 1.11-1.21 (64); at 1024 and more 1.25-1.45 (128) and 1.22-1.34 (64).
int v3_min_rows() { return 128; }

// At head_dim 128, v3 runs as its small variant (64-row blocks of one warpgroup, two an SM; the same
// output bits) where the longest sequence has at most this many query rows. H100, bf16, the 20 cases
// of bench/cases/prefill_ab.txt in one run (reports/logs/h100/ab/ab_attention_v3s.csv), v3 time / small
// time: 1.000-1.036 at 512 and 1024 rows (14 cases, causal and not), 0.951-1.007 at 2048-8192.
// Keyed on query rows alone (the host does not know the key counts of a cached prefix: k_lens is on
// the device), so a short chunk over a long prefix takes the small variant too; not timed yet.
int v3_small_max_rows() { return 1024; }

// At head_dim 128, where the longest sequence has more query rows than this and the key tensor's extent
// is known (k_lens, or total_k), v3 runs as the warp-specialised variant with TMA copies (v4t; the same
// output bits; v3 where its tensor maps do not encode). H100, bf16, 26 cases in one run with the peers
// (reports/logs/h100/ab/ab_attention_v4t.csv), default time / v4t time at head_dim 128: 0.81-0.99 at
// 512 rows (so the small variant keeps them), 1.03-1.06 at 1024, 1.06-1.15 at 2048-8192, causal and
// not; at head_dim 64 v4t is slower everywhere (0.80-0.95 at 1024 and more), so 64 keeps v3.
int v4t_min_rows() { return 512; }

// At head_dim 64, v3 runs as its small variant (64-row blocks, three an SM; the same output bits)
// where all of its blocks fit on the SMs at once (batch x heads x 64-row tiles of the longest sequence
// <= 3 x SMs), so that a grid too small to fill the SMs with 128-row blocks is spread over twice the
// blocks. H100, bf16, 14 cases in one run with the peers (reports/logs/h100/ab/ab_attention_v3s_hd64.csv),
// default time / small time: 1.15-1.47 where the rule holds (batch 1 at 512 and 1024 rows, 8-16 heads),
// 0.93-0.98 where the small blocks need a second wave while the 128-row ones fit one (batch 1 x 2048 x
// 16 heads, batch 4 x 512 x 16), 0.97-1.02 on larger grids.
bool v3_small64(const FlashPrefillParams& p) {
  const int64_t blocks = static_cast<int64_t>(p.batch) * p.heads * kern::blocks_for(p.max_seqlen_q, 64);
  return blocks <= 3 * kern::device_attribute(cudaDevAttrMultiProcessorCount, 132);
}

// fp16 / bf16 at head_dim 64 and 128: v3 on compute capability 9.0 (past v3_min_rows; its small
// variant at head_dim 128 up to v3_small_max_rows and at head_dim 64 where v3_small64 says, its TMA
// variant at head_dim 128 past v4t_min_rows where the key extent is known), else v2, as
// prefill_version_selected() says (v1.1 where a sequence has more query tiles than v2's grid holds);
// v1.1 at the other head dims.
template <typename T, int HD>
Status launch_half(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  if constexpr (HD == 64 || HD == 128) {
    const PrefillVersion v = prefill_version_selected();
    const bool auto_v3 = v == PrefillVersion::kAuto;
    const bool v3 = (auto_v3 && p.max_seqlen_q > v3_min_rows()) ||
                    (v != PrefillVersion::kAuto && v != PrefillVersion::kV2 && v != PrefillVersion::kV1);
    Sm90PrefillForm f;
    // The default's TMA variant (v4t_min_rows, above): v3 where the maps cannot be made.
    const bool auto_tma = auto_v3 && HD == 128 && p.max_seqlen_q > v4t_min_rows() && (p.k_lens || p.total_k > 0);
    f.persistent = v == PrefillVersion::kV3P;
    f.small = v == PrefillVersion::kV3S ||
              (auto_v3 && HD == 128 && !auto_tma && p.max_seqlen_q <= v3_small_max_rows()) ||
              (auto_v3 && HD == 64 && v3_small64(p));
    f.tma = v == PrefillVersion::kV4T || auto_tma;
    f.ws = f.tma || v == PrefillVersion::kV4;
    f.v3_otherwise = auto_tma;
    if (v3 && flash_prefill_sm90_applies(p)) return flash_prefill_sm90_forward(p, scale_log2, stream, f);
    if (v != PrefillVersion::kV1 && kern::blocks_for(p.max_seqlen_q, kBlockM2) <= 65535)
      return launch_tc2<T, HD>(p, scale_log2, stream);
  }
  return launch_tc<T, HD>(p, scale_log2, stream);
}

template <int HD>
Status launch_hd(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::F32: return launch_f32<HD>(p, scale_log2, stream);
    case DType::F16: return launch_half<__half, HD>(p, scale_log2, stream);
    case DType::BF16: return launch_half<__nv_bfloat16, HD>(p, scale_log2, stream);
  }
  return Status::error("dtype: unsupported value " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace

Status flash_prefill_forward(const FlashPrefillParams& p, cudaStream_t stream) {
  MINFER_REQUIRE(p.rescale_slack == -1.f || (p.rescale_slack >= 0.f && p.rescale_slack <= 8.f), "rescale_slack",
                 "must be in [0, 8] or -1 (the environment's), got " + std::to_string(p.rescale_slack));
  MINFER_REQUIRE(p.pv_fp16 >= -1 && p.pv_fp16 <= 1, "pv_fp16",
                 "must be 0, 1 or -1 (the environment's), got " + std::to_string(p.pv_fp16));
  MINFER_REQUIRE(p.heads > 0 && p.kv_heads > 0 && p.heads % p.kv_heads == 0, "kv_heads",
                 "must divide heads (" + std::to_string(p.heads) + "), got " + std::to_string(p.kv_heads));
  MINFER_REQUIRE(p.batch > 0 && p.batch <= 65535, "batch", "must be in [1, 65535], got " + std::to_string(p.batch));
  MINFER_REQUIRE(p.heads <= 65535, "heads", "must be at most 65535, got " + std::to_string(p.heads));
  MINFER_REQUIRE(p.max_seqlen_q > 0, "max_seqlen_q", "must be > 0, got " + std::to_string(p.max_seqlen_q));
  MINFER_REQUIRE(p.q && p.k && p.v && p.out && p.cu_seqlens_q && (p.cu_seqlens_k || p.k_lens), "q",
                 "every pointer must be set (cu_seqlens_k or k_lens)");
  MINFER_REQUIRE(!p.k_lens || p.k_seq_stride > 0, "k_seq_stride",
                 "must be > 0 with k_lens, got " + std::to_string(p.k_seq_stride));
  MINFER_REQUIRE(kern::aligned16(p.q) && kern::aligned16(p.k) && kern::aligned16(p.v) && kern::aligned16(p.out),
                 "q", "q, k, v and out must be 16-byte aligned");
  const float scale_log2 = static_cast<float>(1.0 / std::sqrt(static_cast<double>(p.head_dim))) * kLog2e;
  switch (p.head_dim) {
    case 16: return launch_hd<16>(p, scale_log2, stream);
    case 32: return launch_hd<32>(p, scale_log2, stream);
    case 64: return launch_hd<64>(p, scale_log2, stream);
    case 128: return launch_hd<128>(p, scale_log2, stream);
  }
  return Status::error("head_dim: unsupported value " + std::to_string(p.head_dim) + " (supported: 16, 32, 64, 128)");
}

}  // namespace minfer
