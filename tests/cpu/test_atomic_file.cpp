// tests/cpu/test_atomic_file.cpp: engine/core/atomic_file: commit puts the whole file in place (replacing an
// older one); a file not committed leaves neither PATH nor PATH.tmp behind and the older file untouched; a
// path that cannot be created is BadInput naming PATH.tmp.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "engine/core/atomic_file.h"
#include "engine/core/error.h"

namespace minfer {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(AtomicFile, CommitReplacesAndAnAbortLeavesNothing) {
  const fs::path dir = fs::temp_directory_path() / ("minfer_atomic_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const fs::path p = dir / "out.bin";
  write_file_atomic(p.string(), "old");
  {
    AtomicFile f(p.string());
    f.write("ab");
    f.write_zeros(5000);
    f.write("z");
    f.commit();
  }
  const std::string got = slurp(p);
  ASSERT_EQ(got.size(), 5003u);
  EXPECT_EQ(got.substr(0, 2), "ab");
  EXPECT_EQ(got.substr(2, 5000), std::string(5000, '\0'));
  EXPECT_EQ(got.back(), 'z');
  EXPECT_FALSE(fs::exists(dir / "out.bin.tmp"));
  try {
    AtomicFile f(p.string());
    f.write("partial");
    throw std::runtime_error("interrupted");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(slurp(p).size(), 5003u);  // untouched
  EXPECT_FALSE(fs::exists(dir / "out.bin.tmp"));
  try {
    write_file_atomic((dir / "no_such_dir" / "x").string(), "x");
    FAIL() << "no throw";
  } catch (const BadInput& e) {
    EXPECT_EQ(e.file(), (dir / "no_such_dir" / "x.tmp").string());
    EXPECT_EQ(e.exit_code(), 2);
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace minfer
