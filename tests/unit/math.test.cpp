// The scalar core (rpo/math.hpp) against 60-digit mpmath values, dual-number derivatives, and extreme inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <string>

#include "rpo/math.hpp"
#include "support/close.hpp"
#include "support/dual.hpp"
#include "support/reference_data.hpp"

namespace {

template <class T> bool representable(double x) { return static_cast<double>(static_cast<T>(x)) == x; }

// Relative tolerances against the 60-digit reference: a few ulps of the type, with an absolute floor at the
// smallest normal number (values that underflow may come back as 0 or a subnormal).
template <class T> constexpr double rtol = std::is_same_v<T, float> ? 2e-6 : 2e-15;
template <class T> constexpr double atol = static_cast<double>(std::numeric_limits<T>::min());

template <class T, class F> void check_unary(const std::string& name, F&& f, double rtol_scale = 1) {
  for (const auto& row : test::math_reference(name)) {
    if (!representable<T>(row.x)) continue;
    const T got = f(static_cast<T>(row.x));
    CAPTURE(name);
    CAPTURE(row.x);
    CHECK_CLOSE(got, row.value, rtol<T> * rtol_scale, atol<T>);
  }
}

template <class T, class F> void check_binary(const std::string& name, F&& f, double rtol_scale = 1) {
  for (const auto& row : test::math_reference(name)) {
    if (!representable<T>(row.x) || !representable<T>(row.y)) continue;
    const T got = f(static_cast<T>(row.x), static_cast<T>(row.y));
    CAPTURE(name);
    CAPTURE(row.x);
    CAPTURE(row.y);
    CHECK_CLOSE(got, row.value, rtol<T> * rtol_scale, atol<T>);
  }
}

}  // namespace

TEST_SUITE("math") {
  TEST_CASE_TEMPLATE("each function matches its 60-digit definition", T, float, double) {
    check_unary<T>("softplus", [](T x) { return rpo::softplus(x); });
    check_unary<T>("log_sigmoid", [](T x) { return rpo::log_sigmoid(x); });
    check_unary<T>("sigmoid", [](T x) { return rpo::sigmoid(x); });
    check_unary<T>("log1mexp", [](T x) { return rpo::log1mexp(x); });
    check_unary<T>("binary_entropy_logit", [](T x) { return rpo::binary_entropy_logit(x); });
    check_binary<T>("sigmoid_difference", [](T a, T b) { return rpo::sigmoid_difference(a, b); });
  }

  TEST_CASE_TEMPLATE("Bernoulli KL in logit form keeps its relative accuracy also when u and v are close", T, float,
                     double) {
    // STYLE.md pitfall 9: the textbook forms have relative error 3.4 at (1e-8, 0). The reference rows include
    // gaps from 1e-9 to 3 around centres in [-30, 30], and |u|, |v| up to 1e4.
    check_binary<T>("d_fwd", [](T a, T b) { return rpo::bernoulli_kl_logit(a, b); }, 3);
    check_binary<T>("d_bwd", [](T a, T b) { return rpo::bernoulli_kl_logit(b, a); }, 3);
    check_binary<T>("d_bwd", [](T a, T b) { return rpo::bregman_softplus(a, b); }, 3);
  }

  TEST_CASE("derivatives agree with dual numbers: softplus' = sigma, log_sigmoid' = sigma(-x), sigma' = sigma sigma(-x)") {
    using D = test::dual<double>;
    for (double x : {-700.0, -40.0, -3.0, -0.1, 0.0, 0.2, 5.0, 35.0, 700.0}) {
      CAPTURE(x);
      const D sp = rpo::softplus(D{x, 1.0});
      CHECK_CLOSE(sp.d, rpo::sigmoid(x), 1e-15, 1e-300);
      const D ls = rpo::log_sigmoid(D{x, 1.0});
      CHECK_CLOSE(ls.d, rpo::sigmoid(-x), 1e-15, 1e-300);
      const D s = rpo::sigmoid(D{x, 1.0});
      CHECK_CLOSE(s.d, rpo::sigmoid(x) * rpo::sigmoid(-x), 1e-14, 1e-300);
    }
  }

  TEST_CASE("d/dx B_softplus(x, y) = sigma(x) - sigma(y) and d/dy = sigma'(y)(y - x), by dual numbers") {
    using D = test::dual<double>;
    for (double x : {-30.0, -2.0, -1e-3, 0.0, 0.7, 0.7 + 1e-6, 4.0, 25.0})
      for (double y : {-25.0, -0.5, 0.0, 0.7, 3.0, 31.0}) {
        CAPTURE(x);
        CAPTURE(y);
        const D dx = rpo::bregman_softplus(D{x, 1.0}, D{y, 0.0});
        CHECK_CLOSE(dx.d, rpo::sigmoid_difference(x, y), 1e-12, 1e-15);
        const D dy = rpo::bregman_softplus(D{x, 0.0}, D{y, 1.0});
        CHECK_CLOSE(dy.d, rpo::sigmoid(y) * rpo::sigmoid(-y) * (y - x), 1e-12, 1e-15);
      }
  }

  TEST_CASE_TEMPLATE("every function is finite at extreme finite inputs", T, float, double) {
    const T big = std::numeric_limits<T>::max();
    const T values[] = {-big, T(-1e4), T(-100), T(-1), T(0), T(1), T(100), T(1e4), big,
                        std::numeric_limits<T>::denorm_min(), -std::numeric_limits<T>::denorm_min()};
    for (T x : values) {
      CAPTURE(x);
      CHECK(std::isfinite(rpo::softplus(x)));
      CHECK(std::isfinite(rpo::log_sigmoid(x)));
      CHECK(std::isfinite(rpo::sigmoid(x)));
      CHECK(std::isfinite(rpo::binary_entropy_logit(x)));
      if (x < T(0)) CHECK(std::isfinite(rpo::log1mexp(x)));
      for (T y : values) {
        CAPTURE(y);
        CHECK(std::isfinite(rpo::sigmoid_difference(x, y)));
        CHECK(std::isfinite(rpo::logsumexp(x, y)));
        // The KL is finite whenever x − y is; beyond that, its true value exceeds the range and it is +inf.
        const T kl = rpo::bernoulli_kl_logit(x, y);
        CHECK(kl >= T(0));
        if (std::isfinite(x - y)) {
          CHECK(std::isfinite(kl));
        } else {
          CHECK(kl == std::numeric_limits<T>::infinity());
        }
      }
    }
  }

  TEST_CASE("softplus, log_sigmoid and sigmoid at the float cutoffs that break the naive forms") {
    // log(1 + exp(x)) overflows past x ≈ 88.7 in float; log(sigmoid(x)) is −inf once sigma underflows.
    CHECK_CLOSE(rpo::softplus(100.0f), 100.0, 1e-7, 0);
    CHECK_CLOSE(rpo::log_sigmoid(-200.0f), -200.0, 1e-7, 0);
    CHECK_CLOSE(rpo::log_sigmoid(-1e4f), -1e4, 1e-7, 0);
    CHECK(rpo::sigmoid(-200.0f) >= 0.0f);
  }

  TEST_CASE("log1mexp: exact at the switch, -inf at 0") {
    const double x = -0.6931471805599453;  // −ln 2, where log(1 − e^x) = log(1/2)
    CHECK_CLOSE(rpo::log1mexp(x), std::log(0.5), 1e-15, 0);
    CHECK(rpo::log1mexp(0.0) == -std::numeric_limits<double>::infinity());
  }

  TEST_CASE_TEMPLATE("logsumexp: matches the two-argument form, and empty or all -inf gives -inf", T, float, double) {
    const T inf = std::numeric_limits<T>::infinity();
    const T xs[] = {T(-1000), T(3), T(2.5), T(-7)};
    const double tol = std::is_same_v<T, float> ? 1e-6 : 1e-15;
    const T pairwise = rpo::logsumexp(rpo::logsumexp(rpo::logsumexp(xs[0], xs[1]), xs[2]), xs[3]);
    CHECK_CLOSE(rpo::logsumexp(xs, 4), pairwise, tol, 0);
    // log(e^3 + e^2.5 + e^-7) computed independently in long double.
    const long double direct = std::log(std::exp(3.0L) + std::exp(2.5L) + std::exp(-7.0L));
    CHECK_CLOSE(rpo::logsumexp(xs, 4), static_cast<double>(direct), tol, 0);
    CHECK(rpo::logsumexp(xs, 0) == -inf);
    const T none[] = {-inf, -inf};
    CHECK(rpo::logsumexp(none, 2) == -inf);
    CHECK(rpo::logsumexp(-inf, -inf) == -inf);
    CHECK_CLOSE(rpo::logsumexp(T(1e4), T(1e4)), 1e4 + std::log(2.0), 1e-6, 0);
  }
}
