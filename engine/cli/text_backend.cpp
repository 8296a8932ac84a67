// engine/cli/text_backend.cpp: see text_backend.h.
#include "engine/cli/text_backend.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <cuda_runtime.h>

#include "engine/cli/util.h"
#include "engine/core/error.h"
#include "engine/core/presets.h"
#include "engine/core/weights.h"
#include "engine/model/model.h"
#include "engine/runtime/generator.h"
#include "reference/model.h"

namespace minfer::cli {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

int32_t argmax_row(const float* r, int64_t vocab) {
  int32_t best = 0;
  for (int32_t v = 1; v < vocab; ++v) best = r[v] > r[best] ? v : best;
  return best;
}

void check_fits(const std::vector<int32_t>& prompt, int max_new, int context) {
  if (prompt.empty()) throw UsageError("the prompt is empty");
  if (static_cast<int64_t>(prompt.size()) + max_new > context) {
    throw UsageError("prompt (" + std::to_string(prompt.size()) + " tokens) + --max-new-tokens (" +
                     std::to_string(max_new) + ") exceeds the context of " + std::to_string(context) +
                     " tokens (--ctx, at most the model's max_position_embeddings)");
  }
}

class ReferenceBackend final : public TextBackend {
 public:
  ReferenceBackend(LoadedModel m, DType dt, int context) : m_(std::move(m)), dt_(dt), context_(context) {
    ProgressSource src(*m_.source, "loading " + m_.source->describe());
    w_ = std::make_unique<ModelWeights>(load_weights(m_.config, src, dt));
    model_ = std::make_unique<ref::Model>(m_.config, *w_, dt);
  }
  const ModelConfig& config() const override { return m_.config; }
  int context() const override { return context_; }
  std::string describe() const override {
    return std::string("reference (scalar CPU, greedy), ") + dtype_name(dt_) + ", context " + std::to_string(context_);
  }

  TextGenStats generate(const std::vector<int32_t>& prompt, int max_new, const SamplerConfig& s,
                        const std::vector<int32_t>& stop_ids, const std::function<void(int32_t)>& on_token) override {
    if (s.temperature != 0.0f || s.top_k != 0 || s.top_p != 1.0f) {
      throw UsageError("--temperature/--top-k/--top-p: the reference backend is greedy only; use --backend cuda");
    }
    check_fits(prompt, max_new, context_);
    const int64_t V = m_.config.vocab;
    TextGenStats st;
    st.prompt_tokens = static_cast<int64_t>(prompt.size());
    model_->reset(1);
    const auto t0 = Clock::now();
    std::vector<float> logits = model_->forward({prompt});
    int32_t next = argmax_row(logits.data() + (prompt.size() - 1) * static_cast<size_t>(V), V);
    st.ttft_ms = ms_since(t0);
    const auto t1 = Clock::now();
    for (int i = 0; i < max_new; ++i) {
      ++st.new_tokens;
      if (on_token) on_token(next);
      if (next == m_.config.eos_token_id || std::find(stop_ids.begin(), stop_ids.end(), next) != stop_ids.end()) {
        st.stopped = true;
        break;
      }
      if (i + 1 == max_new) break;
      logits = model_->forward({{next}});
      next = argmax_row(logits.data(), V);
    }
    st.decode_ms = ms_since(t1);
    st.decode_tok_s = st.decode_ms > 0 ? static_cast<double>(st.new_tokens - 1) / (st.decode_ms / 1e3) : 0.0;
    return st;
  }

  std::vector<float> score(const std::vector<int32_t>& tokens) override {
    check_fits(tokens, 0, context_);
    model_->reset(1);
    return model_->forward({tokens});
  }

 private:
  LoadedModel m_;
  DType dt_;
  int context_;
  std::unique_ptr<ModelWeights> w_;
  std::unique_ptr<ref::Model> model_;
};

class CudaBackend final : public TextBackend {
 public:
  CudaBackend(LoadedModel m, const TextBackendOptions& o, int context) : m_(std::move(m)), dt_(o.dtype) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
      throw UsageError("--backend cuda: no CUDA device is visible; use --backend reference");
    }
    RunShape shape;
    shape.attention = choose_attention_backend("--attention", o.attention, m_.config.head_dim);
    shape.batch = 1;
    shape.context = context;
    shape.max_prefill_tokens = context;
    shape.all_logits = o.scoring;
    ProgressSource src(*m_.source, "loading " + m_.source->describe());
    model_ = std::make_unique<Model>(m_.config, src, dt_, shape);
    gen_ = std::make_unique<Generator>(*model_);
  }
  const ModelConfig& config() const override { return m_.config; }
  int context() const override { return model_->shape().context; }
  std::string describe() const override {
    const MemoryPlan mp = model_->memory();
    return std::string("cuda ") + dtype_name(dt_) + " (attention " +
           attention_backend_name(model_->shape().attention) + "), context " + std::to_string(context()) +
           "; memory: weights " + mib_str(mp.weights) + ", KV cache " + mib_str(mp.kv_cache) + ", workspace " +
           mib_str(mp.workspace);
  }

  TextGenStats generate(const std::vector<int32_t>& prompt, int max_new, const SamplerConfig& s,
                        const std::vector<int32_t>& stop_ids, const std::function<void(int32_t)>& on_token) override {
    check_fits(prompt, max_new, context());
    validate_sampler(s, m_.config.vocab);
    GenerateRequest req;
    req.prompts = {prompt};
    req.max_new_tokens = max_new;
    req.sampler = s;
    req.eos_token_id = m_.config.eos_token_id;
    req.stop_token_ids = stop_ids;
    if (on_token) req.on_token = [&on_token](int, int32_t t) { on_token(t); };
    const GenerateResult r = gen_->generate(req);
    TextGenStats st;
    st.prompt_tokens = static_cast<int64_t>(prompt.size());
    st.new_tokens = static_cast<int64_t>(r.tokens[0].size());
    st.ttft_ms = r.ttft_ms;
    st.decode_ms = r.decode_ms;
    st.decode_tok_s = r.decode_ms > 0 ? static_cast<double>(st.new_tokens - 1) / (r.decode_ms / 1e3) : 0.0;
    const int32_t last = r.tokens[0].back();
    st.stopped = last == m_.config.eos_token_id || std::find(stop_ids.begin(), stop_ids.end(), last) != stop_ids.end();
    return st;
  }

  std::vector<float> score(const std::vector<int32_t>& tokens) override {
    if (!model_->shape().all_logits) throw std::logic_error("CudaBackend::score: built without scoring");
    check_fits(tokens, 0, context());
    model_->reset();
    return model_->forward({tokens});
  }

 private:
  LoadedModel m_;
  DType dt_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Generator> gen_;
};

}  // namespace

std::unique_ptr<TextBackend> make_text_backend(const std::string& model_spec, const TextBackendOptions& o) {
  if (o.backend != "reference" && o.backend != "cuda") {
    throw UsageError("--backend: unknown \"" + o.backend + "\" (reference, cuda)");
  }
  if (o.backend == "reference" && o.attention != "auto") {
    throw UsageError("--attention: picks the GPU engine's kernels; use --backend cuda");
  }
  if (o.context < 2) throw UsageError("--ctx: must be at least 2, got " + std::to_string(o.context));
  LoadedModel m = open_model(model_spec, o.dtype);
  const int context = m.config.max_position > 0 ? std::min(o.context, m.config.max_position) : o.context;
  if (o.backend == "cuda") return std::make_unique<CudaBackend>(std::move(m), o, context);
  return std::make_unique<ReferenceBackend>(std::move(m), o.dtype, context);
}

}  // namespace minfer::cli
