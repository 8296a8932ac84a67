// bench/harness.h: the timing method of DESIGN.md section 5. CUDA events around one launch, an L2
// flush (a write of a buffer twice the device's L2) before each sample, warm-up first, and
// median/p10/p90 over the samples. Ceilings measured once per run: device-to-device copy bandwidth
// (bytes read + written over time) and a cuBLAS bf16 GEMM 8192^3 (fp32 accumulation, no TF32).
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include <cuda_runtime.h>

namespace minfer::bench {

struct Stats {
  double median_us = 0, p10_us = 0, p90_us = 0;
  size_t samples = 0;
};
// Percentiles by linear interpolation between sorted samples; empty input gives zeros.
Stats summarize(std::vector<double> samples_us);

// Owns a device buffer larger than L2 and the event pair; times one launch after a flush.
class Timer {
 public:
  explicit Timer(cudaStream_t stream);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  void flush_l2();
  // One sample: flush L2, then events around fn() on the stream; microseconds.
  double sample_us(const std::function<void()>& fn);
  size_t l2_bytes() const { return l2_bytes_; }

 private:
  cudaStream_t stream_;
  void* flush_buf_ = nullptr;  // (2 * L2 bytes) scratch written before each sample
  size_t l2_bytes_ = 0, flush_bytes_ = 0;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

struct Ceilings {
  double copy_gbps = 0;    // D2D cudaMemcpyAsync, (read + write) bytes / median time
  double gemm_tflops = 0;  // cuBLAS bf16 GEMM 8192^3, 2*N^3 / median time
};
double measure_copy_gbps(cudaStream_t stream);
double measure_gemm_tflops(cudaStream_t stream);
Ceilings measure_ceilings(cudaStream_t stream);

}  // namespace minfer::bench
