// validate/compare.cpp: the error metrics of DESIGN.md section 4 (see validate/compare.h).
// n = elements compared. Norms accumulate in double over the finite elements; any NaN/Inf in out
// is counted, makes rel_err and max_abs infinite, and becomes the worst index (the first one seen).
// A zero reference: rel_err is 0 when out is exactly zero too, else infinite (no relative scale).
#include "validate/compare.h"

#include <cmath>
#include <cstdio>
#include <limits>

namespace minfer::val {

namespace {

constexpr double kTiny = std::numeric_limits<float>::min();  // floor of |ref| in max_rel
constexpr double kInf = std::numeric_limits<double>::infinity();

struct Accum {
  double diff2 = 0, ref2 = 0;
  int64_t first_nonfinite = -1;
};

// One element: updates the norms, the maxima and the worst index.
void accumulate(ErrorStats& s, Accum& a, int64_t i, double o, double r) {
  if (!std::isfinite(o)) {
    ++s.nonfinite;
    if (a.first_nonfinite < 0) a.first_nonfinite = i;
    return;
  }
  const double d = std::fabs(o - r);
  a.diff2 += d * d;
  a.ref2 += r * r;
  if (d > s.max_abs || s.worst_index < 0) {
    s.max_abs = d;
    s.worst_index = i;
  }
  const double rel = d / std::fmax(std::fabs(r), kTiny);
  if (rel > s.max_rel) s.max_rel = rel;
}

double normwise(const Accum& a) {
  const double num = std::sqrt(a.diff2), den = std::sqrt(a.ref2);
  if (std::isnan(num) || std::isnan(den)) return std::numeric_limits<double>::quiet_NaN();
  if (den == 0) return num == 0 ? 0.0 : kInf;
  return num / den;
}

}  // namespace

ErrorStats compare(const float* out /*(n)*/, const float* ref /*(n)*/, int64_t n) {
  ErrorStats s;
  Accum a;
  for (int64_t i = 0; i < n; ++i) accumulate(s, a, i, out[i], ref[i]);
  s.count = n > 0 ? n : 0;
  s.rel_err = normwise(a);
  if (s.nonfinite > 0) {
    s.rel_err = kInf;
    s.max_abs = kInf;
    s.max_rel = kInf;
    s.worst_index = a.first_nonfinite;
  }
  return s;
}

std::string ErrorStats::summary() const {
  char buf[192];
  std::snprintf(buf, sizeof buf, "rel_err=%.3e max_abs=%.3e max_rel=%.3e worst=[%lld] nonfinite=%lld n=%lld",
                rel_err, max_abs, max_rel, static_cast<long long>(worst_index),
                static_cast<long long>(nonfinite), static_cast<long long>(count));
  return buf;
}

}  // namespace minfer::val
