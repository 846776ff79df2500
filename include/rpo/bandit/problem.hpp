// rpo/bandit/problem.hpp — a tabular bandit: X prompts × V arms, a ground-truth reward table r*(x, y) and a
// reference policy π_ref, with a seeded generator and the analytic optimum of every RPO loss.
//
// Public names: rpo::bandit::problem, rpo::bandit::random_problem, rpo::bandit::optimum.
// The optimum is RPO.md §2.4 (E9): π*(y|x) = π_ref(y|x)·exp(η·r(x,y)/β) / Z(x), the minimiser of every RPO loss
// when all pairs are covered, and the maximiser of J(π) = E_π[r] − (β/η)·KL(π ‖ π_ref).
// Tables are row-major X × V std::vector<double>: entry x·V + y.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/errors.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// A bandit problem: `prompts` × `arms`, the judge's reward table r*(x, y) and the reference policy π_ref(y|x)
/// (each row positive and summing to 1). An aggregate; call check() before using one built by hand.
struct problem {
  std::int64_t prompts = 0;     ///< X ≥ 1
  std::int64_t arms = 0;        ///< V ≥ 2
  std::vector<double> reward;   ///< r*(x, y), X·V finite entries, row-major
  std::vector<double> ref;      ///< π_ref(y|x), X·V entries, each row positive and summing to 1 (to 1e-9)

  /// The flat index of (x, y): x·V + y.
  std::size_t at(std::int64_t x, std::int64_t y) const noexcept { return static_cast<std::size_t>(x * arms + y); }
  /// r*(x, y).
  double r(std::int64_t x, std::int64_t y) const noexcept { return reward[at(x, y)]; }
  /// π_ref(y|x).
  double pi_ref(std::int64_t x, std::int64_t y) const noexcept { return ref[at(x, y)]; }
  /// Throws std::invalid_argument naming the first bad argument and its value: X < 1, V < 2, table sizes, a
  /// non-finite reward, a π_ref entry not finite and > 0, or a π_ref row whose sum is not 1.
  void check() const;
};

/// A random problem: rewards i.i.d. N(0, 1), π_ref(·|x) = softmax of i.i.d. N(0, 1) logits; reproducible from
/// `seed` (std::mt19937_64; the normal draws are libstdc++'s / libc++'s, so tables may differ across standard
/// libraries). Throws std::invalid_argument for X < 1 or V < 2.
problem random_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed);

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
}

inline problem random_problem(std::int64_t prompts, std::int64_t arms, std::uint64_t seed) {
  constexpr const char* who = "rpo::bandit::random_problem";
  detail::require(prompts >= 1, who, "prompts", "must be >= 1", static_cast<double>(prompts));
  detail::require(arms >= 2, who, "arms", "must be >= 2 (a preference needs two arms)", static_cast<double>(arms));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  problem p{prompts, arms, {}, {}};
  const auto n = static_cast<std::size_t>(prompts * arms);
  p.reward.resize(n);
  p.ref.resize(n);
  for (double& r : p.reward) r = normal(rng);
  for (std::int64_t x = 0; x < prompts; ++x) {
    double top = -std::numeric_limits<double>::infinity();
    for (std::int64_t y = 0; y < arms; ++y) {
      p.ref[p.at(x, y)] = normal(rng);
      top = std::fmax(top, p.ref[p.at(x, y)]);
    }
    double sum = 0;
    for (std::int64_t y = 0; y < arms; ++y) sum += (p.ref[p.at(x, y)] = std::exp(p.ref[p.at(x, y)] - top));
    for (std::int64_t y = 0; y < arms; ++y) p.ref[p.at(x, y)] /= sum;
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
