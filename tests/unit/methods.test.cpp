// The catalogue's methods (LOSSES.md §1–4) as presets, in the template, as weighted sums with the NLL term, and
// outside the template (rpo/extension.hpp): gradients against central differences (and dual numbers for BCO's δ and
// soft SPPO), values and gradients against the formulas of LOSSES.md written out here, the reductions the catalogue
// states, finite values at extreme inputs, and the checks of their parameters and inputs. The golden vectors of
// tests/reference/torch_reference.py check the same presets through rpo-eval (CTest's golden:* tests).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/presets.hpp"
#include "support/close.hpp"
#include "support/dual.hpp"
#include "support/expect_error.hpp"
#include "support/gradient_check.hpp"
#include "support/presets.hpp"

namespace {

double sp(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sig(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }
double log_sig(double x) { return -sp(-x); }

/// A random pair: log-probs in [-300, -1], log-ratios ℓ in [-spread, spread], lengths in 1..200, rewards with
/// r_c > r_r (ODPO needs it; the others do not read them or do not care).
rpo::pair_input<double> random_pair(std::mt19937_64& rng, double spread) {
  std::uniform_real_distribution<double> logp(-300, -1), ratio(-spread, spread), length(1, 200), reward(-5, 5),
      above(0.01, 10);
  rpo::pair_input<double> in;
  for (int i = 0; i < 2; ++i) {
    in.logp[i] = logp(rng);
    in.ref_logp[i] = in.logp[i] - ratio(rng);
    in.length[i] = std::round(length(rng));
  }
  in.reward[1] = reward(rng);
  in.reward[0] = in.reward[1] + above(rng);
  return in;
}

/// The log-probs of a double pair in T (the other fields absent).
template <class T> rpo::pair_input<T> log_probs_in(const rpo::pair_input<double>& d) {
  rpo::pair_input<T> in;
  for (int i = 0; i < 2; ++i) {
    in.logp[i] = static_cast<T>(d.logp[i]);
    in.ref_logp[i] = static_cast<T>(d.ref_logp[i]);
  }
  return in;
}


template <class P, class T> void check_gradients(const P& preset, const rpo::pair_input<T>& in) {
  const auto r = rpo::value_and_grad(preset, in);
  CAPTURE(std::string(P::name));
  CAPTURE(in.logp[0]);
  CAPTURE(in.logp[1]);
  CAPTURE(in.ref_logp[0]);
  CAPTURE(in.ref_logp[1]);
  CAPTURE(in.length[0]);
  CAPTURE(in.length[1]);
  for (int i = 0; i < 2; ++i) {
    for (auto field : {&rpo::pair_input<T>::logp, &rpo::pair_input<T>::ref_logp}) {
      const auto loss_at = [&](T x) {
        rpo::pair_input<T> moved = in;
        (moved.*field)[i] = x;
        return rpo::value_and_grad(preset, moved).loss;
      };
      const T analytic = field == &rpo::pair_input<T>::logp ? r.grad_logp[i] : r.grad_ref_logp[i];
      CAPTURE(i);
      CHECK(test::fd_relative_error(loss_at, (in.*field)[i], analytic, test::fd_floor<T>) < test::fd_tolerance<T>);
    }
  }
}

/// One random group of k responses: log-ratios in [-spread, spread], rewards N(0, 2) (distinct with probability 1).
struct random_group {
  std::vector<double> logp, ref_logp, length, reward;
  std::vector<std::int64_t> offsets;
  random_group(std::mt19937_64& rng, int k, double spread) : offsets{0, k} {
    std::uniform_real_distribution<double> lp(-300, -1), ratio(-spread, spread);
    std::normal_distribution<double> r(0, 2);
    for (int i = 0; i < k; ++i) {
      logp.push_back(lp(rng));
      ref_logp.push_back(logp.back() - ratio(rng));
      length.push_back(1);
      reward.push_back(r(rng));
    }
  }
  rpo::batch_input<double> input() const { return {logp, ref_logp, length, reward, offsets}; }
  /// The loss of the group, and its gradients in logp and ref_logp.
  template <class P> double run(const P& preset, std::vector<double>& grad, std::vector<double>& grad_ref) const {
    grad.assign(logp.size(), 0);
    grad_ref.assign(logp.size(), 0);
    return rpo::evaluate(preset, input(), rpo::batch_output<double>{{}, grad, grad_ref}, rpo::reduction::sum());
  }
};

template <class P> void check_group_gradients(const P& preset, const random_group& g) {
  std::vector<double> grad, grad_ref;
  (void)g.run(preset, grad, grad_ref);
  for (std::size_t i = 0; i < g.logp.size(); ++i) {
    for (auto field : {&random_group::logp, &random_group::ref_logp}) {
      const auto loss_at = [&](double x) {
        random_group moved = g;
        (moved.*field)[i] = x;
        return rpo::evaluate(preset, moved.input(), rpo::batch_output<double>{}, rpo::reduction::sum());
      };
      CAPTURE(i);
      const double analytic = field == &random_group::logp ? grad[i] : grad_ref[i];
      CHECK(test::fd_relative_error(loss_at, (g.*field)[i], analytic, test::fd_floor<double>) <
            test::fd_tolerance<double>);
    }
  }
}

/// Two pair results agree: loss and every gradient, to `rtol` relative.
void expect_same(const rpo::pair_result<double>& x, const rpo::pair_result<double>& y, double rtol) {
  CHECK_CLOSE(x.loss, y.loss, rtol, 1e-300);
  for (int i = 0; i < 2; ++i) {
    CHECK_CLOSE(x.grad_logp[i], y.grad_logp[i], rtol, 1e-300);
    CHECK_CLOSE(x.grad_ref_logp[i], y.grad_ref_logp[i], rtol, 1e-300);
  }
}

/// ℓ = logp − ref_logp of response i.
double ratio(const rpo::pair_input<double>& in, int i) { return in.logp[i] - in.ref_logp[i]; }

/// check_gradients in double and float at 60 random pairs of each spread 0.5, 5 and 60 (a finite loss first). DPOP's
/// anchor max(0, −ℓ_c) has a kink at ℓ_c = 0: its pairs within 0.3 of it are skipped, since differences straddling
/// the kink (the float step is 1/16) are meaningless.
template <class P> void check_gradients_at_random_pairs(const P& preset, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (double spread : {0.5, 5.0, 60.0}) {
    for (int n = 0; n < 60; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, spread);
      if (std::is_same_v<P, rpo::dpop> && std::fabs(ratio(in, 0)) < 0.3) continue;
      const auto r = rpo::value_and_grad(preset, in);
      CAPTURE(spread);
      CAPTURE(r.loss);
      REQUIRE(std::isfinite(r.loss));
      check_gradients(preset, in);
      check_gradients(preset, test::to_float(in));
    }
  }
}

}  // namespace

TEST_SUITE("methods") {
  TEST_CASE_TEMPLATE("gradients agree with central differences at random pairs", P, rpo::exo_pair, rpo::cpo_pref,
                     rpo::odpo, rpo::rdpo, rpo::hdpo, rpo::alphapo, rpo::fdpo_forward_kl, rpo::fdpo_js,
                     rpo::fdpo_alpha, rpo::discopop, rpo::focalpo, rpo::dno) {
    check_gradients_at_random_pairs(P{}, 101);
  }

  TEST_CASE("non-default parameters: gradients agree with central differences") {
    std::mt19937_64 rng(103);
    for (int n = 0; n < 60; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 8.0);
      check_gradients(rpo::exo_pair{.beta = 0.5, .epsilon = 0.2}, in);
      check_gradients(rpo::odpo{.beta = 0.3, .alpha = 2.0}, in);
      check_gradients(rpo::rdpo{.beta = 0.2, .alpha = -0.03}, in);
      check_gradients(rpo::hdpo{.beta = 0.2, .alpha = 0.7}, in);
      check_gradients(rpo::alphapo{.beta = 5, .alpha = -0.5, .gamma = 1}, in);
      // The α score e^{−0.8ℓ} makes the loss vary on a scale of e^{−0.8ℓ}/β in logp: past |ℓ| ≈ 3 the fixed step of
      // the differences (2^-9) is no longer small on that scale, so this one is checked on moderate log-ratios.
      check_gradients(rpo::fdpo_alpha{.beta = 0.3, .alpha = 0.2}, random_pair(rng, 3.0));
      check_gradients(rpo::discopop{.beta = 0.5, .tau = 2.0}, in);
      check_gradients(rpo::focalpo{.beta = 0.5, .gamma = 3.0}, in);
    }
  }

  TEST_CASE("each method equals its LOSSES.md formula, value and gradient, written out independently") {
    std::mt19937_64 rng(107);
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 20.0);
      const double lc = ratio(in, 0), lr = ratio(in, 1), delta = lc - lr;
      const double nc = in.length[0], nr = in.length[1];
      CAPTURE(delta);
      {  // §1.5 EXO: σ(a)[log σ(a) − log(1−ε)] + σ(−a)[log σ(−a) − log ε]; ∂L/∂logp_c = β σ′(a)(a − a*).
        const double beta = 0.1, eps = 1e-3, a = beta * delta, a_star = std::log((1 - eps) / eps);
        const auto r = rpo::value_and_grad(rpo::exo_pair{.beta = beta, .epsilon = eps}, in);
        CHECK_CLOSE(r.loss, sig(a) * (log_sig(a) - std::log1p(-eps)) + sig(-a) * (log_sig(-a) - std::log(eps)), 1e-11,
                    1e-13);
        const double closed_form = beta * sig(a) * sig(-a) * (a - a_star);
        CHECK_CLOSE(r.grad_logp[0], closed_form, 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], -closed_form, 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_ref_logp[0], -closed_form, 1e-11, 1e-300);
      }
      {  // §2.1 CPO's preference term: −log σ(β(logp_c − logp_r)), no reference.
        const double u = 0.1 * (in.logp[0] - in.logp[1]);
        const auto r = rpo::value_and_grad(rpo::cpo_pref{.beta = 0.1}, in);
        CHECK_CLOSE(r.loss, sp(-u), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -0.1 * sig(-u), 1e-12, 1e-300);
        CHECK(r.grad_ref_logp[0] == 0);
      }
      {  // §4.1 ODPO: −log σ(a − α log(r_c − r_r)).
        const double u = 0.2 * delta - 1.5 * std::log(in.reward[0] - in.reward[1]);
        const auto r = rpo::value_and_grad(rpo::odpo{.beta = 0.2, .alpha = 1.5}, in);
        CHECK_CLOSE(r.loss, sp(-u), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -0.2 * sig(-u), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], 0.2 * sig(-u), 1e-12, 1e-300);
      }
      {  // §4.2 R-DPO: −log σ(a + α(n_c − n_r)).
        const double u = 0.1 * delta + 0.02 * (nc - nr);
        const auto r = rpo::value_and_grad(rpo::rdpo{.beta = 0.1, .alpha = 0.02}, in);
        CHECK_CLOSE(r.loss, sp(-u), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -0.1 * sig(-u), 1e-12, 1e-300);
      }
      {  // §4.17 H-DPO: u = β[(α logp_c − ref_c) − (α logp_r − ref_r)], ∂L/∂logp_c = −αβ σ(−u).
        const double alpha = 0.8, beta = 0.1;
        const double u = beta * ((alpha * in.logp[0] - in.ref_logp[0]) - (alpha * in.logp[1] - in.ref_logp[1]));
        const auto r = rpo::value_and_grad(rpo::hdpo{.beta = beta, .alpha = alpha}, in);
        CHECK_CLOSE(r.loss, sp(-u), 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -alpha * beta * sig(-u), 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_ref_logp[1], -beta * sig(-u), 1e-11, 1e-300);
      }
      {  // §2.1 AlphaPO: u = β(r_α(ā_c) − r_α(ā_r)) − γ, r_α(ā) = (1 − e^{−αā})/α; ∂L/∂ā_c = −βσ(−u)e^{−αā_c}.
        const double alpha = 0.25, beta = 2.5, gamma = 0.1;
        const double ac = in.logp[0] / nc, ar = in.logp[1] / nr;
        if (alpha * std::fabs(ac) < 80 && alpha * std::fabs(ar) < 80) {
          const auto shape = [&](double x) { return (1 - std::exp(-alpha * x)) / alpha; };
          const double u = beta * (shape(ac) - shape(ar)) - gamma;
          const auto r = rpo::value_and_grad(rpo::alphapo{.beta = beta, .alpha = alpha, .gamma = gamma}, in);
          CHECK_CLOSE(r.loss, sp(-u), 1e-10, 1e-300);
          CHECK_CLOSE(r.grad_logp[0], -beta * sig(-u) * std::exp(-alpha * ac) / nc, 1e-10, 1e-300);
          CHECK_CLOSE(r.grad_logp[1], beta * sig(-u) * std::exp(-alpha * ar) / nr, 1e-10, 1e-300);
        }
      }
      {  // §1.15 f-DPO: u = β(ψ(ℓ_c) − ψ(ℓ_r)), ∂L/∂logp_c = −βσ(−u)ψ′(ℓ_c), ∂L/∂logp_r = +βσ(−u)ψ′(ℓ_r).
        const double beta = 0.1;
        const auto check = [&](const auto& preset, auto psi, auto dpsi) {
          const double u = beta * (psi(lc) - psi(lr));
          const auto r = rpo::value_and_grad(preset, in);
          CHECK_CLOSE(r.loss, sp(-u), 1e-10, 1e-300);
          CHECK_CLOSE(r.grad_logp[0], -beta * sig(-u) * dpsi(lc), 1e-10, 1e-300);
          CHECK_CLOSE(r.grad_logp[1], beta * sig(-u) * dpsi(lr), 1e-10, 1e-300);
        };
        check(rpo::fdpo_forward_kl{.beta = beta}, [](double l) { return -std::exp(-l); },
              [](double l) { return std::exp(-l); });
        check(rpo::fdpo_js{.beta = beta}, [](double l) { return log_sig(l); }, [](double l) { return sig(-l); });
        const double alpha = 0.3;
        check(rpo::fdpo_alpha{.beta = beta, .alpha = alpha},
              [&](double l) { return std::exp((alpha - 1) * l) / (alpha - 1); },
              [&](double l) { return std::exp((alpha - 1) * l); });
      }
      {  // §1.12 DiscoPOP: m = σ(a/τ), L = (1−m)softplus(−a) + m e^{−a}, and its gradient as LOSSES.md writes it.
        const double beta = 0.1, tau = 0.05, a = beta * delta, m = sig(a / tau);
        if (std::fabs(a) < 30) {
          const double value = (1 - m) * sp(-a) + m * std::exp(-a);
          const double slope =
              -(1 - m) * sig(-a) - m * std::exp(-a) + (m * (1 - m) / tau) * (std::exp(-a) - sp(-a));
          const auto r = rpo::value_and_grad(rpo::discopop{.beta = beta, .tau = tau}, in);
          CHECK_CLOSE(r.loss, value, 1e-10, 1e-13);
          CHECK_CLOSE(r.grad_logp[0], beta * slope, 1e-9, 1e-13);
          CHECK_CLOSE(r.grad_logp[1], -beta * slope, 1e-9, 1e-13);
        }
      }
      {  // §4.5 FocalPO: P = σ(a), L = −P^γ log P, ∂L/∂a = −P^γ(1−P)(γ log P + 1).
        const double beta = 0.1, gamma = 0.5, a = beta * delta, p = sig(a);
        const auto r = rpo::value_and_grad(rpo::focalpo{.beta = beta, .gamma = gamma}, in);
        CHECK_CLOSE(r.loss, -std::pow(p, gamma) * log_sig(a), 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -beta * std::pow(p, gamma) * sig(-a) * (gamma * log_sig(a) + 1), 1e-10, 1e-300);
      }
    }
  }

  TEST_CASE("the reductions the catalogue states: each method at its neutral parameter is the method it extends") {
    std::mt19937_64 rng(109);
    const auto same = [](const auto& x, const auto& y, double rtol) { expect_same(x, y, rtol); };
    for (int n = 0; n < 200; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 30.0);
      const auto dpo = rpo::value_and_grad(rpo::dpo{.beta = 0.2}, in);
      same(rpo::value_and_grad(rpo::hdpo{.beta = 0.2, .alpha = 1}, in), dpo, 1e-13);          // §4.17: α = 1
      same(rpo::value_and_grad(rpo::rdpo{.beta = 0.2, .alpha = 0}, in), dpo, 1e-13);          // §4.2: α = 0
      same(rpo::value_and_grad(rpo::odpo{.beta = 0.2, .alpha = 0}, in), dpo, 1e-13);          // §4.1: α = 0
      same(rpo::value_and_grad(rpo::fdpo_alpha{.beta = 0.2, .alpha = 1}, in), dpo, 1e-13);    // §1.15: reverse KL
      same(rpo::value_and_grad(rpo::focalpo{.beta = 0.2, .gamma = 0}, in), dpo, 1e-13);       // §4.5: γ = 0
      // §2.1: AlphaPO at α = 0 is SimPO, with the same β and γ.
      same(rpo::value_and_grad(rpo::alphapo{.beta = 2, .alpha = 0, .gamma = 0.4}, in),
           rpo::value_and_grad(rpo::simpo{.beta = 2, .gamma = 0.4}, in), 1e-13);
      // §1.5: EXO-pair is NeMo's rpo_fwd_kl with the label-derived target b = logit(1 − ε): here η(r_c − r_r) = b.
      const double eps = 0.01, b = std::log((1 - eps) / eps);
      rpo::pair_input<double> labelled = in;
      labelled.reward[0] = b;
      labelled.reward[1] = 0;
      same(rpo::value_and_grad(rpo::exo_pair{.beta = 0.2, .epsilon = eps}, in),
           rpo::value_and_grad(rpo::rpo_fwd{.beta = 0.2, .eta = 1}, labelled), 1e-12);
    }
  }

  TEST_CASE_TEMPLATE("finite loss and gradients at extreme inputs: |logp| up to 1e4 (float) and 1e15 (double)", T,
                     float, double) {
    const double top = std::is_same_v<T, float> ? 1e4 : 1e15;
    for (double x : {-top, -top / 3, -100.0, -1.0, 0.0, 1.0, 100.0, top / 7, top}) {
      for (double y : {-top, -2.0, 0.0, top / 5}) {
        CAPTURE(x);
        CAPTURE(y);
        // β = 1: ℓ_c = x and ℓ_r = y are the log-ratios (DiscoPOP's e^{−a}, forward KL's e^{−ℓ}), and ā = logp/1
        // (AlphaPO's e^{−αā}); logp ≤ 0 where a log-prob must be.
        const rpo::pair_input<T> in{.logp = {static_cast<T>(-std::fabs(x)), static_cast<T>(-std::fabs(y))},
                                    .ref_logp = {static_cast<T>(-std::fabs(x) - x), static_cast<T>(-std::fabs(y) - y)},
                                    .length = {T(1), T(1)},
                                    .reward = {T(2), T(1)}};
        const auto each = [&](const auto& preset) { test::check_finite(rpo::value_and_grad(preset, in)); };
        each(rpo::exo_pair{.beta = 1, .epsilon = 1e-30});  // log ε = −69
        each(rpo::exo_pair{.beta = 1});
        each(rpo::cpo_pref{.beta = 1});
        each(rpo::odpo{.beta = 1});
        each(rpo::rdpo{.beta = 1});
        each(rpo::hdpo{.beta = 1, .alpha = 0.5});
        each(rpo::alphapo{.beta = 1});
        each(rpo::alphapo{.beta = 1, .alpha = -0.5});
        each(rpo::fdpo_forward_kl{.beta = 1e-3});  // e^{−ℓ} clamped at e^80
        each(rpo::fdpo_js{.beta = 1});
        each(rpo::fdpo_alpha{.beta = 1e-3, .alpha = 0.1});
        each(rpo::discopop{.beta = 1});  // exp(log σ(a/τ) − a), never e^{−a} alone
        each(rpo::focalpo{.beta = 1, .gamma = 2});
      }
    }
  }

  TEST_CASE("ODPO needs r_c > r_r, and says so naming the rewards") {
    const rpo::pair_input<double> tie{.logp = {-3, -4}, .ref_logp = {-3, -4}, .reward = {1, 1}};
    test::expect_error<std::domain_error>([&] { (void)rpo::value_and_grad(rpo::odpo{}, tie); },
                                          {"rpo::odpo: group 0 (responses 0 to 1) needs the chosen response's explicit "
                                           "reward above the others'"});
    const rpo::pair_input<double> swapped{.logp = {-3, -4}, .ref_logp = {-3, -4}, .reward = {0.5, 2}};
    test::expect_error<std::domain_error>([&] { (void)rpo::value_and_grad(rpo::odpo{}, swapped); },
                                          {"reward[0] = 0.5 and reward[1] = 2"});
  }

  TEST_CASE("ODPO on a batch of pairs: the one out of order is named, wherever it sits, with or without offsets") {
    // The batch layer checks consecutive pairs in one pass first and looks for the culprit only after a failure.
    const std::int64_t pairs = 1000;
    std::vector<double> logp(2 * pairs, -3.0), reward(2 * pairs);
    for (std::int64_t g = 0; g < pairs; ++g) {
      reward[static_cast<std::size_t>(2 * g)] = 1.0 + static_cast<double>(g);
      reward[static_cast<std::size_t>(2 * g + 1)] = static_cast<double>(g);
    }
    std::vector<std::int64_t> offsets;
    for (std::int64_t o = 0; o <= 2 * pairs; o += 2) offsets.push_back(o);
    const auto run = [&](bool with_offsets) {
      (void)rpo::evaluate(rpo::odpo{},
                          rpo::batch_input<double>{.logp = logp, .ref_logp = logp, .reward = reward,
                                                   .offsets = with_offsets ? std::span<const std::int64_t>(offsets)
                                                                           : std::span<const std::int64_t>()});
    };
    run(false);  // in order: no error
    run(true);
    for (const std::int64_t g : {std::int64_t{0}, std::int64_t{517}, pairs - 1}) {
      const auto c = static_cast<std::size_t>(2 * g);
      const std::string group = "rpo::odpo: group " + std::to_string(g) + " (responses " + std::to_string(2 * g) +
                                " to " + std::to_string(2 * g + 1) + ")",
                        chosen = "reward[" + std::to_string(2 * g) + "]";
      std::swap(reward[c], reward[c + 1]);
      for (const bool with_offsets : {false, true})
        test::expect_error<std::domain_error>([&] { run(with_offsets); }, {group.c_str(), chosen.c_str()});
      reward[c] = reward[c + 1];  // a tie is out of order too
      test::expect_error<std::domain_error>([&] { run(false); }, {group.c_str()});
      reward[c] = reward[c + 1] + 1;
    }
  }

  TEST_CASE("invalid parameters are refused, naming the parameter and its value") {
    const rpo::pair_input<double> in{.logp = {-3, -4}, .ref_logp = {-3, -4}, .length = {2, 3}, .reward = {2, 1}};
    const auto refuses = [&](const auto& preset, const std::string& message) {
      test::expect_error<std::invalid_argument>([&] { (void)rpo::value_and_grad(preset, in); }, {message.c_str()});
    };
    refuses(rpo::exo_pair{.epsilon = 0}, "rpo::exo_pair: epsilon must be in (0, 0.5]");
    refuses(rpo::odpo{.alpha = -1}, "rpo::odpo: alpha must be finite and >= 0, but got alpha = -1");
    refuses(rpo::rdpo{.alpha = std::numeric_limits<double>::infinity()}, "rpo::rdpo: alpha must be finite");
    refuses(rpo::hdpo{.alpha = 0}, "rpo::hdpo: alpha must be finite and > 0, but got alpha = 0");
    refuses(rpo::alphapo{.beta = -2}, "rpo::alphapo: beta must be finite and > 0, but got beta = -2");
    refuses(rpo::fdpo_alpha{.alpha = 1.5}, "rpo::fdpo_alpha: alpha must be in (0, 1], but got alpha = 1.5");
    refuses(rpo::discopop{.tau = 0}, "rpo::discopop: tau must be finite and > 0, but got tau = 0");
    refuses(rpo::focalpo{.gamma = -0.5}, "rpo::focalpo: gamma must be finite and >= 0, but got gamma = -0.5");
  }
  TEST_CASE_TEMPLATE("sums and losses outside the template: gradients agree with central differences", P, rpo::cpo,
                     rpo::irpo, rpo::mpo, rpo::robust_dpo, rpo::nca_pair, rpo::bco_pair, rpo::sppo_hard, rpo::apo_zero,
                     rpo::apo_down, rpo::dpop, rpo::dpo_shift, rpo::orpo, rpo::madpo) {
    check_gradients_at_random_pairs(P{}, 113);
  }

  TEST_CASE("sums and losses outside the template equal their LOSSES.md formulas, value and gradient") {
    std::mt19937_64 rng(127);
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 20.0);
      const double lc = ratio(in, 0), lr = ratio(in, 1), nc = in.length[0];
      const double beta = 0.2, a = beta * (lc - lr), xc = beta * lc, xr = beta * lr;
      CAPTURE(lc);
      CAPTURE(lr);
      const auto sig1 = [](double x) { return sig(x) * sig(-x); };  // σ′
      {  // §2.1 CPO = −log σ(β(logp_c − logp_r)) + λ·(−logp_c/n_c); the NLL adds −λ/n_c to the chosen gradient.
        const double u = beta * (in.logp[0] - in.logp[1]);
        const auto r = rpo::value_and_grad(rpo::cpo{.beta = beta, .lambda = 0.5}, in);
        CHECK_CLOSE(r.loss, sp(-u) - 0.5 * in.logp[0] / nc, 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -beta * sig(-u) - 0.5 / nc, 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], beta * sig(-u), 1e-12, 1e-300);
      }
      {  // §1.13 IRPO v3: DPO − α·logp_c/n_c.
        const auto r = rpo::value_and_grad(rpo::irpo{.beta = beta, .alpha = 2}, in);
        CHECK_CLOSE(r.loss, sp(-a) - 2 * in.logp[0] / nc, 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -beta * sig(-a) - 2 / nc, 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_ref_logp[0], beta * sig(-a), 1e-12, 1e-300);
      }
      {  // §1.18 MPO: 0.8·DPO + 0.2·BCO-pair + 1.0·NLL.
        const auto r = rpo::value_and_grad(rpo::mpo{.beta = beta}, in);
        CHECK_CLOSE(r.loss, 0.8 * sp(-a) + 0.2 * (sp(-xc) + sp(xr)) - in.logp[0] / nc, 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], 0.8 * beta * sig(-a) + 0.2 * beta * sig(xr), 1e-12, 1e-300);
      }
      {  // §1.7 robust: value, and ∂L/∂logp_c = β(σ(a) − (1−ε)/(1−2ε)).
        const double eps = 0.1;
        const auto r = rpo::value_and_grad(rpo::robust_dpo{.beta = beta, .epsilon = eps}, in);
        CHECK_CLOSE(r.loss, ((1 - eps) * sp(-a) - eps * sp(a)) / (1 - 2 * eps), 1e-11, 1e-12);
        CHECK_CLOSE(r.grad_logp[0], beta * (sig(a) - (1 - eps) / (1 - 2 * eps)), 1e-12, 1e-300);
      }
      {  // §1.6 NCA: ∂L/∂logp_c = β(1.5σ(βℓ_c) − 1), ∂L/∂logp_r = ½βσ(βℓ_r).
        const auto r = rpo::value_and_grad(rpo::nca_pair{.beta = beta}, in);
        CHECK_CLOSE(r.loss, -log_sig(xc) - 0.5 * log_sig(-xc) - 0.5 * log_sig(-xr), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], beta * (1.5 * sig(xc) - 1), 1e-11, 1e-13);
        CHECK_CLOSE(r.grad_logp[1], 0.5 * beta * sig(xr), 1e-12, 1e-300);
      }
      {  // §1.8 BCO-pair (no δ).
        const auto r = rpo::value_and_grad(rpo::bco_pair{.beta = beta}, in);
        CHECK_CLOSE(r.loss, -log_sig(xc) - log_sig(-xr), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -beta * sig(-xc), 1e-12, 1e-300);
      }
      {  // §1.9 SPPO-hard.
        const auto r = rpo::value_and_grad(rpo::sppo_hard{.beta = beta}, in);
        CHECK_CLOSE(r.loss, std::pow(lc - 2.5, 2) + std::pow(lr + 2.5, 2), 1e-12, 1e-12);
        CHECK_CLOSE(r.grad_logp[0], 2 * (lc - 2.5), 1e-12, 1e-12);
        CHECK_CLOSE(r.grad_ref_logp[1], -2 * (lr + 2.5), 1e-12, 1e-12);
      }
      {  // §1.11 APO-zero and APO-down.
        const auto z = rpo::value_and_grad(rpo::apo_zero{.beta = beta}, in);
        CHECK_CLOSE(z.loss, 1 - sig(xc) + sig(xr), 1e-12, 1e-14);
        CHECK_CLOSE(z.grad_logp[0], -beta * sig1(xc), 1e-11, 1e-300);
        const auto d = rpo::value_and_grad(rpo::apo_down{.beta = beta}, in);
        CHECK_CLOSE(d.loss, sig(xc) + 1 - sig(a), 1e-12, 1e-14);
        CHECK_CLOSE(d.grad_logp[0], beta * (sig1(xc) - sig1(a)), 1e-10, 1e-15);
        CHECK_CLOSE(d.grad_logp[1], beta * sig1(a), 1e-11, 1e-300);
      }
      {  // §4.3 DPOP: u = β(Δ − λ·max(0, ref_c − logp_c)); ∂L/∂logp_c = −βσ(−u)(1 + λ·[logp_c < ref_c]).
        const double lambda = 5, penalty = std::max(0.0, in.ref_logp[0] - in.logp[0]);
        const double u = beta * (lc - lr - lambda * penalty);
        const auto r = rpo::value_and_grad(rpo::dpop{.beta = beta, .lambda = lambda}, in);
        CHECK_CLOSE(r.loss, sp(-u), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -beta * sig(-u) * (1 + (penalty > 0 ? lambda : 0)), 1e-12, 1e-300);
      }
      {  // §4.15 DPO-Shift: u = β(ℓ_c − λℓ_r); ∂L/∂logp_r = λβσ(−u).
        const double u = beta * (lc - 0.9 * lr);
        const auto r = rpo::value_and_grad(rpo::dpo_shift{.beta = beta, .lambda = 0.9}, in);
        CHECK_CLOSE(r.loss, sp(-u), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], 0.9 * beta * sig(-u), 1e-12, 1e-300);
      }
    }
  }

  TEST_CASE("the extensions at their neutral parameters are DPO; the weighted sums reduce to their terms") {
    std::mt19937_64 rng(131);
    const auto same = [](const auto& x, const auto& y) { expect_same(x, y, 1e-13); };
    for (int n = 0; n < 200; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 30.0);
      const auto dpo = rpo::value_and_grad(rpo::dpo{.beta = 0.2}, in);
      same(rpo::value_and_grad(rpo::robust_dpo{.beta = 0.2, .epsilon = 0}, in), dpo);  // §1.7: ε = 0
      same(rpo::value_and_grad(rpo::dpop{.beta = 0.2, .lambda = 0}, in), dpo);         // §4.3: λ = 0
      same(rpo::value_and_grad(rpo::dpo_shift{.beta = 0.2, .lambda = 1}, in), dpo);    // §4.15: λ = 1
      same(rpo::value_and_grad(rpo::irpo{.beta = 0.2, .alpha = 0}, in), dpo);
      same(rpo::value_and_grad(rpo::mpo{.beta = 0.2, .preference = 1, .quality = 0, .generation = 0}, in), dpo);
      same(rpo::value_and_grad(rpo::cpo{.beta = 0.2, .lambda = 0}, in),
           rpo::value_and_grad(rpo::cpo_pref{.beta = 0.2}, in));
    }
  }

  TEST_CASE("outside the template means not shift-invariant: adding c to both log-ratios changes the loss") {
    // LOSSES.md §0.4: a loss of the gap alone is invariant to r_π → r_π + c(x); these are not (DPO is, for contrast).
    const rpo::pair_input<double> in{.logp = {-10, -12}, .ref_logp = {-11, -11.5}};
    rpo::pair_input<double> moved = in;
    moved.logp[0] += 3;
    moved.logp[1] += 3;
    const auto changes = [&](const auto& preset) {
      return std::fabs(rpo::value_and_grad(preset, moved).loss - rpo::value_and_grad(preset, in).loss) > 1e-6;
    };
    CHECK(!changes(rpo::dpo{}));
    CHECK(changes(rpo::nca_pair{.beta = 0.5}));
    CHECK(changes(rpo::bco_pair{}));
    CHECK(changes(rpo::sppo_hard{}));
    CHECK(changes(rpo::apo_zero{}));
    CHECK(changes(rpo::apo_down{}));
    CHECK(changes(rpo::dpo_shift{}));
    rpo::pair_input<double> below = in;  // DPOP's anchor acts only where logp_c < ref_c
    below.logp[0] = below.ref_logp[0] - 2;
    rpo::pair_input<double> below_moved = below;
    below_moved.logp[0] += 1;
    below_moved.logp[1] += 1;
    CHECK(std::fabs(rpo::value_and_grad(rpo::dpop{}, below_moved).loss - rpo::value_and_grad(rpo::dpop{}, below).loss) >
          1e-6);
  }

  TEST_CASE("DPOP's penalty is inside the sigmoid: it raises the loss and pushes logp_c up (LOSSES.md 7.9)") {
    const rpo::pair_input<double> in{.logp = {-14, -20}, .ref_logp = {-12, -19}};  // logp_c < ref_c: anchor active
    const auto without = rpo::value_and_grad(rpo::dpop{.beta = 0.1, .lambda = 0}, in);
    const auto with = rpo::value_and_grad(rpo::dpop{.beta = 0.1, .lambda = 50}, in);
    CHECK(with.loss > without.loss);                  // outside the sigmoid (−λ·max(0, ·)) it would be lower
    CHECK(with.grad_logp[0] < without.grad_logp[0]);  // a descent step raises logp_c more
    CHECK(with.grad_logp[0] < 0);
  }

  TEST_CASE_TEMPLATE("sums and extensions: finite loss and gradients at extreme log-ratios", T, float, double) {
    const double top = std::is_same_v<T, float> ? 1e4 : 1e15;
    for (double x : {-top, -100.0, 0.0, 3.0, top / 7}) {
      for (double y : {-top, -2.0, 0.5, top / 5}) {
        const rpo::pair_input<T> in{.logp = {static_cast<T>(-std::fabs(x)), static_cast<T>(-std::fabs(y))},
                                    .ref_logp = {static_cast<T>(-std::fabs(x) - x), static_cast<T>(-std::fabs(y) - y)},
                                    .length = {T(1), T(2)}};
        CAPTURE(x);
        CAPTURE(y);
        const auto each = [&](const auto& preset) { test::check_finite(rpo::value_and_grad(preset, in)); };
        each(rpo::cpo{});
        each(rpo::irpo{});
        each(rpo::mpo{});
        each(rpo::robust_dpo{.beta = 1});  // unbounded below, but finite: ≈ −εa/(1−2ε)
        each(rpo::nca_pair{.beta = 1});
        each(rpo::bco_pair{.beta = 1});
        each(rpo::sppo_hard{.beta = 1});  // (1e15)² and (1e4)² are in range
        each(rpo::apo_zero{.beta = 1});
        each(rpo::apo_down{.beta = 1});
        each(rpo::dpop{.beta = 1e-3});
        each(rpo::dpo_shift{.beta = 1});
      }
    }
  }

  TEST_CASE("sums and extensions refuse invalid parameters, naming them") {
    const rpo::pair_input<double> in{.logp = {-3, -4}, .ref_logp = {-3, -4}, .length = {2, 3}};
    const auto refuses = [&](const auto& preset, const std::string& message) {
      test::expect_error<std::invalid_argument>([&] { (void)rpo::value_and_grad(preset, in); }, {message.c_str()});
    };
    refuses(rpo::cpo{.lambda = -1}, "rpo::cpo: lambda must be finite and >= 0, but got lambda = -1");
    refuses(rpo::irpo{.beta = 0}, "rpo::irpo: beta must be finite and > 0, but got beta = 0");
    refuses(rpo::mpo{.quality = -0.5}, "rpo::mpo: quality must be finite and >= 0, but got quality = -0.5");
    refuses(rpo::robust_dpo{.epsilon = 0.5}, "rpo::robust_dpo: epsilon must be in [0, 0.5), but got epsilon = 0.5");
    refuses(rpo::dpop{.lambda = -2}, "rpo::dpop: lambda must be finite and >= 0, but got lambda = -2");
    refuses(rpo::dpo_shift{.lambda = 1.5}, "rpo::dpo_shift: lambda must be in (0, 1], but got lambda = 1.5");
  }

  // --- BCO with the running-mean shift δ, and soft SPPO (LOSSES.md §1.8, §1.9) ------------------------------------

  /// TRL v1's bco_pair kernel as it was before δ existed: softplus(−βℓ_c) + softplus(βℓ_r), −βσ(−βℓ_c), βσ(βℓ_r), with
  /// the same one-exponential primitives, so that δ = 0 can be held to it bit for bit.
  template <class T> rpo::pair_result<T> unshifted_bco(double beta, const rpo::pair_input<T>& in) {
    const T b = T(beta), lc = in.logp[0] - in.ref_logp[0], lr = in.logp[1] - in.ref_logp[1];
    const auto pc = rpo::detail::logistic_of(b * lc), pr = rpo::detail::logistic_of(b * lr);
    const T dc = -b * pc.neg, dr = b * pr.pos;
    return {pc.softpluses().minus + pr.softpluses().plus, {dc, dr}, {-dc, -dr}};
  }

  template <class T> void expect_identical(const rpo::pair_result<T>& x, const rpo::pair_result<T>& y) {
    CHECK(x.loss == y.loss);
    for (int i = 0; i < 2; ++i) {
      CHECK(x.grad_logp[i] == y.grad_logp[i]);
      CHECK(x.grad_ref_logp[i] == y.grad_ref_logp[i]);
    }
  }

  TEST_CASE_TEMPLATE("BCO at delta = 0 is TRL v1's bco_pair bit for bit, and the default delta is 0", T, float, double) {
    std::mt19937_64 rng(223);
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> d = random_pair(rng, n < 150 ? 5.0 : 80.0);
      rpo::pair_input<T> in = log_probs_in<T>(d);
      for (double beta : {0.1, 0.7}) {
        CAPTURE(beta);
        expect_identical(rpo::value_and_grad(rpo::bco_pair{.beta = beta, .delta = 0.0}, in), unshifted_bco(beta, in));
        expect_identical(rpo::value_and_grad(rpo::bco_pair{.beta = beta}, in), unshifted_bco(beta, in));
      }
    }
    CHECK(rpo::bco_pair{}.delta == 0.0);
    CHECK(rpo::extension::bco{}.delta == 0.0);
  }

  TEST_CASE("BCO with delta equals LOSSES.md 1.8's shifted formula, value and gradient; MPO keeps delta = 0") {
    std::mt19937_64 rng(227);
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 20.0);
      const double lc = ratio(in, 0), lr = ratio(in, 1), beta = 0.2;
      for (double delta : {-3.0, -0.25, 0.4, 2.5}) {
        CAPTURE(lc);
        CAPTURE(lr);
        CAPTURE(delta);
        // L = −log σ(βℓ_c − δ) − log σ(−(βℓ_r − δ)); ∂L/∂logp_c = −βσ(−(βℓ_c − δ)), ∂L/∂logp_r = βσ(βℓ_r − δ).
        const double xc = beta * lc - delta, xr = beta * lr - delta;
        const auto r = rpo::value_and_grad(rpo::bco_pair{.beta = beta, .delta = delta}, in);
        CHECK_CLOSE(r.loss, -log_sig(xc) - log_sig(-xr), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -beta * sig(-xc), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], beta * sig(xr), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_ref_logp[0], beta * sig(-xc), 1e-12, 1e-300);
        CHECK_CLOSE(r.grad_ref_logp[1], -beta * sig(xr), 1e-12, 1e-300);
      }
    }
  }

  TEST_CASE("BCO's shift identity: delta on (l_c, l_r) equals delta = 0 on (l_c - delta/beta, l_r - delta/beta)") {
    std::mt19937_64 rng(229);
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 30.0);
      for (double beta : {0.05, 0.5}) {
        for (double delta : {-2.0, 0.3, 1.7}) {
          rpo::pair_input<double> moved = in;
          moved.logp[0] -= delta / beta;  // ℓ − δ/β, through logp (ref_logp held)
          moved.logp[1] -= delta / beta;
          CAPTURE(beta);
          CAPTURE(delta);
          expect_same(rpo::value_and_grad(rpo::bco_pair{.beta = beta, .delta = delta}, in),
                      rpo::value_and_grad(rpo::bco_pair{.beta = beta}, moved), 1e-10);
        }
      }
    }
  }

  TEST_CASE_TEMPLATE("BCO with delta != 0 and soft SPPO: gradients agree with central differences", P, rpo::bco_pair,
                     rpo::sppo_soft) {
    if constexpr (std::is_same_v<P, rpo::bco_pair>) {
      // delta held fixed in both evaluations (LOSSES.md §9: it is a constant of the objective).
      check_gradients_at_random_pairs(rpo::bco_pair{.beta = 0.1, .delta = 0.8}, 233);
      check_gradients_at_random_pairs(rpo::bco_pair{.beta = 0.3, .delta = -2.5}, 239);
    } else {
      // Win probabilities drawn in [0, 1], the ends included now and then.
      std::mt19937_64 rng(241);
      std::uniform_real_distribution<double> p(0, 1);
      for (double spread : {0.5, 5.0, 60.0}) {
        for (int n = 0; n < 60; ++n) {
          rpo::pair_input<double> in = random_pair(rng, spread);
          in.reward[0] = n % 10 == 0 ? 1.0 : p(rng);
          in.reward[1] = n % 10 == 5 ? 0.0 : p(rng);
          for (double beta : {0.1, 2.0}) {
            CAPTURE(spread);
            CAPTURE(beta);
            check_gradients(rpo::sppo_soft{.beta = beta}, in);
            check_gradients(rpo::sppo_soft{.beta = beta}, test::to_float(in));
          }
        }
      }
    }
  }

  TEST_CASE("soft SPPO equals LOSSES.md 1.9's per-response formula (l_y - eta (P_y - 1/2))^2, value and gradient") {
    std::mt19937_64 rng(251);
    std::uniform_real_distribution<double> p(0, 1);
    for (int n = 0; n < 300; ++n) {
      rpo::pair_input<double> in = random_pair(rng, 20.0);
      in.reward[0] = p(rng);
      in.reward[1] = p(rng);
      for (double beta : {0.1, 0.5, 3.0}) {
        const double eta = 1 / beta;
        const double e0 = ratio(in, 0) - eta * (in.reward[0] - 0.5), e1 = ratio(in, 1) - eta * (in.reward[1] - 0.5);
        const auto r = rpo::value_and_grad(rpo::sppo_soft{.beta = beta}, in);
        CAPTURE(beta);
        CHECK_CLOSE(r.loss, e0 * e0 + e1 * e1, 1e-12, 1e-12);
        CHECK_CLOSE(r.grad_logp[0], 2 * e0, 1e-12, 1e-12);
        CHECK_CLOSE(r.grad_logp[1], 2 * e1, 1e-12, 1e-12);
        CHECK_CLOSE(r.grad_ref_logp[0], -2 * e0, 1e-12, 1e-12);
        CHECK_CLOSE(r.grad_ref_logp[1], -2 * e1, 1e-12, 1e-12);
      }
      // At P = 1/2 for both the target is 0: the loss is l_c^2 + l_r^2 whatever beta.
      rpo::pair_input<double> half = in;
      half.reward[0] = half.reward[1] = 0.5;
      CHECK_CLOSE(rpo::value_and_grad(rpo::sppo_soft{.beta = 0.01}, half).loss,
                  ratio(in, 0) * ratio(in, 0) + ratio(in, 1) * ratio(in, 1), 1e-13, 1e-300);
    }
  }

  TEST_CASE_TEMPLATE("soft SPPO with P = (1, 0) is sppo_hard exactly; (0, 1) swaps the roles", T, float, double) {
    std::mt19937_64 rng(257);
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> d = random_pair(rng, n < 150 ? 5.0 : 80.0);
      rpo::pair_input<T> in = log_probs_in<T>(d);
      in.reward[0] = T(1);
      in.reward[1] = T(0);
      for (double beta : {0.1, 0.3, 4.0}) {
        CAPTURE(beta);
        expect_identical(rpo::value_and_grad(rpo::sppo_soft{.beta = beta}, in),
                         rpo::value_and_grad(rpo::sppo_hard{.beta = beta}, in));
        // P = (0, 1): the second response is the winner; sppo_hard on the swapped pair, gradients swapped back.
        rpo::pair_input<T> flipped = in, swapped = in;
        flipped.reward[0] = T(0);
        flipped.reward[1] = T(1);
        std::swap(swapped.logp[0], swapped.logp[1]);
        std::swap(swapped.ref_logp[0], swapped.ref_logp[1]);
        const auto soft = rpo::value_and_grad(rpo::sppo_soft{.beta = beta}, flipped);
        const auto hard = rpo::value_and_grad(rpo::sppo_hard{.beta = beta}, swapped);
        CHECK(soft.loss == hard.loss);
        CHECK(soft.grad_logp[0] == hard.grad_logp[1]);
        CHECK(soft.grad_logp[1] == hard.grad_logp[0]);
      }
    }
  }

  TEST_CASE("soft SPPO over a batch: the same per pair, and reward outside [0, 1] is a domain error naming reward[i]") {
    const std::vector<double> logp{-10, -12, -8, -9}, ref{-11, -11.5, -8.5, -7}, p{0.9, 0.2, 0.5, 0.5};
    std::vector<double> grad(4), loss(2);
    const double total = rpo::evaluate(rpo::sppo_soft{.beta = 0.5}, rpo::batch_input<double>{logp, ref, {}, p},
                                       rpo::batch_output<double>{loss, grad}, rpo::reduction::sum());
    for (std::size_t g = 0; g < 2; ++g) {
      const rpo::pair_input<double> in{.logp = {logp[2 * g], logp[2 * g + 1]},
                                       .ref_logp = {ref[2 * g], ref[2 * g + 1]},
                                       .reward = {p[2 * g], p[2 * g + 1]}};
      const auto r = rpo::value_and_grad(rpo::sppo_soft{.beta = 0.5}, in);
      CHECK(loss[g] == r.loss);
      CHECK(grad[2 * g] == r.grad_logp[0]);
    }
    CHECK_CLOSE(total, loss[0] + loss[1], 1e-15, 0);

    const auto domain = [](auto&& call, std::initializer_list<const char*> parts) {
      test::expect_error<std::domain_error>(call, parts);
    };
    for (double bad : {-0.01, 1.5, std::numeric_limits<double>::infinity(), std::numeric_limits<double>::quiet_NaN()}) {
      CAPTURE(bad);
      std::vector<double> q = p;
      q[3] = bad;
      domain([&] { (void)rpo::evaluate(rpo::sppo_soft{}, rpo::batch_input<double>{logp, ref, {}, q}); },
             {"rpo::sppo_soft: reward[3] must be a probability in [0, 1], but got reward[3] = "});
      const rpo::pair_input<double> in{.logp = {-1, -2}, .ref_logp = {-1, -2}, .reward = {0.5, bad}};
      domain([&] { (void)rpo::value_and_grad(rpo::sppo_soft{}, in); },
             {"rpo::sppo_soft: reward[1] must be a probability in [0, 1]"});
    }
    // The ends are probabilities; other losses that read rewards keep the plain finiteness rule.
    const rpo::pair_input<double> ends{.logp = {-1, -2}, .ref_logp = {-1, -2}, .reward = {1.0, 0.0}};
    CHECK(std::isfinite(rpo::value_and_grad(rpo::sppo_soft{}, ends).loss));
    const rpo::pair_input<double> big{.logp = {-1, -2}, .ref_logp = {-1, -2}, .reward = {7.0, -3.0}};
    CHECK(std::isfinite(rpo::value_and_grad(rpo::madpo{}, big).loss));
    // In a weighted sum the rule follows the term that reads probabilities.
    using mixed = rpo::sum<rpo::sppo_soft::composition, rpo::nll>;
    static_assert(rpo::detail::reward_is_probability<mixed>());
    static_assert(!rpo::detail::reward_is_probability<rpo::madpo::composition>());
    const rpo::pair_input<double> out_of_range{.logp = {-1, -2}, .ref_logp = {-1, -2}, .length = {1, 1},
                                               .reward = {1.25, 0.0}};
    domain([&] { (void)rpo::value_and_grad(mixed{}, out_of_range); }, {"reward[0] must be a probability in [0, 1]"});
    // errors::report: NaN, the status names the field; errors::unchecked: not checked.
    rpo::status status;
    const auto r = rpo::value_and_grad(rpo::sppo_soft{}, out_of_range, rpo::errors::report{&status});
    CHECK(std::isnan(r.loss));
    CHECK(status.code == rpo::errc::domain_error);
    CHECK(status.message.find("reward[0]") != std::string::npos);
    CHECK(std::isfinite(rpo::value_and_grad(rpo::sppo_soft{}, out_of_range, rpo::errors::unchecked{}).loss));
  }

  TEST_CASE("BCO with delta and soft SPPO: gradients equal forward-mode dual numbers exactly") {
    // The unchecked core instantiated with test::dual<double>: seeding one input gives the exact partial derivative,
    // with no step error (STYLE.md 4.7); δ and P̂ are constants, so they carry no derivative.
    using D = test::dual<double>;
    std::mt19937_64 rng(263);
    std::uniform_real_distribution<double> p(0, 1);
    const auto exact = [](const auto& preset, const rpo::pair_input<double>& in, int at, bool moving_ref) {
      D logp[2] = {in.logp[0], in.logp[1]}, ref[2] = {in.ref_logp[0], in.ref_logp[1]},
        reward[2] = {in.reward[0], in.reward[1]};
      (moving_ref ? ref : logp)[at].d = 1;
      return rpo::as_loss(preset).evaluate(rpo::group_ref<D>{logp, ref, nullptr, reward, 2}, nullptr, nullptr).d;
    };
    for (int n = 0; n < 200; ++n) {
      rpo::pair_input<double> in = random_pair(rng, n < 100 ? 5.0 : 60.0);
      in.reward[0] = p(rng);
      in.reward[1] = p(rng);
      const auto check = [&](const auto& preset) {
        const auto r = rpo::value_and_grad(preset, in);
        for (int i = 0; i < 2; ++i) {
          CAPTURE(i);
          CHECK_CLOSE(r.grad_logp[i], exact(preset, in, i, false), 1e-13, 1e-16);
          CHECK_CLOSE(r.grad_ref_logp[i], exact(preset, in, i, true), 1e-13, 1e-16);
        }
      };
      check(rpo::bco_pair{.beta = 0.3, .delta = 1.1});
      check(rpo::bco_pair{.beta = 0.05, .delta = -4.0});
      check(rpo::sppo_soft{.beta = 0.4});
      check(rpo::sppo_soft{.beta = 5.0});
    }
  }

  TEST_CASE_TEMPLATE("BCO with delta and soft SPPO: finite loss and gradients at extreme log-ratios", T, float, double) {
    const double top = std::is_same_v<T, float> ? 1e4 : 1e15;
    for (double x : {-top, -100.0, 0.0, 3.0, top / 7}) {
      for (double y : {-top, -2.0, 0.5, top / 5}) {
        for (double p : {0.0, 0.5, 1.0}) {
          const rpo::pair_input<T> in{.logp = {static_cast<T>(-std::fabs(x)), static_cast<T>(-std::fabs(y))},
                                      .ref_logp = {static_cast<T>(-std::fabs(x) - x), static_cast<T>(-std::fabs(y) - y)},
                                      .reward = {static_cast<T>(p), static_cast<T>(1 - p)}};
          CAPTURE(x);
          CAPTURE(y);
          CAPTURE(p);
          test::check_finite(rpo::value_and_grad(rpo::bco_pair{.beta = 1, .delta = 50}, in));
          test::check_finite(rpo::value_and_grad(rpo::bco_pair{.beta = 1, .delta = -top}, in));
          test::check_finite(rpo::value_and_grad(rpo::sppo_soft{.beta = 1}, in));
          test::check_finite(rpo::value_and_grad(rpo::sppo_soft{.beta = 1e-3}, in));  // η = 1000: targets ±500
        }
      }
    }
  }

  TEST_CASE("BCO and soft SPPO refuse invalid parameters, naming them") {
    const rpo::pair_input<double> in{.logp = {-3, -4}, .ref_logp = {-3, -4}, .reward = {0.5, 0.5}};
    const auto refuses = [&](const auto& preset, const std::string& message) {
      test::expect_error<std::invalid_argument>([&] { (void)rpo::value_and_grad(preset, in); }, {message.c_str()});
    };
    refuses(rpo::bco_pair{.delta = std::numeric_limits<double>::infinity()},
            "rpo::bco_pair: delta must be finite, but got delta = inf");
    refuses(rpo::bco_pair{.delta = std::numeric_limits<double>::quiet_NaN()}, "rpo::bco_pair: delta must be finite");
    refuses(rpo::bco_pair{.beta = 0, .delta = 1}, "rpo::bco_pair: beta must be finite and > 0, but got beta = 0");
    refuses(rpo::sppo_soft{.beta = -1}, "rpo::sppo_soft: beta must be finite and > 0, but got beta = -1");
  }

  // --- ORPO, DNO, MADPO (pairs), NCA and MPO/SWEPO (groups of K) --------------------------------------------------

  TEST_CASE("ORPO, DNO and MADPO equal their LOSSES.md formulas, value and gradient") {
    std::mt19937_64 rng(137);
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 20.0);
      const double lc = ratio(in, 0), lr = ratio(in, 1), nc = in.length[0], nr = in.length[1];
      CAPTURE(lc);
      CAPTURE(lr);
      {  // §2.2 ORPO: lo = (ā_c − ā_r) − (log(1 − e^{ā_c}) − log(1 − e^{ā_r})), L = −logp_c/n_c − λ log σ(lo),
         // ∂L/∂logp_c = −1/n_c − λσ(−lo)/((1 − e^{ā_c}) n_c), ∂L/∂logp_r = +λσ(−lo)/((1 − e^{ā_r}) n_r).
        const double lambda = 0.3, ac = in.logp[0] / nc, ar = in.logp[1] / nr;
        const auto log1m = [](double x) { return std::log(-std::expm1(x)); };  // log(1 − e^x), x < 0
        const double lo = (ac - ar) - (log1m(ac) - log1m(ar));
        const auto r = rpo::value_and_grad(rpo::orpo{.lambda = lambda}, in);
        CHECK_CLOSE(r.loss, -in.logp[0] / nc - lambda * log_sig(lo), 1e-11, 1e-13);
        CHECK_CLOSE(r.grad_logp[0], -1 / nc - lambda * sig(-lo) / (-std::expm1(ac) * nc), 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], lambda * sig(-lo) / (-std::expm1(ar) * nr), 1e-11, 1e-300);
        CHECK(r.grad_ref_logp[0] == 0);
        CHECK(r.grad_ref_logp[1] == 0);
      }
      {  // §4.8 DNO: u = β(ℓ₁ − ℓ₂), L = −[P log σ(u) + (1 − P) log σ(−u)], ∂L/∂logp₁ = β(σ(u) − P); P through the
         // rewards as (logit P, 0).
        const double beta = 0.2, p = sig(in.reward[0] - in.reward[1]), u = beta * (lc - lr);
        rpo::pair_input<double> with_p = in;
        with_p.reward[0] = std::log(p / (1 - p));
        with_p.reward[1] = 0;
        const auto r = rpo::value_and_grad(rpo::dno{.beta = beta}, with_p);
        CHECK_CLOSE(r.loss, -(p * log_sig(u) + (1 - p) * log_sig(-u)), 1e-10, 1e-13);
        CHECK_CLOSE(r.grad_logp[0], beta * (sig(u) - p), 1e-9, 1e-14);
        CHECK_CLOSE(r.grad_ref_logp[1], beta * (sig(u) - p), 1e-9, 1e-14);
      }
      {  // §4.7 MADPO: w(m)·softplus(−a), w = σ(c(|m|)m)/σ(m) for m > −τ, else 1,
         // c(u) = c_min + (c_max − c_min)/(1 + ((c_max − 1)/(1 − c_min)) e^{λ(u − τ)}); the rewards' order varies.
        const double beta = 0.2, cmax = 3, cmin = 0.25, lambda = 0.7, tau = 1.5, a = beta * (lc - lr);
        rpo::pair_input<double> mixed = in;
        if (n % 3 == 1) std::swap(mixed.reward[0], mixed.reward[1]);  // m < 0: below −τ or between −τ and 0
        const double m = mixed.reward[0] - mixed.reward[1];
        const double c = cmin + (cmax - cmin) / (1 + (cmax - 1) / (1 - cmin) * std::exp(lambda * (std::fabs(m) - tau)));
        const double w = m > -tau ? sig(c * m) / sig(m) : 1.0;
        const auto r = rpo::value_and_grad(
            rpo::madpo{.beta = beta, .c_max = cmax, .c_min = cmin, .lambda = lambda, .tau = tau}, mixed);
        CAPTURE(m);
        CHECK_CLOSE(r.loss, w * sp(-a), 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_logp[0], -w * beta * sig(-a), 1e-11, 1e-300);
        CHECK_CLOSE(r.grad_logp[1], w * beta * sig(-a), 1e-11, 1e-300);
      }
    }
  }

  TEST_CASE("ORPO, DNO and MADPO: the reductions the catalogue states") {
    std::mt19937_64 rng(139);
    const auto same = [](const auto& x, const auto& y, double rtol) { expect_same(x, y, rtol); };
    for (int n = 0; n < 200; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 30.0);
      // §2.2: ORPO at λ = 0 is the NLL alone.
      CHECK_CLOSE(rpo::value_and_grad(rpo::orpo{.lambda = 0}, in).loss, -in.logp[0] / in.length[0], 1e-15, 1e-300);
      // §4.8: DNO with P = 1 − ε is cDPO with smoothing ε (both the logistic distance against b = logit(1 − ε)).
      const double eps = 0.15;
      rpo::pair_input<double> labelled = in;
      labelled.reward[0] = std::log((1 - eps) / eps);
      labelled.reward[1] = 0;
      same(rpo::value_and_grad(rpo::dno{.beta = 0.2}, labelled),
           rpo::value_and_grad(rpo::cdpo{.beta = 0.2, .epsilon = eps}, in), 1e-12);
      // §4.7: MADPO's weight is 1 for m ≤ −τ and at |m| = τ (c(τ) = 1): DPO.
      const auto dpo = rpo::value_and_grad(rpo::dpo{.beta = 0.2}, in);
      for (double m : {-2.0, -5.0, 2.0}) {
        rpo::pair_input<double> at = in;
        at.reward[0] = at.reward[1] + m;
        same(rpo::value_and_grad(rpo::madpo{.beta = 0.2}, at), dpo, 1e-13);
      }
    }
  }

  TEST_CASE("NCA and MPO/SWEPO over groups: gradients agree with central differences") {
    std::mt19937_64 rng(149);
    for (int k = 2; k <= 6; ++k) {
      for (double spread : {0.5, 5.0, 40.0}) {
        for (int n = 0; n < 12; ++n) {
          const random_group g(rng, k, spread);
          CAPTURE(k);
          CAPTURE(spread);
          check_group_gradients(rpo::nca{}, g);
          check_group_gradients(rpo::nca{.beta = 0.3, .alpha = 0.5}, g);
          check_group_gradients(rpo::swepo{}, g);
          check_group_gradients(rpo::swepo{.beta = 0.3, .alpha = 0}, g);
        }
      }
    }
  }

  TEST_CASE("NCA and MPO/SWEPO over groups equal their LOSSES.md formulas, and reduce as the catalogue says") {
    std::mt19937_64 rng(151);
    for (int k = 2; k <= 6; ++k) {
      for (int n = 0; n < 40; ++n) {
        const random_group g(rng, k, 15.0);
        CAPTURE(k);
        std::vector<double> grad, grad_ref;
        const double beta = 0.2, alpha = 0.7;
        {  // §4.12 NCA: −Σ_i [q_i log σ(s_i) + (1/K) log σ(−s_i)], q = softmax(r/α); ∂/∂logp_i = β(σ(s_i)/K − q_i σ(−s_i)).
          double z = 0, value = 0;
          for (int i = 0; i < k; ++i) z += std::exp(g.reward[static_cast<std::size_t>(i)] / alpha);
          const double got = g.run(rpo::nca{.beta = beta, .alpha = alpha}, grad, grad_ref);
          for (std::size_t i = 0; i < static_cast<std::size_t>(k); ++i) {
            const double q = std::exp(g.reward[i] / alpha) / z, s = beta * (g.logp[i] - g.ref_logp[i]);
            value += -(q * log_sig(s) + log_sig(-s) / k);
            CHECK_CLOSE(grad[i], beta * (sig(s) / k - q * sig(-s)), 1e-11, 1e-15);
            CHECK_CLOSE(grad_ref[i], -beta * (sig(s) / k - q * sig(-s)), 1e-11, 1e-15);
          }
          CHECK_CLOSE(got, value, 1e-12, 1e-300);
        }
        {  // §4.10 MPO/SWEPO: −log(Σ_{Y⁺} e^{v} / Σ e^{v}), v = βℓ + α|r − mean r|, Y⁺ = {r > mean};
           // ∂/∂logp_k = β(softmax(v)_k − [k ∈ Y⁺] softmax_{Y⁺}(v)_k).
          double mean = 0;
          for (double r : g.reward) mean += r / k;
          std::vector<double> v;
          double all = 0, plus = 0;
          for (std::size_t i = 0; i < static_cast<std::size_t>(k); ++i) {
            v.push_back(beta * (g.logp[i] - g.ref_logp[i]) + alpha * std::fabs(g.reward[i] - mean));
            all += std::exp(v[i]);
            if (g.reward[i] > mean) plus += std::exp(v[i]);
          }
          const double got = g.run(rpo::swepo{.beta = beta, .alpha = alpha}, grad, grad_ref);
          CHECK_CLOSE(got, -std::log(plus / all), 1e-10, 1e-13);
          for (std::size_t i = 0; i < static_cast<std::size_t>(k); ++i) {
            const double expected = beta * (std::exp(v[i]) / all - (g.reward[i] > mean ? std::exp(v[i]) / plus : 0.0));
            CHECK_CLOSE(grad[i], expected, 1e-10, 1e-14);
          }
        }
      }
    }
    // K = 2: NCA with a nearly one-hot target (α → 0) is nca_pair; SWEPO at α = 0 is DPO on the pair ordered by reward.
    for (int n = 0; n < 100; ++n) {
      const rpo::pair_input<double> in = random_pair(rng, 30.0);  // r_c > r_r by at least 0.01
      const std::vector<double> lp{in.logp[0], in.logp[1]}, rf{in.ref_logp[0], in.ref_logp[1]}, len{1, 1},
          rw{in.reward[0], in.reward[1]};
      const std::vector<std::int64_t> offsets{0, 2};
      const auto as_group = [&](const auto& preset) {
        std::vector<double> grad(2), grad_ref(2);
        const double value = rpo::evaluate(preset, rpo::batch_input<double>{lp, rf, len, rw, offsets},
                                           rpo::batch_output<double>{{}, grad, grad_ref}, rpo::reduction::sum());
        return rpo::pair_result<double>{value, {grad[0], grad[1]}, {grad_ref[0], grad_ref[1]}};
      };
      expect_same(as_group(rpo::nca{.beta = 0.2, .alpha = 1e-4}), rpo::value_and_grad(rpo::nca_pair{.beta = 0.2}, in),
                  1e-12);
      expect_same(as_group(rpo::swepo{.beta = 0.2, .alpha = 0}), rpo::value_and_grad(rpo::dpo{.beta = 0.2}, in), 1e-12);
    }
  }

  TEST_CASE("ORPO, MADPO, NCA and SWEPO: finite at extreme inputs, and bad parameters are refused by name") {
    const rpo::pair_input<float> f{.logp = {0.f, 1e4f}, .ref_logp = {0, 0}, .length = {1, 1}, .reward = {1e30f, -1e30f}};
    const auto r = rpo::value_and_grad(rpo::orpo{}, f);  // ā ≥ 0 is no log-prob: the value at ā = −1e-30, finite
    CHECK(std::isfinite(r.loss));
    CHECK(std::isfinite(r.grad_logp[0]));
    CHECK(std::isfinite(r.grad_logp[1]));
    const rpo::pair_input<double> d{.logp = {-1e-310, -1e15}, .ref_logp = {0, 0}, .length = {400, 1}, .reward = {0, 1e30}};
    const auto o = rpo::value_and_grad(rpo::orpo{}, d);
    CHECK(std::isfinite(o.loss));
    CHECK(std::isfinite(o.grad_logp[0]));
    const auto m = rpo::value_and_grad(rpo::madpo{}, d);
    CHECK(std::isfinite(m.loss));
    CHECK(std::isfinite(m.grad_logp[0]));
    const rpo::pair_input<double> in{.logp = {-3, -4}, .ref_logp = {-3, -4}, .length = {2, 3}, .reward = {2, 1}};
    const auto refuses = [&](const auto& preset, const std::string& message) {
      test::expect_error<std::invalid_argument>([&] { (void)rpo::value_and_grad(preset, in); }, {message.c_str()});
    };
    refuses(rpo::orpo{.lambda = -1}, "rpo::orpo: lambda must be finite and >= 0, but got lambda = -1");
    refuses(rpo::dno{.beta = 0}, "rpo::dno: beta must be finite and > 0, but got beta = 0");
    refuses(rpo::madpo{.c_max = 1}, "rpo::madpo: c_max must be finite and > 1, but got c_max = 1");
    refuses(rpo::madpo{.c_min = 1}, "rpo::madpo: c_min must be in [0, 1), but got c_min = 1");
    refuses(rpo::madpo{.tau = -1}, "rpo::madpo: tau must be finite and >= 0, but got tau = -1");
    const std::vector<double> lp{-3, -4, -5}, rf{-3, -4, -4}, len{1, 1, 1}, tie{1, 1, 1};
    const std::vector<std::int64_t> offsets{0, 3};
    test::expect_error<std::invalid_argument>(
        [&] { (void)rpo::evaluate(rpo::nca{.alpha = 0}, rpo::batch_input<double>{lp, rf, len, tie, offsets}); },
        {"rpo::nca: alpha must be finite and > 0, but got alpha = 0"});
    test::expect_error<std::invalid_argument>(
        [&] { (void)rpo::evaluate(rpo::swepo{.alpha = -1}, rpo::batch_input<double>{lp, rf, len, tie, offsets}); },
        {"rpo::swepo: alpha must be finite and >= 0, but got alpha = -1"});
    test::expect_error<std::domain_error>(
        [&] { (void)rpo::evaluate(rpo::swepo{}, rpo::batch_input<double>{lp, rf, len, tie, offsets}); }, {"tie"});
  }
}
