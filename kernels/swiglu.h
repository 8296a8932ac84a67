// kernels/swiglu.h: SwiGLU activation on a fused gate/up projection output.
// Versions: v1 (16-byte vector loads, grid-stride). R = rows (tokens), I = intermediate.
// out[r, j] = silu(g) * u with g = gate_up[r, j], u = gate_up[r, I + j], silu(g) = g / (1 + exp(-g)),
// computed in fp32 and rounded once. Reference: ref::swiglu (same argument order).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct SwigluParams {
  DType dtype = DType::BF16;       // storage dtype of gate_up and out
  const void* gate_up = nullptr;   // (R, 2*I) row stride in_stride: [gate | up]
  void* out = nullptr;             // (R, I) row stride out_stride
  int64_t rows = 0;                // R
  int64_t inter = 0;               // I
  int64_t in_stride = 0;           // elements between rows of gate_up (>= 2*I)
  int64_t out_stride = 0;          // elements between rows of out (>= I)
};

Status swiglu_forward(const SwigluParams& p, cudaStream_t stream);

}  // namespace minfer
