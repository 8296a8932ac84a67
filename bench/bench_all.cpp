// bench/bench_all.cpp: the benchmark driver (DESIGN.md sections 5 and 6). Measures the ceilings
// once (D2D copy bandwidth, cuBLAS bf16 GEMM), runs one Google Benchmark per (sweep, case, variant)
// with check-before-timing, runs the PyTorch peers on the same case list, and writes one CSV.
// Exit 0 ok, 1 a variant of ours was refused (wrong output) or failed, 2 bad usage or no CUDA device.
// --sweep e2e: the end-to-end path (bench/e2e_bench.h): whole models, one load per model, TTFT,
// prefill and decode rates, and the torch-graph peer; its own columns (bench/e2e_metrics.h).
// --attention flash,simple times each e2e case with both engine attention backends (variants minfer,
// minfer-simple) on one model load.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "validate/driver_main.h"

#include "bench/csv_reporter.h"
#include "bench/e2e_bench.h"
#include "bench/e2e_metrics.h"
#include "bench/harness.h"
#include "bench/peers.h"
#include "bench/sweep_bench.h"
#include "engine/core/error.h"
#include "validate/op_runner.h"

namespace {

using minfer::val::Case;

struct Options {
  std::string sweep, dtype = "all", csv, peers = "auto";
  std::vector<std::string> case_ids;
  bool quick = false;
  bool list = false;  // print the chosen case ids and exit (no GPU needed)
  double min_time = 0.02;
  uint64_t seed = 1234;
  int repeats = 3;  // e2e: timed generate calls per case
  std::string attention = "flash";  // e2e: engine attention backends, comma-separated
};

std::vector<std::string> chosen_sweeps(const std::string& sweep) {
  if (sweep == "all") return minfer::val::sweep_names();
  minfer::val::sweep_axes(sweep);  // throws UsageError naming an unknown sweep
  if (sweep == "model") throw minfer::UsageError("--sweep model: a validate_all sweep; bench_all times --sweep e2e");
  return {sweep};
}

std::vector<Case> chosen_cases(const Options& o) {
  return minfer::val::select_cases(chosen_sweeps(o.sweep), o.sweep, o.dtype, o.quick, o.case_ids,
                                   minfer::val::CaseUse::Bench);
}

// Runs Google Benchmark over the registered cases; returns how many of ours were refused or failed.
int run_ours(minfer::bench::CsvReporter& reporter) {
  char prog[] = "bench_all";
  char* gb_argv[] = {prog, nullptr};
  int gb_argc = 1;
  benchmark::Initialize(&gb_argc, gb_argv);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  minfer::bench::release_cached_runner();
  return reporter.refused();
}

// Peers per sweep; false when --peers on was asked and they could not run.
bool run_peers(const Options& o, const std::vector<Case>& cases, const minfer::bench::Registry& reg,
               const minfer::bench::RowContext& ctx, size_t l2_bytes, minfer::val::CsvTable& table) {
  if (o.peers == "off") return true;
  if (!minfer::bench::torch_gpu_available()) {
    std::fprintf(stderr, "bench_all: peers skipped: python3 with torch and a CUDA device not found\n");
    return o.peers != "on";
  }
  const auto tmp = std::filesystem::temp_directory_path() / ("minfer_bench_" + std::to_string(getpid()));
  std::filesystem::create_directories(tmp);
  bool ok = true;
  for (const auto& sw : chosen_sweeps(o.sweep)) {
    std::vector<std::map<std::string, std::string>> rows;
    ok = minfer::bench::run_peer(MINFER_SOURCE_DIR, sw, cases, reg, ctx, o.seed, l2_bytes, o.min_time,
                                     tmp.string(), rows) && ok;
    for (auto& r : rows) table.add(std::move(r));
  }
  std::filesystem::remove_all(tmp);
  return ok || o.peers != "on";
}

// The e2e path: whole models; with --csv the rows are rewritten after each case and written once more
// at the end with the peer's.
int run_e2e_sweep(const Options& o, const std::vector<Case>& cases, const minfer::bench::RowContext& ctx,
                  cudaStream_t stream) {
  MINFER_CUDA_CHECK(cudaStreamDestroy(stream));
  minfer::val::CsvTable table(minfer::bench::e2e_columns());
  minfer::bench::E2eOptions e;
  e.repeats = o.repeats;
  e.peers = o.peers;
  e.seed = o.seed;
  e.source_dir = MINFER_SOURCE_DIR;
  e.attention = minfer::bench::parse_attention_list(o.attention);
  e.csv_path = o.csv;
  bool peers_ok = true;
  const int failed = minfer::bench::run_e2e(cases, e, ctx, table, peers_ok);
  if (!o.csv.empty()) table.write(o.csv);
  std::fprintf(stderr, "bench_all: %zu e2e rows%s%s; %d of our cases failed\n", table.rows().size(),
               o.csv.empty() ? "" : " written to ", o.csv.c_str(), failed);
  if (!peers_ok) return 2;
  return failed > 0 ? 1 : 0;
}

int run(const Options& o) {
  const std::vector<Case> cases = chosen_cases(o);
  if (o.list) return minfer::val::print_case_list("bench_all", cases);
  minfer::bench::parse_attention_list(o.attention);  // a bad --attention is refused before any GPU work
  if (o.sweep != "e2e" && o.attention != "flash")
    throw minfer::UsageError("--attention: chooses the engine's attention kernels of --sweep e2e only");
  if (!minfer::val::cuda_device_available()) {
    std::fprintf(stderr, "bench_all: no CUDA device is available on this machine; nothing was timed "
                         "(run it on the GPU machine)\n");
    return 2;
  }
  cudaStream_t stream = nullptr;
  MINFER_CUDA_CHECK(cudaStreamCreate(&stream));
  minfer::bench::RowContext ctx;
  ctx.meta = minfer::val::run_meta(MINFER_SOURCE_DIR);
  std::fprintf(stderr, "bench_all: %zu cases on %s (%s), CUDA %s, commit %s%s%s; measuring ceilings...\n", cases.size(),
               ctx.meta.gpu_name.c_str(), ctx.meta.gpu.c_str(), ctx.meta.cuda.c_str(), ctx.meta.commit.c_str(),
               ctx.meta.switches.empty() ? "" : "; switches: ", ctx.meta.switches.c_str());
  ctx.ceil = minfer::bench::measure_ceilings(stream);
  std::fprintf(stderr, "bench_all: copy %.0f GB/s, bf16 GEMM %.0f TFLOP/s\n", ctx.ceil.copy_gbps, ctx.ceil.gemm_tflops);
  size_t l2_bytes = 0;
  { minfer::bench::Timer t(stream); l2_bytes = t.l2_bytes(); }

  if (o.sweep == "e2e") return run_e2e_sweep(o, cases, ctx, stream);
  minfer::bench::Registry reg;
  // The check before timing only refuses a wrong variant (validate_all is the numerics gate): about
  // 0.2 s of scalar reference per case, sampled rows past that.
  minfer::val::set_reference_budget(2.5e8);
  minfer::bench::register_cases(cases, reg, stream, o.min_time, o.seed);
  minfer::val::CsvTable table(minfer::bench::bench_columns(chosen_sweeps(o.sweep)));
  minfer::bench::CsvReporter reporter(reg, table, ctx, "bench_all");
  if (!o.csv.empty()) reporter.write_as_you_go(o.csv);  // a run cut short keeps its rows
  const int refused = run_ours(reporter);
  const bool peers_ok = run_peers(o, cases, reg, ctx, l2_bytes, table);
  if (!o.csv.empty()) table.write(o.csv);
  MINFER_CUDA_CHECK(cudaStreamDestroy(stream));
  std::fprintf(stderr, "bench_all: %zu rows%s%s; %d of ours refused or failed\n", table.rows().size(),
               o.csv.empty() ? "" : " written to ", o.csv.c_str(), refused);
  if (!peers_ok) return 2;
  return refused > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_all: time every kernel case (and its PyTorch peers) on the GPU (DESIGN.md sections 5, 6)"};
  app.footer("Environment switches (MINFER_*, README.md's table) select kernel variants for A/B timings; those set open\n"
             "every row's repro column and the first line, e.g. MINFER_DECODE_COPY=auto bench_all --sweep decode --case ...");
  Options o;
  app.add_option("--sweep", o.sweep, "sweep to time: norm, rope, swiglu, embedding, all (the four op sweeps), "
                                        "attention (prefill), decode (split-KV decode attention) or e2e (whole "
                                        "models: TTFT, prefill and decode rates)")->required();
  app.add_option("--dtype", o.dtype, "fp32, fp16, bf16 or all")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16", "all"}))->capture_default_str();
  app.add_option("--csv", o.csv, "write the rows to this CSV (via PATH.tmp, renamed; rewritten as our cases finish, so a run cut "
                                "short keeps them; the peers' rows are added at the end)");
  app.add_option("--case", o.case_ids, "time only this case id (repeatable)");
  app.add_flag("--quick", o.quick, "a short subset of each sweep");
  app.add_flag("--list", o.list, "print the chosen case ids, one per line, and exit (no GPU needed)");
  app.add_option("--peers", o.peers, "run the PyTorch peers in bench/peers: on, off, or auto (when python3 with "
                                     "torch and a GPU are present)")
      ->check(CLI::IsMember({"on", "off", "auto"}))->capture_default_str();
  app.add_option("--min-time", o.min_time, "seconds of measured GPU time per benchmark (Google Benchmark MinTime)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the random inputs")->capture_default_str();
  app.add_option("--repeats", o.repeats, "e2e: timed generate calls per case (after one warm-up)")
      ->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--attention", o.attention, "e2e: engine attention backends to time, comma-separated: flash "
                                             "(variant minfer, the engine's default), simple (variant "
                                             "minfer-simple), or flash,simple")
      ->capture_default_str();
  return minfer::val::run_driver("bench_all", app, argc, argv, [&] { return run(o); });
}
