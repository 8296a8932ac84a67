// engine/runtime/kernel_tracer.h: GPU start and end times of every kernel run while a tracer is alive,
// kernels of CUDA-graph launches included (one record per graph node, carrying the graph launch's
// correlation id), from CUPTI's activity records (CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL). libcupti is
// loaded at run time (dlopen: libcupti.so.13, then the toolkit's usual folders), so the engine runs
// where it is absent; asking for a trace there is a UsageError naming what was tried. Tracing slows the
// host side (H100, qwen3-0.6b b1: host-timed steps of 2.28 ms while traced against 1.03 untraced), not
// the GPU's: the traced steps' GPU spans (1.013 ms median) match the untraced bench figure. One tracer
// at a time per process. Feeds engine/core/timeline.h (minfer generate
// --timeline).
#pragma once
#include <vector>

#include "engine/core/timeline.h"

namespace minfer {

class KernelTracer {
 public:
  // Loads libcupti (once per process) and starts recording. Throws UsageError when it cannot.
  KernelTracer();
  ~KernelTracer();
  KernelTracer(const KernelTracer&) = delete;
  KernelTracer& operator=(const KernelTracer&) = delete;
  // Waits for the device, flushes CUPTI's buffers and stops recording; the kernels seen, in the order
  // CUPTI delivered them. Call once.
  std::vector<KernelSpan> finish();

 private:
  bool active_ = false;
};

}  // namespace minfer
