// kernels/gemm.h: the engine's GEMM, a cuBLASLt wrapper. Versions: v1 (cuBLASLt, heuristic algo).
// y (R, N) = x (R, K) W (N, K)^T (+ bias (N)), all row-major in one storage dtype, fp32 accumulation:
// CUBLAS_COMPUTE_32F for fp32 (never TF32), fp16 and bf16; y rounded to dtype once (bias added in
// fp32 before the rounding, as the reference does). R rows (tokens), K in features, N out features.
// The algorithm is chosen by cuBLASLt's heuristic once per (dtype, R, K, N, bias) and cached.
// Reference: ref::linear (same argument order).
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

namespace minfer {

struct GemmParams {
  DType dtype = DType::BF16;
  const void* x = nullptr;     // (R, K)
  const void* w = nullptr;     // (N, K)
  const void* bias = nullptr;  // (N) or null
  void* y = nullptr;           // (R, N)
  int64_t rows = 0;            // R
  int64_t in = 0;              // K
  int64_t out = 0;             // N
};

// Owns the cuBLASLt handle and the per-shape plan cache; the workspace is the caller's.
class Gemm {
 public:
  Gemm(void* workspace /*(bytes)*/, size_t workspace_bytes);
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // Safe inside CUDA graph capture once the shape's plan is cached (a first call creates it).
  Status run(const GemmParams& p, cudaStream_t stream);
  size_t cached_plans() const { return plans_.size(); }

 private:
  struct Plan;
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool>;
  Status make_plan(const GemmParams& p, Plan& plan);
  void* handle_ = nullptr;  // cublasLtHandle_t
  void* workspace_;
  size_t workspace_bytes_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
};

}  // namespace minfer
