// engine/core/rng.h: the counter-based RNG behind preset weights. A value depends only on
// (seed, tensor name, element index): splitmix64's finaliser over key + (index + 1) * golden gamma,
// where key = mix(seed ^ fnv1a64(name)). No state, so any element of any tensor is produced alone,
// in any order, by any thread, identically on every machine.
#pragma once
#include <cstdint>
#include <string_view>

namespace minfer::rng {

constexpr uint64_t kGamma = 0x9e3779b97f4a7c15ull;

constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

constexpr uint64_t fnv1a64(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

constexpr uint64_t tensor_key(uint64_t seed, std::string_view name) { return mix64(seed ^ fnv1a64(name)); }

// Uniform in [-1, 1): 24 random bits, so every value is exact in fp32.
constexpr float uniform_pm1(uint64_t key, uint64_t index) {
  uint64_t bits = mix64(key + (index + 1) * kGamma) >> 40;  // 24 bits
  return static_cast<float>(static_cast<double>(bits) * (2.0 / 16777216.0) - 1.0);
}

}  // namespace minfer::rng
