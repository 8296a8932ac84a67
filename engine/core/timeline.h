// engine/core/timeline.h: the kernels of traced CUDA-graph decode steps laid out on the GPU's clock,
// so that a step's time can be split among its kernels as they actually ran, programmatic dependent
// launch overlaps included (the eager --profile breakdown times each launch alone). The spans come
// from a tracer (engine/runtime/kernel_tracer.h: CUPTI kernel records); everything here is host code
// on plain data, tested on CPU machines.
// A step is the kernels of one graph launch (one CUPTI correlation id). In a step, kernels sorted by
// start (then end, then their order in the trace): kernel i's
//   gap   = start_i - max(end_j, j < i)   (negative: it started while an earlier kernel still ran),
//   share = max(0, end_i - max(end_j, j < i)) (how far it moved the step's end; kernel 0's share is
//           its duration), so the shares add up to the step's span (first start to last end).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace minfer {

struct KernelSpan {
  std::string name;            // short kernel name (short_kernel_name of the demangled name)
  int grid[3] = {1, 1, 1};
  int block[3] = {1, 1, 1};
  uint64_t start_ns = 0, end_ns = 0;  // GPU timestamps, end >= start
  uint32_t launch = 0;         // the API call it came from (CUPTI correlation id; one per graph launch)
  uint32_t graph = 0;          // graph id; 0: not launched from a graph
};

struct TimelineKernel {
  KernelSpan span;
  double start_us = 0, end_us = 0;  // from the step's first start
  double dur_us = 0, gap_us = 0, share_us = 0;
};

struct StepTimeline {
  std::vector<TimelineKernel> kernels;  // the chosen step, sorted by start
  double step_us = 0;                   // its span: first start to last end
  int steps = 0;                        // graph steps traced
  double min_step_us = 0, median_step_us = 0, max_step_us = 0;  // over them
};

// "minfer::(anonymous namespace)::gemv_kernel<__nv_bfloat16, 1>(minfer::GemvParams)" -> "gemv_kernel";
// a name that is not a demangled function (a mangled or a C name) is returned as it is.
std::string short_kernel_name(const std::string& demangled);

// The graph steps of `spans` (spans with graph != 0, grouped by launch; other spans are ignored),
// and the one of median span (the lower median for an even count) laid out as above. Throws
// UsageError when no span comes from a graph.
StepTimeline median_graph_step(const std::vector<KernelSpan>& spans);

// One row per (kernel name, grid), in first-start order: launches and the sums of their shares,
// durations and positive gaps.
struct TimelineGroup {
  std::string name;  // "gemv_kernel (768,1,1)"
  int calls = 0;
  double share_us = 0, dur_us = 0, wait_us = 0;
};
std::vector<TimelineGroup> group_timeline(const StepTimeline& t);

// CSV: index,kernel,grid,block,start_us,end_us,dur_us,gap_us,share_us (one row per kernel of the step).
std::string timeline_csv(const StepTimeline& t);
// CSV of group_timeline: kernel,calls,share_us,share_pct,dur_us,wait_us.
std::string timeline_groups_csv(const StepTimeline& t);
// Fixed-width table of group_timeline with the step's figures.
std::string format_timeline(const StepTimeline& t);

}  // namespace minfer
