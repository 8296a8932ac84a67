// engine/model/run_state.h: every device buffer a run needs, allocated once when the run is set up
// (nothing is allocated in the decode loop): activations, logits, index buffers, the RoPE table,
// the GEMM workspace, and the KV cache. The request is checked (batch, context, memory) and refused
// with the limit named before anything is allocated.
// Legend: Tm activation rows (max of prefill tokens and the decode bucket), Bb rows of the decode
// bucket, B sequences (KV cache slots), C context, L layers, H hidden, I intermediate,
// Q = nh*hd, KV = nkv*hd, V vocab.
#pragma once
#include <cstdint>

#include "engine/core/config.h"
#include "engine/core/plan.h"

namespace minfer {

class RunState {
 public:
  // Throws UsageError (past a limit, or not fitting the free GPU memory) before allocating.
  RunState(const ModelConfig& cfg, DType dtype, const RunShape& shape, uint64_t weight_bytes);
  ~RunState();
  RunState(const RunState&) = delete;
  RunState& operator=(const RunState&) = delete;

  MemoryPlan memory() const { return mem_; }  // actual bytes allocated
  int64_t rows() const { return rows_; }        // Tm
  int64_t logit_rows() const { return logit_rows_; }
  int decode_rows() const { return decode_rows_; }  // Bb for the planned batch

  // Activations, in the run dtype.
  void* res = nullptr;     // (Tm, H) residual stream
  void* a = nullptr;       // (Tm, H) normed activations
  void* y = nullptr;       // (Tm, H) o_proj / down_proj output; also the gathered last rows
  void* qkv = nullptr;     // (Tm, Q + 2 KV)
  void* q = nullptr;       // (Tm, Q) q after QK-norm and RoPE
  void* att = nullptr;     // (Tm, Q) attention output
  void* gu = nullptr;      // (Tm, 2I) [gate | up]
  void* act = nullptr;     // (Tm, I) SwiGLU output
  void* logits = nullptr;  // (logit_rows, V)
  // Index buffers.
  int32_t* ids = nullptr;         // (Tm) input token ids; the sampler writes the next ids here
  int32_t* positions = nullptr;   // (Tm) position of each token
  int32_t* token_slot = nullptr;  // (Tm) cache slot of each token (< 0: padding)
  int32_t* cu_seqlens = nullptr;  // (Tm + 1) query row offsets of each sequence
  int32_t* cache_lens = nullptr;  // (Tm) cached tokens per sequence after the append
  int32_t* slot = nullptr;        // (Tm) cache slot per sequence (< 0: padding / finished)
  uint64_t* counters = nullptr;   // (Tm) sampler draw counters
  unsigned* gemv_counters = nullptr;  // (ceil(Tm / 16)) kernels/gemv's norm epilogue (zero between launches)
  void* sample_workspace = nullptr;   // kernels/sampling's many-block argmax: sample_bytes (zero between launches)
  uint64_t sample_bytes = 0;
  float* cos_sin = nullptr;       // (C, hd/2, 2)
  void* gemm_workspace = nullptr; // kGemmWorkspaceBytes
  float* attn_workspace = nullptr; // flash decode: (Bb, nh, splits, hd + 1) fp32 split partials, or null
  void* step_workspace = nullptr;  // kernels/decode_step: barrier word + split partials (zeroed), or null
  void* k_cache = nullptr;        // (L, B, C, nkv, hd)
  void* v_cache = nullptr;        // (L, B, C, nkv, hd)
  int32_t* host_index = nullptr;  // pinned staging: (6 Tm + 1) int32 for uploads
  int32_t* host_ids = nullptr;    // pinned (Tm) sampled ids coming back

 private:
  MemoryPlan mem_;
  int64_t rows_ = 0, logit_rows_ = 0;
  int decode_rows_ = 0;
  void* block_ = nullptr;  // the workspace allocation
  void* kv_ = nullptr;     // the KV cache allocation
};

}  // namespace minfer
