// tests/fuzz/fuzz_gguf.cpp: libFuzzer target for the GGUF reader (engine/core/gguf.h).
// Each input is written to a per-process file and opened with GgufFile; then every tensor's bytes
// are read, every metadata value is walked to its last element and rendered, and every typed getter
// is tried on every key. The only acceptable outcomes are success or minfer::BadInput; any other
// exception aborts, and the sanitizers catch out-of-bounds reads, overflows and leaks.
// Build: cmake -DMINFER_FUZZ=ON -DCMAKE_CXX_COMPILER=clang++ ...; run: fuzz_gguf tests/fuzz/corpus
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/core/error.h"
#include "engine/core/gguf.h"

namespace {

const std::string& scratch_path() {
  static const std::string p = "/tmp/minfer_fuzz_" + std::to_string(::getpid()) + ".gguf";
  return p;
}

bool write_input(const uint8_t* data, size_t size) {
  std::FILE* f = std::fopen(scratch_path().c_str(), "wb");
  if (f == nullptr) return false;
  const bool ok = size == 0 || std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

// Touches every byte the reader claims belongs to a tensor, so the sanitizer sees any bad range.
void read_tensors(const minfer::GgufFile& file) {
  volatile uint8_t sink = 0;
  for (const auto& t : file.tensors()) {
    const uint8_t* p = file.data(t.name);  // (nbytes) raw bytes
    for (uint64_t i = 0; i < t.nbytes; ++i) sink = sink ^ p[i];
    (void)t.shape();
  }
}

// Every element of a value, nested arrays included; strings touched byte by byte.
void walk(const minfer::GgufValue& v) {
  volatile char sink = 0;
  for (char c : v.str) sink = sink ^ c;
  if (v.type != minfer::GgufType::ARRAY) return;
  for (uint64_t k = 0; k < v.count; ++k) {
    if (v.elem_type == minfer::GgufType::ARRAY) {
      walk(v.arrays[k]);
    } else {
      walk(v.element(k));
    }
  }
}

// A getter either returns or refuses the key with BadInput.
template <typename F>
void try_get(F&& get) {
  try {
    (void)get();
  } catch (const minfer::BadInput&) {
  }
}

void read_metadata(const minfer::GgufFile& f) {
  for (const auto& kv : f.metadata()) {
    walk(kv.value);
    (void)kv.value.to_string();
    const std::string& k = kv.key;
    try_get([&] { return f.get_u32(k); });
    try_get([&] { return f.get_u64(k); });
    try_get([&] { return f.get_i32(k); });
    try_get([&] { return f.get_i64(k); });
    try_get([&] { return f.get_f32(k); });
    try_get([&] { return f.get_f64(k); });
    try_get([&] { return f.get_bool(k); });
    try_get([&] { return f.get_string(k); });
    try_get([&] { return f.get_string_array(k); });
    try_get([&] { return f.get_i32_array(k); });
    try_get([&] { return f.get_f32_array(k); });
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!write_input(data, size)) std::abort();
  try {
    minfer::GgufFile file(scratch_path());
    read_tensors(file);
    read_metadata(file);
    (void)file.describe();
  } catch (const minfer::BadInput&) {
    // malformed input, refused cleanly
  }
  return 0;
}
