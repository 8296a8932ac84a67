// engine/runtime/profile.cpp: one eager decode step under the launch profiler (see profile.h).
#include "engine/runtime/profile.h"

#include <algorithm>
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

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

const char* stage_name(int point, int layers) {
  static const char* const kLayer[] = {"qkv", "attn", "o", "gu", "down"};
  if (point == 1) return "embed";
  if (point == 5 * layers + 2) return "head";
  return kLayer[(point - 2) % 5];
}

// One more eager step of the whole-step kernel with its trace on.
std::vector<StageTiming> traced_stages(Model& m, int rows, const std::vector<bool>& live) {
  const int L = m.config().layers, G = decode_step_blocks(), points = decode_step_trace_points(L);
  const size_t n = static_cast<size_t>(points) * static_cast<size_t>(G) * 2;
  unsigned long long* dev = nullptr;
  MINFER_CUDA_CHECK(cudaMalloc(&dev, n * sizeof(unsigned long long)));
  std::vector<unsigned long long> host(n);
  try {
    m.prepare_decode(rows, live);
    m.set_step_trace(dev);
    timed_step(m, rows, nullptr);
    m.set_step_trace(nullptr);
    MINFER_CUDA_CHECK(cudaMemcpy(host.data(), dev, n * sizeof(unsigned long long), cudaMemcpyDeviceToHost));
  } catch (...) {
    m.set_step_trace(nullptr);
    cudaFree(dev);
    throw;
  }
  cudaFree(dev);
  return summarise_step_trace(host, L, G);
}

}  // namespace

std::vector<StageTiming> summarise_step_trace(const std::vector<unsigned long long>& t, int layers, int blocks) {
  const int points = 5 * layers + 3;
  if (layers < 1 || blocks < 1 || t.size() != static_cast<size_t>(points) * static_cast<size_t>(blocks) * 2)
    throw UsageError("step trace: " + std::to_string(t.size()) + " values for " + std::to_string(layers) +
                     " layers and " + std::to_string(blocks) + " blocks");
  auto at = [&](int point, int b, int k) { return static_cast<double>(t[(static_cast<size_t>(point) * blocks + b) * 2 + k]); };
  std::vector<StageTiming> out;
  std::vector<double> dep_prev(static_cast<size_t>(blocks)), dep(dep_prev.size());
  for (int b = 0; b < blocks; ++b) dep_prev[static_cast<size_t>(b)] = at(0, b, 1);
  for (int k = 1; k < points; ++k) {
    double work_max = 0, work_sum = 0, last_arrival = 0, first_departure = 0;
    for (int b = 0; b < blocks; ++b) {
      const double arr = at(k, b, 0), d = at(k, b, 1), w = arr - dep_prev[static_cast<size_t>(b)];
      work_max = std::max(work_max, w);
      work_sum += w;
      last_arrival = b == 0 ? arr : std::max(last_arrival, arr);
      first_departure = b == 0 ? d : std::min(first_departure, d);
      dep[static_cast<size_t>(b)] = d;
    }
    const std::string name = stage_name(k, layers);
    auto it = std::find_if(out.begin(), out.end(), [&](const StageTiming& s) { return s.name == name; });
    if (it == out.end()) {
      out.push_back(StageTiming{name, 0, 0, 0, 0, 0});
      it = out.end() - 1;
    }
    ++it->calls;
    it->wall_us += (median(dep) - median(dep_prev)) * 1e-3;
    it->work_max_us += work_max * 1e-3;
    it->work_mean_us += work_sum / blocks * 1e-3;
    it->barrier_us += std::max(0.0, first_departure - last_arrival) * 1e-3;
    dep_prev = dep;
  }
  return out;
}

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
  if (out.kernels.size() == 1 && out.kernels[0].name == "decode_step") out.stages = traced_stages(m, out.rows, live);
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
  if (p.stages.empty()) return s;
  double wall = 0;
  for (const StageTiming& t : p.stages) wall += t.wall_us;
  s += "decode_step stages (one more eager step, traced; us summed over the layers):\n";
  std::snprintf(line, sizeof line, "%-8s %6s %10s %7s %10s %10s %10s\n", "stage", "calls", "wall_us", "%", "work_max",
                "work_mean", "barrier");
  s += line;
  for (const StageTiming& t : p.stages) {
    std::snprintf(line, sizeof line, "%-8s %6d %10.1f %6.1f%% %10.1f %10.1f %10.1f\n", t.name.c_str(), t.calls,
                  t.wall_us, wall > 0 ? 100.0 * t.wall_us / wall : 0.0, t.work_max_us, t.work_mean_us, t.barrier_us);
    s += line;
  }
  return s;
}

std::string profile_stages_csv(const StepProfile& p) {
  if (p.stages.empty()) return "";
  double wall = 0;
  for (const StageTiming& t : p.stages) wall += t.wall_us;
  std::string s = "stage,calls,wall_us,pct,work_max_us,work_mean_us,barrier_us\n";
  char line[200];
  for (const StageTiming& t : p.stages) {
    std::snprintf(line, sizeof line, "%s,%d,%.3f,%.3f,%.3f,%.3f,%.3f\n", t.name.c_str(), t.calls, t.wall_us,
                  wall > 0 ? 100.0 * t.wall_us / wall : 0.0, t.work_max_us, t.work_mean_us, t.barrier_us);
    s += line;
  }
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
