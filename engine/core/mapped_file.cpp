// engine/core/mapped_file.cpp: read-only file mapping (see mapped_file.h).
#include "engine/core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "engine/core/error.h"

namespace minfer {

MappedFile::MappedFile(const std::string& path, size_t min_bytes, const std::string& short_field,
                       const std::string& short_what) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw BadInput(path, "file", std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw BadInput(path, "file", "not a regular file");
  }
  const size_t size = static_cast<size_t>(st.st_size);
  if (size < min_bytes || size == 0) {
    ::close(fd);
    throw BadInput(path, short_field, "file has " + std::to_string(size) + " bytes, fewer than " + short_what);
  }
  void* m = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (m == MAP_FAILED) throw BadInput(path, "file", std::string("mmap failed: ") + std::strerror(err));
  map_ = m;
  size_ = size;
}

MappedFile::~MappedFile() {
  if (map_ != nullptr) ::munmap(map_, size_);
}

}  // namespace minfer
