// engine/runtime/kernel_tracer.cpp: see kernel_tracer.h.
#include "engine/runtime/kernel_tracer.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cxxabi.h>
#include <mutex>
#include <vector>
#include <string>

#include <cuda_runtime.h>

#include "engine/core/error.h"

#if __has_include(<cupti.h>)
#include <cupti.h>
#define MINFER_HAVE_CUPTI 1
#else
#define MINFER_HAVE_CUPTI 0
#endif

namespace minfer {

#if MINFER_HAVE_CUPTI
namespace {

struct Cupti {
  CUptiResult (*enable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*disable)(CUpti_ActivityKind) = nullptr;
  CUptiResult (*register_callbacks)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc) = nullptr;
  CUptiResult (*flush_all)(uint32_t) = nullptr;
  CUptiResult (*next_record)(uint8_t*, size_t, CUpti_Activity**) = nullptr;
  CUptiResult (*result_string)(CUptiResult, const char**) = nullptr;
  std::string error;  // why it could not be loaded ("" when loaded)
};

// libcupti's entry points, loaded on first use.
const Cupti& cupti() {
  static const Cupti c = [] {
    Cupti r;
    const char* env = std::getenv("CUDA_HOME");
    std::vector<std::string> names = {"libcupti.so.13", "libcupti.so"};
    for (const std::string& root : {env ? std::string(env) : std::string(), std::string("/usr/local/cuda")}) {
      if (root.empty()) continue;
      for (const char* dir : {"/extras/CUPTI/lib64/", "/lib64/", "/lib/", "/targets/x86_64-linux/lib/"})
        names.push_back(root + dir + "libcupti.so.13");
    }
    void* lib = nullptr;
    std::string tried;
    for (const std::string& n : names) {
      lib = dlopen(n.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (lib) break;
      tried += (tried.empty() ? "" : ", ") + n;
    }
    if (!lib) {
      r.error = "libcupti could not be loaded (tried " + tried + "): put its folder on LD_LIBRARY_PATH";
      return r;
    }
    auto sym = [&](const char* name) {
      void* f = dlsym(lib, name);
      if (!f && r.error.empty()) r.error = std::string("libcupti lacks ") + name;
      return f;
    };
    r.enable = reinterpret_cast<decltype(r.enable)>(sym("cuptiActivityEnable"));
    r.disable = reinterpret_cast<decltype(r.disable)>(sym("cuptiActivityDisable"));
    r.register_callbacks = reinterpret_cast<decltype(r.register_callbacks)>(sym("cuptiActivityRegisterCallbacks"));
    r.flush_all = reinterpret_cast<decltype(r.flush_all)>(sym("cuptiActivityFlushAll"));
    r.next_record = reinterpret_cast<decltype(r.next_record)>(sym("cuptiActivityGetNextRecord"));
    r.result_string = reinterpret_cast<decltype(r.result_string)>(sym("cuptiGetResultString"));
    return r;
  }();
  return c;
}

void check(CUptiResult res, const char* call) {
  if (res == CUPTI_SUCCESS) return;
  const char* s = nullptr;
  if (cupti().result_string) cupti().result_string(res, &s);
  throw UsageError(std::string("kernel trace: ") + call + " failed: " + (s ? s : std::to_string(res)));
}

std::mutex g_mu;
std::vector<KernelSpan> g_spans;  // what the completed buffers held
bool g_busy = false;              // a tracer is alive

std::string demangle(const char* name) {
  if (!name) return "?";
  int status = 0;
  char* d = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string out = status == 0 && d ? std::string(d) : std::string(name);
  std::free(d);
  return out;
}

constexpr size_t kBufferBytes = size_t{8} << 20;

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_mu);
  CUpti_Activity* rec = nullptr;
  while (cupti().next_record(buffer, valid, &rec) == CUPTI_SUCCESS) {
    if (rec->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL && rec->kind != CUPTI_ACTIVITY_KIND_KERNEL) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(rec);
    KernelSpan s;
    s.name = short_kernel_name(demangle(k->name));
    s.grid[0] = k->gridX, s.grid[1] = k->gridY, s.grid[2] = k->gridZ;
    s.block[0] = k->blockX, s.block[1] = k->blockY, s.block[2] = k->blockZ;
    s.start_ns = k->start;
    s.end_ns = k->end > k->start ? k->end : k->start;
    s.launch = k->correlationId;
    s.graph = k->graphId;
    g_spans.push_back(s);
  }
  std::free(buffer);
}

}  // namespace

KernelTracer::KernelTracer() {
  const Cupti& c = cupti();
  if (!c.error.empty()) throw UsageError("kernel trace: " + c.error);
  {
    std::lock_guard<std::mutex> lock(g_mu);
    if (g_busy) throw UsageError("kernel trace: another tracer is running");
    g_busy = true;
    g_spans.clear();
  }
  try {
    check(c.register_callbacks(buffer_requested, buffer_completed), "cuptiActivityRegisterCallbacks");
    check(c.enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityEnable(CONCURRENT_KERNEL)");
  } catch (...) {
    std::lock_guard<std::mutex> lock(g_mu);
    g_busy = false;
    throw;
  }
  active_ = true;
}

KernelTracer::~KernelTracer() {
  if (!active_) return;
  cupti().disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
  cupti().flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  std::lock_guard<std::mutex> lock(g_mu);
  g_busy = false;
}

std::vector<KernelSpan> KernelTracer::finish() {
  if (!active_) throw UsageError("kernel trace: finish() called twice");
  cudaDeviceSynchronize();
  check(cupti().flush_all(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  check(cupti().disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "cuptiActivityDisable");
  active_ = false;
  std::lock_guard<std::mutex> lock(g_mu);
  g_busy = false;
  std::vector<KernelSpan> out;
  out.swap(g_spans);
  return out;
}

#else  // no CUPTI headers at build time

KernelTracer::KernelTracer() {
  throw UsageError("kernel trace: this build has no CUPTI headers (cupti.h was not found with the CUDA toolkit)");
}
KernelTracer::~KernelTracer() = default;
std::vector<KernelSpan> KernelTracer::finish() { return {}; }

#endif

}  // namespace minfer
