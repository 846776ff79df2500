// The multi-response sampling schemes (rpo/sampling.hpp) and their presets: gradients against central differences
// and dual numbers, K = 2 against sampling::pair, the RPO.md §3.5 / §10.5 vectors, independent formulas from
// LOSSES.md, the RLOO identities (L13), (L14) on a toy categorical policy, Theorem 3.1 for K > 2 against an
// independently written BRAIn objective (RPO.md §5), ragged batches, and bad input.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo.hpp"
#include "support/close.hpp"
#include "support/dual.hpp"
#include "support/expect_error.hpp"
#include "support/gradient_check.hpp"

namespace {

namespace distance = rpo::distance;
namespace target = rpo::target;
namespace sampling = rpo::sampling;

/// A composition with the implicit reward β·(log π − log π_ref).
template <class D, class Tg, class S> using implicit_loss = rpo::loss<D, rpo::reward::implicit, Tg, S>;

// Compositions beyond the presets, one per (scheme, distance, target) family worth checking on its own.
using loo_bwd = implicit_loss<distance::bernoulli_bwd_kl, target::reward_gap, sampling::leave_one_out>;
using loo_fwd = implicit_loss<distance::bernoulli_fwd_kl, target::reward_gap, sampling::leave_one_out>;
using loo_logistic = implicit_loss<distance::logistic, target::reward_gap, sampling::leave_one_out>;
using pairs_bwd = implicit_loss<distance::bernoulli_bwd_kl, target::reward_gap, sampling::all_pairs>;
using pairs_fwd = implicit_loss<distance::bernoulli_fwd_kl, target::reward_gap, sampling::all_pairs>;
using pairs_dpo = implicit_loss<distance::logistic, target::hard_label, sampling::all_pairs>;
using pairs_ipo = implicit_loss<distance::squared, target::constant, sampling::all_pairs>;
using pairs_cdpo = implicit_loss<distance::bernoulli_bwd_kl, target::smoothed_label, sampling::all_pairs>;
using pairs_margin = implicit_loss<distance::squared, target::margin<target::reward_gap>, sampling::all_pairs>;
using best_worst_fwd = implicit_loss<distance::bernoulli_fwd_kl, target::reward_gap, sampling::best_worst>;
using best_worst_sq = implicit_loss<distance::squared, target::reward_gap, sampling::best_worst>;
using softmax_logistic_pl = implicit_loss<distance::logistic, target::hard_label, sampling::plackett_luce>;

/// A batch of groups of the given sizes, every field filled: log-probs in [−300, −1], ref_logp = logp + a shift in
/// [−spread, spread], lengths in [1, 200], rewards in [−3, 3] (distinct with probability 1).
struct groups {
  std::vector<double> logp, ref_logp, length, reward;
  std::vector<std::int64_t> offsets{0};

  groups() = default;
  groups(const std::vector<int>& sizes, std::mt19937_64& rng, double spread = 20) {
    std::uniform_real_distribution<double> lp(-300, -1), shift(-spread, spread), len(1, 200), rw(-3, 3);
    for (int k : sizes) {
      for (int i = 0; i < k; ++i) {
        logp.push_back(lp(rng));
        ref_logp.push_back(logp.back() + shift(rng));
        length.push_back(std::round(len(rng)));
        reward.push_back(rw(rng));
      }
      offsets.push_back(static_cast<std::int64_t>(logp.size()));
    }
  }
  std::size_t count() const { return offsets.size() - 1; }
  rpo::batch_input<double> input() const { return {logp, ref_logp, length, reward, offsets}; }
  /// Group g alone.
  groups one(std::size_t g) const {
    groups out;
    const auto first = static_cast<std::ptrdiff_t>(offsets[g]), last = static_cast<std::ptrdiff_t>(offsets[g + 1]);
    out.logp.assign(logp.begin() + first, logp.begin() + last);
    out.ref_logp.assign(ref_logp.begin() + first, ref_logp.begin() + last);
    out.length.assign(length.begin() + first, length.begin() + last);
    out.reward.assign(reward.begin() + first, reward.begin() + last);
    out.offsets.push_back(last - first);
    return out;
  }
};

/// The reduced loss and its gradients.
struct result {
  double loss;
  std::vector<double> group_loss, grad_logp, grad_ref_logp;
};
template <class L> result run(const L& l, const groups& b, rpo::reduction how = rpo::reduction::mean()) {
  result r{0, std::vector<double>(b.count()), std::vector<double>(b.logp.size()), std::vector<double>(b.logp.size())};
  r.loss = rpo::evaluate(
      l, b.input(), {.group_loss = r.group_loss, .grad_logp = r.grad_logp, .grad_ref_logp = r.grad_ref_logp}, how);
  return r;
}

/// Every ∂loss/∂logp_i and ∂loss/∂ref_logp_i of the batch against central differences; returns the largest
/// relative error (test::fd_relative_error).
template <class L> double worst_fd_error(const L& l, const groups& b) {
  const result r = run(l, b);
  double worst = 0;
  for (std::size_t i = 0; i < b.logp.size(); ++i) {
    for (auto field : {&groups::logp, &groups::ref_logp}) {
      const auto loss_at = [&](double x) {
        groups moved = b;
        (moved.*field)[i] = x;
        return rpo::evaluate(l, moved.input());
      };
      const double g = field == &groups::logp ? r.grad_logp[i] : r.grad_ref_logp[i];
      worst = std::max(worst, test::fd_relative_error(loss_at, (b.*field)[i], g, test::fd_floor<double>));
    }
  }
  return worst;
}

double log_sum_exp(const std::vector<double>& x) {
  double m = -HUGE_VAL;
  for (double v : x) m = std::max(m, v);
  double sum = 0;
  for (double v : x) sum += std::exp(v - m);
  return m + std::log(sum);
}
std::vector<double> log_softmax(const std::vector<double>& x) {
  const double z = log_sum_exp(x);
  std::vector<double> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = x[i] - z;
  return out;
}

using test::expect_error;

/// A toy categorical policy over `outcomes` responses: log-softmax of logits.
struct categorical {
  std::vector<double> logits;
  std::vector<double> log_probs() const { return log_softmax(logits); }
  std::vector<int> sample(int k, std::mt19937_64& rng) const {
    std::vector<double> p;
    for (double lp : log_probs()) p.push_back(std::exp(lp));
    std::discrete_distribution<int> pick(p.begin(), p.end());
    std::vector<int> out;
    for (int i = 0; i < k; ++i) out.push_back(pick(rng));
    return out;
  }
  static categorical random(int outcomes, double scale, std::mt19937_64& rng) {
    std::normal_distribution<double> n(0, scale);
    categorical c;
    for (int o = 0; o < outcomes; ++o) c.logits.push_back(n(rng));
    return c;
  }
};

/// One group of responses `y` drawn from a categorical policy: log π(y_k), log π_ref(y_k), r(y_k).
groups group_of(const std::vector<int>& y, const categorical& policy, const categorical& reference,
                const std::vector<double>& reward_of) {
  groups g;
  const auto lp = policy.log_probs(), ref = reference.log_probs();
  for (int o : y) {
    const auto u = static_cast<std::size_t>(o);
    g.logp.push_back(lp[u]);
    g.ref_logp.push_back(ref[u]);
    g.length.push_back(1);
    g.reward.push_back(reward_of[u]);
  }
  g.offsets.push_back(static_cast<std::int64_t>(y.size()));
  return g;
}

}  // namespace

TEST_SUITE("sampling") {
  TEST_CASE_TEMPLATE("gradients agree with central differences, K = 2, 3, 5, 8 and ragged, to 1e-7", L, rpo::rpo_sqloo,
                     rpo::rpo_sqpairs, rpo::rpo_softmax_bwd, rpo::rpo_softmax_fwd, rpo::infonca, rpo::listwise_dpo,
                     rpo::dpo_best_worst, loo_bwd, loo_fwd, loo_logistic, pairs_bwd, pairs_fwd, pairs_dpo, pairs_ipo,
                     pairs_cdpo, pairs_margin, best_worst_fwd, best_worst_sq, softmax_logistic_pl) {
    std::mt19937_64 rng(101);
    const L l{};
    const std::vector<std::vector<int>> shapes{{2, 2, 2}, {3, 3}, {5, 5}, {8, 8}, {2, 3, 5, 8, 3, 2, 8, 5}};
    for (double spread : {2.0, 30.0}) {
      for (const auto& sizes : shapes) {
        CAPTURE(spread);
        CAPTURE(sizes.size());
        const groups b(sizes, rng, spread);
        CHECK(worst_fd_error(l, b) < test::fd_tolerance<double>);
      }
    }
  }

  TEST_CASE_TEMPLATE("the gradient is exact against dual numbers, K = 5", L, rpo::rpo_sqloo, rpo::rpo_sqpairs,
                     rpo::rpo_softmax_bwd, rpo::rpo_softmax_fwd, rpo::infonca, rpo::listwise_dpo, rpo::dpo_best_worst,
                     loo_fwd, pairs_dpo, pairs_margin) {
    using D = test::dual<double>;
    std::mt19937_64 rng(103);
    const auto composed = rpo::as_loss(L{});
    for (int n = 0; n < 20; ++n) {
      const groups b({5}, rng, 10);
      std::vector<double> grad(5);
      composed.evaluate(rpo::group_ref<double>{b.logp.data(), b.ref_logp.data(), b.length.data(), b.reward.data(), 5},
                        grad.data(), nullptr);
      for (std::size_t k = 0; k < 5; ++k) {
        std::vector<D> logp, ref, length, reward;
        for (std::size_t i = 0; i < 5; ++i) {
          logp.emplace_back(b.logp[i], i == k ? 1.0 : 0.0);
          ref.emplace_back(b.ref_logp[i]);
          length.emplace_back(b.length[i]);
          reward.emplace_back(b.reward[i]);
        }
        const D value = composed.evaluate(rpo::group_ref<D>{logp.data(), ref.data(), length.data(), reward.data(), 5},
                                          nullptr, nullptr);
        CAPTURE(k);
        CHECK_CLOSE(grad[k], value.d, 1e-12, 1e-15);
      }
    }
  }

  TEST_CASE("K = 2: every multi-response scheme is sampling::pair, value and gradients, to 1e-12") {
    std::mt19937_64 rng(107);
    // `ordered`: the scheme reads the pair's orientation from the rewards (a label target, a margin, a ranking), so
    // the test puts the higher reward first, as sampling::pair assumes; otherwise the rewards come in either order.
    const auto same = [&](auto multi, auto pairwise, bool ordered) {
      std::uniform_real_distribution<double> lp(-200, -1), shift(-150, 150), rw(-20, 20);
      for (int n = 0; n < 300; ++n) {
        rpo::pair_input<double> in;
        for (int i = 0; i < 2; ++i) {
          in.logp[i] = lp(rng);
          in.ref_logp[i] = in.logp[i] + shift(rng);
          in.length[i] = 1;
          in.reward[i] = rw(rng);
        }
        if (ordered && in.reward[0] < in.reward[1]) std::swap(in.reward[0], in.reward[1]);
        const auto x = rpo::value_and_grad(multi, in), y = rpo::value_and_grad(pairwise, in);
        CAPTURE(in.logp[0] - in.ref_logp[0] - in.logp[1] + in.ref_logp[1]);
        CAPTURE(in.reward[0] - in.reward[1]);
        CHECK_CLOSE(x.loss, y.loss, 1e-12, 1e-300);
        for (int i = 0; i < 2; ++i) {
          CHECK_CLOSE(x.grad_logp[i], y.grad_logp[i], 1e-12, 1e-300);
          CHECK_CLOSE(x.grad_ref_logp[i], y.grad_ref_logp[i], 1e-12, 1e-300);
        }
        // ... and through the batch, as a group of two given by offsets.
        const std::vector<double> logp{in.logp[0], in.logp[1]}, ref{in.ref_logp[0], in.ref_logp[1]},
            reward{in.reward[0], in.reward[1]};
        const std::vector<std::int64_t> offsets{0, 2};
        std::vector<double> grad(2);
        const double batch = rpo::evaluate(multi, {.logp = logp, .ref_logp = ref, .reward = reward, .offsets = offsets},
                                           {.grad_logp = grad});
        CHECK(batch == x.loss);
        CHECK(grad[1] == x.grad_logp[1]);
      }
    };
    const rpo::reward::implicit beta{.beta = 0.3};
    const target::reward_gap eta{.eta = 0.7};
    // Each scheme with every distance it accepts and the targets that make sense with it.
    const auto with_targets = [&]<class S>(S) {
      const auto finite = [&]<class D>(D, auto tg, bool ordered) {
        same(implicit_loss<D, decltype(tg), S>{.reward = beta, .target = tg},
             implicit_loss<D, decltype(tg), sampling::pair>{.reward = beta, .target = tg}, ordered);
      };
      constexpr bool orients = std::is_same_v<S, sampling::best_worst>;
      finite(distance::squared{}, eta, orients);  // best_worst ranks by reward; the others keep index order
      finite(distance::bernoulli_bwd_kl{}, eta, orients);
      finite(distance::bernoulli_fwd_kl{}, eta, orients);
      finite(distance::logistic{}, eta, orients);
      if constexpr (!std::is_same_v<S, sampling::leave_one_out>) {  // label targets: pairs oriented by reward
        finite(distance::squared{}, target::constant{.value = 0.8}, true);
        finite(distance::bernoulli_fwd_kl{}, target::constant{.value = -0.4}, true);
        finite(distance::bernoulli_bwd_kl{}, target::smoothed_label{.epsilon = 0.2}, true);
        finite(distance::logistic{}, target::smoothed_label{.epsilon = 0.05}, true);
        finite(distance::bernoulli_bwd_kl{}, target::hard_label{}, true);
        finite(distance::logistic{}, target::hard_label{}, true);
        finite(distance::hinge{}, target::hard_label{}, true);
        finite(distance::hinge{}, target::margin<>{.gamma = 0.3}, true);
        finite(distance::bernoulli_bwd_kl{}, target::margin<>{.gamma = -0.5}, true);
        finite(distance::squared{}, target::margin<target::reward_gap>{.gamma = 0.25, .inner = eta}, true);
      }
    };
    SUBCASE("leave_one_out") { with_targets(sampling::leave_one_out{}); }
    SUBCASE("all_pairs") { with_targets(sampling::all_pairs{}); }
    SUBCASE("best_worst") { with_targets(sampling::best_worst{}); }
    SUBCASE("softmax") {
      using S = sampling::softmax;
      same(implicit_loss<distance::bernoulli_bwd_kl, target::reward_gap, S>{.reward = beta, .target = eta},
           rpo::rpo_bwd{.beta = 0.3, .eta = 0.7}, false);
      same(implicit_loss<distance::bernoulli_fwd_kl, target::reward_gap, S>{.reward = beta, .target = eta},
           rpo::rpo_fwd{.beta = 0.3, .eta = 0.7}, false);
      same(implicit_loss<distance::logistic, target::reward_gap, S>{.reward = beta, .target = eta},
           implicit_loss<distance::logistic, target::reward_gap, sampling::pair>{.reward = beta, .target = eta}, false);
    }
    SUBCASE("plackett_luce") {
      same(rpo::listwise_dpo{.beta = 0.3}, rpo::dpo{.beta = 0.3}, true);
      same(softmax_logistic_pl{.reward = beta},
           implicit_loss<distance::logistic, target::hard_label, sampling::pair>{.reward = beta}, true);
    }
    SUBCASE("the presets and their pairwise counterparts") {
      same(rpo::rpo_sqloo{.beta = 0.3, .eta = 0.7}, rpo::rpo_sq{.beta = 0.3, .eta = 0.7}, false);
      same(rpo::rpo_sqpairs{.beta = 0.3, .eta = 0.7}, rpo::rpo_sq{.beta = 0.3, .eta = 0.7}, false);
      same(rpo::rpo_softmax_bwd{.beta = 0.3, .eta = 0.7}, rpo::rpo_bwd{.beta = 0.3, .eta = 0.7}, false);
      same(rpo::rpo_softmax_fwd{.beta = 0.3, .eta = 0.7}, rpo::rpo_fwd{.beta = 0.3, .eta = 0.7}, false);
      same(rpo::dpo_best_worst{.beta = 0.3}, rpo::dpo{.beta = 0.3}, true);
      // With their defaults too, where they are the pairwise preset's (rpo_softmax_bwd takes PR #311's η = 0.2).
      same(rpo::rpo_sqloo{}, rpo::rpo_sq{}, false);
      same(rpo::rpo_sqpairs{}, rpo::rpo_sq{}, false);
      same(rpo::rpo_softmax_fwd{}, rpo::rpo_fwd{}, false);
      same(rpo::listwise_dpo{}, rpo::dpo{}, true);
      same(rpo::dpo_best_worst{}, rpo::dpo{}, true);
    }
  }

  TEST_CASE("RPO.md 3.5 and 10.5: L_loo, L_pairs, (E10) and (E10f) with their gradients, to 1e-10") {
    // K = 4, β = 0.2, η = 1, ℓ = [0.3, −0.2, 1.1, −0.7], r = [2, 0.5, 3, −1]; log π_ref = 0 so that log π = ℓ.
    groups b;
    b.logp = {0.3, -0.2, 1.1, -0.7};
    b.ref_logp = {0, 0, 0, 0};
    b.length = {1, 1, 1, 1};
    b.reward = {2, 0.5, 3, -1};
    b.offsets = {0, 4};
    const result loo = run(rpo::rpo_sqloo{.beta = 0.2, .eta = 1}, b);
    CHECK_CLOSE(loo.loss, 3.41475555555556, 1e-10, 0);
    const double loo_grad[] = {-0.149333333333, 0.099555555556, -0.298666666667, 0.348444444444};
    const result pairs = run(rpo::rpo_sqpairs{.beta = 0.2, .eta = 1}, b);
    CHECK_CLOSE(pairs.loss, 5.12213333333333, 1e-10, 0);
    const double pairs_grad[] = {-0.224, 0.149333333333, -0.448, 0.522666666667};
    const result bwd = run(rpo::rpo_softmax_bwd{.beta = 0.2, .eta = 1}, b);
    CHECK_CLOSE(bwd.loss, 0.435037981149, 1e-10, 0);
    const double bwd_grad_s[] = {0.006051170422, 0.176277945926, -0.379943213864, 0.197614097515};
    const result fwd = run(rpo::rpo_softmax_fwd{.beta = 0.2, .eta = 1}, b);
    CHECK_CLOSE(fwd.loss, 0.684222915836, 1e-10, 0);
    double bwd_sum = 0;
    for (std::size_t i = 0; i < 4; ++i) {
      CAPTURE(i);
      // The printed gradients carry 12 decimals: 5e-13 of rounding, well inside 1e-10.
      CHECK_CLOSE(loo.grad_logp[i], loo_grad[i], 1e-10, 1e-12);
      CHECK_CLOSE(pairs.grad_logp[i], pairs_grad[i], 1e-10, 1e-12);
      CHECK_CLOSE(bwd.grad_logp[i] / 0.2, bwd_grad_s[i], 1e-10, 1e-12);  // ∂/∂s = ∂/∂log π / β
      bwd_sum += bwd.grad_logp[i];
    }
    CHECK(std::fabs(bwd_sum) < 1e-15);
    // §10.5's other normalisations: Σ_i ½(…)² without the 1/K, and ½·Σ_{i<j}, in the ratio (K − 1)²/K.
    CHECK_CLOSE(loo.loss * 4 / 2, 6.82951111111, 1e-10, 0);
    CHECK_CLOSE(pairs.loss * (4 * 3 / 2) / 2, 15.3664, 1e-10, 0);
  }

  TEST_CASE("independent formulas: Plackett-Luce (LOSSES.md 4.11), InfoNCA (4.12), the KLs (E10), (E10f), best-vs-worst") {
    std::mt19937_64 rng(109);
    for (int n = 0; n < 100; ++n) {
      const int k = 2 + n % 7;
      const groups b({k}, rng, 5);
      const double beta = 0.3, eta = 0.8;
      const auto uk = static_cast<std::size_t>(k);
      std::vector<double> s(uk), t(uk);
      for (std::size_t i = 0; i < uk; ++i) {
        s[i] = beta * (b.logp[i] - b.ref_logp[i]);
        t[i] = eta * b.reward[i];
      }
      const auto log_p = log_softmax(s), log_q = log_softmax(t);
      CAPTURE(k);

      // Plackett-Luce: L = −Σ_k [s_τ(k) − log Σ_{j≥k} e^{s_τ(j)}], ∂L/∂logp_i = β(Σ_{k: i ∈ τ(k..K)} softmax_k(i) − 1).
      std::vector<std::size_t> tau(uk);
      std::iota(tau.begin(), tau.end(), std::size_t{0});
      std::sort(tau.begin(), tau.end(), [&](std::size_t x, std::size_t y) { return b.reward[x] > b.reward[y]; });
      double pl = 0;
      std::vector<double> pl_grad(uk, -beta);
      for (std::size_t m = 0; m < uk; ++m) {
        std::vector<double> suffix;
        for (std::size_t j = m; j < uk; ++j) suffix.push_back(s[tau[j]]);
        const double z = log_sum_exp(suffix);
        pl -= s[tau[m]] - z;
        for (std::size_t j = m; j < uk; ++j) pl_grad[tau[j]] += beta * std::exp(s[tau[j]] - z);
      }
      const result r_pl = run(rpo::listwise_dpo{.beta = beta}, b, rpo::reduction::sum());
      CHECK_CLOSE(r_pl.loss, pl, 1e-12, 1e-14);
      for (std::size_t i = 0; i < uk; ++i) CHECK_CLOSE(r_pl.grad_logp[i], pl_grad[i], 1e-11, 1e-14);

      // InfoNCA: −Σ_i q_i log softmax(s)_i with q = softmax(r/α), gradient β(p_i − q_i).
      double infonca = 0;
      for (std::size_t i = 0; i < uk; ++i) infonca -= std::exp(log_q[i]) * log_p[i];
      const result r_nca = run(rpo::infonca{.beta = beta, .alpha = 1 / eta}, b, rpo::reduction::sum());
      CHECK_CLOSE(r_nca.loss, infonca, 1e-12, 1e-14);
      // (E10), (E10f): Σ q (log q − log p) and Σ p (log p − log q); InfoNCA = (E10) + H(q), with (E10)'s gradient.
      double kl_bwd = 0, kl_fwd = 0, entropy = 0;
      for (std::size_t i = 0; i < uk; ++i) {
        kl_bwd += std::exp(log_q[i]) * (log_q[i] - log_p[i]);
        kl_fwd += std::exp(log_p[i]) * (log_p[i] - log_q[i]);
        entropy -= std::exp(log_q[i]) * log_q[i];
      }
      const result r_bwd = run(rpo::rpo_softmax_bwd{.beta = beta, .eta = eta}, b, rpo::reduction::sum());
      const result r_fwd = run(rpo::rpo_softmax_fwd{.beta = beta, .eta = eta}, b, rpo::reduction::sum());
      CHECK_CLOSE(r_bwd.loss, kl_bwd, 1e-10, 1e-14);
      CHECK_CLOSE(r_fwd.loss, kl_fwd, 1e-10, 1e-14);
      CHECK_CLOSE(r_nca.loss, r_bwd.loss + entropy, 1e-12, 1e-14);
      for (std::size_t i = 0; i < uk; ++i) {
        const double p = std::exp(log_p[i]), q = std::exp(log_q[i]);
        double mean_d = 0;
        for (std::size_t j = 0; j < uk; ++j) mean_d += std::exp(log_p[j]) * (log_p[j] - log_q[j]);
        CHECK_CLOSE(r_bwd.grad_logp[i], beta * (p - q), 1e-11, 1e-15);
        CHECK_CLOSE(r_nca.grad_logp[i], r_bwd.grad_logp[i], 1e-12, 1e-15);
        CHECK_CLOSE(r_fwd.grad_logp[i], beta * p * ((log_p[i] - log_q[i]) - mean_d), 1e-10, 1e-14);
      }

      // Best-vs-worst: softplus(−(s_best − s_worst)) for DPO; the other responses get 0.
      const std::size_t best = tau.front(), worst = tau.back();
      const double a = s[best] - s[worst];
      const result r_bw = run(rpo::dpo_best_worst{.beta = beta}, b, rpo::reduction::sum());
      CHECK_CLOSE(r_bw.loss, std::log1p(std::exp(-a)), 1e-12, 1e-14);
      for (std::size_t i = 0; i < uk; ++i) {
        const double expected = i == best ? -beta / (1 + std::exp(a)) : i == worst ? beta / (1 + std::exp(a)) : 0.0;
        CHECK_CLOSE(r_bw.grad_logp[i], expected, 1e-12, 1e-15);
      }

      // All pairs and leave-one-out with the backward KL, written out with the textbook Bernoulli KL.
      const auto d_bwd = [](double x, double y) {
        const double p = 1 / (1 + std::exp(-x)), q = 1 / (1 + std::exp(-y));
        return q * std::log(q / p) + (1 - q) * std::log((1 - q) / (1 - p));
      };
      double pairs = 0, loo = 0;
      for (std::size_t i = 0; i < uk; ++i) {
        double s_rest = 0, t_rest = 0;
        for (std::size_t j = 0; j < uk; ++j) {
          if (j == i) continue;
          s_rest += s[j];
          t_rest += t[j];
          if (i < j) pairs += d_bwd(s[i] - s[j], t[i] - t[j]);
        }
        loo += d_bwd(s[i] - s_rest / (k - 1), t[i] - t_rest / (k - 1));
      }
      pairs *= 2.0 / (k * (k - 1));
      loo /= k;
      CHECK_CLOSE(run(pairs_bwd{.reward = {.beta = beta}, .target = {.eta = eta}}, b, rpo::reduction::sum()).loss, pairs,
                  1e-10, 1e-14);
      CHECK_CLOSE(run(loo_bwd{.reward = {.beta = beta}, .target = {.eta = eta}}, b, rpo::reduction::sum()).loss, loo,
                  1e-10, 1e-14);
    }
  }

  TEST_CASE("(L13) and (L14): leave-one-out and all-pairs RPO-sq are RLOO and the mean-baseline estimator") {
    // A toy categorical policy (7 outcomes); K responses drawn from π with repeats allowed. The estimators are
    // written here from RPO.md §3.4: the KL-shaped reward R̃ = r − (β/η)·ℓ, the RLOO advantage
    // Â_k = R̃_k − mean_{j≠k} R̃_j, and the mean-baseline advantage R̃_k − mean R̃.
    std::mt19937_64 rng(113);
    std::uniform_real_distribution<double> scale(0.05, 2.0), rw(-3, 3);
    const std::vector<int> sizes{2, 3, 5, 8};
    double worst_l13 = 0, worst_l14 = 0, worst_logits = 0;
    for (int n = 0; n < 200; ++n) {
      const int k = sizes[static_cast<std::size_t>(n) % sizes.size()];
      const double beta = scale(rng), eta = scale(rng);
      const categorical policy = categorical::random(7, 1.5, rng), reference = categorical::random(7, 1.5, rng);
      std::vector<double> reward_of(7);
      for (double& r : reward_of) r = rw(rng);
      const std::vector<int> y = policy.sample(k, rng);
      const groups g = group_of(y, policy, reference, reward_of);
      const auto uk = static_cast<std::size_t>(k);

      std::vector<double> shaped(uk);
      for (std::size_t i = 0; i < uk; ++i) shaped[i] = g.reward[i] - (beta / eta) * (g.logp[i] - g.ref_logp[i]);
      const double total = std::accumulate(shaped.begin(), shaped.end(), 0.0);
      const result loo = run(rpo::rpo_sqloo{.beta = beta, .eta = eta}, g, rpo::reduction::sum());
      const result pairs = run(rpo::rpo_sqpairs{.beta = beta, .eta = eta}, g, rpo::reduction::sum());
      // The scale of the computed terms: an advantage near 0 is a difference of numbers of size |s| + |t|.
      double largest = 0;
      for (std::size_t i = 0; i < uk; ++i)
        largest = std::max(largest, beta * std::fabs(g.logp[i] - g.ref_logp[i]) + eta * std::fabs(g.reward[i]));
      for (std::size_t i = 0; i < uk; ++i) {
        const double rloo_advantage = shaped[i] - (total - shaped[i]) / (k - 1);
        const double mean_advantage = shaped[i] - total / k;
        const double l13 = -(2 * beta * eta / (k - 1)) * rloo_advantage;
        const double l14 = -(4 * beta * eta / (k - 1)) * mean_advantage;
        const double unit = beta * largest / (k - 1);
        worst_l13 = std::max(worst_l13, std::fabs(loo.grad_logp[i] - l13) / unit);
        worst_l14 = std::max(worst_l14, std::fabs(pairs.grad_logp[i] - l14) / unit);
      }

      // "For any logits": the gradient in the logits θ, Σ_k ∂L/∂log π(y_k)·(e_{y_k} − π), against differences in θ.
      const auto probs = policy.log_probs();
      for (std::size_t o = 0; o < 7; ++o) {
        double analytic = 0;
        for (std::size_t i = 0; i < uk; ++i)
          analytic += loo.grad_logp[i] * ((static_cast<std::size_t>(y[i]) == o ? 1.0 : 0.0) - std::exp(probs[o]));
        const auto loss_at = [&](double logit) {
          categorical moved = policy;
          moved.logits[o] = logit;
          return rpo::evaluate(rpo::rpo_sqloo{.beta = beta, .eta = eta}, group_of(y, moved, reference, reward_of).input(),
                               {}, rpo::reduction::sum());
        };
        worst_logits =
            std::max(worst_logits, test::fd_relative_error(loss_at, policy.logits[o], analytic, test::fd_floor<double>));
      }
    }
    CAPTURE(worst_l13);
    CAPTURE(worst_l14);
    CAPTURE(worst_logits);
    CHECK(worst_l13 < 1e-13);
    CHECK(worst_l14 < 1e-13);
    CHECK(worst_logits < test::fd_tolerance<double>);
  }

  TEST_CASE("Theorem 3.1 for K > 2: softmax RPO-bwd with beta = 1 is BRAIn's self-normalised objective (RPO.md 5)") {
    // BRAIn (B22), written from its definition with a proposal q′ and the posterior π_ref·e^{η r} (temperature
    // β_B = 1/η): α̂ = softmax(log π_ref + η r − log q′), ω̂ = softmax(log π_θ − log q′), objective
    // Σ α̂_i log(α̂_i / ω̂_i), gradient −(α̂_i − ω̂_i) in log π_θ(y_i).
    struct brain_result {
      double value;
      std::vector<double> grad;
    };
    const auto brain = [](const groups& g, double eta, const std::vector<double>& log_proposal) {
      std::vector<double> la, lw;
      for (std::size_t i = 0; i < g.logp.size(); ++i) {
        la.push_back(g.ref_logp[i] + eta * g.reward[i] - log_proposal[i]);
        lw.push_back(g.logp[i] - log_proposal[i]);
      }
      const auto log_alpha = log_softmax(la), log_omega = log_softmax(lw);
      brain_result out{0, {}};
      for (std::size_t i = 0; i < la.size(); ++i) {
        out.value += std::exp(log_alpha[i]) * (log_alpha[i] - log_omega[i]);
        out.grad.push_back(-(std::exp(log_alpha[i]) - std::exp(log_omega[i])));
      }
      return out;
    };
    std::mt19937_64 rng(127);
    std::uniform_real_distribution<double> rw(-3, 3);
    bool differs_off_reference = false;
    double worst = 0;
    for (int n = 0; n < 200; ++n) {
      const int k = 3 + n % 6;
      const double eta = n % 3 == 0 ? 1.0 : n % 3 == 1 ? 0.5 : 2.0;
      const categorical policy = categorical::random(9, 1.0, rng), reference = categorical::random(9, 1.0, rng),
                        other = categorical::random(9, 1.0, rng);
      std::vector<double> reward_of(9);
      for (double& r : reward_of) r = rw(rng);
      const rpo::rpo_softmax_bwd rpo_bwd{.beta = 1, .eta = eta};

      // Responses drawn from π_ref: BRAIn's proposal is the prior.
      const groups on = group_of(reference.sample(k, rng), policy, reference, reward_of);
      const result r = run(rpo_bwd, on, rpo::reduction::sum());
      const brain_result b = brain(on, eta, on.ref_logp);
      CAPTURE(k);
      // Relative 1e-12, and 1e-14 absolute: a group whose K draws are one outcome has the objective 0 exactly, which
      // the textbook form above gives as ±2e-16.
      CHECK_CLOSE(r.loss, b.value, 1e-12, 1e-14);
      worst = std::max(worst, std::fabs(r.loss - b.value));
      for (std::size_t i = 0; i < on.logp.size(); ++i) {
        CHECK_CLOSE(r.grad_logp[i], b.grad[i], 1e-12, 1e-14);
        worst = std::max(worst, std::fabs(r.grad_logp[i] - b.grad[i]));
      }

      // Responses drawn from another proposal q′: the q′ terms no longer cancel, and the two objectives differ.
      const std::vector<int> y = other.sample(k, rng);
      const groups off = group_of(y, policy, reference, reward_of);
      std::vector<double> log_proposal;
      const auto lq = other.log_probs();
      for (int o : y) log_proposal.push_back(lq[static_cast<std::size_t>(o)]);
      const double rpo_off = run(rpo_bwd, off, rpo::reduction::sum()).loss;
      differs_off_reference = differs_off_reference || std::fabs(brain(off, eta, log_proposal).value - rpo_off) > 1e-3;
    }
    CAPTURE(worst);
    CHECK(worst < 1e-14);
    CHECK(differs_off_reference);
  }

  TEST_CASE_TEMPLATE("ragged batches: each group's loss and gradient are those of the group alone", L, rpo::rpo_sqloo,
                     rpo::rpo_sqpairs, rpo::rpo_softmax_bwd, rpo::rpo_softmax_fwd, rpo::infonca, rpo::listwise_dpo,
                     rpo::dpo_best_worst) {
    std::mt19937_64 rng(131);
    const groups b({2, 7, 3, 2, 5, 8, 4, 3, 6}, rng);
    const L l{};
    const result whole = run(l, b);
    const result summed = run(l, b, rpo::reduction::sum());
    const double groups_count = static_cast<double>(b.count());
    double total = 0;
    for (std::size_t g = 0; g < b.count(); ++g) {
      const result alone = run(l, b.one(g), rpo::reduction::sum());
      CHECK(whole.group_loss[g] == alone.loss);
      total += alone.loss;
      for (std::size_t i = 0; i < alone.grad_logp.size(); ++i) {
        const auto at = static_cast<std::size_t>(b.offsets[g]) + i;
        CHECK(summed.grad_logp[at] == alone.grad_logp[i]);
        CHECK_CLOSE(whole.grad_logp[at], alone.grad_logp[i] / groups_count, 1e-15, 0);
        CHECK_CLOSE(whole.grad_ref_logp[at], alone.grad_ref_logp[i] / groups_count, 1e-15, 0);
      }
    }
    CHECK_CLOSE(whole.loss, total / groups_count, 1e-14, 0);
    // Micro-batches of whole groups, each reduced with the global count, add up to the whole batch's mean.
    double accumulated = 0;
    std::vector<double> parts(b.logp.size());
    const std::pair<std::size_t, std::size_t> splits[] = {{0, 4}, {4, 5}, {5, 9}};
    for (const auto& [g0, g1] : splits) {
      const auto first = static_cast<std::size_t>(b.offsets[g0]), n = static_cast<std::size_t>(b.offsets[g1]) - first;
      std::vector<std::int64_t> offsets;
      for (std::size_t g = g0; g <= g1; ++g) offsets.push_back(b.offsets[g] - b.offsets[g0]);
      const auto part = [&](const std::vector<double>& v) { return std::span<const double>(v).subspan(first, n); };
      accumulated += rpo::evaluate(l, {part(b.logp), part(b.ref_logp), part(b.length), part(b.reward), offsets},
                                   {.grad_logp = std::span<double>(parts).subspan(first, n)},
                                   rpo::reduction::sum_over(groups_count));
    }
    CHECK_CLOSE(accumulated, whole.loss, 1e-12, 0);
    for (std::size_t i = 0; i < parts.size(); ++i) CHECK(parts[i] == whole.grad_logp[i]);
  }

  TEST_CASE_TEMPLATE("shifting every implicit reward of a group changes nothing, and the gradients sum to 0", L,
                     rpo::rpo_sqloo, rpo::rpo_sqpairs, rpo::rpo_softmax_bwd, rpo::rpo_softmax_fwd, rpo::infonca,
                     rpo::listwise_dpo, rpo::dpo_best_worst, pairs_dpo, pairs_margin, loo_fwd) {
    std::mt19937_64 rng(137);
    const L l{};
    for (int n = 0; n < 30; ++n) {
      const groups b({2 + n % 7}, rng, 15);
      groups moved = b;
      for (double& x : moved.logp) x += 3.5;
      const result x = run(l, b), y = run(l, moved);
      CHECK_CLOSE(y.loss, x.loss, 1e-10, 1e-13);
      double sum = 0, size = 0;
      for (std::size_t i = 0; i < b.logp.size(); ++i) {
        CHECK_CLOSE(y.grad_logp[i], x.grad_logp[i], 1e-9, 1e-13);
        sum += x.grad_logp[i];
        size = std::max(size, std::fabs(x.grad_logp[i]));
      }
      CHECK(std::fabs(sum) <= 1e-13 * (1 + size));
    }
  }

  TEST_CASE("finite losses and gradients at extreme gaps, float and double") {
    const auto finite = [](auto l, double spread_s, double spread_r, auto zero) {
      using T = decltype(zero);
      std::vector<T> logp, ref, reward;
      for (int i = 0; i < 6; ++i) {
        logp.push_back(static_cast<T>(spread_s * (i % 2 == 0 ? 1 : -1) / (i + 1)));
        ref.push_back(T(0));
        reward.push_back(static_cast<T>(spread_r * (i % 3 == 0 ? -1 : 1) / (i + 1)));
      }
      const std::vector<std::int64_t> offsets{0, 6};
      std::vector<T> grad(6);
      const T value =
          rpo::evaluate(l, rpo::batch_input<T>{logp, ref, {}, reward, offsets}, rpo::batch_output<T>{.grad_logp = grad});
      CHECK(std::isfinite(value));
      for (T g : grad) CHECK(std::isfinite(g));
    };
    for (double s : {1.0, 1e3, 1e6}) {
      for (double r : {1.0, 1e3, 1e6}) {
        CAPTURE(s);
        CAPTURE(r);
        finite(rpo::rpo_softmax_bwd{.beta = 1, .eta = 1}, s, r, 0.0);
        finite(rpo::rpo_softmax_fwd{.beta = 1, .eta = 1}, s, r, 0.0);
        finite(rpo::infonca{.beta = 1, .alpha = 1}, s, r, 0.0);
        finite(rpo::listwise_dpo{.beta = 1}, s, r, 0.0);
        finite(rpo::rpo_sqloo{.beta = 1, .eta = 1}, s, r, 0.0);
        finite(rpo::rpo_sqpairs{.beta = 1, .eta = 1}, s, r, 0.0);
        finite(rpo::dpo_best_worst{.beta = 1}, s, r, 0.0);
        finite(rpo::rpo_softmax_bwd{.beta = 1, .eta = 1}, s, r, 0.0f);
        finite(rpo::rpo_softmax_fwd{.beta = 1, .eta = 1}, s, r, 0.0f);
        finite(rpo::listwise_dpo{.beta = 1}, s, r, 0.0f);
      }
    }
  }

  TEST_CASE("float batches agree with double to float precision") {
    std::mt19937_64 rng(139);
    const groups b({2, 5, 3, 8, 4}, rng, 10);
    const auto to_float = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
    const auto lp = to_float(b.logp), ref = to_float(b.ref_logp), rw = to_float(b.reward);
    // The double reference from the same (rounded) inputs.
    groups rounded = b;
    rounded.logp.assign(lp.begin(), lp.end());
    rounded.ref_logp.assign(ref.begin(), ref.end());
    rounded.reward.assign(rw.begin(), rw.end());
    const auto each = [&](auto l) {
      std::vector<float> grad(lp.size());
      const float value = rpo::evaluate(l, rpo::batch_input<float>{lp, ref, {}, rw, b.offsets},
                                        rpo::batch_output<float>{.grad_logp = grad});
      const result d = run(l, rounded);
      // float rounds β·(logp − ref_logp) at |logp| ≈ 300 to ~1e-5: the loss and gradients follow to that level.
      CHECK_CLOSE(value, d.loss, 1e-4, 1e-5);
      for (std::size_t i = 0; i < grad.size(); ++i) CHECK_CLOSE(grad[i], d.grad_logp[i], 1e-3, 1e-5);
    };
    each(rpo::rpo_sqloo{});
    each(rpo::rpo_sqpairs{});
    each(rpo::rpo_softmax_bwd{});
    each(rpo::rpo_softmax_fwd{});
    each(rpo::infonca{.beta = 0.1, .alpha = 0.5});
    each(rpo::listwise_dpo{});
    each(rpo::dpo_best_worst{});
  }

  TEST_CASE("bad input: groups of one, decreasing or short offsets, no offsets, ties in a ranking") {
    const std::vector<double> lp{-1, -2, -3, -4, -5}, ref(5, -1.0), rw{3, 1, 2, 0.5, -1};
    const auto with = [&](const std::vector<std::int64_t>& offsets) {
      return rpo::batch_input<double>{lp, ref, {}, rw, offsets};
    };
    const std::vector<std::int64_t> lone{0, 2, 3, 5}, decreasing{0, 3, 2, 5}, short_end{0, 2, 4}, too_far{0, 3, 7};
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::rpo_softmax_bwd{}, with(lone)); },
                                        {"rpo::rpo_softmax_bwd: group 1 (offsets[1] to offsets[2]) has 1 responses",
                                         "needs at least 2"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::rpo_sqloo{}, with(decreasing)); },
                                        {"rpo::rpo_sqloo: offsets must not decrease",
                                         "offsets[2] = 2 is below offsets[1] = 3"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::listwise_dpo{}, with(short_end)); },
                                        {"offsets must end at the number of responses 5", "last offset is 4"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::dpo_best_worst{}, with(too_far)); },
                                        {"offsets must end at the number of responses 5", "last offset is 7"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::rpo_sqpairs{}, with({})); },
                                        {"offsets must be given", "groups of any size"});

    // Ties where a scheme ranks: a domain error naming the group, the responses and the reward.
    const std::vector<double> tied{3, 1, 0.5, 2, 0.5, -1, 4, 4, 4};
    const std::vector<std::int64_t> three{0, 2, 6, 9};
    const std::vector<double> nine_logp(9, -1.0), nine_ref(9, -2.0);
    const rpo::batch_input<double> ties{.logp = nine_logp, .ref_logp = nine_ref, .reward = tied, .offsets = three};
    expect_error<std::domain_error>(
        [&] { rpo::evaluate(rpo::listwise_dpo{}, ties); },
        {"rpo::listwise_dpo: group 1 (responses 2 to 5)", "responses 2 and 4 tie", "reward[2] = reward[4] = 0.5",
         "ties in a ranking"});
    expect_error<std::domain_error>([&] { rpo::evaluate(pairs_dpo{}, ties); },
                                    {"rpo::loss: group 1", "responses 2 and 4 tie"});
    // best-vs-worst takes ties in the middle, but not a group whose rewards all tie.
    expect_error<std::domain_error>([&] { rpo::evaluate(rpo::dpo_best_worst{}, ties); },
                                    {"rpo::dpo_best_worst: group 2 (responses 6 to 8)", "best and worst",
                                     "every response has reward = 4"});
    // Schemes that do not rank take ties: the reward-gap target gives b = 0.
    CHECK(std::isfinite(rpo::evaluate(rpo::rpo_sqpairs{}, ties)));
    CHECK(std::isfinite(rpo::evaluate(rpo::rpo_softmax_bwd{}, ties)));
    CHECK(std::isfinite(rpo::evaluate(rpo::rpo_sqloo{}, ties)));
    // The pair entry point checks it too.
    expect_error<std::domain_error>(
        [] { rpo::value_and_grad(rpo::dpo_best_worst{}, {.logp = {-1, -2}, .ref_logp = {-1, -1}, .reward = {2, 2}}); },
        {"rpo::dpo_best_worst: group 0 (responses 0 to 1)", "best and worst"});

    // Under errors::report: a NaN loss, the message, and outputs left untouched.
    std::vector<double> grad(9, 7.0), losses(3, 7.0);
    rpo::status status;
    const double value =
        rpo::evaluate(rpo::listwise_dpo{}, ties, {.group_loss = losses, .grad_logp = grad}, rpo::reduction::mean(),
                      rpo::errors::report{&status});
    CHECK(std::isnan(value));
    CHECK(status.code == rpo::errc::domain_error);
    CHECK(status.message.find("group 1") != std::string::npos);
    CHECK(grad == std::vector<double>(9, 7.0));
    CHECK(losses == std::vector<double>(3, 7.0));
    // Under errors::unchecked the kernel orders a tie by index, and stays finite; a NaN reward gives an unspecified
    // result but no read or write out of bounds (the sanitizer builds check that).
    CHECK(std::isfinite(rpo::evaluate(rpo::listwise_dpo{}, ties, {}, rpo::reduction::mean(), rpo::errors::unchecked{})));
    std::vector<double> with_nan = tied;
    with_nan[3] = std::numeric_limits<double>::quiet_NaN();
    const rpo::batch_input<double> nan_batch{.logp = nine_logp, .ref_logp = nine_ref, .reward = with_nan, .offsets = three};
    std::vector<double> nan_grad(9);
    const auto unchecked = [&](const auto& l) {
      rpo::evaluate(l, nan_batch, {.grad_logp = nan_grad}, rpo::reduction::mean(), rpo::errors::unchecked{});
    };
    CHECK_NOTHROW(unchecked(rpo::listwise_dpo{}));
    CHECK_NOTHROW(unchecked(rpo::dpo_best_worst{}));
    CHECK_NOTHROW(unchecked(pairs_dpo{}));

    // The presets' own parameter: InfoNCA's temperature.
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::infonca{.alpha = 0}, with({0, 5})); },
                                        {"rpo::infonca: alpha must be finite and > 0"});
  }
}
