// bench/sweep_bench.h: one Google Benchmark per (sweep, case, variant). Each benchmark checks its
// variant against the reference first (rel_err <= 1e-3) and refuses to time a wrong one; otherwise
// every iteration is one L2-flushed, event-timed launch fed to SetIterationTime. Results land in a
// registry keyed by benchmark name, which the CSV reporter (bench/csv_reporter.h) turns into rows.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/harness.h"
#include "validate/case.h"
#include "validate/compare.h"

namespace minfer::bench {

constexpr double kCheckTol = 1e-3;

struct BenchRecord {
  val::Case c;
  std::string variant = "minfer";
  double bytes = 0, flops = 0;   // per launch, from the runner
  double copy_same_gbps = 0;     // a D2D copy moving the same bytes, timed the same way (context for SOL%)
  size_t device_bytes = 0;       // held by the runner
  val::ErrorStats check;         // the check run before timing
  bool checked = false;
  std::string status = "not run";  // "ok", "refused: ...", "error: ..."
  Stats stats;                     // of the last (final) Google Benchmark run
};

class Registry {
 public:
  BenchRecord& at(const std::string& name) { return records_[name]; }
  const BenchRecord* find(const std::string& name) const;
  const std::map<std::string, BenchRecord>& all() const { return records_; }

 private:
  std::map<std::string, BenchRecord> records_;
};

// The benchmark's name for a case and variant: "<variant>:<case id>".
std::string bench_name(const val::Case& c, const std::string& variant);

// Registers one benchmark per case (variant "minfer"); min_time in seconds of measured GPU time.
void register_cases(const std::vector<val::Case>& cases, Registry& reg, cudaStream_t stream, double min_time,
                    uint64_t seed);

// Frees the runner still cached after the last benchmark.
void release_cached_runner();

}  // namespace minfer::bench
