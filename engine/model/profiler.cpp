// engine/model/profiler.cpp: CUDA-event pairs around each launch, grouped by name (see profiler.h).
#include "engine/model/profiler.h"

#include <algorithm>

#include "kernels/common/status.h"

namespace minfer {

LaunchProfiler::~LaunchProfiler() {
  for (const Mark& m : marks_) {
    cudaEventDestroy(m.start);
    cudaEventDestroy(m.stop);
  }
  if (pending_) cudaEventDestroy(pending_);
}

void LaunchProfiler::begin() {
  if (!pending_) MINFER_CUDA_CHECK(cudaEventCreate(&pending_));
  MINFER_CUDA_CHECK(cudaEventRecord(pending_, stream_));
}

void LaunchProfiler::end(const std::string& name, double bytes) {
  cudaEvent_t stop = nullptr;
  MINFER_CUDA_CHECK(cudaEventCreate(&stop));
  MINFER_CUDA_CHECK(cudaEventRecord(stop, stream_));
  marks_.push_back({name, bytes, pending_, stop});
  pending_ = nullptr;
}

std::vector<KernelTiming> LaunchProfiler::summary() const {
  MINFER_CUDA_CHECK(cudaStreamSynchronize(stream_));
  std::vector<KernelTiming> out;
  double total = 0;
  for (const Mark& m : marks_) {
    float ms = 0;
    MINFER_CUDA_CHECK(cudaEventElapsedTime(&ms, m.start, m.stop));
    auto it = std::find_if(out.begin(), out.end(), [&](const KernelTiming& k) { return k.name == m.name; });
    if (it == out.end()) it = out.insert(out.end(), KernelTiming{m.name, 0, 0, 0, 0});
    ++it->calls;
    it->us += ms * 1e3;
    it->bytes += m.bytes;
    total += ms * 1e3;
  }
  for (KernelTiming& k : out) k.pct = total > 0 ? 100.0 * k.us / total : 0;
  return out;
}

}  // namespace minfer
