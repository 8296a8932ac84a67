// bench/e2e_metrics.h: the work counts of the end-to-end sweep (header only, host only, so the CPU
// tests check them): prefill FLOPs, the bytes one decode step must read (weights + KV cache), and
// the e2e CSV columns (DESIGN.md section 6 plus model, batch, prompt_len, phase, tok_s, ms_per_step).
// Legend: L layers, H hidden, I intermediate, V vocab, Q = nh*hd, KV = nkv*hd, B batch, P prompt.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/dtype.h"

namespace minfer::bench {

// Weights of one layer's matmuls (elements): wqkv (Q + 2 KV, H), wo (H, Q), gate|up (2I, H), down (H, I).
inline double layer_matmul_params(const ModelConfig& c) {
  const double H = c.hidden, Q = c.q_dim(), KV = c.kv_dim(), I = c.intermediate;
  return (Q + 2 * KV) * H + H * Q + 3 * I * H;
}

// Bytes of weights a decode step must read: every layer's matmuls and norms, the final norm and
// the LM head (V, H); the embedding table is not read beyond B rows (counted as zero).
inline double decode_weight_bytes(const ModelConfig& c, DType t) {
  const double H = c.hidden, hd = c.head_dim;
  const double norms = 2 * H + (c.qk_norm != QkNorm::None ? 2 * hd : 0);
  const double bias = c.attention_bias ? c.q_dim() + 2.0 * c.kv_dim() : 0;
  return (c.layers * (layer_matmul_params(c) + norms + bias) + H + static_cast<double>(c.vocab) * H) *
         static_cast<double>(dtype_size(t));
}

// Bytes of K and V a decode step reads at a mean cached length `context` per sequence.
inline double decode_kv_bytes(const ModelConfig& c, DType t, int batch, double context) {
  return 2.0 * c.layers * batch * context * c.kv_dim() * static_cast<double>(dtype_size(t));
}

// Mean cached length over the decode steps of a (P, N new tokens) request: the first decode step
// attends P + 1 rows, the last P + N - 1.
inline double mean_decode_context(int prompt, int new_tokens) { return prompt + new_tokens / 2.0; }

// Prefill FLOPs of B prompts of P tokens: 2 per weight per token for the matmuls, the LM head on
// the B last rows only, and causal attention: QK^T and PV over P(P+1)/2 (query, key) pairs per
// sequence and head, 2 FLOPs per multiply-add each.
inline double prefill_flops(const ModelConfig& c, int batch, int prompt) {
  const double tokens = static_cast<double>(batch) * prompt;
  const double linear = 2.0 * tokens * c.layers * layer_matmul_params(c) + 2.0 * batch * c.vocab * c.hidden;
  const double pairs = static_cast<double>(batch) * prompt * (prompt + 1.0) / 2.0;
  const double attn = 4.0 * c.layers * c.heads * c.head_dim * pairs;
  return linear + attn;
}

inline std::vector<std::string> e2e_columns() {
  return {"sweep",   "variant",  "dtype",      "model",       "batch",      "prompt_len", "new_tokens",
          "phase",   "label",    "median_us",  "p10_us",      "p90_us",     "tflops",     "gbps",
          "sol_pct", "peak_mem_mib", "rel_err", "tok_s",      "ms_per_step", "copy_gbps", "gemm_tflops",
          "gpu",     "cuda",     "commit",     "repro",       "status"};
}

}  // namespace minfer::bench
