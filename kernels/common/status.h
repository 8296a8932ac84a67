// kernels/common/status.h: the status every launcher returns, and the check macros that turn a
// failing CUDA call into a status (or an exception on the host side) naming the call and file:line.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace minfer {

class Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status error(std::string msg) { Status s; s.ok_ = false; s.msg_ = std::move(msg); return s; }
  bool is_ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const std::string& message() const { return msg_; }

 private:
  bool ok_ = true;
  std::string msg_;
};

inline std::string cuda_call_error(cudaError_t e, const char* call, const char* file, int line) {
  return std::string(call) + " failed: " + cudaGetErrorName(e) + " (" + cudaGetErrorString(e) + ") at " +
         file + ":" + std::to_string(line);
}

}  // namespace minfer

// Inside a launcher: return a failed Status naming the call.
#define MINFER_CUDA_RETURN(call)                                                        \
  do {                                                                                  \
    cudaError_t minfer_e_ = (call);                                                     \
    if (minfer_e_ != cudaSuccess)                                                       \
      return ::minfer::Status::error(::minfer::cuda_call_error(minfer_e_, #call, __FILE__, __LINE__)); \
  } while (0)

// Host code (tests, drivers): throw std::runtime_error naming the call.
#define MINFER_CUDA_CHECK(call)                                                         \
  do {                                                                                  \
    cudaError_t minfer_e_ = (call);                                                     \
    if (minfer_e_ != cudaSuccess)                                                       \
      throw std::runtime_error(::minfer::cuda_call_error(minfer_e_, #call, __FILE__, __LINE__)); \
  } while (0)

// Host code: throw if a Status failed.
#define MINFER_STATUS_CHECK(expr)                                                       \
  do {                                                                                  \
    ::minfer::Status minfer_s_ = (expr);                                                \
    if (!minfer_s_.is_ok())                                                             \
      throw std::runtime_error(std::string(#expr) + ": " + minfer_s_.message() + " at " + __FILE__ + ":" + \
                               std::to_string(__LINE__));                               \
  } while (0)

// After a <<<>>> launch inside a launcher.
#define MINFER_LAUNCH_RETURN() MINFER_CUDA_RETURN(cudaGetLastError())
