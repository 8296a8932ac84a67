// engine/core/mapped_file.h: a file mapped read-only into memory, the common start of the model-file
// readers (engine/core/safetensors, engine/core/gguf). Unmapped when it goes out of scope, so a reader
// whose validation throws leaks nothing.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace minfer {

class MappedFile {
 public:
  // Maps `path`. Throws BadInput(path, "file", ...) when it cannot be opened, is not a regular file or
  // cannot be mapped, and BadInput(path, short_field, "file has N bytes, fewer than " + short_what)
  // when it holds fewer than min_bytes (min_bytes >= 1: an empty file is never mapped).
  MappedFile(const std::string& path, size_t min_bytes, const std::string& short_field, const std::string& short_what);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return static_cast<const uint8_t*>(map_); }
  size_t size() const { return size_; }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
};

}  // namespace minfer
