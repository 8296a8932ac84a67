// engine/core/gguf_quant.cpp: the GGML block dequantizers (see gguf_quant.h), one function per block format.
// Legend: y = one block's output (32 or 256 floats); q = an element's quantized value; d, m, dmin = the
// block's fp16 scale, min and scale of mins. Every multi-byte field is little-endian and read byte by byte,
// so blocks need no alignment. The arithmetic is fp32 in the order gguf.quants uses (sub-block scale d * sc
// first, then times q, then + m or - dmin * mn), so the output equals it bit for bit (see the FMA note below):
//   Q4_0  (18 B)  d, qs[16]               q = nibble - 8                y = d * q
//   Q4_1  (20 B)  d, m, qs[16]            q = nibble                    y = d * q + m
//   Q5_0  (22 B)  d, qh[4], qs[16]        q = (nibble | bit << 4) - 16  y = d * q
//   Q5_1  (24 B)  d, m, qh[4], qs[16]     q = nibble | bit << 4         y = d * q + m
//   Q8_0  (34 B)  d, int8 qs[32]          q = qs                        y = d * q
//   nibbles of the 32-element formats: element j < 16 is the low nibble of qs[j], element j + 16 its high
//   nibble; bit j of the 32-bit qh is the fifth bit of element j.
//   Q2_K  (84 B)  scales[16], qs[64], d, dmin                 16 sub-blocks of 16: y = (d * sc) * q - dmin * mn
//   Q3_K  (110 B) hmask[32], qs[64], scales[12], d            16 sub-blocks of 16: y = (d * sc) * q
//   Q4_K  (144 B) d, dmin, scales[12], qs[128]                8 sub-blocks of 32:  y = (d * sc) * q - dmin * mn
//   Q5_K  (176 B) d, dmin, scales[12], qh[32], qs[128]        8 sub-blocks of 32:  as Q4_K
//   Q6_K  (210 B) ql[128], qh[64], int8 scales[16], d         16 sub-blocks of 16: y = (d * sc) * q
//   (the bit positions of each K-quant are spelled out above its decoder).
#include "engine/core/gguf_quant.h"

#include <cstdint>
#include <string>

#include "engine/core/dtype.h"
#include "engine/core/error.h"

// No product ever rounds: d and dmin are fp16 (at most 11 significant bits) and the integers they are
// multiplied by carry at most 12 significant bits between them (Q4_K: a 6-bit scale and a 4-bit quant;
// Q6_K: |int8 scale| <= 128 and |q| <= 32, i.e. 7 + 5 bits), so every product has at most 23 significant bits,
// is exact in fp32 and far from its overflow and subnormal ranges. A compiler that fuses a * b + c into one FMA
// (GCC in gnu++ modes with -march=haswell, or on aarch64) therefore gives the same bits as numpy's two steps.

namespace minfer {
namespace {

inline uint32_t le16(const uint8_t* p) { return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8; }
inline uint32_t le32(const uint8_t* p) { return le16(p) | le16(p + 2) << 16; }
inline float fp16_at(const uint8_t* p) { return f16_bits_to_f32(static_cast<uint16_t>(le16(p))); }
inline float int_f(uint32_t v) { return static_cast<float>(v); }
inline float int_f(int v) { return static_cast<float>(v); }

// ---- 32-element blocks ----

void block_q4_0(const uint8_t* b, float* y) {  // b: (18), y: (32)
  const float d = fp16_at(b);
  const uint8_t* qs = b + 2;  // (16)
  for (int j = 0; j < 16; ++j) {
    y[j] = d * int_f((qs[j] & 0xF) - 8);
    y[j + 16] = d * int_f((qs[j] >> 4) - 8);
  }
}

void block_q4_1(const uint8_t* b, float* y) {  // b: (20), y: (32)
  const float d = fp16_at(b), m = fp16_at(b + 2);
  const uint8_t* qs = b + 4;  // (16)
  for (int j = 0; j < 16; ++j) {
    y[j] = d * int_f(qs[j] & 0xF) + m;
    y[j + 16] = d * int_f(qs[j] >> 4) + m;
  }
}

void block_q5_0(const uint8_t* b, float* y) {  // b: (22), y: (32)
  const float d = fp16_at(b);
  const uint32_t qh = le32(b + 2);
  const uint8_t* qs = b + 6;  // (16)
  for (int j = 0; j < 16; ++j) {
    const uint32_t lo = (qs[j] & 0xFu) | ((qh >> j) & 1u) << 4;
    const uint32_t hi = static_cast<uint32_t>(qs[j] >> 4) | ((qh >> (j + 16)) & 1u) << 4;
    y[j] = d * int_f(static_cast<int>(lo) - 16);
    y[j + 16] = d * int_f(static_cast<int>(hi) - 16);
  }
}

void block_q5_1(const uint8_t* b, float* y) {  // b: (24), y: (32)
  const float d = fp16_at(b), m = fp16_at(b + 2);
  const uint32_t qh = le32(b + 4);
  const uint8_t* qs = b + 8;  // (16)
  for (int j = 0; j < 16; ++j) {
    const uint32_t lo = (qs[j] & 0xFu) | ((qh >> j) & 1u) << 4;
    const uint32_t hi = static_cast<uint32_t>(qs[j] >> 4) | ((qh >> (j + 16)) & 1u) << 4;
    y[j] = d * int_f(lo) + m;
    y[j + 16] = d * int_f(hi) + m;
  }
}

void block_q8_0(const uint8_t* b, float* y) {  // b: (34), y: (32)
  const float d = fp16_at(b);
  const uint8_t* qs = b + 2;  // (32) int8
  for (int j = 0; j < 32; ++j) y[j] = d * int_f(static_cast<int>(static_cast<int8_t>(qs[j])));
}

// ---- 256-element K-quant super-blocks ----

// Q2_K: sub-block i (0..15) has scale scales[i] & 0xF and min scales[i] >> 4. Element e = 128 h + 32 s + l
// (h 0..1, s 0..3, l 0..31) is bits 2s..2s+1 of qs[32 h + l].
void block_q2_k(const uint8_t* b, float* y) {  // b: (84), y: (256)
  const uint8_t* scales = b;  // (16)
  const uint8_t* qs = b + 16;  // (64)
  const float d = fp16_at(b + 80), dmin = fp16_at(b + 82);
  for (int i = 0; i < 16; ++i) {
    const float dl = d * int_f(scales[i] & 0xF), ml = dmin * int_f(scales[i] >> 4);
    const uint8_t* q = qs + 32 * (i / 8) + 16 * (i % 2);  // (16)
    const int shift = 2 * ((i / 2) % 4);
    for (int l = 0; l < 16; ++l) y[16 * i + l] = dl * int_f((q[l] >> shift) & 3) - ml;
  }
}

// Q3_K: the 16 6-bit scales (stored minus 32): low 4 bits of scale i are the low (i < 8) or high nibble of
// scales[i % 8]; its high 2 bits are bits 2(i / 4)..+1 of scales[8 + i % 4]. Element e = 128 h + 32 s + l has
// low bits 2s..2s+1 of qs[32 h + l] and subtracts 4 unless bit e / 32 of hmask[l] is set.
void block_q3_k(const uint8_t* b, float* y) {  // b: (110), y: (256)
  const uint8_t* hmask = b;  // (32)
  const uint8_t* qs = b + 32;  // (64)
  const uint8_t* scales = b + 96;  // (12)
  const float d = fp16_at(b + 108);
  for (int i = 0; i < 16; ++i) {
    const int low = (scales[i % 8] >> (i < 8 ? 0 : 4)) & 0xF;
    const int high = (scales[8 + i % 4] >> (2 * (i / 4))) & 3;
    const float dl = d * int_f((low | high << 4) - 32);
    // Sub-block i holds elements e = 16 i .. 16 i + 15: e / 128 = i / 8, e / 32 = i / 2, e % 32 = 16 (i % 2) + l.
    const uint8_t* q = qs + 32 * (i / 8) + 16 * (i % 2);  // (16)
    const uint8_t* hm = hmask + 16 * (i % 2);  // (16)
    const int shift = 2 * ((i / 2) % 4), hbit = i / 2;
    for (int l = 0; l < 16; ++l)
      y[16 * i + l] = dl * int_f(((q[l] >> shift) & 3) - (((hm[l] >> hbit) & 1) ? 0 : 4));
  }
}

// Q4_K / Q5_K: 8 6-bit scales sc and mins mn in 12 bytes. For j < 4: sc[j] = s[j] & 63, mn[j] = s[4 + j] & 63;
// sc[4 + j] = (s[8 + j] & 0xF) | (s[j] >> 6) << 4, mn[4 + j] = (s[8 + j] >> 4) | (s[4 + j] >> 6) << 4.
void k_scale_min(const uint8_t* s, int j, int* sc, int* mn) {
  if (j < 4) {
    *sc = s[j] & 63;
    *mn = s[4 + j] & 63;
  } else {
    *sc = (s[4 + j] & 0xF) | (s[j - 4] >> 6) << 4;
    *mn = (s[4 + j] >> 4) | (s[j] >> 6) << 4;
  }
}

// Q4_K: sub-block j (0..7) element l (0..31) is the low (j even) or high (j odd) nibble of qs[32 (j / 2) + l].
void block_q4_k(const uint8_t* b, float* y) {  // b: (144), y: (256)
  const float d = fp16_at(b), dmin = fp16_at(b + 2);
  const uint8_t* scales = b + 4;  // (12)
  const uint8_t* qs = b + 16;  // (128)
  for (int j = 0; j < 8; ++j) {
    int sc = 0, mn = 0;
    k_scale_min(scales, j, &sc, &mn);
    const float dl = d * int_f(sc), ml = dmin * int_f(mn);
    const uint8_t* q = qs + 32 * (j / 2);  // (32)
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) y[32 * j + l] = dl * int_f((q[l] >> shift) & 0xF) - ml;
  }
}

// Q5_K: as Q4_K, plus a fifth bit: bit j of qh[l] for element l of sub-block j.
void block_q5_k(const uint8_t* b, float* y) {  // b: (176), y: (256)
  const float d = fp16_at(b), dmin = fp16_at(b + 2);
  const uint8_t* scales = b + 4;  // (12)
  const uint8_t* qh = b + 16;  // (32)
  const uint8_t* qs = b + 48;  // (128)
  for (int j = 0; j < 8; ++j) {
    int sc = 0, mn = 0;
    k_scale_min(scales, j, &sc, &mn);
    const float dl = d * int_f(sc), ml = dmin * int_f(mn);
    const uint8_t* q = qs + 32 * (j / 2);  // (32)
    const int shift = 4 * (j % 2);
    for (int l = 0; l < 32; ++l) {
      const int v = ((q[l] >> shift) & 0xF) | ((qh[l] >> j) & 1) << 4;
      y[32 * j + l] = dl * int_f(v) - ml;
    }
  }
}

// Q6_K: element e = 128 h + k (h 0..1, k 0..127): low 4 bits are nibble k / 64 of ql[64 h + k % 64], high
// 2 bits are bits 2(k / 32)..+1 of qh[32 h + k % 32]; q = that 6-bit value - 32; sub-block e / 16.
void block_q6_k(const uint8_t* b, float* y) {  // b: (210), y: (256)
  const uint8_t* ql = b;  // (128)
  const uint8_t* qh = b + 128;  // (64)
  const uint8_t* scales = b + 192;  // (16) int8
  const float d = fp16_at(b + 208);
  for (int i = 0; i < 16; ++i) {
    const float dl = d * int_f(static_cast<int>(static_cast<int8_t>(scales[i])));
    // Sub-block i holds k = 16 (i % 8) + l of half h = i / 8: k / 64 = (i % 8) / 4, k % 64 = 16 (i % 4) + l,
    // k / 32 = (i % 8) / 2, k % 32 = 16 (i % 2) + l.
    const int h = i / 8;
    const uint8_t* lo = ql + 64 * h + 16 * (i % 4);  // (16)
    const uint8_t* hi = qh + 32 * h + 16 * (i % 2);  // (16)
    const int lo_shift = 4 * ((i % 8) / 4), hi_shift = 2 * ((i % 8) / 2);
    for (int l = 0; l < 16; ++l)
      y[16 * i + l] = dl * int_f((((lo[l] >> lo_shift) & 0xF) | ((hi[l] >> hi_shift) & 3) << 4) - 32);
  }
}

template <void (*Block)(const uint8_t*, float*)>
void decode_blocks(const uint8_t* src, float* dst, int64_t n_blocks, int64_t block_elems, int64_t block_bytes) {
  for (int64_t i = 0; i < n_blocks; ++i) Block(src + i * block_bytes, dst + i * block_elems);
}

// ---- plain types ----

void decode_f16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = fp16_at(src + 2 * i);
}

void decode_bf16(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bits_f32(le16(src + 2 * i) << 16);
}

void decode_f32(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bits_f32(le32(src + 4 * i));
}

[[noreturn]] void refuse(GgmlType type, const std::string& detail) {
  throw BadInput("dequantize", ggml_type_name(static_cast<uint32_t>(type)), detail);
}

}  // namespace

bool gguf_can_dequantize(GgmlType type) {
  switch (type) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0: case GgmlType::Q5_1: case GgmlType::Q8_0:
    case GgmlType::Q2_K: case GgmlType::Q3_K: case GgmlType::Q4_K: case GgmlType::Q5_K: case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void dequantize(GgmlType type, const uint8_t* src, size_t src_bytes, float* dst, int64_t n) {
  if (!gguf_can_dequantize(type))
    refuse(type, "no dequantizer for this type (decoded: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K Q3_K "
                 "Q4_K Q5_K Q6_K)");
  const GgmlTypeInfo info = *ggml_type_info(static_cast<uint32_t>(type));
  const int64_t be = info.block_elems, bb = info.block_bytes;
  if (n < 0) refuse(type, "element count " + std::to_string(n) + " is negative");
  if (n % be != 0)
    refuse(type, "element count " + std::to_string(n) + " is not a multiple of the block size " +
                     std::to_string(be));
  const uint64_t n_blocks = static_cast<uint64_t>(n / be), bbu = static_cast<uint64_t>(bb);
  if (n_blocks > UINT64_MAX / bbu)
    refuse(type, "element count " + std::to_string(n) + " is past the size of any buffer");
  const uint64_t want = n_blocks * bbu;
  if (static_cast<uint64_t>(src_bytes) != want)
    refuse(type, std::to_string(src_bytes) + " source bytes for " + std::to_string(n) + " elements; expected " +
                     std::to_string(want) + " (" + std::to_string(n_blocks) + " blocks of " + std::to_string(bb) +
                     " bytes)");
  if (n == 0) return;
  switch (type) {
    case GgmlType::F32: decode_f32(src, dst, n); break;
    case GgmlType::F16: decode_f16(src, dst, n); break;
    case GgmlType::BF16: decode_bf16(src, dst, n); break;
    case GgmlType::Q4_0: decode_blocks<block_q4_0>(src, dst, n / be, be, bb); break;
    case GgmlType::Q4_1: decode_blocks<block_q4_1>(src, dst, n / be, be, bb); break;
    case GgmlType::Q5_0: decode_blocks<block_q5_0>(src, dst, n / be, be, bb); break;
    case GgmlType::Q5_1: decode_blocks<block_q5_1>(src, dst, n / be, be, bb); break;
    case GgmlType::Q8_0: decode_blocks<block_q8_0>(src, dst, n / be, be, bb); break;
    case GgmlType::Q2_K: decode_blocks<block_q2_k>(src, dst, n / be, be, bb); break;
    case GgmlType::Q3_K: decode_blocks<block_q3_k>(src, dst, n / be, be, bb); break;
    case GgmlType::Q4_K: decode_blocks<block_q4_k>(src, dst, n / be, be, bb); break;
    case GgmlType::Q5_K: decode_blocks<block_q5_k>(src, dst, n / be, be, bb); break;
    case GgmlType::Q6_K: decode_blocks<block_q6_k>(src, dst, n / be, be, bb); break;
    default: refuse(type, "no dequantizer for this type");
  }
}

}  // namespace minfer
