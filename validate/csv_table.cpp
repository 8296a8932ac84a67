// validate/csv_table.cpp: CSV writing (temporary name, then rename) and the run facts (gpu slug,
// CUDA runtime version, commit) shared by validate_all and bench_all.
#include "validate/csv_table.h"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <cuda_runtime.h>

#include "kernels/common/env.h"

namespace minfer::val {

std::string csv_escape(const std::string& cell) {
  if (cell.find_first_of(",\"\n") == std::string::npos) return cell;
  std::string s = "\"";
  for (char ch : cell) s += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return s + "\"";
}

std::string fmt_double(double v, int digits) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string CsvTable::text() const {
  std::string s;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i) s += ',';
    s += csv_escape(columns_[i]);
  }
  s += "\n";
  for (const auto& row : rows_) {
    for (size_t i = 0; i < columns_.size(); ++i) {
      auto it = row.find(columns_[i]);
      if (i) s += ',';
      if (it != row.end()) s += csv_escape(it->second);
    }
    s += "\n";
  }
  return s;
}

void CsvTable::write(const std::string& path) const {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error(tmp + ": cannot open for writing");
    f << text();
    if (!f.flush()) throw std::runtime_error(tmp + ": write failed");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw std::runtime_error(tmp + ": rename to " + path + " failed: " + ec.message());
}

std::string gpu_slug(const std::string& device_name) {
  std::string lower;
  for (char ch : device_name) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (lower.find("h100") != std::string::npos) return "h100";
  if (lower.find("h200") != std::string::npos) return "h200";
  std::string slug;
  for (char ch : lower) {
    if (std::isalnum(static_cast<unsigned char>(ch))) slug += ch;
    else if (!slug.empty() && slug.back() != '-') slug += '-';
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "unknown" : slug;
}

std::string packed_commit(const std::filesystem::path& exe) {
  if (!exe.has_parent_path()) return "";
  std::ifstream f(exe.parent_path().parent_path() / "COMMIT");
  std::string line;
  if (!f || !std::getline(f, line)) return "";
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  return line;
}

namespace {

std::string git_commit(const std::string& source_dir) {
  if (const char* env = std::getenv("MINFER_COMMIT"); env && *env) return env;
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (std::string packed = ec ? "" : packed_commit(exe); !packed.empty()) return packed;
  const std::string cmd = "git -C '" + source_dir + "' rev-parse --short HEAD 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return "unknown";
  char buf[64] = {0};
  std::string out = fgets(buf, sizeof buf, p) ? buf : "";
  pclose(p);
  while (!out.empty() && std::isspace(static_cast<unsigned char>(out.back()))) out.pop_back();
  return out.empty() ? "unknown" : out;
}

}  // namespace

RunMeta run_meta(const std::string& source_dir) {
  RunMeta m;
  m.commit = git_commit(source_dir);
  m.switches = env_switches();
  int rt = 0;
  if (cudaRuntimeGetVersion(&rt) == cudaSuccess)
    m.cuda = std::to_string(rt / 1000) + "." + std::to_string((rt % 1000) / 10);
  int dev = 0;
  cudaDeviceProp prop{};
  if (cudaGetDevice(&dev) == cudaSuccess && cudaGetDeviceProperties(&prop, dev) == cudaSuccess) {
    m.gpu_name = prop.name;
    m.gpu = gpu_slug(m.gpu_name);
  } else {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
  }
  return m;
}

}  // namespace minfer::val
