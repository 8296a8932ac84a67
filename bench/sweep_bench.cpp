// bench/sweep_bench.cpp: registration of the per-case benchmarks, check-before-timing, and the
// runner cache (one case's buffers live at a time: Google Benchmark runs a benchmark's repeated
// runs back to back, so the runner is built once per case and dropped when the next case starts).
#include "bench/sweep_bench.h"

#include <benchmark/benchmark.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "kernels/common/status.h"
#include "validate/op_runner.h"

namespace minfer::bench {

namespace {

struct Cache {
  std::string name;
  std::unique_ptr<val::OpRunner> runner;
  std::unique_ptr<Timer> timer;
};
Cache& cache() {
  static Cache c;
  return c;
}
size_t g_total = 0, g_started = 0;  // progress: cases registered, cases set up so far

// Bandwidth of a device-to-device copy that moves `bytes` in all (bytes/2 read, bytes/2 written),
// L2-flushed and event-timed like the kernels: what "speed of light" looks like at this size,
// where launch and ramp-up are a visible part of a short kernel's time.
double same_size_copy_gbps(double bytes, Timer& timer, cudaStream_t stream) {
  const size_t half = static_cast<size_t>(bytes / 2);
  if (half == 0) return 0;
  void *src = nullptr, *dst = nullptr;
  MINFER_CUDA_CHECK(cudaMalloc(&src, half));
  MINFER_CUDA_CHECK(cudaMalloc(&dst, half));
  MINFER_CUDA_CHECK(cudaMemsetAsync(src, 0x3c, half, stream));
  std::vector<double> us;
  for (int i = 0; i < 15; ++i)
    us.push_back(timer.sample_us([&] { MINFER_CUDA_CHECK(cudaMemcpyAsync(dst, src, half, cudaMemcpyDeviceToDevice, stream)); }));
  MINFER_CUDA_CHECK(cudaFree(src));
  MINFER_CUDA_CHECK(cudaFree(dst));
  const double med = summarize(us).median_us;
  return med > 0 ? 2.0 * static_cast<double>(half) / (med * 1e-6) / 1e9 : 0;
}

// Builds the runner for a case, checks it, warms it up. Fills rec; returns false if refused.
bool setup(const std::string& name, BenchRecord& rec, cudaStream_t stream, uint64_t seed) {
  Cache& k = cache();
  k.runner.reset();
  k.name = name;
  if (!k.timer) k.timer = std::make_unique<Timer>(stream);
  try {
    k.runner = val::make_runner(rec.c);
    k.runner->prepare(seed);
    rec.bytes = k.runner->bytes_moved();
    rec.flops = k.runner->flops();
    rec.device_bytes = k.runner->device_bytes();
    rec.check = k.runner->check(stream);
    rec.checked = true;
    std::fprintf(stderr, "[%zu/%zu] %s check %s\n", ++g_started, g_total, name.c_str(), rec.check.summary().c_str());
    if (!rec.check.pass(kCheckTol)) {
      rec.status = "refused: check failed " + rec.check.summary();
      return false;
    }
    for (int i = 0; i < 3; ++i) MINFER_STATUS_CHECK(k.runner->launch(stream));
    MINFER_CUDA_CHECK(cudaStreamSynchronize(stream));
    rec.copy_same_gbps = same_size_copy_gbps(rec.bytes, *k.timer, stream);
    rec.status = "ok";
    return true;
  } catch (const std::exception& e) {
    rec.status = std::string("error: ") + e.what();
    k.runner.reset();
    return false;
  }
}

void run_one(benchmark::State& state, const std::string& name, Registry& reg, cudaStream_t stream, uint64_t seed) {
  BenchRecord& rec = reg.at(name);
  Cache& k = cache();
  if (k.name != name && !setup(name, rec, stream, seed)) std::fprintf(stderr, "bench: %s %s\n", name.c_str(), rec.status.c_str());
  if (rec.status != "ok" || !k.runner) {
    state.SkipWithError(rec.status.c_str());
    return;
  }
  std::vector<double> samples;
  try {
    for (auto _ : state) {
      const double us = k.timer->sample_us([&] { MINFER_STATUS_CHECK(k.runner->launch(stream)); });
      state.SetIterationTime(us * 1e-6);
      samples.push_back(us);
    }
  } catch (const std::exception& e) {
    rec.status = std::string("error: ") + e.what();
    state.SkipWithError(rec.status.c_str());
    return;
  }
  rec.stats = summarize(samples);
  const double sec = rec.stats.median_us * 1e-6;
  if (sec > 0) {
    state.counters["gbps"] = rec.bytes / sec / 1e9;
    state.counters["tflops"] = rec.flops / sec / 1e12;
  }
}

}  // namespace

const BenchRecord* Registry::find(const std::string& name) const {
  auto it = records_.find(name);
  return it == records_.end() ? nullptr : &it->second;
}

std::string bench_name(const val::Case& c, const std::string& variant) { return variant + ":" + c.id(); }

void register_cases(const std::vector<val::Case>& cases, Registry& reg, cudaStream_t stream, double min_time,
                    uint64_t seed) {
  g_total += cases.size();
  for (const auto& c : cases) {
    const std::string name = bench_name(c, "minfer");
    reg.at(name).c = c;
    Registry* r = &reg;
    benchmark::RegisterBenchmark(name.c_str(), [name, r, stream, seed](benchmark::State& st) {
      run_one(st, name, *r, stream, seed);
    })->UseManualTime()->MinTime(min_time)->Unit(benchmark::kMicrosecond);
  }
}

void release_cached_runner() {
  cache().runner.reset();
  cache().timer.reset();
  cache().name.clear();
}

}  // namespace minfer::bench
