// validate/runner_util.h: helpers shared by the op runners (validate/run_<op>.cpp): an owning device
// buffer, seeded random host values already rounded to a storage dtype, dtype-converting copies
// between host float arrays and device storage, and a NaN poison for outputs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <algorithm>
#include <random>
#include <thread>
#include <vector>

#include <cuda_runtime.h>

#include "engine/core/dtype.h"
#include "kernels/common/status.h"
#include "validate/case.h"
#include "validate/op_runner.h"

namespace minfer::val {

// One cudaMalloc'd allocation, freed on destruction. Movable, not copyable.
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes_ > 0) MINFER_CUDA_CHECK(cudaMalloc(&ptr_, bytes_));
  }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), bytes_(o.bytes_) { o.ptr_ = nullptr, o.bytes_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) { release(); ptr_ = o.ptr_, bytes_ = o.bytes_; o.ptr_ = nullptr, o.bytes_ = 0; }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { release(); }
  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }

 private:
  void release() { if (ptr_) cudaFree(ptr_); ptr_ = nullptr; }
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

// fn(begin, end) over [0, n) in chunks of `grain`, on up to hardware_concurrency threads (inline when
// n <= grain). Chunk boundaries depend on n and grain only, never on the thread count.
template <typename Fn>
void parallel_chunks(size_t n, size_t grain, Fn&& fn) {
  const size_t chunks = (n + grain - 1) / grain;
  const size_t workers = std::min<size_t>(chunks, std::max(1u, std::thread::hardware_concurrency()));
  if (workers <= 1) {
    for (size_t c = 0; c < chunks; ++c) fn(c * grain, std::min(n, (c + 1) * grain));
    return;
  }
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (size_t c = w; c < chunks; c += workers) fn(c * grain, std::min(n, (c + 1) * grain));
    });
  for (auto& th : pool) th.join();
}

// n values uniform in [lo, hi), each rounded to dtype t (what the device will hold). One draw from
// rng seeds the whole vector; chunk c of 2^16 values runs its own generator seeded from (draw, c), so
// large inputs (decode caches of hundreds of MB) fill on every core and the values do not depend on
// the core count.
inline std::vector<float> random_rounded(DType t, size_t n, std::mt19937_64& rng, float lo, float hi) {
  constexpr size_t kGrain = size_t{1} << 16;
  const uint64_t base = rng();
  std::vector<float> v(n);
  parallel_chunks(n, kGrain, [&](size_t b, size_t e) {
    std::mt19937_64 g(base ^ (0x9e3779b97f4a7c15ull * (b / kGrain + 1)));
    std::uniform_real_distribution<float> d(lo, hi);
    for (size_t i = b; i < e; ++i) v[i] = round_to(t, d(g));
  });
  return v;
}

// Device buffer of dtype t holding the host values h (already representable in t).
inline DeviceBuffer upload(DType t, const std::vector<float>& h) {
  std::vector<unsigned char> raw(h.size() * dtype_size(t));
  parallel_chunks(h.size(), size_t{1} << 18, [&](size_t b, size_t e) {
    for (size_t i = b; i < e; ++i) store_as(t, raw.data(), i, h[i]);
  });
  DeviceBuffer d(raw.size());
  MINFER_CUDA_CHECK(cudaMemcpy(d.get(), raw.data(), raw.size(), cudaMemcpyHostToDevice));
  return d;
}

// Overwrite an existing device buffer of dtype t with h (same element count).
inline void upload_into(DType t, const std::vector<float>& h, void* dev, cudaStream_t stream) {
  std::vector<unsigned char> raw(h.size() * dtype_size(t));
  for (size_t i = 0; i < h.size(); ++i) store_as(t, raw.data(), i, h[i]);
  MINFER_CUDA_CHECK(cudaMemcpyAsync(dev, raw.data(), raw.size(), cudaMemcpyHostToDevice, stream));
  MINFER_CUDA_CHECK(cudaStreamSynchronize(stream));
}

// n elements of dtype t from the device, as floats.
inline std::vector<float> download(DType t, const void* dev, size_t n, cudaStream_t stream) {
  std::vector<unsigned char> raw(n * dtype_size(t));
  MINFER_CUDA_CHECK(cudaMemcpyAsync(raw.data(), dev, raw.size(), cudaMemcpyDeviceToHost, stream));
  MINFER_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<float> h(n);
  for (size_t i = 0; i < n; ++i) h[i] = load_as(t, raw.data(), i);
  return h;
}

// All-ones bytes: NaN in fp32, fp16 and bf16, so an element the kernel leaves unwritten fails compare.
inline void poison(void* dev, size_t bytes, cudaStream_t stream) {
  MINFER_CUDA_CHECK(cudaMemsetAsync(dev, 0xff, bytes, stream));
}

}  // namespace minfer::val

namespace minfer::val {

// Per-op factories (validate/run_<op>.cpp); make_runner (validate/runners.cpp) picks by sweep name.
std::unique_ptr<OpRunner> make_embedding_runner(const Case& c);
std::unique_ptr<OpRunner> make_norm_runner(const Case& c);
std::unique_ptr<OpRunner> make_rope_runner(const Case& c);
std::unique_ptr<OpRunner> make_swiglu_runner(const Case& c);

// Concatenation of two host arrays (ops with two outputs compare them as one vector).
inline std::vector<float> concat(const std::vector<float>& a, const std::vector<float>& b) {
  std::vector<float> r(a);
  r.insert(r.end(), b.begin(), b.end());
  return r;
}

}  // namespace minfer::val
