// validate/op_runner.h: one case of one op on the GPU, shared by validate_all (check), bench_all
// (check, then time launch()) and the GPU tests. One runner per op lives in validate/run_<op>.cpp.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <cuda_runtime.h>

#include "kernels/common/status.h"
#include "validate/case.h"
#include "validate/compare.h"

namespace minfer::val {

// Scalar-reference work (multiply-adds) a runner's check() may spend on one case before it checks a
// sample (rows or sequences at a stride, always the last) instead of everything. validate_all keeps
// the default (4e9: every row of every validate-grid case); bench_all lowers it, since its check only
// refuses a wrong variant before timing and validate_all is the numerics gate.
double reference_budget();
void set_reference_budget(double multiply_adds);

class OpRunner {
 public:
  virtual ~OpRunner() = default;
  // Allocate device buffers and fill inputs with seeded random values (never all zeros).
  virtual void prepare(uint64_t seed) = 0;
  // Run the variant under test once on `stream` (what bench times). Must be re-runnable: in-place
  // ops restore or re-read their inputs so repeated launches see the same data sizes.
  virtual Status launch(cudaStream_t stream) = 0;
  // Poison outputs, launch once, copy back, run the reference on the same inputs, compare.
  virtual ErrorStats check(cudaStream_t stream) = 0;
  // Fewest bytes a launch must move through device memory (each input read once, output written once).
  virtual double bytes_moved() const = 0;
  virtual double flops() const { return 0; }
  // Device memory this runner holds (inputs, outputs, workspace), bytes.
  virtual size_t device_bytes() const = 0;
};

// The runner for c.sweep, or a std::invalid_argument naming the sweep. variant "minfer".
std::unique_ptr<OpRunner> make_runner(const Case& c);

// True when a CUDA device is usable (tests skip otherwise).
bool cuda_device_available();

}  // namespace minfer::val
