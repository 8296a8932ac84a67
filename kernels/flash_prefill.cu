// kernels/flash_prefill.cu: fused prefill attention (see flash_prefill.h). Versions held here:
// v1.1 tensor-core path (fp16, bf16) and a scalar fp32 path; head_dim 16, 32, 64, 128.
// Tensor-core path: block = 4 warps = 64 query rows of one head (16 rows per warp); key/value tiles
// of 64 rows stream through shared memory with cp.async, double-buffered. Per tile: S = Q K^T with
// mma.sync m16n8k16 (Q fragments kept in registers; K fragments by ldmatrix.x4 in v1.1, the default,
// or as 32-bit words in v1 with MINFER_PREFILL_KFRAG=lds), masking, the online softmax in fp32 (exp2
// domain), then O += P V with P taken from the S accumulators and V
// fragments loaded by ldmatrix.trans. P is split as hi + lo in the storage type (two MMAs) so the
// probabilities keep about 16 bits: rounding P to bf16 alone costs ~2e-3 relative error, past the
// 1e-3 gate. Shared rows are padded by 16 bytes (bank-conflict free fragment loads and ldmatrix).
// Scalar fp32 path: one warp per (query row, head); lane j scores key j of a 32-key chunk, the
// warp keeps the running max and sum, lane d accumulates output dims d, d + 32, ...
#include "kernels/flash_prefill.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/mma.cuh"

namespace minfer {
namespace {

constexpr float kLog2e = 1.4426950408889634f;

// ---- tensor-core path ---------------------------------------------------------------------------

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kBlockM = 16 * kWarps;  // query rows per block
constexpr int kBlockN = 64;           // keys per tile
constexpr int kPad = 8;               // elements of padding per shared row (16 bytes)

using kern::cp_async16;
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

// First key row and key count of sequence b (cu_seqlens_k, or a per-sequence cache with k_lens).
__device__ __forceinline__ void key_range(const FlashPrefillParams& p, int b, int64_t& k0, int& tk) {
  if (p.k_lens) {
    k0 = static_cast<int64_t>(b) * p.k_seq_stride;
    tk = p.k_lens[b];
  } else {
    k0 = p.cu_seqlens_k[b];
    tk = static_cast<int>(p.cu_seqlens_k[b + 1] - k0);
  }
}

// Sequence geometry of one block.
struct SeqTile {
  int64_t q0, k0;  // first query / key row of the sequence
  int tq, tk;      // Tq_b, Tk_b
  int m0;          // first query row of this block within the sequence
};

template <typename T, int HD>
__global__ void __launch_bounds__(kThreads) flash_prefill_tc(FlashPrefillParams p, float scale_log2, bool k_ldsm) {
  extern __shared__ __align__(16) unsigned char smem_raw[];
  constexpr int kS = HD + kPad;  // shared row stride, elements
  T* qs = reinterpret_cast<T*>(smem_raw);  // (kBlockM, kS)
  T* ks = qs + kBlockM * kS;               // (2, kBlockN, kS)
  T* vs = ks + 2 * kBlockN * kS;           // (2, kBlockN, kS)

  const int b = blockIdx.z, h = blockIdx.y;
  SeqTile st;
  st.q0 = p.cu_seqlens_q[b], st.tq = static_cast<int>(p.cu_seqlens_q[b + 1] - st.q0);
  key_range(p, b, st.k0, st.tk);
  st.m0 = static_cast<int>(gridDim.x - 1 - blockIdx.x) * kBlockM;  // heaviest causal tiles first
  if (st.m0 >= st.tq) return;
  const int kvh = h / (p.heads / p.kv_heads);
  const int shift = st.tk - st.tq;  // query i sits at key position shift + i
  const int last_row = min(st.m0 + kBlockM, st.tq) - 1;
  const int kend = p.causal ? min(st.tk, shift + last_row + 1) : st.tk;  // keys [0, kend) are needed
  const int ntiles = (kend + kBlockN - 1) / kBlockN;

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

    // Mask, scale to the exp2 domain, row maxima over the tile.
    const int lim_a = p.causal ? min(st.tk, shift + row_a + 1) : st.tk;  // keys < lim are visible
    const int lim_b = p.causal ? min(st.tk, shift + row_a + 9) : st.tk;
    float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) {
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int key = j * kBlockN + nt * 8 + t * 2 + e;
        s[nt][e] = key < lim_a ? s[nt][e] * scale_log2 : -INFINITY;
        s[nt][2 + e] = key < lim_b ? s[nt][2 + e] * scale_log2 : -INFINITY;
        mx_a = fmaxf(mx_a, s[nt][e]);
        mx_b = fmaxf(mx_b, s[nt][2 + e]);
      }
    }
#pragma unroll
    for (int off = 1; off < 4; off <<= 1) {
      mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
      mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
    }
    const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
    const float base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
    const float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
    m_a = mn_a, m_b = mn_b;
    l_a *= corr_a, l_b *= corr_b;
#pragma unroll
    for (int i = 0; i < HD / 8; ++i) o[i][0] *= corr_a, o[i][1] *= corr_a, o[i][2] *= corr_b, o[i][3] *= corr_b;
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - base_a), s[nt][1] = exp2f(s[nt][1] - base_a);
      s[nt][2] = exp2f(s[nt][2] - base_b), s[nt][3] = exp2f(s[nt][3] - base_b);
      l_a += s[nt][0] + s[nt][1];
      l_b += s[nt][2] + s[nt][3];
    }

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
  key_range(p, b, k0, tk);
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

template <int HD>
Status launch_hd(const FlashPrefillParams& p, float scale_log2, cudaStream_t stream) {
  switch (p.dtype) {
    case DType::F32: return launch_f32<HD>(p, scale_log2, stream);
    case DType::F16: return launch_tc<__half, HD>(p, scale_log2, stream);
    case DType::BF16: return launch_tc<__nv_bfloat16, HD>(p, scale_log2, stream);
  }
  return Status::error("dtype: unsupported value " + std::to_string(static_cast<int>(p.dtype)));
}

}  // namespace

Status flash_prefill_forward(const FlashPrefillParams& p, cudaStream_t stream) {
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
