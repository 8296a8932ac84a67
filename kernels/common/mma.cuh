// kernels/common/mma.cuh: the tensor-core and async-copy primitives the attention kernels share
// (kernels/flash_prefill.cu, kernels/decode_attention.cu): the two-row online-softmax step,
// mma.sync m16n8k16 with fp32 accumulators
// for fp16 and bf16, packing two floats into one register of the storage type (and the part that
// rounding loses, for the hi + lo split of probabilities), cp.async 16-byte copies with zero fill,
// and ldmatrix.x4.trans.
#pragma once
#include <cmath>
#include <cstdint>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "kernels/common/dtype_traits.cuh"

namespace minfer::kern {

// D += A B on tensor cores; A (16x16 row) 4 regs, B (16x8 col) 2 regs, D (16x8) fp32.
template <typename T>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void mma16816<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void mma16816<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Two floats rounded to T and packed into one register (x in the low half).
template <typename T> __device__ __forceinline__ uint32_t pack2(float x, float y);
template <> __device__ __forceinline__ uint32_t pack2<__half>(float x, float y) {
  __half2 h = __floats2half2_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&h);
}
template <> __device__ __forceinline__ uint32_t pack2<__nv_bfloat16>(float x, float y) {
  __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
  return *reinterpret_cast<uint32_t*>(&h);
}
// x minus its rounding to T (the part pack2 loses).
template <typename T> __device__ __forceinline__ float round_rest(float x) {
  return x - to_float(from_float<T>(x));
}

// One online-softmax step (FlashAttention-2, exp2 domain) for the rows a (g) and b (g + 8) of an m16
// tile over NT key tiles of 8: s holds the scores in the C layout (s[nt][0..1] row a, s[nt][2..3]
// row b), already masked (-inf) and scaled by log2(e) / sqrt(hd). Folds the rows' maxima over the
// quad into m, rescales l and the output accumulator o (NO dim tiles of 8) by exp2(m_old - m_new),
// and replaces s by exp2(s - m_new), adding this thread's part of the row sums to l. A row with every
// key masked so far keeps m = -inf and gets zeros (its base is taken as 0). skip_unit (warp-uniform):
// leave o alone when no row of the warp moved its maximum (every factor exactly 1: the same bits,
// NO x 4 multiplies fewer a lane on most steps of a long row).
template <int NT, int NO>
__device__ __forceinline__ void softmax_step(float (&s)[NT][4], float (&o)[NO][4], float& m_a, float& m_b, float& l_a,
                                             float& l_b, bool skip_unit = false) {
  float mx_a = -INFINITY, mx_b = -INFINITY;
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    mx_a = fmaxf(mx_a, fmaxf(s[nt][0], s[nt][1]));
    mx_b = fmaxf(mx_b, fmaxf(s[nt][2], s[nt][3]));
  }
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
  }
  const float mn_a = fmaxf(m_a, mx_a), mn_b = fmaxf(m_b, mx_b);
  const float base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
  const float corr_a = exp2f(m_a - base_a), corr_b = exp2f(m_b - base_b);
  m_a = mn_a, m_b = mn_b;
  l_a *= corr_a, l_b *= corr_b;
  if (!(skip_unit && __all_sync(0xffffffffu, corr_a == 1.f && corr_b == 1.f))) {
#pragma unroll
    for (int i = 0; i < NO; ++i) o[i][0] *= corr_a, o[i][1] *= corr_a, o[i][2] *= corr_b, o[i][3] *= corr_b;
  }
#pragma unroll
  for (int nt = 0; nt < NT; ++nt) {
    s[nt][0] = exp2f(s[nt][0] - base_a), s[nt][1] = exp2f(s[nt][1] - base_a);
    s[nt][2] = exp2f(s[nt][2] - base_b), s[nt][3] = exp2f(s[nt][3] - base_b);
    l_a += s[nt][0] + s[nt][1];
    l_b += s[nt][2] + s[nt][3];
  }
}

// Two floats as bf16 hi (rounded, packed as pack2 packs) and lo = what the rounding lost (rounded):
// hi + lo keeps about 16 bits (x - hi is exact in fp32). One packed conversion for hi, its halves
// widened by shifts.
__device__ __forceinline__ void split_bf16x2(float x, float y, uint32_t& hi, uint32_t& lo) {
  hi = pack2<__nv_bfloat16>(x, y);
  lo = pack2<__nv_bfloat16>(x - __uint_as_float(hi << 16), y - __uint_as_float(hi & 0xffff0000u));
}

// 2^x by the hardware approximation, results below 2^-126 flushed to 0 (exp2f adds a subnormal
// fix-up per call; probabilities that small do not matter). 2^-inf = 0.
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// The max half of an online-softmax step in the exp2 domain (scale_log2 > 0): this lane's raw score
// maxima of rows g (mx_a) and g + 8 (mx_b), reduced over the quad (lanes 4g .. 4g + 3: the row's
// lanes in an MMA accumulator), scaled and folded into the running maxima m_a, m_b. base: what the
// step's scaled scores subtract (0 for a row with no key yet, so that -inf stays -inf); corr =
// 2^(m_old - base), which rescales the row's earlier sum and output. slack > 0 (lazy rescaling): a
// row keeps its running maximum unless the step's exceeds it by more than slack, so the step's
// probabilities reach up to 2^slack (callers bound slack so that P stays finite in its storage type)
// and corr is exactly 1 on most steps (the caller's rescale of O can be skipped); the sum and output
// share the stale maximum, so O / l is the same softmax. slack 0: the running maximum. kSlack false:
// no slack (the fmax form; callers that never take one keep their code).
template <bool kSlack = false>
__device__ __forceinline__ void quad_max_fold(float mx_a, float mx_b, float scale_log2, float& m_a, float& m_b,
                                              float& base_a, float& base_b, float& corr_a, float& corr_b,
                                              float slack = 0.f) {
#pragma unroll
  for (int off = 1; off < 4; off <<= 1) {
    mx_a = fmaxf(mx_a, __shfl_xor_sync(0xffffffffu, mx_a, off));
    mx_b = fmaxf(mx_b, __shfl_xor_sync(0xffffffffu, mx_b, off));
  }
  float mn_a, mn_b;
  if constexpr (kSlack) {  // -inf + slack is -inf: a row's first finite maximum is always taken
    const float xa = mx_a * scale_log2, xb = mx_b * scale_log2;
    mn_a = xa > m_a + slack ? xa : m_a;
    mn_b = xb > m_b + slack ? xb : m_b;
  } else {
    mn_a = fmaxf(m_a, mx_a * scale_log2), mn_b = fmaxf(m_b, mx_b * scale_log2);
  }
  base_a = mn_a == -INFINITY ? 0.f : mn_a, base_b = mn_b == -INFINITY ? 0.f : mn_b;
  corr_a = exp2_ftz(m_a - base_a), corr_b = exp2_ftz(m_b - base_b);
  m_a = mn_a, m_b = mn_b;
}

// 16 bytes global -> shared, asynchronously; zero-filled when !valid (src is then not read).
__device__ __forceinline__ void cp_async16(void* dst, const void* src, bool valid) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  const int n = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n));
}
// cp_async16 with an L2 prefetch-size hint fixed at compile time (L2 128 or 256: on a miss L2 fetches
// the aligned 128 or 256 bytes around the sector, so the other lanes' requests into them hit; 0: none),
// and with kAllValid, the form without the zero-fill source-size operand (every byte read; valid
// ignored). Compile-time so that a run of copies is straight-line code: a runtime choice per copy puts
// a branch and its bookkeeping around every LDGSTS (callers pick the form once per run of copies).
template <int L2, bool kAllValid>
__device__ __forceinline__ void cp_async16_form(void* dst, const void* src, bool valid) {
  static_assert(L2 == 0 || L2 == 128 || L2 == 256, "L2 prefetch hint: 0, 128 or 256 bytes");
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(dst));
  if constexpr (kAllValid) {
    if constexpr (L2 == 128) asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16;\n" ::"r"(s), "l"(src));
    else if constexpr (L2 == 256) asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16;\n" ::"r"(s), "l"(src));
    else asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(src));
  } else {
    const int n = valid ? 16 : 0;
    if constexpr (L2 == 128) asm volatile("cp.async.cg.shared.global.L2::128B [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n));
    else if constexpr (L2 == 256) asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n));
    else asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(src), "r"(n));
  }
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8x8 b16 matrices from shared memory (row addresses supplied per lane: lanes 8i .. 8i + 7 give
// the rows of matrix i); register i holds row lane / 4, elements 2 (lane % 4) and + 1 of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// Four 8x8 b16 matrices, transposed, from shared memory (row addresses supplied per lane).
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(row));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

// ldmatrix_x4 and ldmatrix_x4_trans from a 32-bit shared-memory address (kern::smem_addr's): address
// arithmetic that stays in 32 bits (a swizzled layout's XOR offsets are one instruction each).
__device__ __forceinline__ void ldmatrix_x4_at(uint32_t (&r)[4], uint32_t s) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}
__device__ __forceinline__ void ldmatrix_x4_trans_at(uint32_t (&r)[4], uint32_t s) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(s));
}

}  // namespace minfer::kern
