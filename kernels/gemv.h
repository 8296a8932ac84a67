// kernels/gemv.h: the GEMV kernel for decode rows (R small), plain or fused with what surrounds a
// projection in a decoder layer, so that a decode step needs no separate RMSNorm, residual-add or
// SwiGLU launches. The plain form is one of the GEMM tuner's candidates (kernels/gemm.h); the fused
// forms serve the engine's decode step (engine/model/model.cpp).
//
// y (R, N) = x (R, K) W (N, K)^T (+ bias (N)), row-major, fp32 accumulation, with optionally:
//  - residual (R, N): y = round(residual + round(x W^T + bias)), the engine's residual add (y may
//    alias residual: each element is read and written by one thread);
//  - with residual, norm_out (R, N): also norm_out = round(y * rstd[r] * norm_weight (N)) with
//    rstd = 1 / sqrt(mean(y[r]^2) + norm_eps), kernels/rmsnorm's RMSNorm of the new residual, so the
//    next projection's input is ready when the kernel ends. The last block of each block row to finish
//    computes it (a counter per block row in `counters`: zero before the launch, left zero after; a
//    block counts itself after a threadfence and the last one reads y through L2);
//  - swiglu: W is (2N, K), rows [0, N) gate and [N, 2N) up; y = round(silu(g) * u) with g, u the
//    rounded gate and up outputs (ref::swiglu over a fused [gate | up] projection).
// Rounding points are the unfused sequence's: fused and unfused runs differ only in fp32 summation
// order. Reference: ref::linear, ref::rmsnorm, ref::swiglu composed.
//
// Layout: a block of 8 warps covers 8 / S output features (S = split: warps per feature, each
// summing one K slice; SwiGLU pairs a gate warp group with an up warp group, S <= 4) for RT rows
// (RT in 1, 2, 4, 8, 16: the smallest covering R, more block rows beyond 16), one tile of outputs
// per block. Each lane streams 16-byte packs of W (evict-first), 4 in flight; the first 4 are loaded
// before pdl_wait() (weights do not depend on the previous kernel). x comes through the read-only
// cache. RT = 1 keeps to 64 registers (4 blocks of 256 threads per SM: one wave for the projections
// of the models we run); bf16 packs are widened by bit operations, which saves registers.
// History (bf16 b1 decode, fused vs unfused step, one run each; scripts/ab.sh): the norm used to be a
// prologue of the next GEMV (x normalised on the fly). v1 (per-block prologue, two dependent L2 round
// trips) H200 qwen3-0.6b 1.16 vs 0.94 ms; v2 (rstd from partial sums of the previous GEMV, a grid-wide
// atomic tail) 1.26 vs 0.94; v3 (x staged in shared memory, one resident wave looping over tiles)
// 1.10 vs 0.93; v4 (every warp computes rstd and normalises x in its K loop; 126 registers, then 64)
// H100 1.087-1.134 vs 1.021, llama-3.1-8b 6.46 vs 5.67 (the redundant normalisation costs issue slots
// and L1 traffic in every warp). Hence the norm moved to the producing GEMV's last block (above).
// An L2 bulk prefetch of each block's weight rows before pdl_wait() was also tried: H100 e2e geomean
// 1.004 unfused, 0.96 fused; not kept. So was each block asking L2 for the next projection's weights once
// its own loads were done (1 or 2 projections ahead): small models' steps 7-11% slower on an H100
// (reports/logs/h100/ab/ab_e2e_gemv_prefetch_next.csv; removed after 6be1193).
// And the folded-norm o GEMV, resident during decode attention, asking L2 before its wait for the
// layer's MLP weights (GemvParams::l2_ahead): 8-10% slower (engine/model/model.cpp; removed after 760e660).
// Slice form (opt-in: MINFER_GEMV_SLICE=1 or GemvParams::slice = 1): one row (R = 1), fp16 / bf16, K
// <= 4096, no RMSNorm epilogue, and each block's weight slice (ceil(N / SMs) rows, twice with SwiGLU)
// at most 100 KiB. About one block per SM; the block copies its whole slice into shared memory with
// the bulk-copy engine (kernels/common/bulk.cuh) before pdl_wait(), so that in a PDL-chained step the
// weights of a projection stream in while the kernels before it still run (the streaming form above
// holds the register file with 4 blocks an SM and prefetches only its first packs); then each warp
// dots whole rows from shared memory with x staged there too. Same rounding points as above.
// Measured slower (H100, e2e bf16 batch 1, one run: reports/logs/h100/ab/ab_e2e_gemv_slice.csv):
// qwen3-0.6b 1.92 vs 1.03 ms/step at prompt 128, qwen2.5-0.5b 0.91 vs 0.78. With every projection a
// slice kernel that lets the next one launch at once, the step's kernels cascade resident ahead of
// their inputs and run slower; letting the next kernel launch only when a block is done
// (MINFER_GEMV_SLICE_LATE=1) gives 1.38 ms, still behind the streaming form. A fixed shared-memory
// carveout (MINFER_GEMV_SLICE_CARVEOUT=100) changes nothing. Also measured without a switch kept: a
// single row taking the largest split whose grid fits one resident wave (every block's first weight
// packs loaded before pdl_wait) instead of the tuner's: 0.996x (reports/logs/h100/ab/
// ab_e2e_gemv_one_wave.csv). Weight streaming is not what the small models' decode step waits on.
// Dimension legend: R rows, K in features, N out features, S split, V = elements per 16-byte pack.
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct GemvParams {
  DType dtype = DType::BF16;
  const void* x = nullptr;            // (R, K)
  const void* w = nullptr;            // (N, K); with swiglu (2N, K)
  const void* bias = nullptr;         // (N) or null; not with swiglu
  void* y = nullptr;                  // (R, N)
  int64_t rows = 0;                   // R
  int64_t in = 0;                     // K
  int64_t out = 0;                    // N
  const void* residual = nullptr;     // (R, N) or null: residual epilogue; may alias y
  void* norm_out = nullptr;           // (R, N) or null: RMSNorm of the new residual (with residual only)
  const void* norm_weight = nullptr;  // (N): its weight (with norm_out only)
  float norm_eps = 0.f;               // its eps
  unsigned* counters = nullptr;       // with norm_out: ceil(R / 16) zeroed counters, left zeroed
  bool swiglu = false;                // SwiGLU epilogue
  int split = 0;                      // S: 1, 2, 4 or 8 (<= 4 with swiglu); 0 picks one from N, K, SMs
  int warp_rows = 1;                  // weight rows a warp: 1, or 2 (R = 1; not with norm_out): two outputs,
                                      // or with swiglu one output's gate and up, half the warps and blocks
  int slice = -1;                     // the slice form where it applies: 1 on, 0 off, -1 MINFER_GEMV_SLICE=1
  // Folded input RMSNorm (one row, plain or SwiGLU form): y = ((x o g) W^T) * rstd (+ bias) with
  // g = in_norm_weight (K) and rstd = 1 / sqrt(mean(x^2) + in_norm_eps) over the row, i.e.
  // linear(rmsnorm(x)) without rounding the normalised x to the storage type (the unfused sequence
  // rounds it once; fp32 sums in another order). Lets a decode step skip the RMSNorm launch before
  // the QKV and gate/up projections.
  const void* in_norm_weight = nullptr;
  float in_norm_eps = 0.f;
  // PDL: the kernel lets the next kernel on the stream launch only after its own wait on the previous
  // kernel (griddepcontrol.wait), not before it (default). Then, once the next kernel runs, every kernel
  // before this one has completed: decode attention's prewait (kernels/decode_attention.h) relies on it.
  bool trigger_after_wait = false;
};

// Checks the params (naming the field at fault), then launches on `stream` (with PDL where enabled).
Status gemv_fused_forward(const GemvParams& p, cudaStream_t stream);
// Whether gemv_fused_forward accepts p (alignment, K a multiple of V, a fused form it holds).
bool gemv_fused_supports(const GemvParams& p);
// Whether gemv_fused_forward runs p in the slice form (enabled, and p fits it).
bool gemv_slice_applies(const GemvParams& p);
// The split used when p.split is 0.
int gemv_default_split(const GemvParams& p);
// The largest split (<= 4 with swiglu, each lane keeping a pack) whose grid fits one wave of resident
// blocks (4 an SM at R = 1), so that every block loads its first weight packs before pdl_wait(); 1
// where none fits. The folded-norm decode GEMVs take it (engine/model/model.cpp, MINFER_NORM_IN).
int gemv_one_wave_split(const GemvParams& p);
// Whether p's grid (at p.split, or the default split where 0, and p.warp_rows) fits the resident slots.
bool gemv_fits_one_wave(const GemvParams& p);
// Weight rows a warp under the one-wave rule (one row, R = 1): 2 where two rows a warp fit p's grid in
// one resident wave (at split 1) and one row fits it at no split, else 1. The folded-norm decode GEMVs
// take it (qwen3-0.6b's gate/up: 384 blocks for 768 on 132 SMs).
int gemv_one_wave_warp_rows(const GemvParams& p);

}  // namespace minfer
