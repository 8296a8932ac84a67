// kernels/common/dispatch.cuh: compile-time dispatch of runtime values, failing loudly, and the
// launcher argument checks. Each macro runs its body (which must `return` a Status) with a type or
// constant bound; any other value returns Status::error naming the field and the value.
//   MINFER_DISPATCH_DTYPE(dtype_value, T, { ...; return launch<T>(...); })
//   MINFER_DISPATCH_HEAD_DIM(head_dim_value, HD, { ... })   HD in {64, 128, 256}
//   MINFER_REQUIRE(cond, "field", "detail")  -> Status::error("field: detail") when cond is false
#pragma once
#include <string>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

#define MINFER_DISPATCH_DTYPE(value, T, ...)                                                       \
  switch (value) {                                                                                 \
    case ::minfer::DType::F32: { using T = float; __VA_ARGS__ }                                    \
    case ::minfer::DType::F16: { using T = __half; __VA_ARGS__ }                                   \
    case ::minfer::DType::BF16: { using T = __nv_bfloat16; __VA_ARGS__ }                           \
  }                                                                                                \
  return ::minfer::Status::error("dtype: unsupported value " + std::to_string(static_cast<int>(value)))

#define MINFER_DISPATCH_HEAD_DIM(value, HD, ...)                                                   \
  switch (value) {                                                                                 \
    case 64: { constexpr int HD = 64; __VA_ARGS__ }                                                \
    case 128: { constexpr int HD = 128; __VA_ARGS__ }                                              \
    case 256: { constexpr int HD = 256; __VA_ARGS__ }                                              \
  }                                                                                                \
  return ::minfer::Status::error("head_dim: unsupported value " + std::to_string(value) +          \
                                 " (supported: 64, 128, 256)")

#define MINFER_REQUIRE(cond, field, detail)                                                        \
  do {                                                                                             \
    if (!(cond)) return ::minfer::Status::error(std::string(field) + ": " + (detail));             \
  } while (0)

namespace minfer::kern {

// Blocks needed to cover n items with `per_block` items each.
inline unsigned blocks_for(int64_t n, int64_t per_block) {
  return static_cast<unsigned>((n + per_block - 1) / per_block);
}

}  // namespace minfer::kern
