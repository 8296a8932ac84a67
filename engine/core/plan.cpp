// engine/core/plan.cpp: device weight layout, KV cache sizing, memory plan and refusals, batch
// buckets, sampler checks (see plan.h). Legend as in plan.h.
#include "engine/core/plan.h"

#include "engine/core/rope_freq.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "engine/core/error.h"

namespace minfer {
namespace {

int64_t align_up(int64_t n) { return (n + kWeightAlignElems - 1) / kWeightAlignElems * kWeightAlignElems; }

// Hands out aligned slices of one allocation.
struct Bump {
  int64_t next = 0;
  int64_t take(int64_t n) {
    const int64_t at = next;
    next = align_up(next + n);
    return at;
  }
};

void check_dense(const ModelConfig& c) {
  if (c.is_moe())
    throw UsageError("cuda engine: model_type " + c.model_type + " is mixture-of-experts; this engine runs dense "
                     "llama, qwen2 and qwen3 models only");
  if (c.qk_norm == QkNorm::Full) throw UsageError("cuda engine: full-width QK-norm (olmoe) is not supported");
  if (c.head_dim % 2 != 0 || c.head_dim > 256)
    throw UsageError("cuda engine: head_dim " + std::to_string(c.head_dim) + " unsupported (even, at most 256)");
}

LayerLayout plan_layer(const ModelConfig& c, Bump& b) {
  const int64_t H = c.hidden, I = c.intermediate, qkv = c.q_dim() + 2 * c.kv_dim();
  LayerLayout l;
  l.attn_norm = b.take(H);
  l.wqkv = b.take(qkv * H);
  if (c.attention_bias) l.bqkv = b.take(qkv);
  if (c.qk_norm == QkNorm::PerHead) {
    l.q_norm = b.take(c.head_dim);
    l.k_norm = b.take(c.head_dim);
  }
  l.wo = b.take(H * c.q_dim());
  l.ffn_norm = b.take(H);
  l.wgu = b.take(2 * I * H);
  l.wdown = b.take(H * I);
  return l;
}

int parse_layer(const std::string& slot, std::string& name) {  // "layers.3.wq" -> 3, name "wq"
  const size_t dot = slot.find('.', 7);
  if (slot.rfind("layers.", 0) != 0 || dot == std::string::npos) return -1;
  name = slot.substr(dot + 1);
  return std::stoi(slot.substr(7, dot - 7));
}

SlotPlace layer_place(const ModelConfig& c, const LayerLayout& l, const std::string& name) {
  const int64_t H = c.hidden, I = c.intermediate, q = c.q_dim(), kv = c.kv_dim();
  if (name == "attn_norm") return {l.attn_norm, H};
  if (name == "wq") return {l.wqkv, q * H};
  if (name == "wk") return {l.wqkv + q * H, kv * H};
  if (name == "wv") return {l.wqkv + (q + kv) * H, kv * H};
  if (name == "bq" && l.bqkv >= 0) return {l.bqkv, q};
  if (name == "bk" && l.bqkv >= 0) return {l.bqkv + q, kv};
  if (name == "bv" && l.bqkv >= 0) return {l.bqkv + q + kv, kv};
  if (name == "q_norm" && l.q_norm >= 0) return {l.q_norm, c.head_dim};
  if (name == "k_norm" && l.k_norm >= 0) return {l.k_norm, c.head_dim};
  if (name == "wo") return {l.wo, H * q};
  if (name == "ffn_norm") return {l.ffn_norm, H};
  if (name == "w_gate") return {l.wgu, I * H};
  if (name == "w_up") return {l.wgu + I * H, I * H};
  if (name == "w_down") return {l.wdown, H * I};
  return {-1, 0};
}

}  // namespace

WeightLayout plan_weights(const ModelConfig& c, DType dtype) {
  check_dense(c);
  WeightLayout w;
  w.dtype = dtype;
  Bump b;
  const int64_t VH = static_cast<int64_t>(c.vocab) * c.hidden;
  w.embed = b.take(VH);
  for (int l = 0; l < c.layers; ++l) w.layers.push_back(plan_layer(c, b));
  w.final_norm = b.take(c.hidden);
  w.lm_head = c.tie_embeddings ? w.embed : b.take(VH);
  w.total_elems = b.next;
  return w;
}

SlotPlace place_of(const ModelConfig& c, const WeightLayout& w, const std::string& slot) {
  const int64_t VH = static_cast<int64_t>(c.vocab) * c.hidden;
  SlotPlace p{-1, 0};
  std::string name;
  if (slot == "embed") p = {w.embed, VH};
  else if (slot == "final_norm") p = {w.final_norm, c.hidden};
  else if (slot == "lm_head" && !c.tie_embeddings) p = {w.lm_head, VH};
  else if (int l = parse_layer(slot, name); l >= 0 && l < static_cast<int>(w.layers.size()))
    p = layer_place(c, w.layers[static_cast<size_t>(l)], name);
  if (p.offset < 0) throw UsageError("cuda engine: weight slot " + slot + " has no place in the device layout");
  return p;
}

uint64_t kv_cache_bytes(const ModelConfig& c, DType dtype, int batch, int context) {
  return 2ull * static_cast<uint64_t>(c.layers) * static_cast<uint64_t>(batch) * static_cast<uint64_t>(context) *
         static_cast<uint64_t>(c.kv_dim()) * dtype_size(dtype);
}

int64_t activation_rows(const RunShape& s) {
  return std::max<int64_t>(s.max_prefill_tokens, bucket_for(s.batch, std::max(s.batch, 1)));
}

int64_t logit_rows(const RunShape& s) {
  return s.all_logits ? activation_rows(s) : bucket_for(s.batch, std::max(s.batch, 1));
}

int64_t sample_rows(const RunShape& s) { return bucket_for(s.batch, std::max(s.batch, 1)); }

WorkspaceLayout plan_workspace(const ModelConfig& c, DType dtype, const RunShape& s) {
  const uint64_t e = dtype_size(dtype), T = static_cast<uint64_t>(activation_rows(s));
  const uint64_t H = static_cast<uint64_t>(c.hidden), Q = static_cast<uint64_t>(c.q_dim());
  const uint64_t KV = static_cast<uint64_t>(c.kv_dim()), I = static_cast<uint64_t>(c.intermediate);
  uint64_t next = 0;
  auto take = [&next](uint64_t bytes) {
    const uint64_t at = next;
    next = (next + bytes + 255) / 256 * 256;
    return at;
  };
  WorkspaceLayout w;
  w.res = take(T * H * e); w.a = take(T * H * e); w.y = take(T * H * e);
  w.qkv = take(T * (Q + 2 * KV) * e); w.q = take(T * Q * e); w.att = take(T * Q * e);
  w.gu = take(T * 2 * I * e); w.act = take(T * I * e);
  w.logits = take(static_cast<uint64_t>(logit_rows(s)) * static_cast<uint64_t>(c.vocab) * e);
  w.ids = take(T * 4); w.positions = take(T * 4); w.token_slot = take(T * 4);
  w.cu_seqlens = take((T + 1) * 4); w.cache_lens = take(T * 4); w.slot = take(T * 4);
  w.counters = take(T * 8);
  w.gemv_counters = take((T + 15) / 16 * 4);
  w.sample = take(sample_workspace_bytes_for(sample_rows(s)));
  w.cos_sin = take(static_cast<uint64_t>(s.context) * static_cast<uint64_t>(c.head_dim) * 4);
  w.attn = take(s.attention == AttentionBackend::Flash ? s.decode_workspace_bytes : 0);
  w.step = take(s.attention == AttentionBackend::Flash ? s.step_workspace_bytes : 0);
  w.gemm = take(kGemmWorkspaceBytes);
  w.bytes = next;
  return w;
}

uint64_t workspace_bytes(const ModelConfig& c, DType dtype, const RunShape& s) {
  return plan_workspace(c, dtype, s).bytes;
}

void check_request(const ModelConfig& c, const RunShape& s) {
  if (s.batch < 1 || s.batch > kMaxBatch)
    throw UsageError("batch " + std::to_string(s.batch) + " outside [1, " + std::to_string(kMaxBatch) +
                     "] (the engine's batch limit)");
  if (s.context < 1) throw UsageError("context must be at least 1 token");
  if (s.context > c.max_position)
    throw UsageError("context of " + std::to_string(s.context) + " tokens exceeds max_position_embeddings " +
                     std::to_string(c.max_position));
  if (s.max_prefill_tokens < 1) throw UsageError("prefill needs at least one prompt token");
  const int hd = c.head_dim;
  if (s.attention == AttentionBackend::Flash && !flash_supports_head_dim(hd))
    throw UsageError("--attention flash: head_dim " + std::to_string(hd) +
                     " is not held by the flash kernels (16, 32, 64, 128); use --attention simple");
}

const char* attention_backend_name(AttentionBackend a) { return a == AttentionBackend::Flash ? "flash" : "simple"; }

bool flash_supports_head_dim(int hd) { return hd == 16 || hd == 32 || hd == 64 || hd == 128; }

AttentionBackend choose_attention_backend(const std::string& flag, const std::string& value, int head_dim) {
  if (value == "auto") return flash_supports_head_dim(head_dim) ? AttentionBackend::Flash : AttentionBackend::Simple;
  if (value == "simple" || value == "flash") return parse_attention_backend(flag, value);
  throw UsageError(flag + ": unknown attention backend \"" + value + "\" (auto, simple, flash)");
}

AttentionBackend parse_attention_backend(const std::string& flag, const std::string& value) {
  if (value == "simple") return AttentionBackend::Simple;
  if (value == "flash") return AttentionBackend::Flash;
  throw UsageError(flag + ": unknown attention backend \"" + value + "\" (simple, flash)");
}

MemoryPlan plan_memory(const ModelConfig& c, DType dtype, const RunShape& s) {
  check_request(c, s);
  MemoryPlan p;
  p.weights = plan_weights(c, dtype).bytes();
  p.kv_cache = kv_cache_bytes(c, dtype, s.batch, s.context);
  p.workspace = workspace_bytes(c, dtype, s);
  return p;
}

std::string mib_str(uint64_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0));
  return buf;
}

void check_fits(const MemoryPlan& p, const RunShape& s, uint64_t free_bytes) {
  if (p.total() <= free_bytes) return;
  throw UsageError("KV cache of " + mib_str(p.kv_cache) + " (batch " + std::to_string(s.batch) + " x context " +
                   std::to_string(s.context) + ") does not fit: weights " + mib_str(p.weights) + " + KV cache + " +
                   "workspace " + mib_str(p.workspace) + " = " + mib_str(p.total()) + " exceeds the free GPU memory " +
                   mib_str(free_bytes));
}

std::vector<int> batch_buckets(int max_batch) {
  if (max_batch < 1) throw UsageError("batch must be at least 1, got " + std::to_string(max_batch));
  std::vector<int> b;
  for (int n = 1; n < max_batch; n *= 2) b.push_back(n);
  b.push_back(max_batch);
  return b;
}

int bucket_for(int n, int max_batch) {
  if (n < 1 || n > max_batch)
    throw UsageError("batch " + std::to_string(n) + " outside the planned buckets [1, " + std::to_string(max_batch) +
                     "]");
  for (int b : batch_buckets(max_batch)) {
    if (b >= n) return b;
  }
  return max_batch;
}

void validate_sampler(const SamplerConfig& s, int vocab) {
  if (!(s.temperature >= 0.0f) || !std::isfinite(s.temperature))
    throw UsageError("--temperature: must be a finite value >= 0 (0 = greedy), got " + std::to_string(s.temperature));
  if (s.top_k < 0 || s.top_k > vocab)
    throw UsageError("--top-k: must be in [0, vocab_size " + std::to_string(vocab) + "] (0 = off), got " +
                     std::to_string(s.top_k));
  if (!(s.top_p > 0.0f && s.top_p <= 1.0f))
    throw UsageError("--top-p: must be in (0, 1] (1 = off), got " + std::to_string(s.top_p));
}

// RoPE table from the shared inverse frequencies (engine/core/rope_freq.h).

std::vector<float> rope_table(const ModelConfig& cfg, int64_t positions) {
  const std::vector<double> inv = rope_inverse_frequencies(cfg);
  const int64_t half = static_cast<int64_t>(inv.size());
  std::vector<float> t(static_cast<size_t>(positions * half * 2));
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double a = static_cast<double>(p) * inv[static_cast<size_t>(i)];
      t[static_cast<size_t>((p * half + i) * 2)] = static_cast<float>(std::cos(a));
      t[static_cast<size_t>((p * half + i) * 2 + 1)] = static_cast<float>(std::sin(a));
    }
  }
  return t;
}

}  // namespace minfer
