// rpo/cuda/memory.cuh — the stream-ordered scratch memory of the CUDA entry points, and their small copies.
//
// Public names: none (rpo::cuda::detail only).
// Each entry point takes one allocation of O(sequences × tokens) bytes (never of the logits' size) with
// cudaMallocAsync on the caller's stream, or cudaMalloc where the device has no memory pools, and gives it back in
// stream order when it returns or throws.
// @sa docs/cuda.md
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "rpo/cuda/error.cuh"

namespace rpo::cuda::detail {

/// One device allocation of `bytes`, released in stream order by the destructor.
class scratch {
 public:
  scratch(std::size_t bytes, cudaStream_t stream) : stream_(stream) {
    const std::size_t size = bytes == 0 ? 16 : bytes;
    const cudaError_t code = cudaMallocAsync(&data_, size, stream);
    if (code == cudaErrorNotSupported) {  // no memory pools on this device or driver
      (void)cudaGetLastError();
      pooled_ = false;
      RPO_CUDA_TRY(cudaMalloc(&data_, size));
    } else {
      RPO_CUDA_TRY(code);
    }
  }
  scratch(const scratch&) = delete;
  scratch& operator=(const scratch&) = delete;
  ~scratch() {
    // Errors here cannot be reported (a destructor does not throw); a sticky error shows at the caller's next call.
    if (pooled_) {
      (void)cudaFreeAsync(data_, stream_);
    } else {
      (void)cudaStreamSynchronize(stream_);
      (void)cudaFree(data_);
    }
  }
  /// The allocation at byte `offset`, as T*.
  template <class T> T* at(std::size_t offset) const noexcept {
    return reinterpret_cast<T*>(static_cast<unsigned char*>(data_) + offset);
  }

 private:
  void* data_ = nullptr;
  cudaStream_t stream_;
  bool pooled_ = true;
};

/// Bytes rounded up to a multiple of 16 (so that every part of a scratch allocation stays 16-byte aligned).
constexpr std::size_t round16(std::size_t bytes) noexcept { return (bytes + 15) / 16 * 16; }

/// A device span copied to a host vector (synchronous with respect to the host).
template <class T> std::vector<T> to_host(std::span<const T> device, cudaStream_t stream) {
  std::vector<T> host(device.size());
  if (!host.empty()) {
    RPO_CUDA_TRY(cudaMemcpyAsync(host.data(), device.data(), host.size() * sizeof(T), cudaMemcpyDeviceToHost, stream));
    RPO_CUDA_TRY(cudaStreamSynchronize(stream));
  }
  return host;
}

/// One value at device address `p`.
template <class T> T value_at(const T* p, cudaStream_t stream) {
  T value{};
  RPO_CUDA_TRY(cudaMemcpyAsync(&value, p, sizeof(T), cudaMemcpyDeviceToHost, stream));
  RPO_CUDA_TRY(cudaStreamSynchronize(stream));
  return value;
}

/// Launch configuration of a grid-stride loop over `items` blocks of work: at most 2^20 blocks.
inline unsigned grid_for(std::int64_t items) noexcept {
  constexpr std::int64_t most = std::int64_t{1} << 20;
  return static_cast<unsigned>(items < most ? items : most);
}

}  // namespace rpo::cuda::detail
