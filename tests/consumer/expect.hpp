// expect.hpp — the consumer programs' one check: a value within 1e-13 relative of its reference, printed either way.
#pragma once

#include <cmath>
#include <cstdio>

namespace consumer {

inline int failures = 0;

inline void expect(const char* what, double got, double want) {
  const double tolerance = 1e-13 * std::fabs(want);
  const bool ok = std::fabs(got - want) <= tolerance;  // false for NaN
  std::printf("%-16s %.17g (want %.17g) %s\n", what, got, want, ok ? "ok" : "MISMATCH");
  if (!ok) ++failures;
}

}  // namespace consumer
