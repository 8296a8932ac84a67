// kernels/gemv.h: the GEMV kernel for decode rows (R small), plain or fused with what surrounds a
// projection in a decoder layer, so that a decode step needs no separate RMSNorm, residual-add or
// SwiGLU launches. The plain form is one of the GEMM tuner's candidates (kernels/gemm.h); the fused
// forms serve the engine's decode step (engine/model/model.cpp).
//
// y (R, N) = x (R, K) W (N, K)^T (+ bias (N)), row-major, fp32 accumulation, with optionally:
//  - norm_weight (K): x is replaced by its RMSNorm, round(x * rstd[r] * norm_weight) with
//    rstd = 1 / sqrt(mean(x[r]^2) + norm_eps), kernels/rmsnorm's rounding (below: every warp computes
//    rstd itself and normalises the x elements it uses on the fly);
//  - residual (R, N): y = round(residual + round(x W^T + bias)), the engine's residual add (y may
//    alias residual: each element is read and written by one thread);
//  - swiglu: W is (2N, K), rows [0, N) gate and [N, 2N) up; y = round(silu(g) * u) with g, u the
//    rounded gate and up outputs (ref::swiglu over a fused [gate | up] projection).
// Rounding points are the unfused sequence's: fused and unfused runs differ only in fp32 summation
// order. Reference: ref::linear, ref::rmsnorm, ref::swiglu composed.
//
// Layout: a block of 8 warps covers 8 / S output features (S = split: warps per feature, each
// summing one K slice; SwiGLU pairs a gate warp group with an up warp group, S <= 4) for RT rows
// (RT in 1, 2, 4, 8, 16: the smallest covering R, more block rows beyond 16), one tile of outputs
// per block. Each lane streams 16-byte packs of W (evict-first), 4 in flight; the first 4 are loaded
// before pdl_wait() (weights do not depend on the previous kernel; MINFER_GEMV_L2=1 also prefetches
// the rest of the block's rows into L2 there). x (and norm_weight) come through the read-only cache.
// NORM forms (v4): after pdl_wait() every warp sums the squares of its rows of x over the whole K
// (each lane the packs lane, lane + 32, ...: a fixed order, so every warp gets the same rstd), then
// in the K loop each x element is normalised and rounded as kernels/rmsnorm rounds it before its FMA.
// Nothing is staged and no barrier comes before the K loop: a NORM GEMV has the plain one's critical
// path plus one pass over x (which the K loop then finds in L1).
// History (H200, bf16 b1 decode, fused vs unfused step in one run): v1 normalised x in a per-block
// prologue with two dependent L2 round trips: qwen3-0.6b 1.16 vs 0.94 ms. v2 took each row's rstd
// from the previous GEMV (per-block partial sums, the last block summing them: a grid-wide atomic
// tail): 1.26 vs 0.94 ms. v3 staged x in shared memory, normalised once per block (two barriers
// before the K loop), one resident wave of blocks looping over tiles: 1.10 vs 0.93 (H100 at 66cda28:
// 1.175 vs 1.114 ms; the plain GEMV forced for every decode GEMM, unfused: 1.025).
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
  const void* norm_weight = nullptr;  // (K) or null: RMSNorm of x on the fly
  float norm_eps = 0.f;               // eps of the norm
  const void* residual = nullptr;     // (R, N) or null: residual epilogue; may alias y
  bool swiglu = false;                // SwiGLU epilogue
  int split = 0;                      // S: 1, 2, 4 or 8 (<= 4 with swiglu); 0 picks one from N, K, SMs
};

// Checks the params (naming the field at fault), then launches on `stream` (with PDL where enabled).
Status gemv_fused_forward(const GemvParams& p, cudaStream_t stream);
// Whether gemv_fused_forward accepts p (alignment, K a multiple of V, a fused form it holds).
bool gemv_fused_supports(const GemvParams& p);
// The split used when p.split is 0.
int gemv_default_split(const GemvParams& p);

}  // namespace minfer
