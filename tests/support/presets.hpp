// tests/support/presets.hpp — every preset as a type list, and inputs that reach a chosen policy gap a.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <tuple>

#include "rpo/presets.hpp"

namespace test {

/// Every pairwise preset of rpo/presets.hpp (the doctest template lists below repeat it; keep them in step).
using all_presets = std::tuple<rpo::dpo, rpo::cdpo, rpo::ipo, rpo::ipo_normalized, rpo::simpo, rpo::hinge,
                               rpo::dpo_normalized, rpo::rpo_sq, rpo::rpo_fwd, rpo::rpo_bwd>;

/// Every group preset of rpo/presets.hpp (K ≥ 2 responses per group; the pair entry point takes them at K = 2).
/// tests/unit/sampling.test.cpp and the pair lists of tests/unit/presets.test.cpp repeat it; keep them in step.
using group_presets = std::tuple<rpo::rpo_sqloo, rpo::rpo_sqpairs, rpo::rpo_softmax_bwd, rpo::rpo_softmax_fwd,
                                 rpo::infonca, rpo::listwise_dpo, rpo::dpo_best_worst>;

/// A random pair whose policy gap a (before any margin) is `a` exactly in double: the reward models are affine
/// in logp, r(logp) = r(0) + k·logp, so logp of the chosen response is solved for. The other fields are drawn
/// at random: log-probs in [-300, -1], lengths in [1, 200], rewards in [-5, 5].
template <class P> rpo::pair_input<double> pair_with_gap(const P& preset, double a, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> logp(-300, -1), shift(-20, 20), length(1, 200), reward(-5, 5);
  rpo::pair_input<double> in;
  for (int i = 0; i < 2; ++i) {
    in.logp[i] = logp(rng);
    in.ref_logp[i] = in.logp[i] + shift(rng);
    in.length[i] = std::round(length(rng));
    in.reward[i] = reward(rng);
  }
  const auto r = rpo::as_loss(preset).reward;
  const auto at = [&](int i, double x) { return r.value_and_grad(x, in.ref_logp[i], in.length[i]); };
  const double r1 = at(1, in.logp[1]).value;
  const auto r0 = at(0, 0.0);
  in.logp[0] = (a + r1 - r0.value) / r0.d_logp;
  return in;
}

/// CHECKs that a pair's loss and its four gradients are finite (the extreme-input suites of the preset tests).
template <class T> void check_finite(const rpo::pair_result<T>& r) {
  CHECK(std::isfinite(r.loss));
  CHECK(std::isfinite(r.grad_logp[0]));
  CHECK(std::isfinite(r.grad_logp[1]));
  CHECK(std::isfinite(r.grad_ref_logp[0]));
  CHECK(std::isfinite(r.grad_ref_logp[1]));
}

/// The same pair in float.
inline rpo::pair_input<float> to_float(const rpo::pair_input<double>& d) {
  rpo::pair_input<float> f;
  for (int i = 0; i < 2; ++i) {
    f.logp[i] = static_cast<float>(d.logp[i]);
    f.ref_logp[i] = static_cast<float>(d.ref_logp[i]);
    f.length[i] = static_cast<float>(d.length[i]);
    f.reward[i] = static_cast<float>(d.reward[i]);
  }
  return f;
}

}  // namespace test
