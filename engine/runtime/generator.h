// engine/runtime/generator.h: the generate loop on the GPU: one ragged prefill over every prompt,
// sampling on the GPU, then batched decode steps (one token per live sequence) until every sequence
// has max_new_tokens or has produced eos. Decode steps run as a CUDA graph per batch bucket
// (captured on the second step, replayed after; the first step runs eagerly and warms the GEMM
// plans). Sequences finish at different steps: a finished row stops attending and writing the cache.
// B sequences, Bb bucket rows.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include <cuda_runtime.h>

#include "engine/core/plan.h"
#include "engine/model/model.h"

namespace minfer {

struct GenerateRequest {
  std::vector<std::vector<int32_t>> prompts;  // (B) non-empty prompts
  int max_new_tokens = 16;
  SamplerConfig sampler;
  int eos_token_id = -1;   // < 0: none
  std::vector<int32_t> stop_token_ids;  // more ids that end a sequence like eos (a chat's end-of-turn)
  // Called on the host with each sequence's new token as soon as it is known (streaming output), in
  // step order; a stop token is passed too.
  std::function<void(int seq, int32_t token)> on_token;
  bool use_graph = true;   // false: every decode step eager (for tests)
  // Observer of the per-step logits (validation): called with host fp32 logits after the prefill
  // (step 0: (B, V), one row per sequence) and after each decode step s >= 1 ((Bb, V); rows past B
  // are padding, a finished row's values are undefined). Each call copies and synchronises.
  std::function<void(int step, const std::vector<float>& logits)> on_logits;
};

struct GenerateResult {
  std::vector<std::vector<int32_t>> tokens;  // (B) new tokens per sequence (eos included)
  double ttft_ms = 0;        // prefill + first sample, to the ids on the host
  double prefill_tok_s = 0;  // prompt tokens / ttft
  double decode_ms = 0;      // every decode step
  int decode_steps = 0;
  double first_step_ms = 0;  // decode step 1: eager (creates and, when tuning, times the GEMM plans)
  // Steady state, over steps 2.. (the captured graphs; step 1 alone when there is no other):
  double decode_tok_s = 0;   // tokens those steps generated / their time
  double ms_per_step = 0;
  int bucket = 0;            // Bb
  bool graph = false;        // decode ran from a captured graph
  MemoryPlan memory;
};

class Generator {
 public:
  explicit Generator(Model& model);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  // Throws UsageError for a request past the model's plan (batch, context) or bad sampler values.
  GenerateResult generate(const GenerateRequest& r);

 private:
  void check(const GenerateRequest& r) const;
  void sample(int rows, const SamplerConfig& s);
  void enqueue_step(int rows, const SamplerConfig& s);
  void run_step(int rows, const SamplerConfig& s, bool use_graph, int step, bool& graphed);
  std::vector<int32_t> fetch_ids(int rows);
  Model& m_;
  std::map<int, cudaGraphExec_t> graphs_;  // per bucket; sampler settings are baked in
  std::map<int, SamplerConfig> graph_sampler_;
};

}  // namespace minfer
