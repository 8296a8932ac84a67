// kernels/gemv.h: the GEMV kernel for decode rows (R small), plain or fused with what surrounds a
// projection in a decoder layer, so that a decode step needs no separate RMSNorm, residual-add or
// SwiGLU launches. Versions: v1 (plain, in kernels/gemm.cu until it moved here), v2 (this one): the
// same warp layout plus weight prefetch across programmatic dependent launch, an RMSNorm prologue,
// and residual / SwiGLU epilogues.
//
// y (R, N) = x (R, K) W (N, K)^T (+ bias (N)), row-major, fp32 accumulation, with optionally:
//  - norm_weight (K): x is first replaced by round(x * rstd(x) * norm_weight), rstd = 1 / sqrt(mean
//    (x^2) + eps) per row: RMSNorm as kernels/rmsnorm computes and rounds it (ref::rmsnorm);
//  - residual (R, N): y = round(residual + round(x W^T + bias)), the engine's residual add (y may
//    alias residual: each element is read and written by one thread);
//  - swiglu: W is (2N, K), rows [0, N) gate and [N, 2N) up; y = round(silu(g) * u) with g, u the
//    rounded gate and up outputs (ref::swiglu over a fused [gate | up] projection).
// Rounding points are the unfused sequence's: fused and unfused runs differ only in fp32 summation
// order. Reference: ref::linear, ref::rmsnorm, ref::swiglu composed.
//
// Layout (v2): a block of 8 warps covers 8 / S output features (S = split: warps per feature, each
// summing one K slice; SwiGLU pairs a gate warp group with an up warp group, S <= 4) for RT rows
// (RT in 1, 2, 4, 8, 16: the smallest covering R, more block rows beyond 16). Each lane streams
// 16-byte packs of W (evict-first), 4 in flight; the first 4 are loaded before pdl_wait() (weights
// do not depend on the previous kernel). x comes through
// the read-only cache, or, with norm_weight, from shared memory where the block normalised it.
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
  const void* norm_weight = nullptr;  // (K) or null: RMSNorm prologue
  float norm_eps = 0.f;
  const void* residual = nullptr;     // (R, N) or null: residual epilogue; may alias y
  bool swiglu = false;                // SwiGLU epilogue
  int split = 0;                      // S: 1, 2, 4 or 8 (<= 4 with swiglu); 0 picks one from N, K, SMs
};

// Largest shared memory the RMSNorm prologue may use (RT x K elements): beyond it the caller runs the
// unfused sequence (gemv_fused_supports says which).
inline constexpr size_t kGemvNormSmemBytes = 48 * 1024;

// Checks the params (naming the field at fault), then launches on `stream` (with PDL where enabled).
Status gemv_fused_forward(const GemvParams& p, cudaStream_t stream);
// Whether gemv_fused_forward accepts p (alignment, K a multiple of V, prologue within shared memory).
bool gemv_fused_supports(const GemvParams& p);
// The split used when p.split is 0.
int gemv_default_split(const GemvParams& p);

}  // namespace minfer
