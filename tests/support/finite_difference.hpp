// tests/support/finite_difference.hpp — central finite differences for gradient checks (LOSSES.md §9).
#pragma once

#include <cmath>

namespace test {

/// The five-point central difference f'(x) ≈ [f(x−2h) − 8f(x−h) + 8f(x+h) − f(x+2h)] / (12h), whose truncation
/// error is O(h⁴). h is rounded to a power of two so that x ± h are exact for moderate |x|, and the step
/// actually taken is used in the quotient.
template <class T, class F> T derivative(F&& f, T x, T step) {
  const T h = std::exp2(std::round(std::log2(step)));
  const T xp1 = x + h, xm1 = x - h, xp2 = x + T(2) * h, xm2 = x - T(2) * h;
  const T h_taken = (xp2 - xm2) / T(4);
  return (f(xm2) - T(8) * f(xm1) + T(8) * f(xp1) - f(xp2)) / (T(12) * h_taken);
}

}  // namespace test
