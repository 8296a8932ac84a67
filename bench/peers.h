// bench/peers.h: PyTorch peers (bench/peers/<sweep>.py) run by bench_all on the same case list.
// bench_all writes the cases to a JSON file; the peer times each case with CUDA events and an L2
// flush, checks it against a float64 reference of the same rounded inputs, and writes a small CSV
// (case_id, variant, median_us, p10_us, p90_us, rel_err, peak_mem_mib, status) that is merged here
// into full rows with our bytes per case, so ours and theirs share one byte count.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "bench/csv_reporter.h"
#include "bench/sweep_bench.h"

namespace minfer::bench {

enum class PeerMode { On, Off, Auto };

// True when `python3 -c "import torch"` works and torch sees a CUDA device.
bool torch_gpu_available();

// The peer script for a sweep under source_dir, or "" when the sweep has none.
std::string peer_script(const std::string& source_dir, const std::string& sweep);

// Writes {"sweep", "seed", "l2_bytes", "min_time", "cases": [{id, dtype, label, axes{}}]} to path.
void write_case_json(const std::string& path, const std::string& sweep, const std::vector<val::Case>& cases,
                     uint64_t seed, size_t l2_bytes, double min_time);

// Parses a small CSV with a header (quoted cells allowed) into rows of named cells.
std::vector<std::map<std::string, std::string>> read_csv(const std::string& path);

// Runs one sweep's peer and returns its rows merged into full bench rows; a peer that cannot run
// yields no rows and a message on stderr (returns false).
bool run_peer(const std::string& source_dir, const std::string& sweep, const std::vector<val::Case>& cases,
              const Registry& reg, const RowContext& ctx, uint64_t seed, size_t l2_bytes, double min_time,
              const std::string& tmp_dir,
              std::vector<std::map<std::string, std::string>>& rows_out);

}  // namespace minfer::bench
