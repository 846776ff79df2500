// bench/memory.hpp — the memory side of the token benchmarks (rpo_bench_token, rpo_torch_driver): their large
// buffers (logits, gradient, the copy floor's two buffers) on transparent huge pages where Linux offers them on request
// (madvise), as numpy's large arrays are, and the copy floor itself, a memcpy split over the threads. The fused pass
// streams GiBs: with 4 KiB pages, TLB misses cost it about a fifth of its time on a 2-core Xeon (0.119 against 0.090 s
// at 16 x 512 x 32000 through Python, numpy's huge pages off and on). The floor's buffers get the same pages, so that
// the ratio compares like with like.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

#if defined(_OPENMP)
#  include <omp.h>
#endif

#if defined(__linux__)
#  include <sys/mman.h>
#endif

namespace bench {

struct free_deleter {
  void operator()(void* p) const noexcept { std::free(p); }
};

/// n uninitialised values of T, 2 MiB aligned, advised to be backed by huge pages (a no-op where there are none).
template <class T> std::unique_ptr<T[], free_deleter> huge_array(std::size_t n) {
  constexpr std::size_t page = std::size_t{2} << 20;
  const std::size_t bytes = (n * sizeof(T) + page - 1) / page * page;
  void* p = std::aligned_alloc(page, bytes == 0 ? page : bytes);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  madvise(p, bytes, MADV_HUGEPAGE);  // advice: its failure leaves ordinary pages
#endif
  return std::unique_ptr<T[], free_deleter>(static_cast<T*>(p));
}

/// The threads OpenMP will use (OMP_NUM_THREADS), or 1 without OpenMP.
inline int thread_count() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// memcpy split across the threads, as the fused pass splits its rows.
inline void parallel_copy(char* dst, const char* src, std::size_t bytes) {
  const auto threads = static_cast<std::int64_t>(thread_count());
  const std::size_t chunk = (bytes / static_cast<std::size_t>(threads) + 63) / 64 * 64;
#if defined(_OPENMP)
#  pragma omp parallel for schedule(static)
#endif
  for (std::int64_t t = 0; t < threads; ++t) {
    const std::size_t first = static_cast<std::size_t>(t) * chunk;
    if (first < bytes) std::memcpy(dst + first, src + first, std::min(chunk, bytes - first));
  }
}

/// The copy floor's size: 1 GiB, far beyond the caches.
inline constexpr std::size_t copy_bytes = std::size_t{1} << 30;

/// Bytes moved per second (read + write) by parallel_copy over copy_bytes on huge pages, the best of 5.
inline double copy_bandwidth() {
  auto a = huge_array<char>(copy_bytes), b = huge_array<char>(copy_bytes);
  std::memset(a.get(), 1, copy_bytes);
  std::memset(b.get(), 2, copy_bytes);
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_copy(b.get(), a.get(), copy_bytes);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  volatile char sink = b[copy_bytes / 2];  // the copies are read: none may be dropped
  (void)sink;
  return 2.0 * static_cast<double>(copy_bytes) / best;
}

}  // namespace bench
