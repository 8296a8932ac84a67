// engine/runtime/profile.h: the per-kernel breakdown of one decode step. After a generate call the
// model's caches hold every sequence; profile_decode_step re-arms the decode state for `batch` live
// rows (positions = cached tokens, so the step writes one cache row past them: plan the context one
// token larger), runs one step eagerly to warm up, re-arms, and runs it again with CUDA events
// around each launch. The cached token counts are left as they were.
#pragma once
#include <string>
#include <vector>

#include "engine/model/model.h"
#include "engine/model/profiler.h"

namespace minfer {

struct StepProfile {
  std::vector<KernelTiming> kernels;  // by name, in first-launch order
  double launches_us = 0;             // sum of the launches' event times
  double step_us = 0;                 // events around the whole eager step (includes gaps)
  int rows = 0;                       // Bb
};

// Throws UsageError when a sequence has no room for one more token in the planned context.
StepProfile profile_decode_step(Model& m, int batch);

// Fixed-width table: kernel, calls, us, % of step, bytes, GB/s, then the totals.
std::string format_profile(const StepProfile& p);
// CSV text: kernel,calls,us,pct,bytes,gbps (one row per kernel, then a "total" row).
std::string profile_csv(const StepProfile& p);

}  // namespace minfer
