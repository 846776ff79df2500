// Data parallelism with MPI: a batch of groups split across ranks gives the single-process loss and gradient.
//
//   mpirun -np 2 build/gcc/examples/rpo_example_mpi_data_parallel
//
// Every rank builds the same batch (from one seed), evaluates its own block of groups with
// rpo::reduction::sum_over(G), where G counts the groups of the *whole* batch, and MPI_Allreduce adds the
// per-rank losses. Each rank's gradient entries are already those of the whole-batch mean (docs/batch.md): rank 0
// gathers them and compares both with a single-process rpo::evaluate over the whole batch. Exit code 1 on a
// difference beyond 1e-12.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <random>
#include <span>
#include <vector>

#include <rpo.hpp>

namespace {

/// The whole batch: G groups of 2 to 6 responses (ragged), the same on every rank.
struct batch {
  std::vector<double> logp, ref_logp, reward;
  std::vector<std::int64_t> offsets{0};

  explicit batch(int groups, unsigned seed) {
    std::mt19937_64 rng(seed);
    std::uniform_int_distribution<int> size(2, 6);
    std::uniform_real_distribution<double> lp(-200, -5), shift(-8, 8), r(-3, 3);
    for (int g = 0; g < groups; ++g) {
      const int k = size(rng);
      for (int i = 0; i < k; ++i) {
        logp.push_back(lp(rng));
        ref_logp.push_back(logp.back() + shift(rng));
        reward.push_back(r(rng));
      }
      offsets.push_back(static_cast<std::int64_t>(logp.size()));
    }
  }
};

}  // namespace

/// Splits, evaluates, reduces and compares; returns the exit status (the same on every rank).
int run(int rank, int ranks) {
  const rpo::rpo_softmax_bwd loss{.beta = 0.2, .eta = 1.0};  // the official multi-response RPO
  const int groups = 101;  // not a multiple of the rank count: the blocks differ in size
  const batch whole(groups, 2026);

  // This rank's block of groups [g0, g1) and its responses [first, last).
  const int g0 = groups * rank / ranks, g1 = groups * (rank + 1) / ranks;
  const std::int64_t first = whole.offsets[static_cast<std::size_t>(g0)];
  const std::int64_t last = whole.offsets[static_cast<std::size_t>(g1)];
  const auto n = static_cast<std::size_t>(last - first);
  const auto part = [&](const std::vector<double>& v) { return std::span<const double>(v).subspan(static_cast<std::size_t>(first), n); };
  std::vector<std::int64_t> offsets;
  for (int g = g0; g <= g1; ++g) offsets.push_back(whole.offsets[static_cast<std::size_t>(g)] - first);

  // Local loss with the global count, then the sum over ranks: the whole batch's mean.
  std::vector<double> grad(n);
  const double local = rpo::evaluate(
      loss, rpo::batch_input<double>{part(whole.logp), part(whole.ref_logp), {}, part(whole.reward), offsets},
      rpo::batch_output<double>{.grad_logp = grad}, rpo::reduction::sum_over(groups));
  double total = 0;
  MPI_Allreduce(&local, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);

  // Rank 0 gathers the gradient blocks in rank order, which is response order.
  const int count = static_cast<int>(n);
  std::vector<int> counts(static_cast<std::size_t>(ranks)), displacements(static_cast<std::size_t>(ranks));
  MPI_Gather(&count, 1, MPI_INT, counts.data(), 1, MPI_INT, 0, MPI_COMM_WORLD);
  for (std::size_t r = 1; r < counts.size(); ++r) displacements[r] = displacements[r - 1] + counts[r - 1];
  std::vector<double> gathered(rank == 0 ? whole.logp.size() : 0);
  MPI_Gatherv(grad.data(), count, MPI_DOUBLE, gathered.data(), counts.data(), displacements.data(), MPI_DOUBLE, 0,
              MPI_COMM_WORLD);

  int status = 0;
  if (rank == 0) {
    std::vector<double> expected_grad(whole.logp.size());
    const double expected = rpo::evaluate(
        loss, rpo::batch_input<double>{whole.logp, whole.ref_logp, {}, whole.reward, whole.offsets},
        rpo::batch_output<double>{.grad_logp = expected_grad}, rpo::reduction::mean());
    double worst = std::abs(total - expected) / std::abs(expected);
    for (std::size_t i = 0; i < gathered.size(); ++i)
      worst = std::max(worst, std::abs(gathered[i] - expected_grad[i]) / std::max(std::abs(expected_grad[i]), 1e-300));
    std::printf("%d ranks, %d groups, %zu responses: loss %.15f (one process %.15f)\n", ranks, groups,
                whole.logp.size(), total, expected);
    std::printf("largest relative difference, loss and every gradient entry: %.3g\n", worst);
    status = worst <= 1e-12 ? 0 : 1;
    if (status != 0) std::printf("FAILED: the split batch differs from the whole batch by more than 1e-12\n");
  }
  MPI_Bcast(&status, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return status;
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  int status = 2;
  try {
    status = run(rank, ranks);
  } catch (const std::exception& e) {  // bad input: say why, and stop every rank
    std::fprintf(stderr, "rank %d: %s\n", rank, e.what());
    MPI_Abort(MPI_COMM_WORLD, 2);
  }
  MPI_Finalize();
  return status;
}
