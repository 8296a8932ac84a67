// kernels/common/prefetch.cuh: L2 prefetch of a global range (Hopper's bulk prefetch, cp.async.bulk
// .prefetch.L2): the bytes are fetched into L2 asynchronously, nothing is returned to the SM and
// nothing waits for them. Used before pdl_wait() (kernels/common/pdl.cuh) on weights, which no kernel
// writes, so that their stream from memory overlaps the previous kernel. A no-op below sm_90.
#pragma once
#include <cstddef>
#include <cstdint>

namespace minfer::kern {

// p 16-byte aligned, bytes a multiple of 16 (any range of whole 16-byte packs); issued in pieces of
// at most 64 KiB by the calling thread.
__device__ __forceinline__ void l2_prefetch(const void* p, size_t bytes) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  constexpr size_t kPiece = 64 * 1024;
  const size_t g = __cvta_generic_to_global(p);
  for (size_t off = 0; off < bytes; off += kPiece) {
    const uint32_t n = static_cast<uint32_t>(bytes - off < kPiece ? bytes - off : kPiece);
    asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;\n" ::"l"(g + off), "r"(n) : "memory");
  }
#else
  (void)p;
  (void)bytes;
#endif
}

}  // namespace minfer::kern
