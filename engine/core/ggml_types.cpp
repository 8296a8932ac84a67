// engine/core/ggml_types.cpp: block layouts of the GGML types (see ggml_types.h). Sizes follow the
// GGUF specification's block structs: Q4_0 = fp16 d + 16 bytes of nibbles; Q4_1 = fp16 d, m + 16;
// Q5_0 = d + 4 high bits + 16; Q5_1 = d, m + 4 + 16; Q8_0 = d + 32 int8; Q8_1 = fp16 d, s + 32;
// the K-quants over 256-element super-blocks: Q2_K 84, Q3_K 110, Q4_K 144, Q5_K 176, Q6_K 210,
// Q8_K 292 (fp32 d + 256 int8 + 16 int16 sums).
#include "engine/core/ggml_types.h"

namespace minfer {

std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id) {
  static const GgmlTypeInfo kTable[] = {
      {GgmlType::F32, "F32", 1, 4},      {GgmlType::F16, "F16", 1, 2},      {GgmlType::Q4_0, "Q4_0", 32, 18},
      {GgmlType::Q4_1, "Q4_1", 32, 20},  {GgmlType::Q5_0, "Q5_0", 32, 22},  {GgmlType::Q5_1, "Q5_1", 32, 24},
      {GgmlType::Q8_0, "Q8_0", 32, 34},  {GgmlType::Q8_1, "Q8_1", 32, 36},  {GgmlType::Q2_K, "Q2_K", 256, 84},
      {GgmlType::Q3_K, "Q3_K", 256, 110}, {GgmlType::Q4_K, "Q4_K", 256, 144}, {GgmlType::Q5_K, "Q5_K", 256, 176},
      {GgmlType::Q6_K, "Q6_K", 256, 210}, {GgmlType::Q8_K, "Q8_K", 256, 292}, {GgmlType::I8, "I8", 1, 1},
      {GgmlType::I16, "I16", 1, 2},      {GgmlType::I32, "I32", 1, 4},      {GgmlType::I64, "I64", 1, 8},
      {GgmlType::F64, "F64", 1, 8},      {GgmlType::BF16, "BF16", 1, 2},
  };
  for (const GgmlTypeInfo& t : kTable)
    if (static_cast<uint32_t>(t.type) == id) return t;
  return std::nullopt;
}

std::string ggml_type_name(uint32_t id) {
  const std::optional<GgmlTypeInfo> t = ggml_type_info(id);
  return t ? std::string(t->name) : "type " + std::to_string(id);
}

}  // namespace minfer
