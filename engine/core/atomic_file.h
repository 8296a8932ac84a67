// engine/core/atomic_file.h: writing a file so that readers never see half of it: the bytes go to PATH.tmp,
// which commit() flushes, closes and renames over PATH. A file not committed (an exception on the way) is
// removed by the destructor. Every failure is BadInput naming the file ("m.gguf.tmp: file: write failed: No
// space left on device").
#pragma once
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

namespace minfer {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* p, size_t n);
  void write(std::string_view s) { write(s.data(), s.size()); }
  void write_zeros(uint64_t n);
  void commit();  // flush, close, rename PATH.tmp -> PATH

 private:
  std::string path_, tmp_;
  std::FILE* f_ = nullptr;
};

// The whole content at once, through AtomicFile.
void write_file_atomic(const std::string& path, std::string_view content);

}  // namespace minfer
