// engine/cli/util.cpp: argument parsing, parameter counts and the progress-reporting TensorSource
// shared by the minfer subcommands (see util.h).
#include "engine/cli/util.h"

#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "engine/core/error.h"

namespace minfer::cli {

DType dtype_arg(const std::string& flag, const std::string& value) {
  auto d = parse_dtype(value);
  if (!d) throw UsageError(flag + ": unknown dtype \"" + value + "\" (bf16, fp16, fp32)");
  return *d;
}

uint64_t size_arg(const std::string& flag, const std::string& value) {
  size_t pos = 0;
  while (pos < value.size() && (std::isdigit(static_cast<unsigned char>(value[pos])) || value[pos] == '.')) ++pos;
  std::string num = value.substr(0, pos), unit = value.substr(pos);
  static const std::pair<const char*, double> kUnits[] = {
      {"", 1},        {"B", 1},       {"KB", 1e3},          {"MB", 1e6},          {"GB", 1e9},
      {"TB", 1e12},   {"KIB", 1024.0}, {"MIB", 1048576.0}, {"GIB", 1073741824.0}};
  for (char& ch : unit) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  double mult = 0;
  for (const auto& [u, m] : kUnits) {
    if (unit == u) mult = m;
  }
  double v = 0;
  bool ok = !num.empty() && mult > 0 && std::sscanf(num.c_str(), "%lf", &v) == 1 && v > 0;
  if (!ok) throw UsageError(flag + ": cannot read size \"" + value + "\" (e.g. 2GB, 500MB, 1GiB)");
  return static_cast<uint64_t>(std::llround(v * mult));
}

std::vector<std::vector<int32_t>> token_lists_arg(const std::string& flag, const std::string& value) {
  std::vector<std::vector<int32_t>> out;
  std::stringstream prompts(value);
  std::string prompt;
  while (std::getline(prompts, prompt, ';')) {
    out.emplace_back();
    std::stringstream ids(prompt);
    std::string id;
    while (std::getline(ids, id, ',')) {
      size_t used = 0;
      long long v = -1;
      try { v = std::stoll(id, &used); } catch (const std::exception&) { used = 0; }
      while (used < id.size() && id[used] == ' ') ++used;
      if (used != id.size() || v < 0 || v > INT32_MAX) {
        throw UsageError(flag + ": \"" + id + "\" is not a token id (expected e.g. 1,2,3 or 1,2;3,4)");
      }
      out.back().push_back(static_cast<int32_t>(v));
    }
    if (out.back().empty()) throw UsageError(flag + ": empty prompt in \"" + value + "\"");
  }
  if (out.empty()) throw UsageError(flag + ": no tokens given");
  return out;
}

ParamCount count_params(const ModelConfig& cfg) {
  ParamCount p;
  for (const WeightSpec& s : weight_map(cfg)) {
    int64_t n = 1;
    for (int64_t d : s.shape) n *= d;
    p.total += n;
    if (s.expert < 0 || s.expert < cfg.top_k) p.active += n;  // k experts' worth per token
  }
  return p;
}

std::string human_count(int64_t n) {
  char buf[32];
  const double v = static_cast<double>(n);
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1fK", v / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  const double v = static_cast<double>(n);
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB", v / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f KB", v / 1e3);
  return buf;
}

ProgressSource::ProgressSource(const TensorSource& inner, std::string what)
    : inner_(inner), what_(std::move(what)), total_(0), start_(std::chrono::steady_clock::now()), last_(start_) {
  for (const std::string& n : inner_.names()) {
    auto m = inner_.meta(n);
    total_values_ += m ? static_cast<uint64_t>(m->numel()) : 0;
    ++total_;
  }
}

std::vector<float> ProgressSource::read_f32(const std::string& name) const {
  std::vector<float> v = inner_.read_f32(name);
  size_t bad = 0;
  for (float x : v) bad += std::isfinite(x) ? 0 : 1;
  if (bad) throw BadInput(inner_.file_of(name), name, std::to_string(bad) + " non-finite values (NaN/Inf)");
  ++read_;
  values_ += v.size();
  auto now = std::chrono::steady_clock::now();
  if (now - last_ > std::chrono::seconds(2)) {
    last_ = now;
    double s = std::chrono::duration<double>(now - start_).count();
    const double pct = total_values_ ? 100.0 * static_cast<double>(values_) / static_cast<double>(total_values_) : 0.0;
    std::cerr << what_ << ": " << static_cast<int>(pct) << "% (" << read_ << "/" << total_ << " tensors, "
              << human_count(static_cast<int64_t>(values_)) << " values), " << static_cast<int>(s) << " s\n";
  }
  return v;
}

}  // namespace minfer::cli
