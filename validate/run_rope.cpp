// validate/run_rope.cpp: op runner for kernels/rope (sweep "rope", axes tokens, heads, kv_heads,
// head_dim, qk_norm, llama3). T = tokens, nh = heads, nkv = kv_heads, hd = head_dim, P = 32768.
// q (T, nh, hd) and k (T, nkv, hd) are contiguous. Positions are random in [0, P); the table comes from
// ref::rope_cos_sin (theta 1e6, or llama3 scaling: theta 500000, factor 8, low 1, high 4, orig 8192),
// stored as fp32 for the kernel; the reference gets the same fp32 values. RoPE is in place: launch()
// rotates whatever q and k hold (magnitudes stay bounded), and check() restores the inputs first.
#include <random>

#include "engine/core/config.h"
#include "kernels/rope.h"
#include "reference/ops.h"
#include "validate/runner_util.h"

namespace minfer::val {
namespace {

constexpr int64_t kPositions = 32768;
constexpr float kEps = 1e-6f;

class RopeRunner : public OpRunner {
 public:
  explicit RopeRunner(const Case& c)
      : dt_(c.dtype), tokens_(c.axis("tokens")), heads_(static_cast<int>(c.axis("heads"))),
        kv_heads_(static_cast<int>(c.axis("kv_heads"))), hd_(static_cast<int>(c.axis("head_dim"))),
        qk_norm_(c.axis("qk_norm") != 0), llama3_(c.axis("llama3") != 0) {}

  void prepare(uint64_t seed) override {
    std::mt19937_64 rng(seed);
    q_h_ = random_rounded(dt_, static_cast<size_t>(tokens_ * heads_ * hd_), rng, -2.f, 2.f);     // (T, nh, hd)
    k_h_ = random_rounded(dt_, static_cast<size_t>(tokens_ * kv_heads_ * hd_), rng, -2.f, 2.f);  // (T, nkv, hd)
    q_ = upload(dt_, q_h_), k_ = upload(dt_, k_h_);
    if (qk_norm_) {
      qn_h_ = random_rounded(dt_, static_cast<size_t>(hd_), rng, 0.5f, 1.5f);  // (hd)
      kn_h_ = random_rounded(dt_, static_cast<size_t>(hd_), rng, 0.5f, 1.5f);  // (hd)
      qn_ = upload(dt_, qn_h_), kn_ = upload(dt_, kn_h_);
    }
    std::uniform_int_distribution<int32_t> pick(0, static_cast<int32_t>(kPositions - 1));
    pos_h_.resize(static_cast<size_t>(tokens_));
    for (auto& p : pos_h_) p = pick(rng);
    pos_ = DeviceBuffer(pos_h_.size() * sizeof(int32_t));
    MINFER_CUDA_CHECK(cudaMemcpy(pos_.get(), pos_h_.data(), pos_.bytes(), cudaMemcpyHostToDevice));
    build_table();
  }

  Status launch(cudaStream_t stream) override {
    RopeParams p;
    p.dtype = dt_, p.q = q_.get(), p.k = k_.get(), p.q_stride = int64_t{heads_} * hd_;
    p.k_stride = int64_t{kv_heads_} * hd_, p.positions = static_cast<const int32_t*>(pos_.get());
    p.cos_sin = static_cast<const float*>(table_.get());
    p.q_norm = qk_norm_ ? qn_.get() : nullptr, p.k_norm = qk_norm_ ? kn_.get() : nullptr, p.norm_eps = kEps;
    p.num_tokens = tokens_, p.max_positions = kPositions, p.heads = heads_, p.kv_heads = kv_heads_;
    p.head_dim = hd_;
    return rope_forward(p, stream);
  }

  ErrorStats check(cudaStream_t stream) override {
    upload_into(dt_, q_h_, q_.get(), stream);  // undo earlier launches
    upload_into(dt_, k_h_, k_.get(), stream);
    MINFER_STATUS_CHECK(launch(stream));
    const std::vector<float> got = concat(download(dt_, q_.get(), q_h_.size(), stream),
                                          download(dt_, k_.get(), k_h_.size(), stream));
    std::vector<float> q = q_h_, k = k_h_;
    ref::rope(dt_, q.data(), k.data(), int64_t{heads_} * hd_, int64_t{kv_heads_} * hd_, pos_h_.data(),
              table_h_.data(), qk_norm_ ? qn_h_.data() : nullptr, qk_norm_ ? kn_h_.data() : nullptr, kEps,
              tokens_, kPositions, heads_, kv_heads_, hd_);
    const std::vector<float> ref = concat(q, k);
    return compare(got.data(), ref.data(), static_cast<int64_t>(ref.size()));
  }

  // q and k read and written once, positions, one table row (hd floats) per token, the norm weights.
  double bytes_moved() const override {
    const double s = static_cast<double>(dtype_size(dt_));
    const double qk = static_cast<double>(tokens_ * (heads_ + kv_heads_) * hd_) * s;
    return 2 * qk + static_cast<double>(tokens_) * (4 + 4.0 * hd_) + (qk_norm_ ? 2.0 * hd_ * s : 0);
  }
  size_t device_bytes() const override {
    return q_.bytes() + k_.bytes() + qn_.bytes() + kn_.bytes() + pos_.bytes() + table_.bytes();
  }

 private:
  // ref table in double -> fp32 on the device; the host keeps the fp32-rounded values as doubles.
  void build_table() {
    ModelConfig cfg;
    cfg.heads = heads_, cfg.kv_heads = kv_heads_, cfg.head_dim = hd_, cfg.hidden = heads_ * hd_;
    cfg.max_position = static_cast<int>(kPositions);
    cfg.rope_theta = llama3_ ? 500000.0 : 1e6;
    if (llama3_) cfg.rope_scaling = RopeScaling{true, 8.0, 1.0, 4.0, 8192};
    table_h_ = ref::rope_cos_sin(cfg, kPositions);  // (P, hd/2, 2)
    std::vector<float> t32(table_h_.size());
    for (size_t i = 0; i < t32.size(); ++i) t32[i] = static_cast<float>(table_h_[i]), table_h_[i] = t32[i];
    table_ = DeviceBuffer(t32.size() * sizeof(float));
    MINFER_CUDA_CHECK(cudaMemcpy(table_.get(), t32.data(), table_.bytes(), cudaMemcpyHostToDevice));
  }

  DType dt_;
  int64_t tokens_;
  int heads_, kv_heads_, hd_;
  bool qk_norm_, llama3_;
  std::vector<float> q_h_, k_h_, qn_h_, kn_h_;  // pristine host copies of the device inputs
  std::vector<int32_t> pos_h_;                  // (T)
  std::vector<double> table_h_;                 // (P, hd/2, 2) fp32 values as double
  DeviceBuffer q_, k_, qn_, kn_, pos_, table_;
};

}  // namespace

std::unique_ptr<OpRunner> make_rope_runner(const Case& c) { return std::make_unique<RopeRunner>(c); }

}  // namespace minfer::val
