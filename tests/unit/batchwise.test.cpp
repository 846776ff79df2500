// The batch-level losses of rpo/batchwise.hpp, KTO (LOSSES.md §2.3) and AOT (§1.10), and BCO's running reward mean δ
// (§1.8; the loss itself is tested in methods.test.cpp): values and gradients against the
// formulas written out here (AOT's sort done again with std::sort on copies), gradients against central differences
// (AOT at points without ties), the reductions LOSSES.md states (KTO at z0 = 0 is APO-zero's unpaired form; AOT at
// B = 1 is cDPO; AOT on a batch sorted consistently is the mean of cDPO), the sums and invariances of the gradients,
// ties, extreme inputs, float against double, and the checks of parameters and inputs under each error policy.
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
#include "rpo/extension.hpp"
#include "rpo/presets.hpp"
#include "support/close.hpp"
#include "support/dual.hpp"
#include "support/expect_error.hpp"
#include "support/gradient_check.hpp"

namespace {

static_assert(std::is_trivially_copyable_v<rpo::kto> && std::is_aggregate_v<rpo::kto>);
static_assert(std::is_trivially_copyable_v<rpo::aot> && std::is_aggregate_v<rpo::aot>);
static_assert(std::is_trivially_copyable_v<rpo::bco_reference_point> && std::is_aggregate_v<rpo::bco_reference_point>);
static_assert(std::is_trivially_copyable_v<rpo::bco_unpaired> && std::is_aggregate_v<rpo::bco_unpaired>);

double sp(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sig(double x) { return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x)); }

// ---------------------------------------------------------------------------------------------------------------
// KTO
// ---------------------------------------------------------------------------------------------------------------

/// N unpaired responses with labels: log-probs in [-300, -1], log-ratios in [-spread, spread].
struct kto_batch {
  std::vector<double> logp, ref_logp;
  std::vector<std::uint8_t> desirable;
  double z0 = 0;
  kto_batch(std::mt19937_64& rng, int n, double spread) {
    std::uniform_real_distribution<double> lp(-300, -1), ratio(-spread, spread), point(0, spread / 2);
    std::bernoulli_distribution label(0.5);
    for (int i = 0; i < n; ++i) {
      logp.push_back(lp(rng));
      ref_logp.push_back(logp.back() - ratio(rng));
      desirable.push_back(label(rng) ? 1 : 0);
    }
    z0 = point(rng);
  }
  rpo::kto_input<double> input() const { return {logp, ref_logp, desirable, z0}; }
};

/// LOSSES.md §2.3 as written: desirable λ_D(1 − σ(β(ℓ − z0))), undesirable λ_U(1 − σ(β(z0 − ℓ))).
double kto_formula(const rpo::kto& k, double ratio, double z0, bool desirable) {
  return desirable ? k.lambda_desirable * (1 - sig(k.beta * (ratio - z0)))
                   : k.lambda_undesirable * (1 - sig(k.beta * (z0 - ratio)));
}
/// Its derivative in ℓ, as LOSSES.md writes it: −λ_D·β·σ′(β(ℓ − z0)) or +λ_U·β·σ′(β(z0 − ℓ)), σ′(x) = σ(x)(1 − σ(x)).
double kto_formula_slope(const rpo::kto& k, double ratio, double z0, bool desirable) {
  const auto dsig = [](double x) { return sig(x) * (1 - sig(x)); };
  return desirable ? -k.lambda_desirable * k.beta * dsig(k.beta * (ratio - z0))
                   : k.lambda_undesirable * k.beta * dsig(k.beta * (z0 - ratio));
}

// ---------------------------------------------------------------------------------------------------------------
// AOT
// ---------------------------------------------------------------------------------------------------------------

/// B pairs, interleaved chosen, rejected: log-probs in [-300, -1], log-ratios in [-spread, spread].
struct pair_batch {
  std::vector<double> logp, ref_logp;
  pair_batch() = default;
  pair_batch(std::mt19937_64& rng, int count, double spread) {
    std::uniform_real_distribution<double> lp(-300, -1), ratio(-spread, spread);
    for (int i = 0; i < 2 * count; ++i) {
      logp.push_back(lp(rng));
      ref_logp.push_back(logp.back() - ratio(rng));
    }
  }
  std::size_t pairs() const { return logp.size() / 2; }
  rpo::batch_input<double> input() const { return {logp, ref_logp}; }
  /// The two keys AOT sorts, for pair i: (u_i, u_ref,i) paired, (ℓ_c,i, ℓ_r,i) unpaired.
  double first(std::size_t i, bool unpaired) const {
    return unpaired ? logp[2 * i] - ref_logp[2 * i] : logp[2 * i] - logp[2 * i + 1];
  }
  double second(std::size_t i, bool unpaired) const {
    return unpaired ? logp[2 * i + 1] - ref_logp[2 * i + 1] : ref_logp[2 * i] - ref_logp[2 * i + 1];
  }
  /// The smallest distance between two keys of one side: differences with a step below half of it cross no tie.
  double min_gap(bool unpaired) const {
    double gap = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < pairs(); ++i)
      for (std::size_t j = i + 1; j < pairs(); ++j)
        gap = std::min({gap, std::fabs(first(i, unpaired) - first(j, unpaired)),
                        std::fabs(second(i, unpaired) - second(j, unpaired))});
    return gap;
  }
};

/// LOSSES.md §1.10 as written: sort each side's keys (std::sort on copies), δ_(k) = first_(k) − second_(k),
/// L = mean_k [(1−ε)softplus(−βδ_(k)) + ε·softplus(βδ_(k))]. `terms` receives the terms by rank.
double aot_formula(const rpo::aot& a, const pair_batch& b, std::vector<double>* terms = nullptr) {
  std::vector<double> f, s;
  for (std::size_t i = 0; i < b.pairs(); ++i) {
    f.push_back(b.first(i, a.unpaired));
    s.push_back(b.second(i, a.unpaired));
  }
  std::sort(f.begin(), f.end());
  std::sort(s.begin(), s.end());
  double total = 0;
  if (terms != nullptr) terms->clear();
  for (std::size_t k = 0; k < f.size(); ++k) {
    const double d = a.beta * (f[k] - s[k]);
    const double term = (1 - a.epsilon) * sp(-d) + a.epsilon * sp(d);
    if (terms != nullptr) terms->push_back(term);
    total += term;
  }
  return total / static_cast<double>(f.size());
}

struct aot_result {
  double loss;
  std::vector<double> group_loss, grad, grad_ref;
};
aot_result run_aot(const rpo::aot& a, const pair_batch& b, rpo::reduction how = rpo::reduction::mean()) {
  aot_result r{0, std::vector<double>(b.pairs()), std::vector<double>(b.logp.size()),
               std::vector<double>(b.logp.size())};
  r.loss = rpo::evaluate_aot(a, b.input(), rpo::batch_output<double>{r.group_loss, r.grad, r.grad_ref}, how);
  return r;
}
aot_result run_cdpo(double beta, double epsilon, const pair_batch& b) {
  aot_result r{0, std::vector<double>(b.pairs()), std::vector<double>(b.logp.size()),
               std::vector<double>(b.logp.size())};
  const rpo::batch_output<double> out{r.group_loss, r.grad, r.grad_ref};
  r.loss = epsilon == 0 ? rpo::evaluate(rpo::dpo{.beta = beta}, b.input(), out)
                        : rpo::evaluate(rpo::cdpo{.beta = beta, .epsilon = epsilon}, b.input(), out);
  return r;
}

/// A batch of B pairs whose two sides are sorted consistently: the pair of rank k on the first side has rank k on the
/// second side too (`permutation` says which pair that is), so AOT pairs each pair with itself.
pair_batch consistently_sorted(std::mt19937_64& rng, int count, bool unpaired) {
  std::uniform_real_distribution<double> lp(-300, -1), key(-15, 15);
  std::vector<double> f(static_cast<std::size_t>(count)), s(static_cast<std::size_t>(count));
  for (auto& x : f) x = key(rng);
  for (auto& x : s) x = key(rng);
  std::sort(f.begin(), f.end());
  std::sort(s.begin(), s.end());
  std::vector<std::size_t> permutation(f.size());
  std::iota(permutation.begin(), permutation.end(), std::size_t{0});
  std::shuffle(permutation.begin(), permutation.end(), rng);
  pair_batch b;
  b.logp.resize(2 * f.size());
  b.ref_logp.resize(2 * f.size());
  for (std::size_t k = 0; k < f.size(); ++k) {
    const std::size_t i = permutation[k], c = 2 * i, r = 2 * i + 1;
    if (unpaired) {  // ℓ_c,i = f_k, ℓ_r,i = s_k
      b.logp[c] = lp(rng);
      b.ref_logp[c] = b.logp[c] - f[k];
      b.logp[r] = lp(rng);
      b.ref_logp[r] = b.logp[r] - s[k];
    } else {  // u_i = f_k, u_ref,i = s_k
      b.logp[c] = lp(rng);
      b.logp[r] = b.logp[c] - f[k];
      b.ref_logp[c] = lp(rng);
      b.ref_logp[r] = b.ref_logp[c] - s[k];
    }
  }
  return b;
}


/// A call under errors::report that failed: it returned NaN, the status holds `code` and a message containing `part`,
/// and every output still holds the 7.0 it was filled with (nothing is written on failure).
void expect_reported(double loss, const rpo::status& status, rpo::errc code, const char* part,
                     std::initializer_list<const std::vector<double>*> outputs) {
  CHECK(std::isnan(loss));
  CHECK(status.code == code);
  CHECK_MESSAGE(status.message.find(part) != std::string::npos, status.message);
  for (const std::vector<double>* out : outputs)
    CHECK(std::all_of(out->begin(), out->end(), [](double x) { return x == 7.0; }));
}
}  // namespace

TEST_SUITE("batchwise") {
  // ---------------------------------------------------------------------------------------------------------------
  // KTO
  // ---------------------------------------------------------------------------------------------------------------

  TEST_CASE("KTO equals LOSSES.md §2.3's formula, value and gradient, per response and reduced") {
    std::mt19937_64 rng(211);
    for (const rpo::kto k : {rpo::kto{}, rpo::kto{.beta = 0.3, .lambda_desirable = 1.5, .lambda_undesirable = 0.7}}) {
      for (int n = 0; n < 40; ++n) {
        const kto_batch b(rng, 9, 30.0);
        std::vector<double> loss(9), grad(9), grad_ref(9);
        const double mean = rpo::evaluate_kto(k, b.input(), rpo::kto_output<double>{loss, grad, grad_ref});
        double total = 0;
        for (std::size_t i = 0; i < 9; ++i) {
          const double ratio = b.logp[i] - b.ref_logp[i];
          const bool d = b.desirable[i] != 0;
          CAPTURE(ratio);
          CAPTURE(d);
          CHECK_CLOSE(loss[i], kto_formula(k, ratio, b.z0, d), 1e-12, 1e-15);
          CHECK_CLOSE(grad[i], kto_formula_slope(k, ratio, b.z0, d) / 9, 1e-11, 1e-16);
          CHECK(grad_ref[i] == -grad[i]);
          total += kto_formula(k, ratio, b.z0, d);
        }
        CHECK_CLOSE(mean, total / 9, 1e-12, 1e-15);  // TRL's mean over all responses of the batch
      }
    }
  }

  TEST_CASE_TEMPLATE("KTO gradients agree with central differences (z0 held fixed: it has no gradient)", T, double,
                     float) {
    std::mt19937_64 rng(223);
    const rpo::kto k{.beta = 0.2, .lambda_desirable = 1.3, .lambda_undesirable = 0.8};
    for (double spread : {0.5, 5.0, 40.0}) {
      for (int n = 0; n < 20; ++n) {
        const kto_batch b(rng, 6, spread);
        std::vector<T> logp(b.logp.begin(), b.logp.end()), ref(b.ref_logp.begin(), b.ref_logp.end());
        const auto z0 = static_cast<T>(b.z0);
        std::vector<T> grad(6), grad_ref(6);
        (void)rpo::evaluate_kto(k, rpo::kto_input<T>{logp, ref, b.desirable, z0},
                                rpo::kto_output<T>{{}, grad, grad_ref});
        for (std::size_t i = 0; i < 6; ++i) {
          for (bool moving_ref : {false, true}) {
            const auto loss_at = [&](T x) {
              std::vector<T> lp = logp, rp = ref;
              (moving_ref ? rp : lp)[i] = x;
              return rpo::evaluate_kto(k, rpo::kto_input<T>{lp, rp, b.desirable, z0});
            };
            CAPTURE(spread);
            CAPTURE(i);
            CAPTURE(moving_ref);
            const T x = moving_ref ? ref[i] : logp[i], g = moving_ref ? grad_ref[i] : grad[i];
            CHECK(test::fd_relative_error(loss_at, x, g, test::fd_floor<T>) < test::fd_tolerance<T>);
          }
        }
      }
    }
  }

  TEST_CASE("KTO at z0 = 0 and λ = 1 is APO-zero's unpaired form: a desirable ℓ_c and an undesirable ℓ_r sum to "
            "rpo::extension::apo_zero's pair loss (LOSSES.md §1.11, §2.3)") {
    std::mt19937_64 rng(227);
    std::uniform_real_distribution<double> lp(-300, -1), ratio(-60, 60);
    for (double beta : {0.1, 0.7}) {
      for (int n = 0; n < 200; ++n) {
        const double logp[2] = {lp(rng), lp(rng)};
        const double ref[2] = {logp[0] - ratio(rng), logp[1] - ratio(rng)};
        const std::uint8_t labels[2] = {1, 0};
        double grad[2], grad_ref[2];
        const double kto = rpo::evaluate_kto(rpo::kto{.beta = beta}, rpo::kto_input<double>{logp, ref, labels, 0.0},
                                             rpo::kto_output<double>{{}, grad, grad_ref}, rpo::reduction::sum());
        const auto apo = rpo::extension::apo_zero{.beta = beta}.value_and_grad(logp[0] - ref[0], logp[1] - ref[1]);
        CHECK_CLOSE(kto, apo.value, 1e-15, 0);
        CHECK_CLOSE(grad[0], apo.d_chosen, 1e-15, 0);
        CHECK_CLOSE(grad[1], apo.d_rejected, 1e-15, 0);
        CHECK_CLOSE(grad_ref[0], -apo.d_chosen, 1e-15, 0);
      }
    }
  }

  TEST_CASE("KTO is outside the template: a constant added to every log-ratio changes it; the reference point moves "
            "with the log-ratios, and moving both changes nothing") {
    std::mt19937_64 rng(229);
    const kto_batch b(rng, 8, 10.0);
    const double base = rpo::evaluate_kto(rpo::kto{}, b.input());
    kto_batch shifted = b;
    for (double& x : shifted.logp) x += 3;
    CHECK(std::fabs(rpo::evaluate_kto(rpo::kto{}, shifted.input()) - base) > 1e-4);
    shifted.z0 += 3;  // ℓ − z0 unchanged
    CHECK_CLOSE(rpo::evaluate_kto(rpo::kto{}, shifted.input()), base, 1e-12, 1e-15);
  }

  TEST_CASE("kto_reference_point is max(0, mean(logp − ref)) over the mismatched pairs, in double also for float") {
    const std::vector<double> logp{-10, -20, -30, -40}, ref{-12, -19, -33, -40};  // ℓ = 2, −1, 3, 0: mean 1
    CHECK(rpo::kto_reference_point(logp, ref) == 1.0);
    const std::vector<double> below{-15, -20, -35, -41};  // ℓ = −3, −1, −2, −1: mean −1.75, clamped
    CHECK(rpo::kto_reference_point(below, ref) == 0.0);
    const std::vector<float> lf{-10, -20, -30, -40}, rf{-12, -19, -33, -40};
    CHECK(rpo::kto_reference_point<float>(lf, rf) == 1.0f);
    // ℓ = 1e8, 1, −1e8: a float sum loses the 1 (1e8 + 1 is not a float) and gives 0; the sum in double gives 1/3.
    const std::vector<float> big{0.0f, 0.0f, -1e8f}, big_ref{-1e8f, -1.0f, 0.0f};
    CHECK(rpo::kto_reference_point<float>(big, big_ref) == static_cast<float>(1.0 / 3.0));
  }

  TEST_CASE("KTO and the reductions: sum = N·mean, sum_over(count) = sum / count, gradients scaled alike") {
    std::mt19937_64 rng(233);
    const kto_batch b(rng, 7, 10.0);
    std::vector<double> gm(7), gs(7), gc(7);
    const double mean = rpo::evaluate_kto(rpo::kto{}, b.input(), rpo::kto_output<double>{{}, gm, {}});
    const double sum = rpo::evaluate_kto(rpo::kto{}, b.input(), rpo::kto_output<double>{{}, gs, {}},
                                         rpo::reduction::sum());
    const double over = rpo::evaluate_kto(rpo::kto{}, b.input(), rpo::kto_output<double>{{}, gc, {}},
                                          rpo::reduction::sum_over(20));
    CHECK_CLOSE(sum, 7 * mean, 1e-14, 0);
    CHECK_CLOSE(over, sum / 20, 1e-14, 0);
    for (std::size_t i = 0; i < 7; ++i) {
      CHECK_CLOSE(gs[i], 7 * gm[i], 1e-14, 0);
      CHECK_CLOSE(gc[i], gs[i] / 20, 1e-14, 0);
    }
    // An empty batch sums to 0.
    CHECK(rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{}, {}, rpo::reduction::sum()) == 0.0);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // AOT
  // ---------------------------------------------------------------------------------------------------------------

  TEST_CASE("AOT equals LOSSES.md §1.10's formula (its own sort), paired and unpaired; group_loss holds the terms by "
            "rank") {
    std::mt19937_64 rng(239);
    for (bool unpaired : {false, true}) {
      for (double eps : {0.0, 0.1, 0.4}) {
        for (int n = 0; n < 40; ++n) {
          const pair_batch b(rng, 7, 25.0);
          const rpo::aot a{.beta = 0.2, .epsilon = eps, .unpaired = unpaired};
          std::vector<double> terms;
          const double reference = aot_formula(a, b, &terms);
          const aot_result r = run_aot(a, b);
          CAPTURE(unpaired);
          CAPTURE(eps);
          CHECK_CLOSE(r.loss, reference, 1e-12, 1e-15);
          for (std::size_t k = 0; k < terms.size(); ++k) CHECK_CLOSE(r.group_loss[k], terms[k], 1e-12, 1e-15);
        }
      }
    }
  }

  TEST_CASE_TEMPLATE("AOT gradients agree with central differences at points without ties, paired and unpaired", T,
                     double, float) {
    std::mt19937_64 rng(241);
    // The differences move one key by up to 2h (h = 2^-9 in double, 2^-4 in float): keep every two keys of a side
    // farther apart than 4h, so that no stencil crosses a tie (where the loss has a kink).
    const double min_gap = std::is_same_v<T, float> ? 0.5 : 0.05;
    for (bool unpaired : {false, true}) {
      for (double spread : {3.0, 10.0, 60.0}) {
        for (int n = 0; n < 15; ++n) {
          pair_batch b(rng, 6, spread);
          while (b.min_gap(unpaired) < min_gap) b = pair_batch(rng, 6, spread);
          const rpo::aot a{.beta = 0.3, .epsilon = 0.1, .unpaired = unpaired};
          std::vector<T> logp(b.logp.begin(), b.logp.end()), ref(b.ref_logp.begin(), b.ref_logp.end());
          std::vector<T> grad(12), grad_ref(12);
          (void)rpo::evaluate_aot(a, rpo::batch_input<T>{logp, ref}, rpo::batch_output<T>{{}, grad, grad_ref});
          for (std::size_t i = 0; i < 12; ++i) {
            for (bool moving_ref : {false, true}) {
              const auto loss_at = [&](T x) {
                std::vector<T> lp = logp, rp = ref;
                (moving_ref ? rp : lp)[i] = x;
                return rpo::evaluate_aot(a, rpo::batch_input<T>{lp, rp});
              };
              CAPTURE(unpaired);
              CAPTURE(spread);
              CAPTURE(i);
              CAPTURE(moving_ref);
              const T x = moving_ref ? ref[i] : logp[i], g = moving_ref ? grad_ref[i] : grad[i];
              CHECK(test::fd_relative_error(loss_at, x, g, test::fd_floor<T>) < test::fd_tolerance<T>);
            }
          }
        }
      }
    }
  }

  TEST_CASE("AOT and KTO gradients equal forward-mode dual numbers exactly, also at a tie (the stable order's)") {
    // The entry points instantiated with test::dual<double>: seeding one input's derivative gives the exact
    // directional derivative of each per-rank (per-response) term, whose sum (reduction::sum()) must be the analytic
    // gradient. The sort compares values only, so at a tie the dual run follows the same stable order.
    using D = test::dual<double>;
    std::mt19937_64 rng(281);
    for (bool unpaired : {false, true}) {
      for (int n = 0; n < 20; ++n) {
        pair_batch b(rng, 6, 20.0);
        if (n % 2 == 1) {  // a tie on each side: pair 4 copies pair 1's keys
          b.logp[8] = b.logp[2];
          b.logp[9] = b.logp[3];
          b.ref_logp[8] = b.ref_logp[2];
          b.ref_logp[9] = b.ref_logp[3];
        }
        const rpo::aot a{.beta = 0.4, .epsilon = 0.15, .unpaired = unpaired};
        const aot_result r = run_aot(a, b, rpo::reduction::sum());
        for (std::size_t m = 0; m < 12; ++m) {
          for (bool moving_ref : {false, true}) {
            std::vector<D> logp(b.logp.begin(), b.logp.end()), ref(b.ref_logp.begin(), b.ref_logp.end());
            (moving_ref ? ref : logp)[m].d = 1;
            std::vector<D> terms(6);
            (void)rpo::evaluate_aot(a, rpo::batch_input<D>{logp, ref}, rpo::batch_output<D>{terms},
                                    rpo::reduction::sum());
            double exact = 0;
            for (const D& t : terms) exact += t.d;
            CAPTURE(unpaired);
            CAPTURE(m);
            CAPTURE(moving_ref);
            CHECK_CLOSE(moving_ref ? r.grad_ref[m] : r.grad[m], exact, 1e-13, 1e-16);
          }
        }
      }
    }
    const kto_batch k(rng, 8, 20.0);
    const rpo::kto weights{.beta = 0.3, .lambda_desirable = 1.4, .lambda_undesirable = 0.6};
    std::vector<double> grad(8);
    (void)rpo::evaluate_kto(weights, k.input(), rpo::kto_output<double>{{}, grad, {}}, rpo::reduction::sum());
    for (std::size_t m = 0; m < 8; ++m) {
      std::vector<D> logp(k.logp.begin(), k.logp.end()), ref(k.ref_logp.begin(), k.ref_logp.end());
      logp[m].d = 1;
      std::vector<D> terms(8);
      (void)rpo::evaluate_kto(weights, rpo::kto_input<D>{logp, ref, k.desirable, D(k.z0)}, rpo::kto_output<D>{terms},
                              rpo::reduction::sum());
      double exact = 0;
      for (const D& t : terms) exact += t.d;
      CHECK_CLOSE(grad[m], exact, 1e-13, 1e-16);
    }
  }

  TEST_CASE("AOT at B = 1 is cDPO (logistic distance, smoothed label ε) at the same β, and DPO at ε = 0") {
    // One pair: both sorts are trivial and δ = u − u_ref = ℓ_c − ℓ_r (paired) or ℓ_c − ℓ_r (unpaired), so
    // L = (1−ε)softplus(−βδ) + ε·softplus(βδ), which is rpo::cdpo (σ(logit(1−ε)) = 1 − ε; LOSSES.md §1.2).
    std::mt19937_64 rng(251);
    for (bool unpaired : {false, true}) {
      for (double eps : {0.0, 0.05, 0.1, 0.3}) {
        for (int n = 0; n < 100; ++n) {
          const pair_batch b(rng, 1, 80.0);
          const double beta = 0.25;
          const aot_result r = run_aot(rpo::aot{.beta = beta, .epsilon = eps, .unpaired = unpaired}, b);
          const aot_result c = run_cdpo(beta, eps, b);
          CAPTURE(unpaired);
          CAPTURE(eps);
          CHECK_CLOSE(r.loss, c.loss, 1e-13, 1e-15);
          CHECK_CLOSE(r.group_loss[0], c.group_loss[0], 1e-13, 1e-15);
          // Near cDPO's stationary point the gradient is a difference that crosses 0: an absolute floor of a few ulps
          // of β there.
          for (std::size_t i = 0; i < 2; ++i) {
            CHECK_CLOSE(r.grad[i], c.grad[i], 1e-12, 1e-15);
            CHECK_CLOSE(r.grad_ref[i], c.grad_ref[i], 1e-12, 1e-15);
          }
        }
      }
    }
  }

  TEST_CASE("AOT on a batch sorted consistently is the mean of the per-pair cDPO losses, gradients included; on one "
            "that is not, it is not") {
    std::mt19937_64 rng(257);
    for (bool unpaired : {false, true}) {
      for (double eps : {0.0, 0.1}) {
        for (int n = 0; n < 50; ++n) {
          const pair_batch b = consistently_sorted(rng, 8, unpaired);
          const aot_result r = run_aot(rpo::aot{.beta = 0.4, .epsilon = eps, .unpaired = unpaired}, b);
          const aot_result c = run_cdpo(0.4, eps, b);
          CAPTURE(unpaired);
          CAPTURE(eps);
          CHECK_CLOSE(r.loss, c.loss, 1e-12, 1e-15);
          for (std::size_t i = 0; i < b.logp.size(); ++i) {
            CHECK_CLOSE(r.grad[i], c.grad[i], 1e-11, 1e-15);
            CHECK_CLOSE(r.grad_ref[i], c.grad_ref[i], 1e-11, 1e-15);
          }
        }
      }
    }
    // Two pairs sorted in opposite orders: u = (1, 5), u_ref = (4, 0) pair u = 1 with u_ref = 0 and 5 with 4, so AOT
    // sees δ = (1, 1), while the per-pair gaps are (−3, 5).
    pair_batch opposite;
    opposite.logp = {-10, -11, -20, -25};
    opposite.ref_logp = {-30, -34, -40, -40};
    const double beta = 1;
    CHECK_CLOSE(run_aot(rpo::aot{.beta = beta}, opposite).loss, sp(-1.0), 1e-14, 0);
    CHECK_CLOSE(run_cdpo(beta, 0, opposite).loss, (sp(3.0) + sp(-5.0)) / 2, 1e-14, 0);
  }

  TEST_CASE("AOT gradient sums: paired, each pair's chosen and rejected gradients cancel and the policy and reference "
            "gradients sum to zero; unpaired, grad_ref_logp = −grad_logp and chosen and rejected sums cancel") {
    std::mt19937_64 rng(263);
    for (int n = 0; n < 50; ++n) {
      const pair_batch b(rng, 9, 20.0);
      const aot_result p = run_aot(rpo::aot{.beta = 0.3, .epsilon = 0.2}, b);
      double policy = 0, reference = 0;
      for (std::size_t i = 0; i < 9; ++i) {
        CHECK(p.grad[2 * i] == -p.grad[2 * i + 1]);
        CHECK(p.grad_ref[2 * i] == -p.grad_ref[2 * i + 1]);
        policy += p.grad[2 * i];
        reference += p.grad_ref[2 * i];
      }
      CHECK(std::fabs(policy + reference) < 1e-15);
      const aot_result u = run_aot(rpo::aot{.beta = 0.3, .epsilon = 0.2, .unpaired = true}, b);
      double chosen = 0, rejected = 0;
      for (std::size_t i = 0; i < 9; ++i) {
        CHECK(u.grad_ref[2 * i] == -u.grad[2 * i]);
        CHECK(u.grad_ref[2 * i + 1] == -u.grad[2 * i + 1]);
        chosen += u.grad[2 * i];
        rejected += u.grad[2 * i + 1];
      }
      CHECK(std::fabs(chosen + rejected) < 1e-15);
    }
  }

  TEST_CASE("AOT invariances: the order of the pairs does not matter; paired AOT ignores a constant per pair, "
            "unpaired AOT one constant added to every log-ratio") {
    std::mt19937_64 rng(269);
    std::uniform_real_distribution<double> shift(-50, 50);
    for (int n = 0; n < 30; ++n) {
      const pair_batch b(rng, 7, 20.0);
      for (bool unpaired : {false, true}) {
        const rpo::aot a{.beta = 0.5, .epsilon = 0.1, .unpaired = unpaired};
        const aot_result base = run_aot(a, b);
        // Reversing the pairs permutes the gradients alike.
        pair_batch reversed = b;
        for (std::size_t i = 0; i < 7; ++i)
          for (std::size_t r = 0; r < 2; ++r) {
            reversed.logp[2 * i + r] = b.logp[2 * (6 - i) + r];
            reversed.ref_logp[2 * i + r] = b.ref_logp[2 * (6 - i) + r];
          }
        const aot_result rev = run_aot(a, reversed);
        CHECK_CLOSE(rev.loss, base.loss, 1e-14, 0);
        for (std::size_t i = 0; i < 7; ++i)
          for (std::size_t r = 0; r < 2; ++r) CHECK(rev.grad[2 * i + r] == base.grad[2 * (6 - i) + r]);
        pair_batch moved = b;
        if (unpaired) {
          const double c = shift(rng);
          for (double& x : moved.logp) x += c;
        } else {
          for (std::size_t i = 0; i < 7; ++i) {
            const double c = shift(rng);
            moved.logp[2 * i] += c;
            moved.logp[2 * i + 1] += c;
          }
        }
        CHECK_CLOSE(run_aot(a, moved).loss, base.loss, 1e-11, 1e-14);
      }
    }
  }

  TEST_CASE("AOT at a tie: deterministic (the stable order), continuous, and the gradient of the stable order") {
    // Pairs 0 and 2 tie on u = 2; pair 1's u = −1. The stable sort ranks pair 0 before pair 2.
    pair_batch tie;
    tie.logp = {-10, -12, -20, -19, -30, -32};
    tie.ref_logp = {-11, -11, -25, -20, -33, -30};
    const rpo::aot a{.beta = 0.7, .epsilon = 0.05};
    const aot_result once = run_aot(a, tie), again = run_aot(a, tie);
    CHECK(once.loss == again.loss);
    CHECK(once.grad == again.grad);
    CHECK(once.grad_ref == again.grad_ref);
    // Moving pair 2's u up a little keeps the stable order (pair 0 below pair 2): the same gradient, and a value that
    // tends to the tie's. Moving it down swaps the two ranks: the value is continuous but the gradient jumps.
    for (double h : {1e-6, 1e-9}) {
      pair_batch above = tie, below = tie;
      above.logp[4] += h;
      below.logp[4] -= h;
      const aot_result up = run_aot(a, above), down = run_aot(a, below);
      CHECK_CLOSE(up.loss, once.loss, 0, 2 * h);
      CHECK_CLOSE(down.loss, once.loss, 0, 2 * h);
      for (std::size_t i = 0; i < 6; ++i) CHECK_CLOSE(up.grad[i], once.grad[i], 0, 2 * h);
    }
    // The jump is real here: pairs 0 and 2 meet different reference ranks.
    pair_batch below = tie;
    below.logp[4] -= 1e-9;
    CHECK(std::fabs(run_aot(a, below).grad[0] - once.grad[0]) > 1e-3);
  }

  TEST_CASE("AOT and the reductions: sum = B·mean, sum_over(count) = sum / count; an empty batch sums to 0") {
    std::mt19937_64 rng(271);
    const pair_batch b(rng, 5, 10.0);
    for (bool unpaired : {false, true}) {
      const rpo::aot a{.epsilon = 0.1, .unpaired = unpaired};
      const aot_result mean = run_aot(a, b), sum = run_aot(a, b, rpo::reduction::sum()),
                       over = run_aot(a, b, rpo::reduction::sum_over(16));
      CHECK_CLOSE(sum.loss, 5 * mean.loss, 1e-14, 0);
      CHECK_CLOSE(over.loss, sum.loss / 16, 1e-14, 0);
      for (std::size_t i = 0; i < 10; ++i) {
        CHECK_CLOSE(sum.grad[i], 5 * mean.grad[i], 1e-14, 0);
        CHECK_CLOSE(over.grad_ref[i], sum.grad_ref[i] / 16, 1e-14, 0);
      }
      CHECK(sum.group_loss == mean.group_loss);  // per rank, before reduction
    }
    CHECK(rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{}, {}, rpo::reduction::sum()) == 0.0);
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Both: extreme inputs, float against double
  // ---------------------------------------------------------------------------------------------------------------

  TEST_CASE_TEMPLATE("finite losses and gradients at |ℓ| up to 1e4 (and z0 up to 1e4)", T, float, double) {
    const std::vector<double> values{-1e4, -3e3, -100, -1, 0, 1, 100, 3e3, 1e4};
    std::vector<T> logp, ref;
    std::vector<std::uint8_t> labels;
    for (double x : values)
      for (double y : values) {  // a chosen response with ℓ = x, a rejected one with ℓ = y; logp ≤ 0
        logp.push_back(static_cast<T>(-std::fabs(x)));
        ref.push_back(static_cast<T>(-std::fabs(x) - x));
        logp.push_back(static_cast<T>(-std::fabs(y)));
        ref.push_back(static_cast<T>(-std::fabs(y) - y));
        labels.push_back(1);
        labels.push_back(0);
      }
    const std::size_t n = logp.size();
    const auto all_finite = [](const std::vector<T>& v) {
      return std::all_of(v.begin(), v.end(), [](T x) { return std::isfinite(x); });
    };
    for (double beta : {0.1, 1.0, 10.0}) {
      for (double z0 : {0.0, 5.0, 1e4}) {
        std::vector<T> loss(n), grad(n), grad_ref(n);
        const T value = rpo::evaluate_kto(rpo::kto{.beta = beta}, rpo::kto_input<T>{logp, ref, labels, T(z0)},
                                          rpo::kto_output<T>{loss, grad, grad_ref});
        CAPTURE(beta);
        CAPTURE(z0);
        CHECK(std::isfinite(value));
        CHECK((all_finite(loss) && all_finite(grad) && all_finite(grad_ref)));
      }
      for (double eps : {0.0, 0.2}) {
        for (bool unpaired : {false, true}) {
          std::vector<T> terms(n / 2), grad(n), grad_ref(n);
          const T value = rpo::evaluate_aot(rpo::aot{.beta = beta, .epsilon = eps, .unpaired = unpaired},
                                            rpo::batch_input<T>{logp, ref}, rpo::batch_output<T>{terms, grad, grad_ref});
          CAPTURE(beta);
          CAPTURE(eps);
          CAPTURE(unpaired);
          CHECK(std::isfinite(value));
          CHECK((all_finite(terms) && all_finite(grad) && all_finite(grad_ref)));
        }
      }
    }
  }

  TEST_CASE("float agrees with double: KTO and AOT, losses and gradients") {
    std::mt19937_64 rng(277);
    for (int n = 0; n < 30; ++n) {
      // Log-probs that are exact in float, so that both types see the same batch.
      pair_batch b(rng, 6, 15.0);
      for (double& x : b.logp) x = static_cast<double>(static_cast<float>(x));
      for (double& x : b.ref_logp) x = static_cast<double>(static_cast<float>(x));
      while (b.min_gap(false) < 1e-3 || b.min_gap(true) < 1e-3) {  // a tie within float rounding may swap ranks
        b = pair_batch(rng, 6, 15.0);
        for (double& x : b.logp) x = static_cast<double>(static_cast<float>(x));
        for (double& x : b.ref_logp) x = static_cast<double>(static_cast<float>(x));
      }
      const std::vector<float> lf(b.logp.begin(), b.logp.end()), rf(b.ref_logp.begin(), b.ref_logp.end());
      for (bool unpaired : {false, true}) {
        const rpo::aot a{.beta = 0.3, .epsilon = 0.1, .unpaired = unpaired};
        const aot_result d = run_aot(a, b);
        std::vector<float> gf(12), gr(12);
        const float f = rpo::evaluate_aot(a, rpo::batch_input<float>{lf, rf}, rpo::batch_output<float>{{}, gf, gr});
        CHECK_CLOSE(f, d.loss, 1e-4, 1e-6);
        for (std::size_t i = 0; i < 12; ++i) {
          CHECK_CLOSE(gf[i], d.grad[i], 1e-4, 1e-6);
          CHECK_CLOSE(gr[i], d.grad_ref[i], 1e-4, 1e-6);
        }
      }
      const std::vector<std::uint8_t> labels{1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 1, 0};
      const rpo::kto k{.beta = 0.3, .lambda_desirable = 1.2};
      std::vector<double> gd(12);
      std::vector<float> gf(12);
      const double d = rpo::evaluate_kto(k, rpo::kto_input<double>{b.logp, b.ref_logp, labels, 2.5},
                                         rpo::kto_output<double>{{}, gd, {}});
      const float f =
          rpo::evaluate_kto(k, rpo::kto_input<float>{lf, rf, labels, 2.5f}, rpo::kto_output<float>{{}, gf, {}});
      CHECK_CLOSE(f, d, 1e-4, 1e-6);
      for (std::size_t i = 0; i < 12; ++i) CHECK_CLOSE(gf[i], gd[i], 1e-4, 1e-6);
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Checks
  // ---------------------------------------------------------------------------------------------------------------

  TEST_CASE("KTO's checks name the argument, the rule and the value; nothing is written on failure") {
    const std::vector<double> logp{-3, -4, -5, -6}, ref{-3, -4, -5, -7};
    const std::vector<std::uint8_t> labels{1, 0, 1, 0};
    const auto refuses = [](auto&& call, const char* message) {
      test::expect_error<std::invalid_argument>(call, {message});
    };
    const auto domain = [](auto&& call, const char* message) {
      test::expect_error<std::domain_error>(call, {message});
    };
    const std::vector<std::uint8_t> three{1, 0, 1};
    refuses([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, ref, three}); },
            "rpo::evaluate_kto: desirable has 3 entries but logp has 4");
    refuses([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, {}, labels}); },
            "rpo::evaluate_kto: ref_logp has 0 entries but logp has 4");
    std::vector<double> small(3);
    refuses([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, ref, labels},
                                          rpo::kto_output<double>{small}); },
            "rpo::evaluate_kto: response_loss has 3 entries but must have 4 (one per response) or none");
    refuses([&] { (void)rpo::evaluate_kto(rpo::kto{.beta = 0}, rpo::kto_input<double>{logp, ref, labels}); },
            "rpo::evaluate_kto: beta must be finite and > 0, but got beta = 0");
    refuses([&] {
      (void)rpo::evaluate_kto(rpo::kto{.lambda_undesirable = -1}, rpo::kto_input<double>{logp, ref, labels});
    }, "rpo::evaluate_kto: lambda_undesirable must be finite and >= 0, but got lambda_undesirable = -1");
    refuses([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{}); },
            "rpo::evaluate_kto: the batch is empty, and the mean over 0 responses is undefined");
    refuses([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, ref, labels}, {},
                                          rpo::reduction::sum_over(0)); },
            "rpo::evaluate_kto: reduction count must be finite and > 0");
    const std::vector<std::uint8_t> two{1, 2, 0, 1};
    domain([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, ref, two}); },
           "rpo::evaluate_kto: desirable[1] must be 0 (undesirable) or 1 (desirable), but got desirable[1] = 2");
    const double inf = std::numeric_limits<double>::infinity();
    domain([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, ref, labels, inf}); },
           "rpo::evaluate_kto: z0 must be finite, but got z0 = inf");
    const std::vector<double> nan_ref{-3, -4, std::numeric_limits<double>::quiet_NaN(), -7};
    domain([&] { (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, nan_ref, labels}); },
           "rpo::evaluate_kto: ref_logp[2] must be finite, but got ref_logp[2] = nan");

    // errors::report: a NaN loss, the first error in the status, the outputs untouched.
    std::vector<double> loss(4, 7.0), grad(4, 7.0);
    rpo::status status;
    const double r = rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, nan_ref, labels},
                                       rpo::kto_output<double>{loss, grad}, rpo::reduction::mean(),
                                       rpo::errors::report{&status});
    expect_reported(r, status, rpo::errc::domain_error, "ref_logp[2]", {&loss, &grad});
    // errors::unchecked: values are not checked, sizes still are (they guard memory).
    CHECK_NOTHROW((void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, ref, two}, {},
                                          rpo::reduction::mean(), rpo::errors::unchecked{}));
    refuses([&] {
      (void)rpo::evaluate_kto(rpo::kto{}, rpo::kto_input<double>{logp, ref, three}, {}, rpo::reduction::mean(),
                              rpo::errors::unchecked{});
    }, "rpo::evaluate_kto: desirable has 3 entries but logp has 4");

    // kto_reference_point.
    refuses([&] { (void)rpo::kto_reference_point(logp, std::vector<double>{-1, -2}); },
            "rpo::kto_reference_point: mismatched_ref_logp has 2 entries but mismatched_logp has 4");
    refuses([&] { (void)rpo::kto_reference_point(std::vector<double>{}, std::vector<double>{}); },
            "rpo::kto_reference_point: no mismatched pairs were given");
    domain([&] { (void)rpo::kto_reference_point(nan_ref, logp); },
           "rpo::kto_reference_point: mismatched_logp[2] must be finite, but got mismatched_logp[2] = nan");
  }

  TEST_CASE("AOT's checks: rpo::evaluate's shape checks under its own name, its parameters, finite values") {
    const std::vector<double> logp{-3, -4, -5, -6}, ref{-3, -4, -5, -7};
    const auto refuses = [](auto&& call, const char* message) {
      test::expect_error<std::invalid_argument>(call, {message});
    };
    const std::vector<double> five{-3, -4, -5, -6, -7};
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{five, five}); },
            "rpo::evaluate_aot: logp has 5 entries, which is not a multiple of the group size 2");
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{logp}); },
            "rpo::evaluate_aot: ref_logp is read by this loss but was not given");
    const std::vector<double> short_ref{-1, -2, -3};
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{logp, short_ref}); },
            "rpo::evaluate_aot: ref_logp has 3 entries but logp has 4");
    const std::vector<std::int64_t> triple{0, 3, 4};
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{logp, ref, {}, {}, triple}); },
            "rpo::evaluate_aot: group 0 (offsets[0] to offsets[1]) has 3 responses, but this sampling scheme needs "
            "exactly 2");
    std::vector<double> three(3);
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{logp, ref},
                                          rpo::batch_output<double>{three}); },
            "rpo::evaluate_aot: group_loss has 3 entries but must have 2");
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{.epsilon = 0.5}, rpo::batch_input<double>{logp, ref}); },
            "rpo::evaluate_aot: epsilon must be in [0, 0.5), but got epsilon = 0.5");
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{.beta = -1}, rpo::batch_input<double>{logp, ref}); },
            "rpo::evaluate_aot: beta must be finite and > 0, but got beta = -1");
    refuses([&] { (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{}); },
            "rpo::evaluate_aot: the batch is empty");
    const std::vector<double> bad{-3, -4, -std::numeric_limits<double>::infinity(), -6};
    test::expect_error<std::domain_error>(
        [&] { (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{bad, ref}); },
        {"rpo::evaluate_aot: logp[2] must be finite, but got logp[2] = -inf"});
    // Offsets that make every group a pair are accepted and give the same result.
    const std::vector<std::int64_t> pairs{0, 2, 4};
    CHECK(rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{logp, ref, {}, {}, pairs}) ==
          rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{logp, ref}));

    // errors::report leaves the outputs untouched; errors::unchecked still checks shapes.
    std::vector<double> terms(2, 7.0), grad(4, 7.0);
    rpo::status status;
    const double r = rpo::evaluate_aot(rpo::aot{.epsilon = 0.7}, rpo::batch_input<double>{logp, ref},
                                       rpo::batch_output<double>{terms, grad}, rpo::reduction::mean(),
                                       rpo::errors::report{&status});
    expect_reported(r, status, rpo::errc::invalid_parameter, "epsilon", {&terms, &grad});
    refuses([&] {
      (void)rpo::evaluate_aot(rpo::aot{}, rpo::batch_input<double>{five, five}, {}, rpo::reduction::mean(),
                              rpo::errors::unchecked{});
    }, "rpo::evaluate_aot: logp has 5 entries");
  }

  // ---------------------------------------------------------------------------------------------------------------
  // BCO's running reward mean δ
  // ---------------------------------------------------------------------------------------------------------------

  TEST_CASE("unpaired BCO equals LOSSES.md §1.8's formula per response, weights included, and its gradients agree "
            "with central differences (delta and the weights held fixed)") {
    std::mt19937_64 rng(401);
    std::uniform_real_distribution<double> w(0.0, 3.0), shift(-2.0, 2.0);
    for (const rpo::bco_unpaired l : {rpo::bco_unpaired{}, rpo::bco_unpaired{.beta = 0.7}}) {
      for (int n = 0; n < 20; ++n) {
        const kto_batch b(rng, 7, 20.0);
        std::vector<double> weight(7);
        for (double& x : weight) x = w(rng);
        const double delta = shift(rng);
        const rpo::bco_input<double> in{b.logp, b.ref_logp, b.desirable, weight, delta};
        std::vector<double> loss(7), grad(7), grad_ref(7);
        const double mean = rpo::evaluate_bco(l, in, rpo::kto_output<double>{loss, grad, grad_ref});
        double total = 0;
        for (std::size_t i = 0; i < 7; ++i) {
          const double x = l.beta * (b.logp[i] - b.ref_logp[i]) - delta;
          const bool d = b.desirable[i] != 0;
          // −log σ(x) = sp(−x) (desirable), −log σ(−x) = sp(x) (undesirable); the slopes −β σ(−x) and β σ(x).
          const double value = weight[i] * (d ? sp(-x) : sp(x)), slope = weight[i] * (d ? -l.beta * sig(-x) : l.beta * sig(x));
          CHECK_CLOSE(loss[i], value, 1e-12, 1e-15);
          CHECK_CLOSE(grad[i], slope / 7, 1e-12, 1e-16);
          CHECK(grad_ref[i] == -grad[i]);
          total += value;
          for (bool moving_ref : {false, true}) {
            const auto loss_at = [&](double v) {
              std::vector<double> lp = b.logp, rp = b.ref_logp;
              (moving_ref ? rp : lp)[i] = v;
              return rpo::evaluate_bco(l, rpo::bco_input<double>{lp, rp, b.desirable, weight, delta});
            };
            const double at = moving_ref ? b.ref_logp[i] : b.logp[i], g = moving_ref ? grad_ref[i] : grad[i];
            CHECK(test::fd_relative_error(loss_at, at, g, test::fd_floor<double>) < test::fd_tolerance<double>);
          }
        }
        CHECK_CLOSE(mean, total / 7, 1e-12, 1e-15);
      }
    }
  }

  TEST_CASE("unpaired BCO on a pair's two responses, chosen desirable and rejected not, is bco_pair with the same "
            "delta: the sums agree") {
    std::mt19937_64 rng(409);
    std::uniform_real_distribution<double> lp(-200, -5), ratio(-10, 10);
    for (const double delta : {0.0, -0.75, 1.3}) {
      std::vector<double> logp, ref;
      std::vector<std::uint8_t> labels;
      for (int i = 0; i < 16; ++i) {
        logp.push_back(lp(rng));
        ref.push_back(logp.back() - ratio(rng));
        labels.push_back(i % 2 == 0 ? 1 : 0);
      }
      std::vector<double> unpaired_grad(16), paired_grad(16);
      const double unpaired = rpo::evaluate_bco(rpo::bco_unpaired{.beta = 0.3}, rpo::bco_input<double>{logp, ref, labels, {}, delta},
                                                rpo::kto_output<double>{{}, unpaired_grad, {}}, rpo::reduction::sum());
      const double paired = rpo::evaluate(rpo::bco_pair{.beta = 0.3, .delta = delta},
                                          rpo::batch_input<double>{.logp = logp, .ref_logp = ref},
                                          rpo::batch_output<double>{.grad_logp = paired_grad}, rpo::reduction::sum());
      CAPTURE(delta);
      CHECK_CLOSE(unpaired, paired, 1e-13, 0);
      for (std::size_t i = 0; i < 16; ++i) CHECK_CLOSE(unpaired_grad[i], paired_grad[i], 1e-13, 1e-16);
    }
  }

  TEST_CASE("unpaired BCO: bad sizes, labels, weights and delta are refused, naming them, and nothing is written") {
    const std::vector<double> logp{-1, -2, -3}, ref{-1.5, -2.5, -2}, good_weight{1, 0.5, 2};
    const std::vector<std::uint8_t> labels{1, 0, 1};
    std::vector<double> loss(3, 7.0);
    const auto run = [&](const rpo::bco_input<double>& in) {
      return rpo::evaluate_bco(rpo::bco_unpaired{}, in, rpo::kto_output<double>{loss, {}, {}});
    };
    test::expect_error<std::invalid_argument>([&] { run({logp, ref, labels, std::vector<double>{1, 1}, 0.0}); },
                                              {"rpo::evaluate_bco: weight has 2 entries but must have 3"});
    test::expect_error<std::domain_error>(
        [&] { run({logp, ref, labels, std::vector<double>{1, -0.5, 1}, 0.0}); },
        {"rpo::evaluate_bco: weight[1] must be finite and >= 0, but got weight[1] = -0.5"});
    test::expect_error<std::domain_error>(
        [&] { run({logp, ref, labels, good_weight, std::numeric_limits<double>::quiet_NaN()}); },
        {"rpo::evaluate_bco: delta must be finite"});
    test::expect_error<std::domain_error>([&] { run({logp, ref, std::vector<std::uint8_t>{1, 2, 0}, {}, 0.0}); },
                                          {"desirable[1] must be 0 (undesirable) or 1 (desirable)"});
    test::expect_error<std::invalid_argument>([&] { (void)rpo::evaluate_bco(rpo::bco_unpaired{.beta = 0}, {logp, ref, labels}); },
                                              {"beta"});
    CHECK(loss == std::vector<double>(3, 7.0));
    // Finite at extreme log-ratios, in float too.
    const std::vector<float> big{1e4f, -1e4f, 3e4f}, zero(3, 0.0f);
    std::vector<float> g(3);
    const float value = rpo::evaluate_bco(rpo::bco_unpaired{}, rpo::bco_input<float>{big, zero, labels},
                                          rpo::kto_output<float>{{}, g, {}});
    CHECK(std::isfinite(value));
    for (float x : g) CHECK(std::isfinite(x));
  }

  TEST_CASE("bco_reference_point: the running mean equals a plain mean over every value pushed, batch by batch") {
    std::mt19937_64 rng(211);
    std::uniform_real_distribution<double> reward(-40, 25);
    std::uniform_int_distribution<int> size(0, 17);  // ragged batches, empty ones included
    rpo::bco_reference_point delta;
    CHECK(delta.mean == 0.0);  // before the first push: 0, as TRL's RunningMoments
    CHECK(delta.count == 0);
    std::vector<double> everything;
    for (int step = 0; step < 60; ++step) {
      std::vector<double> batch(static_cast<std::size_t>(size(rng)));
      for (double& r : batch) r = reward(rng);
      CHECK(delta.push(batch));
      everything.insert(everything.end(), batch.begin(), batch.end());
      CHECK(delta.count == static_cast<std::int64_t>(everything.size()));
      if (everything.empty()) {
        CHECK(delta.mean == 0.0);
        continue;
      }
      // The plain mean, summed afresh in long double (an independent accumulation).
      long double total = 0;
      for (double r : everything) total += static_cast<long double>(r);
      const double plain = static_cast<double>(total / static_cast<long double>(everything.size()));
      CAPTURE(step);
      CHECK_CLOSE(delta.mean, plain, 1e-13, 1e-13);
    }
    // Float rewards are summed in double: the mean of the floats as doubles.
    rpo::bco_reference_point f;
    const std::vector<float> batch{0.1f, 0.2f, 0.3f};
    CHECK(f.push<float>(batch));
    const double exact = (static_cast<double>(0.1f) + static_cast<double>(0.2f) + static_cast<double>(0.3f)) / 3;
    CHECK_CLOSE(f.mean, exact, 1e-15, 0);
  }

  TEST_CASE("bco_reference_point: pushing batch means, one value per batch, is legacy TRL's mean of batch means") {
    // TRL's RunningMoments.update receives the batch's mean reward (a 0-d tensor): each batch counts once.
    const std::vector<std::vector<double>> batches{{1, 2, 3, 4}, {10}, {-2, -4}};
    rpo::bco_reference_point per_batch, per_value;
    double sum_of_means = 0;
    for (const auto& b : batches) {
      const double m = std::accumulate(b.begin(), b.end(), 0.0) / static_cast<double>(b.size());
      sum_of_means += m;
      CHECK(per_batch.push(std::vector<double>{m}));
      CHECK(per_value.push(b));
    }
    CHECK(per_batch.count == 3);
    CHECK_CLOSE(per_batch.mean, sum_of_means / 3, 1e-15, 0);  // (2.5 + 10 − 3) / 3
    CHECK_CLOSE(per_value.mean, 14.0 / 7, 1e-15, 0);  // (10 + 10 − 6) / 7 = 2, not 3.17: ragged batches weigh differently
  }

  TEST_CASE("bco_reference_point: non-finite rewards and a broken state are refused, naming them; nothing changes") {
    const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
    rpo::bco_reference_point delta{.mean = 1.5, .count = 4};
    const std::vector<double> bad{0.5, -1, inf, nan};
    test::expect_error<std::domain_error>(
        [&] { (void)delta.push(bad); },
        {"rpo::bco_reference_point::push: rewards[2] must be finite, but got rewards[2] = inf"});
    CHECK(delta.mean == 1.5);
    CHECK(delta.count == 4);
    rpo::status status;
    CHECK_FALSE(delta.push(std::vector<double>{1, nan}, rpo::errors::report{&status}));
    CHECK(status.code == rpo::errc::domain_error);
    CHECK(status.message.find("rewards[1]") != std::string::npos);
    CHECK(delta.mean == 1.5);
    CHECK(delta.count == 4);
    rpo::bco_reference_point broken{.mean = nan, .count = 2};
    test::expect_error<std::invalid_argument>(
        [&] { (void)broken.push(std::vector<double>{1.0}); },
        {"rpo::bco_reference_point::push: the running state must have count >= 0 and a finite mean", "mean = nan"});
    rpo::bco_reference_point negative{.mean = 0, .count = -1};
    test::expect_error<std::invalid_argument>([&] { (void)negative.push(std::vector<double>{1.0}); },
                                              {"count = -1"});
    // Finite extremes stay finite: the mean of ±1e300 is taken without overflow of the merge.
    rpo::bco_reference_point big;
    CHECK(big.push(std::vector<double>{1e300, 1e300}));
    CHECK(big.push(std::vector<double>{-1e300}));
    CHECK(std::isfinite(big.mean));
    CHECK_CLOSE(big.mean, 1e300 / 3, 1e-14, 0);
  }
}
