// Pairwise presets over batches of 64, 4096 and 1,048,576 pairs (items = pairs), beside a baseline that only streams
// the same bytes (reads the inputs, writes the gradient) in the same binary:
//   checked/<preset>, unchecked/<preset>   the ten core presets as static types, with and without the input checks;
//   spec/<name>                            every registered loss that takes pairs (rpo::registered_losses, so each
//                                          preset added to the registry is measured), through rpo::any_loss: the
//                                          same compiled composition behind one virtual call per batch, checked.
// Run: build/gcc/bench/rpo_bench_presets --benchmark_counters_tabular=true [--benchmark_filter=spec/]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstddef>
#include <random>
#include <string>
#include <vector>

#include "rpo.hpp"
#include "rpo/spec.hpp"

namespace {

struct batch {
  std::vector<double> logp, ref_logp, length, reward, grad, grad_ref;
  explicit batch(std::size_t pairs) {
    std::mt19937_64 rng(1);
    std::uniform_real_distribution<double> lp(-200, -5), shift(-10, 10), len(1, 200), rw(-3, 3), above(0.01, 3);
    for (std::size_t i = 0; i < 2 * pairs; ++i) {
      logp.push_back(lp(rng));
      ref_logp.push_back(logp.back() + shift(rng));
      length.push_back(std::round(len(rng)));
      reward.push_back(rw(rng));
    }
    for (std::size_t i = 0; i < 2 * pairs; i += 2) reward[i] = reward[i + 1] + above(rng);  // r_c > r_r (ODPO)
    grad.resize(logp.size());
    grad_ref.resize(logp.size());
  }
};

template <class Preset, class Policy> void preset(benchmark::State& state) {
  const auto pairs = static_cast<std::size_t>(state.range(0));
  batch b(pairs);
  const Preset loss{};
  for (auto _ : state) {
    const double value = rpo::evaluate(loss, {.logp = b.logp, .ref_logp = b.ref_logp, .length = b.length, .reward = b.reward},
                                       {.grad_logp = b.grad, .grad_ref_logp = b.grad_ref}, rpo::reduction::mean(), Policy{});
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(b.grad.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(pairs));
}

void registered(benchmark::State& state, const rpo::any_loss& loss) {
  const auto pairs = static_cast<std::size_t>(state.range(0));
  batch b(pairs);
  if (loss.reward_is_probability())  // win probabilities (sppo_soft): σ(r) ∈ (0, 1), in the same order
    for (double& r : b.reward) r = 1 / (1 + std::exp(-r));
  for (auto _ : state) {
    const double value = loss.evaluate(rpo::batch_input<double>{.logp = b.logp, .ref_logp = b.ref_logp,
                                                                .length = b.length, .reward = b.reward},
                                       {.grad_logp = b.grad, .grad_ref_logp = b.grad_ref});
    benchmark::DoNotOptimize(value);
    benchmark::DoNotOptimize(b.grad.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(pairs));
}

// The streaming floor for the same traffic: read four inputs per response, write two gradients.
void stream_baseline(benchmark::State& state) {
  const auto pairs = static_cast<std::size_t>(state.range(0));
  batch b(pairs);
  for (auto _ : state) {
    double sum = 0;
    for (std::size_t i = 0; i < b.logp.size(); ++i) {
      const double x = b.logp[i] - b.ref_logp[i] + b.length[i] * b.reward[i];
      b.grad[i] = x;
      b.grad_ref[i] = -x;
      sum += x;
    }
    benchmark::DoNotOptimize(sum);
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<benchmark::IterationCount>(pairs));
}

}  // namespace

#define RPO_BENCH_PRESET(P)                                                                               \
  BENCHMARK_TEMPLATE(preset, rpo::P, rpo::errors::throw_on_error)->Name("checked/" #P)->Arg(64)->Arg(4096)->Arg(1 << 20); \
  BENCHMARK_TEMPLATE(preset, rpo::P, rpo::errors::unchecked)->Name("unchecked/" #P)->Arg(64)->Arg(4096)->Arg(1 << 20)

BENCHMARK(stream_baseline)->Arg(64)->Arg(4096)->Arg(1 << 20);
RPO_BENCH_PRESET(dpo);
RPO_BENCH_PRESET(cdpo);
RPO_BENCH_PRESET(ipo);
RPO_BENCH_PRESET(ipo_normalized);
RPO_BENCH_PRESET(simpo);
RPO_BENCH_PRESET(hinge);
RPO_BENCH_PRESET(dpo_normalized);
RPO_BENCH_PRESET(rpo_sq);
RPO_BENCH_PRESET(rpo_fwd);
RPO_BENCH_PRESET(rpo_bwd);

int main(int argc, char** argv) {
  for (const rpo::loss_info& info : rpo::registered_losses()) {
    if (info.name == "rpo") continue;
    const rpo::any_loss loss = rpo::parse_loss(info.name);
    if (loss.group_size() != 2) continue;  // the K-response schemes take offsets
    benchmark::RegisterBenchmark(("spec/" + info.name).c_str(), registered, loss)->Arg(64)->Arg(4096)->Arg(1 << 20);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
