// validate/run_rmsnorm.cpp: op runner for kernels/rmsnorm (sweep "norm", axes rows, hidden, residual).
// R = rows, H = hidden. With residual=1 the fused add writes residual_out to its own buffer (not in
// place), so repeated launches see the same inputs; out and residual_out are compared as one vector.
#include <random>

#include "kernels/rmsnorm.h"
#include "reference/ops.h"
#include "validate/runner_util.h"

namespace minfer::val {
namespace {

constexpr float kEps = 1e-6f;

class NormRunner : public OpRunner {
 public:
  explicit NormRunner(const Case& c)
      : dt_(c.dtype), rows_(c.axis("rows")), hidden_(c.axis("hidden")), resid_(c.axis("residual") != 0) {}

  void prepare(uint64_t seed) override {
    std::mt19937_64 rng(seed);
    const size_t n = static_cast<size_t>(rows_ * hidden_);
    x_h_ = random_rounded(dt_, n, rng, -2.f, 2.f);                              // (R, H)
    w_h_ = random_rounded(dt_, static_cast<size_t>(hidden_), rng, 0.5f, 1.5f);  // (H)
    x_ = upload(dt_, x_h_), w_ = upload(dt_, w_h_);
    out_ = DeviceBuffer(n * dtype_size(dt_));  // (R, H)
    if (resid_) {
      res_h_ = random_rounded(dt_, n, rng, -2.f, 2.f);  // (R, H)
      res_in_ = upload(dt_, res_h_);
      res_out_ = DeviceBuffer(n * dtype_size(dt_));  // (R, H)
    }
  }

  Status launch(cudaStream_t stream) override {
    RmsNormParams p;
    p.dtype = dt_, p.x = x_.get(), p.weight = w_.get(), p.out = out_.get();
    p.residual_in = resid_ ? res_in_.get() : nullptr, p.residual_out = resid_ ? res_out_.get() : nullptr;
    p.rows = rows_, p.hidden = hidden_, p.eps = kEps;
    return rmsnorm_forward(p, stream);
  }

  ErrorStats check(cudaStream_t stream) override {
    const size_t n = static_cast<size_t>(rows_ * hidden_);
    poison(out_.get(), out_.bytes(), stream);
    if (resid_) poison(res_out_.get(), res_out_.bytes(), stream);
    MINFER_STATUS_CHECK(launch(stream));
    std::vector<float> got = download(dt_, out_.get(), n, stream);
    std::vector<float> ref(n), ref_res(resid_ ? n : 0);
    ref::rmsnorm(dt_, x_h_.data(), resid_ ? res_h_.data() : nullptr, resid_ ? ref_res.data() : nullptr,
                 w_h_.data(), ref.data(), rows_, hidden_, kEps);
    if (resid_) {
      got = concat(got, download(dt_, res_out_.get(), n, stream));
      ref = concat(ref, ref_res);
    }
    return compare(got.data(), ref.data(), static_cast<int64_t>(ref.size()));
  }

  // x, weight (and residual_in) read once; out (and residual_out) written once.
  double bytes_moved() const override {
    const double row_bytes = static_cast<double>(rows_ * hidden_) * dtype_size(dt_);
    return row_bytes * (resid_ ? 4 : 2) + static_cast<double>(hidden_) * dtype_size(dt_);
  }
  size_t device_bytes() const override {
    return x_.bytes() + w_.bytes() + out_.bytes() + res_in_.bytes() + res_out_.bytes();
  }

 private:
  DType dt_;
  int64_t rows_, hidden_;
  bool resid_;
  std::vector<float> x_h_, w_h_, res_h_;  // host copies of the device inputs
  DeviceBuffer x_, w_, out_, res_in_, res_out_;
};

}  // namespace

std::unique_ptr<OpRunner> make_norm_runner(const Case& c) { return std::make_unique<NormRunner>(c); }

}  // namespace minfer::val
