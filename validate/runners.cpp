// validate/runners.cpp: make_runner (sweep name -> the op's runner), cuda_device_available, and the
// reference budget of the runners' checks.
#include <atomic>
#include <stdexcept>

#include <cuda_runtime.h>

#include "validate/op_runner.h"
#include "validate/runner_util.h"

namespace minfer::val {

// Attention runners (validate/run_attention.cpp, validate/run_decode.cpp).
std::unique_ptr<OpRunner> make_attention_runner(const Case& c);
std::unique_ptr<OpRunner> make_decode_runner(const Case& c);

std::unique_ptr<OpRunner> make_runner(const Case& c) {
  if (c.sweep == "embedding") return make_embedding_runner(c);
  if (c.sweep == "norm") return make_norm_runner(c);
  if (c.sweep == "rope") return make_rope_runner(c);
  if (c.sweep == "swiglu") return make_swiglu_runner(c);
  if (c.sweep == "attention") return make_attention_runner(c);
  if (c.sweep == "decode") return make_decode_runner(c);
  throw std::invalid_argument("make_runner: unknown sweep '" + c.sweep + "' (known: embedding, norm, rope, swiglu, attention, decode)");
}

bool cuda_device_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of a missing driver/device
    return false;
  }
  return n > 0;
}

}  // namespace minfer::val

namespace minfer::val {
namespace {
std::atomic<double> g_reference_budget{4e9};
}  // namespace
double reference_budget() { return g_reference_budget.load(); }
void set_reference_budget(double multiply_adds) { g_reference_budget.store(multiply_adds > 1 ? multiply_adds : 1); }
}  // namespace minfer::val
