// engine/core/safetensors.h: safetensors reader (mmap, header validated per DESIGN.md section 8),
// checkpoint directories (model.safetensors, or shards through model.safetensors.index.json),
// and a streaming writer (used by `minfer export` and the tests).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/core/mapped_file.h"
#include "engine/core/weights.h"

namespace minfer {

size_t safetensors_dtype_size(const std::string& dtype);  // 0 if unknown

// One .safetensors file, memory-mapped. Construction validates everything; errors are BadInput
// naming the file and the field (header length, a tensor's dtype/shape/data_offsets, ...).
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;
  bool has(const std::string& name) const { return entries_.count(name) != 0; }
  const TensorMeta& meta(const std::string& name) const;    // throws BadInput if absent
  const uint8_t* data(const std::string& name) const;       // raw bytes, inside the mapping
  size_t nbytes(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  struct Entry { TensorMeta meta; uint64_t begin = 0, end = 0; };
  std::string path_;
  MappedFile file_;
  const uint8_t* data_base_ = nullptr;
  std::map<std::string, Entry> entries_;
  std::map<std::string, std::string> metadata_;
};

// A checkpoint directory, or a single .safetensors file path.
std::unique_ptr<TensorSource> open_checkpoint(const std::string& path);

// Streaming writer: the header is laid out from shapes first; each tensor's bytes are then produced
// by its fill callback, one tensor at a time (never the whole model in memory). Writes to
// path + ".tmp" and renames at the end.
struct TensorToWrite {
  std::string name;
  std::string dtype;  // "F32", "F16", "BF16"
  std::vector<int64_t> shape;
  std::function<void(uint8_t* dst, size_t nbytes)> fill;
};
void write_safetensors(const std::string& path, std::vector<TensorToWrite> tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace minfer
