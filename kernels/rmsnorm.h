// kernels/rmsnorm.h: RMSNorm, optionally fused with the residual add. Versions: v1 (one block per row,
// 16-byte vector loads, row cached in registers/shared memory).
// R = rows (tokens), H = hidden (norm width).
// Semantics (fp32 accumulation):
//   without residual: out = x / sqrt(mean(x^2) + eps) * w
//   with residual:    s = round(x + residual_in)  -> written to residual_out (may alias residual_in)
//                     out = s / sqrt(mean(s^2) + eps) * w     (norm of the *rounded* sum)
// out is rounded to dtype once, at the end. Reference: ref::rmsnorm (same argument order).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct RmsNormParams {
  DType dtype = DType::BF16;          // storage dtype of x, residual, weight, out
  const void* x = nullptr;            // (R, H)
  const void* residual_in = nullptr;  // (R, H) or null (no fused add)
  void* residual_out = nullptr;       // (R, H); required when residual_in is set; may equal residual_in
  const void* weight = nullptr;       // (H)
  void* out = nullptr;                // (R, H); may equal x
  int64_t rows = 0;                   // R
  int64_t hidden = 0;                 // H
  float eps = 1e-6f;
};

Status rmsnorm_forward(const RmsNormParams& p, cudaStream_t stream);

}  // namespace minfer
