// tests/cuda/device.hpp — what the CUDA tests share: the skip when no device is usable, and device buffers.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <span>
#include <vector>

#include "rpo/cuda/error.cuh"

namespace test::cuda {

/// True when a CUDA device is usable. Otherwise prints the runtime's reason once, marks the run as skipped (main
/// then returns 77, CTest's SKIP_RETURN_CODE) and returns false. Defined in tests/cuda/main.cpp.
bool device_or_skip();

/// n elements of device memory, freed at the end of the scope.
template <class T> class buffer {
 public:
  explicit buffer(std::size_t n) : n_(n) { RPO_CUDA_TRY(cudaMalloc(&p_, (n == 0 ? 1 : n) * sizeof(T))); }
  explicit buffer(const std::vector<T>& host) : buffer(host.size()) { upload(host); }
  buffer(const buffer&) = delete;
  buffer& operator=(const buffer&) = delete;
  ~buffer() { (void)cudaFree(p_); }

  void upload(const std::vector<T>& host) {
    if (!host.empty()) RPO_CUDA_TRY(cudaMemcpy(p_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    if (n_ > 0) RPO_CUDA_TRY(cudaMemcpy(host.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  T* data() const noexcept { return p_; }
  std::span<T> span() const noexcept { return {p_, n_}; }
  std::span<const T> cspan() const noexcept { return {p_, n_}; }

 private:
  T* p_ = nullptr;
  std::size_t n_;
};

}  // namespace test::cuda

/// Ends the current test case (as skipped) when no CUDA device is usable.
#define RPO_REQUIRE_DEVICE()                           \
  do {                                                 \
    if (!::test::cuda::device_or_skip()) return;       \
  } while (false)
