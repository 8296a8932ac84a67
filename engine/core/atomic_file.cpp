// engine/core/atomic_file.cpp: see atomic_file.h.
#include "engine/core/atomic_file.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "engine/core/error.h"

namespace minfer {
namespace {
std::string errno_text() { return std::strerror(errno); }
}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (f_ == nullptr) throw BadInput(tmp_, "file", "cannot create: " + errno_text());
}

AtomicFile::~AtomicFile() {
  if (f_ != nullptr) {
    std::fclose(f_);
    std::remove(tmp_.c_str());
  }
}

void AtomicFile::write(const void* p, size_t n) {
  if (f_ == nullptr) throw BadInput(tmp_, "file", "write after commit");
  if (n != 0 && std::fwrite(p, 1, n, f_) != n) throw BadInput(tmp_, "file", "write failed: " + errno_text());
}

void AtomicFile::write_zeros(uint64_t n) {
  static const char kZeros[4096] = {};
  while (n > 0) {
    const auto chunk = static_cast<size_t>(std::min<uint64_t>(n, sizeof kZeros));
    write(kZeros, chunk);
    n -= chunk;
  }
}

void AtomicFile::commit() {
  if (f_ == nullptr) throw BadInput(tmp_, "file", "committed twice");
  if (std::fflush(f_) != 0 || std::ferror(f_)) throw BadInput(tmp_, "file", "write failed: " + errno_text());
  std::FILE* f = f_;
  f_ = nullptr;
  if (std::fclose(f) != 0) {
    std::remove(tmp_.c_str());
    throw BadInput(tmp_, "file", "close failed: " + errno_text());
  }
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    std::remove(tmp_.c_str());
    throw BadInput(path_, "file", "rename from " + tmp_ + " failed: " + ec.message());
  }
}

void write_file_atomic(const std::string& path, std::string_view content) {
  AtomicFile f(path);
  f.write(content);
  f.commit();
}

}  // namespace minfer
