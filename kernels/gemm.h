// kernels/gemm.h: the engine's GEMM. Versions: v1 (cuBLASLt, the heuristic's first algorithm);
// v2 (this one): per shape, the fastest of up to GemmOptions::max_candidates cuBLASLt algorithms and,
// for R <= kGemvMaxRows, a GEMV-style kernel of our own, timed once with CUDA events.
// y (R, N) = x (R, K) W (N, K)^T (+ bias (N)), all row-major in one storage dtype, fp32 accumulation:
// CUBLAS_COMPUTE_32F for fp32 (never TF32), fp16 and bf16; y rounded to dtype once (bias added in
// fp32 before the rounding, as the reference does). R rows (tokens), K in features, N out features.
// Reference: ref::linear (same argument order).
//
// Tuning (GemmOptions::tune, on by default; MINFER_GEMM_TUNE=0 turns it off): the first call for a
// (dtype, R, K, N, bias) with R <= tune_max_rows (decode batches) that runs outside CUDA graph capture times every candidate on the caller's stream and buffers (y is
// overwritten, x, W and bias only read), synchronising that stream once, and caches the winner. A call
// on a capturing stream (cudaStreamIsCapturing) never times: it uses the cached winner if there is one,
// else the heuristic's first algorithm, and leaves the shape untuned so that the next eager call tunes
// it. Shapes with R > tune_max_rows are not timed (each new prefill length would otherwise pay a
// tuning pass of ~50 runs). Tuning is safe with the engine's graphs: the engine runs its first decode
// step eagerly before it captures, so every decode shape is tuned before capture and capture itself
// only launches. Samples are taken cold: a 2 x L2 scratch is overwritten before each (a decode step
// streams every weight from memory). Measured on an H200 (bf16, batch 1, e2e quick): qwen3-0.6b
// 1.94 -> 1.58 ms/step, qwen2.5-0.5b 1.37 -> 1.23, llama-3.1-8b 5.39 -> 5.49 with a 2% margin (now 5%).
// bf16 with N < 8 always takes the GEMV in Auto (cuBLASLt rounds partial sums to bf16 there).
// Environment overrides for A/B measurement without code changes (read by GemmOptions::from_env):
//   MINFER_GEMM_TUNE=1|0          time candidates (and the GEMV) per shape (default) | heuristic's first only (v1)
//   MINFER_GEMM_PATH=cublaslt|gemv force one path (gemv fails for shapes it cannot take)
//   MINFER_GEMV_FAVOUR=F          the GEMV wins a tuned shape when its time < F x cuBLASLt's best
//   MINFER_GEMV_ALWAYS_ROWS=N     the GEMV wins every shape of R <= N it supports (default 1; 0: timing decides)
// Why R = 1 always takes the GEMV: timed alone, cuBLASLt wins some single-row shapes by a few percent,
// but in the decode graph the GEMV loads its first weights before waiting on the previous kernel (PDL,
// kernels/common/pdl.cuh) and cuBLASLt's kernels do not. H100, bf16 batch-1 decode, the GEMV forced
// vs the tuner's choice in the same run (scripts/ab.sh, four runs): qwen2.5-0.5b 0.78-0.86 vs
// 0.87-0.91 ms/step, qwen3-0.6b 1.02-1.05 vs 1.06-1.11, llama-3.1-8b 5.72-6.05 vs 5.68-6.30; at
// batch 4 the forced GEMV lost (1.50-1.72 vs 1.34-1.35), so R > 1 keeps the timing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
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

// Rows up to which the GEMV kernel is a tuning candidate (decode batches).
inline constexpr int64_t kGemvMaxRows = 16;

enum class GemmPath { Auto, CublasLt, Gemv };

struct GemmOptions {
  bool tune = true;                    // time candidates the first time a shape runs eagerly
  int64_t tune_max_rows = kGemvMaxRows;  // decode rows; larger R (prefills) keep the heuristic's first
  int max_candidates = 8;              // cuBLASLt heuristic results requested per shape (<= 32)
  int samples = 5;                     // timed runs per candidate (median kept), after one warm-up
  bool flush = true;                   // overwrite a 2 x L2 scratch before each sample (cold weights, as in a step)
  float gemv_favour = 0.95f;           // the GEMV wins when its time < gemv_favour x cuBLASLt's best
  int64_t gemv_always_rows = 1;        // ... and always at R <= this (in a step it overlaps; see below)
  GemmPath path = GemmPath::Auto;      // Auto: tuned choice; otherwise only that path runs
  static GemmOptions from_env();       // defaults, with MINFER_GEMM_TUNE / MINFER_GEMM_PATH applied
};

// What the cache holds for one shape (for logs and tests).
struct GemmPlanInfo {
  bool tuned = false;        // candidates were timed
  bool gemv = false;         // the GEMV kernel is the choice (else cuBLASLt algorithm `algo_index`)
  int candidates = 0;        // cuBLASLt algorithms the heuristic returned within the workspace
  int algo_index = 0;        // chosen cuBLASLt candidate, 0 = the heuristic's first
  float heuristic_us = -1;   // median time of candidate 0 (-1 when not timed)
  float best_us = -1;        // median time of the choice (-1 when not timed)
};

// GEMV kernel alone (kernels/gemv.cu; its fused forms are in gemv.h): y = x W^T (+ bias) for any R
// (chunks of up to 16 rows per block row), K split
// over `split` warps per output feature (1, 2, 4 or 8; 0 picks one from N, K and the SM count).
// Needs K a multiple of 16 / dtype_size and x, W 16-byte aligned; otherwise returns an error
// naming the field. Tests call it directly; the engine goes through Gemm::run.
Status gemv_forward(const GemmParams& p, cudaStream_t stream, int split = 0);
bool gemv_supports(const GemmParams& p);

// Owns the cuBLASLt handle and the per-shape plan cache; the workspace is the caller's.
class Gemm {
 public:
  Gemm(void* workspace /*(bytes)*/, size_t workspace_bytes, GemmOptions options = GemmOptions::from_env());
  ~Gemm();
  Gemm(const Gemm&) = delete;
  Gemm& operator=(const Gemm&) = delete;

  // Safe inside CUDA graph capture (never times there; see the file comment).
  Status run(const GemmParams& p, cudaStream_t stream);
  size_t cached_plans() const { return plans_.size(); }
  std::optional<GemmPlanInfo> plan_info(const GemmParams& p) const;
  const GemmOptions& options() const { return options_; }
  void set_options(const GemmOptions& o) { options_ = o; }  // cached choices stay

 private:
  struct Plan;
  using Key = std::tuple<int, int64_t, int64_t, int64_t, bool>;
  static Key key_of(const GemmParams& p);
  Status make_plan(const GemmParams& p, Plan& plan);
  Status run_lt(const GemmParams& p, Plan& plan, int index, cudaStream_t stream);
  Status run_choice(const GemmParams& p, Plan& plan, cudaStream_t stream);
  Status tune(const GemmParams& p, Plan& plan, cudaStream_t stream);
  Status time_one(const GemmParams& p, Plan& plan, int index /*-1: gemv*/, cudaStream_t stream, float& us);
  void* handle_ = nullptr;  // cublasLtHandle_t
  void* workspace_;
  size_t workspace_bytes_;
  GemmOptions options_;
  std::map<Key, std::unique_ptr<Plan>> plans_;
  void* flush_ = nullptr;  // tuning only: 2 x the L2 size, allocated at the first tuning pass
  size_t flush_bytes_ = 0;
};

}  // namespace minfer
