// kernels/common/pdl.cuh: programmatic dependent launch (PDL, Hopper and later). A kernel launched
// with launch_pdl() may start while the kernel before it on the stream is still running: its blocks
// become resident as soon as every block of the previous kernel has called pdl_launch_dependents(),
// and pdl_wait() then blocks until the previous kernel has completed and its writes are visible.
// Rules for every kernel launched this way (all of them keep these):
//  - no global memory written by an earlier kernel is read, and no global memory is written, before
//    pdl_wait() (weights, which no kernel writes, may be read before it: the GEMV prefetches them;
//    decode attention's prewait reads what kernels before the previous one wrote, where the previous
//    kernel let it launch only after its own pdl_wait(): GemvParams::trigger_after_wait);
//  - every block calls pdl_wait() on every path (also blocks with nothing to do), so that a kernel's
//    completion still implies the completion of everything before it on the stream.
// On pre-Hopper devices and with MINFER_PDL=0 the launch attribute is not set, the instructions
// compile to nothing below sm_90, and launches behave as plain <<<>>> launches.
// Usage: MINFER_CUDA_RETURN(kern::launch_pdl(kernel<T>, grid, block, smem, stream, args...));
#pragma once
#include <cstdlib>
#include <string>
#include <utility>

#include <cuda_runtime.h>

namespace minfer::kern {

__device__ __forceinline__ void pdl_wait() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

__device__ __forceinline__ void pdl_launch_dependents() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

// Whether launches set the PDL attribute: the current device is sm_90 or newer and MINFER_PDL is
// not "0". Read once per process (the engine has one device).
inline bool pdl_enabled() {
  static const bool on = [] {
    if (const char* v = std::getenv("MINFER_PDL"); v && std::string(v) == "0") return false;
    int dev = 0, major = 0;
    if (cudaGetDevice(&dev) != cudaSuccess) return false;
    if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess) return false;
    return major >= 9;
  }();
  return on;
}

// kernel<<<grid, block, smem, stream>>>(args...) in thread-block clusters of cluster_x blocks along x
// (cluster_x > 0: grid.x a multiple of it, sm_90+; 0: no clusters), with the programmatic-serialization
// attribute when pdl_enabled(). Returns the launch's error code.
template <typename... Params, typename... Args>
cudaError_t launch_pdl_cluster(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                               unsigned cluster_x, Args&&... args) {
  cudaLaunchAttribute attr[2];
  unsigned n = 0;
  if (cluster_x > 0) {
    attr[n].id = cudaLaunchAttributeClusterDimension;
    attr[n].val.clusterDim.x = cluster_x;
    attr[n].val.clusterDim.y = 1;
    attr[n].val.clusterDim.z = 1;
    ++n;
  }
  if (pdl_enabled()) {
    attr[n].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[n].val.programmaticStreamSerializationAllowed = 1;
    ++n;
  }
  cudaLaunchConfig_t cfg{};
  cfg.gridDim = grid;
  cfg.blockDim = block;
  cfg.dynamicSmemBytes = smem;
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = n;
  return cudaLaunchKernelEx(&cfg, kernel, std::forward<Args>(args)...);
}

// launch_pdl_cluster without clusters.
template <typename... Params, typename... Args>
cudaError_t launch_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                       Args&&... args) {
  return launch_pdl_cluster(kernel, grid, block, smem, stream, 0u, std::forward<Args>(args)...);
}

}  // namespace minfer::kern
