// rpo/cuda/error.cuh — CUDA runtime failures as exceptions, and the device probe that the GPU tests skip on.
//
// Public names: rpo::cuda::error, RPO_CUDA_TRY, rpo::cuda::device_probe, rpo::cuda::probe_device.
// Host code only. Device code never throws and never traps (STYLE.md §4.4): a kernel that meets bad input sets a
// flag in device memory, and the host entry point that launched it throws the message the CPU path would give.
// @sa docs/cuda.md#errors
#pragma once

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace rpo::cuda {

/// A CUDA runtime call failed. `what()` reads "file:line: call failed: cudaErrorName: description" (the runtime's
/// cudaGetErrorName and cudaGetErrorString); `code()` is the runtime's error.  @sa docs/cuda.md#errors
class error : public std::runtime_error {
 public:
  error(cudaError_t code, const std::string& message) : std::runtime_error(message), code_(code) {}
  /// The runtime's error code.
  cudaError_t code() const noexcept { return code_; }

 private:
  cudaError_t code_;
};

namespace detail {
/// Throws rpo::cuda::error when `code` is not cudaSuccess; `call`, `file` and `line` say where.
inline void throw_on_cuda_error(cudaError_t code, const char* call, const char* file, int line) {
  if (code == cudaSuccess) return;
  throw error(code, std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                        cudaGetErrorName(code) + ": " + cudaGetErrorString(code));
}
}  // namespace detail

/// Whether this process can use a CUDA device, and when not, why.  @sa docs/cuda.md#probe_device
struct device_probe {
  bool available = false;  ///< at least one device answered
  int count = 0;           ///< cudaGetDeviceCount's answer (0 when it failed)
  std::string reason;      ///< why not, e.g. "cudaGetDeviceCount: cudaErrorNoDevice: no CUDA-capable device is detected"
};

/// Asks the runtime for devices without throwing: no driver, an old driver or no GPU all give `available = false`
/// with the runtime's own words in `reason` (the GPU tests print it when they skip).  @sa docs/cuda.md#probe_device
inline device_probe probe_device() {
  int count = 0;
  const cudaError_t code = cudaGetDeviceCount(&count);
  if (code != cudaSuccess) {
    (void)cudaGetLastError();  // not sticky, but leave no error behind for the caller's next call
    return {false, 0, std::string("cudaGetDeviceCount: ") + cudaGetErrorName(code) + ": " + cudaGetErrorString(code)};
  }
  if (count <= 0) return {false, 0, "cudaGetDeviceCount found 0 CUDA devices"};
  return {true, count, {}};
}

}  // namespace rpo::cuda

/// Runs a CUDA runtime call and throws rpo::cuda::error with file:line, the call and the runtime's message when it
/// does not return cudaSuccess.  @sa docs/cuda.md#errors
#define RPO_CUDA_TRY(call) ::rpo::cuda::detail::throw_on_cuda_error((call), #call, __FILE__, __LINE__)
