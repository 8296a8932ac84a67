// engine/core/perplexity.h: perplexity of a model over a token stream, the same definition for every
// backend and for tools/hf_perplexity.py (HF transformers on the same text):
//   the tokens (no BOS) are cut into consecutive, non-overlapping windows of ctx tokens (the last may
//   be shorter; a window of fewer than 2 tokens is dropped); each window starts from an empty cache,
//   and every token after its first is predicted from the tokens before it in the window;
//   nll_sum = sum over predicted tokens of -log softmax(logits)[token]; ppl = exp(nll_sum / n_predicted).
// Log-softmax is taken in double over fp32 logits.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace minfer {

// [begin, end) token ranges of the windows.
std::vector<std::pair<int64_t, int64_t>> perplexity_windows(int64_t n_tokens, int64_t ctx);

// Sum of -log p(tokens[t + 1] | logits row t) for t in [0, rows - 1): `logits` is (rows, vocab), row t
// the model's output after tokens[t]; tokens has at least `rows` ids. Returns (nll_sum, rows - 1).
std::pair<double, int64_t> window_nll(const float* logits, int64_t rows, int64_t vocab, const int32_t* tokens);

struct PerplexityResult {
  int64_t n_tokens = 0, n_windows = 0, n_predicted = 0, ctx = 0;
  double nll_sum = 0;
  double mean_nll() const { return n_predicted ? nll_sum / static_cast<double>(n_predicted) : 0.0; }
  double ppl() const;
};

}  // namespace minfer
