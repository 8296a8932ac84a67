// engine/cli/util.h: helpers shared by the minfer subcommands: argument parsing (dtypes, sizes such
// as "2GB", token lists), parameter counts, and a TensorSource wrapper that reports progress on
// stderr and refuses non-finite values.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/config.h"
#include "engine/core/dtype.h"
#include "engine/core/weights.h"

namespace minfer::cli {

// "bf16" / "fp16" / "fp32" (and the aliases of parse_dtype); throws UsageError naming `flag`.
DType dtype_arg(const std::string& flag, const std::string& value);
// "2GB" (1e9), "500MB", "1GiB", "4096" (bytes); throws UsageError naming `flag`.
uint64_t size_arg(const std::string& flag, const std::string& value);
// "1,2,3" -> {{1,2,3}}; "1,2;3" -> {{1,2},{3}}; throws UsageError naming `flag`.
std::vector<std::vector<int32_t>> token_lists_arg(const std::string& flag, const std::string& value);

struct ParamCount {
  int64_t total = 0;   // every weight
  int64_t active = 0;  // used per token (MoE: k of E experts)
};
ParamCount count_params(const ModelConfig& cfg);
std::string human_count(int64_t n);  // 1234567 -> "1.23M"
std::string human_bytes(uint64_t n);  // -> "1.23 GB"

// Forwards to `inner`; every read is checked for NaN/Inf (BadInput naming file and tensor) and
// counted, with a progress line on stderr at most every two seconds once a load runs long.
class ProgressSource : public TensorSource {
 public:
  ProgressSource(const TensorSource& inner, std::string what);
  std::string describe() const override { return inner_.describe(); }
  std::vector<std::string> names() const override { return inner_.names(); }
  std::optional<TensorMeta> meta(const std::string& name) const override { return inner_.meta(name); }
  std::string file_of(const std::string& name) const override { return inner_.file_of(name); }
  std::vector<float> read_f32(const std::string& name) const override;
  size_t tensors_read() const { return read_; }
  uint64_t values_read() const { return values_; }

 private:
  const TensorSource& inner_;
  std::string what_;
  size_t total_;              // tensors the source lists
  uint64_t total_values_ = 0;  // values in them
  mutable size_t read_ = 0;
  mutable uint64_t values_ = 0;
  std::chrono::steady_clock::time_point start_;
  mutable std::chrono::steady_clock::time_point last_;
};

}  // namespace minfer::cli
