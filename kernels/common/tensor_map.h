// kernels/common/tensor_map.h: 2-D tensor maps for TMA box copies (cp.async.bulk.tensor, sm_90+), host
// side. A map describes a row-major (rows, cols) tensor of 16-bit elements; its boxes are 64 columns
// (128 bytes) wide and box_rows tall, stored in shared memory with the 128-byte swizzle (16-byte chunk c
// of box row r lands at chunk c ^ (r % 8) of that row; the box's shared address must be 1024-byte
// aligned), and rows past the tensor read as zero. The maps go to kernels as __grid_constant__
// parameters. Users: kernels/flash_prefill_sm90.cu (v4t, MINFER_PREFILL_COPY=tma), kernels/decode_attention.cu
// (MINFER_DECODE_COPY=tma).
#pragma once
#include <cstdint>

#include <cuda.h>
#include <cudaTypedefs.h>
#include <cuda_runtime.h>

#include "engine/core/dtype.h"

namespace minfer::kern {

// cuTensorMapEncodeTiled from the driver (null where the driver lacks it). Looked up once.
inline PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static const PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void* f = nullptr;
    cudaDriverEntryPointQueryResult q{};
    if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q) != cudaSuccess ||
        q != cudaDriverEntryPointSuccess) {
      cudaGetLastError();
      f = nullptr;
    }
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(f);
  }();
  return fn;
}

// The map of a (rows, cols) fp16 / bf16 tensor at base (see the top of this file); false where the
// driver lacks the encoder or refuses the shape (then the caller copies another way).
inline bool encode_map_2d(CUtensorMap& m, const void* base, DType dt, int64_t rows, int64_t cols, int box_rows) {
  const PFN_cuTensorMapEncodeTiled_v12000 enc = tensor_map_encoder();
  if (!enc || dt == DType::F32) return false;
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(cols), static_cast<cuuint64_t>(rows)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(cols) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t estr[2] = {1, 1};
  return enc(&m, dt == DType::F16 ? CU_TENSOR_MAP_DATA_TYPE_FLOAT16 : CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2,
             const_cast<void*>(base), dims, strides, box, estr, CU_TENSOR_MAP_INTERLEAVE_NONE,
             CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
             CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) == CUDA_SUCCESS;
}

}  // namespace minfer::kern
