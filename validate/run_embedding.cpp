// validate/run_embedding.cpp: op runner for kernels/embedding (sweep "embedding", axes tokens, vocab,
// hidden). T = tokens, V = vocab, H = hidden. The (V, H) table can be large (V = 152k), so its values
// come from a counter-based hash of (seed, index), uploaded in chunks; the host keeps only the rows
// the ids select, and the reference runs on that compacted table (same ids, remapped).
#include <algorithm>
#include <map>
#include <random>

#include "kernels/embedding.h"
#include "reference/ops.h"
#include "validate/runner_util.h"

namespace minfer::val {
namespace {

// Table element i as dtype t: a splitmix64 hash of (seed, i) mapped to [-1, 1), rounded.
float table_value(DType t, uint64_t seed, uint64_t i) {
  uint64_t z = seed * 0x9e3779b97f4a7c15ull + i + 0x632be59bd9b4e019ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return round_to(t, static_cast<float>(static_cast<double>(z >> 11) * 0x1.0p-52 - 1.0));
}

class EmbeddingRunner : public OpRunner {
 public:
  explicit EmbeddingRunner(const Case& c)
      : dt_(c.dtype), tokens_(c.axis("tokens")), vocab_(c.axis("vocab")), hidden_(c.axis("hidden")) {}

  void prepare(uint64_t seed) override {
    seed_ = seed;
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(vocab_ - 1));
    ids_h_.resize(static_cast<size_t>(tokens_));
    for (auto& id : ids_h_) id = pick(rng);
    if (tokens_ > 2) ids_h_[static_cast<size_t>(tokens_ / 2)] = static_cast<int32_t>(vocab_);  // out of range
    ids_ = DeviceBuffer(ids_h_.size() * sizeof(int32_t));
    MINFER_CUDA_CHECK(cudaMemcpy(ids_.get(), ids_h_.data(), ids_.bytes(), cudaMemcpyHostToDevice));
    upload_table();
    out_ = DeviceBuffer(static_cast<size_t>(tokens_ * hidden_) * dtype_size(dt_));  // (T, H)
  }

  Status launch(cudaStream_t stream) override {
    EmbeddingParams p;
    p.dtype = dt_, p.ids = static_cast<const int32_t*>(ids_.get()), p.table = table_.get(), p.out = out_.get();
    p.num_tokens = tokens_, p.vocab = vocab_, p.hidden = hidden_;
    return embedding_forward(p, stream);
  }

  ErrorStats check(cudaStream_t stream) override {
    poison(out_.get(), out_.bytes(), stream);
    MINFER_STATUS_CHECK(launch(stream));
    const std::vector<float> out = download(dt_, out_.get(), static_cast<size_t>(tokens_ * hidden_), stream);
    // Compact table: the distinct in-range rows; out-of-range ids stay out of range (-> zeros).
    std::map<int32_t, int32_t> slot;
    for (int32_t id : ids_h_) if (id >= 0 && id < vocab_) slot.emplace(id, 0);
    std::vector<float> table(slot.size() * static_cast<size_t>(hidden_));  // (rows used, H)
    int32_t next = 0;
    for (auto& [id, s] : slot) {
      s = next++;
      for (int64_t j = 0; j < hidden_; ++j)
        table[static_cast<size_t>(s * hidden_ + j)] = table_value(dt_, seed_, static_cast<uint64_t>(id * hidden_ + j));
    }
    std::vector<int32_t> ids(ids_h_.size());
    for (size_t t = 0; t < ids.size(); ++t) {
      auto it = slot.find(ids_h_[t]);
      ids[t] = it == slot.end() ? next : it->second;  // `next` == compact vocab: out of range
    }
    std::vector<float> ref(out.size());
    ref::embedding(dt_, ids.data(), table.data(), ref.data(), tokens_, next, hidden_);
    return compare(out.data(), ref.data(), static_cast<int64_t>(ref.size()));
  }

  // ids read, one table row read per token, one output row written per token.
  double bytes_moved() const override {
    return static_cast<double>(tokens_) * 4 + 2.0 * static_cast<double>(tokens_ * hidden_) * dtype_size(dt_);
  }
  size_t device_bytes() const override { return ids_.bytes() + table_.bytes() + out_.bytes(); }

 private:
  void upload_table() {
    const size_t n = static_cast<size_t>(vocab_ * hidden_), chunk = size_t{1} << 22;
    table_ = DeviceBuffer(n * dtype_size(dt_));  // (V, H)
    std::vector<unsigned char> raw(chunk * dtype_size(dt_));
    for (size_t b = 0; b < n; b += chunk) {
      const size_t m = std::min(chunk, n - b);
      for (size_t i = 0; i < m; ++i) store_as(dt_, raw.data(), i, table_value(dt_, seed_, b + i));
      MINFER_CUDA_CHECK(cudaMemcpy(static_cast<unsigned char*>(table_.get()) + b * dtype_size(dt_), raw.data(),
                                   m * dtype_size(dt_), cudaMemcpyHostToDevice));
    }
  }

  DType dt_;
  int64_t tokens_, vocab_, hidden_;
  uint64_t seed_ = 0;
  std::vector<int32_t> ids_h_;  // (T) host copy of the ids
  DeviceBuffer ids_, table_, out_;
};

}  // namespace

std::unique_ptr<OpRunner> make_embedding_runner(const Case& c) { return std::make_unique<EmbeddingRunner>(c); }

}  // namespace minfer::val
