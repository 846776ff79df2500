// tests/support/gradient_check.hpp — the relative error of an analytic derivative against central differences.
#pragma once

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "support/finite_difference.hpp"

namespace test {

/// The finite-difference step for x in type T: 2^-9 (double) or 2^-4 (float), so that the O(h⁴) truncation of the
/// five-point stencil (~h⁴/30·f⁽⁵⁾) stays below 1e-7 of derivatives as small as 1e-4. The losses vary on a scale of
/// 1 in their arguments whatever |x| is, so the step stays fixed; it grows with |x| only past 1024, where x ± h
/// would otherwise lose bits.
template <class T> T fd_step(T x) {
  const T base = std::is_same_v<T, float> ? T(0.0625) : T(0.001953125);
  return base * std::max(T(1), std::fabs(x) / T(1024));
}

/// The relative error |g − fd| / max(|g|, |fd|, floor) of the analytic derivative `g` of f at x. The floor,
/// floor_scale·(1 + |f(x)|), is the level below which central differences cannot resolve a derivative (their
/// rounding error is about eps·|f|/h): a derivative of 1e-20 next to a loss of 1 is checked to that level only.
template <class T, class F> double fd_relative_error(F&& f, T x, T g, double floor_scale) {
  const double fd = static_cast<double>(derivative(f, x, fd_step(x)));
  const double value = static_cast<double>(f(x));
  const double gd = static_cast<double>(g);
  const double scale = std::max({std::fabs(gd), std::fabs(fd), floor_scale * (1 + std::fabs(value))});
  return std::fabs(gd - fd) / scale;
}

/// The tolerance of the issue: relative error < 1e-7 in double and < 1e-3 in float.
template <class T> constexpr double fd_tolerance = std::is_same_v<T, float> ? 1e-3 : 1e-7;
/// The floor for fd_relative_error: the differences' rounding error (~1.5·eps/h relative to |f|: 2e-13 in double,
/// 3e-6 in float) divided by a margin below the tolerance, so that rounding alone never fails a check. Below the
/// floor a derivative is checked absolutely, to tolerance·floor·(1 + |f|); the dual-number checks are exact.
template <class T> constexpr double fd_floor = std::is_same_v<T, float> ? 1e-2 : 1e-5;

}  // namespace test
