// engine/model/model.h: the dense decoder forward on the GPU (llama, qwen2, qwen3), over device
// weights and a run state, calling kernel launchers only. Legend: B sequences, T new tokens in one
// forward (all sequences), Bb decode bucket rows, H hidden, V vocab.
//
// Per layer (rounding points of reference/model.cpp in brackets; every buffer is in the run dtype):
//   a   = rmsnorm(res)  or, from layer 1 on, fused: res = res + y [14]; a = norm(res) [2]
//   qkv = a Wqkv^T + b                                [3]  one GEMM over fused wq|wk|wv rows
//   q, cache k/v = QK-norm + RoPE of qkv              [5]  fused kernel, rounded once (as the reference)
//   att = attention(q, cache)                         [6]  RunShape::attention picks the kernels:
//         simple: kernels/attention; flash: kernels/flash_prefill (host-driven forwards) or
//         kernels/decode_attention (decode steps, split-KV with the planned split count)
//   y   = att Wo^T                                    [7]
//   res = res + y [8]; a = norm(res) [9]              fused residual + norm
//   gu  = a Wgu^T                                     [10] one GEMM over fused gate|up rows
//   act = swiglu(gu) [11]; y = act Wdown^T [12]
// End: res = res + y [14]; a = final_norm(res) [15]; logits = a Whead^T [16].
// The same points as the reference in every dtype: no rounding point is skipped or added.
// Decode steps of at most fused_decode_max_rows() rows (model.cpp says why and what it measured) run
// each layer with the fused GEMVs of kernels/gemv.h, with the same rounding points:
//   [layer 0 only: a = rmsnorm(res)] | qkv = a Wqkv^T + b (the GEMM) | qkv_rope_cache | attention |
//   res = res + att Wo^T; a = norm(res) (one GEMV: residual epilogue, its last block normalises) |
//   act = swiglu(a Wgu^T) (one GEMV) | res = res + act Wdown^T; a = next norm(res) (one GEMV: the next
//   layer's attention norm, or the final norm after the last layer).
// Three launches fewer per layer than the unfused step (two RMSNorms and the SwiGLU).
// Small decode steps (by default at most 4 rows of models at most 2048 wide; model.cpp has the rule
// and its timings) also take, fused or not: the gate/up GEMV with the SwiGLU epilogue (act =
// swiglu(a Wgu^T) in one GEMV) and, with the flash backend in fp16 / bf16, decode attention's prologue
// doing the QK-norm, RoPE and cache write (no qkv_rope_cache launch). Same rounding points.
// Opt-in (MINFER_STEP=1; model.cpp says why it is off): decode steps of at most 4 rows (flash
// backend, a device and model kernels/decode_step.h serves) run as one kernel instead: the whole step
// above, embedding to logits, in one persistent launch with the same rounding points.
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include <cuda_runtime.h>

#include "engine/core/config.h"
#include "engine/core/plan.h"
#include "engine/core/weights.h"
#include "engine/model/device_weights.h"
#include "engine/model/profiler.h"
#include "engine/model/run_state.h"
#include "kernels/decode_attention.h"
#include "kernels/decode_step.h"
#include "kernels/gemm.h"
#include "kernels/gemv.h"

namespace minfer {

class Model {
 public:
  // Refuses (UsageError naming the limit) a request past the context / batch / memory limits before
  // allocating anything; then uploads the weights and allocates the run state.
  // shape() is `shape` completed for its attention backend (flash: decode splits and workspace).
  Model(const ModelConfig& cfg, const TensorSource& src, DType dtype, const RunShape& shape);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const ModelConfig& config() const { return cfg_; }
  DType dtype() const { return dtype_; }
  const RunShape& shape() const { return shape_; }
  MemoryPlan memory() const { return state_->memory(); }
  cudaStream_t stream() const { return stream_; }
  RunState& state() { return *state_; }

  // Frees the run state and plans a new one for `shape` (the weights stay): one model load serves
  // many request shapes (bench). Refused (UsageError) as the constructor refuses; after a refusal
  // the model holds no run state until the next successful reshape.
  void reshape(const RunShape& shape);
  void reset();                  // every sequence empty
  int cached(int seq) const;     // tokens in sequence seq's cache

  // Appends tokens[i] to sequence i (may be empty) and runs them. Returns fp32 logits on the host:
  // every new token's row when the shape has all_logits, else each non-empty sequence's last row.
  std::vector<float> forward(const std::vector<std::vector<int32_t>>& tokens);
  // Same, leaving the logits in state().logits; returns the number of rows. Synchronous upload.
  int64_t forward_device(const std::vector<std::vector<int32_t>>& tokens, bool all_logits);

  // Decode from the device-resident state (ids, positions, cache_lens, slot of `rows` rows, one token
  // each): logits (rows, V) in state().logits. Enqueues only (capturable in a CUDA graph).
  void enqueue_decode(int rows);
  // Sets the device decode state for `rows` rows (a bucket >= B): row b < B is live unless
  // finished[b]; its position is cached(b). Rows past B are padding. Ids stay as they are.
  void prepare_decode(int rows, const std::vector<bool>& finished);
  // Marks sequence b finished on the device (its row no longer attends or writes the cache).
  void finish_row(int b);
  // Host bookkeeping after a decode step: every live row appended one token.
  void note_decoded(const std::vector<bool>& finished);

  // The first `rows` rows of state().logits as fp32 on the host (synchronises the stream).
  std::vector<float> logits_host(int64_t rows);
  // Launches bracket themselves with p's events while set (eager runs only; null: off).
  void set_profiler(LaunchProfiler* p) { prof_ = p; }
  // Whole-step kernel launches record their trace (kernels/decode_step.h) into this device buffer of
  // decode_step_trace_points(L) x decode_step_blocks() x 2 values while set (null: off).
  void set_step_trace(unsigned long long* trace) { step_trace_ = trace; }

 private:
  void upload_indices(const std::vector<int32_t>& host, int64_t T, int nseq);
  void enqueue_body(int64_t T, int nseq);
  void enqueue_layer(int l, int64_t T, int nseq);
  void enqueue_logits(const void* x, int64_t rows);
  void gemm(const char* name, const void* x, int64_t w_off, int64_t b_off, void* y, int64_t rows, int64_t in,
            int64_t out);
  void norm(const void* x, void* residual, int64_t w_off, int64_t rows);
  GemvParams fused_params(int which, int l, int64_t rows) const;
  bool fused_fits(int64_t rows) const;  // the fused decode GEMVs take every layer shape at `rows`
  GemvParams norm_in_params(int which, int l) const;
  bool norm_in_fits(int64_t rows) const;  // a decode step of `rows` rows folds its RMSNorms into the GEMVs
  void fused_gemv(const char* name, const GemvParams& p);
  // rope: decode attention's fused prologue does this step's QK-norm, RoPE and cache write (or null).
  void attend(void* k_cache, void* v_cache, int64_t T, int nseq, const QkvRopeParams* rope = nullptr);
  void attend_simple(void* k_cache, void* v_cache, int64_t T, int nseq);
  void attend_prefill(void* k_cache, void* v_cache, int nseq);
  void attend_decode(void* k_cache, void* v_cache, int rows, const QkvRopeParams* rope);
  DecodeAttentionParams decode_params(void* k_cache, void* v_cache, int rows, const QkvRopeParams* rope) const;
  DecodeStepParams step_params(int rows) const;
  bool step_fits(int rows) const;  // the whole-step kernel serves a decode step of `rows` rows
  void mark_begin() { if (prof_) prof_->begin(); }
  void mark_end(const char* name, double bytes) { if (prof_) prof_->end(name, bytes); }
  void* kv_layer(void* base, int l) const;

  const ModelConfig cfg_;
  DType dtype_;
  RunShape shape_;
  std::unique_ptr<DeviceWeights> weights_;
  std::unique_ptr<RunState> state_;
  std::unique_ptr<Gemm> gemm_;
  cudaStream_t stream_ = nullptr;
  std::vector<int> lens_;  // (B) cached tokens per sequence
  int64_t kv_tokens_ = 0;  // cache rows the next forward's attention reads, all sequences (profiler bytes)
  int max_q_ = 0;          // longest run of new tokens of one sequence in this forward; 0: a decode step
  LaunchProfiler* prof_ = nullptr;
  int fused_max_rows_ = 0;     // decode steps of at most this many rows run fused (0: never)
  int swiglu_max_rows_ = 0;    // decode steps of at most this many rows fuse the SwiGLU into gate/up (0: never)
  int rope_max_rows_ = 0;      // decode steps of at most this many rows fuse RoPE + cache write into attention
  int norm_in_mode_ = -1;      // MINFER_NORM_IN at construction: 1 on, 0 off, -1 the default rule
  bool prewait_ = false;       // MINFER_DECODE_PREWAIT=1 at construction (Model::enqueue_layer)
  std::array<int, 4> norm_in_splits_{};  // MINFER_NORM_IN_SPLITS (0: gemv_one_wave_split)
  std::array<int, 4> norm_in_warp_rows_{};  // MINFER_NORM_IN_WARP_ROWS (0: the rule in norm_in_params)
  bool fused_ = false;         // the step being enqueued uses the fused decode GEMVs
  bool norm_in_ = false;       // the step being enqueued folds its RMSNorms into the QKV and gate/up GEMVs
  int step_max_rows_ = 0;      // decode steps of at most this many rows run as one kernel (0: never)
  void* step_layers_ = nullptr;  // (L) DecodeStepLayer: each layer's weight pointers, on the device
  unsigned long long* step_trace_ = nullptr;
};

}  // namespace minfer
