// rpo/bandit/metrics.hpp — what a bandit run reports: expected ground-truth reward, KL to the reference, total
// variation to the analytic optimum, and the win rate against the reference under the judge.
//
// Public names: rpo::bandit::expected_reward, rpo::bandit::mean_kl, rpo::bandit::total_variation,
//               rpo::bandit::win_rate.
// Every metric takes the policy as an X·V probability table (tabular_policy::probabilities(), or rpo::bandit::optimum
// for the analytic optimum of RPO.md §2.4) and averages uniformly over prompts.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>

#include "rpo/bandit/problem.hpp"

namespace rpo::bandit {

/// E_{x uniform, y~π(·|x)} r*(x, y).
double expected_reward(const problem& p, std::span<const double> pi);
/// (1/X)·Σ_x KL(π(·|x) ‖ π_ref(·|x)), with 0·log 0 = 0.
double mean_kl(const problem& p, std::span<const double> pi);
/// (1/X)·Σ_x ½·Σ_y |π(y|x) − σ(y|x)| between two X·V tables (e.g. π and π*).
double total_variation(const problem& p, std::span<const double> pi, std::span<const double> sigma);
/// P(r*(x,y) > r*(x,y')) + ½·P(r*(x,y) = r*(x,y')), x uniform, y ~ π(·|x), y' ~ π_ref(·|x) independently.
double win_rate(const problem& p, std::span<const double> pi);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {
inline void check_table(const char* who, const problem& p, std::span<const double> t) {
  check_table(who, "the policy table", p, t);
}
}  // namespace detail

inline double expected_reward(const problem& p, std::span<const double> pi) {
  detail::check_table("rpo::bandit::expected_reward", p, pi);
  return detail::expected_under(pi, p.reward, p.prompts);
}

inline double mean_kl(const problem& p, std::span<const double> pi) {
  detail::check_table("rpo::bandit::mean_kl", p, pi);
  double total = 0;
  for (std::size_t i = 0; i < pi.size(); ++i)
    if (pi[i] > 0) total += pi[i] * (std::log(pi[i]) - std::log(p.ref[i]));
  return total / static_cast<double>(p.prompts);
}

inline double total_variation(const problem& p, std::span<const double> pi, std::span<const double> sigma) {
  detail::check_table("rpo::bandit::total_variation", p, pi);
  detail::check_table("rpo::bandit::total_variation", p, sigma);
  double total = 0;
  for (std::size_t i = 0; i < pi.size(); ++i) total += std::fabs(pi[i] - sigma[i]);
  return 0.5 * total / static_cast<double>(p.prompts);
}

inline double win_rate(const problem& p, std::span<const double> pi) {
  detail::check_table("rpo::bandit::win_rate", p, pi);
  double total = 0;
  for (std::int64_t x = 0; x < p.prompts; ++x)
    for (std::int64_t y = 0; y < p.arms; ++y)
      for (std::int64_t z = 0; z < p.arms; ++z) {
        const double w = pi[p.at(x, y)] * p.pi_ref(x, z);
        if (p.r(x, y) > p.r(x, z)) total += w;
        if (p.r(x, y) == p.r(x, z)) total += 0.5 * w;
      }
  return total / static_cast<double>(p.prompts);
}

}  // namespace rpo::bandit
