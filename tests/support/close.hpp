// tests/support/close.hpp — explicit tolerances (STYLE.md §4.7): |x − ref| ≤ atol + rtol·|ref|; NaN equals only
// NaN; an infinity matches only the same infinity.
#pragma once

#include <cmath>
#include <string>

namespace test {

inline bool rel_close(double x, double ref, double rtol, double atol = 0) {
  if (std::isnan(ref)) return std::isnan(x);
  if (std::isinf(ref)) return x == ref;
  if (!std::isfinite(x)) return false;
  return std::fabs(x - ref) <= atol + rtol * std::fabs(ref);
}

}  // namespace test

/// CHECK that x is within (rtol, atol) of ref, printing both on failure.
#define CHECK_CLOSE(x, ref, rtol, atol)                                                                       \
  do {                                                                                                        \
    const double check_close_x_ = static_cast<double>(x);                                                    \
    const double check_close_ref_ = static_cast<double>(ref);                                                \
    CHECK_MESSAGE(test::rel_close(check_close_x_, check_close_ref_, (rtol), (atol)),                          \
                  #x " = " << check_close_x_ << ", reference " << check_close_ref_ << " (rtol " << (rtol)   \
                                << ", atol " << (atol) << ")");                                               \
  } while (false)
