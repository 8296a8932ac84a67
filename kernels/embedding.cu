// kernels/embedding.cu: token embedding gather. Versions: v1: a 2-D grid (column chunks x tokens),
// each thread copies 16-byte packs of one row; scalar fallback when a row or pointer is not 16-byte
// aligned. T = tokens, V = vocab, H = hidden. Reference: ref::embedding.
#include "kernels/embedding.h"

#include "kernels/common/dispatch.cuh"
#include "kernels/common/dtype_traits.cuh"
#include "kernels/common/pdl.cuh"

namespace minfer {
namespace {

constexpr int kThreads = 256;
constexpr unsigned kMaxGridY = 65535;

// out[t] = table[ids[t]] (zeros for an id outside [0, V)), N elements per access.
template <typename T, int N>
__global__ void embedding_kernel(const int32_t* __restrict__ ids,  // (T)
                                 const T* __restrict__ table,      // (V, H)
                                 T* __restrict__ out,              // (T, H)
                                 int64_t num_tokens, int64_t vocab, int64_t hidden) {
  kern::pdl_launch_dependents();
  kern::pdl_wait();  // every read and write below depends on the previous kernel
  using P = kern::Pack<T, N>;
  const int64_t nv = hidden / N;
  const int64_t col = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (col >= nv) return;
  for (int64_t t = blockIdx.y; t < num_tokens; t += gridDim.y) {
    const int64_t id = ids[t];
    P v;
    if (id >= 0 && id < vocab) {
      v = reinterpret_cast<const P*>(table + id * hidden)[col];
    } else {
#pragma unroll
      for (int j = 0; j < N; ++j) v.v[j] = kern::from_float<T>(0.f);
    }
    reinterpret_cast<P*>(out + t * hidden)[col] = v;
  }
}

template <typename T, int N>
Status launch(const EmbeddingParams& p, cudaStream_t stream) {
  const int64_t nv = p.hidden / N;
  const dim3 grid(kern::blocks_for(nv, kThreads),
                  static_cast<unsigned>(p.num_tokens < kMaxGridY ? p.num_tokens : kMaxGridY));
  MINFER_CUDA_RETURN(kern::launch_pdl(embedding_kernel<T, N>, grid, kThreads, 0, stream, p.ids,
                                      static_cast<const T*>(p.table), static_cast<T*>(p.out), p.num_tokens,
                                      p.vocab, p.hidden));
  MINFER_LAUNCH_RETURN();
  return Status::ok();
}

Status check_args(const EmbeddingParams& p) {
  MINFER_REQUIRE(p.ids != nullptr, "ids", "null pointer");
  MINFER_REQUIRE(p.table != nullptr, "table", "null pointer");
  MINFER_REQUIRE(p.out != nullptr, "out", "null pointer");
  MINFER_REQUIRE(p.num_tokens > 0, "num_tokens", "must be > 0, got " + std::to_string(p.num_tokens));
  MINFER_REQUIRE(p.vocab > 0, "vocab", "must be > 0, got " + std::to_string(p.vocab));
  MINFER_REQUIRE(p.hidden > 0, "hidden", "must be > 0, got " + std::to_string(p.hidden));
  return Status::ok();
}

}  // namespace

Status embedding_forward(const EmbeddingParams& p, cudaStream_t stream) {
  if (Status s = check_args(p); !s) return s;
  MINFER_DISPATCH_DTYPE(p.dtype, T, {
    constexpr int N = kern::kVec16<T>;
    const bool vec = p.hidden % N == 0 && kern::aligned16(p.table) && kern::aligned16(p.out);
    return vec ? launch<T, N>(p, stream) : launch<T, 1>(p, stream);
  });
}

}  // namespace minfer
