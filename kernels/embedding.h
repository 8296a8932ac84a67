// kernels/embedding.h: token embedding gather. Versions: v1 (16-byte vector copy per row).
// T = tokens, V = vocab, H = hidden.
// Reference: reference/ops.h ref::embedding (same argument order).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct EmbeddingParams {
  DType dtype = DType::BF16;      // storage dtype of table and out
  const int32_t* ids = nullptr;   // (T) token ids; an id outside [0, V) yields a row of zeros
  const void* table = nullptr;    // (V, H)
  void* out = nullptr;            // (T, H)
  int64_t num_tokens = 0;         // T
  int64_t vocab = 0;              // V
  int64_t hidden = 0;             // H
};

Status embedding_forward(const EmbeddingParams& p, cudaStream_t stream);

}  // namespace minfer
