// rpo/bandit/optimizer.hpp — first-order optimizers over a flat parameter vector: SGD and Adam.
//
// Public names: rpo::bandit::sgd, rpo::bandit::adam.
// Each is built with its hyperparameters checked (a non-positive or non-finite learning rate throws
// std::invalid_argument at construction) and applies θ ← θ − step(∇) in place. Used by the bandit trainers with
// the gradients of RPO.md §2–3 mapped to the logits (rpo/bandit/policy.hpp).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/errors.hpp"

namespace rpo::bandit {

namespace detail {
inline double checked_rate(const char* who, const char* name, double value, bool open_unit = false) {
  const bool ok = std::isfinite(value) && (open_unit ? (value >= 0 && value < 1) : value > 0);
  if (!ok)
    throw std::invalid_argument(
        rpo::detail::rule_message(who, name, open_unit ? "must be in [0, 1)" : "must be finite and > 0", value));
  return value;
}
inline void check_sizes(const char* who, std::size_t params, std::size_t grad) {
  if (params != grad)
    throw std::invalid_argument(std::string(who) + ": grad has " + std::to_string(grad) + " entries but params has " +
                                std::to_string(params));
}
}  // namespace detail

/// Plain (full-batch) gradient descent: θ ← θ − learning_rate·∇.
class sgd {
public:
  /// Throws std::invalid_argument unless learning_rate is finite and > 0.
  explicit sgd(double learning_rate) : learning_rate_(detail::checked_rate("rpo::bandit::sgd", "learning_rate", learning_rate)) {}
  double learning_rate() const noexcept { return learning_rate_; }
  /// One step on `params` with gradient `grad` (same size).
  void step(std::span<double> params, std::span<const double> grad) {
    detail::check_sizes("rpo::bandit::sgd::step", params.size(), grad.size());
    for (std::size_t i = 0; i < params.size(); ++i) params[i] -= learning_rate_ * grad[i];
  }

private:
  double learning_rate_;
};

/// Adam (Kingma & Ba 2015) with bias correction: m ← β₁m + (1−β₁)∇, v ← β₂v + (1−β₂)∇²,
/// θ ← θ − lr·m̂/(√v̂ + ε). Its moments are sized at the first step.
class adam {
public:
  /// Throws std::invalid_argument unless learning_rate and epsilon are finite and > 0 and beta1, beta2 ∈ [0, 1).
  explicit adam(double learning_rate, double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8)
      : learning_rate_(detail::checked_rate("rpo::bandit::adam", "learning_rate", learning_rate)),
        beta1_(detail::checked_rate("rpo::bandit::adam", "beta1", beta1, true)),
        beta2_(detail::checked_rate("rpo::bandit::adam", "beta2", beta2, true)),
        epsilon_(detail::checked_rate("rpo::bandit::adam", "epsilon", epsilon)) {}
  double learning_rate() const noexcept { return learning_rate_; }
  /// One step on `params` with gradient `grad` (same size, and the same size at every step).
  void step(std::span<double> params, std::span<const double> grad) {
    detail::check_sizes("rpo::bandit::adam::step", params.size(), grad.size());
    if (m_.empty()) {
      m_.assign(params.size(), 0.0);
      v_.assign(params.size(), 0.0);
    }
    detail::check_sizes("rpo::bandit::adam::step (its moments)", m_.size(), params.size());
    ++t_;
    const double c1 = 1 - std::pow(beta1_, static_cast<double>(t_));
    const double c2 = 1 - std::pow(beta2_, static_cast<double>(t_));
    for (std::size_t i = 0; i < params.size(); ++i) {
      m_[i] = beta1_ * m_[i] + (1 - beta1_) * grad[i];
      v_[i] = beta2_ * v_[i] + (1 - beta2_) * grad[i] * grad[i];
      params[i] -= learning_rate_ * (m_[i] / c1) / (std::sqrt(v_[i] / c2) + epsilon_);
    }
  }

private:
  double learning_rate_, beta1_, beta2_, epsilon_;
  std::vector<double> m_, v_;
  std::int64_t t_ = 0;
};

}  // namespace rpo::bandit
