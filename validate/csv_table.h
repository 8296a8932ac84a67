// validate/csv_table.h: the tidy CSV both drivers write (DESIGN.md section 6), and the run facts
// every row carries (gpu, cuda, commit). Files are written to PATH.tmp and renamed (section 7).
#pragma once
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace minfer::val {

// Rows of named cells; columns fixed up front, a cell missing from a row is written empty.
class CsvTable {
 public:
  explicit CsvTable(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  void add(std::map<std::string, std::string> row) { rows_.push_back(std::move(row)); }
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<std::map<std::string, std::string>>& rows() const { return rows_; }
  std::string text() const;
  // Writes PATH.tmp, then renames it to PATH; throws std::runtime_error naming the path.
  void write(const std::string& path) const;

 private:
  std::vector<std::string> columns_;
  std::vector<std::map<std::string, std::string>> rows_;
};

std::string csv_escape(const std::string& cell);
std::string fmt_double(double v, int digits = 6);  // "%.*g", "nan"/"inf" spelt plainly

// The run facts of section 6. gpu: "h100"/"h200" from the device name, else a lowercase slug.
struct RunMeta {
  std::string gpu = "none", gpu_name = "", cuda = "unknown", commit = "unknown";
  std::string switches;  // env_switches() (kernels/common/env.h): "MINFER_A=x " words, the repro columns' prefix
};
std::string gpu_slug(const std::string& device_name);
// Reads the current device (gpu, cuda runtime version) and the commit: env MINFER_COMMIT, else the
// COMMIT file of a packed build (scripts/pack_prebuilt.sh: <build>/COMMIT beside the binary's folder),
// else `git -C source_dir rev-parse --short HEAD`, else "unknown".
RunMeta run_meta(const std::string& source_dir);
// The commit in the COMMIT file of the packed build that holds the binary exe (<build>/<dir>/<name>:
// <build>/COMMIT, first line, trailing space dropped); "" when there is none.
std::string packed_commit(const std::filesystem::path& exe);

}  // namespace minfer::val
