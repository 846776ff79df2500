// rpo/detail/reward_lanes.hpp — reward models and target offsets on whole vectors (internal).
//
// Internal names: rpo::detail::has_reward_lanes, rpo::detail::reward_lanes, rpo::detail::has_offset_lanes,
//                 rpo::detail::offset_lanes.
// Why: the pair blocks (rpo/detail/pair_block.hpp) took the distance a vector at a time, but AlphaPO's, f-DPO's and
// ORPO's rewards (an exponential, a softplus or a log1mexp per response) and ODPO's offset (a log per pair) still
// called the C library once per pair, and on a million pairs that cost more than the rest. Their formulas are those
// of rpo/reward.hpp and rpo/target.hpp, lane by lane (rpo/detail/lane_math.hpp), with the same clamps and branches
// selected by masks; the values differ from the scalar ones by a few ulp.  @sa docs/batch.md#pair_blocks
#pragma once

#include <type_traits>

#include "rpo/detail/lane_math.hpp"
#include "rpo/reward.hpp"
#include "rpo/target.hpp"

namespace rpo::detail {

/// The reward models whose value and partials have a vector form in reward_lanes.
template <class R>
inline constexpr bool has_reward_lanes = std::is_same_v<R, reward::alpha_shaped> ||
                                         std::is_same_v<R, reward::f_divergence> ||
                                         std::is_same_v<R, reward::log_odds>;

/// reward.hpp's clamped_exp on each lane, e^{min(x, cap)} and its slope (e^x, 0 where the clamp holds), with
/// e^{min(x, cap)} − 1 in the expm1 form below the cap (alpha_shaped's and f_divergence's α form), cap =
/// rpo::reward::max_exponent.
template <class T> struct clamped_exp_lanes {
  using V = simd<T>;
  typename V::vec value;  ///< e^{min(x, cap)}
  typename V::vec slope;  ///< e^x, or 0 above the cap
  RPO_DETAIL_LANES explicit clamped_exp_lanes(typename V::vec x) noexcept : x_(x) {
    const typename V::vec cap = V::splat(T(reward::max_exponent));
    const auto clamped = x > cap;
    value = V::exp_gradual(clamped ? cap : x);
    slope = clamped ? V::splat(T(0)) : value;
  }
  /// e^{min(x, cap)} − 1: expm1(x) below the cap (value − 1 above it, |x| > 1 there).
  RPO_DETAIL_LANES typename V::vec minus_one() const noexcept { return expm1_lanes<T>(x_, value); }

 private:
  typename V::vec x_;
};

/// r_π and ∂r/∂logp, ∂r/∂ref_logp on each lane of (logp, ref_logp, length), for a reward model in has_reward_lanes
/// (the lanes of a field the model does not read are ignored): reward.hpp's formulas.
template <class R, class T>
RPO_DETAIL_LANES void reward_lanes(const R& r, typename simd<T>::vec logp, typename simd<T>::vec ref_logp,
                                   typename simd<T>::vec length, typename simd<T>::vec& value,
                                   typename simd<T>::vec& d_logp, typename simd<T>::vec& d_ref_logp) noexcept {
  using V = simd<T>;
  using vec = typename V::vec;
  const vec b = V::splat(T(r.beta)), zero = V::splat(T(0));
  if constexpr (std::is_same_v<R, reward::alpha_shaped>) {
    // (β/α)(1 − e^{−αā}) = −β·expm1(−αā)/α, ∂/∂logp = β·e^{−αā}/n; β·ā at α = 0 (LOSSES.md §2.1).
    const vec mean = logp / length;
    d_ref_logp = zero;
    if (r.alpha == 0) {
      value = b * mean;
      d_logp = b / length;
      return;
    }
    const clamped_exp_lanes<T> e(V::splat(-T(r.alpha)) * mean);
    value = e.minus_one() * V::splat(-T(r.beta) / T(r.alpha));  // one division per call, not per lane
    d_logp = b * e.slope / length;
  } else if constexpr (std::is_same_v<R, reward::f_divergence>) {
    // β·ψ(ℓ), ∂/∂logp = β·ψ′(ℓ) = −∂/∂ref_logp (LOSSES.md §1.15).
    const vec l = logp - ref_logp;
    vec psi = l, slope = V::splat(T(1));
    if (r.kind == reward::f_divergence_kind::forward_kl) {
      const clamped_exp_lanes<T> e(-l);
      psi = -e.value;
      slope = e.slope;
    } else if (r.kind == reward::f_divergence_kind::jensen_shannon) {
      const logistic_lanes<T> p(l);
      psi = -p.softplus_minus;
      slope = p.neg;
    } else if (r.kind == reward::f_divergence_kind::alpha && r.alpha != 1) {
      const vec c = V::splat(T(r.alpha) - T(1));
      const clamped_exp_lanes<T> e(c * l);
      psi = e.minus_one() / c;
      slope = e.slope;
    }
    value = b * psi;
    d_logp = b * slope;
    d_ref_logp = -b * slope;
  } else {
    static_assert(std::is_same_v<R, reward::log_odds>, "reward_lanes: no vector form for this reward model");
    // β·(ā − log1mexp(ā)), ∂/∂logp = β/(n·(−expm1(ā))); ā clamped at −log_odds_floor with slope 0 (LOSSES.md §2.2).
    const vec raw = logp / length, top = V::splat(-reward::detail::log_odds_floor<T>());
    const auto inside = raw < top;
    const vec mean = inside ? raw : top, e = V::exp_gradual(mean), m = expm1_lanes<T>(mean, e);
    value = b * (mean - log1mexp_lanes<T>(mean, e, m));
    d_logp = inside ? b / (length * -m) : zero;
    d_ref_logp = zero;
  }
}

/// The targets whose reward-dependent offset o(r_first, r_second) has a vector form in offset_lanes.
template <class Tg> inline constexpr bool has_offset_lanes = std::is_same_v<Tg, target::log_reward_offset>;

/// o = α·log(r_first − r_second) on each lane of the reward difference (target::log_reward_offset, LOSSES.md §4.1).
template <class Tg, class T>
typename simd<T>::vec offset_lanes(const Tg& target, typename simd<T>::vec difference) noexcept {
  static_assert(has_offset_lanes<Tg>, "offset_lanes: no vector form for this target");
  return simd<T>::splat(T(target.alpha)) * simd<T>::log(difference);
}

}  // namespace rpo::detail
