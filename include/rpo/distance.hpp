// rpo/distance.hpp — distances D(a‖b) between the policy gap a and the target gap b, with ∂D/∂a and ∂D/∂b.
//
// Public names: rpo::distance::squared, rpo::distance::bernoulli_bwd_kl, rpo::distance::bernoulli_fwd_kl,
//               rpo::distance::logistic, rpo::distance::hinge, rpo::distance::discopop, rpo::distance::focal.
// Implements RPO.md §2.2 (E2)–(E4), their Bregman forms (E3'), (E4') and the derivatives of §2.3 (E5)–(E7);
// logistic and hinge follow LOSSES.md §1.1, §1.2 and §1.3; discopop LOSSES.md §1.12; focal LOSSES.md §4.5. The names "forward" and "backward" are those of the
// official RPO code (NVIDIA NeMo-Aligner) and are the reverse of the usual ML habit: D_bwd(a‖b) is
// KL(target ‖ policy).
// @sa docs/distance.md
#pragma once

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/math.hpp"

namespace rpo::distance {

namespace detail {
/// σ(x)σ(−x)·(x − y), the curvature of softplus at x times a gap. σ(x)σ(−x) underflows to 0 long before x − y can
/// overflow, and 0·∞ would be NaN: the product is then 0, its true value to the last bit.
template <Scalar T> RPO_HD constexpr T slope_times_gap(const rpo::detail::logistic_parts<T>& x, T y) noexcept {
  const T slope = x.pos * x.neg;
  return slope == T(0) ? T(0) : slope * (x.x - y);
}
/// softplus(−a) and −σ(−a), the loss and slope of every distance at a hard label, from one exponential.
template <Scalar T> RPO_HD constexpr gap_grad<T> at_hard_label(T a) noexcept {
  const auto p = rpo::detail::logistic_of(a);
  return {p.softpluses().minus, -p.neg, T(0)};
}
}  // namespace detail

/// D_sq(a‖b) = (a − b)², with no ½ (as NeMo-Aligner's `rpo_sq`); ∂D/∂a = 2(a − b), ∂D/∂b = −2(a − b).
/// RPO.md (E2), (E5). The value is +inf only where (a − b)² itself overflows. A hard label (b = +∞) has no
/// finite loss here: use target::smoothed_label, target::constant or target::reward_gap.
/// @sa docs/distance.md#squared
struct squared {
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, T b) const noexcept {
    const T d = a - b;
    return {d * d, T(2) * d, T(-2) * d};
  }
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }
};

/// D_bwd(a‖b) = KL(Bern σ(b) ‖ Bern σ(a)) = B_softplus(a, b); ∂D/∂a = σ(a) − σ(b), ∂D/∂b = σ(b)σ(−b)(b − a).
/// RPO.md (E4), (E4'), (E7). The Nemotron-4 RPO loss. Its b → +∞ limit is softplus(−a), the DPO loss
/// (RPO.md §2.2, §10.3), selected at compile time by rpo::infinite_target_t.
/// @sa docs/distance.md#bernoulli_bwd_kl
struct bernoulli_bwd_kl {
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, T b) const noexcept {
    const auto pa = rpo::detail::logistic_of(a), pb = rpo::detail::logistic_of(b);  // one exponential each
    return {rpo::detail::bregman_softplus(a, pb), rpo::detail::sigmoid_difference(pa, pb),
            detail::slope_times_gap(pb, a)};
  }
  /// The limit b → +∞: D = softplus(−a), ∂D/∂a = −σ(−a).
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, infinite_target_t) const noexcept {
    return detail::at_hard_label(a);
  }
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }
};

/// D_fwd(a‖b) = KL(Bern σ(a) ‖ Bern σ(b)) = B_softplus(b, a); ∂D/∂a = σ(a)σ(−a)(a − b), ∂D/∂b = σ(b) − σ(a).
/// RPO.md (E3), (E3'), (E6). Mode-seeking: its gradient vanishes when the policy is confidently wrong
/// (RPO.md §2.3). It has no finite b = +∞ limit (the KL is infinite for every finite a), so a hard label does
/// not compose with it.  @sa docs/distance.md#bernoulli_fwd_kl
struct bernoulli_fwd_kl {
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, T b) const noexcept {
    const auto pa = rpo::detail::logistic_of(a), pb = rpo::detail::logistic_of(b);  // one exponential each
    return {rpo::detail::bregman_softplus(b, pa), detail::slope_times_gap(pa, b),
            rpo::detail::sigmoid_difference(pb, pa)};
  }
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }
};

/// D_log(a‖b) = σ(b)·softplus(−a) + σ(−b)·softplus(a), the binary cross-entropy of the policy's preference
/// σ(a) against the soft label σ(b); ∂D/∂a = σ(a) − σ(b), ∂D/∂b = −a·σ(b)σ(−b).
/// D_log = D_bwd + H₂(σ(b)) (RPO.md (E4')), so it has D_bwd's gradient in a; at b = +∞ it is softplus(−a), the
/// DPO loss. With target::smoothed_label it is the cDPO loss as written (LOSSES.md §1.2), constant included.
/// @sa docs/distance.md#logistic
struct logistic {
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, T b) const noexcept {
    const auto pa = rpo::detail::logistic_of(a), pb = rpo::detail::logistic_of(b);  // one exponential each
    const auto [softplus_a, softplus_minus_a] = pa.softpluses();
    return {pb.pos * softplus_minus_a + pb.neg * softplus_a, rpo::detail::sigmoid_difference(pa, pb),
            -a * pb.pos * pb.neg};
  }
  /// The limit b → +∞: D = softplus(−a), ∂D/∂a = −σ(−a).
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, infinite_target_t) const noexcept {
    return detail::at_hard_label(a);
  }
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }
};

/// D_hinge(a) = max(0, 1 − a), the SLiC-HF / RSO hinge (LOSSES.md §1.3); ∂D/∂a = −1 for a < 1, else 0 (the
/// subgradient at the kink a = 1 is taken as 0, as TRL does). Its margin 1 plays the role of the target, so it
/// only composes with a hard label (b = +∞), optionally shifted by target::margin.
/// @sa docs/distance.md#hinge
struct hinge {
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, infinite_target_t) const noexcept {
    return a < T(1) ? gap_grad<T>{T(1) - a, T(-1), T(0)} : gap_grad<T>{T(0), T(0), T(0)};
  }
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }
};

/// DiscoPOP / LRML (Lu et al. 2024, Eq. 5): with m = σ(a/τ), D(a) = (1 − m)·softplus(−a) + m·e^{−a}, a learned
/// non-convex mix of the logistic and the exponential losses (LOSSES.md §1.12). Hard label only (b = +∞).
/// ∂D/∂a = −(1 − m)σ(−a) − m·e^{−a} + (m(1 − m)/τ)·(e^{−a} − softplus(−a)). Stable form (LOSSES.md §6.4):
/// m·e^{−a} = exp(log σ(a/τ) − a), never e^{−a} alone, so that a ≪ 0 gives finite values for τ < 1 (and +inf, the
/// true value, only where exp(a(1/τ − 1)) itself overflows, which needs τ > 1; the slope is then −inf, not NaN).
/// @sa docs/distance.md#discopop
struct discopop {
  double tau = 0.05;  ///< τ > 0, the temperature of the mix (the paper's and TRL's `discopop_tau`: 0.05)
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, infinite_target_t) const noexcept {
    RPO_USING_STD(exp)
    const T t = T(tau), z = a / t;
    const auto pz = rpo::detail::logistic_of(z), pa = rpo::detail::logistic_of(a);  // one exponential each
    const T m = pz.pos, m_bar = pz.neg;
    const T sp = pa.softpluses().minus;
    const T e = exp(-pz.softpluses().minus - a);  // m·e^{−a} = exp(log σ(z) − a)
    const T value = m_bar * sp + e;
    const T slope = -m_bar * pa.neg + e * (m_bar / t - T(1)) - m * m_bar * sp / t;  // e·(m̄/τ − 1): −inf, not NaN, at e = +inf
    return {value, slope, T(0)};
  }
  /// τ must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("tau", tau); }
};

/// FocalPO (Liu et al. 2025): with P = σ(a), D(a) = −P^γ·log P = P^γ·softplus(−a), which down-weights the
/// mis-ranked pairs (LOSSES.md §4.5); γ = 0 is DPO. P^γ is differentiated (whether the authors detach it is
/// unverified): ∂D/∂a = P^γ·σ(−a)·(γ·softplus(−a) − 1). Hard label only. P^γ = exp(γ·log σ(a)): finite for every
/// finite a, and the product tends to 0 as a → −∞.  @sa docs/distance.md#focal
struct focal {
  double gamma = 0.05;  ///< γ ≥ 0, the focusing exponent (LOSSES.md gives no value; small, as the paper's)
  template <Scalar T> RPO_HD constexpr gap_grad<T> value_and_grad(T a, infinite_target_t) const noexcept {
    RPO_USING_STD(exp)
    const auto p = rpo::detail::logistic_of(a);  // one exponential for softplus(−a) and σ(−a)
    const T sp = p.softpluses().minus;
    const T weight = exp(-T(gamma) * sp);  // P^γ
    return {weight * sp, weight * p.neg * (T(gamma) * sp - T(1)), T(0)};
  }
  /// γ must be finite and >= 0.
  constexpr parameter_error check() const noexcept { return require_nonnegative("gamma", gamma); }
};

}  // namespace rpo::distance
