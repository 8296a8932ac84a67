// validate/run_attention.cpp: op runner for kernels/flash_prefill (sweep "attention", axes batch,
// seqlen, heads, kv_heads, head_dim, causal, ragged, prefix).
// B = batch, nh/nkv heads, hd head_dim. Sequence b has Tq_b new query tokens and Tk_b = Tq_b + P_b
// keys (P_b cached prefix tokens: chunked prefill when prefix > 0). ragged=0: Tq_b = seqlen and
// P_b = prefix for every b; ragged=1: lengths shrink deterministically with b (b = 0 keeps the axis
// values), so one batch mixes lengths. Inputs are packed: q (sum Tq, nh, hd), k/v (sum Tk, nkv, hd).
#include <algorithm>
#include <cmath>
#include <random>

#include "kernels/flash_prefill.h"
#include "reference/ops.h"
#include "validate/runner_util.h"

namespace minfer::val {
namespace {

// Sequence b's length for an axis value n (ragged: n minus a deterministic offset, at least `lo`).

int64_t ragged_len(int64_t n, int64_t b, bool ragged, int64_t lo) {
  if (!ragged || n <= lo) return n;
  return std::max<int64_t>(lo, n - (b * 37) % (n / 2 + 1));
}

class AttentionRunner : public OpRunner {
 public:
  explicit AttentionRunner(const Case& c)
      : dt_(c.dtype), batch_(c.axis("batch")), heads_(c.axis("heads")), kv_heads_(c.axis("kv_heads")),
        hd_(c.axis("head_dim")), causal_(c.axis("causal") != 0) {
    const bool ragged = c.axis("ragged") != 0;
    cu_q_.push_back(0), cu_k_.push_back(0);
    for (int64_t b = 0; b < batch_; ++b) {
      const int64_t tq = ragged_len(c.axis("seqlen"), b, ragged, 1);
      const int64_t tk = tq + ragged_len(c.axis("prefix"), b, ragged, 0);
      cu_q_.push_back(static_cast<int32_t>(cu_q_.back() + tq));
      cu_k_.push_back(static_cast<int32_t>(cu_k_.back() + tk));
      max_q_ = std::max(max_q_, tq);
    }
  }

  void prepare(uint64_t seed) override {
    std::mt19937_64 rng(seed);
    q_h_ = random_rounded(dt_, q_elems(), rng, -2.f, 2.f);  // (TQ, nh, hd)
    k_h_ = random_rounded(dt_, kv_elems(), rng, -1.f, 1.f);  // (TK, nkv, hd)
    v_h_ = random_rounded(dt_, kv_elems(), rng, -1.f, 1.f);  // (TK, nkv, hd)
    q_ = upload(dt_, q_h_), k_ = upload(dt_, k_h_), v_ = upload(dt_, v_h_);
    out_ = DeviceBuffer(q_elems() * dtype_size(dt_));  // (TQ, nh, hd)
    cu_q_d_ = upload_i32(cu_q_), cu_k_d_ = upload_i32(cu_k_);
  }

  Status launch(cudaStream_t stream) override {
    FlashPrefillParams p;
    p.dtype = dt_, p.q = q_.get(), p.k = k_.get(), p.v = v_.get(), p.out = out_.get();
    p.cu_seqlens_q = static_cast<const int32_t*>(cu_q_d_.get());
    p.cu_seqlens_k = static_cast<const int32_t*>(cu_k_d_.get());
    p.batch = static_cast<int>(batch_), p.max_seqlen_q = static_cast<int>(max_q_);
    p.heads = static_cast<int>(heads_), p.kv_heads = static_cast<int>(kv_heads_);
    p.head_dim = static_cast<int>(hd_), p.causal = causal_;
    p.total_k = cu_k_.back();  // the key tensor's extent (the TMA variant's maps)
    return flash_prefill_forward(p, stream);
  }

  // Every query row when the scalar reference's work is at most reference_budget() multiply-adds; past that,
  // every stride-th row of each sequence plus its last (all heads of a row), so bench's check of
  // the largest cases stays within minutes. Rows are checked with Tq = 1 against their visible keys.
  ErrorStats check(cudaStream_t stream) override {
    poison(out_.get(), out_.bytes(), stream);
    MINFER_STATUS_CHECK(launch(stream));
    const std::vector<float> all = download(dt_, out_.get(), q_elems(), stream);
    const int64_t qrow = heads_ * hd_, kvrow = kv_heads_ * hd_;
    const int64_t stride = std::max<int64_t>(1, static_cast<int64_t>(flops() / 2 / reference_budget()) + 1);
    std::vector<float> got, ref;
    std::vector<float> one(static_cast<size_t>(qrow));
    for (int64_t b = 0; b < batch_; ++b) {
      const int64_t q0 = cu_q_[b], k0 = cu_k_[b], tq = cu_q_[b + 1] - q0, tk = cu_k_[b + 1] - k0;
      if (stride == 1) {  // the whole sequence in one reference call
        ref.resize(static_cast<size_t>(q0 * qrow + tq * qrow));
        ref::attention(dt_, q_h_.data() + q0 * qrow, k_h_.data() + k0 * kvrow, v_h_.data() + k0 * kvrow,
                       ref.data() + q0 * qrow, tq, tk, static_cast<int>(heads_), static_cast<int>(kv_heads_),
                       static_cast<int>(hd_), causal_, 1.0 / std::sqrt(static_cast<double>(hd_)));
        continue;
      }
      for (int64_t i = 0; i < tq; ++i) {
        if (i % stride != 0 && i != tq - 1) continue;
        const int64_t visible = causal_ ? tk - tq + i + 1 : tk;
        ref::attention(dt_, q_h_.data() + (q0 + i) * qrow, k_h_.data() + k0 * kvrow, v_h_.data() + k0 * kvrow,
                       one.data(), 1, visible, static_cast<int>(heads_), static_cast<int>(kv_heads_),
                       static_cast<int>(hd_), causal_, 1.0 / std::sqrt(static_cast<double>(hd_)));
        ref.insert(ref.end(), one.begin(), one.end());
        got.insert(got.end(), all.begin() + (q0 + i) * qrow, all.begin() + (q0 + i + 1) * qrow);
      }
    }
    if (stride == 1) got = all;
    return compare(got.data(), ref.data(), static_cast<int64_t>(ref.size()));
  }

  // q, k, v read once, out written once.
  double bytes_moved() const override { return 2.0 * (q_elems() + kv_elems()) * dtype_size(dt_); }
  // 4 * hd * nh per visible (query, key) pair; causal counts Tq*(Tk-Tq) + Tq^2/2 pairs (FA convention).
  double flops() const override {
    double pairs = 0;
    for (int64_t b = 0; b < batch_; ++b) {
      const double tq = cu_q_[b + 1] - cu_q_[b], tk = cu_k_[b + 1] - cu_k_[b];
      pairs += causal_ ? tq * (tk - tq) + tq * tq / 2 : tq * tk;
    }
    return 4.0 * static_cast<double>(heads_ * hd_) * pairs;
  }
  size_t device_bytes() const override {
    return q_.bytes() + k_.bytes() + v_.bytes() + out_.bytes() + cu_q_d_.bytes() + cu_k_d_.bytes();
  }

 private:
  size_t q_elems() const { return static_cast<size_t>(cu_q_.back() * heads_ * hd_); }
  size_t kv_elems() const { return static_cast<size_t>(cu_k_.back() * kv_heads_ * hd_); }
  static DeviceBuffer upload_i32(const std::vector<int32_t>& h) {
    DeviceBuffer d(h.size() * sizeof(int32_t));
    MINFER_CUDA_CHECK(cudaMemcpy(d.get(), h.data(), d.bytes(), cudaMemcpyHostToDevice));
    return d;
  }

  DType dt_;
  int64_t batch_, heads_, kv_heads_, hd_;
  bool causal_;
  int64_t max_q_ = 0;
  std::vector<int32_t> cu_q_, cu_k_;      // (B + 1) row offsets
  std::vector<float> q_h_, k_h_, v_h_;    // host copies of the device inputs
  DeviceBuffer q_, k_, v_, out_, cu_q_d_, cu_k_d_;
};

}  // namespace

std::unique_ptr<OpRunner> make_attention_runner(const Case& c) { return std::make_unique<AttentionRunner>(c); }

}  // namespace minfer::val
