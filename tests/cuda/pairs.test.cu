// The pairwise presets on device memory (rpo/cuda/pairs.cuh) against rpo::evaluate on the host: the reduced loss,
// every group loss and both gradients, for the pairwise presets, the weighted sums and an extension, in float and
// double, at 1, 64 and 4097 pairs and under every reduction; and the errors, with rpo::evaluate's messages and the
// outputs left untouched.
#include "rpo/cuda/pairs.cuh"  // first: the header compiles on its own

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "cuda/device.hpp"
#include "rpo/presets.hpp"
#include "support/close.hpp"
#include "support/expect_error.hpp"

/// A preset and a scalar type, for TEST_CASE_TEMPLATE (outside the anonymous namespace: its name is in the CTest names).
template <class P, class T> struct job {
  using preset = P;
  using scalar = T;
};

namespace {

using test::cuda::buffer;

/// N pairs (chosen, rejected): log-probs in [−60, −1], lengths 1..100, rewards with the chosen one above (as the
/// log-reward offset of rpo::odpo needs), all in [0, 1] (win probabilities, as rpo::sppo_soft needs).
template <class T> struct pair_batch {
  std::vector<T> logp, ref_logp, length, reward;
  pair_batch(std::size_t pairs, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> lp(-60, -1), hi(0.5, 1), lo(0, 0.25);
    std::uniform_int_distribution<int> n(1, 100);
    for (std::size_t i = 0; i < 2 * pairs; ++i) {
      logp.push_back(static_cast<T>(lp(rng)));
      ref_logp.push_back(static_cast<T>(lp(rng)));
      length.push_back(static_cast<T>(n(rng)));
      reward.push_back(static_cast<T>(i % 2 == 0 ? hi(rng) : lo(rng)));
    }
  }
};

template <class T> struct outputs {
  T value;
  std::vector<T> group_loss, grad_logp, grad_ref_logp;
};

template <class P, class T> outputs<T> host(const pair_batch<T>& b, rpo::reduction how) {
  outputs<T> o{0, std::vector<T>(b.logp.size() / 2), std::vector<T>(b.logp.size()), std::vector<T>(b.logp.size())};
  o.value = rpo::evaluate(P{}, rpo::batch_input<T>{b.logp, b.ref_logp, b.length, b.reward},
                          rpo::batch_output<T>{o.group_loss, o.grad_logp, o.grad_ref_logp}, how);
  return o;
}

template <class P, class T> outputs<T> device(const pair_batch<T>& b, rpo::reduction how) {
  buffer<T> logp(b.logp), ref(b.ref_logp), length(b.length), reward(b.reward), group_loss(b.logp.size() / 2),
      grad(b.logp.size()), grad_ref(b.logp.size());
  outputs<T> o;
  o.value = rpo::cuda::evaluate_pairs(P{}, rpo::batch_input<T>{logp.cspan(), ref.cspan(), length.cspan(), reward.cspan()},
                                      rpo::batch_output<T>{group_loss.span(), grad.span(), grad_ref.span()}, how);
  RPO_CUDA_TRY(cudaDeviceSynchronize());
  o.group_loss = group_loss.download();
  o.grad_logp = grad.download();
  o.grad_ref_logp = grad_ref.download();
  return o;
}

/// Device and host evaluate the same formulas with their own exp/log (within a few ulp of each other).
template <class T> void check_same(const outputs<T>& d, const outputs<T>& h) {
  const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
  const auto largest = [](const std::vector<T>& v) {
    double m = 0;
    for (const T x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
    return m;
  };
  CHECK_CLOSE(d.value, h.value, rtol, rtol * 1e-2);
  const double loss_scale = largest(h.group_loss), grad_scale = largest(h.grad_logp), ref_scale = largest(h.grad_ref_logp);
  for (std::size_t i = 0; i < h.group_loss.size(); ++i) CHECK_CLOSE(d.group_loss[i], h.group_loss[i], rtol, rtol * 1e-1 * loss_scale);
  for (std::size_t i = 0; i < h.grad_logp.size(); ++i) {
    CHECK_CLOSE(d.grad_logp[i], h.grad_logp[i], rtol, rtol * 1e-1 * grad_scale);
    CHECK_CLOSE(d.grad_ref_logp[i], h.grad_ref_logp[i], rtol, rtol * 1e-1 * ref_scale);
  }
}

}  // namespace

TEST_SUITE("cuda pairs") {
  TEST_CASE_TEMPLATE("evaluate_pairs equals rpo::evaluate: value, group losses, both gradients, every reduction", J,
                     job<rpo::dpo, float>, job<rpo::cdpo, float>, job<rpo::ipo, float>, job<rpo::simpo, float>,
                     job<rpo::hinge, float>, job<rpo::rpo_fwd, float>, job<rpo::rpo_bwd, float>, job<rpo::odpo, float>,
                     job<rpo::dpo, double>, job<rpo::rpo_sq, double>, job<rpo::ipo_normalized, double>,
                     job<rpo::cpo, double>, job<rpo::robust_dpo, double>, job<rpo::sppo_soft, float>,
                     job<rpo::sppo_soft, double>) {
    RPO_REQUIRE_DEVICE();
    using P = typename J::preset;
    using T = typename J::scalar;
    for (const std::size_t pairs : {std::size_t{1}, std::size_t{64}, std::size_t{4097}}) {
      CAPTURE(pairs);
      const pair_batch<T> b(pairs, pairs);
      for (const rpo::reduction how : {rpo::reduction::mean(), rpo::reduction::sum(), rpo::reduction::sum_over(3)})
        check_same(device<P, T>(b, how), host<P, T>(b, how));
    }
  }

  TEST_CASE("only the outputs asked for are written; an empty sum is 0") {
    RPO_REQUIRE_DEVICE();
    const pair_batch<float> b(5, 1);
    buffer<float> logp(b.logp), ref(b.ref_logp), grad(b.logp.size());
    const float value = rpo::cuda::evaluate_pairs(rpo::dpo{}, rpo::batch_input<float>{.logp = logp.cspan(), .ref_logp = ref.cspan()},
                                                  rpo::batch_output<float>{.grad_logp = grad.span()});
    std::vector<float> g(b.logp.size());
    const float ref_value = rpo::evaluate(rpo::dpo{}, rpo::batch_input<float>{.logp = b.logp, .ref_logp = b.ref_logp},
                                          rpo::batch_output<float>{.grad_logp = g});
    CHECK_CLOSE(value, ref_value, 1e-5, 0);
    const std::vector<float> got = grad.download();
    for (std::size_t i = 0; i < g.size(); ++i) CHECK_CLOSE(got[i], g[i], 1e-5, 1e-7);
    CHECK(rpo::cuda::evaluate_pairs(rpo::dpo{}, rpo::batch_input<float>{.logp = logp.cspan().first(0),
                                                                         .ref_logp = ref.cspan().first(0)},
                                    {}, rpo::reduction::sum()) == 0.f);
  }

  TEST_CASE("values the loss may not read: rpo::evaluate's message, and the outputs untouched") {
    RPO_REQUIRE_DEVICE();
    const float sentinel = 777.f;
    const auto call = [&](const auto& loss, const pair_batch<float>& b) {
      buffer<float> logp(b.logp), ref(b.ref_logp), length(b.length), reward(b.reward),
          grad(std::vector<float>(b.logp.size(), sentinel)), group_loss(std::vector<float>(b.logp.size() / 2, sentinel));
      try {
        rpo::cuda::evaluate_pairs(loss, rpo::batch_input<float>{logp.cspan(), ref.cspan(), length.cspan(), reward.cspan()},
                                  rpo::batch_output<float>{.group_loss = group_loss.span(), .grad_logp = grad.span()});
      } catch (...) {
        RPO_CUDA_TRY(cudaDeviceSynchronize());
        for (const float g : grad.download()) REQUIRE(g == sentinel);
        for (const float g : group_loss.download()) REQUIRE(g == sentinel);
        throw;
      }
    };
    pair_batch<float> b(300, 9);
    SUBCASE("a NaN log-prob") {
      b.logp[257] = std::numeric_limits<float>::quiet_NaN();
      test::expect_error<std::domain_error>([&] { call(rpo::dpo{}, b); }, {"rpo::dpo: logp[257] must be finite, but got logp[257] = nan"});
    }
    SUBCASE("an infinite reference log-prob") {
      b.ref_logp[3] = -std::numeric_limits<float>::infinity();
      test::expect_error<std::domain_error>([&] { call(rpo::dpo{}, b); }, {"ref_logp[3] must be finite"});
    }
    SUBCASE("a length of 0") {
      b.length[598] = 0;
      test::expect_error<std::domain_error>([&] { call(rpo::simpo{}, b); }, {"rpo::simpo: length[598] must be finite and > 0"});
    }
    SUBCASE("rewards out of the order the log-reward offset needs") {
      b.reward[41] = b.reward[40];
      test::expect_error<std::domain_error>([&] { call(rpo::odpo{}, b); }, {"rpo::odpo: group 20 (responses 40 to 41)"});
    }
    SUBCASE("a win probability outside [0, 1]") {
      b.reward[77] = 1.5f;
      test::expect_error<std::domain_error>([&] { call(rpo::sppo_soft{}, b); },
                                            {"rpo::sppo_soft: reward[77] must be a probability in [0, 1]"});
    }
    SUBCASE("a value the loss does not read is not checked") {
      b.reward[0] = std::numeric_limits<float>::quiet_NaN();
      CHECK_NOTHROW(call(rpo::dpo{}, b));
    }
  }
}

TEST_SUITE("cuda pairs host checks") {
  // These fail before the first CUDA call, so they run without a device (the spans point to host memory that is
  // never read).
  TEST_CASE("sizes, offsets, the reduction and parameters are checked on the host, with rpo::evaluate's messages") {
    const pair_batch<double> b(3, 1);
    const std::vector<std::int64_t> offsets{0, 2, 4, 6};
    std::vector<double> grad(5);
    using in_t = rpo::batch_input<double>;
    test::expect_error<std::invalid_argument>(
        [&] { rpo::cuda::evaluate_pairs(rpo::dpo{}, in_t{.logp = b.logp, .ref_logp = b.ref_logp, .offsets = offsets}); },
        {"rpo::dpo: rpo::cuda::evaluate_pairs takes consecutive groups of 2 responses, but offsets were given"});
    test::expect_error<std::invalid_argument>(
        [&] { rpo::cuda::evaluate_pairs(rpo::dpo{}, in_t{.logp = std::span(b.logp).first(5), .ref_logp = b.ref_logp}); },
        {"rpo::dpo: ref_logp has 6 entries but logp has 5"});
    test::expect_error<std::invalid_argument>(
        [&] { rpo::cuda::evaluate_pairs(rpo::dpo{}, in_t{.logp = b.logp}); },
        {"rpo::dpo: ref_logp is read by this loss but was not given"});
    test::expect_error<std::invalid_argument>(
        [&] { rpo::cuda::evaluate_pairs(rpo::dpo{}, in_t{.logp = b.logp, .ref_logp = b.ref_logp}, {.grad_logp = grad}); },
        {"rpo::dpo: grad_logp has 5 entries but must have 6 (one per response) or none"});
    test::expect_error<std::invalid_argument>(
        [&] { rpo::cuda::evaluate_pairs(rpo::dpo{}, in_t{}); }, {"the batch is empty, and the mean over 0 groups is undefined"});
    test::expect_error<std::invalid_argument>(
        [&] { rpo::cuda::evaluate_pairs(rpo::simpo{.beta = 0}, in_t{.logp = b.logp, .length = b.length}); },
        {"rpo::simpo: beta must be finite and > 0"});
    test::expect_error<std::invalid_argument>(
        [&] {
          rpo::cuda::evaluate_pairs(rpo::dpo{}, in_t{.logp = b.logp, .ref_logp = b.ref_logp}, {},
                                    rpo::reduction::sum_over(0));
        },
        {"rpo::dpo: reduction count must be finite and > 0"});
  }
}
