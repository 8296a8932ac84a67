// engine/cli/cmd_generate.cpp: `minfer generate`: greedy decoding of a ragged batch of prompts.
// Backend "reference" runs ref::Model (reference/model.h) on the CPU: one prefill forward over every
// prompt, then one batched decode forward per new token. Backend "cuda" is not built yet (exit 2).
#include <chrono>
#include <cstdio>
#include <iostream>

#include "engine/cli/commands.h"
#include "engine/cli/util.h"
#include "engine/core/error.h"
#include "engine/core/presets.h"
#include "reference/model.h"

namespace minfer::cli {

CLI::App* add_generate_command(CLI::App& app, GenerateOptions& o) {
  CLI::App* c = app.add_subcommand("generate", "Greedy generation from token ids; prints the new ids per sequence "
                                               "and a timing summary (prefill ms, decode tokens/s).");
  c->add_option("--model", o.model, "Checkpoint directory, .safetensors file, or preset:NAME")->required();
  c->add_option("--prompt-tokens", o.prompt_tokens, "Prompt token ids: 1,2,3 (one prompt) or 1,2;3,4,5 (several)")
      ->required();
  c->add_option("--batch", o.batch, "Sequences (prompts reused in turn; default: one per prompt)");
  c->add_option("--max-new-tokens", o.max_new_tokens, "Tokens to generate per sequence (default 16)");
  c->add_option("--backend", o.backend, "reference (scalar CPU, default) or cuda (not built yet)");
  c->add_option("--dtype", o.dtype, "Weight and activation dtype: fp32 (default), bf16 or fp16");
  c->add_option("--seed", o.seed, "Weight seed for preset models (0: the preset's own)");
  return c;
}

namespace {

using Clock = std::chrono::steady_clock;
using Seqs = std::vector<std::vector<int32_t>>;

Seqs build_batch(const GenerateOptions& o, const ModelConfig& c) {
  Seqs prompts = token_lists_arg("--prompt-tokens", o.prompt_tokens);
  if (o.batch < 0) throw UsageError("--batch: must be positive, got " + std::to_string(o.batch));
  if (o.max_new_tokens < 1) throw UsageError("--max-new-tokens: must be at least 1");
  const size_t n = o.batch > 0 ? static_cast<size_t>(o.batch) : prompts.size();
  Seqs batch;
  for (size_t i = 0; i < n; ++i) batch.push_back(prompts[i % prompts.size()]);
  for (const auto& p : batch) {
    for (int32_t t : p) {
      if (t >= c.vocab) throw UsageError("--prompt-tokens: id " + std::to_string(t) + " past vocab_size " +
                                         std::to_string(c.vocab));
    }
    if (static_cast<int64_t>(p.size()) + o.max_new_tokens > c.max_position) {
      throw UsageError("prompt + --max-new-tokens = " + std::to_string(p.size() + static_cast<size_t>(o.max_new_tokens)) +
                       " exceeds the context limit max_position_embeddings " + std::to_string(c.max_position));
    }
  }
  return batch;
}

// argmax of each sequence's last logits row; `logits` is (sum Tq_i, V), sequences in order.
std::vector<int32_t> pick_greedy(const std::vector<float>& logits, const Seqs& fed, int vocab) {
  std::vector<int32_t> out;
  size_t row = 0;
  for (const auto& toks : fed) {
    row += toks.size();
    const float* r = logits.data() + (row - 1) * static_cast<size_t>(vocab);
    int32_t best = 0;
    for (int32_t v = 1; v < vocab; ++v) best = r[v] > r[best] ? v : best;
    out.push_back(best);
  }
  return out;
}

int run_reference(const GenerateOptions& o) {
  const DType dt = dtype_arg("--dtype", o.dtype);
  LoadedModel m = open_model(o.model, dt, o.seed);
  Seqs batch = build_batch(o, m.config);
  ProgressSource src(*m.source, "generate: loading " + m.source->describe());
  ModelWeights w = load_weights(m.config, src, dt);
  ref::Model model(m.config, w, dt);
  model.reset(static_cast<int>(batch.size()));
  auto t0 = Clock::now();
  std::vector<int32_t> next = pick_greedy(model.forward(batch), batch, m.config.vocab);
  const double prefill_s = std::chrono::duration<double>(Clock::now() - t0).count();
  Seqs generated(batch.size());
  auto t1 = Clock::now();
  for (int step = 0;; ++step) {
    Seqs fed(batch.size());
    for (size_t i = 0; i < batch.size(); ++i) {
      generated[i].push_back(next[i]);
      fed[i] = {next[i]};
    }
    if (step + 1 == o.max_new_tokens) break;
    next = pick_greedy(model.forward(fed), fed, m.config.vocab);
  }
  const double decode_s = std::chrono::duration<double>(Clock::now() - t1).count();
  for (size_t i = 0; i < generated.size(); ++i) {
    std::printf("seq %zu:", i);
    for (int32_t t : generated[i]) std::printf(" %d", t);
    std::printf("\n");
  }
  size_t prompt_tokens = 0;
  for (const auto& p : batch) prompt_tokens += p.size();
  const double decode_tokens = static_cast<double>(batch.size()) * (o.max_new_tokens - 1);
  std::printf("summary: backend reference, dtype %s, batch %zu, prompt tokens %zu, new tokens %d/seq; prefill %.3f ms; "
              "decode %.0f tokens in %.3f ms = %.1f tokens/s\n",
              dtype_name(dt), batch.size(), prompt_tokens, o.max_new_tokens, prefill_s * 1e3, decode_tokens,
              decode_s * 1e3, decode_s > 0 ? decode_tokens / decode_s : 0.0);
  return 0;
}

}  // namespace

int run_generate(const GenerateOptions& o) {
  if (o.backend == "cuda") {
    throw UsageError("--backend cuda: the CUDA engine backend is not built yet; use --backend reference");
  }
  if (o.backend != "reference") {
    throw UsageError("--backend: unknown \"" + o.backend + "\" (reference, cuda)");
  }
  return run_reference(o);
}

}  // namespace minfer::cli
