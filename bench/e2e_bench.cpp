// bench/e2e_bench.cpp: the e2e sweep (see e2e_bench.h). B batch, P prompt tokens, N new tokens.
#include "bench/e2e_bench.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bench/e2e_metrics.h"
#include "bench/harness.h"
#include "bench/peers.h"
#include "engine/core/error.h"
#include "engine/core/plan.h"
#include "engine/core/presets.h"
#include "engine/model/model.h"
#include "engine/runtime/generator.h"
#include "kernels/common/status.h"

namespace minfer::bench {
namespace {

using val::Case;
using val::fmt_double;
using Row = std::map<std::string, std::string>;

constexpr DType kDtype = DType::BF16;

struct Measured {
  Stats ttft_us, step_us;
  double peak_mib = 0;
  bool graph = false;
};

RunShape shape_of(const Case& c, AttentionBackend a) {
  RunShape s;
  s.attention = a;
  s.batch = static_cast<int>(c.axis("batch"));
  s.context = static_cast<int>(c.axis("prompt_len") + c.axis("new_tokens"));
  s.max_prefill_tokens = static_cast<int>(c.axis("batch") * c.axis("prompt_len"));
  return s;
}

double used_mib() {
  size_t free_b = 0, total_b = 0;
  MINFER_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  return static_cast<double>(total_b - free_b) / (1024.0 * 1024.0);
}

// Prompts of random ids (a fixed LCG of the seed), B x P.
std::vector<std::vector<int32_t>> prompts_of(const Case& c, int vocab, uint64_t seed) {
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(c.axis("batch")));
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 7;
  for (auto& p : out)
    for (int64_t i = 0; i < c.axis("prompt_len"); ++i) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      p.push_back(static_cast<int32_t>((s >> 33) % static_cast<uint64_t>(vocab)));
    }
  return out;
}

Measured measure(Model& m, const Case& c, const E2eOptions& o, double baseline_mib) {
  Generator gen(m);
  GenerateRequest req;
  req.prompts = prompts_of(c, m.config().vocab, o.seed);
  req.eos_token_id = -1;
  req.max_new_tokens = std::min<int>(4, static_cast<int>(c.axis("new_tokens")));
  gen.generate(req);  // warm-up: prefill GEMM plans, the bucket's decode graph
  req.max_new_tokens = static_cast<int>(c.axis("new_tokens"));
  std::vector<double> ttft, step;
  Measured out;
  for (int r = 0; r < o.repeats; ++r) {
    const GenerateResult g = gen.generate(req);
    ttft.push_back(g.ttft_ms * 1e3);
    step.push_back(g.ms_per_step * 1e3);
    out.graph = g.graph;
  }
  out.ttft_us = summarize(ttft);
  out.step_us = summarize(step);
  out.peak_mib = used_mib() - baseline_mib;
  return out;
}

// The options that reproduce a variant's row: a peer needs --peers on, minfer-simple --attention simple.
std::string repro_flags(const std::string& variant) {
  if (variant == e2e_variant(AttentionBackend::Flash)) return "";
  if (variant == e2e_variant(AttentionBackend::Simple)) return " --attention simple";
  return " --peers on";
}

Row base_row(const Case& c, const std::string& variant, const std::string& phase, const RowContext& ctx) {
  Row r = {{"sweep", "e2e"}, {"variant", variant}, {"dtype", dtype_name(c.dtype)}, {"model", c.label},
           {"label", c.label}, {"phase", phase}, {"copy_gbps", fmt_double(ctx.ceil.copy_gbps, 5)},
           {"gemm_tflops", fmt_double(ctx.ceil.gemm_tflops, 5)}, {"gpu", ctx.meta.gpu}, {"cuda", ctx.meta.cuda},
           {"commit", ctx.meta.commit}, {"rel_err", "nan"},
           {"repro", ctx.meta.switches + "bench_all --sweep e2e --case " + c.id() + repro_flags(variant)}};
  for (const auto& [k, v] : c.axes) r[k] = std::to_string(v);
  return r;
}

// Fills the rate columns of a prefill or decode row from its median (and p10/p90) in microseconds.
void fill_rates(Row& r, const Case& c, const ModelConfig& cfg, const Stats& st, const RowContext& ctx) {
  const int B = static_cast<int>(c.axis("batch")), P = static_cast<int>(c.axis("prompt_len")),
            N = static_cast<int>(c.axis("new_tokens"));
  if (st.median_us <= 0) return;
  const double sec = st.median_us * 1e-6;
  r["median_us"] = fmt_double(st.median_us, 5);
  r["p10_us"] = fmt_double(st.p10_us, 5);
  r["p90_us"] = fmt_double(st.p90_us, 5);
  if (r["phase"] == "prefill") {
    const double tflops = prefill_flops(cfg, B, P) / sec / 1e12;
    r["tflops"] = fmt_double(tflops, 5);
    r["tok_s"] = fmt_double(static_cast<double>(B) * P / sec, 5);
    r["sol_pct"] = ctx.ceil.gemm_tflops > 0 ? fmt_double(tflops / ctx.ceil.gemm_tflops * 100.0, 4) : "";
  } else {
    const double bytes = decode_weight_bytes(cfg, kDtype) + decode_kv_bytes(cfg, kDtype, B, mean_decode_context(P, N));
    const double gbps = bytes / sec / 1e9;
    r["gbps"] = fmt_double(gbps, 5);
    r["tok_s"] = fmt_double(B / sec, 5);
    r["ms_per_step"] = fmt_double(st.median_us * 1e-3, 5);
    r["sol_pct"] = ctx.ceil.copy_gbps > 0 ? fmt_double(gbps / ctx.ceil.copy_gbps * 100.0, 4) : "";
  }
}

void add_status_rows(val::CsvTable& t, const Case& c, const std::string& variant, const RowContext& ctx,
                     const std::string& status) {
  for (const char* phase : {"prefill", "decode"}) {
    Row r = base_row(c, variant, phase, ctx);
    r["status"] = status;
    t.add(std::move(r));
  }
  std::fprintf(stderr, "e2e: %s %s %s\n", c.id().c_str(), variant.c_str(), status.c_str());
}

// The same status for every backend asked.
void add_status_rows(val::CsvTable& t, const Case& c, const E2eOptions& o, const RowContext& ctx,
                     const std::string& status) {
  for (AttentionBackend a : o.attention) add_status_rows(t, c, e2e_variant(a), ctx, status);
}

// Cases of one model, in list order, grouped by label (first appearance order).
std::vector<std::pair<std::string, std::vector<Case>>> by_model(const std::vector<Case>& cases) {
  std::vector<std::pair<std::string, std::vector<Case>>> out;
  for (const Case& c : cases) {
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& g) { return g.first == c.label; });
    if (it == out.end()) it = out.insert(out.end(), {c.label, {}});
    it->second.push_back(c);
  }
  return out;
}

// Why a case cannot run before anything is loaded ("" when it may): past a limit, or the plan
// (weights + KV + workspace) over the free memory.
std::string precheck(const ModelConfig& cfg, const Case& c, AttentionBackend a, uint64_t free_b) {
  try {
    const RunShape s = shape_of(c, a);
    check_request(cfg, s);
    check_fits(plan_memory(cfg, kDtype, s), s, free_b);
    return "";
  } catch (const UsageError& e) {
    return std::string("skipped: does not fit: ") + e.what();
  }
}

enum class Outcome { Timed, Skipped, Failed };

// The rows so far into o.csv_path (through PATH.tmp, renamed), so that a run stopped by a time limit
// keeps the cases it finished; the peer's rows follow at the end.
void checkpoint(const val::CsvTable& table, const E2eOptions& o) {
  if (!o.csv_path.empty()) table.write(o.csv_path);
}

// One (case, backend) on the loaded model: re-plan, time, add its two rows.
Outcome run_variant(Model& m, bool reshape, const Case& c, AttentionBackend a, const ModelConfig& cfg,
                const E2eOptions& o, const RowContext& ctx, double baseline, val::CsvTable& table) {
  const std::string variant = e2e_variant(a);
  try {
    if (reshape) m.reshape(shape_of(c, a));
    const Measured r = measure(m, c, o, baseline);
    for (const char* phase : {"prefill", "decode"}) {
      Row row = base_row(c, variant, phase, ctx);
      fill_rates(row, c, cfg, std::string(phase) == "prefill" ? r.ttft_us : r.step_us, ctx);
      row["peak_mem_mib"] = fmt_double(r.peak_mib, 5);
      row["status"] = "ok";
      table.add(std::move(row));
    }
    std::fprintf(stderr, "e2e: %s %s TTFT %.3f ms, decode %.3f ms/step (%s)\n", c.id().c_str(), variant.c_str(),
                 r.ttft_us.median_us * 1e-3, r.step_us.median_us * 1e-3, r.graph ? "CUDA graph" : "eager");
    return Outcome::Timed;
  } catch (const UsageError& e) {
    add_status_rows(table, c, variant, ctx, std::string("skipped: ") + e.what());
    return Outcome::Skipped;
  } catch (const std::exception& e) {
    add_status_rows(table, c, variant, ctx, std::string("error: ") + e.what());
    return Outcome::Failed;
  }
}

// One model: load once, every case and backend; returns failures. ran collects the cases timed
// (by at least one backend) for the peer.
int run_model(const std::string& name, const std::vector<Case>& cases, const E2eOptions& o, const RowContext& ctx,
              val::CsvTable& table, std::vector<Case>& ran) {
  const ModelConfig cfg = preset_config(name);
  if (cfg.is_moe()) {
    const std::string why = "skipped: MoE (" + std::to_string(cfg.num_experts) + " experts, top-" +
                            std::to_string(cfg.top_k) + "): the engine runs dense families only";
    for (const Case& c : cases) add_status_rows(table, c, o, ctx, why);
    return 0;
  }
  size_t free_b = 0, total_b = 0;
  MINFER_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
  std::vector<std::vector<std::string>> skip;  // (case, backend)
  const Case* first = nullptr;
  AttentionBackend first_a = AttentionBackend::Simple;
  for (const Case& c : cases) {
    skip.emplace_back();
    for (AttentionBackend a : o.attention) {
      skip.back().push_back(precheck(cfg, c, a, free_b));
      if (skip.back().back().empty() && !first) first = &c, first_a = a;
    }
  }
  if (!first) {
    for (size_t i = 0; i < cases.size(); ++i)
      for (size_t k = 0; k < o.attention.size(); ++k)
        add_status_rows(table, cases[i], e2e_variant(o.attention[k]), ctx, skip[i][k]);
    return 0;
  }
  const double baseline = used_mib();
  std::fprintf(stderr, "e2e: loading preset:%s (bf16)...\n", name.c_str());
  std::unique_ptr<Model> model;
  try {
    auto src = preset_source(name, kDtype);
    model = std::make_unique<Model>(cfg, *src, kDtype, shape_of(*first, first_a));
  } catch (const std::exception& e) {
    for (const Case& c : cases) add_status_rows(table, c, o, ctx, std::string("error: loading the model: ") + e.what());
    return static_cast<int>(cases.size() * o.attention.size());
  }
  int failed = 0;
  bool loaded_shape = true;  // the model still holds the shape it was built with
  for (size_t i = 0; i < cases.size(); ++i) {
    bool timed = false;
    for (size_t k = 0; k < o.attention.size(); ++k) {
      const AttentionBackend a = o.attention[k];
      if (!skip[i][k].empty()) { add_status_rows(table, cases[i], e2e_variant(a), ctx, skip[i][k]); continue; }
      const bool reshape = !(loaded_shape && &cases[i] == first && a == first_a);
      loaded_shape = false;
      const Outcome r = run_variant(*model, reshape, cases[i], a, cfg, o, ctx, baseline, table);
      failed += r == Outcome::Failed ? 1 : 0;
      timed = timed || r == Outcome::Timed;
    }
    if (timed) ran.push_back(cases[i]);
    checkpoint(table, o);
  }
  return failed;
}

// Case list for the peer: {"sweep", "seed", "cases": [{id, dtype, model, batch, prompt_len,
// new_tokens, config: HF config.json of the preset}]}.
void write_peer_json(const std::string& path, const std::vector<Case>& cases, uint64_t seed) {
  nlohmann::json j = {{"sweep", "e2e"}, {"seed", seed}, {"cases", nlohmann::json::array()}};
  for (const Case& c : cases)
    j["cases"].push_back({{"id", c.id()}, {"dtype", dtype_name(c.dtype)}, {"model", c.label},
                          {"batch", c.axis("batch")}, {"prompt_len", c.axis("prompt_len")},
                          {"new_tokens", c.axis("new_tokens")}, {"config", config_to_hf_json(preset_config(c.label))}});
  std::ofstream f(path);
  if (!f || !(f << j.dump(1) << "\n")) throw std::runtime_error(path + ": cannot write");
}

// Runs bench/peers/e2e.py on the cases we timed; merges its rows. False when it could not run.
bool run_e2e_peer(const std::vector<Case>& ran, const E2eOptions& o, const RowContext& ctx, val::CsvTable& table) {
  if (ran.empty()) return true;
  const auto tmp = std::filesystem::temp_directory_path() / ("minfer_e2e_" + std::to_string(getpid()));
  std::filesystem::create_directories(tmp);
  const std::string json = (tmp / "cases_e2e.json").string(), out = (tmp / "peer_e2e.csv").string();
  write_peer_json(json, ran, o.seed);
  const std::string cmd = "python3 '" + peer_script(o.source_dir, "e2e") + "' --cases '" + json + "' --out '" +
                          out + "' --repeats " + std::to_string(o.repeats);
  std::fprintf(stderr, "bench_all: running peer: %s\n", cmd.c_str());
  const bool ok = std::system(cmd.c_str()) == 0;
  if (ok) {
    for (const auto& p : read_csv(out)) {
      auto it = std::find_if(ran.begin(), ran.end(), [&](const Case& c) { return p.count("case_id") && c.id() == p.at("case_id"); });
      if (it == ran.end() || !p.count("phase")) continue;
      Row r = base_row(*it, p.count("variant") ? p.at("variant") : "torch-graph", p.at("phase"), ctx);
      auto num = [&](const char* k) { return p.count(k) && !p.at(k).empty() ? std::stod(p.at(k)) : 0.0; };
      if (p.count("status") && p.at("status") == "ok")
        fill_rates(r, *it, preset_config(it->label), Stats{num("median_us"), num("p10_us"), num("p90_us"), 0}, ctx);
      r["peak_mem_mib"] = p.count("peak_mem_mib") ? p.at("peak_mem_mib") : "";
      r["status"] = p.count("status") ? p.at("status") : "error: peer row without status";
      table.add(std::move(r));
    }
  } else {
    std::fprintf(stderr, "bench_all: peer e2e.py failed; its rows are missing\n");
  }
  std::filesystem::remove_all(tmp);
  return ok;
}

}  // namespace

std::string e2e_variant(AttentionBackend a) {
  return a == AttentionBackend::Flash ? "minfer" : std::string("minfer-") + attention_backend_name(a);
}

std::vector<AttentionBackend> parse_attention_list(const std::string& value) {
  std::vector<AttentionBackend> out;
  size_t at = 0;
  while (at <= value.size()) {
    const size_t comma = std::min(value.find(',', at), value.size());
    const AttentionBackend a = parse_attention_backend("--attention", value.substr(at, comma - at));
    if (std::find(out.begin(), out.end(), a) != out.end())
      throw UsageError("--attention: " + std::string(attention_backend_name(a)) + " is named twice");
    out.push_back(a);
    at = comma + 1;
  }
  return out;
}

int run_e2e(const std::vector<Case>& cases, const E2eOptions& o, const RowContext& ctx, val::CsvTable& table,
            bool& peers_ok) {
  int failed = 0;
  std::vector<Case> ran;
  for (const auto& [name, group] : by_model(cases)) {
    failed += run_model(name, group, o, ctx, table, ran);
    checkpoint(table, o);  // also after a model skipped whole (MoE, nothing fits)
  }
  peers_ok = true;
  if (o.peers == "off") return failed;
  if (!torch_gpu_available()) {
    std::fprintf(stderr, "bench_all: e2e peer skipped: python3 with torch and a CUDA device not found\n");
    peers_ok = o.peers != "on";
    return failed;
  }
  peers_ok = run_e2e_peer(ran, o, ctx, table) || o.peers != "on";
  return failed;
}

}  // namespace minfer::bench
