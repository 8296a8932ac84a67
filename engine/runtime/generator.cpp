// engine/runtime/generator.cpp: prefill, GPU sampling, decode steps captured as CUDA graphs per
// bucket (see generator.h). Timing is host wall clock around synchronised regions.
#include "engine/runtime/generator.h"

#include <algorithm>

#include <chrono>

#include "engine/core/error.h"
#include "kernels/common/status.h"
#include "kernels/kv_cache.h"
#include "kernels/sampling.h"

namespace minfer {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) { return std::chrono::duration<double, std::milli>(Clock::now() - t0).count(); }

bool same(const SamplerConfig& a, const SamplerConfig& b) {
  return a.temperature == b.temperature && a.top_k == b.top_k && a.top_p == b.top_p && a.seed == b.seed;
}

}  // namespace

Generator::Generator(Model& model) : m_(model) {}

Generator::~Generator() {
  for (auto& [bucket, exec] : graphs_) cudaGraphExecDestroy(exec);
}

void Generator::check(const GenerateRequest& r) const {
  const RunShape& s = m_.shape();
  const int B = static_cast<int>(r.prompts.size());
  if (B < 1 || B > s.batch)
    throw UsageError("generate: " + std::to_string(B) + " prompts, the run was planned for batch " +
                     std::to_string(s.batch));
  if (r.max_new_tokens < 1) throw UsageError("--max-new-tokens: must be at least 1");
  int64_t total = 0;
  for (const auto& p : r.prompts) {
    if (p.empty()) throw UsageError("generate: every prompt needs at least one token");
    total += static_cast<int64_t>(p.size());
    if (static_cast<int64_t>(p.size()) + r.max_new_tokens > s.context)
      throw UsageError("generate: prompt of " + std::to_string(p.size()) + " + " + std::to_string(r.max_new_tokens) +
                       " new tokens exceeds the planned context of " + std::to_string(s.context));
  }
  if (total > s.max_prefill_tokens)
    throw UsageError("generate: " + std::to_string(total) + " prompt tokens, the run was planned for " +
                     std::to_string(s.max_prefill_tokens));
  validate_sampler(r.sampler, m_.config().vocab);
}

void Generator::sample(int rows, const SamplerConfig& s) {
  RunState& st = m_.state();
  SampleParams p;
  p.dtype = m_.dtype();
  p.logits = st.logits;
  p.out_ids = st.ids;
  p.counters = st.counters;
  p.rows = rows;
  p.vocab = m_.config().vocab;
  p.ld = m_.config().vocab;
  p.temperature = s.temperature;
  p.top_k = s.top_k;
  p.top_p = s.top_p;
  p.seed = s.seed;
  p.workspace = st.sample_workspace;
  p.workspace_bytes = st.sample_bytes;
  MINFER_STATUS_CHECK(sample_forward(p, m_.stream()));
}

// One decode step, device state only: forward, sample into ids, advance positions.
void Generator::enqueue_step(int rows, const SamplerConfig& s) {
  m_.enqueue_decode(rows);
  sample(rows, s);
  RunState& st = m_.state();
  const DecodeAdvanceParams a{st.positions, st.cache_lens, st.slot, rows};
  MINFER_STATUS_CHECK(decode_advance_forward(a, m_.stream()));
}

void Generator::run_step(int rows, const SamplerConfig& s, bool use_graph, int step, bool& graphed) {
  auto it = graphs_.find(rows);
  if (it != graphs_.end() && !same(graph_sampler_[rows], s)) {
    cudaGraphExecDestroy(it->second);
    graphs_.erase(it);
    it = graphs_.end();
  }
  if (!use_graph || (it == graphs_.end() && step == 0)) {  // first step eager: creates the GEMM plans
    enqueue_step(rows, s);
    return;
  }
  if (it == graphs_.end()) {
    cudaGraph_t g = nullptr;
    MINFER_CUDA_CHECK(cudaStreamBeginCapture(m_.stream(), cudaStreamCaptureModeThreadLocal));
    try {
      enqueue_step(rows, s);
    } catch (...) {
      cudaStreamEndCapture(m_.stream(), &g);
      if (g) cudaGraphDestroy(g);
      throw;
    }
    MINFER_CUDA_CHECK(cudaStreamEndCapture(m_.stream(), &g));
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, g, 0);
    cudaGraphDestroy(g);
    MINFER_CUDA_CHECK(e);
    it = graphs_.emplace(rows, exec).first;
    graph_sampler_[rows] = s;
  }
  MINFER_CUDA_CHECK(cudaGraphLaunch(it->second, m_.stream()));
  graphed = true;
}

std::vector<int32_t> Generator::fetch_ids(int rows) {
  RunState& st = m_.state();
  MINFER_CUDA_CHECK(cudaMemcpyAsync(st.host_ids, st.ids, static_cast<size_t>(rows) * 4, cudaMemcpyDeviceToHost,
                                    m_.stream()));
  MINFER_CUDA_CHECK(cudaStreamSynchronize(m_.stream()));
  return std::vector<int32_t>(st.host_ids, st.host_ids + rows);
}

GenerateResult Generator::generate(const GenerateRequest& r) {
  check(r);
  const int B = static_cast<int>(r.prompts.size());
  GenerateResult out;
  out.memory = m_.memory();
  out.tokens.assign(static_cast<size_t>(B), {});
  out.bucket = bucket_for(B, m_.shape().batch);
  m_.reset();
  RunState& st = m_.state();
  MINFER_CUDA_CHECK(cudaMemsetAsync(st.counters, 0, static_cast<size_t>(m_.state().rows()) * 8, m_.stream()));
  int64_t prompt_tokens = 0;
  for (const auto& p : r.prompts) prompt_tokens += static_cast<int64_t>(p.size());

  const auto t0 = Clock::now();
  m_.forward_device(r.prompts, false);
  sample(B, r.sampler);
  std::vector<int32_t> ids = fetch_ids(B);
  out.ttft_ms = ms_since(t0);
  if (r.on_logits) r.on_logits(0, m_.logits_host(B));
  out.prefill_tok_s = out.ttft_ms > 0 ? static_cast<double>(prompt_tokens) / (out.ttft_ms / 1e3) : 0.0;

  const auto stops = [&r](int32_t id) {
    return id == r.eos_token_id || std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), id) !=
                                       r.stop_token_ids.end();
  };
  std::vector<bool> finished(static_cast<size_t>(B), false);
  int live = 0;
  for (int b = 0; b < B; ++b) {
    out.tokens[static_cast<size_t>(b)].push_back(ids[static_cast<size_t>(b)]);
    if (r.on_token) r.on_token(b, ids[static_cast<size_t>(b)]);
    finished[static_cast<size_t>(b)] = stops(ids[static_cast<size_t>(b)]) || r.max_new_tokens == 1;
    live += finished[static_cast<size_t>(b)] ? 0 : 1;
  }
  if (live == 0) return out;
  m_.prepare_decode(out.bucket, finished);
  int64_t decoded = 0, decoded_first = 0;
  const auto t1 = Clock::now();
  auto t2 = t1;
  for (int step = 0; live > 0; ++step) {
    run_step(out.bucket, r.sampler, r.use_graph, step, out.graph);
    ids = fetch_ids(out.bucket);
    if (step == 0) out.first_step_ms = ms_since(t1), t2 = Clock::now();
    if (r.on_logits) r.on_logits(step + 1, m_.logits_host(out.bucket));
    m_.note_decoded(finished);
    ++out.decode_steps;
    for (int b = 0; b < B; ++b) {
      auto& toks = out.tokens[static_cast<size_t>(b)];
      if (finished[static_cast<size_t>(b)]) continue;
      toks.push_back(ids[static_cast<size_t>(b)]);
      if (r.on_token) r.on_token(b, ids[static_cast<size_t>(b)]);
      ++decoded;
      if (stops(ids[static_cast<size_t>(b)]) || static_cast<int>(toks.size()) == r.max_new_tokens) {
        finished[static_cast<size_t>(b)] = true;
        m_.finish_row(b);
        --live;
      }
    }
    if (step == 0) decoded_first = decoded;
  }
  out.decode_ms = ms_since(t1);
  const bool steady = out.decode_steps > 1;  // else step 1 is all there is
  const double ms = steady ? ms_since(t2) : out.decode_ms;
  const int steps = steady ? out.decode_steps - 1 : out.decode_steps;
  const int64_t toks = steady ? decoded - decoded_first : decoded;
  out.ms_per_step = steps > 0 ? ms / steps : 0.0;
  out.decode_tok_s = ms > 0 ? static_cast<double>(toks) / (ms / 1e3) : 0.0;
  return out;
}

}  // namespace minfer
