// engine/core/dtype.h: storage dtypes (fp32, fp16, bf16) and exact host conversions.
// Dependency-free header: shared by core, reference and kernels (the one header kernels may see).
// Conversions round to nearest even, keep NaN a NaN and saturate to Inf like the CUDA intrinsics.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string_view>

namespace minfer {

enum class DType : uint8_t { F32 = 0, F16 = 1, BF16 = 2 };

constexpr size_t dtype_size(DType t) { return t == DType::F32 ? 4 : 2; }

constexpr const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "fp32";
    case DType::F16: return "fp16";
    case DType::BF16: return "bf16";
  }
  return "?";
}

// Accepts fp32/float32/float, fp16/float16/half, bf16/bfloat16.
inline std::optional<DType> parse_dtype(std::string_view s) {
  if (s == "fp32" || s == "float32" || s == "float" || s == "F32") return DType::F32;
  if (s == "fp16" || s == "float16" || s == "half" || s == "F16") return DType::F16;
  if (s == "bf16" || s == "bfloat16" || s == "BF16") return DType::BF16;
  return std::nullopt;
}

inline uint32_t f32_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_f32(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t u = f32_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_bits_to_f32(uint16_t h) { return bits_f32(static_cast<uint32_t>(h) << 16); }

inline uint16_t f32_to_f16_bits(float f) {
  uint32_t u = f32_bits(f);
  uint32_t sign = (u >> 16) & 0x8000u;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u);  // NaN
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // rounds to Inf
  if (a < 0x38800000u) {  // subnormal or zero in fp16: value = a * 2^24 rounded
    if (a < 0x33000000u) return static_cast<uint16_t>(sign);  // < 2^-25 rounds to 0
    int e = static_cast<int>(a >> 23);
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    int shift = 126 - e;  // 14 + (113 - e) - ... : places the value in units of 2^-24
    uint32_t q = m >> (shift - 0);
    uint32_t rem = m & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = a + 0xfffu + ((a >> 13) & 1u);  // round mantissa to 10 bits
  r -= 0x38000000u;                            // rebias exponent 127 -> 15
  return static_cast<uint16_t>(sign | (r >> 13));
}
inline float f16_bits_to_f32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) {
    float v = static_cast<float>(m) * 5.9604644775390625e-08f;  // m * 2^-24
    return sign ? -v : v;
  }
  if (e == 31) return bits_f32(sign | 0x7f800000u | (m << 13));
  return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

// The value x takes once stored in dtype t (fp32: x itself).
inline float round_to(DType t, float x) {
  switch (t) {
    case DType::F32: return x;
    case DType::F16: return f16_bits_to_f32(f32_to_f16_bits(x));
    case DType::BF16: return bf16_bits_to_f32(f32_to_bf16_bits(x));
  }
  return x;
}

// Store x into raw storage of dtype t at element index i; load it back as float.
inline void store_as(DType t, void* base, size_t i, float x) {
  if (t == DType::F32) { static_cast<float*>(base)[i] = x; return; }
  uint16_t b = t == DType::F16 ? f32_to_f16_bits(x) : f32_to_bf16_bits(x);
  static_cast<uint16_t*>(base)[i] = b;
}
inline float load_as(DType t, const void* base, size_t i) {
  if (t == DType::F32) return static_cast<const float*>(base)[i];
  uint16_t b = static_cast<const uint16_t*>(base)[i];
  return t == DType::F16 ? f16_bits_to_f32(b) : bf16_bits_to_f32(b);
}

}  // namespace minfer
