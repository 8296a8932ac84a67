// engine/cli/text_backend.h: one model behind the text commands (generate --prompt, chat, perplexity),
// on either backend: "reference" (the scalar CPU reference, greedy only) or "cuda" (the GPU engine:
// device weights, ragged prefill, CUDA-graph decode, GPU sampling). Both answer the same two calls:
// generate new tokens after a prompt (streamed through a callback), and score a token window (logits
// at every position, from an empty cache).
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/dtype.h"
#include "engine/core/plan.h"

namespace minfer::cli {

struct TextGenStats {
  int64_t prompt_tokens = 0;
  int64_t new_tokens = 0;
  double ttft_ms = 0;       // prompt in, first new token known on the host
  double decode_ms = 0;     // the rest
  double decode_tok_s = 0;  // new tokens after the first / decode_ms
  bool stopped = false;     // ended on eos or a stop id (else on max_new_tokens)
};

struct TextBackendOptions {
  std::string backend = "reference";  // reference | cuda
  DType dtype = DType::F32;
  int context = 2048;                 // tokens one sequence may hold (prompt + new), capped by the model
  bool scoring = false;               // cuda: size the run state for score() (logits at every position)
  std::string attention = "auto";     // cuda: attention kernels (engine/core/plan.h)
};

class TextBackend {
 public:
  virtual ~TextBackend() = default;
  virtual const ModelConfig& config() const = 0;
  // One sequence: prompt in, up to max_new tokens out, each passed to on_token as it is known; ends
  // early after eos or any of stop_ids (passed to on_token too). Throws UsageError when prompt +
  // max_new exceeds context().
  virtual TextGenStats generate(const std::vector<int32_t>& prompt, int max_new, const SamplerConfig& s,
                                const std::vector<int32_t>& stop_ids,
                                const std::function<void(int32_t)>& on_token) = 0;
  // fp32 logits (n, V) of tokens[0..n) from an empty cache: row t is the output after tokens[t].
  virtual std::vector<float> score(const std::vector<int32_t>& tokens) = 0;
  virtual int context() const = 0;
  virtual std::string describe() const = 0;  // "cuda bf16 (attention flash), weights 256.3 MiB, ..."
};

// Loads the model (progress on stderr) and builds the backend. Throws UsageError for an unknown
// backend, sampling on the reference, or no CUDA device.
std::unique_ptr<TextBackend> make_text_backend(const std::string& model_spec, const TextBackendOptions& o);

}  // namespace minfer::cli
