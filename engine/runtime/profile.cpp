// engine/runtime/profile.cpp: one eager decode step under the launch profiler (see profile.h).
#include "engine/runtime/profile.h"

#include <cstdio>

#include "engine/core/error.h"
#include "kernels/common/status.h"

namespace minfer {
namespace {

// Events around one eager decode step of `rows` rows; the profiler (may be null) sees each launch.
double timed_step(Model& m, int rows, LaunchProfiler* prof) {
  cudaEvent_t a = nullptr, b = nullptr;
  MINFER_CUDA_CHECK(cudaEventCreate(&a));
  MINFER_CUDA_CHECK(cudaEventCreate(&b));
  m.set_profiler(prof);
  MINFER_CUDA_CHECK(cudaEventRecord(a, m.stream()));
  try {
    m.enqueue_decode(rows);
  } catch (...) {
    m.set_profiler(nullptr);
    throw;
  }
  m.set_profiler(nullptr);
  MINFER_CUDA_CHECK(cudaEventRecord(b, m.stream()));
  MINFER_CUDA_CHECK(cudaEventSynchronize(b));
  float ms = 0;
  MINFER_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return ms * 1e3;
}

}  // namespace

StepProfile profile_decode_step(Model& m, int batch) {
  StepProfile out;
  out.rows = bucket_for(batch, m.shape().batch);
  const std::vector<bool> live(static_cast<size_t>(batch), false);
  m.prepare_decode(out.rows, live);  // checks the context room
  timed_step(m, out.rows, nullptr);  // warm-up: GEMM plans for this bucket, caches
  m.prepare_decode(out.rows, live);
  LaunchProfiler prof(m.stream());
  out.step_us = timed_step(m, out.rows, &prof);
  out.kernels = prof.summary();
  for (const KernelTiming& k : out.kernels) out.launches_us += k.us;
  return out;
}

std::string format_profile(const StepProfile& p) {
  std::string s;
  char line[200];
  std::snprintf(line, sizeof line, "%-16s %6s %10s %7s %14s %9s\n", "kernel", "calls", "us", "%step", "bytes", "GB/s");
  s += line;
  double bytes = 0;
  int calls = 0;
  for (const KernelTiming& k : p.kernels) {
    std::snprintf(line, sizeof line, "%-16s %6d %10.1f %6.1f%% %14.0f %9.1f\n", k.name.c_str(), k.calls, k.us, k.pct,
                  k.bytes, k.gbps());
    s += line;
    bytes += k.bytes;
    calls += k.calls;
  }
  std::snprintf(line, sizeof line, "%-16s %6d %10.1f %6.1f%% %14.0f %9.1f\n", "total", calls, p.launches_us, 100.0,
                bytes, p.launches_us > 0 ? bytes / (p.launches_us * 1e-6) / 1e9 : 0.0);
  s += line;
  std::snprintf(line, sizeof line, "eager step (events around all %d launches, gaps included): %.1f us, %d rows\n",
                calls, p.step_us, p.rows);
  s += line;
  return s;
}

std::string profile_csv(const StepProfile& p) {
  std::string s = "kernel,calls,us,pct,bytes,gbps\n";
  char line[200];
  double bytes = 0;
  int calls = 0;
  for (const KernelTiming& k : p.kernels) {
    std::snprintf(line, sizeof line, "%s,%d,%.3f,%.3f,%.0f,%.3f\n", k.name.c_str(), k.calls, k.us, k.pct, k.bytes,
                  k.gbps());
    s += line;
    bytes += k.bytes;
    calls += k.calls;
  }
  std::snprintf(line, sizeof line, "total,%d,%.3f,100,%.0f,%.3f\n", calls, p.launches_us, bytes,
                p.launches_us > 0 ? bytes / (p.launches_us * 1e-6) / 1e9 : 0.0);
  return s + line;
}

}  // namespace minfer
