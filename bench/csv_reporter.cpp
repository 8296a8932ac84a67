// bench/csv_reporter.cpp: rows of the bench CSV (DESIGN.md section 6) from Google Benchmark runs.
// Uses only Run fields present in Google Benchmark 1.7.1 and 1.8.3 (run_type, run_name.function_name).
#include "bench/csv_reporter.h"

#include <algorithm>

namespace minfer::bench {

std::vector<std::string> bench_columns(const std::vector<std::string>& sweeps) {
  std::vector<std::string> cols = {"sweep", "variant", "dtype"};
  for (const auto& sw : sweeps)
    for (const auto& a : val::sweep_axes(sw))
      if (std::find(cols.begin(), cols.end(), a) == cols.end()) cols.push_back(a);
  for (const char* k : {"label", "median_us", "p10_us", "p90_us", "tflops", "gbps", "sol_pct", "peak_mem_mib",
                        "rel_err", "copy_gbps", "copy_same_gbps", "gemm_tflops", "gpu", "cuda", "commit", "repro", "status"})
    cols.push_back(k);
  return cols;
}

double sol_pct(double bytes, double flops, double median_us, const Ceilings& c) {
  if (median_us <= 0 || c.copy_gbps <= 0) return 0;
  const double sec = median_us * 1e-6;
  const double ridge = c.gemm_tflops * 1e12 / (c.copy_gbps * 1e9);  // FLOP per byte
  const bool memory_bound = bytes > 0 && (flops <= 0 || flops / bytes < ridge);
  if (memory_bound) return bytes / sec / 1e9 / c.copy_gbps * 100.0;
  return c.gemm_tflops > 0 ? flops / sec / 1e12 / c.gemm_tflops * 100.0 : 0;
}

std::map<std::string, std::string> bench_row(const BenchRecord& rec, const Stats& st, double peak_mem_mib,
                                             const RowContext& ctx, const std::string& repro) {
  using val::fmt_double;
  std::map<std::string, std::string> row = {
      {"sweep", rec.c.sweep}, {"variant", rec.variant}, {"dtype", dtype_name(rec.c.dtype)},
      {"label", rec.c.label}, {"peak_mem_mib", fmt_double(peak_mem_mib, 5)},
      {"rel_err", rec.checked ? fmt_double(rec.check.rel_err) : "nan"},
      {"copy_gbps", fmt_double(ctx.ceil.copy_gbps, 5)}, {"copy_same_gbps", fmt_double(rec.copy_same_gbps, 5)}, {"gemm_tflops", fmt_double(ctx.ceil.gemm_tflops, 5)},
      {"gpu", ctx.meta.gpu}, {"cuda", ctx.meta.cuda}, {"commit", ctx.meta.commit}, {"repro", repro},
      {"status", rec.status}};
  for (const auto& [k, v] : rec.c.axes) row[k] = std::to_string(v);
  if (rec.status == "ok" && st.median_us > 0) {
    const double sec = st.median_us * 1e-6;
    row["median_us"] = fmt_double(st.median_us, 5);
    row["p10_us"] = fmt_double(st.p10_us, 5);
    row["p90_us"] = fmt_double(st.p90_us, 5);
    row["gbps"] = fmt_double(rec.bytes / sec / 1e9, 5);
    row["tflops"] = fmt_double(rec.flops / sec / 1e12, 5);
    row["sol_pct"] = fmt_double(sol_pct(rec.bytes, rec.flops, st.median_us, ctx.ceil), 4);
  }
  return row;
}

void CsvReporter::ReportRuns(const std::vector<Run>& runs) {
  ConsoleReporter::ReportRuns(runs);
  for (const auto& run : runs) {
    if (run.run_type != Run::RT_Iteration) continue;
    const BenchRecord* rec = reg_.find(run.run_name.function_name);
    if (!rec) continue;
    if (rec->status != "ok") ++refused_;
    const double mib = static_cast<double>(rec->device_bytes) / (1024.0 * 1024.0);
    table_.add(bench_row(*rec, rec->stats, mib, ctx_, ctx_.meta.switches + repro_prefix_ + " --sweep " + rec->c.sweep + " --case " + rec->c.id()));
  }
  if (!path_.empty()) table_.write(path_);
}

}  // namespace minfer::bench
