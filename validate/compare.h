// validate/compare.h: error metrics of DESIGN.md section 4.
// rel_err = ||out - ref||_2 / ||ref||_2 (normwise), with max_abs, max_rel and the worst element.
// Any NaN or Inf in out fails, whatever the norms say.
#pragma once
#include <cstdint>
#include <string>

namespace minfer::val {

struct ErrorStats {
  double rel_err = 0;       // normwise relative error
  double max_abs = 0;       // max |out - ref|
  double max_rel = 0;       // max |out - ref| / max(|ref|, tiny)
  int64_t worst_index = -1; // element with the largest |out - ref|
  int64_t nonfinite = 0;    // NaN/Inf count in out
  int64_t count = 0;        // elements compared
  bool pass(double tol) const { return nonfinite == 0 && count > 0 && rel_err <= tol; }
  std::string summary() const;  // "rel_err=1.2e-05 max_abs=... worst=[123]"
};

ErrorStats compare(const float* out, const float* ref, int64_t n);

}  // namespace minfer::val
