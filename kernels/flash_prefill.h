// kernels/flash_prefill.h: fused prefill attention (FlashAttention-2 algorithm) for a ragged batch,
// with optional cached prefix (chunked prefill). Versions: v3 (fp16/bf16 at head_dim 64 and 128 on a
// compute capability 9.0 device: wgmma, kernels/flash_prefill_sm90.cu), v2 (the same elsewhere: one
// block of 4 warps per 128 query rows of one head, 32 rows per warp, tiles of 64 keys, mma.sync
// m16n8k16 on tensor cores, online softmax in fp32, no N x N buffer), v1.1 (fp16/bf16 at head_dim 16
// and 32, or everywhere with MINFER_PREFILL=v1: 64 query rows per block, 16 per warp), and a scalar
// fp32 path (one warp per (query row, head)); kernels/flash_prefill.cu has the details. Measured on
// an H200 (bf16, 40 cases of lengths 512-16384, 2026-11-22): v2 1.5-1.9x v1.1.
// Dimension legend: B sequences; TQ = total query rows, TK = total key rows; nh query heads, nkv KV
// heads (GQA/MQA: query head h reads KV head h / (nh / nkv)); hd head_dim (16, 32, 64 or 128);
// S k_seq_stride (rows per sequence slot of a per-sequence cache).
// Sequence b's queries are rows [cu_seqlens_q[b], cu_seqlens_q[b+1]) of q and out; its keys and
// values are rows [cu_seqlens_k[b], cu_seqlens_k[b+1]) of k and v, or, when k_lens is set (a cache of
// one slot per sequence, as the engine's), rows [b * k_seq_stride, b * k_seq_stride + k_lens[b]).
// Tq_b <= Tk_b: the new tokens are
// the last Tq_b of its Tk_b, so query i sits at position Tk_b - Tq_b + i and, when causal, sees keys
// 0 ..= that position (Tq_b == Tk_b is plain prefill). Scores scaled by 1/sqrt(hd); output rounded
// to dtype once. Reference: ref::attention (per sequence, same argument meaning).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct FlashPrefillParams {
  DType dtype = DType::BF16;
  const void* q = nullptr;               // (TQ, nh, hd)
  const void* k = nullptr;               // (TK, nkv, hd); with k_lens (B, S, nkv, hd)
  const void* v = nullptr;               // same layout as k
  void* out = nullptr;                   // (TQ, nh, hd)
  const int32_t* cu_seqlens_q = nullptr; // (B + 1) query row offsets, device memory
  const int32_t* cu_seqlens_k = nullptr; // (B + 1) key row offsets, device memory (unused with k_lens)
  const int32_t* k_lens = nullptr;       // (B) keys of each sequence, device memory; null: cu_seqlens_k
  int64_t k_seq_stride = 0;              // S: with k_lens, sequence b's keys start at row b * S (S >= k_lens[b])
  int batch = 0;                         // B
  int max_seqlen_q = 0;                  // max over b of Tq_b (sizes the grid)
  int heads = 0;                         // nh
  int kv_heads = 0;                      // nkv, divides nh
  int head_dim = 0;                      // hd: 16, 32, 64 or 128
  bool causal = true;
  // Rows of k and v (cu_seqlens_k[batch] without k_lens) where the caller knows them, else 0: the
  // TMA copies of the warp-specialised variant (MINFER_PREFILL=v4t) need the tensor's extent (with
  // k_lens it is batch x k_seq_stride); without it v4t copies as v4 does.
  int64_t total_k = 0;
  // Lazy rescaling of the sm90 kernels (v3 / v3s / v4 / v4t): a row's running maximum moves only when a
  // key tile's exceeds it by more than this (log2 units), so most tiles skip the rescale of O; P then
  // reaches 2^rescale_slack. In [0, 8]; 0: the running maximum; -1: the environment variable
  // MINFER_PREFILL_RESCALE_SLACK, 8 when unset (the default since session 30: faster on an H100, the
  // same rel_err; README). Other paths ignore it.
  float rescale_slack = -1.f;
  // bf16 P V of the sm90 v3 blocks (head_dim 64; 128 with MINFER_PREFILL=v3) and v4t (head_dim 128 past
  // 512 rows) through fp16 (opt-in): V tiles converted to fp16 in shared memory (exact for magnitudes in
  // [2^-14, 65504]; a tile holding a value that overflows fp16 takes the bf16 hi + lo path) and P rounded
  // once to fp16, one MMA a key step instead of two. H100: v3 at head_dim 64 1.03-1.11x, v4t 0.98-1.02x
  // (README). rel_err then sits at 8e-4 to 1e-3 on bf16 outputs (tools/pv_precision.py, fp16-P; measured
  // up to 8.7e-4), under the 1e-3 gate by a thin margin (hi + lo: ~1e-4), so it is not the default.
  // Values of V below 2^-14 keep fewer bits (fp16 subnormals): a V whose every value is that small loses
  // accuracy. 1: on; 0: off (the default); -1: MINFER_PREFILL_PV=f16 (on; the value v2's switch takes) or
  // bf16 (off; unset: off). Other paths ignore it.
  int pv_fp16 = -1;
};

// Checks the params (naming the field at fault), then launches on `stream`.
Status flash_prefill_forward(const FlashPrefillParams& p, cudaStream_t stream);

}  // namespace minfer
