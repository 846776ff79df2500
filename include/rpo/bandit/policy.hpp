// rpo/bandit/policy.hpp — the tabular softmax policy of a bandit: logits θ[x][y], π(·|x) = softmax(θ[x]).
//
// Public names: rpo::bandit::tabular_policy, rpo::bandit::draw.
// The chain rule from what rpo::evaluate gives (∂loss/∂log π(y|x), its grad_logp) to the logits:
// ∂log π(y|x)/∂θ[x][z] = 1{y = z} − π(z|x), and θ of other prompts gets nothing. RPO.md §2.4 (the policy class is
// unrestricted per prompt, so the optimum π* is reachable) and §3.4 (the online identities differentiate log π).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/bandit/problem.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// Draws y ~ σ(·|x) from row x of an X·V probability table (rows summing to 1), by inversion with one uniform draw.
template <class Rng> std::int64_t draw(std::span<const double> table, std::int64_t arms, std::int64_t x, Rng& rng);

/// Logits θ (X·V, row-major) of a tabular softmax policy. Built at π_ref (θ = log π_ref), so that log π − log π_ref
/// starts at 0.
class tabular_policy {
public:
  /// The policy π = π_ref of problem `p` (checked).
  explicit tabular_policy(const problem& p);

  std::int64_t prompts() const noexcept { return prompts_; }
  std::int64_t arms() const noexcept { return arms_; }
  /// The logits, flat (for an optimizer).
  std::span<double> parameters() noexcept { return theta_; }
  std::span<const double> parameters() const noexcept { return theta_; }

  /// log π(y|x), with the row maximum shifted out.
  double log_prob(std::int64_t x, std::int64_t y) const;
  /// π(·|x) for every prompt: an X·V table, each row summing to 1.
  std::vector<double> probabilities() const;
  /// Adds g·∂log π(y|x)/∂θ = g·(e_y − π(·|x)) to row x of `grad` (X·V entries): the chain rule for one response whose
  /// ∂loss/∂log π is g.
  void accumulate_grad(std::int64_t x, std::int64_t y, double g, std::span<double> grad) const;
  /// Draws y ~ π(·|x) by inversion with one uniform draw from `rng`.
  template <class Rng> std::int64_t sample(std::int64_t x, Rng& rng) const;

private:
  std::int64_t prompts_, arms_;
  std::vector<double> theta_;
  std::size_t at(std::int64_t x, std::int64_t y) const noexcept { return static_cast<std::size_t>(x * arms_ + y); }
  double log_normaliser(std::int64_t x) const;
};

// ===========================================================================================================
// Implementations
// ===========================================================================================================

inline tabular_policy::tabular_policy(const problem& p) : prompts_(p.prompts), arms_(p.arms), theta_(p.ref.size()) {
  p.check();
  for (std::size_t i = 0; i < theta_.size(); ++i) theta_[i] = std::log(p.ref[i]);
}

inline double tabular_policy::log_normaliser(std::int64_t x) const {
  double top = -std::numeric_limits<double>::infinity();
  for (std::int64_t y = 0; y < arms_; ++y) top = std::fmax(top, theta_[at(x, y)]);
  double sum = 0;
  for (std::int64_t y = 0; y < arms_; ++y) sum += std::exp(theta_[at(x, y)] - top);
  return top + std::log(sum);
}

inline double tabular_policy::log_prob(std::int64_t x, std::int64_t y) const {
  return theta_[at(x, y)] - log_normaliser(x);
}

inline std::vector<double> tabular_policy::probabilities() const {
  std::vector<double> out(theta_.size());
  for (std::int64_t x = 0; x < prompts_; ++x) {
    const double lse = log_normaliser(x);
    for (std::int64_t y = 0; y < arms_; ++y) out[at(x, y)] = std::exp(theta_[at(x, y)] - lse);
  }
  return out;
}

inline void tabular_policy::accumulate_grad(std::int64_t x, std::int64_t y, double g, std::span<double> grad) const {
  if (grad.size() != theta_.size())
    throw std::invalid_argument("rpo::bandit::tabular_policy::accumulate_grad: grad has " +
                                std::to_string(grad.size()) + " entries but the policy has " +
                                std::to_string(theta_.size()) + " logits");
  const double lse = log_normaliser(x);
  for (std::int64_t z = 0; z < arms_; ++z) grad[at(x, z)] -= g * std::exp(theta_[at(x, z)] - lse);
  grad[at(x, y)] += g;
}

template <class Rng> std::int64_t draw(std::span<const double> table, std::int64_t arms, std::int64_t x, Rng& rng) {
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng);
  const std::size_t row = static_cast<std::size_t>(x * arms);
  double cumulative = 0;
  for (std::int64_t y = 0; y + 1 < arms; ++y) {
    cumulative += table[row + static_cast<std::size_t>(y)];
    if (u < cumulative) return y;
  }
  return arms - 1;
}

template <class Rng> std::int64_t tabular_policy::sample(std::int64_t x, Rng& rng) const {
  const double lse = log_normaliser(x);
  std::vector<double> row(static_cast<std::size_t>(arms_));
  for (std::int64_t y = 0; y < arms_; ++y) row[static_cast<std::size_t>(y)] = std::exp(theta_[at(x, y)] - lse);
  return draw(row, arms_, 0, rng);
}

}  // namespace rpo::bandit
