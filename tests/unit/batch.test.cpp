// Batches (rpo/batch.hpp) and the Eigen and xtensor adaptors: the same per-group losses and gradients as the pair
// entry point, exact reductions, micro-batch splits that add up to the whole batch.
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#if defined(_OPENMP)
#  include <omp.h>
#endif

#include <xtensor/xview.hpp>

#include "rpo.hpp"
#include "rpo/eigen.hpp"
#include "rpo/xtensor.hpp"
#include "support/close.hpp"

namespace {

/// A random batch of `pairs` pairs, chosen and rejected interleaved, every field filled.
struct batch_data {
  std::vector<double> logp, ref_logp, length, reward;
  explicit batch_data(std::size_t pairs, unsigned seed = 47) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> lp(-200, -5), shift(-30, 30), len(1, 150), rw(-4, 4);
    for (std::size_t i = 0; i < 2 * pairs; ++i) {
      logp.push_back(lp(rng));
      ref_logp.push_back(logp.back() + shift(rng));
      length.push_back(std::round(len(rng)));
      reward.push_back(rw(rng));
    }
  }
  rpo::batch_input<double> input() const { return {.logp = logp, .ref_logp = ref_logp, .length = length, .reward = reward}; }
  rpo::pair_input<double> pair(std::size_t g) const {
    return {.logp = {logp[2 * g], logp[2 * g + 1]}, .ref_logp = {ref_logp[2 * g], ref_logp[2 * g + 1]},
            .length = {length[2 * g], length[2 * g + 1]}, .reward = {reward[2 * g], reward[2 * g + 1]}};
  }
};

}  // namespace

TEST_SUITE("batch") {
  // DPO and SimPO take the pair blocks (docs/batch.md#pair_blocks), whose vector exp and log1p differ from the C
  // library's, which rpo::value_and_grad's one-pair kernel calls, by a few ulp: 4e-15 relative.
  TEST_CASE_TEMPLATE("each group's loss and gradient equal the pair entry point's: mean and sum scale them", P, rpo::dpo,
                     rpo::simpo, rpo::ipo_normalized, rpo::rpo_bwd, rpo::rpo_sq) {
    const batch_data data(37);
    const std::size_t n = data.logp.size(), groups = n / 2;
    std::vector<double> losses(groups), grad(n), grad_ref(n);
    const P preset{};
    const double mean = rpo::evaluate(preset, data.input(), {.group_loss = losses, .grad_logp = grad, .grad_ref_logp = grad_ref});
    double total = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      const auto r = rpo::value_and_grad(preset, data.pair(g));
      total += r.loss;
      CHECK_CLOSE(losses[g], r.loss, 4e-15, 0);
      for (std::size_t i = 0; i < 2; ++i) {
        CHECK_CLOSE(grad[2 * g + i], r.grad_logp[i] / static_cast<double>(groups), 4e-15, 0);
        CHECK_CLOSE(grad_ref[2 * g + i], r.grad_ref_logp[i] / static_cast<double>(groups), 4e-15, 0);
      }
    }
    CHECK_CLOSE(mean, total / static_cast<double>(groups), 1e-14, 0);

    const double sum = rpo::evaluate(preset, data.input(), {.grad_logp = grad}, rpo::reduction::sum());
    CHECK_CLOSE(sum, total, 1e-14, 0);
    CHECK_CLOSE(grad[3], rpo::value_and_grad(preset, data.pair(1)).grad_logp[1], 4e-15, 0);
  }

  TEST_CASE("micro-batches reduced with sum_over(global count) add up to the whole batch's mean, to 1e-12") {
    const batch_data data(40);
    const std::size_t n = data.logp.size();
    std::vector<double> whole(n), parts(n);
    const double mean = rpo::evaluate(rpo::rpo_fwd{}, data.input(), {.grad_logp = whole});
    double accumulated = 0;
    for (std::size_t start : {0u, 14u, 52u}) {  // micro-batches of 7, 19 and 14 pairs
      const std::size_t end = start == 0 ? 14 : start == 14 ? 52 : n;
      const auto slice = [&](const std::vector<double>& v) { return std::span<const double>(v).subspan(start, end - start); };
      accumulated += rpo::evaluate(rpo::rpo_fwd{},
                                   {.logp = slice(data.logp), .ref_logp = slice(data.ref_logp), .reward = slice(data.reward)},
                                   {.grad_logp = std::span<double>(parts).subspan(start, end - start)},
                                   rpo::reduction::sum_over(40));
    }
    CHECK_CLOSE(accumulated, mean, 1e-12, 0);
    for (std::size_t i = 0; i < n; ++i) CHECK_CLOSE(parts[i], whole[i], 1e-12, 0);
  }

  TEST_CASE("a batch of many chunks: each group's loss and gradient are the pair entry point's, the same bits on 1 and 2 "
            "threads") {
    // 5 chunks of rpo::detail::groups_per_chunk pairs, the last one partial; the reduced loss against a long double
    // sum of the pair entry point's losses, the gradients against its gradients scaled by 1/G (to a few ulp: DPO takes
    // the pair blocks, docs/batch.md#pair_blocks).
    const std::size_t groups = 4 * rpo::detail::groups_per_chunk + 77;
    const batch_data data(groups, 5);
    const std::size_t n = data.logp.size();
    const auto run = [&](int threads, std::vector<double>& losses, std::vector<double>& grad) {
#if defined(_OPENMP)
      omp_set_num_threads(threads);
#else
      (void)threads;
#endif
      losses.assign(groups, 0);
      grad.assign(n, 0);
      return rpo::evaluate(rpo::dpo{}, data.input(), {.group_loss = losses, .grad_logp = grad});
    };
    std::vector<double> losses1, grad1, losses2, grad2;
    const double one = run(1, losses1, grad1), two = run(2, losses2, grad2);
    CHECK(one == two);
    CHECK(losses1 == losses2);
    CHECK(grad1 == grad2);
    long double total = 0;
    for (std::size_t g = 0; g < groups; ++g) {
      const auto r = rpo::value_and_grad(rpo::dpo{}, data.pair(g));
      total += static_cast<long double>(r.loss);
      CHECK_CLOSE(losses2[g], r.loss, 4e-15, 0);
      for (std::size_t i = 0; i < 2; ++i)
        CHECK_CLOSE(grad2[2 * g + i], r.grad_logp[i] * (1.0 / static_cast<double>(groups)), 4e-15, 0);
    }
    CHECK_CLOSE(two, static_cast<double>(total / groups), 1e-14, 0);

    // Groups of varying size by offsets (sizes 2, 3, 4, ...), over several chunks: sum reduction, unscaled gradients.
    std::vector<std::int64_t> offsets{0};
    while (offsets.back() + 2 + static_cast<std::int64_t>(offsets.size() % 3) <= static_cast<std::int64_t>(n))
      offsets.push_back(offsets.back() + 2 + static_cast<std::int64_t>(offsets.size() % 3));
    const auto used = static_cast<std::size_t>(offsets.back());
    const auto first = [&](const std::vector<double>& v) { return std::span<const double>(v).first(used); };
    const rpo::batch_input<double> grouped{.logp = first(data.logp), .ref_logp = first(data.ref_logp),
                                           .reward = first(data.reward), .offsets = offsets};
    const auto run_grouped = [&](int threads, std::vector<double>& grad) {
#if defined(_OPENMP)
      omp_set_num_threads(threads);
#else
      (void)threads;
#endif
      grad.assign(used, 0);
      return rpo::evaluate(rpo::rpo_sqloo{}, grouped, {.grad_logp = grad}, rpo::reduction::sum());
    };
    std::vector<double> g1, g2;
    CHECK(run_grouped(1, g1) == run_grouped(2, g2));
    CHECK(g1 == g2);
    std::vector<double> local(4);
    for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
      const auto b = static_cast<std::size_t>(offsets[g]), k = static_cast<std::size_t>(offsets[g + 1]) - b;
      const auto part = [&](const std::vector<double>& v) { return std::span<const double>(v).subspan(b, k); };
      const std::int64_t one_group[] = {0, static_cast<std::int64_t>(k)};
      rpo::evaluate(rpo::rpo_sqloo{},
                    {.logp = part(data.logp), .ref_logp = part(data.ref_logp), .reward = part(data.reward), .offsets = one_group},
                    {.grad_logp = std::span<double>(local).first(k)}, rpo::reduction::sum());
      for (std::size_t i = 0; i < k; ++i) CHECK(g2[b + i] == local[i]);
    }
  }

  TEST_CASE("explicit offsets of size 2 give the same result as consecutive pairs") {
    const batch_data data(9);
    std::vector<std::int64_t> offsets;
    for (std::int64_t i = 0; i <= 18; i += 2) offsets.push_back(i);
    std::vector<double> g1(18), g2(18);
    auto with_offsets = data.input();
    with_offsets.offsets = offsets;
    CHECK(rpo::evaluate(rpo::cdpo{}, data.input(), {.grad_logp = g1}) ==
          rpo::evaluate(rpo::cdpo{}, with_offsets, {.grad_logp = g2}));
    CHECK(g1 == g2);
  }

  TEST_CASE("float batches are reduced in double, and agree with the double batch to float precision") {
    const batch_data data(5000);
    std::vector<float> lp(data.logp.begin(), data.logp.end()), ref(data.ref_logp.begin(), data.ref_logp.end());
    std::vector<float> grad_f(lp.size());
    std::vector<double> lp_d(lp.begin(), lp.end()), ref_d(ref.begin(), ref.end()), grad_d(lp.size());
    const float loss_f = rpo::evaluate(rpo::dpo{}, rpo::batch_input<float>{.logp = lp, .ref_logp = ref},
                                       rpo::batch_output<float>{.grad_logp = grad_f});
    const double loss_d = rpo::evaluate(rpo::dpo{}, {.logp = lp_d, .ref_logp = ref_d}, {.grad_logp = grad_d});
    CHECK_CLOSE(loss_f, loss_d, 2e-6, 0);
    for (std::size_t i = 0; i < lp.size(); i += 97) CHECK_CLOSE(grad_f[i], grad_d[i], 1e-5, 1e-12);
  }

  TEST_CASE("Eigen arrays, vectors and expressions give the span results") {
    const batch_data data(12);
    const auto n = static_cast<Eigen::Index>(data.logp.size());
    const Eigen::Map<const Eigen::ArrayXd> lp(data.logp.data(), n), ref(data.ref_logp.data(), n),
        rw(data.reward.data(), n);
    std::vector<double> losses(12), grad(data.logp.size()), grad_ref(data.logp.size());
    const double expected = rpo::evaluate(rpo::rpo_bwd{}, data.input(),
                                          {.group_loss = losses, .grad_logp = grad, .grad_ref_logp = grad_ref});

    const Eigen::ArrayXd lp_array = lp;
    const Eigen::VectorXd ref_vector = ref.matrix();
    // rw * 1.0 is a lazy expression: the column evaluates it once.
    const auto r = rpo::eigen::evaluate(rpo::rpo_bwd{}, {.logp = lp_array, .ref_logp = ref_vector, .reward = rw * 1.0});
    CHECK(r.loss == expected);
    REQUIRE(r.group_loss.size() == 12);
    for (Eigen::Index i = 0; i < n; ++i) {
      CHECK(r.grad_logp(i) == grad[static_cast<std::size_t>(i)]);
      CHECK(r.grad_ref_logp(i) == grad_ref[static_cast<std::size_t>(i)]);
    }
    CHECK(r.group_loss(5) == losses[5]);

    const Eigen::ArrayXf lp_f = lp_array.cast<float>(), ref_f = ref.cast<float>();
    const auto f = rpo::eigen::evaluate(rpo::dpo{}, rpo::eigen::inputs<float>{.logp = lp_f, .ref_logp = ref_f},
                                        rpo::reduction::sum());
    CHECK(std::isfinite(f.loss));
    CHECK(f.grad_logp.size() == n);
  }

  TEST_CASE("xtensor containers of any shape, views and expressions give the span results: gradients keep the shape") {
    const batch_data data(6);
    std::vector<double> grad(12), losses(6);
    const double expected = rpo::evaluate(rpo::simpo{}, data.input(), {.group_loss = losses, .grad_logp = grad});

    xt::xtensor<double, 2> lp = xt::zeros<double>({6, 2}), len = xt::zeros<double>({6, 2});
    for (std::size_t g = 0; g < 6; ++g)
      for (std::size_t i = 0; i < 2; ++i) {
        lp(g, i) = data.logp[2 * g + i];
        len(g, i) = data.length[2 * g + i];
      }
    const auto r = rpo::xtensor::evaluate(rpo::simpo{}, {.logp = lp, .length = len + 0.0});
    CHECK(r.loss == expected);
    REQUIRE(r.grad_logp.dimension() == 2);
    CHECK(r.grad_logp.shape()[0] == 6);
    CHECK(r.grad_logp(4, 1) == grad[9]);
    CHECK(r.group_loss(3) == losses[3]);

    // A strided view (every other pair) is evaluated once and gives that sub-batch's result.
    const auto every_other = xt::view(lp, xt::range(0, 6, 2), xt::all());
    const auto every_other_len = xt::view(len, xt::range(0, 6, 2), xt::all());
    const auto v = rpo::xtensor::evaluate(rpo::simpo{}, {.logp = every_other, .length = every_other_len},
                                          rpo::reduction::sum());
    CHECK_CLOSE(v.loss, losses[0] + losses[2] + losses[4], 1e-14, 0);

    // No columns at all: an empty batch, as with spans (an absent column is not a 0-d scalar).
    const auto empty = rpo::xtensor::evaluate(rpo::dpo{}, {}, rpo::reduction::sum());
    CHECK(empty.loss == 0);
    CHECK(empty.grad_logp.size() == 0);
    CHECK(rpo::eigen::evaluate(rpo::dpo{}, {}, rpo::reduction::sum()).loss == 0);
  }

  TEST_CASE("the unchecked group kernel takes a null gradient pointer for what is not wanted") {
    const double logp[] = {-12, -20}, ref[] = {-13.5, -19};
    double grad[2];
    const auto composed = rpo::as_loss(rpo::dpo{.beta = 0.2});
    const double value = composed.evaluate(rpo::group_ref<double>{logp, ref, nullptr, nullptr, 2}, grad, nullptr);
    CHECK_CLOSE(value, 0.47407698418, 1e-10, 0);  // RPO.md 10.2
    CHECK(grad[0] == -grad[1]);
  }
}
