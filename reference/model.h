// reference/model.h: the full forward pass of every family on the scalar reference ops, with a
// per-sequence KV cache, ragged batches (each sequence its own new tokens), prefill and decode.
// Activations are rounded to `act` at every point the engine stores them (after each op).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/weights.h"

namespace minfer::ref {

class Model {
 public:
  Model(const ModelConfig& cfg, const ModelWeights& w, DType act);

  // Start a batch of `batch` empty sequences (drops any cached state).
  void reset(int batch);
  // Append new tokens to each sequence (tokens[i] may be empty: that sequence does nothing) and run
  // them through the model. Returns logits for every new token, sequences in order: (sum Tq_i, V).
  std::vector<float> forward(const std::vector<std::vector<int32_t>>& tokens);
  int64_t cached(int seq) const;  // tokens in the cache of sequence `seq`

  // Greedy generation for one prompt (used by `minfer generate --backend reference`): resets to a
  // batch of one, returns up to max_new_tokens new tokens (argmax, ties to the lowest id), stopping
  // after eos_token_id (included) when the config has one.
  std::vector<int32_t> generate_greedy(const std::vector<int32_t>& prompt, int max_new_tokens);

  const ModelConfig& config() const { return cfg_; }

 private:
  struct SeqCache { std::vector<std::vector<float>> k, v; int64_t len = 0; };  // per layer: (len, nkv, hd)
  void ensure_table(int64_t positions);  // grow cos_sin_ to cover [0, positions)
  std::vector<float> forward_one(int seq, const std::vector<int32_t>& ids);  // (T, V) logits of one sequence
  const ModelConfig& cfg_;
  const ModelWeights& w_;
  DType act_;
  std::vector<double> cos_sin_;
  int64_t cos_sin_positions_ = 0;
  std::vector<SeqCache> seqs_;
};

}  // namespace minfer::ref
