// bench/harness.cpp: event timing with L2 flush, sample statistics, and the two per-run ceilings
// (D2D copy bandwidth, cuBLAS bf16 GEMM 8192^3). See bench/harness.h and DESIGN.md section 5.
#include "bench/harness.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include <cublas_v2.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"

// Host code: throw naming the cuBLAS call and file:line (the cuBLAS twin of MINFER_CUDA_CHECK).
#define MINFER_CUBLAS_CHECK(call)                                                                  \
  do {                                                                                             \
    cublasStatus_t minfer_b_ = (call);                                                             \
    if (minfer_b_ != CUBLAS_STATUS_SUCCESS)                                                        \
      throw std::runtime_error(std::string(#call) + " failed: " + cublasGetStatusString(minfer_b_) + \
                               " at " + __FILE__ + ":" + std::to_string(__LINE__));                \
  } while (0)

namespace minfer::bench {

namespace {

double percentile(const std::vector<double>& sorted, double q) {
  const double pos = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(pos);
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

// Median of `n` event-timed runs of fn after `warmup` untimed ones; milliseconds.
double median_ms(cudaStream_t stream, int warmup, int n, const std::function<void()>& fn) {
  for (int i = 0; i < warmup; ++i) fn();
  cudaEvent_t a, b;
  MINFER_CUDA_CHECK(cudaEventCreate(&a));
  MINFER_CUDA_CHECK(cudaEventCreate(&b));
  std::vector<double> ms;
  for (int i = 0; i < n; ++i) {
    MINFER_CUDA_CHECK(cudaEventRecord(a, stream));
    fn();
    MINFER_CUDA_CHECK(cudaEventRecord(b, stream));
    MINFER_CUDA_CHECK(cudaEventSynchronize(b));
    float t = 0;
    MINFER_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
    ms.push_back(t);
  }
  MINFER_CUDA_CHECK(cudaEventDestroy(a));
  MINFER_CUDA_CHECK(cudaEventDestroy(b));
  return summarize(ms).median_us;  // summarize is unit-agnostic
}

// Random bf16 bits in [-1, 1) from a fixed LCG: GEMM inputs that are neither zero nor constant.
std::vector<uint16_t> random_bf16(size_t n, uint64_t seed) {
  std::vector<uint16_t> v(n);
  uint64_t s = seed;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const float f = static_cast<float>(static_cast<int32_t>(s >> 32)) * (1.0f / 2147483648.0f);
    x = f32_to_bf16_bits(f);
  }
  return v;
}

}  // namespace

Stats summarize(std::vector<double> samples) {
  Stats s;
  s.samples = samples.size();
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.median_us = percentile(samples, 0.5);
  s.p10_us = percentile(samples, 0.1);
  s.p90_us = percentile(samples, 0.9);
  return s;
}

Timer::Timer(cudaStream_t stream) : stream_(stream) {
  int dev = 0, l2 = 0;
  MINFER_CUDA_CHECK(cudaGetDevice(&dev));
  MINFER_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
  l2_bytes_ = static_cast<size_t>(l2);
  flush_bytes_ = std::max<size_t>(2 * l2_bytes_, size_t{1} << 20);
  MINFER_CUDA_CHECK(cudaMalloc(&flush_buf_, flush_bytes_));
  MINFER_CUDA_CHECK(cudaEventCreate(&start_));
  MINFER_CUDA_CHECK(cudaEventCreate(&stop_));
}

Timer::~Timer() {
  cudaEventDestroy(start_);
  cudaEventDestroy(stop_);
  cudaFree(flush_buf_);
}

void Timer::flush_l2() { MINFER_CUDA_CHECK(cudaMemsetAsync(flush_buf_, 0x5a, flush_bytes_, stream_)); }

double Timer::sample_us(const std::function<void()>& fn) {
  flush_l2();
  MINFER_CUDA_CHECK(cudaEventRecord(start_, stream_));
  fn();
  MINFER_CUDA_CHECK(cudaEventRecord(stop_, stream_));
  MINFER_CUDA_CHECK(cudaEventSynchronize(stop_));
  float ms = 0;
  MINFER_CUDA_CHECK(cudaEventElapsedTime(&ms, start_, stop_));
  return static_cast<double>(ms) * 1e3;
}

double measure_copy_gbps(cudaStream_t stream) {
  const size_t bytes = size_t{1} << 30;  // 1 GiB each way: far past any L2
  void *src = nullptr, *dst = nullptr;
  MINFER_CUDA_CHECK(cudaMalloc(&src, bytes));
  MINFER_CUDA_CHECK(cudaMalloc(&dst, bytes));
  MINFER_CUDA_CHECK(cudaMemsetAsync(src, 0x3c, bytes, stream));
  const double ms = median_ms(stream, 3, 20, [&] {
    MINFER_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  });
  MINFER_CUDA_CHECK(cudaFree(src));
  MINFER_CUDA_CHECK(cudaFree(dst));
  return 2.0 * static_cast<double>(bytes) / (ms * 1e-3) / 1e9;
}

double measure_gemm_tflops(cudaStream_t stream) {
  const int n = 8192;
  const size_t elems = static_cast<size_t>(n) * n;
  void *a = nullptr, *b = nullptr, *c = nullptr;  // each (n, n) bf16
  MINFER_CUDA_CHECK(cudaMalloc(&a, elems * 2));
  MINFER_CUDA_CHECK(cudaMalloc(&b, elems * 2));
  MINFER_CUDA_CHECK(cudaMalloc(&c, elems * 2));
  const auto ha = random_bf16(elems, 1), hb = random_bf16(elems, 2);
  MINFER_CUDA_CHECK(cudaMemcpy(a, ha.data(), elems * 2, cudaMemcpyHostToDevice));
  MINFER_CUDA_CHECK(cudaMemcpy(b, hb.data(), elems * 2, cudaMemcpyHostToDevice));
  cublasHandle_t h = nullptr;
  MINFER_CUBLAS_CHECK(cublasCreate(&h));
  MINFER_CUBLAS_CHECK(cublasSetStream(h, stream));
  MINFER_CUBLAS_CHECK(cublasSetMathMode(h, CUBLAS_DEFAULT_MATH));  // no TF32 anywhere
  const float alpha = 1.0f, beta = 0.0f;
  const double ms = median_ms(stream, 3, 10, [&] {
    MINFER_CUBLAS_CHECK(cublasGemmEx(h, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a, CUDA_R_16BF, n, b,
                                     CUDA_R_16BF, n, &beta, c, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                     CUBLAS_GEMM_DEFAULT));
  });
  MINFER_CUBLAS_CHECK(cublasDestroy(h));
  MINFER_CUDA_CHECK(cudaFree(a));
  MINFER_CUDA_CHECK(cudaFree(b));
  MINFER_CUDA_CHECK(cudaFree(c));
  return 2.0 * n * static_cast<double>(n) * n / (ms * 1e-3) / 1e12;
}

Ceilings measure_ceilings(cudaStream_t stream) {
  Ceilings c;
  c.copy_gbps = measure_copy_gbps(stream);
  c.gemm_tflops = measure_gemm_tflops(stream);
  return c;
}

}  // namespace minfer::bench
