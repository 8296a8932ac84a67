// engine/core/ggml_types.h: the GGML tensor types a GGUF file may hold (the numbering of the GGUF
// specification, ggml_type), with the block layout of each: elements per block and bytes per block.
// The GGUF reader (engine/core/gguf.h) validates tensor sizes with it; the dequantizers
// (engine/core/gguf_quant.h) decode the block formats. Types not listed here are refused by name.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

namespace minfer {

enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  BF16 = 30,
};

struct GgmlTypeInfo {
  GgmlType type;
  const char* name;      // "Q4_K"
  int64_t block_elems;   // elements per block (1 for plain types)
  int64_t block_bytes;   // bytes per block
};

// The layout of a known type id, or nullopt for an id this table does not hold.
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id);
// "Q4_K", or "type 17" for an unknown id.
std::string ggml_type_name(uint32_t id);

}  // namespace minfer
