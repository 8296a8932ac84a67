// engine/core/perplexity.cpp: see perplexity.h.
#include "engine/core/perplexity.h"

#include <algorithm>
#include <cmath>

#include "engine/core/error.h"

namespace minfer {

std::vector<std::pair<int64_t, int64_t>> perplexity_windows(int64_t n_tokens, int64_t ctx) {
  if (ctx < 2) throw UsageError("--ctx: must be at least 2, got " + std::to_string(ctx));
  std::vector<std::pair<int64_t, int64_t>> w;
  for (int64_t b = 0; b < n_tokens; b += ctx) {
    const int64_t e = std::min(n_tokens, b + ctx);
    if (e - b >= 2) w.emplace_back(b, e);
  }
  return w;
}

std::pair<double, int64_t> window_nll(const float* logits, int64_t rows, int64_t vocab, const int32_t* tokens) {
  double sum = 0;
  for (int64_t t = 0; t + 1 < rows; ++t) {
    const float* r = logits + t * vocab;
    double mx = r[0];
    for (int64_t v = 1; v < vocab; ++v) mx = std::max(mx, static_cast<double>(r[v]));
    double z = 0;
    for (int64_t v = 0; v < vocab; ++v) z += std::exp(static_cast<double>(r[v]) - mx);
    const int32_t next = tokens[t + 1];
    if (next < 0 || next >= vocab) {
      throw UsageError("perplexity: token id " + std::to_string(next) + " is past the vocabulary (" +
                       std::to_string(vocab) + ")");
    }
    sum += -(static_cast<double>(r[next]) - mx - std::log(z));
  }
  return {sum, rows > 0 ? rows - 1 : 0};
}

double PerplexityResult::ppl() const { return std::exp(mean_nll()); }

}  // namespace minfer
