// rpo/detail/lane_math.hpp — math.hpp's stable forms on whole vectors (internal).
//
// Internal names: rpo::detail::logistic_lanes, rpo::detail::expm1mx_lanes, rpo::detail::expm1_lanes,
//                 rpo::detail::log1pmx_lanes, rpo::detail::log1mexp_lanes, rpo::detail::sigmoid_difference_lanes,
//                 rpo::detail::bregman_softplus_lanes.
// Why: the pair blocks (rpo/detail/pair_block.hpp) and the reward models' vector forms (rpo/detail/reward_lanes.hpp)
// evaluate the functions of math.hpp lane by lane, on rpo::detail::simd's exp_gradual, log1p_unit and log. Each
// selects math.hpp's regimes with masks instead of branches; the values differ from the scalar ones by a few ulp (a
// different exp, log1p and log), the regimes and their boundaries are the same.  @sa docs/batch.md#pair_blocks
#pragma once

#include <limits>

#include "rpo/detail/vexp.hpp"

namespace rpo::detail {

/// math.hpp's logistic_of on each lane of x: e = e^{−|x|}, σ(x), σ(−x) and softplus(−x) = max(−x, 0) + log1p(e), with
/// the same selections by sign.
template <class T> struct logistic_lanes {
  using V = simd<T>;
  using vec = typename V::vec;
  vec x;               ///< the argument
  vec e;               ///< e^{−|x|} ∈ [0, 1]
  vec pos;             ///< σ(x)
  vec neg;             ///< σ(−x)
  vec softplus_minus;  ///< softplus(−x)
  vec softplus_plus;   ///< softplus(x)

  RPO_DETAIL_LANES explicit logistic_lanes(vec arg) noexcept : x(arg) {
    const vec zero = V::splat(T(0)), one = V::splat(T(1));
    const auto positive = x >= zero;
    e = V::exp_gradual(positive ? -x : x);
    const vec big = one / (one + e), small = e / (one + e);
    pos = positive ? big : small;
    neg = positive ? small : big;
    const vec l = V::log1p_unit(e);
    softplus_minus = (positive ? zero : -x) + l;
    softplus_plus = (positive ? x : zero) + l;
  }
};

/// e^x − 1 − x on each lane, for |x| ≤ 1: Σ_{k≥2} x^k/k! to k = 20 (double; 11 float), truncation below 1e-18 (1e-8)
/// relative (math.hpp's expm1mx sums the same series there).
template <class T> RPO_DETAIL_LANES typename simd<T>::vec expm1mx_lanes(typename simd<T>::vec x) noexcept {
  using V = simd<T>;
  constexpr int last = sizeof(T) == 4 ? 11 : 20;
  // x²/2·(1 + x/3·(1 + x/4·(… (1 + x/last)))): the series nested, every coefficient 1/k exact to rounding.
  const typename V::vec one = V::splat(T(1));
  typename V::vec p = one;
  constexpr const T* inverse = reciprocals<T, std::size_t{last + 1}>.value;
  RPO_DETAIL_UNROLL
  for (int k = last; k >= 3; --k) p = one + p * x * V::splat(inverse[k]);
  return p * (x * x) * V::splat(T(0.5));
}

/// log(1 + y) − y on each lane, for y ∈ (−1/2, 1]: −y²/(2 + y) + 2z³·Σ_k z^{2k}/(2k + 3) with z = y/(2 + y), |z| ≤ 1/3,
/// to k = 16 (double; 7 float): math.hpp's log1pmx without its switch to log1p(y) − y above 1/2, every term exact in
/// sign, no cancellation.
template <class T> RPO_DETAIL_LANES typename simd<T>::vec log1pmx_lanes(typename simd<T>::vec y) noexcept {
  using V = simd<T>;
  const typename V::vec two = V::splat(T(2)), z = y / (two + y), z2 = z * z;
  constexpr int last = sizeof(T) == 4 ? 7 : 16;
  constexpr const T* inverse = reciprocals<T, std::size_t{2 * last + 4}>.value;
  typename V::vec series = V::splat(inverse[2 * last + 3]);
  RPO_DETAIL_UNROLL
  for (int k = last - 1; k >= 0; --k) series = series * z2 + V::splat(inverse[2 * k + 3]);
  return -(y * y) / (two + y) + two * z * z2 * series;
}

/// σ(a) − σ(b) on each lane from the parts of a and b: math.hpp's sigmoid_difference, its three regimes selected.
template <class T>
RPO_DETAIL_LANES typename simd<T>::vec sigmoid_difference_lanes(const logistic_lanes<T>& a,
                                                               const logistic_lanes<T>& b) noexcept {
  using V = simd<T>;
  using vec = typename V::vec;
  const vec zero = V::splat(T(0)), t = b.x - a.x;
  const vec expm1_t = t + expm1mx_lanes<T>(t);  // for |t| ≤ 1
  const vec near = -expm1_t * a.pos * b.neg;
  const auto both_nonnegative = (a.x >= zero) & (b.x >= zero);
  const vec far = both_nonnegative ? b.neg - a.neg : a.pos - b.pos;
  const auto close = (t <= V::splat(T(1))) & (t >= V::splat(T(-1)));
  return close ? near : far;
}

/// B_softplus(x, y) on each lane from the parts of x and y: math.hpp's bregman_softplus, its regimes selected.
template <class T>
RPO_DETAIL_LANES typename simd<T>::vec bregman_softplus_lanes(const logistic_lanes<T>& px,
                                                             const logistic_lanes<T>& py) noexcept {
  using V = simd<T>;
  using vec = typename V::vec;
  const vec zero = V::splat(T(0)), one = V::splat(T(1));
  const auto flip = py.x < zero;
  const vec d = flip ? py.x - px.x : px.x - py.x;
  const vec q = flip ? py.pos : py.neg;  // σ(−y) of the flipped y
  const vec near = log1pmx_lanes<T>(q * (-d + expm1mx_lanes<T>(-d))) + q * expm1mx_lanes<T>(-d);
  const vec far = flip ? px.softplus_plus - py.softplus_plus + q * d : px.softplus_minus - py.softplus_minus + q * d;
  const vec size = d < zero ? -d : d;
  return size < one ? near : (size == V::splat(std::numeric_limits<T>::infinity()) ? size : far);
}


/// e^x − 1 on each lane, given e = e^x: x + expm1mx_lanes(x) for |x| ≤ 1, e − 1 beyond (where it loses at most a
/// factor e/(e − 1) of relative accuracy); +inf above exp's range.
template <class T>
RPO_DETAIL_LANES typename simd<T>::vec expm1_lanes(typename simd<T>::vec x, typename simd<T>::vec e) noexcept {
  using V = simd<T>;
  const typename V::vec one = V::splat(T(1));
  const auto near = (x <= one) & (x >= -one);
  return near ? x + expm1mx_lanes<T>(x) : e - one;
}
/// e^x − 1 on each lane.
template <class T> RPO_DETAIL_LANES typename simd<T>::vec expm1_lanes(typename simd<T>::vec x) noexcept {
  return expm1_lanes<T>(x, simd<T>::exp_gradual(x));
}

/// log(1 − e^x) on each lane for x ≤ 0, given e = e^x and m = e^x − 1: math.hpp's log1mexp, Mächler's switch at −ln 2:
/// log(−m) above it, log1p(−e) below (−e ∈ [−1/2, 0), where log1p_unit holds), in one log1p_unit call (the lanes
/// above take log's reduction of −m, those below k = 0, f = −e); −inf at x = 0.
template <class T>
RPO_DETAIL_LANES typename simd<T>::vec log1mexp_lanes(typename simd<T>::vec x, typename simd<T>::vec e,
                                                      typename simd<T>::vec m) noexcept {
  using V = simd<T>;
  using vec = typename V::vec;
  const auto near = x > V::splat(static_cast<T>(-0.693147180559945309417232121458176568));
  const vec zero = V::splat(T(0));
#ifdef RPO_DETAIL_VECTOR_EXTENSIONS
  const typename V::log_reduced r = V::log_reduce(near ? -m : V::splat(T(1)));
  const vec y = V::log_join(near ? r.k : zero, V::log1p_unit(near ? r.f : -e));
#else
  const vec y = near ? V::log(-m) : V::log1p_unit(-e);
#endif
  return x == zero ? V::splat(-std::numeric_limits<T>::infinity()) : y;
}
/// log(1 − e^x) on each lane, for x ≤ 0.
template <class T> RPO_DETAIL_LANES typename simd<T>::vec log1mexp_lanes(typename simd<T>::vec x) noexcept {
  const typename simd<T>::vec e = simd<T>::exp_gradual(x);
  return log1mexp_lanes<T>(x, e, expm1_lanes<T>(x, e));
}

}  // namespace rpo::detail
