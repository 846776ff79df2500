// tests/support/dual.hpp — a forward-mode dual number, x + ε·dx with ε² = 0: an exact, step-free gradient
// reference (autodiff's lesson, STYLE.md §4.7). rpo's scalar cores find its maths by ADL after RPO_USING_STD.
#pragma once

#include <cmath>
#include <limits>
#include <type_traits>

#include "rpo/concepts.hpp"

namespace test {

template <class T> struct dual {
  T v{};  ///< value
  T d{};  ///< derivative
  constexpr dual() = default;
  constexpr dual(T value, T derivative = T(0)) : v(value), d(derivative) {}  // NOLINT: implicit from numbers
  template <class I>
    requires std::is_integral_v<I>
  constexpr dual(I value) : v(static_cast<T>(value)) {}  // NOLINT: implicit from integer literals
  explicit constexpr operator double() const { return static_cast<double>(v); }

  friend constexpr dual operator+(dual a, dual b) { return {a.v + b.v, a.d + b.d}; }
  friend constexpr dual operator-(dual a, dual b) { return {a.v - b.v, a.d - b.d}; }
  friend constexpr dual operator*(dual a, dual b) { return {a.v * b.v, a.d * b.v + a.v * b.d}; }
  friend constexpr dual operator/(dual a, dual b) { return {a.v / b.v, (a.d * b.v - a.v * b.d) / (b.v * b.v)}; }
  friend constexpr dual operator-(dual a) { return {-a.v, -a.d}; }
  constexpr dual& operator+=(dual b) { return *this = *this + b; }
  constexpr dual& operator-=(dual b) { return *this = *this - b; }
  constexpr dual& operator*=(dual b) { return *this = *this * b; }
  friend constexpr bool operator<(dual a, dual b) { return a.v < b.v; }
  friend constexpr bool operator>(dual a, dual b) { return a.v > b.v; }
  friend constexpr bool operator<=(dual a, dual b) { return a.v <= b.v; }
  friend constexpr bool operator>=(dual a, dual b) { return a.v >= b.v; }
  friend constexpr bool operator==(dual a, dual b) { return a.v == b.v; }

  friend dual exp(dual a) { const T e = std::exp(a.v); return {e, a.d * e}; }
  friend dual expm1(dual a) { return {std::expm1(a.v), a.d * std::exp(a.v)}; }
  friend dual log(dual a) { return {std::log(a.v), a.d / a.v}; }
  friend dual log1p(dual a) { return {std::log1p(a.v), a.d / (T(1) + a.v)}; }
  friend dual fabs(dual a) { return a.v < T(0) ? -a : a; }
};

}  // namespace test

template <class T> struct rpo::scalar_traits<test::dual<T>> {
  static constexpr bool enabled = true;
};

/// The limits of the underlying type (epsilon, infinity), which the cores use for cutoffs and special values.
template <class T> class std::numeric_limits<test::dual<T>> : public std::numeric_limits<T> {};
