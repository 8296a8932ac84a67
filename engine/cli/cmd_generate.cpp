// engine/cli/cmd_generate.cpp: `minfer generate`: decoding of a ragged batch of prompts.
// Backend "reference" runs ref::Model (reference/model.h) on the CPU, greedy: one prefill forward
// over every prompt, then one batched decode forward per new token. Backend "cuda" runs the engine
// (engine/model, engine/runtime): device weights, ragged prefill, GPU sampling (greedy, temperature,
// top-k, top-p, --seed), decode steps as CUDA graphs; prints a timing and memory summary.
// --profile (cuda): then one more decode step, eager, with CUDA events around each kernel launch,
// printed as a table (kernel, calls, us, % of step, bytes, GB/s); --profile-csv PATH writes it too.
// --timeline (cuda): the CUDA-graph decode steps traced with CUPTI (engine/runtime/kernel_tracer.h),
// the median step's kernels on the GPU's clock, overlaps under programmatic dependent launch included,
// printed by kernel and grid (engine/core/timeline.h); --timeline-csv PATH writes each kernel to PATH
// and the table to PATH.groups.csv.
// --attention auto|simple|flash (cuda): the engine's attention kernels (engine/core/plan.h AttentionBackend).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <vector>

#include <cuda_runtime.h>

#include "engine/cli/commands.h"
#include "engine/cli/text_backend.h"
#include "engine/cli/text_util.h"
#include "engine/cli/util.h"
#include "engine/core/atomic_file.h"
#include "engine/core/error.h"
#include "engine/core/plan.h"
#include "engine/core/presets.h"
#include "engine/core/tokenizer.h"
#include "engine/model/model.h"
#include "engine/runtime/generator.h"
#include "engine/runtime/kernel_tracer.h"
#include "engine/runtime/profile.h"
#include "kernels/decode_attention.h"
#include "reference/model.h"

namespace minfer::cli {

CLI::App* add_generate_command(CLI::App& app, GenerateOptions& o) {
  CLI::App* c = app.add_subcommand(
      "generate", "Generation from token ids (prints the new ids per sequence) or from text (--prompt: streams the "
                  "text), then a timing summary (time to first token, prefill and decode tokens/s, memory).");
  c->add_option("--model", o.model,
                "Checkpoint directory, .safetensors file, .gguf file (dequantized on load), or preset:NAME")
      ->required();
  auto* pt = c->add_option("--prompt-tokens", o.prompt_tokens,
                           "Prompt token ids: 1,2,3 (one prompt) or 1,2;3,4,5 (several)");
  auto* p = c->add_option("--prompt", o.prompt, "Prompt text, encoded with the model's tokenizer (a .gguf file or "
                                                "an HF directory with tokenizer.json); the reply streams as text");
  pt->excludes(p);
  c->add_flag("--chat", o.chat, "With --prompt: send it as a user turn in the model's chat template and stop at "
                                "the end of the assistant's turn");
  c->add_option("--system", o.system, "With --chat: a system message");
  c->add_flag("--no-think", o.no_think, "With --chat on Qwen3: enable_thinking = false");
  c->add_option("--batch", o.batch, "Sequences (prompts reused in turn; default: one per prompt)");
  c->add_option("--max-new-tokens", o.max_new_tokens, "Tokens to generate per sequence (default 16)");
  c->add_option("--backend", o.backend, "reference (scalar CPU, greedy only, default) or cuda (the GPU engine)");
  c->add_option("--dtype", o.dtype, "Weight and activation dtype: fp32 (default), bf16 or fp16");
  c->add_option("--weight-seed", o.weight_seed, "Weight seed for preset models (0: the preset's own)");
  c->add_option("--temperature", o.temperature, "Sampling temperature (cuda backend; 0 = greedy, default)");
  c->add_option("--top-k", o.top_k, "Keep the k most likely tokens (cuda backend; 0 = off, default)");
  c->add_option("--top-p", o.top_p, "Keep the smallest top set with this probability mass (cuda backend; 1 = off)");
  c->add_option("--seed", o.seed, "Sampling seed (cuda backend, used when --temperature > 0); the same seed gives "
                                "the same tokens");
  c->add_option("--attention", o.attention, "cuda backend: attention kernels: auto (default: flash where the "
                                            "head_dim is 16, 32, 64 or 128, else simple), flash (flash_prefill for "
                                            "the prefill, split-KV decode_attention for decode) or simple");
  c->add_flag("--profile", o.profile, "cuda backend: after generating, time each kernel of one eager decode step "
                                      "(CUDA events) and print the breakdown");
  c->add_option("--profile-csv", o.profile_csv, "cuda backend: write the --profile breakdown to this CSV (implies "
                                                "--profile); a step run as the whole-step kernel also writes its "
                                                "traced stages to PATH.stages.csv");
  c->add_flag("--timeline", o.timeline,
              "cuda backend: trace the CUDA-graph decode steps with CUPTI (libcupti, loaded at run time) and print how "
              "the median step's time splits among its kernels on the GPU's clock (share: how far each kernel moved "
              "the step's end; overlaps under programmatic dependent launch included). Tracing slows the host side "
              "(the summary's ms/step), not the traced steps' GPU spans; needs --max-new-tokens 3 or more");
  c->add_option("--timeline-csv", o.timeline_csv, "cuda backend: write the --timeline step's kernels to this CSV "
                                                  "(implies --timeline) and its table to PATH.groups.csv");
  c->add_option("--attention-trace-csv", o.attention_trace_csv,
                "cuda backend: record the globaltimer of every decode-attention block (tensor-core kernel) at its "
                "phases (entry, after the wait on the previous kernel, after the fused RoPE prologue, first keys "
                "landed, key loop done, merged, end, after the cluster barrier) over the decode steps, and write them "
                "to this CSV (the first 262144 blocks; a few stores a block)");
  return c;
}

namespace {

using Clock = std::chrono::steady_clock;
using Seqs = std::vector<std::vector<int32_t>>;

Seqs build_batch(const GenerateOptions& o, const ModelConfig& c, const Seqs& text_prompt = {}) {
  Seqs prompts = text_prompt.empty() ? token_lists_arg("--prompt-tokens", o.prompt_tokens) : text_prompt;
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
  LoadedModel m = open_model(o.model, dt, o.weight_seed);
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

SamplerConfig sampler_of(const GenerateOptions& o) {
  SamplerConfig s;
  s.temperature = o.temperature;
  s.top_k = o.top_k;
  s.top_p = o.top_p;
  s.seed = o.seed;
  return s;
}

void print_cuda_summary(const GenerateOptions& o, DType dt, AttentionBackend attn, const Seqs& batch,
                        const GenerateResult& r) {
  size_t prompt_tokens = 0;
  for (const auto& p : batch) prompt_tokens += p.size();
  std::printf("summary: backend cuda, attention %s, dtype %s, batch %zu (bucket %d), prompt tokens %zu, "
              "new tokens <= %d/seq; time to first token %.3f ms, prefill %.1f tokens/s; decode %d steps in %.3f ms "
              "(step 1 eager, %.3f ms), steady %.3f ms/step, %.1f tokens/s (%s); memory: weights %s, KV cache %s, "
              "workspace %s\n",
              attention_backend_name(attn), dtype_name(dt), batch.size(), r.bucket, prompt_tokens, o.max_new_tokens, r.ttft_ms,
              r.prefill_tok_s, r.decode_steps, r.decode_ms, r.first_step_ms, r.ms_per_step, r.decode_tok_s, r.graph ? "CUDA graph" : "eager",
              mib_str(r.memory.weights).c_str(), mib_str(r.memory.kv_cache).c_str(),
              mib_str(r.memory.workspace).c_str());
}

// Prints the per-kernel table; writes the CSV (PATH.tmp, renamed) when asked.
void report_profile(const GenerateOptions& o, const StepProfile& p) {
  std::printf("profile: one eager decode step\n%s", format_profile(p).c_str());
  if (o.profile_csv.empty()) return;
  write_file_atomic(o.profile_csv, profile_csv(p));
  std::printf("profile: written to %s\n", o.profile_csv.c_str());
  if (p.stages.empty()) return;
  const std::string stages = o.profile_csv + ".stages.csv";
  write_file_atomic(stages, profile_stages_csv(p));
  std::printf("profile: whole-step kernel stages written to %s\n", stages.c_str());
}

// Prints the traced step's table; writes its CSVs when asked.
void report_timeline(const GenerateOptions& o, const StepTimeline& t, const GenerateResult& r) {
  std::printf("timeline: CUDA-graph decode steps traced with CUPTI (host-timed steady step while traced: %.3f ms; "
              "tracing slows the host side, the GPU span below is the step's)\n%s",
              r.ms_per_step, format_timeline(t).c_str());
  if (o.timeline_csv.empty()) return;
  write_file_atomic(o.timeline_csv, timeline_csv(t));
  write_file_atomic(o.timeline_csv + ".groups.csv", timeline_groups_csv(t));
  std::printf("timeline: written to %s and %s.groups.csv\n", o.timeline_csv.c_str(), o.timeline_csv.c_str());
}

// --prompt TEXT: the prompt's ids (through the chat template with --chat) and the stop ids.
struct TextPrompt {
  std::unique_ptr<Tokenizer> tok;
  std::vector<int32_t> ids;
  std::vector<int32_t> stop_ids;
};

void print_texts(const TextPrompt& t, const Seqs& tokens) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    std::printf("--- seq %zu ---\n%s\n", i, t.tok->decode(tokens[i], /*skip_special=*/true).c_str());
  }
}

TextPrompt text_prompt(const GenerateOptions& o) {
  TextPrompt t;
  t.tok = std::make_unique<Tokenizer>(Tokenizer::load(o.model));
  if (o.chat) {
    const ChatSetup chat = chat_setup(*t.tok);
    std::vector<ChatMessage> msgs;
    if (!o.system.empty()) msgs.push_back({"system", o.system});
    msgs.push_back({"user", o.prompt});
    ChatOptions copt;
    copt.enable_thinking = !o.no_think;
    t.ids = chat_prompt_ids(*t.tok, chat, msgs, copt);
    t.stop_ids = chat.stop_ids;
  } else {
    t.ids = t.tok->encode(o.prompt, /*add_special=*/true);
  }
  if (t.ids.empty()) throw UsageError("--prompt: the text encodes to no tokens");
  return t;
}

int run_cuda(const GenerateOptions& o, const TextPrompt* text) {
  const DType dt = dtype_arg("--dtype", o.dtype);
  LoadedModel m = open_model(o.model, dt, o.weight_seed);
  Seqs batch = text ? build_batch(o, m.config, {text->ids}) : build_batch(o, m.config);
  const SamplerConfig sampler = sampler_of(o);
  validate_sampler(sampler, m.config.vocab);
  const bool profile = o.profile || !o.profile_csv.empty();
  const bool timeline = o.timeline || !o.timeline_csv.empty();
  if (timeline && o.max_new_tokens < 3)
    throw UsageError("--timeline: traces the CUDA-graph decode steps (from the second new token on): give "
                     "--max-new-tokens 3 or more, got " + std::to_string(o.max_new_tokens));
  RunShape shape;
  shape.attention = choose_attention_backend("--attention", o.attention, m.config.head_dim);
  shape.batch = static_cast<int>(batch.size());
  for (const auto& p : batch) {  // --profile: room for the profiled step's token
    shape.context = std::max(shape.context, static_cast<int>(p.size()) + o.max_new_tokens + (profile ? 1 : 0));
    shape.max_prefill_tokens += static_cast<int>(p.size());
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0)
    throw UsageError("--backend cuda: no CUDA device is visible; use --backend reference");
  if (!o.attention_trace_csv.empty() && !decode_attention_trace_start(1 << 18))
    throw UsageError("--attention-trace-csv: could not allocate the trace buffer on the device");
  ProgressSource src(*m.source, "generate: loading " + m.source->describe());
  Model model(m.config, src, dt, shape);
  Generator gen(model);
  GenerateRequest req;
  req.prompts = batch;
  req.max_new_tokens = o.max_new_tokens;
  req.sampler = sampler;
  req.eos_token_id = m.config.eos_token_id;
  if (text) req.stop_token_ids = text->stop_ids;
  std::unique_ptr<KernelTracer> tracer;
  if (timeline) tracer = std::make_unique<KernelTracer>();
  const GenerateResult r = gen.generate(req);
  const std::vector<KernelSpan> spans = tracer ? tracer->finish() : std::vector<KernelSpan>{};
  tracer.reset();
  if (text) {
    print_texts(*text, r.tokens);
  } else {
    for (size_t i = 0; i < r.tokens.size(); ++i) {
      std::printf("seq %zu:", i);
      for (int32_t t : r.tokens[i]) std::printf(" %d", t);
      std::printf("\n");
    }
  }
  print_cuda_summary(o, dt, shape.attention, batch, r);
  if (timeline) report_timeline(o, median_graph_step(spans), r);
  if (!o.attention_trace_csv.empty()) {
    write_file_atomic(o.attention_trace_csv, decode_attention_trace_csv());
    decode_attention_trace_stop();
    std::printf("attention trace: written to %s\n", o.attention_trace_csv.c_str());
  }
  if (profile) report_profile(o, profile_decode_step(model, static_cast<int>(batch.size())));
  return 0;
}

// One sequence from text, on either backend, streamed to stdout; the summary goes to stderr.
int run_text_one(const GenerateOptions& o, const TextPrompt& t) {
  TextBackendOptions bo;
  bo.backend = o.backend;
  bo.dtype = dtype_arg("--dtype", o.dtype);
  bo.context = static_cast<int>(t.ids.size()) + o.max_new_tokens;
  bo.attention = o.attention;
  if (o.max_new_tokens < 1) throw UsageError("--max-new-tokens: must be at least 1");
  auto backend = make_text_backend(o.model, bo);
  StreamDecoder sd(*t.tok, /*skip_special=*/true);
  const TextGenStats st = backend->generate(t.ids, o.max_new_tokens, sampler_of(o), t.stop_ids, [&](int32_t id) {
    std::fputs(sd.push(id).c_str(), stdout);
    std::fflush(stdout);
  });
  std::fputs(sd.flush().c_str(), stdout);
  std::fputs("\n", stdout);
  std::fflush(stdout);
  std::fprintf(stderr, "summary: %s; prompt %lld tokens, %lld new tokens%s; time to first token %.3f ms, decode "
                       "%.1f tokens/s\n",
               backend->describe().c_str(), static_cast<long long>(st.prompt_tokens),
               static_cast<long long>(st.new_tokens), st.stopped ? " (stopped at end of turn)" : "", st.ttft_ms,
               st.decode_tok_s);
  return 0;
}

}  // namespace

int run_generate(const GenerateOptions& o) {
  if (o.prompt.empty() && o.prompt_tokens.empty()) {
    throw UsageError("generate: give --prompt TEXT or --prompt-tokens IDS");
  }
  if (o.prompt.empty() && (o.chat || !o.system.empty() || o.no_think)) {
    throw UsageError("--chat/--system/--no-think: apply to a text --prompt");
  }
  if (!o.system.empty() && !o.chat) throw UsageError("--system: needs --chat");
  if (!o.prompt.empty()) {
    if (o.profile || !o.profile_csv.empty()) throw UsageError("--profile: use --prompt-tokens");
    if (o.timeline || !o.timeline_csv.empty()) throw UsageError("--timeline: use --prompt-tokens");
    if (!o.attention_trace_csv.empty()) throw UsageError("--attention-trace-csv: use --prompt-tokens");
    const TextPrompt t = text_prompt(o);
    if (o.batch <= 1) return run_text_one(o, t);
    if (o.backend != "cuda") throw UsageError("--batch: a text prompt on the reference backend runs one sequence");
    return run_cuda(o, &t);
  }
  if (o.backend == "cuda") return run_cuda(o, nullptr);
  if (o.backend != "cuda" && (o.profile || !o.profile_csv.empty()))
    throw UsageError("--profile: times GPU kernels; use --backend cuda");
  if (o.backend != "cuda" && (o.timeline || !o.timeline_csv.empty()))
    throw UsageError("--timeline: traces GPU kernels; use --backend cuda");
  if (o.backend != "cuda" && !o.attention_trace_csv.empty())
    throw UsageError("--attention-trace-csv: traces GPU kernels; use --backend cuda");
  if (o.backend == "reference" && o.attention != "auto")
    throw UsageError("--attention: picks the GPU engine's kernels; use --backend cuda");
  if (o.backend == "reference" && (o.temperature != 0.0f || o.top_k != 0 || o.top_p != 1.0f))
    throw UsageError("--temperature/--top-k/--top-p: the reference backend is greedy only; use --backend cuda");
  if (o.backend != "reference") {
    throw UsageError("--backend: unknown \"" + o.backend + "\" (reference, cuda)");
  }
  return run_reference(o);
}

}  // namespace minfer::cli
