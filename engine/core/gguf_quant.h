// engine/core/gguf_quant.h: dequantizers of the GGML tensor types a GGUF file may hold, to fp32.
// Holds: F32, F16, BF16; the 32-element block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0; the 256-element
// K-quant super-blocks Q2_K, Q3_K, Q4_K, Q5_K, Q6_K. Block layouts and sizes: engine/core/ggml_types.h.
// Parity reference: gguf.quants.dequantize of the `gguf` Python package (0.19.0); the decoded values
// equal it bit for bit (tests/cpu/test_gguf_quant.cpp, fixtures from tools/make_gguf_quant_fixtures.py).
// Every other type (Q8_1, Q8_K, the integer types, F64, unknown ids) is refused with its name.
#pragma once
#include <cstddef>
#include <cstdint>

#include "engine/core/ggml_types.h"

namespace minfer {

// Whether dequantize() decodes `type`.
bool gguf_can_dequantize(GgmlType type);

// Decodes n elements of `type` from src to dst (n floats), block by block, in storage order.
//   src: (src_bytes) raw little-endian blocks, n / block_elems of them, block_bytes each (no alignment needed)
//   dst: (n) fp32
// Throws BadInput("dequantize", <type name>, detail) for a type it does not decode, n < 0, n not a
// multiple of the type's block_elems, or src_bytes != n / block_elems * block_bytes. n = 0 is a no-op.
void dequantize(GgmlType type, const uint8_t* src, size_t src_bytes, float* dst, int64_t n);

}  // namespace minfer
