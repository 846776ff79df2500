// bench/huge_pages.hpp — the large buffers of the token benchmarks (logits, gradient, the copy floor's two buffers) on
// transparent huge pages where Linux offers them on request (madvise), as numpy's large arrays are. The fused pass
// streams GiBs: with 4 KiB pages, TLB misses cost it about a fifth of its time on a 2-core Xeon (0.119 against 0.090 s
// at 16 x 512 x 32000 through Python, numpy's huge pages off and on). The floor's buffers get the same pages, so that
// the ratio compares like with like.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>

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

}  // namespace bench
