// validate/run_decode.cpp: op runner for kernels/decode_attention (sweep "decode", axes batch,
// kv_len, heads, kv_heads, head_dim, paged, ragged).
// B = batch, nh/nkv heads, hd head_dim, one query token per sequence. Sequence b holds len_b cached
// tokens: kv_len, or with ragged=1 a deterministic shorter length for b > 0. paged=0: contiguous
// cache (B, kv_len, nkv, hd); paged=1: pages of 16 tokens, paged=N (N >= 16): pages of N tokens, in a
// pool (P, page, nkv, hd) handed out in a shuffled order through the block table (B, MP). Cache rows past a sequence's length hold NaN,
// so a kernel that reads past the end fails the compare.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "kernels/decode_attention.h"
#include "reference/ops.h"
#include "validate/runner_util.h"

namespace minfer::val {
namespace {

constexpr int64_t kDefaultPage = 16;  // paged=1

class DecodeRunner : public OpRunner {
 public:
  explicit DecodeRunner(const Case& c)
      : dt_(c.dtype), batch_(c.axis("batch")), max_len_(c.axis("kv_len")), heads_(c.axis("heads")),
        kv_heads_(c.axis("kv_heads")), hd_(c.axis("head_dim")), paged_(c.axis("paged") != 0),
        page_(c.axis("paged") > 1 ? c.axis("paged") : kDefaultPage) {
    const bool ragged = c.axis("ragged") != 0;
    for (int64_t b = 0; b < batch_; ++b)
      lens_.push_back(static_cast<int32_t>(ragged && max_len_ > 1 ? std::max<int64_t>(1, max_len_ - (b * 97) % (max_len_ / 2 + 1))
                                                                 : max_len_));
  }

  void prepare(uint64_t seed) override {
    std::mt19937_64 rng(seed);
    q_h_ = random_rounded(dt_, static_cast<size_t>(batch_ * heads_ * hd_), rng, -2.f, 2.f);  // (B, nh, hd)
    q_ = upload(dt_, q_h_);
    out_ = DeviceBuffer(q_h_.size() * dtype_size(dt_));  // (B, nh, hd)
    const int64_t row = kv_heads_ * hd_;
    if (paged_) build_block_table(rng);
    const int64_t rows = paged_ ? pages_ * page_ : batch_ * max_len_;
    std::vector<float> kc(static_cast<size_t>(rows * row), std::numeric_limits<float>::quiet_NaN());
    std::vector<float> vc(kc);
    k_h_.clear(), v_h_.clear();
    for (int64_t b = 0; b < batch_; ++b) {  // per sequence, its tokens in order: the reference's view
      std::vector<float> kb = random_rounded(dt_, static_cast<size_t>(lens_[b] * row), rng, -1.f, 1.f);
      std::vector<float> vb = random_rounded(dt_, static_cast<size_t>(lens_[b] * row), rng, -1.f, 1.f);
      for (int64_t i = 0; i < lens_[b]; ++i) {
        std::copy_n(kb.begin() + i * row, row, kc.begin() + cache_row(b, i) * row);
        std::copy_n(vb.begin() + i * row, row, vc.begin() + cache_row(b, i) * row);
      }
      k_h_.push_back(std::move(kb)), v_h_.push_back(std::move(vb));
    }
    k_ = upload(dt_, kc), v_ = upload(dt_, vc);
    lens_d_ = upload_i32(lens_);
    if (paged_) table_d_ = upload_i32(table_);
    int dev = 0, sms = 0;
    MINFER_CUDA_CHECK(cudaGetDevice(&dev));
    MINFER_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    const int resident = decode_attention_resident_blocks(
        dt_, static_cast<int>(hd_), paged_ ? static_cast<int>(page_) : 0, 0,
        decode_attention_unsplit_blocks(static_cast<int>(batch_), static_cast<int>(heads_), static_cast<int>(kv_heads_)));
    splits_ = decode_attention_splits(static_cast<int>(batch_), static_cast<int>(heads_), static_cast<int>(kv_heads_),
                                      static_cast<int>(max_len_), sms, resident);
    size_t ws = decode_attention_workspace_bytes(static_cast<int>(batch_), static_cast<int>(heads_),
                                                 static_cast<int>(hd_), splits_);
    ws_ = DeviceBuffer(ws);
  }

  Status launch(cudaStream_t stream) override {
    DecodeAttentionParams p;
    p.dtype = dt_, p.q = q_.get(), p.k_cache = k_.get(), p.v_cache = v_.get(), p.out = out_.get();
    p.cache_lens = static_cast<const int32_t*>(lens_d_.get());
    p.block_table = paged_ ? static_cast<const int32_t*>(table_d_.get()) : nullptr;
    p.batch = static_cast<int>(batch_), p.heads = static_cast<int>(heads_), p.kv_heads = static_cast<int>(kv_heads_);
    p.head_dim = static_cast<int>(hd_), p.max_len = max_len_, p.page_size = static_cast<int>(page_);
    p.max_pages = static_cast<int>(max_pages()), p.max_kv_len = static_cast<int>(max_len_);
    p.num_splits = splits_, p.workspace = static_cast<float*>(ws_.get()), p.workspace_bytes = ws_.bytes();
    return decode_attention_forward(p, stream);
  }

  ErrorStats check(cudaStream_t stream) override {
    poison(out_.get(), out_.bytes(), stream);
    MINFER_STATUS_CHECK(launch(stream));
    const std::vector<float> got = download(dt_, out_.get(), q_h_.size(), stream);
    std::vector<float> ref(q_h_.size());
    const int64_t qrow = heads_ * hd_;
    // Past reference_budget() multiply-adds, every stride-th sequence plus the last is checked.
    const int64_t stride = std::max<int64_t>(1, static_cast<int64_t>(flops() / 2 / reference_budget()) + 1);
    std::vector<float> got_s, ref_s;
    for (int64_t b = 0; b < batch_; ++b) {
      if (b % stride != 0 && b != batch_ - 1) continue;
      ref::attention(dt_, q_h_.data() + b * qrow, k_h_[b].data(), v_h_[b].data(), ref.data() + b * qrow, 1, lens_[b],
                     static_cast<int>(heads_), static_cast<int>(kv_heads_), static_cast<int>(hd_), true,
                     1.0 / std::sqrt(static_cast<double>(hd_)));
      ref_s.insert(ref_s.end(), ref.begin() + b * qrow, ref.begin() + (b + 1) * qrow);
      got_s.insert(got_s.end(), got.begin() + b * qrow, got.begin() + (b + 1) * qrow);
    }
    return compare(got_s.data(), ref_s.data(), static_cast<int64_t>(ref_s.size()));
  }

  // q read and out written once; every cached K and V byte read once.
  double bytes_moved() const override {
    const double kv = 2.0 * std::accumulate(lens_.begin(), lens_.end(), 0.0) * kv_heads_ * hd_;
    return (kv + 2.0 * batch_ * heads_ * hd_) * dtype_size(dt_);
  }
  double flops() const override {
    return 4.0 * static_cast<double>(heads_ * hd_) * std::accumulate(lens_.begin(), lens_.end(), 0.0);
  }
  size_t device_bytes() const override {
    return q_.bytes() + k_.bytes() + v_.bytes() + out_.bytes() + lens_d_.bytes() + table_d_.bytes() + ws_.bytes();
  }

 private:
  int64_t max_pages() const { return (max_len_ + page_ - 1) / page_; }
  // Cache row (in units of nkv*hd elements) of token i of sequence b.
  int64_t cache_row(int64_t b, int64_t i) const {
    return paged_ ? table_[b * max_pages() + i / page_] * page_ + i % page_ : b * max_len_ + i;
  }
  // Each sequence gets the pages it needs, from a shuffled pool; unused table entries are -1.
  void build_block_table(std::mt19937_64& rng) {
    pages_ = 0;
    for (int32_t l : lens_) pages_ += (l + page_ - 1) / page_;
    std::vector<int32_t> ids(static_cast<size_t>(pages_));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    table_.assign(static_cast<size_t>(batch_ * max_pages()), -1);
    size_t next = 0;
    for (int64_t b = 0; b < batch_; ++b)
      for (int64_t pg = 0; pg < (lens_[b] + page_ - 1) / page_; ++pg) table_[b * max_pages() + pg] = ids[next++];
  }
  static DeviceBuffer upload_i32(const std::vector<int32_t>& h) {
    DeviceBuffer d(h.size() * sizeof(int32_t));
    MINFER_CUDA_CHECK(cudaMemcpy(d.get(), h.data(), d.bytes(), cudaMemcpyHostToDevice));
    return d;
  }

  DType dt_;
  int64_t batch_, max_len_, heads_, kv_heads_, hd_;
  bool paged_;
  int64_t page_;  // tokens per page when paged_
  std::vector<int32_t> lens_;                  // (B) cached tokens per sequence
  std::vector<int32_t> table_;                 // (B, MP) page ids (paged only)
  int64_t pages_ = 0;                          // P
  int splits_ = 1;
  std::vector<float> q_h_;                     // (B, nh, hd)
  std::vector<std::vector<float>> k_h_, v_h_;  // per b: (len_b, nkv, hd), what the reference reads
  DeviceBuffer q_, k_, v_, out_, lens_d_, table_d_, ws_;
};

}  // namespace

std::unique_ptr<OpRunner> make_decode_runner(const Case& c) { return std::make_unique<DecodeRunner>(c); }

}  // namespace minfer::val
