// rpo/math.hpp — the scalar core: stable special functions on one number, host and device.
//
// Public names: rpo::softplus, rpo::log_sigmoid, rpo::sigmoid, rpo::sigmoid_difference, rpo::log1mexp,
//               rpo::logsumexp, rpo::binary_entropy_logit, rpo::bregman_softplus, rpo::bernoulli_kl_logit.
// Implements RPO.md §2.2 ("Evaluation for every finite input", Bregman forms E3', E4') and the stable forms of
// LOSSES.md §6 and STYLE.md §4.5. Every function is finite for every finite argument in its domain, except where
// the true value itself exceeds the range: bregman_softplus(x, y) ≈ |x − y| is +inf when x − y overflows.
// @sa docs/math.md
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// softplus(x) = log(1 + e^x), evaluated as x + log1p(e^{−x}) for x ≥ 0 and log1p(e^x) below.  @sa docs/math.md#softplus
template <Scalar T> RPO_HD constexpr T softplus(T x) noexcept;

/// log σ(x) = −softplus(−x); never log(sigmoid(x)).  @sa docs/math.md#log_sigmoid
template <Scalar T> RPO_HD constexpr T log_sigmoid(T x) noexcept;

/// σ(x) = 1 / (1 + e^{−x}), one branch per sign so that e^{·} never overflows.  @sa docs/math.md#sigmoid
template <Scalar T> RPO_HD constexpr T sigmoid(T x) noexcept;

/// σ(a) − σ(b) without cancellation, also when a ≈ b or both are large.  @sa docs/math.md#sigmoid_difference
template <Scalar T> RPO_HD constexpr T sigmoid_difference(T a, T b) noexcept;

/// log(1 − e^x) for x ≤ 0 (Mächler's switch at −ln 2); −inf at x = 0, NaN for x > 0.  @sa docs/math.md#log1mexp
template <Scalar T> RPO_HD constexpr T log1mexp(T x) noexcept;

/// log(e^x + e^y), shifted by the maximum.  @sa docs/math.md#logsumexp
template <Scalar T> RPO_HD constexpr T logsumexp(T x, T y) noexcept;

/// log Σ_i e^{x[i]} over n values, shifted by the maximum; −inf for n = 0 or all −inf.  @sa docs/math.md#logsumexp
template <Scalar T> RPO_HD constexpr T logsumexp(const T* x, std::int64_t n) noexcept;

/// H₂(σ(u)), the binary entropy of a Bernoulli with logit u, as softplus(−|u|) + |u|·σ(−|u|).
/// @sa docs/math.md#binary_entropy_logit
template <Scalar T> RPO_HD constexpr T binary_entropy_logit(T u) noexcept;

/// B_softplus(x, y) = softplus(x) − softplus(y) − σ(y)(x − y) ≥ 0, the Bregman divergence of softplus, accurate
/// to a few ulps relative for every finite x, y (also x ≈ y).  RPO.md (E3'), (E4').  @sa docs/math.md#bregman_softplus
template <Scalar T> RPO_HD constexpr T bregman_softplus(T x, T y) noexcept;

/// KL(Bern σ(u) ‖ Bern σ(v)) in logit form: B_softplus(v, u).  RPO.md §2.2.  @sa docs/math.md#bernoulli_kl_logit
template <Scalar T> RPO_HD constexpr T bernoulli_kl_logit(T u, T v) noexcept;

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

/// log1p(y) − y, accurate to a few ulps relative on y > −1.
/// For |y| < 1/2 it uses log1p(y) = 2 atanh(z), z = y / (2 + y), so that log1p(y) − y = −y²/(2 + y) +
/// 2 z³ Σ_{k≥0} z^{2k} / (2k + 3): no cancellation, |z| ≤ 1/3. Beyond, the direct difference loses at most ~10 ulps.
template <Scalar T> RPO_HD constexpr T log1pmx(T y) noexcept {
  RPO_USING_STD(log1p) RPO_USING_STD(fabs)
  if (!(fabs(y) < T(0.5))) return log1p(y) - y;
  const T z = y / (T(2) + y);
  const T z2 = z * z;
  T term = T(1);  // z^{2k}
  T series = T(0);
  for (int k = 0; k < 40; ++k) {
    const T add = term / T(2 * k + 3);
    series += add;
    if (!(fabs(add) > std::numeric_limits<T>::epsilon() * T(0.25) * fabs(series))) break;
    term *= z2;
  }
  return -(y * y) / (T(2) + y) + T(2) * z * z2 * series;
}

/// e^x − 1 − x, accurate to a few ulps relative: the Taylor series Σ_{k≥2} x^k / k! for |x| < 1/2, the
/// difference expm1(x) − x beyond (which loses at most ~8 ulps there).
template <Scalar T> RPO_HD constexpr T expm1mx(T x) noexcept {
  RPO_USING_STD(expm1) RPO_USING_STD(fabs)
  if (!(fabs(x) < T(0.5))) return expm1(x) - x;
  T term = x * x / T(2);
  T sum = term;
  for (int k = 3; k < 40; ++k) {
    term *= x / T(k);
    sum += term;
    if (!(fabs(term) > std::numeric_limits<T>::epsilon() * T(0.25) * fabs(sum))) break;
  }
  return sum;
}


/// e^{−|x|} and what the logistic functions of x make of it, so that a distance that needs σ(x), σ(−x),
/// softplus(x) and softplus(−x) pays one exponential (and one log1p for the softpluses), not one each. Every value
/// is bit for bit what rpo::sigmoid and rpo::softplus give (the same expressions on the same e).
template <Scalar T> struct logistic_parts {
  T x;    ///< the argument
  T e;    ///< e^{−|x|} ∈ (0, 1]
  T pos;  ///< σ(x)
  T neg;  ///< σ(−x)
  struct softplus_pair {
    T plus;   ///< softplus(x)
    T minus;  ///< softplus(−x)
  };
  /// {softplus(x), softplus(−x)}, one log1p.
  RPO_HD constexpr softplus_pair softpluses() const noexcept {
    RPO_USING_STD(log1p)
    const T l = log1p(e);
    if constexpr (std::is_floating_point_v<T>) {
      // Both sides and a select, not a branch on the sign (random signs mispredict): 0 + l is l, bit for bit.
      const bool positive = x >= T(0);
      return {(positive ? x : T(0)) + l, (positive ? T(0) : -x) + l};
    } else {
      return x >= T(0) ? softplus_pair{x + l, l} : softplus_pair{l, -x + l};
    }
  }
};
template <Scalar T> RPO_HD constexpr logistic_parts<T> logistic_of(T x) noexcept {
  RPO_USING_STD(exp) RPO_USING_STD(fabs)
  if constexpr (std::is_floating_point_v<T>) {
    // e^{−|x|} is e^{−x} for x ≥ 0 and e^{x} below, the same bits as the branches below; the two quotients are
    // selected, not branched to. A user scalar keeps the branches: its |x| need not differentiate as wanted at 0.
    const T e = exp(-fabs(x)), big = T(1) / (T(1) + e), small = e / (T(1) + e);
    const bool positive = x >= T(0);
    return {x, e, positive ? big : small, positive ? small : big};
  } else {
    if (x >= T(0)) {
      const T e = exp(-x);
      return {x, e, T(1) / (T(1) + e), e / (T(1) + e)};
    }
    const T e = exp(x);
    return {x, e, e / (T(1) + e), T(1) / (T(1) + e)};
  }
}

/// σ(a) − σ(b) from the parts of a and b (rpo::sigmoid_difference's regimes).
template <Scalar T>
RPO_HD constexpr T sigmoid_difference(const logistic_parts<T>& a, const logistic_parts<T>& b) noexcept {
  RPO_USING_STD(expm1) RPO_USING_STD(fabs)
  if (fabs(a.x - b.x) <= T(1)) return -expm1(b.x - a.x) * a.pos * b.neg;
  if (a.x >= T(0) && b.x >= T(0)) return b.neg - a.neg;
  return a.pos - b.pos;
}

/// B_softplus(x, y) with the parts of y (rpo::bregman_softplus's regimes).
template <Scalar T> RPO_HD constexpr T bregman_softplus(T x, const logistic_parts<T>& py) noexcept;
}  // namespace detail

// One branch per sign rather than max(x, 0) + log1p(e^{−|x|}): the same numbers, but each branch is a smooth
// formula, so a user scalar (a dual number) differentiates it correctly also at x = 0.
template <Scalar T> RPO_HD constexpr T softplus(T x) noexcept {
  RPO_USING_STD(exp) RPO_USING_STD(log1p)
  if (x >= T(0)) return x + log1p(exp(-x));
  return log1p(exp(x));
}

template <Scalar T> RPO_HD constexpr T log_sigmoid(T x) noexcept { return -softplus(-x); }

template <Scalar T> RPO_HD constexpr T sigmoid(T x) noexcept {
  RPO_USING_STD(exp)
  if (x >= T(0)) return T(1) / (T(1) + exp(-x));
  const T e = exp(x);
  return e / (T(1) + e);
}

// σ(a) − σ(b) = −expm1(b − a)·σ(a)·σ(−b) exactly; that product form has no cancellation and cannot overflow
// for |a − b| ≤ 1. Farther apart, the plain difference is accurate unless both values sit near 1, where
// σ(−b) − σ(−a) is used instead.
template <Scalar T> RPO_HD constexpr T sigmoid_difference(T a, T b) noexcept {
  return detail::sigmoid_difference(detail::logistic_of(a), detail::logistic_of(b));
}

template <Scalar T> RPO_HD constexpr T log1mexp(T x) noexcept {
  RPO_USING_STD(log) RPO_USING_STD(log1p) RPO_USING_STD(exp) RPO_USING_STD(expm1)
  // Mächler (2012): log(−expm1(x)) is accurate near 0, log1p(−e^x) far from it; the switch sits at −ln 2.
  if (x > T(-0.693147180559945309417232121458176568)) return log(-expm1(x));
  return log1p(-exp(x));
}

template <Scalar T> RPO_HD constexpr T logsumexp(T x, T y) noexcept {
  RPO_USING_STD(exp) RPO_USING_STD(log1p) RPO_USING_STD(fabs)
  const T m = x > y ? x : y;
  if (m == -std::numeric_limits<T>::infinity()) return m;
  if (m == std::numeric_limits<T>::infinity()) return m;
  return m + log1p(exp(-fabs(x - y)));
}

template <Scalar T> RPO_HD constexpr T logsumexp(const T* x, std::int64_t n) noexcept {
  RPO_USING_STD(exp) RPO_USING_STD(log)
  T m = -std::numeric_limits<T>::infinity();
  for (std::int64_t i = 0; i < n; ++i) m = x[i] > m ? x[i] : m;
  if (m == -std::numeric_limits<T>::infinity() || m == std::numeric_limits<T>::infinity()) return m;
  T sum = T(0);
  for (std::int64_t i = 0; i < n; ++i) sum += exp(x[i] - m);
  return m + log(sum);
}

template <Scalar T> RPO_HD constexpr T binary_entropy_logit(T u) noexcept {
  RPO_USING_STD(fabs)
  const T m = fabs(u);
  return softplus(-m) + m * sigmoid(-m);
}

// B(x, y) = sp(x) − sp(y) − σ(y)(x − y). Since sp(z) = z + sp(−z), B(x, y) = B(−x, −y): reflect so that y ≥ 0
// and q = σ(−y) ≤ ½. With d = x − y:
//   |d| < 1:  B = log1pmx(q·expm1(−d)) + q·expm1mx(−d). The first term is ≈ −q²d²/2, the second ≈ qd²/2 and
//             B ≈ q(1 − q)d²/2 ≥ half the larger term, so nothing cancels (the first-order terms were removed
//             analytically). This is the regime where the textbook forms lose all relative accuracy (STYLE
//             pitfall 9: error 3.4 at (1e-8, 0)).
//   |d| ≥ 1:  B = sp(−x) − sp(−y) + q·d (RPO.md §2.2), whose terms are at most a few times B.
// If d overflows (|x − y| > max), the true value is +inf.
template <Scalar T> RPO_HD constexpr T bregman_softplus(T x, T y) noexcept {
  return detail::bregman_softplus(x, detail::logistic_of(y));
}

// B(x, y) = B(−x, −y): with y ≥ 0 after the flip, q = σ(−y) ≤ 1/2 and d = x − y; near (|d| < 1) the series forms of
// log(1 + q(e^{−d} − 1)) + q(e^{−d} − 1 + d), far the difference of softpluses, whose terms are within a factor 4.
template <Scalar T>
RPO_HD constexpr T detail::bregman_softplus(T x, const logistic_parts<T>& py) noexcept {
  RPO_USING_STD(expm1) RPO_USING_STD(fabs)
  const bool flip = py.x < T(0);
  const T d = flip ? py.x - x : x - py.x;
  const T q = flip ? py.pos : py.neg;  // σ(−y) of the flipped y
  if (fabs(d) < T(1)) return log1pmx(q * expm1(-d)) + q * expm1mx(-d);
  if (fabs(d) == std::numeric_limits<T>::infinity()) return std::numeric_limits<T>::infinity();
  const auto sx = logistic_of(x).softpluses(), sy = py.softpluses();
  return flip ? sx.plus - sy.plus + q * d : sx.minus - sy.minus + q * d;  // softplus(−x) − softplus(−y) + q·d, flipped
}

template <Scalar T> RPO_HD constexpr T bernoulli_kl_logit(T u, T v) noexcept { return bregman_softplus(v, u); }

}  // namespace rpo
