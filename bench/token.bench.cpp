// The fused logits → loss → ∂loss/∂logits pass (rpo/token.hpp) at training shapes, beside the streaming floor
// measured in the same binary.
//
// bytes_per_second counts the traffic the pass cannot avoid: three times the bytes of the logits (two reads and
// one write). The floor is that traffic at the copy bandwidth measured here (a parallel memcpy of a buffer larger
// than the caches, counting its read and its write), and `floor_fraction` = floor time / measured time. Every
// position is a response token (mask all ones): no row is skipped. Threads: OpenMP's default (OMP_NUM_THREADS).
// Run: build/gcc/bench/rpo_bench_token --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "memory.hpp"
#include "rpo/presets.hpp"
#include "rpo/token.hpp"

namespace {

/// A buffer of n values on huge pages (bench/memory.hpp), touched (so its pages exist) with reproducible normal
/// logits.
template <class T> auto random_logits(std::size_t n) {
  auto p = bench::huge_array<T>(n);
  std::mt19937 rng(1);
  std::normal_distribution<float> z(0, 2);
  std::vector<T> block(4096);
  for (T& x : block) x = static_cast<T>(z(rng));
  for (std::size_t i = 0; i < n; i += block.size())
    std::memcpy(p.get() + i, block.data(), std::min(block.size(), n - i) * sizeof(T));
  return p;
}

using bench::copy_bytes;
using bench::parallel_copy;
using bench::thread_count;

/// The copy bandwidth of bench::copy_bandwidth, measured once for the whole binary.
double copy_bandwidth() {
  static const double bandwidth = bench::copy_bandwidth();
  return bandwidth;
}

/// The baseline: parallel memcpy of 1 GiB; bytes_per_second counts the read and the write.
void copy_baseline(benchmark::State& state) {
  auto a = bench::huge_array<char>(copy_bytes), b = bench::huge_array<char>(copy_bytes);
  std::memset(a.get(), 1, copy_bytes);
  std::memset(b.get(), 2, copy_bytes);
  for (auto _ : state) {
    parallel_copy(b.get(), a.get(), copy_bytes);
    benchmark::DoNotOptimize(b.get());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * copy_bytes));
  state.counters["threads"] = thread_count();
}

/// The fused pass of preset L on [sequences, tokens, vocab] logits of T: in place (range 3 = 1) or into a
/// caller buffer. Pairs of sequences (chosen, rejected).
template <class L, class T> void fused(benchmark::State& state) {
  const rpo::token_shape shape{state.range(0), state.range(1), state.range(2)};
  const bool in_place = state.range(3) != 0;
  const auto rows = static_cast<std::size_t>(shape.sequences * shape.tokens);
  const std::size_t n = rows * static_cast<std::size_t>(shape.vocab);
  auto logits = random_logits<T>(n);
  auto buffer = bench::huge_array<T>(in_place ? 0 : n);
  T* grad = in_place ? logits.get() : buffer.get();
  if (!in_place) std::memset(grad, 0, n * sizeof(T));
  std::vector<std::int64_t> target(rows);
  std::mt19937_64 rng(2);
  std::uniform_int_distribution<std::int64_t> id(0, shape.vocab - 1);
  for (auto& y : target) y = id(rng);
  std::vector<std::uint8_t> mask(rows, 1);
  std::vector<T> ref(static_cast<std::size_t>(shape.sequences), T(-100)), reward(ref.size(), T(0));
  for (std::size_t i = 0; i < reward.size(); ++i) reward[i] = static_cast<T>(i % 2 == 0 ? 1 : 0);
  const rpo::token_input<T> in{.tokens = {{logits.get(), n}, target, mask, shape}, .ref_logp = ref, .reward = reward};
  const rpo::token_output<T> out{.grad_logits = {grad, n}};
  const L loss{};
  // One untimed call first, and each case runs for at least 3 s (MinTime below): the first passes over a fresh
  // multi-GiB buffer run up to 30% slower (the kernel's page handling; measured at V = 128256, 307 ms over 2
  // iterations against 232 ms over 14).
  benchmark::DoNotOptimize(rpo::evaluate_tokens(loss, in, out));
  for (auto _ : state) {
    const T value = rpo::evaluate_tokens(loss, in, out);
    benchmark::DoNotOptimize(value);
    benchmark::ClobberMemory();
  }
  const double bytes = 3.0 * static_cast<double>(n * sizeof(T));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["floor_fraction"] = benchmark::Counter(bytes / copy_bandwidth() * static_cast<double>(state.iterations()),
                                                        benchmark::Counter::kIsRate);
  state.counters["copy_GBps"] = copy_bandwidth() / 1e9;
  state.counters["threads"] = thread_count();
}

}  // namespace

BENCHMARK(copy_baseline)->Unit(benchmark::kMillisecond)->UseRealTime();
// 16 sequences x 512 tokens; args: sequences, tokens, vocab, in place.
BENCHMARK_TEMPLATE(fused, rpo::dpo, float)
    ->Name("fused/dpo/float")
    ->Args({16, 512, 32000, 1})
    ->Args({16, 512, 32000, 0})
    ->Args({16, 512, 128256, 1})
    ->MinTime(3.0)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_TEMPLATE(fused, rpo::simpo, float)->Name("fused/simpo/float")->Args({16, 512, 32000, 1})->MinTime(3.0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(fused, rpo::rpo_bwd, float)->Name("fused/rpo_bwd/float")->Args({16, 512, 32000, 1})->MinTime(3.0)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_TEMPLATE(fused, rpo::dpo, double)->Name("fused/dpo/double")->Args({16, 512, 32000, 1})->MinTime(3.0)->Unit(benchmark::kMillisecond)->UseRealTime();

BENCHMARK_MAIN();
