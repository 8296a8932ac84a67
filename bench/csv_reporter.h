// bench/csv_reporter.h: our Google Benchmark reporter. It prints Google Benchmark's console table
// and turns each finished run into one tidy CSV row (DESIGN.md section 6) from the registry record
// of that benchmark. Peer rows (bench/peers.h) are added to the same table by bench_all.
#pragma once
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench/harness.h"
#include "bench/sweep_bench.h"
#include "validate/csv_table.h"

namespace minfer::bench {

// Facts common to every row of one run.
struct RowContext {
  Ceilings ceil;
  val::RunMeta meta;
};

// The bench CSV columns for the given sweeps (their axes in the middle).
std::vector<std::string> bench_columns(const std::vector<std::string>& sweeps);

// SOL%: achieved bandwidth over copy_gbps when the case is memory-bound at the measured ridge point,
// else achieved FLOP rate over gemm_tflops.
double sol_pct(double bytes, double flops, double median_us, const Ceilings& c);

// One CSV row; stats empty (median 0) for a refused or failed record.
std::map<std::string, std::string> bench_row(const BenchRecord& rec, const Stats& stats, double peak_mem_mib,
                                             const RowContext& ctx, const std::string& repro);

class CsvReporter : public benchmark::ConsoleReporter {
 public:
  CsvReporter(const Registry& reg, val::CsvTable& table, RowContext ctx, std::string repro_prefix)
      : reg_(reg), table_(table), ctx_(std::move(ctx)), repro_prefix_(std::move(repro_prefix)) {}
  void ReportRuns(const std::vector<Run>& runs) override;
  int refused() const { return refused_; }
  // Rewrite this CSV (via PATH.tmp, renamed) after every row, so that a run cut short keeps what it
  // measured; empty: no partial writes.
  void write_as_you_go(std::string path) { path_ = std::move(path); }

 private:
  const Registry& reg_;
  val::CsvTable& table_;
  RowContext ctx_;
  std::string repro_prefix_;
  std::string path_;
  int refused_ = 0;
};

}  // namespace minfer::bench
