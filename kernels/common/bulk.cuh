// kernels/common/bulk.cuh: the bulk-copy engine (cp.async.bulk, Hopper and later) and the shared-
// memory mbarriers its copies complete on. One thread initialises a barrier (count 1), publishes the
// init (fence_mbarrier_init), arms it with the bytes to come (mbar_expect_tx) and issues the copies
// (bulk_copy); every thread then waits on the phase (mbar_try_wait in a loop). Sizes and addresses
// are multiples of 16 bytes. Compiles to nothing below sm_90: callers check the device first.
// Users: kernels/decode_step.cu (the whole-step kernel's weight ring), kernels/gemv.cu (the
// single-row GEMV's weight slice).
#pragma once
#include <cstdint>

#include <cuda_runtime.h>

namespace minfer::kern {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
#define MINFER_BULK_DEVICE 1
#else
#define MINFER_BULK_DEVICE 0
#endif

// A 2-D box of a tensor map (a __grid_constant__ kernel parameter) into shared memory at dst,
// completing on bar (armed by mbar_expect_tx); c0 the inner (column) coordinate, c1 the row.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const void* map, int c0, int c1, uint64_t* bar) {
#if MINFER_BULK_DEVICE
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];"
      ::"r"(dst), "l"(map), "r"(c0), "r"(c1), "r"(smem_addr(bar)) : "memory");
#endif
}

__device__ __forceinline__ void mbar_init(uint64_t* bar, unsigned count) {
#if MINFER_BULK_DEVICE
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(smem_addr(bar)), "r"(count) : "memory");
#endif
}
// Makes the initialised barriers visible to the bulk-copy engine (the async proxy).
__device__ __forceinline__ void fence_mbarrier_init() {
#if MINFER_BULK_DEVICE
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
#endif
}
__device__ __forceinline__ void mbar_expect_tx(uint64_t* bar, unsigned bytes) {
#if MINFER_BULK_DEVICE
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
#endif
}
__device__ __forceinline__ void mbar_arrive(uint64_t* bar) {
#if MINFER_BULK_DEVICE
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(smem_addr(bar)) : "memory");
#endif
}
// One arrival where `pred` holds, as a predicated instruction (no branch: a lane-divergent branch
// between a warpgroup's wgmma issues makes ptxas serialise them).
__device__ __forceinline__ void mbar_arrive_if(uint64_t* bar, bool pred) {
#if MINFER_BULK_DEVICE
  asm volatile("{\n .reg .pred p;\n setp.ne.u32 p, %1, 0;\n @p mbarrier.arrive.shared::cta.b64 _, [%0];\n}\n" ::"r"(smem_addr(bar)),
               "r"(static_cast<uint32_t>(pred))
               : "memory");
#endif
}
// Whether the barrier's phase of this parity has completed (one probe; callers loop).
__device__ __forceinline__ bool mbar_try_wait(uint64_t* bar, unsigned parity) {
#if MINFER_BULK_DEVICE
  unsigned done;
  asm volatile(
      "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
      : "=r"(done)
      : "r"(smem_addr(bar)), "r"(parity)
      : "memory");
  return done != 0;
#else
  return true;
#endif
}
// `bytes` (a multiple of 16) from global src to shared dst, completing on bar.
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, unsigned bytes, uint64_t* bar) {
#if MINFER_BULK_DEVICE
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(
                   smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
#endif
}

}  // namespace minfer::kern
