// validate/case.h: a case is (sweep, dtype, named integer axes). validate_all and bench_all iterate
// over the same lists (DESIGN.md section 3); the axes become the CSV's axis columns.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/core/dtype.h"

namespace minfer::val {

struct Case {
  std::string sweep;    // "norm", "rope", "swiglu", "embedding", ...
  DType dtype = DType::BF16;
  std::vector<std::pair<std::string, int64_t>> axes;  // ordered; same names for every case of a sweep
  std::string label;    // optional: a real model shape's name ("llama-3.1-8b"), else ""
  int64_t axis(const std::string& name) const;  // throws std::out_of_range naming the axis
  std::string id() const;  // "norm/bf16/rows=4096/hidden=4096/residual=1"; model sweeps: "e2e/bf16/qwen3-0.6b/batch=1/..."
};

// The sweeps this build knows, and their case lists in all three dtypes (quick: a short list for
// smoke runs). Lists always hold odd sizes beside real model shapes.
std::vector<std::string> sweep_names();
// use: which driver asks. The attention and decode sweeps keep two grids: the validate grid (odd
// batches, lengths and head shapes against the scalar reference) and the bench grid (issue 4's
// timing grid); each driver gets its own (quick cases are in both), Any gives the union. Op sweeps use
// one list for both.
enum class CaseUse { Any, Validate, Bench };
std::vector<Case> sweep_cases(const std::string& sweep, bool quick, CaseUse use = CaseUse::Any);
// What a driver runs (validate_all, bench_all): the sweeps' cases for `use` (quick: the quick subset)
// in dtype `dtype` ("all" or a dtype name); with case_ids, exactly those ids, looked up in the full
// lists of every use (a repro line works with or without --quick). An id not found throws UsageError
// naming it and `sweep_arg` (the --sweep value).
std::vector<Case> select_cases(const std::vector<std::string>& sweeps, const std::string& sweep_arg,
                               const std::string& dtype, bool quick, const std::vector<std::string>& case_ids,
                               CaseUse use);
std::vector<std::string> sweep_axes(const std::string& sweep);

// Whole-model sweeps (not op runners; each has its own path in validate_all / bench_all):
//   "model": validate_all, label = preset, axes batch, prompt_len, ragged, steps, flash; fp32 and bf16.
//   "e2e":   bench_all, label = preset, axes batch, prompt_len, new_tokens; bf16.
// sweep_cases / sweep_axes accept them; sweep_names() lists the op sweeps only.
std::vector<std::string> model_sweep_names();
bool is_model_sweep(const std::string& sweep);
// Prompt lengths of a model/e2e case, one per sequence: all prompt_len, or with ragged=1 the cycle
// prompt_len, 1, 7, 33, ... (a batch whose prompts differ in length).
std::vector<int> case_prompt_lens(const Case& c);

}  // namespace minfer::val
