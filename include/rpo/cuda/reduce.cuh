// rpo/cuda/reduce.cuh — deterministic block reductions shared by the CUDA kernels.
//
// Public names: none (rpo::cuda::detail only).
// Every reduction runs in a fixed order (a butterfly over the lanes of each warp, then over the warps of the block),
// so a result does not depend on timing: the same input gives the same bits on every run. No float atomics.
// @sa docs/cuda.md
#pragma once

#include <cuda_runtime.h>

#include <cmath>

namespace rpo::cuda::detail {

/// Threads per block of every rpo kernel.
inline constexpr int block_threads = 256;
inline constexpr int block_warps = block_threads / 32;

/// The running pair of an online logsumexp: the max m seen so far and s = Σ e^{x − m} (the stable form of
/// STYLE.md §4.5). A NaN anywhere ends in s (and so in the logsumexp); m never becomes NaN.
struct max_sum {
  float m = -INFINITY;
  float s = 0.f;
};

/// Adds N values: their max first, the running sum rescaled by e^{m_old − m_new} when it grows, then Σ e^{x − m}.
/// An x of −inf adds 0 (also while m is still −inf, where e^{x − m} would be e^{NaN}).
template <int N> __device__ inline void absorb(max_sum& a, const float (&x)[N]) noexcept {
  float m = a.m;
#pragma unroll
  for (int i = 0; i < N; ++i) m = x[i] > m ? x[i] : m;
  if (m > a.m) {
    a.s *= expf(a.m - m);
    a.m = m;
  }
  float add = 0.f;
#pragma unroll
  for (int i = 0; i < N; ++i) add += x[i] == -INFINITY ? 0.f : expf(x[i] - a.m);
  a.s += add;
}

/// Merges two running pairs: (m, s) ⊕ (m', s') = (M, s·e^{m−M} + s'·e^{m'−M}), M = max(m, m'), with factor 1 where
/// a max equals M (so that −inf with −inf and +inf with +inf do not make e^{NaN}).
__device__ inline max_sum merge(max_sum a, max_sum b) noexcept {
  const float m = b.m > a.m ? b.m : a.m;
  const float fa = a.m == m ? 1.f : expf(a.m - m);
  const float fb = b.m == m ? 1.f : expf(b.m - m);
  return {m, a.s * fa + b.s * fb};
}

/// The merge over all lanes of a warp (butterfly: every lane ends with the result).
__device__ inline max_sum warp_merge(max_sum a) noexcept {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) {
    const max_sum b{__shfl_xor_sync(0xffffffffu, a.m, offset), __shfl_xor_sync(0xffffffffu, a.s, offset)};
    a = merge(a, b);
  }
  return a;
}

/// The merge over the block; thread 0 gets the result. Every thread of the block must call it (it synchronises),
/// and it may be called again at once (it synchronises before reusing `shared`).
__device__ inline max_sum block_merge(max_sum a, max_sum (&shared)[block_warps]) noexcept {
  a = warp_merge(a);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  __syncthreads();  // a previous call's readers are done with `shared`
  if (lane == 0) shared[warp] = a;
  __syncthreads();
  if (warp == 0) a = warp_merge(lane < block_warps ? shared[lane] : max_sum{});
  return a;
}

/// The sum over all lanes of a warp (butterfly), for double or integer values.
template <class V> __device__ inline V warp_sum(V x) noexcept {
#pragma unroll
  for (int offset = 16; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

/// The sum over the block in a fixed order; thread 0 gets the result. Called by every thread of the block.
template <class V> __device__ inline V block_sum(V x, V (&shared)[block_warps]) noexcept {
  x = warp_sum(x);
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  __syncthreads();
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  if (warp == 0) x = warp_sum(lane < block_warps ? shared[lane] : V(0));
  return x;
}

/// "No row": the initial value of an error flag that kernels lower with atomicMin to the first bad index.
inline constexpr unsigned long long no_index = ~0ull;

}  // namespace rpo::cuda::detail
