// bench/e2e_bench.h: the end-to-end sweep of bench_all ("e2e" cases, validate/case.h): for each
// model, load its weights once (bf16), then for each (batch, prompt_len) case re-plan the run state
// (Model::reshape), warm up (GEMM plans, the decode graph of the bucket), and time `repeats` greedy
// generate calls of new_tokens tokens. Rows per case (columns: bench/e2e_metrics.h):
//   prefill: time to first token (ragged prefill + first sample, host wall clock around the
//            synchronised region), tok_s = B*P / TTFT, tflops = prefill FLOPs / TTFT,
//            sol_pct = MFU = tflops over the measured bf16 GEMM ceiling.
//   decode:  ms_per_step (graph replay + the per-step id fetch), tok_s = B / step,
//            gbps = (weight bytes + KV bytes read per step) / step, sol_pct = gbps over the measured
//            copy bandwidth (the decode floor of DESIGN.md section 5).
// peak_mem_mib: device memory in use after the timed runs minus what was in use before the model
// loaded (weights, KV cache, workspace, cuBLAS and graph memory; nothing is allocated per step).
// MoE presets and cases that do not fit the free memory get rows with status "skipped: <why>".
// Each case is timed once per attention backend asked (engine/core/plan.h), on the same model load:
// variant "minfer" for flash (the default), "minfer-simple" for simple.
// The PyTorch peer (bench/peers/e2e.py, variant torch-graph) runs after our models are freed, on
// the same cases and configs, its rows merged with the same work counts.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bench/csv_reporter.h"
#include "engine/core/plan.h"
#include "validate/case.h"
#include "validate/csv_table.h"

namespace minfer::bench {

struct E2eOptions {
  int repeats = 3;             // timed generate calls per case (median, p10, p90 over them)
  std::string peers = "auto";  // on, off, auto
  uint64_t seed = 1234;
  std::string source_dir = ".";  // where bench/peers/e2e.py lives
  std::vector<AttentionBackend> attention = {AttentionBackend::Flash};  // timed in this order per case
  std::string csv_path;  // when set, the table is rewritten here after each case (a run cut short keeps its rows)
};

// Our variant name for an attention backend: "minfer" (flash, the engine's default), "minfer-simple".
std::string e2e_variant(AttentionBackend a);
// "--attention" values, comma-separated ("simple", "flash", "simple,flash"); throws UsageError naming
// the flag for an unknown or repeated name, or an empty list.
std::vector<AttentionBackend> parse_attention_list(const std::string& value);

// Runs every case, appends rows to table; returns the number of our cases that failed (errors,
// not skips). Sets peers_ok false when --peers on was asked and the peer could not run.
int run_e2e(const std::vector<val::Case>& cases, const E2eOptions& o, const RowContext& ctx, val::CsvTable& table,
            bool& peers_ok);

}  // namespace minfer::bench
