// kernels/common/wgmma.cuh: Hopper warpgroup MMA (wgmma.mma_async, sm_90a) for the attention
// kernels: shared-memory matrix descriptors for the 128-byte swizzled layout, the fence / commit /
// wait instructions, and the two MMA forms used (fp32 accumulators, fp16 or bf16 inputs):
//  - wgmma_ss<T, N>: D (64 x N) (+)= A (64 x 16, shared, K-major) B (16 x N, shared, K-major),
//  - wgmma_rs_tb<T, N>: D += A (64 x 16, registers) B (16 x N, shared, N-major: "transposed").
// Register layouts (per warp w of the warpgroup, rows 16 w .. 16 w + 15; lane = 4 g + t): the
// accumulator holds, for each 8-column chunk i, d[4i], d[4i+1] = row g, columns 8i + 2t, +1 and
// d[4i+2], d[4i+3] = row g + 8; the A registers are mma.sync m16n8k16's A fragment (a0: row g,
// k 2t..2t+1; a1: row g + 8; a2: row g, k 8 + 2t..; a3: row g + 8, k 8 + 2t..).
// Shared layout (swz128_offset): a tile of R rows x C 16-bit columns is stored as C / 64 column
// blocks of R rows x 128 bytes; within a block, 16-byte chunk c of row r sits at r * 128 + ((c ^ (r %
// 8)) * 16) (the hardware's 128-byte swizzle: blocks must start 1024-byte aligned). Descriptors:
// K-major (rows = M or N, 64 K-elements per block row): stride byte offset 1024 (8 rows), the K step
// of 16 elements advances the start address by 32 bytes inside a block; N-major (rows = K, 64
// N-elements per block row): leading byte offset = the column-block stride, stride byte offset 1024
// (8 K rows), the K step of 16 advances the start by 16 rows (2048 bytes).
// Only compiled into sm_90a code: callers guard their kernels with MINFER_WGMMA (defined here).
#pragma once
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#if defined(__CUDA_ARCH__) && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define MINFER_WGMMA 1
#endif

namespace minfer::kern {

// Byte offset of 16-byte chunk `chunk` (of 8 16-bit elements) of row `row` in a swizzled tile of
// `rows` rows (see above).
__host__ __device__ constexpr uint32_t swz128_offset(int rows, int row, int chunk) {
  return static_cast<uint32_t>((chunk / 8) * rows * 128 + row * 128 + (((chunk % 8) ^ (row % 8)) << 4));
}

// Matrix descriptor: start address (shared window), leading and stride byte offsets, 128-byte swizzle.
__device__ __forceinline__ uint64_t wgmma_desc(uint32_t smem_addr, uint32_t lbo, uint32_t sbo) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFFu) >> 4) | (static_cast<uint64_t>((lbo & 0x3FFFFu) >> 4) << 16) |
         (static_cast<uint64_t>((sbo & 0x3FFFFu) >> 4) << 32) | (1ull << 62);
}

// desc + off, where off (16-byte units) moves only the start-address field: shared addresses are below
// 2^18 bytes, so the field (14 bits) never carries into the offsets above it, and the 64-bit sum is a
// 32-bit add of the low word; written so, the high word stays the loop-invariant constant it is (no
// carry chain, no per-step copy of it into uniform registers).
__device__ __forceinline__ uint64_t wgmma_desc_add(uint64_t desc, uint32_t off) {
  return (desc & 0xFFFFFFFF00000000ull) | static_cast<uint32_t>(static_cast<uint32_t>(desc) + off);
}

#if defined(MINFER_WGMMA)
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Makes this thread's generic-proxy writes to shared memory (cp.async, st.shared) visible to wgmma.
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// Keeps the compiler from moving reads or writes of accumulator registers across the point where it
// is placed (after a wait: the asynchronous MMA wrote them).
template <int N> __device__ __forceinline__ void reg_fence(float (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(r[i])::"memory");
}

// The same for A-fragment registers: placed after the wait, it keeps them live (and unchanged) until
// then, so that the register allocator cannot reuse them while the MMA still reads them.
template <int N> __device__ __forceinline__ void reg_fence(uint32_t (&r)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(r[i][j])::"memory");
}

template <typename T, int N>
__device__ __forceinline__ void wgmma_ss(float (&d)[N / 2], uint64_t a, uint64_t b, int accumulate);
template <typename T, int N>
__device__ __forceinline__ void wgmma_rs_tb(float (&d)[N / 2], const uint32_t (&a)[4], uint64_t b);

// The accumulator operands of an m64nN MMA: the register list of the instruction and the asm operands.
#define MINFER_WGMMA_D32 \
  "%0," "%1," "%2," "%3," "%4," "%5," "%6," "%7," "%8," "%9," "%10," "%11," "%12," "%13," "%14," "%15," "%16," \
  "%17," "%18," "%19," "%20," "%21," "%22," "%23," "%24," "%25," "%26," "%27," "%28," "%29," "%30," "%31"
#define MINFER_WGMMA_D32_OPS \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
  "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), \
  "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
  "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define MINFER_WGMMA_D64 \
  "%0," "%1," "%2," "%3," "%4," "%5," "%6," "%7," "%8," "%9," "%10," "%11," "%12," "%13," "%14," "%15," "%16," \
  "%17," "%18," "%19," "%20," "%21," "%22," "%23," "%24," "%25," "%26," "%27," "%28," "%29," "%30," "%31," "%32," \
  "%33," "%34," "%35," "%36," "%37," "%38," "%39," "%40," "%41," "%42," "%43," "%44," "%45," "%46," "%47," "%48," \
  "%49," "%50," "%51," "%52," "%53," "%54," "%55," "%56," "%57," "%58," "%59," "%60," "%61," "%62," "%63"
#define MINFER_WGMMA_D64_OPS \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
  "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), \
  "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
  "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), \
  "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), \
  "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), \
  "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), \
  "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])


// D (+)= A B, A and B from shared memory (both K-major); TY: the PTX input type; NREG = N / 2
// accumulators; A_B_ACC: the operand numbers of the two descriptors and of the accumulate flag.
#define MINFER_WGMMA_SS(N, TY, NREG, A, B, ACC)                                                     \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #ACC ", 0;\n"                                   \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." #TY "." #TY " {" MINFER_WGMMA_D##NREG  \
               "}, %" #A ", %" #B ", p, 1, 1, 0, 0;\n}\n"                                           \
               : MINFER_WGMMA_D##NREG##_OPS                                                        \
               : "l"(a), "l"(b), "r"(accumulate))
// D += A B, A from registers (operands A0 .. A3), B from shared memory N-major (imm-trans-b 1).
#define MINFER_WGMMA_RS_TB(N, TY, NREG, A0, A1, A2, A3, B, ONE)                                    \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %" #ONE ", 0;\n"                                   \
               "wgmma.mma_async.sync.aligned.m64n" #N "k16.f32." #TY "." #TY " {" MINFER_WGMMA_D##NREG  \
               "}, {%" #A0 ",%" #A1 ",%" #A2 ",%" #A3 "}, %" #B ", p, 1, 1, 1;\n}\n"                  \
               : MINFER_WGMMA_D##NREG##_OPS                                                        \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1))

template <>
__device__ __forceinline__ void wgmma_ss<__nv_bfloat16, 64>(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
  MINFER_WGMMA_SS(64, bf16, 32, 32, 33, 34);
}
template <>
__device__ __forceinline__ void wgmma_ss<__half, 64>(float (&d)[32], uint64_t a, uint64_t b, int accumulate) {
  MINFER_WGMMA_SS(64, f16, 32, 32, 33, 34);
}
template <>
__device__ __forceinline__ void wgmma_ss<__nv_bfloat16, 128>(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
  MINFER_WGMMA_SS(128, bf16, 64, 64, 65, 66);
}
template <>
__device__ __forceinline__ void wgmma_ss<__half, 128>(float (&d)[64], uint64_t a, uint64_t b, int accumulate) {
  MINFER_WGMMA_SS(128, f16, 64, 64, 65, 66);
}
template <>
__device__ __forceinline__ void wgmma_rs_tb<__nv_bfloat16, 64>(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
  MINFER_WGMMA_RS_TB(64, bf16, 32, 32, 33, 34, 35, 36, 37);
}
template <>
__device__ __forceinline__ void wgmma_rs_tb<__half, 64>(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
  MINFER_WGMMA_RS_TB(64, f16, 32, 32, 33, 34, 35, 36, 37);
}
template <>
__device__ __forceinline__ void wgmma_rs_tb<__nv_bfloat16, 128>(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
  MINFER_WGMMA_RS_TB(128, bf16, 64, 64, 65, 66, 67, 68, 69);
}
template <>
__device__ __forceinline__ void wgmma_rs_tb<__half, 128>(float (&d)[64], const uint32_t (&a)[4], uint64_t b) {
  MINFER_WGMMA_RS_TB(128, f16, 64, 64, 65, 66, 67, 68, 69);
}

#endif  // MINFER_WGMMA

}  // namespace minfer::kern
