// The presets (rpo/presets.hpp) through the checked pair entry point: gradients against central differences, the
// RPO.md §10.2 and §10.4 vectors, independent formulas from LOSSES.md, and the equivalences of RPO.md §2–§5.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <type_traits>

#include "rpo/presets.hpp"
#include "support/close.hpp"
#include "support/gradient_check.hpp"
#include "support/presets.hpp"

namespace {

double sp(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sig(double x) { return 1 / (1 + std::exp(-x)); }

/// ∂loss/∂(field[i]) of the pair at `in`, by central differences on the checked entry point.
template <class P, class T, class Field>
double fd_error(const P& preset, const rpo::pair_input<T>& in, Field field, int i, T analytic) {
  const auto loss_at = [&](T x) {
    rpo::pair_input<T> moved = in;
    (moved.*field)[i] = x;
    return rpo::value_and_grad(preset, moved).loss;
  };
  return test::fd_relative_error(loss_at, (in.*field)[i], analytic, test::fd_floor<T>);
}

template <class P, class T> void check_gradients(const P& preset, const rpo::pair_input<T>& in) {
  const auto r = rpo::value_and_grad(preset, in);
  for (int i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(fd_error(preset, in, &rpo::pair_input<T>::logp, i, r.grad_logp[i]) < test::fd_tolerance<T>);
    CHECK(fd_error(preset, in, &rpo::pair_input<T>::ref_logp, i, r.grad_ref_logp[i]) < test::fd_tolerance<T>);
  }
}

/// The policy gap a of a pair under a preset's reward model, before any margin.
template <class P> double gap_of(const P& preset, const rpo::pair_input<double>& in) {
  const auto r = rpo::as_loss(preset).reward;
  return r.value_and_grad(in.logp[0], in.ref_logp[0], in.length[0]).value -
         r.value_and_grad(in.logp[1], in.ref_logp[1], in.length[1]).value;
}

}  // namespace

TEST_SUITE("presets") {
  // The group presets join as groups of K = 2 (tests/unit/sampling.test.cpp checks them at other K).
  TEST_CASE_TEMPLATE("gradients agree with central differences at random pairs, |a| up to 50", P, rpo::dpo, rpo::cdpo,
                     rpo::ipo, rpo::ipo_normalized, rpo::simpo, rpo::hinge, rpo::dpo_normalized, rpo::rpo_sq,
                     rpo::rpo_fwd, rpo::rpo_bwd, rpo::rpo_sqloo, rpo::rpo_sqpairs, rpo::rpo_softmax_bwd,
                     rpo::rpo_softmax_fwd, rpo::infonca, rpo::listwise_dpo, rpo::dpo_best_worst) {
    std::mt19937_64 rng(19);
    const P preset{};
    double widest = 0;
    for (double scale : {0.5, 5.0, 50.0}) {
      std::uniform_real_distribution<double> gap(-scale, scale);
      for (int n = 0; n < 60; ++n) {
        const rpo::pair_input<double> in = test::pair_with_gap(preset, gap(rng), rng);
        const double a = gap_of(preset, in);
        widest = std::max(widest, std::fabs(a));
        CAPTURE(a);
        // The hinge has a kink at a = 1 (its subgradient there is 0); differences straddling it are meaningless.
        if (std::is_same_v<P, rpo::hinge> && std::fabs(a - 1) < 0.05) continue;
        check_gradients(preset, in);
        check_gradients(preset, test::to_float(in));
      }
    }
    CHECK(widest > 40);
  }

  TEST_CASE("RPO.md 10.2: the full pairwise pipeline (beta = 0.2, eta = 1) to 1e-10") {
    const rpo::pair_input<double> in{.logp = {-12, -20}, .ref_logp = {-13.5, -19}, .reward = {4, 1.5}};
    CHECK_CLOSE(rpo::value_and_grad(rpo::dpo{.beta = 0.2}, in).loss, 0.47407698418, 1e-10, 0);
    CHECK_CLOSE(rpo::value_and_grad(rpo::ipo{.tau = 0.2}, in).loss, 0.0, 0, 1e-15);  // (Δ − 1/(2τ))², Δ = 2.5
    CHECK_CLOSE(rpo::value_and_grad(rpo::rpo_sq{.beta = 0.2, .eta = 1}, in).loss, 4.0, 1e-10, 0);
    CHECK_CLOSE(rpo::value_and_grad(rpo::rpo_fwd{.beta = 0.2, .eta = 1}, in).loss, 0.359894087709, 1e-10, 0);
    CHECK_CLOSE(rpo::value_and_grad(rpo::rpo_bwd{.beta = 0.2, .eta = 1}, in).loss, 0.243470889845, 1e-10, 0);
  }

  TEST_CASE("RPO.md 10.4: D_sq(beta Delta || 1/2) = beta^2 (Delta - 1/(2 beta))^2, so ipo = that / beta^2") {
    const double beta = 0.1;
    const double deltas[] = {-3, 0.2, 5, 7.3}, printed[] = {0.64, 0.2304, 0, 0.0529};
    using scaled_ipo = rpo::loss<rpo::distance::squared, rpo::reward::implicit, rpo::target::constant, rpo::sampling::pair>;
    for (int i = 0; i < 4; ++i) {
      CAPTURE(deltas[i]);
      const rpo::pair_input<double> in{.logp = {-10 + deltas[i], -10}, .ref_logp = {-10, -10}};
      const auto sq = rpo::value_and_grad(scaled_ipo{.reward = {.beta = beta}, .target = {.value = 0.5}}, in);
      const auto ipo = rpo::value_and_grad(rpo::ipo{.tau = beta}, in);
      CHECK_CLOSE(sq.loss, printed[i], 1e-12, 1e-14);
      CHECK_CLOSE(ipo.loss * beta * beta, sq.loss, 1e-12, 1e-14);
      CHECK_CLOSE(ipo.grad_logp[0] * beta * beta, sq.grad_logp[0], 1e-12, 1e-14);
    }
  }

  TEST_CASE("each preset equals its formula from LOSSES.md, written out independently") {
    std::mt19937_64 rng(23);
    std::uniform_real_distribution<double> lp(-200, -5), len(1, 100), rw(-3, 3);
    for (int n = 0; n < 300; ++n) {
      const double lc = lp(rng), lr = lp(rng), rc = lc + lp(rng) / 20, rr = lr + lp(rng) / 20;
      const double nc = std::round(len(rng)), nr = std::round(len(rng)), wc = rw(rng), wr = rw(rng);
      const rpo::pair_input<double> in{.logp = {lc, lr}, .ref_logp = {rc, rr}, .length = {nc, nr}, .reward = {wc, wr}};
      const double delta = (lc - rc) - (lr - rr), d_norm = (lc - rc) / nc - (lr - rr) / nr;
      CAPTURE(delta);
      // §1.1 DPO, §1.2 cDPO, §1.3 hinge, §1.4 IPO (both forms), §1.14 length-normalised DPO, §2.1 SimPO.
      CHECK_CLOSE(rpo::value_and_grad(rpo::dpo{.beta = 0.1}, in).loss, sp(-0.1 * delta), 1e-12, 1e-300);
      CHECK_CLOSE(rpo::value_and_grad(rpo::cdpo{.beta = 0.1, .epsilon = 0.2}, in).loss,
                  0.8 * sp(-0.1 * delta) + 0.2 * sp(0.1 * delta), 1e-12, 1e-300);
      CHECK_CLOSE(rpo::value_and_grad(rpo::hinge{.beta = 0.05}, in).loss, std::max(0.0, 1 - 0.05 * delta), 1e-12, 1e-14);
      CHECK_CLOSE(rpo::value_and_grad(rpo::ipo{.tau = 0.1}, in).loss, std::pow(delta - 5, 2), 1e-12, 1e-12);
      CHECK_CLOSE(rpo::value_and_grad(rpo::ipo_normalized{.tau = 0.1}, in).loss, std::pow(d_norm - 5, 2), 1e-12, 1e-12);
      CHECK_CLOSE(rpo::value_and_grad(rpo::dpo_normalized{.beta = 5}, in).loss, sp(-5 * d_norm), 1e-12, 1e-300);
      CHECK_CLOSE(rpo::value_and_grad(rpo::simpo{.beta = 2, .gamma = 0.5}, in).loss,
                  sp(-(2 * (lc / nc - lr / nr) - 0.5)), 1e-12, 1e-300);
      // §0.4 / RPO.md (E2)–(E4): the three RPO distances with a = βΔ, b = η(r_c − r_r).
      const double a = 0.2 * delta, b = 1.5 * (wc - wr), p = sig(a), q = sig(b);
      CHECK_CLOSE(rpo::value_and_grad(rpo::rpo_sq{.beta = 0.2, .eta = 1.5}, in).loss, (a - b) * (a - b), 1e-12, 1e-14);
      if (std::fabs(a) < 30 && std::fabs(b) < 30) {  // the textbook KL forms lose accuracy beyond
        CHECK_CLOSE(rpo::value_and_grad(rpo::rpo_fwd{.beta = 0.2, .eta = 1.5}, in).loss,
                    p * std::log(p / q) + (1 - p) * std::log((1 - p) / (1 - q)), 1e-9, 1e-12);
        CHECK_CLOSE(rpo::value_and_grad(rpo::rpo_bwd{.beta = 0.2, .eta = 1.5}, in).loss,
                    q * std::log(q / p) + (1 - q) * std::log((1 - q) / (1 - p)), 1e-9, 1e-12);
      }
    }
  }

  TEST_CASE("DPO is the eta -> infinity limit of RPO-bwd: the gap is a sigma(-b) - H2(sigma(b)) (RPO.md 4, 10.3)") {
    const rpo::pair_input<double> in{.logp = {-30, -33.5}, .ref_logp = {-31, -31}, .reward = {1, 0}};
    const double a = 0.2 * 3.5;
    const double dpo = rpo::value_and_grad(rpo::dpo{.beta = 0.2}, in).loss;
    for (double eta : {5.0, 10.0, 20.0, 40.0}) {
      CAPTURE(eta);
      const auto bwd = rpo::value_and_grad(rpo::rpo_bwd{.beta = 0.2, .eta = eta}, in);
      const double q = sig(eta), q_bar = sig(-eta);
      CHECK_CLOSE(bwd.loss - dpo, a * q_bar + q * std::log(q) + q_bar * std::log(q_bar), 1e-9, 1e-15);
      // ∂/∂logp_c: β(σ(a) − σ(b)) → β(σ(a) − 1) = −βσ(−a)
      CHECK_CLOSE(bwd.grad_logp[0], 0.2 * (sig(a) - q), 1e-12, 1e-300);
    }
    CHECK_CLOSE(rpo::value_and_grad(rpo::dpo{.beta = 0.2}, in).grad_logp[0], -0.2 * sig(-a), 1e-13, 0);
  }

  TEST_CASE("DPO is also the logistic distance with a hard label, value and gradient") {
    using logistic_dpo =
        rpo::loss<rpo::distance::logistic, rpo::reward::implicit, rpo::target::hard_label, rpo::sampling::pair>;
    std::mt19937_64 rng(29);
    for (int n = 0; n < 200; ++n) {
      const auto in = test::pair_with_gap(rpo::dpo{}, std::uniform_real_distribution<double>(-60, 60)(rng), rng);
      const auto x = rpo::value_and_grad(rpo::dpo{.beta = 0.1}, in);
      const auto y = rpo::value_and_grad(logistic_dpo{.reward = {.beta = 0.1}}, in);
      CHECK(x.loss == y.loss);
      CHECK(x.grad_logp[0] == y.grad_logp[0]);
      CHECK(x.grad_ref_logp[1] == y.grad_ref_logp[1]);
    }
  }

  TEST_CASE("cDPO equals RPO-bwd with the constant target logit(1 - eps), plus the binary entropy H2(eps)") {
    using bwd_constant =
        rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::implicit, rpo::target::constant, rpo::sampling::pair>;
    std::mt19937_64 rng(31);
    for (double eps : {0.01, 0.1, 0.25, 0.5}) {
      const double h2 = -eps * std::log(eps) - (1 - eps) * std::log1p(-eps);
      const bwd_constant bwd{.reward = {.beta = 0.1}, .target = {.value = std::log((1 - eps) / eps)}};
      for (int n = 0; n < 100; ++n) {
        const auto in = test::pair_with_gap(rpo::dpo{}, std::uniform_real_distribution<double>(-40, 40)(rng), rng);
        const auto c = rpo::value_and_grad(rpo::cdpo{.beta = 0.1, .epsilon = eps}, in);
        const auto b = rpo::value_and_grad(bwd, in);
        CAPTURE(eps);
        CHECK_CLOSE(c.loss, b.loss + h2, 1e-12, 1e-13);
        CHECK_CLOSE(c.grad_logp[0], b.grad_logp[0], 1e-12, 1e-15);
        CHECK_CLOSE(c.grad_logp[1], b.grad_logp[1], 1e-12, 1e-15);
      }
    }
  }

  TEST_CASE("SimPO with gamma = 0 is length-normalised DPO with a uniform reference (RPO.md 4, SimPO row)") {
    std::mt19937_64 rng(37);
    for (int n = 0; n < 200; ++n) {
      auto in = test::pair_with_gap(rpo::simpo{}, std::uniform_real_distribution<double>(-30, 30)(rng), rng);
      const auto s = rpo::value_and_grad(rpo::simpo{.beta = 2.0, .gamma = 0.0}, in);
      // A uniform π_ref gives log π_ref(y) = −n·log|V|, whose per-token constant cancels in a.
      in.ref_logp[0] = -in.length[0] * std::log(32000.0);
      in.ref_logp[1] = -in.length[1] * std::log(32000.0);
      const auto d = rpo::value_and_grad(rpo::dpo_normalized{.beta = 2.0}, in);
      CHECK_CLOSE(s.loss, d.loss, 1e-9, 1e-14);
      CHECK_CLOSE(s.grad_logp[0], d.grad_logp[0], 1e-9, 1e-14);
      CHECK_CLOSE(s.grad_logp[1], d.grad_logp[1], 1e-9, 1e-14);
    }
  }

  TEST_CASE_TEMPLATE("adding one constant to both responses' rewards changes neither loss nor gradient (RPO.md 2.1)", P,
                     rpo::dpo, rpo::cdpo, rpo::ipo, rpo::ipo_normalized, rpo::simpo, rpo::hinge, rpo::dpo_normalized,
                     rpo::rpo_sq, rpo::rpo_fwd, rpo::rpo_bwd, rpo::rpo_sqloo, rpo::rpo_sqpairs, rpo::rpo_softmax_bwd,
                     rpo::rpo_softmax_fwd, rpo::infonca, rpo::listwise_dpo, rpo::dpo_best_worst) {
    std::mt19937_64 rng(41);
    const P preset{};
    const auto reward = rpo::as_loss(preset).reward;
    for (int n = 0; n < 200; ++n) {
      const auto in = test::pair_with_gap(preset, std::uniform_real_distribution<double>(-40, 40)(rng), rng);
      for (double c : {-11.0, 3.75}) {
        // r_π is affine in logp with slope k = ∂r/∂logp: logp += c/k adds c to r_π(y).
        rpo::pair_input<double> moved = in;
        for (int i = 0; i < 2; ++i)
          moved.logp[i] += c / reward.value_and_grad(in.logp[i], in.ref_logp[i], in.length[i]).d_logp;
        const auto x = rpo::value_and_grad(preset, in), y = rpo::value_and_grad(preset, moved);
        CAPTURE(c);
        CHECK_CLOSE(y.loss, x.loss, 1e-9, 1e-12);
        CHECK_CLOSE(y.grad_logp[0], x.grad_logp[0], 1e-9, 1e-12);
        CHECK_CLOSE(y.grad_logp[1], x.grad_logp[1], 1e-9, 1e-12);
      }
    }
  }

  TEST_CASE("Theorem 3.1 at K = 2: RPO-bwd with beta = 1, eta = 1 is BRAIn's self-normalised objective (RPO.md 5)") {
    // BRAIn (B22), written from its definition with a proposal q': posterior weights α_i ∝ π_ref(y_i) e^{r_i} / q'(y_i),
    // model weights ω_i ∝ π_θ(y_i) / q'(y_i), objective Σ α̂_i log(α̂_i / ω̂_i), gradient −(α̂_i − ω̂_i) in log π_θ(y_i).
    struct brain_result {
      double value, grad[2];
    };
    const auto brain = [](const double logp[2], const double ref[2], const double r[2], const double proposal[2]) {
      double la[2], lw[2];
      for (int i = 0; i < 2; ++i) {
        la[i] = ref[i] + r[i] - proposal[i];
        lw[i] = logp[i] - proposal[i];
      }
      const double za = std::log(std::exp(la[0]) + std::exp(la[1])), zw = std::log(std::exp(lw[0]) + std::exp(lw[1]));
      brain_result out{0, {0, 0}};
      for (int i = 0; i < 2; ++i) {
        const double alpha = std::exp(la[i] - za), omega = std::exp(lw[i] - zw);
        out.value += alpha * ((la[i] - za) - (lw[i] - zw));
        out.grad[i] = -(alpha - omega);
      }
      return out;
    };
    std::mt19937_64 rng(43);
    std::uniform_real_distribution<double> lp(-40, -2), rw(-4, 4);
    bool differs_off_reference = false;
    for (int n = 0; n < 300; ++n) {
      const rpo::pair_input<double> in{
          .logp = {lp(rng), lp(rng)}, .ref_logp = {lp(rng), lp(rng)}, .reward = {rw(rng), rw(rng)}};
      const auto rpo_bwd = rpo::value_and_grad(rpo::rpo_bwd{.beta = 1, .eta = 1}, in);
      const auto on_reference = brain(in.logp, in.ref_logp, in.reward, in.ref_logp);  // responses drawn from π_ref
      CHECK_CLOSE(rpo_bwd.loss, on_reference.value, 1e-10, 1e-14);
      CHECK_CLOSE(rpo_bwd.grad_logp[0], on_reference.grad[0], 1e-10, 1e-14);
      CHECK_CLOSE(rpo_bwd.grad_logp[1], on_reference.grad[1], 1e-10, 1e-14);
      const double other[2] = {in.ref_logp[0] + 1.5, in.ref_logp[1] - 0.7};  // a proposal q' != π_ref
      const auto off_reference = brain(in.logp, in.ref_logp, in.reward, other);
      differs_off_reference = differs_off_reference || std::fabs(off_reference.value - rpo_bwd.loss) > 1e-3;
    }
    CHECK(differs_off_reference);  // the theorem needs the proposal to be π_ref
  }

  TEST_CASE_TEMPLATE("finite loss and gradients at extreme gaps: |a| up to 1e4 (float) and 1e15 (double)", T, float,
                     double) {
    const double top = std::is_same_v<T, float> ? 1e4 : 1e15;
    for (double a : {-top, -top / 3, -1.0, 0.0, 1.0, top / 7, top}) {
      for (double b : {-top, -2.0, 0.0, top / 5, top}) {
        CAPTURE(a);
        CAPTURE(b);
        // β = 1 and η = 1, so that the log-prob and reward differences are the gaps themselves.
        const rpo::pair_input<T> in{.logp = {static_cast<T>(a), T(0)}, .ref_logp = {T(0), T(0)}, .length = {T(1), T(1)},
                                    .reward = {static_cast<T>(b), T(0)}};
        const auto each = [&](const auto& preset) { test::check_finite(rpo::value_and_grad(preset, in)); };
        each(rpo::dpo{.beta = 1});
        each(rpo::cdpo{.beta = 1});
        each(rpo::hinge{.beta = 1});
        each(rpo::simpo{.beta = 1});
        each(rpo::dpo_normalized{.beta = 1});
        each(rpo::rpo_fwd{.beta = 1, .eta = 1});
        each(rpo::rpo_bwd{.beta = 1, .eta = 1});
        each(rpo::rpo_sq{.beta = 1, .eta = 1});  // (2e15)² = 4e30 and (2e4)² = 4e8 are in range
        each(rpo::ipo{.tau = 1});
        each(rpo::ipo_normalized{.tau = 1});
        // Group presets at K = 2 that take ties (b = 0 is among the targets here).
        each(rpo::rpo_sqloo{.beta = 1, .eta = 1});
        each(rpo::rpo_sqpairs{.beta = 1, .eta = 1});
        each(rpo::rpo_softmax_bwd{.beta = 1, .eta = 1});
        each(rpo::rpo_softmax_fwd{.beta = 1, .eta = 1});
        each(rpo::infonca{.beta = 1, .alpha = 1});
      }
    }
  }
}
