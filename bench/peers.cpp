// bench/peers.cpp: case-list JSON for the PyTorch peers, running them, and merging their rows.
#include "bench/peers.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace minfer::bench {

namespace {

std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char ch = line[i];
    if (quoted && ch == '"' && i + 1 < line.size() && line[i + 1] == '"') { cells.back() += '"'; ++i; }
    else if (ch == '"') quoted = !quoted;
    else if (ch == ',' && !quoted) cells.emplace_back();
    else if (ch != '\r') cells.back() += ch;
  }
  return cells;
}

double to_double(const std::map<std::string, std::string>& row, const std::string& key) {
  auto it = row.find(key);
  if (it == row.end() || it->second.empty()) return 0;
  try { return std::stod(it->second); } catch (const std::exception&) { return 0; }
}

// One merged row from a peer row, the case's record (our bytes/flops) and the run context.
std::map<std::string, std::string> merge_row(const std::map<std::string, std::string>& p, const BenchRecord& ours,
                                             const RowContext& ctx) {
  BenchRecord rec = ours;
  rec.variant = p.count("variant") ? p.at("variant") : "torch";
  rec.status = p.count("status") ? p.at("status") : "error: peer row without status";
  rec.checked = p.count("rel_err") && !p.at("rel_err").empty();
  rec.check = {};
  rec.check.rel_err = rec.checked ? to_double(p, "rel_err") : 0;
  Stats st{to_double(p, "median_us"), to_double(p, "p10_us"), to_double(p, "p90_us"), 0};
  return bench_row(rec, st, to_double(p, "peak_mem_mib"), ctx,
                   "bench_all --sweep " + rec.c.sweep + " --case " + rec.c.id() + " --peers on");
}

}  // namespace

bool torch_gpu_available() {
  const int rc = std::system(
      "python3 -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1");
  return rc == 0;
}

std::string peer_script(const std::string& source_dir, const std::string& sweep) {
  const auto p = std::filesystem::path(source_dir) / "bench" / "peers" / (sweep + ".py");
  return std::filesystem::exists(p) ? p.string() : "";
}

void write_case_json(const std::string& path, const std::string& sweep, const std::vector<val::Case>& cases,
                     uint64_t seed, size_t l2_bytes, double min_time) {
  nlohmann::json j = {{"sweep", sweep}, {"seed", seed}, {"l2_bytes", l2_bytes}, {"min_time", min_time},
                      {"cases", nlohmann::json::array()}};
  for (const auto& c : cases) {
    if (c.sweep != sweep) continue;
    nlohmann::json axes = nlohmann::json::object();
    for (const auto& [k, v] : c.axes) axes[k] = v;
    j["cases"].push_back({{"id", c.id()}, {"dtype", dtype_name(c.dtype)}, {"label", c.label}, {"axes", axes}});
  }
  std::ofstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open for writing");
  f << j.dump(1) << "\n";
}

std::vector<std::map<std::string, std::string>> read_csv(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error(path + ": cannot open");
  std::string line;
  if (!std::getline(f, line)) return {};
  const auto header = split_csv_line(line);
  std::vector<std::map<std::string, std::string>> rows;
  while (std::getline(f, line)) {
    if (line.empty()) continue;
    const auto cells = split_csv_line(line);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < header.size() && i < cells.size(); ++i) row[header[i]] = cells[i];
    rows.push_back(std::move(row));
  }
  return rows;
}

bool run_peer(const std::string& source_dir, const std::string& sweep, const std::vector<val::Case>& cases,
              const Registry& reg, const RowContext& ctx, uint64_t seed, size_t l2_bytes, double min_time,
              const std::string& tmp_dir,
              std::vector<std::map<std::string, std::string>>& rows_out) {
  const std::string script = peer_script(source_dir, sweep);
  if (script.empty()) {
    std::fprintf(stderr, "bench_all: no PyTorch peer for sweep %s\n", sweep.c_str());
    return true;
  }
  const std::string json = tmp_dir + "/cases_" + sweep + ".json", out = tmp_dir + "/peer_" + sweep + ".csv";
  write_case_json(json, sweep, cases, seed, l2_bytes, min_time);
  const std::string cmd = "python3 '" + script + "' --cases '" + json + "' --out '" + out + "'";
  std::fprintf(stderr, "bench_all: running peer: %s\n", cmd.c_str());
  if (std::system(cmd.c_str()) != 0) {
    std::fprintf(stderr, "bench_all: peer %s failed; its rows are missing\n", script.c_str());
    return false;
  }
  for (const auto& p : read_csv(out)) {
    const auto id = p.count("case_id") ? p.at("case_id") : "";
    const BenchRecord* ours = reg.find("minfer:" + id);
    if (!ours) {
      std::fprintf(stderr, "bench_all: peer row for unknown case '%s' dropped\n", id.c_str());
      continue;
    }
    rows_out.push_back(merge_row(p, *ours, ctx));
  }
  return true;
}

}  // namespace minfer::bench
