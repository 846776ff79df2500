// The GPU fused token pass (rpo/cuda/token.cuh) and the pairwise presets on device memory (rpo/cuda/pairs.cuh),
// beside a device-to-device copy measured in the same binary.
//
// Times are GPU times between two CUDA events around each call (manual timing), so the host work of a call (its one
// synchronisation, the loss on S values) is included. bytes_per_second of the fused pass counts the traffic it
// cannot avoid, three times the bytes of the logits (two reads and one write); `floor_fraction` is that traffic at
// the copy bandwidth (cudaMemcpyAsync device to device of 1 GiB, read + write counted, best of 10) over the measured
// time. Every position is a response token. The pairwise cases report pairs per second.
// Run: build/gcc/bench/rpo_bench_cuda --benchmark_counters_tabular=true   (needs a GPU; built with RPO_BUILD_CUDA)
#include <benchmark/benchmark.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <random>
#include <vector>

#include "rpo/cuda/error.cuh"
#include "rpo/cuda/pairs.cuh"
#include "rpo/cuda/token.cuh"
#include "rpo/presets.hpp"

namespace {

/// n elements of device memory.
template <class T> struct device_array {
  T* p = nullptr;
  std::size_t n = 0;
  explicit device_array(std::size_t count) : n(count) { RPO_CUDA_TRY(cudaMalloc(&p, n * sizeof(T))); }
  device_array(const device_array&) = delete;
  device_array& operator=(const device_array&) = delete;
  ~device_array() { (void)cudaFree(p); }
};

/// Seconds between two events recorded around f() on the default stream.
template <class F> double gpu_seconds(F&& f) {
  cudaEvent_t start, stop;
  RPO_CUDA_TRY(cudaEventCreate(&start));
  RPO_CUDA_TRY(cudaEventCreate(&stop));
  RPO_CUDA_TRY(cudaEventRecord(start));
  f();
  RPO_CUDA_TRY(cudaEventRecord(stop));
  RPO_CUDA_TRY(cudaEventSynchronize(stop));
  float ms = 0;
  RPO_CUDA_TRY(cudaEventElapsedTime(&ms, start, stop));
  RPO_CUDA_TRY(cudaEventDestroy(start));
  RPO_CUDA_TRY(cudaEventDestroy(stop));
  return static_cast<double>(ms) * 1e-3;
}

constexpr std::size_t copy_bytes = std::size_t{1} << 30;

/// Bytes moved per second (read + write) by a device-to-device copy of 1 GiB, best of 10, measured once.
double copy_bandwidth() {
  static const double bandwidth = [] {
    device_array<char> a(copy_bytes), b(copy_bytes);
    RPO_CUDA_TRY(cudaMemset(a.p, 1, copy_bytes));
    double best = 1e30;
    for (int i = 0; i < 10; ++i)
      best = std::min(best, gpu_seconds([&] { RPO_CUDA_TRY(cudaMemcpyAsync(b.p, a.p, copy_bytes, cudaMemcpyDeviceToDevice)); }));
    return 2.0 * static_cast<double>(copy_bytes) / best;
  }();
  return bandwidth;
}

void copy_baseline(benchmark::State& state) {
  device_array<char> a(copy_bytes), b(copy_bytes);
  RPO_CUDA_TRY(cudaMemset(a.p, 1, copy_bytes));
  for (auto _ : state)
    state.SetIterationTime(gpu_seconds([&] { RPO_CUDA_TRY(cudaMemcpyAsync(b.p, a.p, copy_bytes, cudaMemcpyDeviceToDevice)); }));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(2 * copy_bytes));
}

/// The fused pass of preset L on [sequences, tokens, vocab] logits stored as T, in place (range 3 = 1) or into a
/// buffer. Pairs of sequences (chosen, rejected).
template <class L, class T> void fused(benchmark::State& state) {
  const rpo::token_shape shape{state.range(0), state.range(1), state.range(2)};
  const bool in_place = state.range(3) != 0;
  const auto rows = static_cast<std::size_t>(shape.sequences * shape.tokens);
  const std::size_t n = rows * static_cast<std::size_t>(shape.vocab);
  std::vector<T> block(1 << 16);
  std::mt19937 rng(1);
  std::normal_distribution<float> z(0, 2);
  for (T& x : block) x = rpo::cuda::detail::from_float<T>(z(rng));
  device_array<T> logits(n), buffer(in_place ? 1 : n);
  for (std::size_t i = 0; i < n; i += block.size())
    RPO_CUDA_TRY(cudaMemcpy(logits.p + i, block.data(), std::min(block.size(), n - i) * sizeof(T), cudaMemcpyHostToDevice));
  std::vector<std::int64_t> target(rows);
  std::uniform_int_distribution<std::int64_t> id(0, shape.vocab - 1);
  for (auto& y : target) y = id(rng);
  const std::vector<float> ref(static_cast<std::size_t>(shape.sequences), -100.f);
  device_array<std::int64_t> target_d(rows);
  device_array<float> ref_d(ref.size());
  RPO_CUDA_TRY(cudaMemcpy(target_d.p, target.data(), rows * sizeof(std::int64_t), cudaMemcpyHostToDevice));
  RPO_CUDA_TRY(cudaMemcpy(ref_d.p, ref.data(), ref.size() * sizeof(float), cudaMemcpyHostToDevice));
  const rpo::cuda::token_input<T> in{.tokens = {{logits.p, n}, {target_d.p, rows}, {}, shape}, .ref_logp = {ref_d.p, ref.size()}};
  const rpo::cuda::token_output<T> out{.grad_logits = {in_place ? logits.p : buffer.p, n}};
  const L loss{};
  for (auto _ : state) {
    float value = 0;
    state.SetIterationTime(gpu_seconds([&] { value = rpo::cuda::evaluate_tokens(loss, in, out); }));
    benchmark::DoNotOptimize(value);
  }
  const double bytes = 3.0 * static_cast<double>(n * sizeof(T));
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes));
  state.counters["floor_fraction"] =
      benchmark::Counter(bytes / copy_bandwidth() * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["copy_GBps"] = copy_bandwidth() / 1e9;
}

/// rpo::cuda::evaluate_pairs of preset L on range(0) pairs of float log-probs, with both gradients.
template <class L> void pairs(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  std::vector<float> host(2 * count);
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> lp(-60, -1);
  for (float& x : host) x = lp(rng);
  device_array<float> logp(2 * count), ref(2 * count), grad(2 * count), grad_ref(2 * count), group_loss(count);
  RPO_CUDA_TRY(cudaMemcpy(logp.p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  RPO_CUDA_TRY(cudaMemcpy(ref.p, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice));
  const rpo::batch_input<float> in{.logp = {logp.p, 2 * count}, .ref_logp = {ref.p, 2 * count}};
  const rpo::batch_output<float> out{{group_loss.p, count}, {grad.p, 2 * count}, {grad_ref.p, 2 * count}};
  const L loss{};
  for (auto _ : state) {
    float value = 0;
    state.SetIterationTime(gpu_seconds([&] { value = rpo::cuda::evaluate_pairs(loss, in, out); }));
    benchmark::DoNotOptimize(value);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(count));
}

}  // namespace

BENCHMARK(copy_baseline)->Unit(benchmark::kMillisecond)->UseManualTime();
// 16 sequences x 512 tokens; args: sequences, tokens, vocab, in place.
BENCHMARK_TEMPLATE(fused, rpo::dpo, float)
    ->Name("cuda_fused/dpo/float")
    ->Args({16, 512, 32000, 1})
    ->Args({16, 512, 32000, 0})
    ->Args({16, 512, 128256, 1})
    ->Args({16, 512, 128256, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();
BENCHMARK_TEMPLATE(fused, rpo::dpo, __nv_bfloat16)
    ->Name("cuda_fused/dpo/bf16")
    ->Args({16, 512, 32000, 1})
    ->Args({16, 512, 128256, 1})
    ->Args({16, 512, 128256, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseManualTime();
BENCHMARK_TEMPLATE(pairs, rpo::dpo)->Name("cuda_pairs/dpo")->Arg(64)->Arg(4096)->Arg(1048576)->UseManualTime();
BENCHMARK_TEMPLATE(pairs, rpo::rpo_bwd)->Name("cuda_pairs/rpo_bwd")->Arg(64)->Arg(4096)->Arg(1048576)->UseManualTime();

int main(int argc, char** argv) {
  const rpo::cuda::device_probe probe = rpo::cuda::probe_device();
  if (!probe.available) {
    std::fprintf(stderr, "rpo_bench_cuda: no usable CUDA device (%s)\n", probe.reason.c_str());
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
