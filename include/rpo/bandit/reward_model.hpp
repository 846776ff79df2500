// rpo/bandit/reward_model.hpp — the reward models a bandit run scores responses with: the ground-truth judge, a
// noisy judge, a Bradley-Terry labeller, or a learnt model (rpo/bandit/bradley_terry.hpp).
//
// Public names: rpo::bandit::score_noise, rpo::bandit::reward_model, rpo::bandit::judge,
//               rpo::bandit::noisy_judge, rpo::bandit::bradley_terry_judge.
// A reward model is a mean score table s(x, y) and the noise of one query. RPO's target reads the scores as explicit
// rewards, b = η(s₁ − s₂) (RPO.md (E1)); a label method (DPO, IPO, SimPO) reads only their order. Gumbel noise makes
// that order a Bradley-Terry draw: with s = r* + Gumbel(0, t), P(y₁ ≻ y₂) = σ((r*₁ − r*₂)/t), and the order of a group
// of K is a Plackett-Luce draw (the Gumbel-max construction).
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

/// The noise of one query to a reward model.
enum class score_noise : unsigned char {
  none,      ///< the mean score
  gaussian,  ///< mean + N(0, scale²)
  gumbel,    ///< mean + Gumbel(0, scale): Bradley-Terry pairs, Plackett-Luce groups
};

/// A reward model over a problem's X·V responses: s(x, y) = mean[x·V + y] plus the noise of each query.
struct reward_model {
  std::vector<double> mean;              ///< the noiseless score table, X·V finite entries
  score_noise noise = score_noise::none; ///< the noise of a query
  double scale = 0;                      ///< the noise's scale (σ, or the Gumbel scale t), finite and ≥ 0

  /// One query: the score of arm y of prompt x (one draw from `rng` when noisy).
  template <class Rng> double score(std::int64_t arms, std::int64_t x, std::int64_t y, Rng& rng) const;
  /// The expected noiseless score E_{x uniform, y~π(·|x)} s(x, y) of an X·V probability table, with X = π.size()/arms.
  double expected(std::span<const double> pi, std::int64_t arms) const;
  /// Throws std::invalid_argument unless `mean` has the problem's X·V finite entries and `scale` is finite and ≥ 0.
  void check(const problem& p) const;
};

/// The ground-truth judge: s = r*, exact.
reward_model judge(const problem& p);
/// A noisy judge: s = r* + N(0, σ²), a fresh draw per query. Throws std::invalid_argument unless σ is finite, ≥ 0.
reward_model noisy_judge(const problem& p, double sigma);
/// A Bradley-Terry labeller: s = r* + Gumbel(0, t), so a pair's order is Bradley-Terry with P(y₁ ≻ y₂) =
/// σ((r*₁ − r*₂)/t) and a group's is Plackett-Luce. Throws std::invalid_argument unless t is finite and > 0.
reward_model bradley_terry_judge(const problem& p, double temperature = 1.0);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

template <class Rng> double reward_model::score(std::int64_t arms, std::int64_t x, std::int64_t y, Rng& rng) const {
  const double s = mean[static_cast<std::size_t>(x * arms + y)];
  switch (noise) {
    case score_noise::gaussian:
      return s + scale * std::normal_distribution<double>(0.0, 1.0)(rng);
    case score_noise::gumbel: {
      // Gumbel(0, t) = −t·log(−log U), U ~ U(0, 1) drawn away from 0.
      const double u = std::uniform_real_distribution<double>(std::numeric_limits<double>::min(), 1.0)(rng);
      return s - scale * std::log(-std::log(u));
    }
    case score_noise::none:
      break;
  }
  return s;
}

inline double reward_model::expected(std::span<const double> pi, std::int64_t arms) const {
  if (pi.size() != mean.size())
    throw std::invalid_argument("rpo::bandit::reward_model::expected: the policy table has " +
                                std::to_string(pi.size()) + " entries but the model has " + std::to_string(mean.size()));
  return detail::expected_under(pi, mean, static_cast<std::int64_t>(pi.size()) / arms);
}

inline void reward_model::check(const problem& p) const {
  constexpr const char* who = "rpo::bandit::reward_model";
  detail::require(mean.size() == p.reward.size(), who, "mean.size()", "must be the problem's prompts * arms",
                  static_cast<double>(mean.size()));
  for (std::size_t i = 0; i < mean.size(); ++i)
    detail::require(std::isfinite(mean[i]), who, "mean[" + std::to_string(i) + "]", "must be finite", mean[i]);
  detail::require(std::isfinite(scale) && scale >= 0, who, "scale", "must be finite and >= 0", scale);
}

inline reward_model judge(const problem& p) {
  p.check();
  return {p.reward, score_noise::none, 0.0};
}

inline reward_model noisy_judge(const problem& p, double sigma) {
  detail::require(std::isfinite(sigma) && sigma >= 0, "rpo::bandit::noisy_judge", "sigma", "must be finite and >= 0",
                  sigma);
  p.check();
  return {p.reward, score_noise::gaussian, sigma};
}

inline reward_model bradley_terry_judge(const problem& p, double temperature) {
  detail::require(std::isfinite(temperature) && temperature > 0, "rpo::bandit::bradley_terry_judge", "temperature",
                  "must be finite and > 0", temperature);
  p.check();
  return {p.reward, score_noise::gumbel, temperature};
}

}  // namespace rpo::bandit
