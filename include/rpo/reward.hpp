// rpo/reward.hpp — reward models r_π(y): the policy's reward of one response, with ∂r_π/∂log π and
// ∂r_π/∂log π_ref.
//
// Public names: rpo::reward::implicit, rpo::reward::implicit_normalized, rpo::reward::reference_free,
//               rpo::reward::reference_free_normalized, rpo::reward::length_regularized,
//               rpo::reward::entropy_controlled, rpo::reward::alpha_shaped, rpo::reward::f_divergence,
//               rpo::reward::f_divergence_kind, rpo::reward::max_exponent, rpo::reward::log_odds.
// Implements RPO.md §1 (r_π and its variants) and LOSSES.md §0.4 (the labels IMP, IMP-LN, RF, LN-RF, LEN, H,
// ALPHA, F, OR; LOSSES.md §4.2, §4.17, §2.1, §1.15, §2.2).
// Log-probs are sequence log-probs (sums over the response tokens); n is the response token count.
// @sa docs/reward.md
#pragma once

#include <type_traits>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/math.hpp"

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

/// The largest exponent the reward models below pass to exp: e^x is evaluated as e^{min(x, 80)}, with derivative 0
/// beyond. 80 is TRL's clamp of the α-divergence exponent (LOSSES.md §1.15, §6.4); it keeps e^x, and β times a
/// difference of two such terms, finite in float (e^80 ≈ 5.5e34) and in double alike, so that float and double
/// compute one function. Only log-ratios below −80 (forward KL) or mean log-probs below −80/α (AlphaPO) reach it.
inline constexpr double max_exponent = 80.0;

namespace detail {
template <class T> struct exp_slope {
  T value;  ///< e^{min(x, max_exponent)}
  T slope;  ///< its derivative: e^x, or 0 where the clamp holds
};
template <Scalar T> RPO_HD constexpr exp_slope<T> clamped_exp(T x) noexcept {
  RPO_USING_STD(exp)
  if (x > T(max_exponent)) return {T(exp(T(max_exponent))), T(0)};
  const T e = exp(x);
  return {e, e};
}
/// The largest mean token log-prob −floor that rpo::reward::log_odds takes: p̄ = 1 − floor, odds 1/floor.
template <Scalar T> RPO_HD constexpr T log_odds_floor() noexcept {
  if constexpr (std::is_same_v<T, float>) {
    return T(1e-30f);
  } else {
    return T(1e-300);
  }
}
}  // namespace detail

/// LEN (R-DPO, Park et al. 2024): r_π(y) = β·(log π(y|x) − log π_ref(y|x)) + α·n, so that the gap is
/// a + α(n_c − n_r).  LOSSES.md §0.4, §4.2 (the sign as LOSSES.md writes it; it is unverified against the paper).
/// ∂r/∂logp = β, ∂r/∂ref_logp = −β: the length term is a constant of the objective.
/// @sa docs/reward.md#length_regularized
struct length_regularized {
  double beta = 0.1;    ///< β > 0
  double alpha = 0.01;  ///< α, the weight of the length (finite; the paper sweeps about 0.005 to 0.05)
  static constexpr input inputs = input::logp | input::ref_logp | input::length;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T ref_logp, T length) const noexcept {
    const T b = T(beta);
    return {b * (logp - ref_logp) + T(alpha) * length, b, -b};
  }
  /// β must be finite and > 0, α finite.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_finite("alpha", alpha);
  }
};

/// H (H-DPO, Omura et al. 2024): r_π(y) = β·(α·log π(y|x) − log π_ref(y|x)); α < 1 sharpens the policy.
/// LOSSES.md §0.4, §4.17 (unverified against the paper text). ∂r/∂logp = αβ, ∂r/∂ref_logp = −β.
/// @sa docs/reward.md#entropy_controlled
struct entropy_controlled {
  double beta = 0.1;  ///< β > 0
  double alpha = 1.0;  ///< α > 0, the entropy coefficient; α = 1 is DPO's implicit reward (LOSSES.md gives no default)
  static constexpr input inputs = input::logp | input::ref_logp;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T ref_logp, T) const noexcept {
    const T b = T(beta), a = T(alpha);
    return {b * (a * logp - ref_logp), a * b, -b};
  }
  /// β and α must be finite and > 0.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_positive("alpha", alpha);
  }
};

/// ALPHA (AlphaPO, Gupta et al. 2025): r_π(y) = (β/α)·(1 − e^{−α·ā}), ā = log π(y|x)/n, no reference model;
/// written −β·expm1(−α·ā)/α, and β·ā at α = 0 (SimPO's reward, its limit). ∂r/∂logp = β·e^{−α·ā}/n.
/// The exponent −α·ā is clamped at rpo::reward::max_exponent.  LOSSES.md §0.4, §2.1.
/// @sa docs/reward.md#alpha_shaped
struct alpha_shaped {
  double beta = 2.5;    ///< β > 0 (the AlphaPO example: 2.5)
  double alpha = 0.25;  ///< α, the shape (finite; the AlphaPO example: 0.25; 0 is SimPO's reward)
  static constexpr input inputs = input::logp | input::length;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T, T length) const noexcept {
    RPO_USING_STD(expm1)
    const T b = T(beta), mean = logp / length;
    if (alpha == 0) return {b * mean, b / length, T(0)};
    const T x = -T(alpha) * mean;
    const detail::exp_slope<T> e = detail::clamped_exp(x);
    const T shaped = x > T(max_exponent) ? e.value - T(1) : T(expm1(x));  // e^x − 1, with the clamp
    return {-b * shaped / T(alpha), b * e.slope / length, T(0)};
  }
  /// β must be finite and > 0, α finite.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_finite("alpha", alpha);
  }
};

/// The f-divergences of f-DPO (LOSSES.md §1.15, TRL's `f_divergence_type`).
enum class f_divergence_kind : unsigned char {
  reverse_kl,      ///< ψ(ℓ) = ℓ: DPO's implicit reward
  forward_kl,      ///< ψ(ℓ) = −e^{−ℓ}
  jensen_shannon,  ///< ψ(ℓ) = log σ(ℓ)
  alpha,           ///< ψ(ℓ) = e^{(α−1)ℓ}/(α−1), TRL v1's form (coefficient α, default 0.5)
};

/// F (f-DPO, Wang et al. 2023): r_π(y) = β·ψ(ℓ), ℓ = log π(y|x) − log π_ref(y|x), ψ = f′(e^ℓ) without constants:
/// the score of rpo::reward::f_divergence_kind. ∂r/∂logp = β·ψ′(ℓ) = −∂r/∂ref_logp. Stable forms: log σ(ℓ) as
/// −softplus(−ℓ); the α form as expm1((α−1)ℓ)/(α−1) (it differs from e^{(α−1)ℓ}/(α−1) by a constant, which cancels
/// in every gap; α = 1 is ℓ); the exponents −ℓ and (α−1)ℓ are clamped at rpo::reward::max_exponent (TRL clamps
/// the α form only).  LOSSES.md §0.4, §1.15.  @sa docs/reward.md#f_divergence
struct f_divergence {
  double beta = 0.1;                                   ///< β > 0
  f_divergence_kind kind = f_divergence_kind::forward_kl;  ///< which f
  double alpha = 0.5;                                  ///< the α form's coefficient, in (0, 1] (TRL v1: 0.5)
  static constexpr input inputs = input::logp | input::ref_logp;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T ref_logp, T) const noexcept {
    RPO_USING_STD(expm1)
    const T b = T(beta), l = logp - ref_logp;
    T psi = l, slope = T(1);
    if (kind == f_divergence_kind::forward_kl) {
      const detail::exp_slope<T> e = detail::clamped_exp(-l);
      psi = -e.value;
      slope = e.slope;
    } else if (kind == f_divergence_kind::jensen_shannon) {
      const auto p = rpo::detail::logistic_of(l);  // one exponential for softplus(−l) and σ(−l)
      psi = -p.softpluses().minus;
      slope = p.neg;
    } else if (kind == f_divergence_kind::alpha && alpha != 1) {
      const T c = T(alpha) - T(1), x = c * l;
      const detail::exp_slope<T> e = detail::clamped_exp(x);
      psi = (x > T(max_exponent) ? e.value - T(1) : T(expm1(x))) / c;
      slope = e.slope;
    }
    return {b * psi, b * slope, -b * slope};
  }
  /// β must be finite and > 0; with the α form, α in (0, 1].
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    if (kind == f_divergence_kind::alpha && !(alpha > 0 && alpha <= 1)) return {"alpha", "must be in (0, 1]", alpha};
    return {};
  }
};

/// OR (ORPO, Hong et al. 2024): r_π(y) = β·log(p̄/(1 − p̄)), the log-odds of the geometric-mean token probability
/// p̄ = e^ā, ā = log π(y|x)/n, no reference model: β·(ā − log1mexp(ā)). ∂r/∂logp = β/(n·(1 − e^ā)), written
/// β/(n·(−expm1(ā))). log(1 − e^ā) is rpo::log1mexp, Mächler's switch at −ln 2 (LOSSES.md §6.5; TRL PR #4763), in
/// the scalar type itself. The odds are infinite at p̄ = 1: ā is clamped at −log_odds_floor<T> (1e-300 in double,
/// 1e-30 in float), so that a response whose mean token probability is within that of 1, or a logp ≥ 0 (no log-prob),
/// gives the finite value of that point (β·691 in double, β·69 in float) instead of an infinity, and the clamp's
/// slope 0: the gradient stays the derivative of the value computed.
/// LOSSES.md §0.4 (OR), §2.2.  @sa docs/reward.md#log_odds
struct log_odds {
  double beta = 1.0;  ///< β > 0 (ORPO's odds-ratio term has β = 1; its weight λ is outside)
  static constexpr input inputs = input::logp | input::length;
  template <Scalar T> RPO_HD constexpr reward_grad<T> value_and_grad(T logp, T, T length) const noexcept {
    RPO_USING_STD(expm1)
    const T b = T(beta), floor = detail::log_odds_floor<T>(), raw = logp / length;
    if (!(raw < -floor)) return {b * (-floor - log1mexp(-floor)), T(0), T(0)};  // the clamp (also for logp ≥ 0)
    return {b * (raw - log1mexp(raw)), b / (length * T(-expm1(raw))), T(0)};
  }
  /// β must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

}  // namespace rpo::reward
