// engine/model/profiler.h: a per-launch profiler for one eager forward (never inside a captured
// graph). The model brackets every kernel launch with a pair of CUDA events on its stream and names
// the launch and the bytes it must move at least; summary() groups the launches by name after one
// synchronisation: calls, microseconds, share of the step, bytes, GB/s.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <cuda_runtime.h>

namespace minfer {

struct KernelTiming {
  std::string name;   // "gemm.qkv", "attention", "rmsnorm", ...
  int calls = 0;
  double us = 0;      // summed over calls
  double bytes = 0;   // summed over calls: the least each launch must read and write
  double pct = 0;     // of the profiled region's summed launch time
  double gbps() const { return us > 0 ? bytes / (us * 1e-6) / 1e9 : 0; }
};

class LaunchProfiler {
 public:
  explicit LaunchProfiler(cudaStream_t stream) : stream_(stream) {}
  ~LaunchProfiler();
  LaunchProfiler(const LaunchProfiler&) = delete;
  LaunchProfiler& operator=(const LaunchProfiler&) = delete;

  void begin();                                   // records the start event of the next launch
  void end(const std::string& name, double bytes);  // records its stop event
  // Synchronises the stream; one entry per name in first-launch order, pct filled in.
  std::vector<KernelTiming> summary() const;

 private:
  struct Mark { std::string name; double bytes; cudaEvent_t start, stop; };
  cudaStream_t stream_;
  std::vector<Mark> marks_;
  cudaEvent_t pending_ = nullptr;
};

}  // namespace minfer
