// rpo/bandit/problem.hpp — a tabular bandit: X prompts × V arms, a ground-truth reward table r*(x, y), a reference
// policy π_ref, optional response lengths and reward-model features; three seeded generators and the analytic
// optimum of every RPO loss.
//
// Public names: rpo::bandit::problem, rpo::bandit::random_problem, rpo::bandit::long_tail_problem,
//               rpo::bandit::hacking_problem, rpo::bandit::optimum.
// The optimum is RPO.md §2.4 (E9): π*(y|x) = π_ref(y|x)·exp(η·r(x,y)/β) / Z(x), the minimiser of every RPO loss
// when all pairs are covered, and the maximiser of J(π) = E_π[r] − (β/η)·KL(π ‖ π_ref).
// Tables are row-major X × V std::vector<double>: entry x·V + y.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/errors.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// A bandit problem: `prompts` × `arms`, the judge's reward table r*(x, y) and the reference policy π_ref(y|x)
/// (each row positive and summing to 1); optionally each response's length in tokens (for length-normalised
/// rewards such as SimPO's) and the features a learnt reward model sees (rpo/bandit/bradley_terry.hpp). An
/// aggregate; call check() before using one built by hand.
struct problem {
  std::int64_t prompts = 0;       ///< X ≥ 1
  std::int64_t arms = 0;          ///< V ≥ 2
  std::vector<double> reward{};     ///< r*(x, y), X·V finite entries, row-major
  std::vector<double> ref{};        ///< π_ref(y|x), X·V entries, each row positive and summing to 1 (to 1e-9)
  std::vector<double> lengths{};    ///< n(x, y) ≥ 1 tokens, X·V entries; empty: every response is one token
  std::int64_t feature_dim = 0;   ///< d ≥ 0: the features of a learnt reward model; 0: one per (x, y) (tabular)
  std::vector<double> features{};   ///< f(x, y) ∈ ℝ^d, X·V·d finite entries, (x, y)-major; empty when d = 0

  /// The flat index of (x, y): x·V + y.
  std::size_t at(std::int64_t x, std::int64_t y) const noexcept { return static_cast<std::size_t>(x * arms + y); }
  /// r*(x, y).
  double r(std::int64_t x, std::int64_t y) const noexcept { return reward[at(x, y)]; }
  /// π_ref(y|x).
  double pi_ref(std::int64_t x, std::int64_t y) const noexcept { return ref[at(x, y)]; }
  /// n(x, y): the response's length in tokens (1 when `lengths` is empty).
  double length(std::int64_t x, std::int64_t y) const noexcept { return lengths.empty() ? 1.0 : lengths[at(x, y)]; }
  /// Throws std::invalid_argument naming the first bad argument and its value: X < 1, V < 2, table sizes, a
  /// non-finite reward, a π_ref entry not finite and > 0, a π_ref row whose sum is not 1, a length not finite and
  /// ≥ 1, a negative feature_dim or a non-finite feature.
  void check() const;
};

/// A random problem: rewards i.i.d. N(0, 1), π_ref(·|x) = softmax of i.i.d. N(0, 1) logits; reproducible from
/// `seed` (std::mt19937_64; the normal draws are libstdc++'s / libc++'s, so tables may differ across standard
/// libraries). Throws std::invalid_argument for X < 1 or V < 2.
problem random_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed);

/// A structured problem with a long tail: π_ref(·|x) is Zipf,
/// π_ref(y_(k)|x) ∝ k^(−1.2) over a random order of the arms, so most of its mass sits on a few head arms; rewards are
/// N(0, 0.5²) plus, for the two rarest arms, a bonus of 1.5 + Exp(1), so the best responses are the ones the
/// reference rarely writes. Reproducible from `seed`. Throws std::invalid_argument for X < 1 or V < 4.
problem long_tail_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed);

/// A problem with a reward-hacking direction, built to over-optimise a learnt reward model. Each arm has a quality
/// q ~ N(0, 1) and a length ℓ ∈ [0, 1]: ⌈V/4⌉ "hacking" arms have ℓ ~ U[0.85, 1], the others ℓ ~ U[0, 0.5]. The
/// judge rewards length up to a point and then penalises it: r* = q + 3ℓ − 20·max(0, ℓ − 0.5)², so a hacking arm
/// scores q + 0.1 down to q − 2 where a normal arm scores up to q + 1.5. π_ref ∝ exp(0.5·N(0, 1) − 6ℓ) rarely writes
/// the hacking arms (about 0.5% of its mass at V = 12), and the
/// learnt reward model sees the linear features f = (q, ℓ): fitted on π_ref's data, where r* is linear in ℓ, it
/// extrapolates "longer is better" to the hacking arms. Lengths n = 1 + round(19ℓ) tokens. Reproducible from
/// `seed`. Throws std::invalid_argument for X < 1 or V < 4.
problem hacking_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed);

/// The analytic optimum π*(y|x) ∝ π_ref(y|x)·exp(η·r*(x,y)/β) (RPO.md §2.4), an X·V table, computed in log space
/// with the maximum of each row shifted out. Checks the problem, β > 0 and η ≥ 0 (finite).
std::vector<double> optimum(const problem& p, double beta, double eta);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {
inline void require(bool ok, const char* who, const std::string& name, const char* rule, double value) {
  if (!ok) throw std::invalid_argument(rpo::detail::rule_message(who, name, rule, value));
}
/// Throws std::invalid_argument unless table `name` has the problem's X·V entries.
inline void check_table(const char* who, const char* name, const problem& p, std::span<const double> t) {
  if (t.size() != p.reward.size())
    throw std::invalid_argument(std::string(who) + ": " + name + " has " + std::to_string(t.size()) +
                                " entries but the problem has prompts * arms = " + std::to_string(p.reward.size()));
}
/// E_{x uniform, y~π(·|x)} s(x, y) for X·V tables π and s of the same size: Σ π·s over the X prompts.
inline double expected_under(std::span<const double> pi, std::span<const double> s, std::int64_t prompts) {
  double total = 0;
  for (std::size_t i = 0; i < pi.size(); ++i) total += pi[i] * s[i];
  return total / static_cast<double>(prompts);
}
inline std::string indexed(const char* name, std::int64_t x, std::int64_t y) {
  return std::string(name) + "[" + std::to_string(x) + "][" + std::to_string(y) + "]";
}
}  // namespace detail

inline void problem::check() const {
  constexpr const char* who = "rpo::bandit::problem";
  detail::require(prompts >= 1, who, "prompts", "must be >= 1", static_cast<double>(prompts));
  detail::require(arms >= 2, who, "arms", "must be >= 2 (a preference needs two arms)", static_cast<double>(arms));
  const auto n = static_cast<std::size_t>(prompts * arms);
  detail::require(reward.size() == n, who, "reward.size()", "must be prompts * arms", static_cast<double>(reward.size()));
  detail::require(ref.size() == n, who, "ref.size()", "must be prompts * arms", static_cast<double>(ref.size()));
  for (std::int64_t x = 0; x < prompts; ++x) {
    double sum = 0;
    for (std::int64_t y = 0; y < arms; ++y) {
      detail::require(std::isfinite(r(x, y)), who, detail::indexed("reward", x, y), "must be finite", r(x, y));
      const double q = pi_ref(x, y);
      detail::require(std::isfinite(q) && q > 0, who, detail::indexed("ref", x, y), "must be finite and > 0", q);
      sum += q;
    }
    detail::require(std::fabs(sum - 1) <= 1e-9, who, "the sum of ref[" + std::to_string(x) + "]", "must be 1 (to 1e-9)",
                    sum);
  }
  if (!lengths.empty()) {
    detail::require(lengths.size() == n, who, "lengths.size()", "must be 0 or prompts * arms",
                    static_cast<double>(lengths.size()));
    for (std::int64_t x = 0; x < prompts; ++x)
      for (std::int64_t y = 0; y < arms; ++y)
        detail::require(std::isfinite(length(x, y)) && length(x, y) >= 1, who, detail::indexed("lengths", x, y),
                        "must be finite and >= 1 (a response has at least one token)", length(x, y));
  }
  detail::require(feature_dim >= 0, who, "feature_dim", "must be >= 0", static_cast<double>(feature_dim));
  detail::require(features.size() == n * static_cast<std::size_t>(feature_dim), who, "features.size()",
                  "must be prompts * arms * feature_dim", static_cast<double>(features.size()));
  for (std::size_t i = 0; i < features.size(); ++i)
    detail::require(std::isfinite(features[i]), who, "features[" + std::to_string(i) + "]", "must be finite",
                    features[i]);
}

namespace detail {
/// Fills row x of `ref` with softmax(logits).
inline void softmax_row(problem& p, std::int64_t x, const std::vector<double>& logits) {
  double top = -std::numeric_limits<double>::infinity(), sum = 0;
  for (const double l : logits) top = std::fmax(top, l);
  for (std::int64_t y = 0; y < p.arms; ++y) sum += (p.ref[p.at(x, y)] = std::exp(logits[static_cast<std::size_t>(y)] - top));
  for (std::int64_t y = 0; y < p.arms; ++y) p.ref[p.at(x, y)] /= sum;
}
inline problem empty_problem(const char* who, std::int64_t prompts, std::int64_t arms, std::int64_t min_arms) {
  require(prompts >= 1, who, "prompts", "must be >= 1", static_cast<double>(prompts));
  require(arms >= min_arms, who, "arms",
          min_arms == 2 ? "must be >= 2 (a preference needs two arms)" : "must be >= 4 (a head and a tail)",
          static_cast<double>(arms));
  problem p{.prompts = prompts, .arms = arms};
  p.reward.resize(static_cast<std::size_t>(prompts * arms));
  p.ref.resize(p.reward.size());
  return p;
}
}  // namespace detail

inline problem random_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed) {
  problem p = detail::empty_problem("rpo::bandit::random_problem", prompts, arms, 2);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (double& r : p.reward) r = normal(rng);
  std::vector<double> logits(static_cast<std::size_t>(arms));
  for (std::int64_t x = 0; x < prompts; ++x) {
    for (double& l : logits) l = normal(rng);
    detail::softmax_row(p, x, logits);
  }
  return p;
}

inline problem long_tail_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed) {
  problem p = detail::empty_problem("rpo::bandit::long_tail_problem", prompts, arms, 4);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.5);
  std::exponential_distribution<double> bonus(1.0);
  std::vector<std::int64_t> order(static_cast<std::size_t>(arms));
  std::vector<double> logits(order.size());
  for (std::int64_t x = 0; x < prompts; ++x) {
    for (std::int64_t k = 0; k < arms; ++k) order[static_cast<std::size_t>(k)] = k;
    std::shuffle(order.begin(), order.end(), rng);  // order[k]: the arm of Zipf rank k + 1
    for (std::int64_t k = 0; k < arms; ++k) {
      const std::int64_t y = order[static_cast<std::size_t>(k)];
      logits[static_cast<std::size_t>(y)] = -1.2 * std::log(static_cast<double>(k + 1));
      p.reward[p.at(x, y)] = normal(rng) + (k >= arms - 2 ? 1.5 + bonus(rng) : 0.0);
    }
    detail::softmax_row(p, x, logits);
  }
  return p;
}

inline problem hacking_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed) {
  problem p = detail::empty_problem("rpo::bandit::hacking_problem", prompts, arms, 4);
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const std::int64_t hacking = (arms + 3) / 4;
  p.feature_dim = 2;
  p.features.resize(p.reward.size() * 2);
  p.lengths.resize(p.reward.size());
  std::vector<double> logits(static_cast<std::size_t>(arms));
  for (std::int64_t x = 0; x < prompts; ++x) {
    for (std::int64_t y = 0; y < arms; ++y) {
      const double q = normal(rng);
      const double l = y >= arms - hacking ? 0.85 + 0.15 * unit(rng) : 0.5 * unit(rng);
      const double over = std::fmax(0.0, l - 0.5);
      p.reward[p.at(x, y)] = q + 3 * l - 20 * over * over;
      p.features[2 * p.at(x, y)] = q;
      p.features[2 * p.at(x, y) + 1] = l;
      p.lengths[p.at(x, y)] = 1 + std::round(19 * l);
      logits[static_cast<std::size_t>(y)] = 0.5 * normal(rng) - 6 * l;
    }
    detail::softmax_row(p, x, logits);
  }
  return p;
}

inline std::vector<double> optimum(const problem& p, double beta, double eta) {
  constexpr const char* who = "rpo::bandit::optimum";
  p.check();
  detail::require(std::isfinite(beta) && beta > 0, who, "beta", "must be finite and > 0", beta);
  detail::require(std::isfinite(eta) && eta >= 0, who, "eta", "must be finite and >= 0", eta);
  std::vector<double> out(p.ref.size());
  for (std::int64_t x = 0; x < p.prompts; ++x) {
    double top = -std::numeric_limits<double>::infinity();
    for (std::int64_t y = 0; y < p.arms; ++y) {
      out[p.at(x, y)] = std::log(p.pi_ref(x, y)) + eta * p.r(x, y) / beta;
      top = std::fmax(top, out[p.at(x, y)]);
    }
    double sum = 0;
    for (std::int64_t y = 0; y < p.arms; ++y) sum += (out[p.at(x, y)] = std::exp(out[p.at(x, y)] - top));
    for (std::int64_t y = 0; y < p.arms; ++y) out[p.at(x, y)] /= sum;
  }
  return out;
}

}  // namespace rpo::bandit
