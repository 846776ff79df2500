// rpo/cuda/storage.cuh — the element types the CUDA kernels read logits in, and how they load and store them.
//
// Public names: rpo::cuda::Storage.
// Logits live in float, __half or __nv_bfloat16; every kernel converts to float on load and accumulates in float
// (sums over tokens in double), and rounds to the storage type (round to nearest even) only when it writes a
// gradient. Rows are read and written 16 bytes at a time (4 floats or 8 halves) from the first 16-byte boundary of
// the row on; the elements before it and after the last whole vector go one at a time.
// @sa docs/cuda.md#storage
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <concepts>
#include <cstdint>
#include <cstring>

namespace rpo::cuda {

/// A storage type of logits and their gradient on the device: float, __half or __nv_bfloat16.
/// @sa docs/cuda.md#storage
template <class T>
concept Storage = std::same_as<T, float> || std::same_as<T, __half> || std::same_as<T, __nv_bfloat16>;

namespace detail {

__host__ __device__ inline float to_float(float x) noexcept { return x; }
__host__ __device__ inline float to_float(__half x) noexcept { return __half2float(x); }
__host__ __device__ inline float to_float(__nv_bfloat16 x) noexcept { return __bfloat162float(x); }

/// x rounded to the storage type T (round to nearest even).
template <Storage T> __host__ __device__ inline T from_float(float x) noexcept {
  if constexpr (std::same_as<T, float>) {
    return x;
  } else if constexpr (std::same_as<T, __half>) {
    return __float2half_rn(x);
  } else {
    return __float2bfloat16_rn(x);
  }
}

/// Elements of T in one 16-byte vector.
template <Storage T> inline constexpr int lanes = static_cast<int>(16 / sizeof(T));

/// The number of elements before the first 16-byte boundary at or after `p`, at most `n`. `p` must be aligned to
/// sizeof(T) (the entry points check it).
template <Storage T> __host__ __device__ inline std::int64_t head_length(const T* p, std::int64_t n) noexcept {
  const auto misaligned = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(p) % 16);
  const std::int64_t head = misaligned == 0 ? 0 : (16 - misaligned) / static_cast<std::int64_t>(sizeof(T));
  return head < n ? head : n;
}

/// Loads lanes<T> elements from a 16-byte aligned address, as floats.
template <Storage T> __device__ inline void load_vector(const T* p, float (&out)[lanes<T>]) noexcept {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);
  T values[lanes<T>];
  static_assert(sizeof(values) == sizeof(raw));
  std::memcpy(&values, &raw, sizeof(raw));
#pragma unroll
  for (int i = 0; i < lanes<T>; ++i) out[i] = to_float(values[i]);
}

/// Stores lanes<T> floats, rounded to T, at a 16-byte aligned address.
template <Storage T> __device__ inline void store_vector(T* p, const float (&in)[lanes<T>]) noexcept {
  T values[lanes<T>];
#pragma unroll
  for (int i = 0; i < lanes<T>; ++i) values[i] = from_float<T>(in[i]);
  uint4 raw;
  static_assert(sizeof(values) == sizeof(raw));
  std::memcpy(&raw, &values, sizeof(raw));
  *reinterpret_cast<uint4*>(p) = raw;
}

}  // namespace detail
}  // namespace rpo::cuda
