// kernels/swiglu.cu: SwiGLU on a fused [gate | up] projection. Versions: v1: a 2-D grid (column
// chunks x rows), each thread reads one 16-byte pack of gate and one of up and writes one pack of out;
// scalar fallback when I, a stride or a pointer is not 16-byte aligned. R = rows, I = intermediate.
// Reference: ref::swiglu.
#include "kernels/swiglu.h"

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/pdl.cuh"

namespace minfer {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxGridY = 65535;

template <typename T, int N>
__global__ void swiglu_kernel(const T* __restrict__ gate_up,  // (R, 2I) row stride in_stride
                              T* __restrict__ out,            // (R, I) row stride out_stride
                              int64_t rows, int64_t inter, int64_t in_stride, int64_t out_stride) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  using P = kern::Pack<T, N>;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= inter / N) return;
  for (int64_t r = blockIdx.y; r < rows; r += gridDim.y) {
    const T* g = gate_up + r * in_stride;  // (I) gate
    const P gp = reinterpret_cast<const P*>(g)[col];
    const P up = reinterpret_cast<const P*>(g + inter)[col];
    float gf[N], uf[N], of[N];
    kern::unpack(gp, gf);
    kern::unpack(up, uf);
#pragma unroll
    for (int j = 0; j < N; ++j) of[j] = gf[j] / (1.f + expf(-gf[j])) * uf[j];
    reinterpret_cast<P*>(out + r * out_stride)[col] = kern::pack<T, N>(of);
  }
}

template <typename T, int N>
Status launch(const SwigluParams& p, cudaStream_t stream) {
  const dim3 grid(kern::blocks_for(p.inter / N, kThreads),
                  static_cast<unsigned>(p.rows < kMaxGridY ? p.rows : kMaxGridY));
  MINFER_CUDA_RETURN(kern::launch_pdl(swiglu_kernel<T, N>, grid, kThreads, 0, stream,
                                      static_cast<const T*>(p.gate_up), static_cast<T*>(p.out), p.rows, p.inter,
                                      p.in_stride, p.out_stride));
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

Status check_args(const SwigluParams& p) {
  MINFER_REQUIRE(p.gate_up != nullptr, "gate_up", "null pointer");
  MINFER_REQUIRE(p.out != nullptr, "out", "null pointer");
  MINFER_REQUIRE(p.rows > 0, "rows", "must be > 0, got " + std::to_string(p.rows));
  MINFER_REQUIRE(p.inter > 0, "inter", "must be > 0, got " + std::to_string(p.inter));
  MINFER_REQUIRE(p.in_stride >= 2 * p.inter, "in_stride",
                 "must be >= 2*inter = " + std::to_string(2 * p.inter) + ", got " + std::to_string(p.in_stride));
  MINFER_REQUIRE(p.out_stride >= p.inter, "out_stride",
                 "must be >= inter = " + std::to_string(p.inter) + ", got " + std::to_string(p.out_stride));
  return Status::ok();
}

}  // namespace

Status swiglu_forward(const SwigluParams& p, cudaStream_t stream) {
  if (Status s = check_args(p); !s) return s;
  MINFER_DISPATCH_DTYPE(p.dtype, T, {
    constexpr int N = kern::kVec16<T>;
    const bool vec = p.inter % N == 0 && p.in_stride % N == 0 && p.out_stride % N == 0 &&
                     kern::aligned16(p.gate_up) && kern::aligned16(p.out);
    return vec ? launch<T, N>(p, stream) : launch<T, 1>(p, stream);
  });
}

}  // namespace minfer
