// validate/validate_all.cpp: the numerics driver. For every case of the chosen sweeps and dtypes:
// make_runner(c) -> prepare(seed) -> check(stream), against the scalar reference (DESIGN.md 4).
// Writes one CSV row per case (PATH.tmp, then renamed), a progress line per case on stderr and a
// summary table on stdout. Exit 0 all pass, 1 any case failed, 2 bad usage or no CUDA device.
// --sweep model: the whole-model path (validate/model_check.h), cases run one after another, each
// writing several rows (prefill, prefill_last, every decode step, summary).
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "validate/driver_main.h"

#include "engine/core/error.h"
#include "validate/case.h"
#include "validate/csv_table.h"
#include "validate/model_check.h"
#include "validate/op_runner.h"

namespace {

using minfer::val::Case;
using minfer::val::ErrorStats;

struct Options {
  std::string sweep, dtype = "all", csv;
  std::vector<std::string> case_ids;
  bool quick = false;
  bool list = false;  // print the chosen case ids and exit (no GPU needed)
  double tol = 1e-3;
  uint64_t seed = 1234;
  int jobs = 0;  // worker threads (0: min(8, cores))
};

struct Result {
  Case c;
  ErrorStats e;
  bool pass = false;
  std::string error;  // exception text when the runner threw
};

std::vector<std::string> chosen_sweeps(const std::string& sweep) {
  if (sweep == "all") return minfer::val::sweep_names();
  minfer::val::sweep_axes(sweep);  // throws UsageError naming an unknown sweep
  if (sweep == "e2e") throw minfer::UsageError("--sweep e2e: a bench_all sweep; validate_all checks --sweep model");
  return {sweep};
}

// The cases to run: --case ids are looked up in the full lists (so a repro works with or without --quick).
std::vector<Case> chosen_cases(const Options& o) {
  return minfer::val::select_cases(chosen_sweeps(o.sweep), o.sweep, o.dtype, o.quick, o.case_ids,
                                   minfer::val::CaseUse::Validate);
}

std::string repro(const Options& o, const Case& c) {
  return "validate_all --sweep " + c.sweep + " --case " + c.id() + " --tol " + minfer::val::fmt_double(o.tol) +
         " --seed " + std::to_string(o.seed);
}

Result run_case(const Case& c, const Options& o, cudaStream_t stream) {
  Result r{c, {}, false, ""};
  try {
    auto runner = minfer::val::make_runner(c);
    runner->prepare(o.seed);
    r.e = runner->check(stream);
    r.pass = r.e.pass(o.tol);
  } catch (const std::exception& ex) {
    r.error = ex.what();
    r.e.rel_err = std::numeric_limits<double>::quiet_NaN();
  }
  return r;
}

std::vector<std::string> columns_for(const std::vector<std::string>& sweeps) {
  std::vector<std::string> cols = {"sweep", "variant", "dtype"};
  for (const auto& sw : sweeps)
    for (const auto& a : minfer::val::sweep_axes(sw))
      if (std::find(cols.begin(), cols.end(), a) == cols.end()) cols.push_back(a);
  for (const char* k : {"label", "rel_err", "max_abs", "max_rel", "worst_index", "nonfinite", "pass", "gpu",
                        "cuda", "commit", "repro"})
    cols.push_back(k);
  return cols;
}

std::map<std::string, std::string> row_of(const Result& r, const Options& o, const minfer::val::RunMeta& m) {
  using minfer::val::fmt_double;
  std::map<std::string, std::string> row = {
      {"sweep", r.c.sweep}, {"variant", "minfer"}, {"dtype", minfer::dtype_name(r.c.dtype)},
      {"label", r.c.label}, {"rel_err", fmt_double(r.e.rel_err)}, {"max_abs", fmt_double(r.e.max_abs)},
      {"max_rel", fmt_double(r.e.max_rel)}, {"worst_index", std::to_string(r.e.worst_index)},
      {"nonfinite", std::to_string(r.e.nonfinite)}, {"pass", r.pass ? "1" : "0"}, {"gpu", m.gpu},
      {"cuda", m.cuda}, {"commit", m.commit}, {"repro", m.switches + repro(o, r.c)}};
  for (const auto& [k, v] : r.c.axes) row[k] = std::to_string(v);
  return row;
}

void print_progress(size_t i, size_t n, const Result& r) {
  std::fprintf(stderr, "[%zu/%zu] %-60s %s %s%s\n", i + 1, n, r.c.id().c_str(), r.pass ? "PASS" : "FAIL",
               r.error.empty() ? r.e.summary().c_str() : "error: ", r.error.c_str());
}

// Summary on stdout: one line per (sweep, dtype) with counts and the worst error, then every failure.
void print_summary(const std::vector<Result>& results, double tol) {
  struct Agg { int n = 0, fail = 0; double worst = -1; std::string worst_id; };
  std::map<std::string, Agg> agg;
  for (const auto& r : results) {
    Agg& a = agg[r.c.sweep + "," + minfer::dtype_name(r.c.dtype)];
    ++a.n;
    a.fail += r.pass ? 0 : 1;
    if (!(r.e.rel_err <= a.worst)) { a.worst = r.e.rel_err; a.worst_id = r.c.id(); }
  }
  std::printf("%-10s %-5s %6s %6s %6s  %-11s %s\n", "sweep", "dtype", "cases", "pass", "fail", "worst_rel", "worst case");
  for (const auto& [key, a] : agg) {
    const auto comma = key.find(',');
    std::printf("%-10s %-5s %6d %6d %6d  %-11.3e %s\n", key.substr(0, comma).c_str(), key.substr(comma + 1).c_str(),
                a.n, a.n - a.fail, a.fail, a.worst, a.worst_id.c_str());
  }
  int failed = 0;
  for (const auto& r : results) failed += r.pass ? 0 : 1;
  std::printf("%zu cases, %zu passed, %d failed (tol %.1e)\n", results.size(), results.size() - failed, failed, tol);
  for (const auto& r : results)
    if (!r.pass) std::printf("FAILED %s %s\n", r.c.id().c_str(), r.error.empty() ? r.e.summary().c_str() : r.error.c_str());
}

std::string model_repro(const Options& o, const Case& c) {
  return "validate_all --sweep model --case " + c.id() + " --tol " + minfer::val::fmt_double(o.tol) + " --seed " +
         std::to_string(o.seed);
}

void print_model_result(size_t i, size_t n, const minfer::val::ModelCaseResult& r) {
  if (!r.error.empty()) {
    std::fprintf(stderr, "[%zu/%zu] %-50s FAIL error: %s\n", i + 1, n, r.c.id().c_str(), r.error.c_str());
    return;
  }
  const auto& s = r.rows.back();
  std::fprintf(stderr, "[%zu/%zu] %-50s %s label=%s prompts=%s worst rel_err=%.3e (bound %.1e) greedy agree %d/%d\n",
               i + 1, n, r.c.id().c_str(), r.pass ? "PASS" : "FAIL", r.c.label.c_str(),
               minfer::val::prompt_lens_str(r.prompt_lens).c_str(), s.e.rel_err, s.bound, s.agree, s.tokens);
}

// The whole-model sweep: one case at a time (each holds a model on the GPU and its reference).
int run_models(const Options& o, const std::vector<Case>& cases) {
  const auto meta = minfer::val::run_meta(".");
  std::fprintf(stderr, "validate_all: %zu model cases on %s (%s), CUDA %s, commit %s%s%s\n", cases.size(),
               meta.gpu_name.c_str(), meta.gpu.c_str(), meta.cuda.c_str(), meta.commit.c_str(),
               meta.switches.empty() ? "" : "; switches: ", meta.switches.c_str());
  minfer::val::CsvTable table(minfer::val::model_columns());
  int failed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto r = minfer::val::check_model_case(cases[i], o.tol, o.seed);
    print_model_result(i, cases.size(), r);
    failed += r.pass ? 0 : 1;
    std::vector<minfer::val::StepCheck> rows = r.rows;
    if (rows.empty()) rows.push_back({"error", 0, {}, 0, 0, o.tol, false});
    for (const auto& s : rows) {
      auto row = minfer::val::model_row(r, s);
      row.insert({{"gpu", meta.gpu}, {"cuda", meta.cuda}, {"commit", meta.commit}, {"repro", meta.switches + model_repro(o, r.c)}});
      table.add(std::move(row));
    }
    if (!o.csv.empty()) table.write(o.csv);
  }
  std::printf("%zu model cases, %zu passed, %d failed (fp32 tol %.1e; bf16 rel_err <= %.1e and greedy agreement >= "
              "%.2f against fp32)\n",
              cases.size(), cases.size() - static_cast<size_t>(failed), failed, o.tol, minfer::val::kBf16RelErrBound,
              minfer::val::kBf16AgreeBound);
  return failed == 0 ? 0 : 1;
}

int run(const Options& o) {
  const std::vector<Case> cases = chosen_cases(o);
  if (o.list) return minfer::val::print_case_list("validate_all", cases);
  if (!minfer::val::cuda_device_available()) {
    std::fprintf(stderr, "validate_all: no CUDA device is available on this machine; nothing was checked "
                         "(run it on the GPU machine)\n");
    return 2;
  }
  if (o.sweep == "model") return run_models(o, cases);
  const auto meta = minfer::val::run_meta(".");
  std::fprintf(stderr, "validate_all: %zu cases on %s (%s), CUDA %s, commit %s%s%s\n", cases.size(),
               meta.gpu_name.c_str(), meta.gpu.c_str(), meta.cuda.c_str(), meta.commit.c_str(),
               meta.switches.empty() ? "" : "; switches: ", meta.switches.c_str());
  minfer::val::CsvTable table(columns_for(chosen_sweeps(o.sweep)));
  std::vector<Result> results(cases.size());
  std::vector<char> done(cases.size(), 0);
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<size_t> next{0};
  // Workers: each its own stream, taking cases in order; the reference half of a check runs on the
  // host, so several cases in flight keep both the GPU and the CPU cores busy.
  auto worker = [&] {
    cudaStream_t stream = nullptr;
    MINFER_CUDA_CHECK(cudaStreamCreate(&stream));
    for (size_t i; (i = next.fetch_add(1)) < cases.size();) {
      Result r = run_case(cases[i], o, stream);
      std::lock_guard<std::mutex> lock(mu);
      results[i] = std::move(r);
      done[i] = 1;
      cv.notify_all();
    }
    cudaStreamDestroy(stream);
  };
  const unsigned hw = std::max(1u, std::thread::hardware_concurrency());
  const size_t jobs = std::min<size_t>(cases.size(), o.jobs > 0 ? o.jobs : std::min(8u, hw));
  std::vector<std::thread> pool;
  for (size_t t = 0; t < jobs; ++t) pool.emplace_back(worker);
  // Report in case order: progress line, CSV row, CSV rewritten (a crash keeps what ran).
  for (size_t i = 0; i < cases.size(); ++i) {
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done[i] != 0; });
    }
    print_progress(i, cases.size(), results[i]);
    table.add(row_of(results[i], o, meta));
    if (!o.csv.empty()) table.write(o.csv);
  }
  for (auto& t : pool) t.join();
  print_summary(results, o.tol);
  return std::all_of(results.begin(), results.end(), [](const Result& r) { return r.pass; }) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"validate_all: check every kernel case against the scalar reference (DESIGN.md section 4)"};
  app.footer("Environment switches (MINFER_*, README.md's table) select kernel variants; those set open every row's\n"
             "repro column and the first line, so a row checked under one says so.");
  Options o;
  app.add_option("--sweep", o.sweep, "sweep to check: norm, rope, swiglu, embedding, all (the four op sweeps), "
                                         "attention (prefill), decode (split-KV decode attention) or model "
                                         "(whole-model logits against the reference)")->required();
  app.add_option("--dtype", o.dtype, "fp32, fp16, bf16 or all")
      ->check(CLI::IsMember({"fp32", "fp16", "bf16", "all"}))->capture_default_str();
  app.add_option("--csv", o.csv, "write one row per case to this CSV (via PATH.tmp, renamed)");
  app.add_option("--case", o.case_ids, "run only this case id (repeatable), e.g. norm/bf16/rows=3/hidden=896/residual=1");
  app.add_flag("--quick", o.quick, "a short subset of each sweep");
  app.add_flag("--list", o.list, "print the chosen case ids, one per line, and exit (no GPU needed)");
  app.add_option("--tol", o.tol, "normwise relative error bound")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the random inputs")->capture_default_str();
  app.add_option("--jobs", o.jobs, "cases checked concurrently (0: min(8, cores))")->capture_default_str();
  return minfer::val::run_driver("validate_all", app, argc, argv, [&] { return run(o); });
}
