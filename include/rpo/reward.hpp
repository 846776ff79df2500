// rpo/reward.hpp — reward models r_π(y): the policy's reward of one response, with ∂r_π/∂log π and
// ∂r_π/∂log π_ref.
//
// Public names: rpo::reward::implicit, rpo::reward::implicit_normalized, rpo::reward::reference_free,
//               rpo::reward::reference_free_normalized.
// Implements RPO.md §1 (r_π and its variants) and LOSSES.md §0.4 (the labels IMP, IMP-LN, RF, LN-RF).
// Log-probs are sequence log-probs (sums over the response tokens); n is the response token count.
// @sa docs/reward.md
#pragma once

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"

namespace rpo::reward {

/// IMP: r_π(y) = β·(log π(y|x) − log π_ref(y|x)), the DPO implicit reward.  RPO.md §1, LOSSES.md §0.4.
/// ∂r/∂logp = β, ∂r/∂ref_logp = −β.  @sa docs/reward.md#implicit
struct implicit {
  double beta = 0.1;  ///< β > 0, the KL coefficient of the implied RLHF problem (TRL's default 0.1)
  static constexpr input inputs = input::logp | input::ref_logp;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T ref_logp, T) const noexcept {
    const T b = T(beta);
    return {b * (logp - ref_logp), b, -b};
  }
  /// β must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// IMP-LN: r_π(y) = β·(log π(y|x) − log π_ref(y|x)) / n, the length-normalised implicit reward (TRL
/// `sigmoid_norm` and `ipo`, NeMo's `preference_average_log_probs`).  LOSSES.md §0.4, §1.4, §1.14.
/// ∂r/∂logp = β/n, ∂r/∂ref_logp = −β/n.  @sa docs/reward.md#implicit_normalized
struct implicit_normalized {
  double beta = 0.1;  ///< β > 0, now per token: roughly n times the summed form's β gives the same logit
  static constexpr input inputs = input::logp | input::ref_logp | input::length;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T ref_logp, T length) const noexcept {
    const T b = T(beta) / length;
    return {b * (logp - ref_logp), b, -b};
  }
  /// β must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// RF: r_π(y) = β·log π(y|x), no reference model (CPO).  LOSSES.md §0.4, §2.1.
/// ∂r/∂logp = β, ∂r/∂ref_logp = 0.  @sa docs/reward.md#reference_free
struct reference_free {
  double beta = 0.1;  ///< β > 0
  static constexpr input inputs = input::logp;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T, T) const noexcept {
    return {T(beta) * logp, T(beta), T(0)};
  }
  /// β must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// LN-RF: r_π(y) = (β/n)·log π(y|x), SimPO's length-normalised reference-free reward.  LOSSES.md §0.4, §2.1;
/// RPO.md §4 (SimPO row). ∂r/∂logp = β/n, ∂r/∂ref_logp = 0.  @sa docs/reward.md#reference_free_normalized
struct reference_free_normalized {
  double beta = 2.0;  ///< β > 0 (SimPO's paper uses 2.0 to 10)
  static constexpr input inputs = input::logp | input::length;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T, T length) const noexcept {
    const T b = T(beta) / length;
    return {b * logp, b, T(0)};
  }
  /// β must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

}  // namespace rpo::reward
