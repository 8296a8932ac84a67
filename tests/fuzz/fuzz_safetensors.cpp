// tests/fuzz/fuzz_safetensors.cpp: libFuzzer target for the safetensors reader.
// Each input is written to a per-process file and opened with SafetensorsFile (and read through a
// checkpoint source). The only acceptable outcomes are success or minfer::BadInput; any other
// exception aborts, and the sanitizers catch out-of-bounds reads, overflows and leaks.
// Build: cmake -DMINFER_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ...; run: fuzz_safetensors tests/fuzz/corpus
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/core/error.h"
#include "engine/core/safetensors.h"

namespace {

const std::string& scratch_path() {
  static const std::string p = "/tmp/minfer_fuzz_" + std::to_string(::getpid()) + ".safetensors";
  return p;
}

bool write_input(const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

// Touches every byte the reader claims belongs to a tensor, so the sanitizer sees any bad range.
void read_everything(const minfer::SafetensorsFile& file) {
  volatile uint8_t sink = 0;
  for (const auto& name : file.names()) {
    const uint8_t* p = file.data(name);  // (nbytes) raw bytes
    const size_t n = file.nbytes(name);
    for (size_t i = 0; i < n; ++i) sink = sink ^ p[i];
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!write_input(data, size)) std::abort();
  try {
    minfer::SafetensorsFile file(scratch_path());
    read_everything(file);
    auto src = minfer::open_checkpoint(scratch_path());
    for (const auto& name : src->names()) {
      try {
        (void)src->read_f32(name);
      } catch (const minfer::BadInput&) {
        // integer and F8 tensors cannot be read as float: a clean refusal is fine
      }
    }
  } catch (const minfer::BadInput&) {
    // malformed input, refused cleanly
  }
  return 0;
}
