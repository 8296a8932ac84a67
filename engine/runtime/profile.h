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

// One stage kind of the whole-step decode kernel (kernels/decode_step.h), from its trace: summed over
// its occurrences (layers). wall: the step's time from the previous stage's barrier to this one's
// (median block); work_max / work_mean: the slowest / mean block's time from leaving the previous
// barrier to arriving at this one; barrier: from the last arrival to the first departure.
struct StageTiming {
  std::string name;  // embed, qkv, attn, o, gu, down, head
  int calls = 0;
  double wall_us = 0, work_max_us = 0, work_mean_us = 0, barrier_us = 0;
};

// trace: (points, blocks, 2) globaltimer ns (arrival, departure) as the kernel writes it, points =
// 5 * layers + 3. Throws UsageError when the sizes disagree.
std::vector<StageTiming> summarise_step_trace(const std::vector<unsigned long long>& trace, int layers, int blocks);

struct StepProfile {
  std::vector<KernelTiming> kernels;  // by name, in first-launch order
  std::vector<StageTiming> stages;    // when the step ran as the whole-step kernel: its stages (traced)
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
// CSV text of the stages: stage,calls,wall_us,pct,work_max_us,work_mean_us,barrier_us ("" without stages).
std::string profile_stages_csv(const StepProfile& p);

}  // namespace minfer
