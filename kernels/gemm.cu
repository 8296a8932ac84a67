// kernels/gemm.cu: GEMM y = x W^T (+ bias), row-major, fp32 compute (see gemm.h). Versions: v2.
// Two paths, chosen per shape by timing (Gemm::tune):
//  - cuBLASLt. Row-major y (R,N) is column-major y^T (N,R) = W (N,K) x^T: A = W read transposed
//    (stored (K,N) column-major with ld K), B = x (K,R) column-major with ld K, C = y^T (N,R), ld N.
//    Up to max_candidates heuristic algorithms within the caller's workspace.
//  - GEMV (ours, kernels/gemv.cu, for R <= kGemvMaxRows): gemv_forward with each split S (warps per
//    output feature, 1..8) timed.
// Dimension legend: R rows, K in features, N out features.
#include "kernels/gemm.h"

#include <cublasLt.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/common/dispatch.cuh"

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

constexpr int kGemvMaxSplit = 8;        // GEMV K slices per feature: 1, 2, 4 or 8
constexpr float kTuneMargin = 0.95f;    // a tuning candidate must be 5% faster to win

// cuBLASLt's algo type is an anonymous struct typedef: held in a named one (nvcc 13's front end
// fails an assertion destroying the unnamed type inside std::vector).
struct LtAlgo {
  cublasLtMatmulAlgo_t algo;
};
constexpr int kMaxCandidates = 32;

// ---- timing -------------------------------------------------------------------------------------

// Event pairs for `samples` timed runs; destroyed with the object.
class SampleEvents {
 public:
  explicit SampleEvents(int samples) : ev_(2 * static_cast<size_t>(samples), nullptr) {}
  ~SampleEvents() {
    for (cudaEvent_t e : ev_)
      if (e) cudaEventDestroy(e);
  }
  SampleEvents(const SampleEvents&) = delete;
  SampleEvents& operator=(const SampleEvents&) = delete;
  Status create() {
    for (cudaEvent_t& e : ev_) MINFER_CUDA_RETURN(cudaEventCreate(&e));
    return Status::ok();
  }
  int samples() const { return static_cast<int>(ev_.size() / 2); }
  cudaEvent_t begin(int s) const { return ev_[2 * static_cast<size_t>(s)]; }
  cudaEvent_t end(int s) const { return ev_[2 * static_cast<size_t>(s) + 1]; }

 private:
  std::vector<cudaEvent_t> ev_;
};

struct Flush {
  void* buf = nullptr;  // (bytes) scratch overwritten before each sample, or null
  size_t bytes = 0;
};

// Median microseconds of ev.samples() runs of launch() after one warm-up. `launch_failed` is set when
// the launch itself reports an error (the candidate is then skipped); CUDA errors are returned.
template <typename Launch>
Status median_us(Launch&& launch, const SampleEvents& ev, const Flush& flush, cudaStream_t stream, float& us,
                 bool& launch_failed) {
  launch_failed = !launch().is_ok();
  if (launch_failed) return Status::ok();
  for (int s = 0; s < ev.samples(); ++s) {
    if (flush.buf) MINFER_CUDA_RETURN(cudaMemsetAsync(flush.buf, s & 0xff, flush.bytes, stream));
    MINFER_CUDA_RETURN(cudaEventRecord(ev.begin(s), stream));
    if (!launch()) { launch_failed = true; return Status::ok(); }
    MINFER_CUDA_RETURN(cudaEventRecord(ev.end(s), stream));
  }
  MINFER_CUDA_RETURN(cudaEventSynchronize(ev.end(ev.samples() - 1)));
  std::vector<float> t(static_cast<size_t>(ev.samples()));
  for (int s = 0; s < ev.samples(); ++s)
    MINFER_CUDA_RETURN(cudaEventElapsedTime(&t[static_cast<size_t>(s)], ev.begin(s), ev.end(s)));
  std::nth_element(t.begin(), t.begin() + static_cast<std::ptrdiff_t>(t.size() / 2), t.end());
  us = 1000.f * t[t.size() / 2];
  return Status::ok();
}

}  // namespace

// ---- options ------------------------------------------------------------------------------------

GemmOptions GemmOptions::from_env() {
  GemmOptions o;
  if (const char* t = std::getenv("MINFER_GEMM_TUNE")) o.tune = std::string(t) != "0";
  if (const char* path = std::getenv("MINFER_GEMM_PATH")) {
    const std::string v(path);
    if (v == "auto" || v.empty()) o.path = GemmPath::Auto;
    else if (v == "cublaslt") o.path = GemmPath::CublasLt;
    else if (v == "gemv") o.path = GemmPath::Gemv;
    else throw std::runtime_error("MINFER_GEMM_PATH: unknown value '" + v + "' (auto, cublaslt, gemv)");
  }
  if (const char* r = std::getenv("MINFER_GEMV_ALWAYS_ROWS")) {
    char* end = nullptr;
    const long v = std::strtol(r, &end, 10);
    if (end == r || *end != '\0' || v < 0)
      throw std::runtime_error("MINFER_GEMV_ALWAYS_ROWS: expected a row count >= 0, got '" + std::string(r) + "'");
    o.gemv_always_rows = v;
  }
  if (const char* f = std::getenv("MINFER_GEMV_FAVOUR")) {
    char* end = nullptr;
    o.gemv_favour = std::strtof(f, &end);
    if (end == f || *end != '\0' || !(o.gemv_favour > 0.f))
      throw std::runtime_error("MINFER_GEMV_FAVOUR: expected a positive number, got '" + std::string(f) + "'");
  }
  return o;
}

// ---- Gemm ---------------------------------------------------------------------------------------

struct Gemm::Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  std::vector<LtAlgo> algos;                // heuristic order, each within the workspace
  int lt_choice = 0;                        // fastest timed cuBLASLt candidate (0 until tuned)
  int gemv_split = 0;                       // fastest timed GEMV split (0: untimed, default split)
  bool gemv_wins = false;                   // Auto runs the GEMV
  bool gemv_forced = false;                 // ... whatever the timing says (bf16, N < 8)
  bool tuned = false;
  float heuristic_us = -1, best_us = -1;
  ~Plan() {
    if (desc) cublasLtMatmulDescDestroy(desc);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
  }
};

Gemm::Gemm(void* workspace, size_t workspace_bytes, GemmOptions options)
    : workspace_(workspace), workspace_bytes_(workspace_bytes), options_(options) {
  cublasLtHandle_t h = nullptr;
  const cublasStatus_t s = cublasLtCreate(&h);
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(cublas_error(s, "cublasLtCreate(&h)", __FILE__, __LINE__));
  handle_ = h;
}

Gemm::~Gemm() {
  plans_.clear();
  if (flush_) cudaFree(flush_);
  if (handle_) cublasLtDestroy(static_cast<cublasLtHandle_t>(handle_));
}

Gemm::Key Gemm::key_of(const GemmParams& p) {
  return Key{static_cast<int>(p.dtype), p.rows, p.in, p.out, p.bias != nullptr};
}

Status Gemm::make_plan(const GemmParams& p, Plan& plan) {
  const cudaDataType_t t = cuda_type(p.dtype);
  MINFER_CUBLAS_RETURN(cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));  // never TF32
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
  // Split-K partial sums stay in fp32: a reduction in the output type (bf16/fp16) rounds each partial
  // and was measured at 2-5e-3 rel error for bf16 at N < 8 (tests/gpu/test_gemm.cpp, H200).
  const uint32_t reductions = CUBLASLT_REDUCTION_SCHEME_INPLACE | CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE;
  cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reductions,
                                       sizeof reductions);
  const int want = std::clamp(options_.tune ? options_.max_candidates : 1, 1, kMaxCandidates);
  cublasLtMatmulHeuristicResult_t res[kMaxCandidates] = {};
  int found = 0;
  const cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(static_cast<cublasLtHandle_t>(handle_), plan.desc, plan.a,
                                                           plan.b, plan.c, plan.c, pref, want, res, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  MINFER_CUBLAS_RETURN(hs);
  for (int i = 0; i < found; ++i) {
    const cublasLtMatmulHeuristicResult_t& r = res[i];
    if (r.state == CUBLAS_STATUS_SUCCESS && r.workspaceSize <= workspace_bytes_) plan.algos.push_back(LtAlgo{r.algo});
  }
  if (plan.algos.empty())
    return Status::error("gemm: cuBLASLt found no algorithm for R " + std::to_string(R) + " K " + std::to_string(K) +
                         " N " + std::to_string(N) + " dtype " + dtype_name(p.dtype) + " within a workspace of " +
                         std::to_string(workspace_bytes_) + " bytes");
  return Status::ok();
}

Status Gemm::run_lt(const GemmParams& p, Plan& plan, int index, cudaStream_t stream) {
  if (p.bias)
    MINFER_CUBLAS_RETURN(
        cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &p.bias, sizeof p.bias));
  const float alpha = 1.0f, beta = 0.0f;
  MINFER_CUBLAS_RETURN(cublasLtMatmul(static_cast<cublasLtHandle_t>(handle_), plan.desc, &alpha, p.w, plan.a, p.x,
                                      plan.b, &beta, p.y, plan.c, p.y, plan.c,
                                      &plan.algos[static_cast<size_t>(index)].algo, workspace_, workspace_bytes_,
                                      stream));
  return Status::ok();
}

Status Gemm::run_choice(const GemmParams& p, Plan& plan, cudaStream_t stream) {
  const bool gemv = options_.path == GemmPath::Gemv || (options_.path == GemmPath::Auto && plan.gemv_wins);
  if (!gemv) return run_lt(p, plan, plan.lt_choice, stream);
  return gemv_forward(p, stream, plan.gemv_split);  // 0 (untimed): the default split
}

// index >= 0: cuBLASLt candidate; index < 0: GEMV with split -index.
Status Gemm::time_one(const GemmParams& p, Plan& plan, int index, cudaStream_t stream, float& us) {
  SampleEvents ev(std::max(1, options_.samples));
  if (Status s = ev.create(); !s) return s;
  const Flush flush{options_.flush ? flush_ : nullptr, options_.flush ? flush_bytes_ : 0};
  bool failed = false;
  us = -1;
  Status s;
  if (index >= 0) {
    auto lt = [&]() { return run_lt(p, plan, index, stream); };
    s = median_us(lt, ev, flush, stream, us, failed);
  } else {
    auto gemv = [&]() { return gemv_forward(p, stream, -index); };
    s = median_us(gemv, ev, flush, stream, us, failed);
  }
  if (failed) us = -1;
  return s;
}

// Times every candidate (cuBLASLt algorithms, then GEMV splits where the GEMV may run) and keeps the
// fastest; a candidate replaces the current best only when at least kTuneMargin faster (ties keep the
// earlier: the heuristic's first algorithm, then cuBLASLt over the GEMV). The margin absorbs timing
// noise and the difference between a kernel timed alone and inside a decode graph (2% let choices
// through that were 2% slower in the llama-3.1-8b decode graph, H200).
Status Gemm::tune(const GemmParams& p, Plan& plan, cudaStream_t stream) {
  if (options_.flush && !flush_) {  // a decode step streams each weight from DRAM: time it cold too
    int dev = 0, l2 = 0;
    MINFER_CUDA_RETURN(cudaGetDevice(&dev));
    MINFER_CUDA_RETURN(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
    const size_t bytes = 2 * static_cast<size_t>(std::max(l2, 1 << 20));
    if (cudaMalloc(&flush_, bytes) != cudaSuccess) {
      (void)cudaGetLastError();
      flush_ = nullptr;
      return Status::error("gemm: tuning needs a " + std::to_string(bytes >> 20) +
                           " MiB scratch to evict the L2 between samples and cudaMalloc refused it");
    }
    flush_bytes_ = bytes;
  }
  float best = -1;
  for (int i = 0; i < static_cast<int>(plan.algos.size()); ++i) {
    float us = -1;
    if (Status s = time_one(p, plan, i, stream, us); !s) return s;
    if (i == 0) plan.heuristic_us = us;
    if (us > 0 && (best < 0 || us < kTuneMargin * best)) best = us, plan.lt_choice = i;
  }
  const bool gemv_ok =
      gemv_supports(p) && (p.rows <= kGemvMaxRows || options_.path == GemmPath::Gemv || plan.gemv_forced);
  float best_gemv = -1;
  for (int split = 1; gemv_ok && split <= kGemvMaxSplit; split *= 2) {
    if (split > 1 && p.in / static_cast<int64_t>(16 / dtype_size(p.dtype)) < 32LL * split) break;  // idle lanes
    float us = -1;
    if (Status s = time_one(p, plan, -split, stream, us); !s) return s;
    if (us > 0 && (best_gemv < 0 || us < kTuneMargin * best_gemv)) best_gemv = us, plan.gemv_split = split;
  }
  plan.gemv_wins = plan.gemv_forced || (best_gemv > 0 && (best < 0 || p.rows <= options_.gemv_always_rows ||
                                                         best_gemv < options_.gemv_favour * best));
  plan.best_us = plan.gemv_wins ? best_gemv : best;
  plan.tuned = true;
  return Status::ok();
}

Status Gemm::run(const GemmParams& p, cudaStream_t stream) {
  if (p.rows <= 0 || p.in <= 0 || p.out <= 0 || !p.x || !p.w || !p.y)
    return Status::error("gemm: rows, in, out must be positive and x, w, y set");
  const Key key = key_of(p);
  auto it = plans_.find(key);
  if (it == plans_.end()) {
    auto plan = std::make_unique<Plan>();
    Status s = make_plan(p, *plan);
    if (!s) return s;
    // bf16 with N < 8: cuBLASLt's kernels for it round partial sums to bf16 (2-5e-3 rel err measured on
    // an H200, tests/gpu/test_gemm.cpp), so Auto takes the GEMV there whenever it can.
    plan->gemv_wins = p.dtype == DType::BF16 && p.out < 8 && gemv_supports(p);
    plan->gemv_forced = plan->gemv_wins;
    it = plans_.emplace(key, std::move(plan)).first;
  }
  Plan& plan = *it->second;
  if (options_.tune && !plan.tuned && p.rows <= options_.tune_max_rows) {
    cudaStreamCaptureStatus cap = cudaStreamCaptureStatusNone;
    MINFER_CUDA_RETURN(cudaStreamIsCapturing(stream, &cap));
    if (cap == cudaStreamCaptureStatusNone)
      if (Status s = tune(p, plan, stream); !s) return s;
  }
  return run_choice(p, plan, stream);
}

std::optional<GemmPlanInfo> Gemm::plan_info(const GemmParams& p) const {
  const auto it = plans_.find(key_of(p));
  if (it == plans_.end()) return std::nullopt;
  const Plan& plan = *it->second;
  GemmPlanInfo info;
  info.tuned = plan.tuned;
  info.gemv = plan.gemv_wins;
  info.candidates = static_cast<int>(plan.algos.size());
  info.algo_index = plan.lt_choice;
  info.heuristic_us = plan.heuristic_us;
  info.best_us = plan.best_us;
  return info;
}

}  // namespace minfer
