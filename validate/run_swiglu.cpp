// validate/run_swiglu.cpp: op runner for kernels/swiglu (sweep "swiglu", axes rows, inter).
// R = rows, I = inter. gate_up (R, 2I) and out (R, I) are contiguous (strides 2I and I).
#include <random>

#include "kernels/swiglu.h"
#include "reference/ops.h"
#include "validate/runner_util.h"

namespace minfer::val {
namespace {

class SwigluRunner : public OpRunner {
 public:
  explicit SwigluRunner(const Case& c) : dt_(c.dtype), rows_(c.axis("rows")), inter_(c.axis("inter")) {}

  void prepare(uint64_t seed) override {
    std::mt19937_64 rng(seed);
    gate_up_h_ = random_rounded(dt_, static_cast<size_t>(rows_ * 2 * inter_), rng, -4.f, 4.f);  // (R, 2I)
    gate_up_ = upload(dt_, gate_up_h_);
    out_ = DeviceBuffer(static_cast<size_t>(rows_ * inter_) * dtype_size(dt_));  // (R, I)
  }

  Status launch(cudaStream_t stream) override {
    SwigluParams p;
    p.dtype = dt_, p.gate_up = gate_up_.get(), p.out = out_.get();
    p.rows = rows_, p.inter = inter_, p.in_stride = 2 * inter_, p.out_stride = inter_;
    return swiglu_forward(p, stream);
  }

  ErrorStats check(cudaStream_t stream) override {
    poison(out_.get(), out_.bytes(), stream);
    MINFER_STATUS_CHECK(launch(stream));
    const std::vector<float> out = download(dt_, out_.get(), static_cast<size_t>(rows_ * inter_), stream);
    std::vector<float> ref(out.size());
    ref::swiglu(dt_, gate_up_h_.data(), ref.data(), rows_, inter_, 2 * inter_, inter_);
    return compare(out.data(), ref.data(), static_cast<int64_t>(ref.size()));
  }

  double bytes_moved() const override { return static_cast<double>(rows_ * inter_ * 3) * dtype_size(dt_); }
  size_t device_bytes() const override { return gate_up_.bytes() + out_.bytes(); }

 private:
  DType dt_;
  int64_t rows_, inter_;
  std::vector<float> gate_up_h_;  // (R, 2I) host copy of the device input
  DeviceBuffer gate_up_, out_;
};

}  // namespace

std::unique_ptr<OpRunner> make_swiglu_runner(const Case& c) { return std::make_unique<SwigluRunner>(c); }

}  // namespace minfer::val
