// The distances (rpo/distance.hpp): RPO.md §10.1 vectors, gradients against finite differences and dual numbers,
// the identities of RPO.md §2.2–2.3 and §11, and extreme inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <type_traits>
#include <utility>

#include "rpo/distance.hpp"
#include "support/close.hpp"
#include "support/dual.hpp"
#include "support/gradient_check.hpp"
#include "support/reference_data.hpp"

namespace {

using rpo::distance::bernoulli_bwd_kl;
using rpo::distance::bernoulli_fwd_kl;
using rpo::distance::hinge;
using rpo::distance::logistic;
using rpo::distance::squared;

double sig(double x) { return 1 / (1 + std::exp(-x)); }  // plain, for moderate test arguments only

struct table_row {
  double a, b, d_sq, d_fwd, d_bwd, dfwd_da, dbwd_da;
};

}  // namespace

TEST_SUITE("distance") {
  TEST_CASE("RPO.md 10.1: D_sq, D_fwd, D_bwd and their a-derivatives, to 1e-10") {
    // Inputs and values exactly as printed in RPO.md §10.1 (12 significant digits; the last row's 30 is rounded
    // there, its true value is 30 − 5.6e-12).
    const table_row rows[] = {
        {0, 0, 0, 0, 0, 0, 0},
        {1, 0, 1, 0.110944071672, 0.120114506958, 0.196611933241, 0.23105857863},
        {0, 1, 1, 0.120114506958, 0.110944071672, -0.25, -0.23105857863},
        {-2, 3, 25, 2.32564473042, 1.84121129358, -0.524967927018, -0.8333712048},
        {2.5, -1, 12.25, 0.968868323151, 1.32433307198, 0.245363007908, 0.655200398609},
        {std::log(4.0), std::log(1.5), 0.962026023564, 0.0915162218494, 0.104649628753, 0.156932680482, 0.2},
        {10, -10, 400, 9.99909204263, 9.99909204263, 0.000907916154719, 0.999909204263},
        {-30, 30, 3600, 30, 30, -5.6145737813e-12, -1},
    };
    for (const auto& r : rows) {
      CAPTURE(r.a);
      CAPTURE(r.b);
      const auto sq = squared{}.value_and_grad(r.a, r.b);
      const auto fwd = bernoulli_fwd_kl{}.value_and_grad(r.a, r.b);
      const auto bwd = bernoulli_bwd_kl{}.value_and_grad(r.a, r.b);
      CHECK_CLOSE(sq.value, r.d_sq, 1e-10, 1e-15);
      CHECK_CLOSE(fwd.value, r.d_fwd, 1e-10, 1e-15);
      CHECK_CLOSE(bwd.value, r.d_bwd, 1e-10, 1e-15);
      CHECK_CLOSE(fwd.d_a, r.dfwd_da, 1e-10, 1e-15);
      CHECK_CLOSE(bwd.d_a, r.dbwd_da, 1e-10, 1e-15);
      CHECK_CLOSE(sq.d_a, 2 * (r.a - r.b), 1e-15, 0);
    }
  }

  TEST_CASE("NeMo-RL's unit-test vectors (RPO.md 6.2): sigma(a) = 0.8, sigma(b) = 0.6: D_sq(sqrt 3 + 1/2 || 1/2) = 3") {
    const double a = std::log(0.8 / 0.2), b = std::log(0.6 / 0.4);
    CHECK_CLOSE(bernoulli_fwd_kl{}.value_and_grad(a, b).value, 0.0915162, 1e-6, 0);
    CHECK_CLOSE(bernoulli_bwd_kl{}.value_and_grad(a, b).value, 0.1046496, 1e-6, 0);
    CHECK_CLOSE(squared{}.value_and_grad(std::sqrt(3.0) + 0.5, 0.5).value, 3.0, 1e-15, 0);
  }

  TEST_CASE_TEMPLATE("D_bwd and D_fwd match their 60-digit definitions KL(Bern sigma(b) || Bern sigma(a)) and its mirror",
                     T, float, double) {
    const double rtol = std::is_same_v<T, float> ? 6e-6 : 6e-15;
    for (const auto& row : test::math_reference("d_bwd")) {
      const T a = static_cast<T>(row.x), b = static_cast<T>(row.y);
      if (static_cast<double>(a) != row.x || static_cast<double>(b) != row.y) continue;
      CAPTURE(row.x);
      CAPTURE(row.y);
      CHECK_CLOSE(bernoulli_bwd_kl{}.value_and_grad(a, b).value, row.value, rtol, static_cast<double>(std::numeric_limits<T>::min()));
      CHECK_CLOSE(bernoulli_fwd_kl{}.value_and_grad(b, a).value, row.value, rtol, static_cast<double>(std::numeric_limits<T>::min()));
    }
  }

  TEST_CASE_TEMPLATE("dD/da and dD/db agree with central differences at random (a, b), |a|, |b| up to 50", T, float,
                     double) {
    std::mt19937_64 rng(7);
    int checked = 0;
    for (double scale : {1.0, 12.0, 50.0}) {
      std::uniform_real_distribution<double> u(-scale, scale);
      for (int i = 0; i < 700; ++i) {
        const T a = static_cast<T>(u(rng)), b = static_cast<T>(u(rng));
        CAPTURE(a);
        CAPTURE(b);
        const auto each = [&](const auto& d) {
          const auto g = d.value_and_grad(a, b);
          const auto in_a = [&](T x) { return d.value_and_grad(x, b).value; };
          const auto in_b = [&](T x) { return d.value_and_grad(a, x).value; };
          CHECK(test::fd_relative_error(in_a, a, g.d_a, test::fd_floor<T>) < test::fd_tolerance<T>);
          CHECK(test::fd_relative_error(in_b, b, g.d_b, test::fd_floor<T>) < test::fd_tolerance<T>);
          ++checked;
        };
        each(squared{});
        each(bernoulli_bwd_kl{});
        each(bernoulli_fwd_kl{});
        each(logistic{});
        // The hard-label overloads depend on a only; the hinge has a kink at a = 1, which the differences skip.
        const auto limit = [&](const auto& d) {
          const auto g = d.value_and_grad(a, rpo::infinite_target);
          const auto in_a = [&](T x) { return d.value_and_grad(x, rpo::infinite_target).value; };
          CHECK(test::fd_relative_error(in_a, a, g.d_a, test::fd_floor<T>) < test::fd_tolerance<T>);
        };
        limit(bernoulli_bwd_kl{});
        limit(logistic{});
        if (std::fabs(a - T(1)) > T(4) * test::fd_step(a)) limit(hinge{});
      }
    }
    CHECK(checked == 3 * 700 * 4);
  }

  TEST_CASE("dD/da and dD/db are exact against dual numbers") {
    using D = test::dual<double>;
    std::mt19937_64 rng(11);
    std::uniform_real_distribution<double> u(-40, 40);
    for (int i = 0; i < 500; ++i) {
      const double a = u(rng), b = i % 5 == 0 ? a + u(rng) * 1e-7 : u(rng);
      CAPTURE(a);
      CAPTURE(b);
      // atol: the KL forms keep their relative accuracy (1e-300), but the dual derivative of the logistic value
      // σ(b)·sp(−a) + σ(−b)·sp(a) cancels to ~1e-16 absolute when a ≈ b, while the analytic σ(a) − σ(b) does not.
      const auto each = [&](const char* name, const auto& d, double atol) {
        CAPTURE(name);
        const auto g = d.value_and_grad(a, b);
        const D da = d.value_and_grad(D{a, 1}, D{b, 0}).value;
        const D db = d.value_and_grad(D{a, 0}, D{b, 1}).value;
        CHECK_CLOSE(g.d_a, da.d, 1e-12, atol);
        CHECK_CLOSE(g.d_b, db.d, 1e-12, atol);
      };
      each("squared", squared{}, 1e-300);
      each("bernoulli_bwd_kl", bernoulli_bwd_kl{}, 1e-300);
      each("bernoulli_fwd_kl", bernoulli_fwd_kl{}, 1e-300);
      each("logistic", logistic{}, 1e-15);
      const D lim = bernoulli_bwd_kl{}.value_and_grad(D{a, 1}, rpo::infinite_target).value;
      CHECK_CLOSE(bernoulli_bwd_kl{}.value_and_grad(a, rpo::infinite_target).d_a, lim.d, 1e-13, 1e-300);
    }
  }

  TEST_CASE("second derivatives (RPO.md 2.3): 2, p(1-p)(1 + (1-2p)(a-b)), p(1-p)") {
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> u(-12, 12);
    for (int i = 0; i < 500; ++i) {
      const double a = u(rng), b = u(rng), p = sig(a);
      CAPTURE(a);
      CAPTURE(b);
      const auto second = [&](const auto& d) {
        return test::derivative([&](double x) { return d.value_and_grad(x, b).d_a; }, a, test::fd_step(a));
      };
      CHECK_CLOSE(second(squared{}), 2.0, 1e-9, 1e-9);
      CHECK_CLOSE(second(bernoulli_fwd_kl{}), p * (1 - p) * (1 + (1 - 2 * p) * (a - b)), 1e-7, 1e-9);
      CHECK_CLOSE(second(bernoulli_bwd_kl{}), p * (1 - p), 1e-7, 1e-9);
    }
  }

  TEST_CASE("D_fwd(a || b) = D_bwd(b || a), value and swapped partials") {
    std::mt19937_64 rng(5);
    std::uniform_real_distribution<double> u(-60, 60);
    for (int i = 0; i < 1000; ++i) {
      const double a = u(rng), b = u(rng);
      const auto f = bernoulli_fwd_kl{}.value_and_grad(a, b);
      const auto r = bernoulli_bwd_kl{}.value_and_grad(b, a);
      CHECK(f.value == r.value);
      CHECK_CLOSE(f.d_a, r.d_b, 1e-13, 1e-300);
      CHECK_CLOSE(f.d_b, r.d_a, 1e-13, 1e-300);
    }
  }

  TEST_CASE("Bregman forms (E3', E4') equal the KL definitions at moderate arguments") {
    std::mt19937_64 rng(13);
    std::uniform_real_distribution<double> u(-8, 8);
    for (int i = 0; i < 500; ++i) {
      const long double a = static_cast<long double>(u(rng)), b = static_cast<long double>(u(rng));
      const auto ls = [](long double x) { return -std::log1p(std::exp(-x)); };  // log sigma, long double
      const auto sl = [](long double x) { return 1 / (1 + std::exp(-x)); };
      // KL(Bern σ(b) ‖ Bern σ(a)) = σ(b)(log σ(b) − log σ(a)) + σ(−b)(log σ(−b) − log σ(−a))
      const long double kl_ba = sl(b) * (ls(b) - ls(a)) + sl(-b) * (ls(-b) - ls(-a));
      const long double kl_ab = sl(a) * (ls(a) - ls(b)) + sl(-a) * (ls(-a) - ls(-b));
      const double ad = static_cast<double>(a), bd = static_cast<double>(b);
      CHECK_CLOSE(bernoulli_bwd_kl{}.value_and_grad(ad, bd).value, static_cast<double>(kl_ba), 1e-12, 1e-15);
      CHECK_CLOSE(bernoulli_fwd_kl{}.value_and_grad(ad, bd).value, static_cast<double>(kl_ab), 1e-12, 1e-15);
    }
  }

  TEST_CASE("logistic = D_bwd + H2(sigma(b)), and both tend to softplus(-a) as b grows (RPO.md E4', 10.3)") {
    std::mt19937_64 rng(17);
    std::uniform_real_distribution<double> u(-20, 20);
    for (int i = 0; i < 500; ++i) {
      const double a = u(rng), b = u(rng);
      const double q = sig(b);
      const double h2 = -q * std::log(q) - (1 - q) * std::log1p(-q);
      const auto lg = logistic{}.value_and_grad(a, b);
      const auto bw = bernoulli_bwd_kl{}.value_and_grad(a, b);
      CHECK_CLOSE(lg.value, bw.value + h2, 1e-12, 1e-13);
      CHECK_CLOSE(lg.d_a, bw.d_a, 1e-13, 1e-300);
    }
    const auto hard = logistic{}.value_and_grad(0.7, rpo::infinite_target);
    CHECK_CLOSE(hard.value, std::log1p(std::exp(-0.7)), 1e-15, 0);
    CHECK_CLOSE(hard.d_a, -sig(-0.7), 1e-15, 0);
  }

  TEST_CASE("RPO.md 10.3: D_bwd(a || b) + log sigma(a) = a sigma(-b) - H2(sigma(b)) -> 0 as b grows") {
    const double a = 0.7;
    const double printed[][2] = {{5, -3.549e-2}, {10, -4.676e-4}, {20, -4.18e-8}, {40, -1.7e-16}};
    for (const auto& row : printed) {
      const double b = row[0], value = row[1];
      CAPTURE(b);
      const double q = sig(b), q_bar = sig(-b);
      const double closed_form = a * q_bar - (-q * std::log(q) - q_bar * std::log(q_bar));
      const double dpo = bernoulli_bwd_kl{}.value_and_grad(a, rpo::infinite_target).value;  // = −log σ(a)
      const double difference = bernoulli_bwd_kl{}.value_and_grad(a, b).value - dpo;
      // The difference of two O(1) numbers is resolved to ~1e-16 absolute; the table prints 3-4 digits.
      CHECK_CLOSE(difference, closed_form, 1e-10, 1e-15);
      CHECK_CLOSE(difference, value, 2e-3, 1e-16);
    }
  }

  TEST_CASE_TEMPLATE("finite values and gradients for |a|, |b| up to 1e4 (float) and 1e15 (double)", T, float, double) {
    const T top = std::is_same_v<T, float> ? T(1e4) : T(1e15);
    const T values[] = {-top, -top / T(3), T(-1), T(0), T(1e-6), T(1), top / T(7), top};
    for (T a : values)
      for (T b : values) {
        CAPTURE(a);
        CAPTURE(b);
        const auto each = [&](const auto& g) {
          CHECK(std::isfinite(g.value));
          CHECK(g.value >= T(0));
          CHECK(std::isfinite(g.d_a));
          CHECK(std::isfinite(g.d_b));
        };
        each(squared{}.value_and_grad(a, b));
        each(bernoulli_bwd_kl{}.value_and_grad(a, b));
        each(bernoulli_fwd_kl{}.value_and_grad(a, b));
        each(logistic{}.value_and_grad(a, b));
        each(bernoulli_bwd_kl{}.value_and_grad(a, rpo::infinite_target));
        each(logistic{}.value_and_grad(a, rpo::infinite_target));
        each(hinge{}.value_and_grad(a, rpo::infinite_target));
      }
  }

  TEST_CASE("D_sq overflows to +inf (never NaN) where (a - b)^2 exceeds the range: its gradient stays finite") {
    const auto g = squared{}.value_and_grad(1e20f, -1e20f);
    CHECK(g.value == std::numeric_limits<float>::infinity());
    CHECK(std::isfinite(g.d_a));
    CHECK(std::isfinite(g.d_b));
    // a − b overflows: the KLs are +inf too, and every partial is a number (σ'(a)·(a − b) underflows to 0).
    for (const auto& [a, b] : {std::pair{3e38f, -3e38f}, std::pair{-3e38f, 3e38f}}) {
      const auto bwd = bernoulli_bwd_kl{}.value_and_grad(a, b), fwd = bernoulli_fwd_kl{}.value_and_grad(a, b);
      CHECK(bwd.value == std::numeric_limits<float>::infinity());
      CHECK(fwd.value == std::numeric_limits<float>::infinity());
      CHECK(std::isfinite(bwd.d_a));
      CHECK(std::isfinite(bwd.d_b));
      CHECK(std::isfinite(fwd.d_a));
      CHECK(std::isfinite(fwd.d_b));
    }
  }

  TEST_CASE("every distance is zero at a = b and positive elsewhere: the hinge is zero beyond its margin") {
    for (double a : {-7.0, 0.0, 0.3, 44.0}) {
      CHECK(squared{}.value_and_grad(a, a).value == 0);
      CHECK(bernoulli_bwd_kl{}.value_and_grad(a, a).value == 0);
      CHECK(bernoulli_fwd_kl{}.value_and_grad(a, a).value == 0);
      CHECK(bernoulli_bwd_kl{}.value_and_grad(a, a).d_a == 0);
      CHECK(bernoulli_bwd_kl{}.value_and_grad(a, a + 1e-3).value > 0);
      CHECK(bernoulli_fwd_kl{}.value_and_grad(a, a + 1e-3).value > 0);
    }
    CHECK(hinge{}.value_and_grad(1.5, rpo::infinite_target).value == 0);
    CHECK(hinge{}.value_and_grad(1.5, rpo::infinite_target).d_a == 0);
    CHECK(hinge{}.value_and_grad(0.25, rpo::infinite_target).value == 0.75);
    CHECK(hinge{}.value_and_grad(0.25, rpo::infinite_target).d_a == -1);
  }
}
