// γ-PO (LOSSES.md §4.6) of rpo/batchwise.hpp. The loss given margins: values against the formulas written out here,
// gradients against central differences and dual numbers, margins all equal to γ_0 against rpo::dpo / rpo::simpo
// (exactly), extreme inputs, float against double, and the checks of parameters and inputs under each error policy.
// The margin optimiser, as properties: the gradient its EG step uses against central differences; the objective
// decreases over the iterations; p stays a probability vector; larger gaps get larger margins; a large τ gives
// uniform p, so γ_i → γ_0 and the loss → DPO; the queue is FIFO with its capacity; and the whole optimisation against
// an independent transcription of the EG loop of LOSSES.md §4.6 (on a queue whose sampled gaps are all equal, so that
// the random draw does not matter).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo/batchwise.hpp"
#include "rpo/presets.hpp"
#include "support/close.hpp"
#include "support/dual.hpp"
#include "support/expect_error.hpp"
#include "support/gradient_check.hpp"

namespace {

static_assert(std::is_trivially_copyable_v<rpo::gamma_po> && std::is_aggregate_v<rpo::gamma_po>);
static_assert(std::is_trivially_copyable_v<rpo::gamma_po_optimizer> && std::is_aggregate_v<rpo::gamma_po_optimizer>);

double sp(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sig(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

/// B pairs, interleaved chosen, rejected: log-probs in [-300, -1], log-ratios in [-spread, spread], lengths in
/// [1, 400]; margins in [0, 3·γ_0].
struct gamma_batch {
  std::vector<double> logp, ref_logp, length, margins;
  gamma_batch(std::mt19937_64& rng, int count, double spread, double gamma_0) {
    std::uniform_real_distribution<double> lp(-300, -1), ratio(-spread, spread), len(1, 400), margin(0, 3 * gamma_0);
    for (int i = 0; i < 2 * count; ++i) {
      logp.push_back(lp(rng));
      ref_logp.push_back(logp.back() - ratio(rng));
      length.push_back(std::round(len(rng)));
    }
    for (int i = 0; i < count; ++i) margins.push_back(margin(rng));
  }
  std::size_t pairs() const { return margins.size(); }
  rpo::batch_input<double> input() const { return {logp, ref_logp, length}; }
};

/// LOSSES.md §4.6 as written: γ-DPO a = β(ℓ_c − ℓ_r), L = −log σ(a − (γ_i − γ_0)); γ-SimPO a = β(ā_c − ā_r),
/// L = −log σ(a − γ_i).
double gap_formula(const rpo::gamma_po& l, const gamma_batch& b, std::size_t i) {
  const std::size_t c = 2 * i, r = 2 * i + 1;
  if (l.simpo) return l.beta * (b.logp[c] / b.length[c] - b.logp[r] / b.length[r]);
  return l.beta * ((b.logp[c] - b.ref_logp[c]) - (b.logp[r] - b.ref_logp[r]));
}
double loss_formula(const rpo::gamma_po& l, const gamma_batch& b, std::size_t i) {
  const double gamma_0 = l.gamma_beta_ratio * l.beta;
  const double a = gap_formula(l, b, i);
  return l.simpo ? sp(-(a - b.margins[i])) : sp(-(a - (b.margins[i] - gamma_0)));
}

struct result {
  double loss;
  std::vector<double> pair_loss, grad, grad_ref;
};
result run(const rpo::gamma_po& l, const gamma_batch& b, rpo::reduction how = rpo::reduction::mean()) {
  result r{0, std::vector<double>(b.pairs()), std::vector<double>(b.logp.size()), std::vector<double>(b.logp.size())};
  r.loss = rpo::evaluate_gamma_po(l, b.input(), b.margins, rpo::batch_output<double>{r.pair_loss, r.grad, r.grad_ref},
                                  how);
  return r;
}

/// The EG loop of LOSSES.md §4.6, transcribed independently of rpo (no log space, the update as the reference
/// writes it): over the gaps `g`, p = 1/n; each of `iterations` rounds sets γ = γ_0·n·p, then
/// p ← p·exp(−η·∇f)/Σ, ∇f_j = τ(1 + log(n(p_j + ε))) + γ_0·n/(1 + exp(g_j − γ_j))/n. Returns the last round's γ.
std::vector<double> eg_transcription(const std::vector<double>& g, double gamma_0, double tau, double eta,
                                     double epsilon, int iterations) {
  const double n = static_cast<double>(g.size());
  std::vector<double> p(g.size(), 1 / n), gamma(g.size());
  for (int it = 0; it < iterations; ++it) {
    for (std::size_t j = 0; j < g.size(); ++j) gamma[j] = gamma_0 * n * p[j];
    double total = 0;
    for (std::size_t j = 0; j < g.size(); ++j) {
      const double grad = tau * (1 + std::log(n * (p[j] + epsilon))) + gamma_0 * n / (1 + std::exp(g[j] - gamma[j])) / n;
      p[j] *= std::exp(-eta * grad);
      total += p[j];
    }
    for (double& q : p) q /= total;
  }
  return gamma;
}

/// f(p) of LOSSES.md §4.6 written out: (1/n)Σ −log σ(g_j − γ_j) + τ·Σ (p_j + ε)·log(n(p_j + ε)), γ_j = γ_0·n·p_j.
double objective_formula(const std::vector<double>& g, const std::vector<double>& p, double gamma_0, double tau,
                         double epsilon) {
  const double n = static_cast<double>(g.size());
  double fit = 0, kl = 0;
  for (std::size_t j = 0; j < g.size(); ++j) {
    fit += sp(-(g[j] - gamma_0 * n * p[j]));
    kl += (p[j] + epsilon) * std::log(n * (p[j] + epsilon));
  }
  return fit / n + tau * kl;
}

/// Margins of `gaps` from a fresh optimiser (empty queue).
std::vector<double> fresh_margins(const rpo::gamma_po& l, const rpo::gamma_po_optimizer& opt,
                                  const std::vector<double>& gaps) {
  rpo::gamma_po_margins m(l, opt);
  std::vector<double> out(gaps.size());
  REQUIRE(m.compute(gaps, out));
  return out;
}

std::vector<double> random_gaps(std::mt19937_64& rng, int count, double spread) {
  std::uniform_real_distribution<double> u(-spread, spread);
  std::vector<double> g;
  for (int i = 0; i < count; ++i) g.push_back(u(rng));
  return g;
}

/// A call under errors::report that failed: NaN (or false), the status holds `code` and a message containing `part`,
/// and every output still holds the 7.0 it was filled with.
void expect_untouched(const std::vector<double>& out) {
  CHECK(std::all_of(out.begin(), out.end(), [](double x) { return x == 7.0; }));
}
void expect_status(const rpo::status& status, rpo::errc code, const char* part) {
  CHECK(status.code == code);
  CHECK_MESSAGE(status.message.find(part) != std::string::npos, status.message);
}

}  // namespace

TEST_SUITE("gamma_po") {
  // ---------------------------------------------------------------------------------------------------------------
  // The loss given margins
  // ---------------------------------------------------------------------------------------------------------------

  TEST_CASE("gamma-PO given margins equals LOSSES.md 4.6's formula, per pair and reduced") {
    std::mt19937_64 rng(4601);
    for (const rpo::gamma_po l : {rpo::gamma_po{}, rpo::gamma_po{.beta = 0.3, .gamma_beta_ratio = 1.5},
                                  rpo::gamma_po{.beta = 2.5, .gamma_beta_ratio = 0.4, .simpo = true}}) {
      for (int n = 0; n < 30; ++n) {
        const gamma_batch b(rng, 7, 30.0, l.gamma_0());
        const result r = run(l, b);
        double mean = 0;
        for (std::size_t i = 0; i < b.pairs(); ++i) {
          CHECK_CLOSE(r.pair_loss[i], loss_formula(l, b, i), 1e-13, 1e-300);
          mean += loss_formula(l, b, i) / 7.0;
        }
        CHECK_CLOSE(r.loss, mean, 1e-13, 0);
        std::vector<double> gaps(b.pairs());
        REQUIRE(rpo::gamma_po_gaps(l, b.input(), gaps));
        for (std::size_t i = 0; i < b.pairs(); ++i) CHECK_CLOSE(gaps[i], gap_formula(l, b, i), 1e-13, 1e-15);
      }
    }
  }

  TEST_CASE("gamma-PO gradients agree with central differences to 1e-7 and with dual numbers exactly") {
    std::mt19937_64 rng(4602);
    using D = test::dual<double>;
    for (const rpo::gamma_po l : {rpo::gamma_po{.beta = 0.2, .gamma_beta_ratio = 2.0},
                                  rpo::gamma_po{.beta = 2.0, .gamma_beta_ratio = 0.5, .simpo = true}}) {
      for (int n = 0; n < 10; ++n) {
        gamma_batch b(rng, 5, 15.0, l.gamma_0());
        const result r = run(l, b);
        for (std::size_t m = 0; m < b.logp.size(); ++m) {
          for (bool moving_ref : {false, true}) {
            std::vector<double>& field = moving_ref ? b.ref_logp : b.logp;
            const double saved = field[m];
            const auto f = [&](double x) {
              field[m] = x;
              const double v = rpo::evaluate_gamma_po(l, b.input(), b.margins);
              field[m] = saved;
              return v;
            };
            const double g = moving_ref ? r.grad_ref[m] : r.grad[m];
            CAPTURE(l.simpo);
            CAPTURE(m);
            CAPTURE(moving_ref);
            CHECK(test::fd_relative_error(f, saved, g, test::fd_floor<double>) < test::fd_tolerance<double>);
            if (l.simpo && moving_ref) CHECK(g == 0.0);  // γ-SimPO reads no reference
            // Dual numbers: the per-pair losses' derivatives, summed, are ∂(Σ L)/∂x; mean() divides by B.
            std::vector<D> logp(b.logp.begin(), b.logp.end()), ref(b.ref_logp.begin(), b.ref_logp.end()),
                len(b.length.begin(), b.length.end()), margins(b.margins.begin(), b.margins.end()), terms(5);
            (moving_ref ? ref : logp)[m].d = 1;
            // errors::unchecked: the values were checked by the double call (and clang 14 rejects the branch-free
            // value check of rpo/loss.hpp on a class type under -Wbitwise-instead-of-logical).
            (void)rpo::evaluate_gamma_po(l, rpo::batch_input<D>{logp, ref, len}, margins, rpo::batch_output<D>{terms},
                                         rpo::reduction::sum(), rpo::errors::unchecked{});
            double exact = 0;
            for (const D& t : terms) exact += t.d;
            CHECK_CLOSE(g, exact / 5.0, 1e-13, 1e-17);
          }
        }
        // The gradient LOSSES.md states: ∂L/∂logp_c = −β·σ(−x)(/n_c) = −∂L/∂logp_r (γ-DPO: ∂/∂ref = −∂/∂logp).
        for (std::size_t i = 0; i < b.pairs(); ++i) {
          const double gamma_0 = l.gamma_0();
          const double a = gap_formula(l, b, i);
          const double x = l.simpo ? a - b.margins[i] : a - (b.margins[i] - gamma_0);
          const double nc = l.simpo ? b.length[2 * i] : 1.0, nr = l.simpo ? b.length[2 * i + 1] : 1.0;
          CHECK_CLOSE(r.grad[2 * i], -l.beta * sig(-x) / nc / 5.0, 1e-13, 1e-300);
          CHECK_CLOSE(r.grad[2 * i + 1], l.beta * sig(-x) / nr / 5.0, 1e-13, 1e-300);
          if (!l.simpo) {
            CHECK(r.grad_ref[2 * i] == -r.grad[2 * i]);
            CHECK(r.grad_ref[2 * i + 1] == -r.grad[2 * i + 1]);
          }
        }
      }
    }
  }

  TEST_CASE_TEMPLATE("margins all equal to gamma_0 give DPO's (SimPO's) loss and gradients exactly", T, float, double) {
    std::mt19937_64 rng(4603);
    for (const rpo::reduction how : {rpo::reduction::mean(), rpo::reduction::sum(), rpo::reduction::sum_over(96)}) {
      for (bool simpo : {false, true}) {
        const rpo::gamma_po l{.beta = simpo ? 2.5 : 0.1, .gamma_beta_ratio = 0.4, .simpo = simpo};
        const gamma_batch d(rng, 48, 40.0, 1.0);
        const std::vector<T> logp(d.logp.begin(), d.logp.end()), ref(d.ref_logp.begin(), d.ref_logp.end()),
            len(d.length.begin(), d.length.end());
        const std::vector<T> margins(48, static_cast<T>(l.gamma_0()));
        const rpo::batch_input<T> in{logp, ref, len};
        std::vector<T> loss(48), grad(96), grad_ref(96), loss0(48), grad0(96), grad_ref0(96);
        const T value = rpo::evaluate_gamma_po(l, in, margins, rpo::batch_output<T>{loss, grad, grad_ref}, how);
        const rpo::batch_output<T> out0{loss0, grad0, grad_ref0};
        const T reference = simpo ? rpo::evaluate(rpo::simpo{.beta = l.beta, .gamma = l.gamma_0()}, in, out0, how)
                                  : rpo::evaluate(rpo::dpo{.beta = l.beta}, in, out0, how);
        CAPTURE(simpo);
        CHECK(value == reference);
        CHECK(loss == loss0);
        CHECK(grad == grad0);
        CHECK(grad_ref == grad_ref0);
      }
    }
  }

  TEST_CASE("gamma-PO is finite at extreme gaps and margins (+-1e4), in float and double") {
    // β = 1 and log-ratio gaps of ±1e4: the loss is ≈ −x for x ≪ 0 and underflows to 0 for x ≫ 0; the gradient is in
    // [−β, 0] for the chosen response.
    const std::vector<double> logp{-1.0, -10001.0, -10001.0, -1.0, -5.0, -5.0},
        ref{-50.0, -50.0, -50.0, -50.0, -50.0, -50.0};
    for (const std::vector<double>& margins :
         {std::vector<double>{0.0, 0.0, 0.0}, std::vector<double>{1e4, -1e4, 1e4}, std::vector<double>{-1e4, 1e4, -1e4}}) {
      const rpo::gamma_po l{.beta = 1.0, .gamma_beta_ratio = 0.5};
      std::vector<double> loss(3), grad(6);
      const double v = rpo::evaluate_gamma_po(l, rpo::batch_input<double>{logp, ref}, margins,
                                              rpo::batch_output<double>{loss, grad, {}});
      CHECK(std::isfinite(v));
      for (std::size_t i = 0; i < 3; ++i) {
        CHECK(std::isfinite(loss[i]));
        CHECK(loss[i] >= 0);
        CHECK(grad[2 * i] <= 0);
        CHECK(grad[2 * i] >= -l.beta / 3);
        CHECK(grad[2 * i + 1] == -grad[2 * i]);
      }
      const std::vector<float> fl(logp.begin(), logp.end()), fr(ref.begin(), ref.end()),
          fm(margins.begin(), margins.end());
      std::vector<float> floss(3), fgrad(6);
      const float fv = rpo::evaluate_gamma_po(l, rpo::batch_input<float>{fl, fr}, fm,
                                              rpo::batch_output<float>{floss, fgrad, {}});
      CHECK(std::isfinite(fv));
      for (std::size_t i = 0; i < 3; ++i) {
        CHECK(std::isfinite(floss[i]));
        CHECK(std::isfinite(fgrad[2 * i]));
        CHECK_CLOSE(floss[i], loss[i], 1e-5, 1e-30);
      }
    }
    // The optimiser on gaps of ±1e4: finite, positive margins that still sum to γ_0·B (p is a probability vector).
    const rpo::gamma_po l{.beta = 10.0, .gamma_beta_ratio = 0.4, .simpo = true};
    const std::vector<double> gaps{1e4, -1e4, 0.0, 1e4, -1e4, 3.0};
    const std::vector<double> m = fresh_margins(l, {}, gaps);
    double total = 0;
    for (const double x : m) {
      CHECK(std::isfinite(x));
      CHECK(x > 0);
      total += x;
    }
    CHECK_CLOSE(total, l.gamma_0() * 6, 1e-12, 0);
    CHECK(m[0] > m[5]);
    CHECK(m[5] > m[2]);
    CHECK(m[2] > m[1]);
  }

  TEST_CASE("gamma-PO float agrees with double") {
    std::mt19937_64 rng(4604);
    for (bool simpo : {false, true}) {
      const rpo::gamma_po l{.beta = simpo ? 2.0 : 0.1, .gamma_beta_ratio = 0.5, .simpo = simpo};
      const gamma_batch b(rng, 16, 20.0, l.gamma_0());
      const result r = run(l, b);
      const std::vector<float> logp(b.logp.begin(), b.logp.end()), ref(b.ref_logp.begin(), b.ref_logp.end()),
          len(b.length.begin(), b.length.end()), margins(b.margins.begin(), b.margins.end());
      std::vector<float> grad(32);
      const float v = rpo::evaluate_gamma_po(l, rpo::batch_input<float>{logp, ref, len}, margins,
                                             rpo::batch_output<float>{{}, grad, {}});
      CHECK_CLOSE(v, r.loss, 1e-4, 1e-6);
      for (std::size_t i = 0; i < 32; ++i) CHECK_CLOSE(grad[i], r.grad[i], 1e-3, 1e-7);
    }
  }

  TEST_CASE("gamma-PO rejects bad input under each error policy, before writing anything") {
    std::mt19937_64 rng(4605);
    const gamma_batch b(rng, 4, 10.0, 0.05);
    const rpo::gamma_po l{};
    std::vector<double> loss(4, 7.0), grad(8, 7.0), grad_ref(8, 7.0);
    const rpo::batch_output<double> out{loss, grad, grad_ref};
    const auto call = [&](const rpo::gamma_po& p, const std::vector<double>& margins, auto policy) {
      return rpo::evaluate_gamma_po(p, b.input(), margins, out, rpo::reduction::mean(), policy);
    };
    const std::vector<double> short_margins{0.05, 0.05, 0.05};
    // Margins of the wrong size: an invalid argument under every policy (it guards memory).
    test::expect_error<std::invalid_argument>([&] { call(l, short_margins, rpo::errors::throw_on_error{}); },
                                              {"rpo::evaluate_gamma_po", "margins has 3 entries but must have 4",
                                               "one per pair"});
    test::expect_error<std::invalid_argument>([&] { call(l, short_margins, rpo::errors::unchecked{}); },
                                              {"margins has 3 entries"});
    {
      rpo::status s;
      CHECK(std::isnan(call(l, short_margins, rpo::errors::report{&s})));
      expect_status(s, rpo::errc::invalid_argument, "margins has 3 entries but must have 4");
    }
    // Non-finite margins: a domain error naming the entry.
    for (const double bad : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity()}) {
      std::vector<double> margins(4, 0.05);
      margins[2] = bad;
      test::expect_error<std::domain_error>([&] { call(l, margins, rpo::errors::throw_on_error{}); },
                                            {"rpo::evaluate_gamma_po", "margins[2] must be finite"});
      rpo::status s;
      CHECK(std::isnan(call(l, margins, rpo::errors::report{&s})));
      expect_status(s, rpo::errc::domain_error, "margins[2] must be finite");
    }
    // Parameters, and the checks rpo::evaluate makes: a non-finite log-prob, γ-SimPO without lengths.
    test::expect_error<std::invalid_argument>(
        [&] { call(rpo::gamma_po{.beta = -0.1}, b.margins, rpo::errors::throw_on_error{}); },
        {"rpo::evaluate_gamma_po", "beta must be finite and > 0"});
    test::expect_error<std::invalid_argument>(
        [&] { call(rpo::gamma_po{.gamma_beta_ratio = -1}, b.margins, rpo::errors::throw_on_error{}); },
        {"gamma_beta_ratio must be finite and >= 0"});
    {
      std::vector<double> logp = b.logp;
      logp[5] = std::numeric_limits<double>::quiet_NaN();
      test::expect_error<std::domain_error>(
          [&] { (void)rpo::evaluate_gamma_po(l, rpo::batch_input<double>{logp, b.ref_logp}, b.margins, out); },
          {"logp[5] must be finite"});
      test::expect_error<std::invalid_argument>(
          [&] {
            (void)rpo::evaluate_gamma_po(rpo::gamma_po{.simpo = true}, rpo::batch_input<double>{b.logp, b.ref_logp},
                                         b.margins, out);
          },
          {"length is read by this loss but was not given"});
      std::vector<double> gaps(3, 7.0);
      test::expect_error<std::invalid_argument>([&] { (void)rpo::gamma_po_gaps(l, b.input(), gaps); },
                                                {"rpo::gamma_po_gaps", "gaps has 3 entries but must have 4"});
      expect_untouched(gaps);
    }
    expect_untouched(loss);
    expect_untouched(grad);
    expect_untouched(grad_ref);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // The margin optimiser
  // ---------------------------------------------------------------------------------------------------------------

  TEST_CASE("the objective's gradient used by the EG step agrees with central differences to 1e-7") {
    std::mt19937_64 rng(4611);
    std::uniform_real_distribution<double> weight(0.2, 1.0);
    for (const double epsilon : {0.0, 1e-10}) {
      for (const double gamma_0 : {0.05, 1.0, 4.0}) {
        for (const double tau : {3.0, 10.0}) {
          const std::vector<double> g = random_gaps(rng, 9, 6.0);
          std::vector<double> p(9);
          double total = 0;
          for (double& q : p) total += (q = weight(rng));
          for (double& q : p) q /= total;
          std::vector<double> grad(9);
          const double f = rpo::detail::gamma_po_objective(g, p, gamma_0, tau, epsilon, grad);
          CHECK_CLOSE(f, objective_formula(g, p, gamma_0, tau, epsilon), 1e-13, 1e-13);
          for (std::size_t j = 0; j < 9; ++j) {
            const double saved = p[j];
            const auto fj = [&](double x) {
              p[j] = x;
              const double v = objective_formula(g, p, gamma_0, tau, epsilon);
              p[j] = saved;
              return v;
            };
            // A step well below p_j (≥ 0.02), so that p_j ± 2h stays positive: fd_step's 2^-9 is too large here.
            const double fd = test::derivative(fj, saved, 1.0 / 4096);
            CAPTURE(j);
            CHECK_CLOSE(grad[j], fd, 1e-7, 1e-9);
          }
        }
      }
    }
  }

  TEST_CASE("the objective decreases over the EG iterations, and p stays a probability vector") {
    std::mt19937_64 rng(4612);
    for (const double gamma_0 : {0.05, 1.0, 4.0}) {
      for (const double tau : {3.0, 10.0, 20.0}) {
        for (const double step : {0.0, 0.01}) {  // the reference's min(0.5/τ, 1), and a smaller one
          const rpo::gamma_po l{.beta = 1.0, .gamma_beta_ratio = gamma_0};
          const std::vector<double> g = random_gaps(rng, 32, 8.0);
          const double n = 32;
          double previous = std::numeric_limits<double>::infinity(), first = 0;
          for (int k = 1; k <= 20; ++k) {
            const std::vector<double> m = fresh_margins(l, {.tau = tau, .iterations = k, .step = step}, g);
            std::vector<double> p(m.size());
            double total = 0;
            for (std::size_t j = 0; j < m.size(); ++j) {
              p[j] = m[j] / (gamma_0 * n);
              CHECK(p[j] > 0);
              total += p[j];
            }
            CHECK_CLOSE(total, 1.0, 1e-13, 0);
            const double f = objective_formula(g, p, gamma_0, tau, 1e-10);
            CAPTURE(gamma_0);
            CAPTURE(tau);
            CAPTURE(k);
            CHECK(f <= previous + 1e-14 * std::fabs(f));
            if (k == 1) {
              first = f;
              for (const double x : m) CHECK(x == doctest::Approx(gamma_0).epsilon(1e-15).scale(0));  // p uniform
            }
            previous = f;
          }
          CHECK(previous < first);  // the gaps differ, so the uniform p is not the minimiser
        }
      }
    }
  }

  TEST_CASE("larger gaps get larger margins") {
    std::mt19937_64 rng(4613);
    for (const double gamma_0 : {0.05, 1.0, 4.0}) {
      for (const double tau : {3.0, 10.0, 20.0}) {
        const rpo::gamma_po l{.beta = 1.0, .gamma_beta_ratio = gamma_0};
        const std::vector<double> g = random_gaps(rng, 24, 10.0);
        const std::vector<double> m = fresh_margins(l, {.tau = tau}, g);
        for (std::size_t i = 0; i < g.size(); ++i)
          for (std::size_t j = 0; j < g.size(); ++j)
            if (g[i] > g[j]) {
              CAPTURE(gamma_0);
              CAPTURE(tau);
              CHECK(m[i] > m[j]);
            }
      }
    }
  }

  TEST_CASE("a large tau gives uniform p: margins gamma_0, and the loss of DPO") {
    std::mt19937_64 rng(4614);
    const rpo::gamma_po l{.beta = 0.1, .gamma_beta_ratio = 2.0};
    const gamma_batch d(rng, 16, 30.0, 1.0);
    std::vector<double> gaps(16);
    REQUIRE(rpo::gamma_po_gaps(l, d.input(), gaps));
    const std::vector<double> m = fresh_margins(l, {.tau = 1e9}, gaps);
    for (const double x : m) CHECK_CLOSE(x, l.gamma_0(), 1e-8, 0);
    std::vector<double> grad(32), grad0(32);
    const double v = rpo::evaluate_gamma_po(l, d.input(), m, rpo::batch_output<double>{{}, grad, {}});
    const double v0 = rpo::evaluate(rpo::dpo{.beta = l.beta}, d.input(), rpo::batch_output<double>{{}, grad0, {}});
    CHECK_CLOSE(v, v0, 1e-8, 0);
    for (std::size_t i = 0; i < 32; ++i) CHECK_CLOSE(grad[i], grad0[i], 1e-7, 1e-12);
    // A small τ moves the margins away from γ_0 (the property above is not vacuous).
    const std::vector<double> moved = fresh_margins(l, {.tau = 0.5}, gaps);
    CHECK(std::any_of(moved.begin(), moved.end(), [&](double x) { return std::fabs(x - l.gamma_0()) > 1e-3; }));
  }

  TEST_CASE("the queue is FIFO with its capacity (2048 by default), and compute pushes the current gaps") {
    const rpo::gamma_po l{};
    rpo::gamma_po_margins small(l, {.capacity = 5});
    std::vector<double> m3(3);
    REQUIRE(small.compute(std::vector<double>{1, 2, 3}, m3));
    CHECK(std::vector<double>(small.queue().begin(), small.queue().end()) == std::vector<double>{1, 2, 3});
    REQUIRE(small.compute(std::vector<double>{4, 5, 6}, m3));
    CHECK(std::vector<double>(small.queue().begin(), small.queue().end()) == std::vector<double>{2, 3, 4, 5, 6});
    small.push(std::vector<double>{7});
    CHECK(std::vector<double>(small.queue().begin(), small.queue().end()) == std::vector<double>{3, 4, 5, 6, 7});

    rpo::gamma_po_margins standard(l);
    CHECK(standard.settings().capacity == 2048);
    CHECK(standard.settings().opt_size == 256);
    CHECK(standard.settings().iterations == 20);
    std::vector<double> many(2100);
    std::iota(many.begin(), many.end(), 0.0);
    standard.push(many);
    REQUIRE(standard.queue().size() == 2048);
    CHECK(standard.queue().front() == 52.0);
    CHECK(standard.queue().back() == 2099.0);
    std::vector<double> m2(2);
    REQUIRE(standard.compute(std::vector<double>{-1.5, 2.5}, m2));
    CHECK(standard.queue().size() == 2048);
    CHECK(standard.queue().front() == 54.0);
    CHECK(standard.queue()[2046] == -1.5);
    CHECK(standard.queue().back() == 2.5);
    // Float gaps are pushed as the doubles they are.
    rpo::gamma_po_margins f(l);
    std::vector<float> fm(2);
    REQUIRE(f.compute<float>(std::vector<float>{0.1f, -0.3f}, fm));
    CHECK(f.queue()[0] == static_cast<double>(0.1f));
    CHECK(f.queue()[1] == static_cast<double>(-0.3f));
  }

  TEST_CASE("the optimisation over the queue's draw and the current gaps equals an independent transcription") {
    // Every past gap is 0.3, so whichever m of them the optimiser draws, its set is m copies of 0.3 and then the
    // current gaps: the transcription of LOSSES.md §4.6's EG loop on that set must give the same margins.
    std::mt19937_64 rng(4615);
    const rpo::gamma_po l{.beta = 2.5, .gamma_beta_ratio = 0.4, .simpo = true};
    for (const std::size_t past : {std::size_t{0}, std::size_t{3}, std::size_t{20}}) {
      for (const int batch : {5, 16, 20}) {
        const rpo::gamma_po_optimizer opt{.tau = 3.0, .opt_size = 16};
        rpo::gamma_po_margins m(l, opt);
        m.push(std::vector<double>(past, 0.3));
        const std::vector<double> g = random_gaps(rng, batch, 5.0);
        std::vector<double> margins(g.size());
        REQUIRE(m.compute(g, margins));
        // m = min(queue size, opt_size − B) (none once B ≥ opt_size), n = m + B.
        const std::size_t b = g.size(), drawn = std::min(past, b < 16 ? 16 - b : 0);
        std::vector<double> set(drawn, 0.3);
        set.insert(set.end(), g.begin(), g.end());
        const std::vector<double> ref = eg_transcription(set, l.gamma_0(), 3.0, std::min(0.5 / 3.0, 1.0), 1e-10, 20);
        CAPTURE(past);
        CAPTURE(batch);
        for (std::size_t i = 0; i < b; ++i) CHECK_CLOSE(margins[i], ref[drawn + i], 1e-12, 0);
        CHECK(m.queue().size() == past + b);
      }
    }
  }

  TEST_CASE("the margin optimiser rejects bad input, writing and pushing nothing") {
    const rpo::gamma_po l{};
    rpo::gamma_po_margins m(l);
    m.push(std::vector<double>{0.5, 0.25});
    std::vector<double> out(3, 7.0);
    test::expect_error<std::invalid_argument>([&] { m.compute(std::vector<double>{1, 2}, out); },
                                              {"rpo::gamma_po_margins", "margins has 3 entries but gaps has 2"});
    test::expect_error<std::invalid_argument>(
        [&] { m.compute(std::vector<double>{1, 2}, out, rpo::errors::unchecked{}); }, {"margins has 3 entries"});
    const std::vector<double> bad{1.0, std::numeric_limits<double>::quiet_NaN(), 2.0};
    test::expect_error<std::domain_error>([&] { m.compute(bad, out); },
                                          {"rpo::gamma_po_margins", "gaps[1] must be finite"});
    rpo::status s;
    CHECK_FALSE(m.compute(bad, out, rpo::errors::report{&s}));
    expect_status(s, rpo::errc::domain_error, "gaps[1] must be finite");
    for (const rpo::gamma_po_optimizer& opt :
         {rpo::gamma_po_optimizer{.tau = 0}, rpo::gamma_po_optimizer{.iterations = 0},
          rpo::gamma_po_optimizer{.step = -0.1}, rpo::gamma_po_optimizer{.epsilon = -1}}) {
      rpo::gamma_po_margins wrong(l, opt);
      test::expect_error<std::invalid_argument>([&] { wrong.compute(std::vector<double>{1, 2, 3}, out); },
                                                {"rpo::gamma_po_margins", "must be"});
      CHECK(wrong.queue().empty());
    }
    rpo::gamma_po_margins wrong_loss(rpo::gamma_po{.beta = 0});
    test::expect_error<std::invalid_argument>([&] { wrong_loss.compute(std::vector<double>{1, 2, 3}, out); },
                                              {"beta must be finite and > 0"});
    expect_untouched(out);
    CHECK(std::vector<double>(m.queue().begin(), m.queue().end()) == std::vector<double>{0.5, 0.25});
  }
}
