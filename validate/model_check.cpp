// validate/model_check.cpp: one "model" case, engine against ref::Model at every step (see
// model_check.h). V vocab, B sequences, Bb decode bucket rows.
#include "validate/model_check.h"

#include <algorithm>

#include "engine/core/error.h"
#include "engine/core/plan.h"
#include "engine/core/presets.h"
#include "engine/core/weights.h"
#include "engine/model/model.h"
#include "engine/runtime/generator.h"
#include "reference/model.h"
#include "validate/csv_table.h"

namespace minfer::val {
namespace {

using Seqs = std::vector<std::vector<int32_t>>;

// Deterministic prompts of the given lengths, ids in [0, V), different per sequence and seed.
Seqs make_prompts(const std::vector<int>& lens, int vocab, uint64_t seed) {
  Seqs out;
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (int len : lens) {
    std::vector<int32_t> p;
    for (int i = 0; i < len; ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      p.push_back(static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(vocab)));
    }
    out.push_back(std::move(p));
  }
  return out;
}

int32_t argmax(const float* row /*(V)*/, int vocab) {
  int32_t best = 0;
  for (int32_t v = 1; v < vocab; ++v) best = row[v] > row[best] ? v : best;
  return best;
}

// Rows `take` (indices into a (rows, V) matrix) gathered into a new (take.size(), V) matrix.
std::vector<float> gather_rows(const std::vector<float>& m, const std::vector<size_t>& take, int vocab) {
  std::vector<float> out;
  for (size_t r : take) out.insert(out.end(), m.begin() + static_cast<std::ptrdiff_t>(r * vocab),
                                   m.begin() + static_cast<std::ptrdiff_t>((r + 1) * vocab));
  return out;
}

// One row: error of eng against ref, agreement of `chosen` with ref's argmax per row.
StepCheck step_check(const std::string& phase, int step, const std::vector<float>& eng, const std::vector<float>& ref,
                     const std::vector<int32_t>& chosen, int vocab, double bound) {
  StepCheck s;
  s.phase = phase;
  s.step = step;
  s.bound = bound;
  s.e = compare(eng.data(), ref.data(), static_cast<int64_t>(std::min(eng.size(), ref.size())));
  if (eng.size() != ref.size()) s.e.nonfinite = std::max<int64_t>(s.e.nonfinite, 1);  // shape mismatch fails
  for (size_t r = 0; r < chosen.size(); ++r) {
    s.agree += chosen[r] == argmax(ref.data() + r * static_cast<size_t>(vocab), vocab) ? 1 : 0;
    ++s.tokens;
  }
  s.pass = s.e.pass(bound);
  return s;
}

// Argmax of every row of a (rows, V) matrix.
std::vector<int32_t> argmax_rows(const std::vector<float>& m, int vocab) {
  std::vector<int32_t> out;
  for (size_t r = 0; r * static_cast<size_t>(vocab) < m.size(); ++r)
    out.push_back(argmax(m.data() + r * static_cast<size_t>(vocab), vocab));
  return out;
}

StepCheck summary_of(const std::vector<StepCheck>& rows, DType dt) {
  StepCheck s;
  s.phase = "summary";
  s.bound = rows.empty() ? 0 : rows.front().bound;
  s.pass = !rows.empty();
  for (const StepCheck& r : rows) {
    if (r.e.nonfinite > s.e.nonfinite || (r.e.nonfinite == s.e.nonfinite && r.e.rel_err > s.e.rel_err)) s.e = r.e;
    s.pass = s.pass && r.pass;
    if (r.phase == "prefill") continue;  // agreement counts the sampled tokens only
    s.agree += r.agree;
    s.tokens += r.tokens;
  }
  const double agreement = s.tokens ? static_cast<double>(s.agree) / s.tokens : 0;
  if (dt != DType::F32) s.pass = s.pass && agreement >= kBf16AgreeBound;
  return s;
}

}  // namespace

std::string prompt_lens_str(const std::vector<int>& lens) {
  std::string s;
  for (int n : lens) {
    if (!s.empty()) s += '|';
    s += std::to_string(n);
  }
  return s;
}

ModelCaseResult check_model_case(const Case& c, double tol, uint64_t seed) {
  ModelCaseResult res;
  res.c = c;
  res.prompt_lens = case_prompt_lens(c);
  try {
    const std::string preset = c.label;
    const ModelConfig cfg = preset_config(preset);
    const int V = cfg.vocab, B = static_cast<int>(res.prompt_lens.size()), steps = static_cast<int>(c.axis("steps"));
    const double bound = c.dtype == DType::F32 ? tol : kBf16RelErrBound;
    const auto ref_src = preset_source(preset, DType::F32);
    const ModelWeights w = load_weights(cfg, *ref_src, DType::F32);
    ref::Model ref(cfg, w, DType::F32);
    const Seqs prompts = make_prompts(res.prompt_lens, V, seed);
    const auto eng_src = c.dtype == DType::F32 ? nullptr : preset_source(preset, c.dtype);
    RunShape shape;
    shape.batch = B;
    shape.context = *std::max_element(res.prompt_lens.begin(), res.prompt_lens.end()) + steps + 1;
    for (int n : res.prompt_lens) shape.max_prefill_tokens += n;
    shape.all_logits = true;
    shape.attention = c.axis("flash") != 0 ? AttentionBackend::Flash : AttentionBackend::Simple;
    Model eng(cfg, eng_src ? *eng_src : *ref_src, c.dtype, shape);

    // Every prompt token's logits.
    ref.reset(B);
    const std::vector<float> rl = ref.forward(prompts);
    const std::vector<float> el = eng.forward(prompts);
    res.rows.push_back(step_check("prefill", 0, el, rl, argmax_rows(el, V), V, bound));
    std::vector<size_t> last;
    size_t row = 0;
    for (const auto& p : prompts) last.push_back((row += p.size()) - 1);

    // The Generator's path: prefill rows it samples from, then graph decode steps.
    std::vector<std::vector<float>> seen;
    Generator gen(eng);
    GenerateRequest req;
    req.prompts = prompts;
    req.max_new_tokens = steps + 1;
    req.eos_token_id = -1;
    req.on_logits = [&](int step, const std::vector<float>& l) {
      if (static_cast<size_t>(step) == seen.size()) seen.push_back(std::vector<float>(l.begin(), l.begin() + static_cast<std::ptrdiff_t>(B) * V));
    };
    const GenerateResult g = gen.generate(req);
    if (static_cast<int>(seen.size()) != steps + 1) throw CheckFailed("generator reported " + std::to_string(seen.size()) + " steps of logits, expected " + std::to_string(steps + 1));
    auto chosen = [&](int s) {
      std::vector<int32_t> t;
      for (const auto& seq : g.tokens) t.push_back(seq.at(static_cast<size_t>(s)));
      return t;
    };
    res.rows.push_back(step_check("prefill_last", 0, seen[0], gather_rows(rl, last, V), chosen(0), V, bound));
    for (int s = 1; s <= steps; ++s) {
      Seqs fed;
      for (int32_t t : chosen(s - 1)) fed.push_back({t});
      res.rows.push_back(step_check("decode", s, seen[static_cast<size_t>(s)], ref.forward(fed), chosen(s), V, bound));
    }
    res.rows.push_back(summary_of(res.rows, c.dtype));
    res.pass = res.rows.back().pass;
  } catch (const std::exception& e) {
    res.error = e.what();
    res.rows.clear();
    res.pass = false;
  }
  return res;
}

std::vector<std::string> model_columns() {
  return {"sweep", "variant", "dtype", "model", "batch", "prompt_len", "ragged", "steps", "prompt_lens", "phase", "step",
          "rel_err", "max_abs", "max_rel", "worst_index", "nonfinite", "token_agree", "tokens", "bound",
          "agree_bound", "pass", "error", "gpu", "cuda", "commit", "repro"};
}

std::map<std::string, std::string> model_row(const ModelCaseResult& r, const StepCheck& s) {
  std::map<std::string, std::string> row = {
      {"sweep", r.c.sweep}, {"variant", "minfer"}, {"dtype", dtype_name(r.c.dtype)}, {"model", r.c.label},
      {"prompt_lens", prompt_lens_str(r.prompt_lens)}, {"phase", s.phase}, {"step", std::to_string(s.step)},
      {"rel_err", fmt_double(s.e.rel_err)}, {"max_abs", fmt_double(s.e.max_abs)}, {"max_rel", fmt_double(s.e.max_rel)},
      {"worst_index", std::to_string(s.e.worst_index)}, {"nonfinite", std::to_string(s.e.nonfinite)},
      {"token_agree", s.tokens ? fmt_double(static_cast<double>(s.agree) / s.tokens) : ""},
      {"tokens", std::to_string(s.tokens)}, {"bound", fmt_double(s.bound)},
      {"agree_bound", r.c.dtype == DType::F32 || s.phase != "summary" ? "" : fmt_double(kBf16AgreeBound)},
      {"pass", s.pass ? "1" : "0"}, {"error", r.error}};
  for (const auto& [k, v] : r.c.axes) row[k] = std::to_string(v);
  return row;
}

}  // namespace minfer::val
