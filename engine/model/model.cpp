// engine/model/model.cpp: the dense decoder forward on the GPU (see model.h for the op sequence and
// its rounding points). Host-driven forwards upload their index buffers; decode steps read the
// device-resident state so that they can be captured as a CUDA graph.
#include "engine/model/model.h"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <vector>

#include "engine/core/error.h"
#include "kernels/attention.h"
#include "kernels/decode_attention.h"
#include "kernels/embedding.h"
#include "kernels/flash_prefill.h"
#include "kernels/gemv.h"
#include "kernels/kv_cache.h"
#include "kernels/rmsnorm.h"
#include "kernels/swiglu.h"

namespace minfer {
namespace {

// Refuses a request past the limits, or one that does not fit the free memory, before allocating.
void refuse_early(const ModelConfig& cfg, DType dtype, const RunShape& shape) {
  const MemoryPlan plan = plan_memory(cfg, dtype, shape);
  size_t free_b = 0, total_b = 0;
  MINFER_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  check_fits(plan, shape, free_b);
}

// Decode attention's splits merged in thread-block clusters (DecodeAttentionParams::cluster: no combine
// launch; its own split count, decode_attention_splits_cluster) for steps of at most kClusterMaxWork
// unsplit blocks (batch x KV heads x head groups) where the chained rule splits a cache at most as many
// ways as a cluster takes (decode_attention_cluster_max: 16 on H100 and H200).
// MINFER_DECODE_CLUSTER=0 turns it off, =1 takes it wherever the cluster count is 2 or more. H100, bf16,
// e2e ms/step, two interleaved rounds, off / =1 (reports/logs/h100/ab/ab_e2e_dstep.csv): qwen3-0.6b b1
// p128 0.971 / 0.868, b1 p2048 1.077 / 1.102 (8 splits where the chained rule takes 16: not taken by
// default), b4 p512 1.423 / 1.437 (work 32: not taken); qwen2.5-0.5b b1 p128 0.761 / 0.759; llama-3.1-8b
// b1 p128 5.719 / 5.628. Clusters take up to 16 splits where the device allows
// (decode_attention_cluster_max; MINFER_DECODE_CLUSTER_MAX=8 caps them at 8): qwen3-0.6b b1 from p512 on
// keeps the chained rule's 16 splits without the combine launch. H100, ms/step, two interleaved rounds, 8 /
// 16: p128 0.808 / 0.806, p512 0.882 / 0.841, p2048 1.025 / 0.956, p8192 1.430 / 1.260; qwen2.5-0.5b b1
// p128 0.739 / 0.739 (reports/logs/h100/ab/ab_e2e_cmax.csv).
constexpr int64_t kClusterMaxWork = 16;

// The shape with the flash decode plan filled in: one split count for every bucket (chosen for the
// planned batch and the max context, so it never changes while a graph replays), and its workspace.
RunShape complete_shape(const ModelConfig& cfg, DType dtype, const RunShape& shape) {
  RunShape s = shape;
  s.decode_splits = 0;
  s.decode_workspace_bytes = 0;
  s.decode_cluster = false;
  if (s.attention != AttentionBackend::Flash) return s;
  check_request(cfg, s);  // batch, context and head_dim are in range before they size anything
  int dev = 0, sms = 0;
  MINFER_CUDA_CHECK(cudaGetDevice(&dev));
  MINFER_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
  const int resident = decode_attention_resident_blocks(dtype, cfg.head_dim, 0, 0,  // the cache is contiguous
                                                        decode_attention_unsplit_blocks(s.batch, cfg.heads, cfg.kv_heads));
  s.decode_splits = decode_attention_splits_chained(s.batch, cfg.heads, cfg.kv_heads, s.context, sms, resident);
  const int mode = decode_attention_cluster_mode();  // -1 unset: the rule above
  const int64_t work = decode_attention_unsplit_blocks(s.batch, cfg.heads, cfg.kv_heads);
  if (mode == 1 || (mode < 0 && work <= kClusterMaxWork && s.decode_splits <= decode_attention_cluster_max())) {
    const int c = decode_attention_splits_cluster(s.batch, cfg.heads, cfg.kv_heads, s.context, sms);
    DecodeAttentionParams probe;  // the fields the cluster form depends on: dtype, head_dim, a contiguous cache
    probe.dtype = dtype, probe.head_dim = cfg.head_dim, probe.cluster = 1;
    if (decode_attention_cluster_applies(probe, c)) s.decode_splits = c, s.decode_cluster = true;
  }
  s.decode_workspace_bytes = decode_attention_workspace_bytes(s.batch, cfg.heads, cfg.head_dim, s.decode_splits);
  s.step_workspace_bytes = decode_step_workspace_bytes(std::min(s.batch, kDecodeStepMaxRows), cfg.heads,
                                                       cfg.head_dim, kDecodeStepMaxSplits);
  return s;
}

// The device table of each layer's weight pointers the whole-step kernel reads.
void* upload_step_layers(const ModelConfig& cfg, const DeviceWeights& w) {
  std::vector<DecodeStepLayer> t;
  for (const LayerLayout& L : w.layout().layers) {
    DecodeStepLayer d;
    d.attn_norm = w.at(L.attn_norm), d.wqkv = w.at(L.wqkv), d.bqkv = w.at(L.bqkv);
    d.q_norm = w.at(L.q_norm), d.k_norm = w.at(L.k_norm), d.wo = w.at(L.wo);
    d.ffn_norm = w.at(L.ffn_norm), d.wgu = w.at(L.wgu), d.wdown = w.at(L.wdown);
    t.push_back(d);
  }
  void* dev = nullptr;
  if (t.empty() || static_cast<int>(t.size()) != cfg.layers) return dev;
  MINFER_CUDA_CHECK(cudaMalloc(&dev, t.size() * sizeof(DecodeStepLayer)));
  MINFER_CUDA_CHECK(cudaMemcpy(dev, t.data(), t.size() * sizeof(DecodeStepLayer), cudaMemcpyHostToDevice));
  return dev;
}

}  // namespace

// Decode steps of at most this many rows use the fused GEMVs (kernels/gemv.h: the RMSNorms done by
// the last block of the o and down GEMVs, the SwiGLU by the gate/up GEMV; model.h lists the step).
// MINFER_FUSED_MAX_ROWS=N sets it (A/B timing in one run: scripts/ab.sh); MINFER_FUSED=0 turns the
// path off. Off by default: H100, bf16, batch-1 prompt-128 decode, ms/step fused (N=1) vs unfused in
// one run (3bbe1e4): qwen2.5-0.5b 0.79 vs 0.87 (and vs 0.78 for the unfused step with every GEMM on
// the GEMV, the default since), qwen3-0.6b 1.10 vs 1.06, llama-3.1-8b 6.06 vs 5.68. Three launches
// fewer per layer do not pay for the last block's serial norm (threadfence, counter, two passes over
// the row) at the end of two GEMVs a layer. Earlier versions put the norm in the next GEMV's prologue
// and lost too (kernels/gemv.h has their figures).
constexpr int kFusedMaxRows = 0;

// Decode steps of at most this many rows run as one whole-step kernel (kernels/decode_step.h) where
// it serves the model and device. Off by default: its first two versions ran correct on an H200 but
// slower than the per-op step (bf16, prompt 128, one run each, reports/logs/h200/ab/ab_e2e_step_*.csv:
// qwen3-0.6b batch 1 1.253 then 1.135 ms/step vs 0.927-0.929; llama-3.1-8b 9.53 then 6.76 vs 4.66);
// the version here (flag barrier, interleaved copies, attention loads ahead) is correct on an H100 and
// slower still there (reports/logs/h100/ab/ab_e2e_step_v3.csv: qwen3-0.6b b1 1.58 vs 1.06 ms/step,
// qwen2.5-0.5b 1.50 vs 0.78, llama-3.1-8b 6.66 vs 5.66).
// MINFER_STEP=1 turns it on for steps of up to 4 rows, MINFER_STEP_MAX_ROWS=N (0..4) sets the limit,
// MINFER_STEP=0 turns it off.
constexpr int kStepMaxRows = 0;

int step_max_rows() {
  const char* v = std::getenv("MINFER_STEP");
  if (v && std::string(v) == "0") return 0;
  if (const char* m = std::getenv("MINFER_STEP_MAX_ROWS")) return std::clamp(std::atoi(m), 0, kDecodeStepMaxRows);
  if (v && std::string(v) == "1") return kDecodeStepMaxRows;
  return kStepMaxRows;
}

// Two fusions for small decode steps, each one launch fewer per layer with no serial tail:
//  - the gate/up GEMV with the SwiGLU epilogue (kernels/gemv.h) while the rest of the step stays
//    unfused (MINFER_GEMV_SWIGLU_MAX_ROWS=N);
//  - decode attention's fused prologue doing the QK-norm, RoPE and cache write
//    (kernels/decode_attention.h, DecodeAttentionParams::rope; MINFER_FUSED_ROPE_MAX_ROWS=N).
// Default: both for steps of at most kFuseMaxRows rows of models at most kFuseMaxHidden wide. H100,
// bf16, decode ms/step, one run (reports/logs/h100/ab/ab_e2e_fuse.csv), unfused / SwiGLU / RoPE / both:
// qwen3-0.6b b1 p128 1.061 / 1.046 / 1.053 / 1.016; b1 p2048 1.144 / 1.144 / 1.113 / 1.094; b4 p512
// 1.439 / 1.419 / 1.407 / 1.391; qwen2.5-0.5b b1 p128 0.794 / 0.741 / 0.799 / 0.742; llama-3.1-8b
// (hidden 4096) b1 p128 5.693 / 5.747 / 5.791 / 5.798, slower, so wide models keep the plain step.
// A launch fewer saves well under the ~3 us a launch the profile suggests (~0.8 us here): what a
// small model's step waits on is mostly each GEMV's own ramp, not the launches between them.
// Also measured and removed (1066bc4, reverted): the one-block RMSNorm kernels of a decode step asking
// L2 for the next projections' weights (cp.async.bulk.prefetch.L2, 64 KiB requests, before pdl_wait):
// 4.1x slower at qwen3-0.6b b1 (4.16 vs 1.02 ms/step), 10.5x at llama-3.1-8b, 1.7x at 4 rows (4 blocks):
// one SM's bulk-copy unit works through the whole range, and the step waits on it
// (reports/logs/h100/ab/ab_e2e_prefetch_weights.csv). A prefetch must be spread over many SMs.
// An environment value sets the limit for every model (0: off).
constexpr int kFuseMaxRows = 4;
constexpr int64_t kFuseMaxHidden = 2048;

int decode_fusion_max_rows(const char* env, const ModelConfig& cfg) {
  if (const char* m = std::getenv(env)) return std::max(0, std::atoi(m));
  return cfg.hidden <= kFuseMaxHidden ? kFuseMaxRows : 0;
}

// MINFER_NORM_IN: 1 on, any other value off, unset -1 (the default rule: Model::norm_in_fits).
int norm_in_mode() {
  const char* v = std::getenv("MINFER_NORM_IN");
  return !v ? -1 : std::string(v) == "1" ? 1 : 0;
}

// MINFER_DECODE_PREWAIT=1: in decode steps with the folded-norm QKV GEMV and decode attention's fused
// prologue, the GEMV lets the attention launch only after its own wait (GemvParams::trigger_after_wait)
// and the attention issues its first key copies before its wait (DecodeAttentionParams::prewait).
// Opt-in: H100, one round, faster at p128 and 1.7-2.6% slower at p2048 and p8192 (README). Another value: off.
bool prewait_mode() {
  const char* v = std::getenv("MINFER_DECODE_PREWAIT");
  return v && std::string(v) == "1";
}

// MINFER_NORM_IN_SPLITS=Q,O,G,D and MINFER_NORM_IN_WARP_ROWS=Q,O,G,D (A/B timing): the folded-norm
// GEMVs' splits (QKV, o, gate/up, down; each 1, 2, 4 or 8, gate/up at most 4) and weight rows a warp
// (1 or 2); 0 or unset: the rules (Model::norm_in_params).
std::array<int, 4> four_values(const char* env, const std::vector<std::string>& allowed, const std::string& gate_up_max) {
  std::array<int, 4> s{};
  const char* v = std::getenv(env);
  if (!v) return s;
  const std::string text(v);
  size_t at = 0;
  for (int i = 0; i < 4; ++i) {
    const size_t end = i < 3 ? text.find(',', at) : text.size();
    const std::string item = end == std::string::npos ? "" : text.substr(at, end - at);
    const bool ok = std::find(allowed.begin(), allowed.end(), item) != allowed.end() &&
                    (i != 2 || std::stoi(item) <= std::stoi(gate_up_max));
    if (!ok || end == std::string::npos) {  // a fifth value leaves a comma in the last item
      std::string list;
      for (const std::string& a : allowed) list += (list.empty() ? "" : " ") + a;
      throw UsageError(std::string(env) + ": expected four comma-separated values Q,O,G,D, each of " + list +
                       " (G at most " + gate_up_max + "), got '" + text + "'");
    }
    s[static_cast<size_t>(i)] = std::stoi(item);
    at = end + 1;
  }
  return s;
}

// Also measured and removed (after 6be1193): each decode GEMV's blocks asking L2 for the weights of the
// projection 1 or 2 places later in the step (MINFER_GEMV_PREFETCH_NEXT), spread over every SM. H100,
// bf16, ms/step, one run (reports/logs/h100/ab/ab_e2e_gemv_prefetch_next.csv), default / 1 / 2:
// qwen3-0.6b b1 p128 1.017 / 1.124 / 1.101, qwen2.5-0.5b b1 0.815 / 0.890 / 0.908, llama-3.1-8b b1
// 5.701 / 5.709 / 5.719: the prefetches compete with each GEMV's own reads. So did the folded-norm o
// GEMV, resident while decode attention runs, asking L2 before its pdl_wait for its layer's gate/up
// weights, gate/up and down, or those and the next layer's QKV (MINFER_NORM_IN_L2_AHEAD=gu|gud|gudq,
// GemvParams::l2_ahead: one cp.async.bulk.prefetch.L2 a block, or one prefetch.global.L2 a line): H100,
// b1 p128 ms/step, one round, qwen3-0.6b 0.836 -> 0.904 / 0.920 / 0.921 (lines 0.921), qwen2.5-0.5b
// 0.711 -> 0.764 / 0.783 / 0.791 (reports/logs/h100/ab/ab_e2e_warp_rows_l2_ahead.csv): the traffic
// lengthens the latency-bound attention more than it saves the GEMVs after it. Removed after 760e660.

int fused_decode_max_rows() {
  const char* v = std::getenv("MINFER_FUSED");
  if (v && std::string(v) == "0") return 0;
  const char* m = std::getenv("MINFER_FUSED_MAX_ROWS");
  return m ? std::max(0, std::atoi(m)) : kFusedMaxRows;
}

Model::Model(const ModelConfig& cfg, const TensorSource& src, DType dtype, const RunShape& shape)
    : cfg_(cfg),
      dtype_(dtype),
      shape_(complete_shape(cfg, dtype, shape)),
      fused_max_rows_(fused_decode_max_rows()),
      swiglu_max_rows_(decode_fusion_max_rows("MINFER_GEMV_SWIGLU_MAX_ROWS", cfg)),
      rope_max_rows_(decode_fusion_max_rows("MINFER_FUSED_ROPE_MAX_ROWS", cfg)),
      norm_in_mode_(norm_in_mode()),
      prewait_(prewait_mode()),
      norm_in_splits_(four_values("MINFER_NORM_IN_SPLITS", {"0", "1", "2", "4", "8"}, "4")),
      norm_in_warp_rows_(four_values("MINFER_NORM_IN_WARP_ROWS", {"0", "1", "2"}, "2")),
      step_max_rows_(step_max_rows()) {
  refuse_early(cfg_, dtype_, shape_);
  weights_ = std::make_unique<DeviceWeights>(cfg_, src, dtype_);
  step_layers_ = upload_step_layers(cfg_, *weights_);
  state_ = std::make_unique<RunState>(cfg_, dtype_, shape_, weights_->bytes());
  gemm_ = std::make_unique<Gemm>(state_->gemm_workspace, kGemmWorkspaceBytes);
  MINFER_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
  lens_.assign(static_cast<size_t>(shape_.batch), 0);
}

Model::~Model() {
  if (stream_) cudaStreamDestroy(stream_);
  if (step_layers_) cudaFree(step_layers_);
}

void Model::reshape(const RunShape& requested) {
  check_request(cfg_, requested);
  const RunShape shape = complete_shape(cfg_, dtype_, requested);
  MINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
  gemm_.reset();
  state_.reset();
  state_ = std::make_unique<RunState>(cfg_, dtype_, shape, weights_->bytes());
  gemm_ = std::make_unique<Gemm>(state_->gemm_workspace, kGemmWorkspaceBytes);
  shape_ = shape;
  lens_.assign(static_cast<size_t>(shape_.batch), 0);
  kv_tokens_ = 0;
}

void Model::reset() { std::fill(lens_.begin(), lens_.end(), 0); }

int Model::cached(int seq) const { return lens_.at(static_cast<size_t>(seq)); }

void* Model::kv_layer(void* base, int l) const {
  const uint64_t per_layer = static_cast<uint64_t>(shape_.batch) * static_cast<uint64_t>(shape_.context) *
                             static_cast<uint64_t>(cfg_.kv_dim()) * dtype_size(dtype_);
  return static_cast<uint8_t*>(base) + per_layer * static_cast<uint64_t>(l);
}

void Model::gemm(const char* name, const void* x, int64_t w_off, int64_t b_off, void* y, int64_t rows, int64_t in,
                 int64_t out) {
  const GemmParams p{dtype_, x, weights_->at(w_off), weights_->at(b_off), y, rows, in, out};
  mark_begin();
  MINFER_STATUS_CHECK(gemm_->run(p, stream_));
  mark_end(name, static_cast<double>(out * in + rows * in + rows * out) * static_cast<double>(dtype_size(dtype_)));
}

// a = rmsnorm(x) (residual null), or residual = residual + x; a = rmsnorm(residual).
void Model::norm(const void* x, void* residual, int64_t w_off, int64_t rows) {
  RmsNormParams p;
  p.dtype = dtype_;
  p.x = x;
  p.residual_in = residual;
  p.residual_out = residual;
  p.weight = weights_->at(w_off);
  p.out = state_->a;
  p.rows = rows;
  p.hidden = cfg_.hidden;
  p.eps = static_cast<float>(cfg_.rms_eps);
  mark_begin();
  MINFER_STATUS_CHECK(rmsnorm_forward(p, stream_));
  const double streams = residual ? 4.0 : 2.0;  // x [+ residual in, residual out], a
  mark_end("rmsnorm", (streams * static_cast<double>(rows) + 1.0) * static_cast<double>(cfg_.hidden) *
                          static_cast<double>(dtype_size(dtype_)));
}

// att = attention(q, cache) over each sequence's cached rows (one layer's cache slices), with the
// run's backend; one profiler entry ("attention") whichever kernels run.
void Model::attend(void* k_cache, void* v_cache, int64_t T, int nseq, const QkvRopeParams* rope) {
  mark_begin();
  if (shape_.attention == AttentionBackend::Simple) attend_simple(k_cache, v_cache, T, nseq);
  else if (max_q_ == 0) attend_decode(k_cache, v_cache, nseq, rope);
  else attend_prefill(k_cache, v_cache, nseq);
  const double es = static_cast<double>(dtype_size(dtype_));
  mark_end("attention", static_cast<double>(2 * T * cfg_.q_dim() + 2 * kv_tokens_ * cfg_.kv_dim()) * es);
}

// kernels/attention: ragged queries over each sequence's slot (slot[b], cache_lens[b]).
void Model::attend_simple(void* k_cache, void* v_cache, int64_t T, int nseq) {
  RunState& s = *state_;
  AttentionParams at;
  at.dtype = dtype_;
  at.q = s.q;
  at.k_cache = k_cache;
  at.v_cache = v_cache;
  at.out = s.att;
  at.cu_seqlens = s.cu_seqlens;
  at.cache_lens = s.cache_lens;
  at.slot = s.slot;
  at.batch = nseq;
  at.num_tokens = T;
  at.capacity = shape_.context;
  at.heads = cfg_.heads;
  at.kv_heads = cfg_.kv_heads;
  at.head_dim = cfg_.head_dim;
  MINFER_STATUS_CHECK(attention_forward(at, stream_));
}

// kernels/flash_prefill, reading the cache in place: sequence b (slot b in host-driven forwards) has
// cache_lens[b] keys at rows [b * C, b * C + cache_lens[b]) of the layer's (B, C, nkv, hd) cache; its
// new tokens are the last of them (causal with the cached prefix). A sequence without new tokens
// (an empty run) gets no blocks.
void Model::attend_prefill(void* k_cache, void* v_cache, int nseq) {
  RunState& s = *state_;
  FlashPrefillParams p;
  p.dtype = dtype_;
  p.q = s.q;
  p.k = k_cache;
  p.v = v_cache;
  p.out = s.att;
  p.cu_seqlens_q = s.cu_seqlens;
  p.k_lens = s.cache_lens;
  p.k_seq_stride = shape_.context;
  p.batch = nseq;
  p.max_seqlen_q = max_q_;
  p.heads = cfg_.heads;
  p.kv_heads = cfg_.kv_heads;
  p.head_dim = cfg_.head_dim;
  p.causal = true;
  MINFER_STATUS_CHECK(flash_prefill_forward(p, stream_));
}

// kernels/decode_attention over the contiguous cache: row b's query against cache_lens[b] keys of
// slot b. The split count and workspace were planned (complete_shape), so the launch depends on
// nothing that changes between graph replays. A padding or finished row (slot < 0) reads its slot's
// rows as they are; its output is never used (its q is zero, its logits are ignored).
void Model::attend_decode(void* k_cache, void* v_cache, int rows, const QkvRopeParams* rope) {
  MINFER_STATUS_CHECK(decode_attention_forward(decode_params(k_cache, v_cache, rows, rope), stream_));
}

// The decode attention launch of attend_decode, with the fused prologue when rope is set.
DecodeAttentionParams Model::decode_params(void* k_cache, void* v_cache, int rows, const QkvRopeParams* rope) const {
  RunState& s = *state_;
  DecodeAttentionParams p;
  p.dtype = dtype_;
  p.q = s.q;
  p.k_cache = k_cache;
  p.v_cache = v_cache;
  p.out = s.att;
  p.cache_lens = s.cache_lens;
  p.batch = rows;
  p.heads = cfg_.heads;
  p.kv_heads = cfg_.kv_heads;
  p.head_dim = cfg_.head_dim;
  p.max_len = shape_.context;
  p.max_kv_len = shape_.context;
  p.num_splits = shape_.decode_splits;
  p.cluster = shape_.decode_cluster ? 1 : 0;
  p.workspace = s.attn_workspace;
  p.workspace_bytes = shape_.decode_workspace_bytes;
  if (rope) p.rope = *rope;
  // The QKV GEMV just before let this launch only after its own wait (enqueue_layer).
  p.prewait = prewait_ && norm_in_ && rope ? 1 : 0;
  p.trace = decode_attention_trace_buffer();
  return p;
}

// One fused decode GEMV (kernels/gemv.h) of layer l: which = 1 o (residual epilogue into res, then
// a = ffn_norm(res)), 2 gate/up (SwiGLU epilogue), 3 down (residual epilogue into res, then a = the
// next layer's attention norm of res, or the final norm after the last layer).
GemvParams Model::fused_params(int which, int l, int64_t rows) const {
  RunState& s = *state_;
  const auto& layers = weights_->layout().layers;
  const LayerLayout& L = layers[static_cast<size_t>(l)];
  const int64_t H = cfg_.hidden, Q = cfg_.q_dim(), I = cfg_.intermediate;
  GemvParams p;
  p.dtype = dtype_;
  p.rows = rows;
  p.norm_eps = static_cast<float>(cfg_.rms_eps);
  if (which == 2) {
    p.x = s.a, p.w = weights_->at(L.wgu), p.swiglu = true, p.y = s.act, p.in = H, p.out = I;
    return p;
  }
  p.x = which == 1 ? s.att : s.act;
  p.w = weights_->at(which == 1 ? L.wo : L.wdown);
  p.in = which == 1 ? Q : I;
  p.y = s.res, p.residual = s.res, p.out = H;
  p.norm_out = s.a;
  p.counters = s.gemv_counters;
  const bool last = l + 1 == cfg_.layers;
  p.norm_weight = weights_->at(which == 1   ? L.ffn_norm
                               : last       ? weights_->layout().final_norm
                                            : layers[static_cast<size_t>(l + 1)].attn_norm);
  return p;
}

// The single-row decode GEMVs with the RMSNorms folded in (kernels/gemv.h, GemvParams::in_norm_weight)
// of layer l: which = 0 QKV (+ bias) of attn_norm(res), 1 o (residual epilogue into res), 2 gate/up
// (SwiGLU) of ffn_norm(res), 3 down (residual epilogue into res).
GemvParams Model::norm_in_params(int which, int l) const {
  RunState& s = *state_;
  const LayerLayout& L = weights_->layout().layers[static_cast<size_t>(l)];
  const int64_t H = cfg_.hidden, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), I = cfg_.intermediate;
  GemvParams p;
  p.dtype = dtype_;
  p.rows = 1;
  p.in_norm_eps = static_cast<float>(cfg_.rms_eps);
  switch (which) {
    case 0:
      p.x = s.res, p.w = weights_->at(L.wqkv), p.bias = weights_->at(L.bqkv), p.y = s.qkv, p.in = H, p.out = Q + 2 * KV;
      p.in_norm_weight = weights_->at(L.attn_norm);
      break;
    case 1: p.x = s.att, p.w = weights_->at(L.wo), p.y = s.res, p.residual = s.res, p.in = Q, p.out = H; break;
    case 2:
      p.x = s.res, p.w = weights_->at(L.wgu), p.swiglu = true, p.y = s.act, p.in = H, p.out = I;
      p.in_norm_weight = weights_->at(L.ffn_norm);
      break;
    default: p.x = s.act, p.w = weights_->at(L.wdown), p.y = s.res, p.residual = s.res, p.in = I, p.out = H; break;
  }
  // Weight rows a warp: MINFER_NORM_IN_WARP_ROWS, else one, or two where only two fit the grid in one
  // resident wave (qwen3-0.6b's gate/up: 384 blocks for 768). H100, bf16 e2e b1 ms/step, two rounds
  // (reports/logs/h100/ab/ab_e2e_warp_rows_default.csv), one row everywhere / this rule: qwen3-0.6b p128
  // 0.835 / 0.800, p2048 1.076 / 1.019; qwen2.5-0.5b's gate/up (1216 blocks at one, 608 at two: neither
  // fits, left at one; 0.711 -> 0.717 at two, one round, ab_e2e_warp_rows_l2_ahead.csv). The QKV, o and
  // down at two with splits 1, 4, 4: qwen3 0.856 against 0.836.
  p.warp_rows = norm_in_warp_rows_[which] > 0 ? norm_in_warp_rows_[which] : gemv_one_wave_warp_rows(p);
  p.split = norm_in_splits_[which] > 0 ? norm_in_splits_[which] : gemv_one_wave_split(p);
  return p;
}

// Whether a decode step of `rows` rows takes the folded-norm GEMVs: one row of a model at most
// kFuseMaxHidden wide (MINFER_NORM_IN=1: any width, 0: never), every layer shape supported. Each takes
// the one-wave split (gemv_one_wave_split), not the default split: at qwen3-0.6b's QKV the default
// runs 1024 blocks, two waves of the 4 an SM, and the second wave loads its weights after pdl_wait.
// H100, bf16 e2e b1 p128 ms/step, two rounds, off / on: at 09219ab (this rule) qwen3-0.6b 0.858, 0.867 /
// 0.850, 0.851, qwen2.5-0.5b 0.755, 0.758 / 0.714, 0.713 (reports/logs/h100/ab/ab_e2e_normin_default.csv);
// at 5eaade3 (the GEMM tuner's splits) llama-3.1-8b 5.620 / 5.848 (ab_e2e_normin.csv): wide models keep
// the RMSNorm kernels.
bool Model::norm_in_fits(int64_t rows) const {
  const int mode = norm_in_mode_;
  if (mode == 0 || (mode < 0 && cfg_.hidden > kFuseMaxHidden) || rows != 1 || cfg_.layers < 1) return false;
  for (int which = 0; which <= 3; ++which)
    if (!gemv_fused_supports(norm_in_params(which, 0))) return false;
  return true;
}

bool Model::fused_fits(int64_t rows) const {
  if (rows > fused_max_rows_ || cfg_.layers < 1) return false;
  for (int which = 1; which <= 3; ++which)
    if (!gemv_fused_supports(fused_params(which, 0, rows))) return false;
  return true;
}

void Model::fused_gemv(const char* name, const GemvParams& p) {
  const double es = static_cast<double>(dtype_size(dtype_));
  const double w_rows = static_cast<double>(p.swiglu ? 2 * p.out : p.out);
  const double streams = static_cast<double>(p.rows) * (static_cast<double>(p.in) + (p.residual ? 3.0 : 1.0) *
                                                                                         static_cast<double>(p.out));
  mark_begin();
  MINFER_STATUS_CHECK(gemv_fused_forward(p, stream_));
  mark_end(name, (w_rows * static_cast<double>(p.in) + streams) * es);
}

void Model::enqueue_layer(int l, int64_t T, int nseq) {
  const LayerLayout& L = weights_->layout().layers[static_cast<size_t>(l)];
  RunState& s = *state_;
  const int64_t H = cfg_.hidden, Q = cfg_.q_dim(), KV = cfg_.kv_dim(), I = cfg_.intermediate;
  const double es = static_cast<double>(dtype_size(dtype_));
  // Fused, a = attn_norm(res) came from the previous layer's down GEMV; norm_in_, the QKV GEMV folds it.
  if (norm_in_) {
    GemvParams qkv = norm_in_params(0, l);
    qkv.trigger_after_wait = prewait_;  // what decode_params' prewait relies on
    fused_gemv("gemv.qkv+norm", qkv);
  }
  else if (l == 0) norm(s.res, nullptr, L.attn_norm, T);
  else if (!fused_) norm(s.y, s.res, L.attn_norm, T);
  if (!norm_in_) gemm("gemm.qkv", s.a, L.wqkv, L.bqkv, s.qkv, T, H, Q + 2 * KV);
  QkvRopeParams r;
  r.dtype = dtype_;
  r.qkv = s.qkv;
  r.q_out = s.q;
  r.k_cache = kv_layer(s.k_cache, l);
  r.v_cache = kv_layer(s.v_cache, l);
  r.positions = s.positions;
  r.token_slot = s.token_slot;
  r.cos_sin = s.cos_sin;
  r.q_norm = weights_->at(L.q_norm);
  r.k_norm = weights_->at(L.k_norm);
  r.norm_eps = static_cast<float>(cfg_.rms_eps);
  r.num_tokens = T;
  r.max_positions = shape_.context;
  r.capacity = shape_.context;
  r.heads = cfg_.heads;
  r.kv_heads = cfg_.kv_heads;
  r.head_dim = cfg_.head_dim;
  // Small decode steps leave this step to decode attention's prologue (rope_max_rows_, above).
  const bool fuse_rope = max_q_ == 0 && T <= rope_max_rows_ && shape_.attention != AttentionBackend::Simple &&
                         decode_attention_rope_fits(decode_params(r.k_cache, r.v_cache, nseq, &r));
  if (!fuse_rope) {
    mark_begin();
    MINFER_STATUS_CHECK(qkv_rope_cache_forward(r, stream_));
    mark_end("qkv_rope_cache", static_cast<double>(T * (2 * Q + 4 * KV)) * es);
  }
  attend(r.k_cache, r.v_cache, T, nseq, fuse_rope ? &r : nullptr);
  if (fused_) {
    fused_gemv("gemv.o+residual+norm", fused_params(1, l, T));
    fused_gemv("gemv.gate_up+swiglu", fused_params(2, l, T));
    fused_gemv("gemv.down+residual+norm", fused_params(3, l, T));
    return;
  }
  if (norm_in_) {  // the residual adds in the o and down GEMVs, the FFN norm folded into gate/up
    fused_gemv("gemv.o+residual", norm_in_params(1, l));
    fused_gemv("gemv.gate_up+norm+swiglu", norm_in_params(2, l));
    fused_gemv("gemv.down+residual", norm_in_params(3, l));
    return;
  }
  gemm("gemm.o", s.att, L.wo, -1, s.y, T, Q, H);
  norm(s.y, s.res, L.ffn_norm, T);
  // Decode rows whose gate/up projection takes the GEMV with the SwiGLU epilogue (kernels/gemv.h; small
  // steps by default, swiglu_max_rows_ above, or a single row in the opt-in slice form): one launch fewer.
  if (max_q_ == 0) {
    GemvParams gu = fused_params(2, l, T);
    if ((T <= swiglu_max_rows_ && gemv_fused_supports(gu)) || (T == 1 && gemv_slice_applies(gu))) {
      fused_gemv("gemv.gate_up+swiglu", gu);
      gemm("gemm.down", s.act, L.wdown, -1, s.y, T, I, H);
      return;
    }
  }
  gemm("gemm.gate_up", s.a, L.wgu, -1, s.gu, T, H, 2 * I);
  const SwigluParams sw{dtype_, s.gu, s.act, T, I, 2 * I, I};
  mark_begin();
  MINFER_STATUS_CHECK(swiglu_forward(sw, stream_));
  mark_end("swiglu", static_cast<double>(3 * T * I) * es);
  gemm("gemm.down", s.act, L.wdown, -1, s.y, T, I, H);
}

void Model::enqueue_body(int64_t T, int nseq) {
  RunState& s = *state_;
  const EmbeddingParams e{dtype_, s.ids, weights_->at(weights_->layout().embed), s.res, T, cfg_.vocab, cfg_.hidden};
  mark_begin();
  MINFER_STATUS_CHECK(embedding_forward(e, stream_));
  mark_end("embedding", static_cast<double>(2 * T * cfg_.hidden) * static_cast<double>(dtype_size(dtype_)));
  for (int l = 0; l < cfg_.layers; ++l) enqueue_layer(l, T, nseq);
  if (norm_in_) norm(s.res, nullptr, weights_->layout().final_norm, T);  // res is whole: the down GEMV added
  else if (!fused_) norm(s.y, s.res, weights_->layout().final_norm, T);   // fused: the last down GEMV did it
}

void Model::enqueue_logits(const void* x, int64_t rows) {
  gemm("gemm.lm_head", x, weights_->layout().lm_head, -1, state_->logits, rows, cfg_.hidden, cfg_.vocab);
}

// host: [ids T | positions T | token_slot T | cu_seqlens nseq+1 | cache_lens nseq | slot nseq].
void Model::upload_indices(const std::vector<int32_t>& host, int64_t T, int nseq) {
  RunState& s = *state_;
  std::copy(host.begin(), host.end(), s.host_index);
  const size_t t = static_cast<size_t>(T) * 4, n = static_cast<size_t>(nseq) * 4;
  const int32_t* h = s.host_index;
  MINFER_CUDA_CHECK(cudaMemcpyAsync(s.ids, h, t, cudaMemcpyHostToDevice, stream_));
  MINFER_CUDA_CHECK(cudaMemcpyAsync(s.positions, h + T, t, cudaMemcpyHostToDevice, stream_));
  MINFER_CUDA_CHECK(cudaMemcpyAsync(s.token_slot, h + 2 * T, t, cudaMemcpyHostToDevice, stream_));
  MINFER_CUDA_CHECK(cudaMemcpyAsync(s.cu_seqlens, h + 3 * T, n + 4, cudaMemcpyHostToDevice, stream_));
  MINFER_CUDA_CHECK(cudaMemcpyAsync(s.cache_lens, h + 3 * T + nseq + 1, n, cudaMemcpyHostToDevice, stream_));
  MINFER_CUDA_CHECK(cudaMemcpyAsync(s.slot, h + 3 * T + 2 * nseq + 1, n, cudaMemcpyHostToDevice, stream_));
  MINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the staging buffer is reused by the next call
}

int64_t Model::forward_device(const std::vector<std::vector<int32_t>>& tokens, bool all_logits) {
  const int nseq = static_cast<int>(tokens.size());
  if (nseq < 1 || nseq > shape_.batch)
    throw UsageError("forward: " + std::to_string(nseq) + " sequences, the run was planned for batch " +
                     std::to_string(shape_.batch));
  if (all_logits && !shape_.all_logits) throw UsageError("forward: all-token logits were not planned for this run");
  std::vector<int32_t> ids, pos, tslot, cu{0}, lens, slot;
  for (int b = 0; b < nseq; ++b) {
    const auto& tk = tokens[static_cast<size_t>(b)];
    const int end = lens_[static_cast<size_t>(b)] + static_cast<int>(tk.size());
    if (end > shape_.context)
      throw UsageError("forward: sequence " + std::to_string(b) + " would hold " + std::to_string(end) +
                       " tokens, past the planned context of " + std::to_string(shape_.context));
    for (size_t i = 0; i < tk.size(); ++i) {
      ids.push_back(tk[i]);
      pos.push_back(lens_[static_cast<size_t>(b)] + static_cast<int>(i));
      tslot.push_back(b);
    }
    cu.push_back(static_cast<int32_t>(ids.size()));
    lens.push_back(end);
    slot.push_back(b);
  }
  const int64_t T = static_cast<int64_t>(ids.size());
  if (T < 1 || T > state_->rows())
    throw UsageError("forward: " + std::to_string(T) + " tokens in one pass, the run was planned for at most " +
                     std::to_string(state_->rows()));
  std::vector<int32_t> host = ids;
  for (const auto* v : {&pos, &tslot, &cu, &lens, &slot}) host.insert(host.end(), v->begin(), v->end());
  upload_indices(host, T, nseq);
  kv_tokens_ = 0;
  for (int32_t n : lens) kv_tokens_ += n;
  max_q_ = 0;
  for (const auto& tk : tokens) max_q_ = std::max(max_q_, static_cast<int>(tk.size()));
  enqueue_body(T, nseq);
  int64_t rows = T;
  if (!all_logits) {  // gather each sequence's last row of a into y, then the head over those rows
    const size_t row_bytes = static_cast<size_t>(cfg_.hidden) * dtype_size(dtype_);
    rows = 0;
    for (int b = 0; b < nseq; ++b) {
      if (cu[static_cast<size_t>(b) + 1] == cu[static_cast<size_t>(b)]) continue;
      const auto* src = static_cast<const uint8_t*>(state_->a) + static_cast<size_t>(cu[static_cast<size_t>(b) + 1] - 1) * row_bytes;
      auto* dst = static_cast<uint8_t*>(state_->y) + static_cast<size_t>(rows++) * row_bytes;
      MINFER_CUDA_CHECK(cudaMemcpyAsync(dst, src, row_bytes, cudaMemcpyDeviceToDevice, stream_));
    }
  }
  enqueue_logits(all_logits ? state_->a : state_->y, rows);
  for (int b = 0; b < nseq; ++b) lens_[static_cast<size_t>(b)] = lens[static_cast<size_t>(b)];
  return rows;
}

std::vector<float> Model::forward(const std::vector<std::vector<int32_t>>& tokens) {
  return logits_host(forward_device(tokens, shape_.all_logits));
}

std::vector<float> Model::logits_host(int64_t rows) {
  if (rows < 0 || rows > state_->logit_rows())
    throw UsageError("logits: " + std::to_string(rows) + " rows asked, the buffer holds " +
                     std::to_string(state_->logit_rows()));
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cfg_.vocab);
  std::vector<uint8_t> raw(n * dtype_size(dtype_));
  MINFER_CUDA_CHECK(cudaMemcpyAsync(raw.data(), state_->logits, raw.size(), cudaMemcpyDeviceToHost, stream_));
  MINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::vector<float> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = load_as(dtype_, raw.data(), i);
  return out;
}

DecodeStepParams Model::step_params(int rows) const {
  const RunState& s = *state_;
  const WeightLayout& w = weights_->layout();
  DecodeStepParams p;
  p.dtype = dtype_;
  p.rows = rows;
  p.hidden = static_cast<int>(cfg_.hidden);
  p.heads = cfg_.heads;
  p.kv_heads = cfg_.kv_heads;
  p.head_dim = cfg_.head_dim;
  p.intermediate = static_cast<int>(cfg_.intermediate);
  p.vocab = static_cast<int>(cfg_.vocab);
  p.layers = cfg_.layers;
  p.eps = static_cast<float>(cfg_.rms_eps);
  p.layers_dev = static_cast<const DecodeStepLayer*>(step_layers_);
  p.embed = weights_->at(w.embed);
  p.final_norm = weights_->at(w.final_norm);
  p.lm_head = weights_->at(w.lm_head);
  p.ids = s.ids;
  p.positions = s.positions;
  p.token_slot = s.token_slot;
  p.cache_lens = s.cache_lens;
  p.cos_sin = s.cos_sin;
  p.max_positions = shape_.context;
  p.k_cache = s.k_cache;
  p.v_cache = s.v_cache;
  p.layer_stride = static_cast<int64_t>(shape_.batch) * shape_.context * cfg_.kv_dim();
  p.capacity = shape_.context;
  p.res = s.res;
  p.qkv = s.qkv;
  p.att = s.att;
  p.act = s.act;
  p.logits = s.logits;
  p.workspace = s.step_workspace;
  p.workspace_bytes = shape_.step_workspace_bytes;
  p.max_splits = kDecodeStepMaxSplits;
  p.trace = step_trace_;
  return p;
}

bool Model::step_fits(int rows) const {
  if (rows > step_max_rows_ || shape_.attention != AttentionBackend::Flash || !state_->step_workspace ||
      !step_layers_)
    return false;
  return decode_step_supported(step_params(rows));
}

void Model::enqueue_decode(int rows) {
  max_q_ = 0;  // one token per row: the decode kernels
  if (step_fits(rows)) {
    const DecodeStepParams p = step_params(rows);
    mark_begin();
    MINFER_STATUS_CHECK(decode_step_forward(p, stream_));
    // Weights streamed (all but an untied embedding table, read only at the rows' ids) and KV read.
    const double es = static_cast<double>(dtype_size(dtype_));
    const WeightLayout& w = weights_->layout();
    const double table = w.lm_head == w.embed ? 0.0 : static_cast<double>(cfg_.vocab * cfg_.hidden);
    mark_end("decode_step", static_cast<double>(weights_->bytes()) - table * es +
                                2.0 * static_cast<double>(cfg_.layers) * static_cast<double>(kv_tokens_) *
                                    static_cast<double>(cfg_.kv_dim()) * es);
    return;
  }
  fused_ = fused_fits(rows);
  norm_in_ = !fused_ && norm_in_fits(rows);
  enqueue_body(rows, rows);
  enqueue_logits(state_->a, rows);
  fused_ = false;
  norm_in_ = false;
}

void Model::prepare_decode(int rows, const std::vector<bool>& finished) {
  const int B = static_cast<int>(finished.size());
  if (rows < B || rows > state_->decode_rows() || B > shape_.batch)
    throw UsageError("decode: " + std::to_string(rows) + " rows for " + std::to_string(B) +
                     " sequences, the run was planned for " + std::to_string(state_->decode_rows()));
  std::vector<int32_t> ids(static_cast<size_t>(rows)), pos(ids.size()), tslot(ids.size()), cu{0}, lens(ids.size());
  for (int b = 0; b < rows; ++b) {
    const bool live = b < B && !finished[static_cast<size_t>(b)];
    const int len = b < B ? lens_[static_cast<size_t>(b)] : 0;
    if (live && len + 1 > shape_.context)
      throw UsageError("decode: sequence " + std::to_string(b) + " is at the planned context of " +
                       std::to_string(shape_.context));
    pos[static_cast<size_t>(b)] = len;
    lens[static_cast<size_t>(b)] = len + 1;
    tslot[static_cast<size_t>(b)] = live ? b : -1;
    cu.push_back(b + 1);
  }
  RunState& s = *state_;
  MINFER_CUDA_CHECK(cudaMemcpyAsync(s.host_ids, s.ids, static_cast<size_t>(rows) * 4, cudaMemcpyDeviceToHost, stream_));
  MINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::copy(s.host_ids, s.host_ids + rows, ids.begin());  // keep the sampled ids: upload_indices rewrites ids
  std::vector<int32_t> host = ids;
  for (const auto* v : {&pos, &tslot, &cu, &lens, &tslot}) host.insert(host.end(), v->begin(), v->end());
  upload_indices(host, rows, rows);
  kv_tokens_ = 0;
  for (int b = 0; b < rows; ++b) kv_tokens_ += tslot[static_cast<size_t>(b)] >= 0 ? lens[static_cast<size_t>(b)] : 0;
}

void Model::finish_row(int b) {
  RunState& s = *state_;
  MINFER_CUDA_CHECK(cudaMemsetAsync(s.slot + b, 0xff, 4, stream_));  // -1
  MINFER_CUDA_CHECK(cudaMemsetAsync(s.token_slot + b, 0xff, 4, stream_));
}

void Model::note_decoded(const std::vector<bool>& finished) {
  for (size_t b = 0; b < finished.size(); ++b) {
    if (!finished[b]) ++lens_[b];
  }
}

}  // namespace minfer
