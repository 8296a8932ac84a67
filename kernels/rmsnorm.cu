// kernels/rmsnorm.cu: RMSNorm with optional fused residual add. Versions: v1: one block per row;
// one pass over memory: x (and residual_in) are read once as 16-byte packs (4 per thread in flight),
// the (rounded) sum is kept in shared memory for the second half, residual_out and out are written
// once; the weight packs of pass 2's first round are loaded before pdl_wait. Scalar fallback (N = 1)
// when H or a pointer is not 16-byte aligned.
// R = rows, H = hidden. Reference: ref::rmsnorm.
#include "kernels/rmsnorm.h"

#include <cstdlib>
#include <string>

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/pdl.cuh"
#include "kernels/common/reduce.cuh"

namespace minfer {
namespace {

constexpr int kMaxThreads = 512;  // with __launch_bounds__: registers stay within 65536 / 512
constexpr int kU = 4;  // packs per thread loaded together
constexpr size_t kDefaultSmem = 48 * 1024;

// Row cache: H values of T (the rounded sum when RESID), 16-byte aligned.
extern __shared__ __align__(16) unsigned char rmsnorm_row_smem[];

template <typename T, int N, bool RESID>
__global__ void __launch_bounds__(kMaxThreads) rmsnorm_kernel(const T* x,            // (R, H)
                               const T* residual_in,  // (R, H) when RESID
                               T* residual_out,       // (R, H) when RESID; may alias residual_in
                               const T* __restrict__ weight,  // (H)
                               T* out,                // (R, H); may alias x
                               int64_t hidden, float eps, bool preload) {
  using P = kern::Pack<T, N>;
  const int64_t nv = hidden / N;
  const int64_t step = blockDim.x;
  // Before the wait, what does not depend on the previous kernel: this thread's weight packs of pass
  // 2's first round (a decode row's whole share at hidden <= 4 x 32 x N), off the critical path.
  kern::pdl_launch_dependents();
  P w0[kU] = {};
#pragma unroll
  for (int u = 0; u < kU; ++u)
    if (preload && threadIdx.x + u * step < nv) w0[u] = reinterpret_cast<const P*>(weight)[threadIdx.x + u * step];
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  const int64_t base = static_cast<int64_t>(blockIdx.x) * nv;  // row offset in packs
  P* cache = reinterpret_cast<P*>(rmsnorm_row_smem);            // (H / N)
  float ss = 0.f;
  // Pass 1: kU packs per thread loaded before any is used (independent loads in flight); a thread
  // writes only the packs it read, so out == x and residual_out == residual_in stay safe.
  for (int64_t i0 = threadIdx.x; i0 < nv; i0 += kU * step) {
    P a[kU], b[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t i = i0 + u * step;
      if (i < nv) {
        a[u] = reinterpret_cast<const P*>(x)[base + i];
        if constexpr (RESID) b[u] = reinterpret_cast<const P*>(residual_in)[base + i];
      }
    }
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t i = i0 + u * step;
      if (i >= nv) break;
      if constexpr (RESID) {
#pragma unroll
        for (int j = 0; j < N; ++j)
          a[u].v[j] = kern::from_float<T>(kern::to_float(a[u].v[j]) + kern::to_float(b[u].v[j]));
        reinterpret_cast<P*>(residual_out)[base + i] = a[u];
      }
#pragma unroll
      for (int j = 0; j < N; ++j) {
        const float f = kern::to_float(a[u].v[j]);
        ss += f * f;
      }
      cache[i] = a[u];
    }
  }
  const float rstd = rsqrtf(kern::block_sum(ss) / static_cast<float>(hidden) + eps);
  // Pass 2: the row from shared memory, the weight (L2-resident across rows), one store.
  for (int64_t i0 = threadIdx.x; i0 < nv; i0 += kU * step) {
    P wp[kU];
#pragma unroll
    for (int u = 0; u < kU; ++u)
      if (i0 + u * step < nv) wp[u] = preload && i0 == threadIdx.x ? w0[u] : reinterpret_cast<const P*>(weight)[i0 + u * step];
#pragma unroll
    for (int u = 0; u < kU; ++u) {
      const int64_t i = i0 + u * step;
      if (i >= nv) break;
      float a[N], w[N];
      kern::unpack(cache[i], a);
      kern::unpack(wp[u], w);
#pragma unroll
      for (int j = 0; j < N; ++j) a[j] = a[j] * rstd * w[j];
      reinterpret_cast<P*>(out)[base + i] = kern::pack<T, N>(a);
    }
  }
}

// Threads per row: about kU packs per thread, a multiple of 32, in [32, kMaxThreads].
int threads_for(int64_t packs) {
  int64_t t = ((packs + kU - 1) / kU + 31) / 32 * 32;
  return static_cast<int>(t < 32 ? 32 : (t > kMaxThreads ? kMaxThreads : t));
}

// MINFER_NORM_PRELOAD=0: pass 2's weights loaded after the wait, as before (A/B; the same bits).
bool norm_preload() {
  static const bool on = [] {
    const char* v = std::getenv("MINFER_NORM_PRELOAD");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

template <typename T, int N, bool RESID>
Status launch(const RmsNormParams& p, cudaStream_t stream) {
  auto kernel = rmsnorm_kernel<T, N, RESID>;
  const size_t smem = static_cast<size_t>(p.hidden) * sizeof(T);
  if (smem > kDefaultSmem) {
    int dev = 0, optin = 0;
    MINFER_CUDA_RETURN(cudaGetDevice(&dev));
    MINFER_CUDA_RETURN(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    MINFER_REQUIRE(smem <= static_cast<size_t>(optin) - 256, "hidden",
                   std::to_string(p.hidden) + " too large: row cache needs " + std::to_string(smem) +
                       " bytes of shared memory, device allows " + std::to_string(optin));
    MINFER_CUDA_RETURN(
        cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)));
  }
  const unsigned rows = static_cast<unsigned>(p.rows);
  MINFER_CUDA_RETURN(kern::launch_pdl(
      kernel, rows, threads_for(p.hidden / N), smem, stream, static_cast<const T*>(p.x),
      static_cast<const T*>(p.residual_in), static_cast<T*>(p.residual_out), static_cast<const T*>(p.weight),
      static_cast<T*>(p.out), p.hidden, p.eps, norm_preload()));
  return Status::ok();
}

Status check_args(const RmsNormParams& p) {
  MINFER_REQUIRE(p.x != nullptr, "x", "null pointer");
  MINFER_REQUIRE(p.weight != nullptr, "weight", "null pointer");
  MINFER_REQUIRE(p.out != nullptr, "out", "null pointer");
  MINFER_REQUIRE(p.residual_in == nullptr || p.residual_out != nullptr, "residual_out",
                 "null pointer while residual_in is set");
  MINFER_REQUIRE(p.rows > 0, "rows", "must be > 0, got " + std::to_string(p.rows));
  MINFER_REQUIRE(p.rows <= 0x7fffffff, "rows", "must be < 2^31, got " + std::to_string(p.rows));
  MINFER_REQUIRE(p.hidden > 0, "hidden", "must be > 0, got " + std::to_string(p.hidden));
  MINFER_REQUIRE(p.eps >= 0.f, "eps", "must be >= 0, got " + std::to_string(p.eps));
  return Status::ok();
}

}  // namespace

Status rmsnorm_forward(const RmsNormParams& p, cudaStream_t stream) {
  if (Status s = check_args(p); !s) return s;
  const bool resid = p.residual_in != nullptr;
  MINFER_DISPATCH_DTYPE(p.dtype, T, {
    constexpr int N = kern::kVec16<T>;
    const bool vec = p.hidden % N == 0 && kern::aligned16(p.x) && kern::aligned16(p.weight) &&
                     kern::aligned16(p.out) &&
                     (!resid || (kern::aligned16(p.residual_in) && kern::aligned16(p.residual_out)));
    if (vec) return resid ? launch<T, N, true>(p, stream) : launch<T, N, false>(p, stream);
    return resid ? launch<T, 1, true>(p, stream) : launch<T, 1, false>(p, stream);
  });
}

}  // namespace minfer
