// engine/core/plan.h: host-side planning for the CUDA engine, with no CUDA in it (so CPU tests cover
// it): the device weight layout (one allocation, fused QKV and gate/up slices), KV cache sizing, the
// memory plan (weights, KV cache, workspace) and its refusal before any allocation, decode batch
// buckets, sampler parameter checks, the attention backend choice, and the RoPE table.
// Legend (engine/core/config.h): H hidden, I intermediate, L layers, V vocab, nh/nkv heads,
// hd head_dim, B batch (sequences), C context (tokens per sequence), T tokens in one forward.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/dtype.h"

namespace minfer {

// Element offsets of one layer's weights inside the single device allocation (-1: absent).
struct LayerLayout {
  int64_t attn_norm = -1;  // (H)
  int64_t wqkv = -1;       // (nh*hd + 2*nkv*hd, H): rows of wq, then wk, then wv
  int64_t bqkv = -1;       // (nh*hd + 2*nkv*hd) or -1 without attention bias
  int64_t q_norm = -1;     // (hd) per-head QK-norm (qwen3) or -1
  int64_t k_norm = -1;     // (hd) or -1
  int64_t wo = -1;         // (H, nh*hd)
  int64_t ffn_norm = -1;   // (H)
  int64_t wgu = -1;        // (2*I, H): rows of gate, then up
  int64_t wdown = -1;      // (H, I)
};

struct WeightLayout {
  DType dtype = DType::BF16;
  int64_t embed = -1;       // (V, H)
  int64_t final_norm = -1;  // (H)
  int64_t lm_head = -1;     // (V, H); equals embed when the embeddings are tied
  std::vector<LayerLayout> layers;
  int64_t total_elems = 0;  // size of the allocation in elements of dtype
  uint64_t bytes() const { return static_cast<uint64_t>(total_elems) * dtype_size(dtype); }
};

// Where an engine slot of weight_map() ("embed", "layers.3.wk", ...) lands: element offset and count.
struct SlotPlace {
  int64_t offset = 0;
  int64_t count = 0;
};

// Slices aligned to kWeightAlignElems elements (at least 256 bytes in every dtype).
constexpr int64_t kWeightAlignElems = 128;

// Dense families only (llama, qwen2, qwen3); throws UsageError for MoE or unsupported head_dim.
WeightLayout plan_weights(const ModelConfig& cfg, DType dtype);
// Throws UsageError for a slot this layout does not hold.
SlotPlace place_of(const ModelConfig& cfg, const WeightLayout& w, const std::string& slot);

// Attention kernels the engine calls. simple: kernels/attention (one kernel for prefill and decode).
// flash: kernels/flash_prefill for host-driven forwards (ragged new tokens over each sequence's
// cached prefix) and kernels/decode_attention (split-KV) for decode steps; head_dim 16, 32, 64, 128.
enum class AttentionBackend { Simple, Flash };
const char* attention_backend_name(AttentionBackend a);  // "simple", "flash"
// "simple" / "flash"; throws UsageError naming `flag` and the choices otherwise.
AttentionBackend parse_attention_backend(const std::string& flag, const std::string& value);
// The CLI's --attention: "auto" (the default) is flash where the model's head_dim is one the flash
// kernels hold, else simple; "simple" and "flash" as parse_attention_backend.
AttentionBackend choose_attention_backend(const std::string& flag, const std::string& value, int head_dim);
bool flash_supports_head_dim(int head_dim);

// The request the run state is sized for.
struct RunShape {
  int batch = 1;               // B sequences
  int context = 0;             // C: cache tokens per sequence (longest prompt + new tokens)
  int max_prefill_tokens = 0;  // most tokens in one forward (sum of prompt lengths)
  bool all_logits = false;     // logits for every prefill token (tests), else one row per sequence
  AttentionBackend attention = AttentionBackend::Flash;  // measured faster everywhere (reports/data/h200/e2e.csv)
  // flash only, filled in by the engine (engine/model/model.cpp) from the device, B and C before the
  // plan: KV splits of every decode step (one count for all buckets <= B, chosen from the bucket's
  // max context C, so a captured graph stays valid while the caches grow), and the split workspace
  // it needs for B rows (decode_attention_workspace_bytes). Both 0 with the simple backend.
  int decode_splits = 0;
  uint64_t decode_workspace_bytes = 0;
  // flash only, filled in by the engine: the decode splits are merged in thread-block clusters
  // (DecodeAttentionParams::cluster) instead of by the combine launch.
  bool decode_cluster = false;
  // flash only, filled in by the engine: the whole-step decode kernel's workspace (kernels/decode_step.h:
  // its grid-barrier word and split partials for min(B, 4) rows); 0 when the kernel cannot serve the run.
  uint64_t step_workspace_bytes = 0;
};

constexpr int kMaxBatch = 1024;
constexpr uint64_t kGemmWorkspaceBytes = 32ull << 20;
// kernels/sampling's sample_workspace_bytes(rows) (a ticket a row, 16-byte aligned, then 128 (max, id)
// pairs of 8 bytes a row); sample_forward refuses a smaller workspace, naming the field.
inline uint64_t sample_workspace_bytes_for(int64_t rows) {
  return (static_cast<uint64_t>(rows) * 4 + 15) / 16 * 16 + static_cast<uint64_t>(rows) * 128 * 8;
}

// K and V for every layer, sequence and position: 2 * L * B * C * nkv * hd * sizeof(dtype).
uint64_t kv_cache_bytes(const ModelConfig& cfg, DType dtype, int batch, int context);

struct MemoryPlan {
  uint64_t weights = 0;      // the one weight allocation
  uint64_t kv_cache = 0;     // K and V
  uint64_t workspace = 0;    // activations, logits, index buffers, RoPE table, GEMM workspace
  uint64_t total() const { return weights + kv_cache + workspace; }
};

// Rows the activation buffers hold: max(prefill tokens, decode bucket).
int64_t activation_rows(const RunShape& s);
// Rows of the logits buffer.
int64_t logit_rows(const RunShape& s);
// Rows the sampler takes at most (a prefill's last rows, or a decode bucket): the largest batch bucket.
int64_t sample_rows(const RunShape& s);
// Byte offsets of the run state's buffers inside its one workspace allocation (256-byte aligned).
// Tm = activation_rows, Q = nh*hd, KV = nkv*hd; shapes as engine/model/run_state.h.
struct WorkspaceLayout {
  uint64_t res = 0, a = 0, y = 0;    // (Tm, H) each
  uint64_t qkv = 0;                  // (Tm, Q + 2 KV)
  uint64_t q = 0, att = 0;           // (Tm, Q) each
  uint64_t gu = 0, act = 0;          // (Tm, 2I), (Tm, I)
  uint64_t logits = 0;               // (logit_rows, V)
  uint64_t ids = 0, positions = 0, token_slot = 0, cu_seqlens = 0, cache_lens = 0, slot = 0;  // int32 (Tm [+1])
  uint64_t counters = 0;             // uint64 (Tm)
  uint64_t gemv_counters = 0;        // uint32 (ceil(Tm / 16)): the fused GEMV's norm epilogue, kept zero
  uint64_t sample = 0;               // sample_workspace_bytes_for(sample_rows): the many-block argmax, kept zero
  uint64_t cos_sin = 0;              // fp32 (C, hd/2, 2)
  uint64_t attn = 0;                 // flash decode split workspace: RunShape::decode_workspace_bytes (may be 0)
  uint64_t step = 0;                 // whole-step decode kernel: RunShape::step_workspace_bytes (may be 0), zeroed
  uint64_t gemm = 0;                 // kGemmWorkspaceBytes
  uint64_t bytes = 0;                // total
};
WorkspaceLayout plan_workspace(const ModelConfig& cfg, DType dtype, const RunShape& s);
uint64_t workspace_bytes(const ModelConfig& cfg, DType dtype, const RunShape& s);

// Checks batch, context against max_position_embeddings, and (flash) the head_dim the flash kernels
// hold; throws UsageError naming the limit.
void check_request(const ModelConfig& cfg, const RunShape& s);
MemoryPlan plan_memory(const ModelConfig& cfg, DType dtype, const RunShape& s);
// Throws UsageError naming the KV cache size, the request and the free memory when the plan does not fit.
void check_fits(const MemoryPlan& plan, const RunShape& s, uint64_t free_bytes);

// Decode batch buckets: powers of two up to max_batch, then max_batch itself. bucket_for(n) is the
// smallest bucket >= n (throws UsageError past max_batch).
std::vector<int> batch_buckets(int max_batch);
int bucket_for(int n, int max_batch);

// Sampling: temperature 0 is greedy (argmax, ties to the lowest id). top_k 0 = off, top_p 1 = off.
struct SamplerConfig {
  float temperature = 0.0f;
  int top_k = 0;
  float top_p = 1.0f;
  uint64_t seed = 0;
};
// Throws UsageError naming the flag (--temperature, --top-k, --top-p).
void validate_sampler(const SamplerConfig& s, int vocab);

std::string mib_str(uint64_t bytes);  // "12.3 MiB"

// The RoPE cos/sin table the kernels read: built in double (HF inverse frequencies, llama3 scaling
// when configured), stored fp32. Layout (P, hd/2, 2) for positions p < P.
std::vector<float> rope_table(const ModelConfig& cfg, int64_t positions);

}  // namespace minfer
