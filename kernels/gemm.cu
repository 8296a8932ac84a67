// kernels/gemm.cu: cuBLASLt GEMM y = x W^T (+ bias), row-major, fp32 compute (see gemm.h).
// Row-major y (R,N) is column-major y^T (N,R) = W (N,K) x^T: A = W read transposed (stored (K,N)
// column-major with ld K), B = x (K,R) column-major with ld K, C = y^T (N,R) with ld N.
#include "kernels/gemm.h"

#include <cublasLt.h>

#include <string>

namespace minfer {
namespace {

std::string cublas_error(cublasStatus_t s, const char* call, const char* file, int line) {
  return std::string(call) + " failed: cublasStatus " + std::to_string(static_cast<int>(s)) + " at " + file + ":" +
         std::to_string(line);
}

#define MINFER_CUBLAS_RETURN(call)                                                              \
  do {                                                                                          \
    cublasStatus_t minfer_cs_ = (call);                                                         \
    if (minfer_cs_ != CUBLAS_STATUS_SUCCESS)                                                    \
      return ::minfer::Status::error(cublas_error(minfer_cs_, #call, __FILE__, __LINE__));      \
  } while (0)

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::F32: return CUDA_R_32F;
    case DType::F16: return CUDA_R_16F;
    case DType::BF16: return CUDA_R_16BF;
  }
  return CUDA_R_32F;
}

}  // namespace

struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

Gemm::Gemm(void* workspace, size_t workspace_bytes) : workspace_(workspace), workspace_bytes_(workspace_bytes) {
  cublasLtHandle_t h = nullptr;
  const cublasStatus_t s = cublasLtCreate(&h);
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(cublas_error(s, "cublasLtCreate(&h)", __FILE__, __LINE__));
  handle_ = h;
}

Gemm::~Gemm() {
  plans_.clear();
  if (handle_) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

Status Gemm::make_plan(const GemmParams& p, Plan& plan) {
  const cudaDataType_t t = cuda_type(p.dtype);
  MINFER_CUBLAS_RETURN(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  MINFER_CUBLAS_RETURN(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
  MINFER_CUBLAS_RETURN(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
  if (p.bias) {
    const cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_BIAS;
    MINFER_CUBLAS_RETURN(cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi));
    MINFER_CUBLAS_RETURN(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &t, sizeof t));
    MINFER_CUBLAS_RETURN(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  }
  const uint64_t K = static_cast<uint64_t>(p.in), N = static_cast<uint64_t>(p.out), R = static_cast<uint64_t>(p.rows);
  MINFER_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&plan.a, t, K, N, static_cast<int64_t>(K)));
  MINFER_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&plan.b, t, K, R, static_cast<int64_t>(K)));
  MINFER_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&plan.c, t, N, R, static_cast<int64_t>(N)));
  cublasLtMatmulPreference_t pref = nullptr;
  MINFER_CUBLAS_RETURN(cublasLtMatmulPreferenceCreate(&pref));
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_,
                                       sizeof workspace_bytes_);
  cublasLtMatmulHeuristicResult_t res{};
  int found = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), plan.desc, plan.a,
                                                           plan.b, plan.c, plan.c, pref, 1, &res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  MINFER_CUBLAS_RETURN(hs);
  if (found < 1)
    return Status::error("gemm: cuBLASLt found no algorithm for R " + std::to_string(R) + " K " + std::to_string(K) +
                         " N " + std::to_string(N) + " dtype " + dtype_name(p.dtype));
  plan.algo = res.algo;
  return Status::ok();
}

Status Gemm::run(const GemmParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.in <= 0 || p.out <= 0 || !p.x || !p.w || !p.y)
    return Status::error("gemm: rows, in, out must be positive and x, w, y set");
  const Key key{static_cast<int>(p.dtype), p.rows, p.in, p.out, p.bias != nullptr};
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    auto plan = std::make_unique<Plan>();
    Status s = make_plan(p, *plan);
    if (!s) return s;
    it = plans_.emplace(key, std::move(plan)).first;
  }
  Plan& plan = *it->second;
  if (p.bias)
    MINFER_CUBLAS_RETURN(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  const float alpha = 1.0f, beta = 0.0f;
  MINFER_CUBLAS_RETURN(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), plan.desc, &alpha, p.w, plan.a, p.x,
                                      plan.b, &beta, p.y, plan.c, p.y, plan.c, &plan.algo, workspace_,
                                      workspace_bytes_, stream));
  return Status::ok();
}

}  // namespace minfer
