// Pairs a block at a time (rpo/detail/pair_block.hpp): the vector exp, log1p, log, expm1 and log1mexp against the C
// library in long double, the reward models' vector forms (rpo/detail/reward_lanes.hpp) against their scalar ones,
// and rpo::evaluate on the presets that take the block path against their one-pair kernels (rpo::loss::evaluate),
// on random batches of every length around the vector width and the block size, and at extreme gaps. Compiled with
// -ffp-contract=off (tests/CMakeLists.txt), so that both paths round the rewards and gaps alike.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/batchwise.hpp"
#include "rpo/detail/pair_block.hpp"
#include "rpo/detail/vexp.hpp"
#include "rpo/presets.hpp"

namespace {

/// |y − exact| in units of the last place of T at `exact` (the subnormal spacing below the smallest normal).
template <class T> double ulps(T y, long double exact) {
  const T rounded = static_cast<T>(exact);
  const T up = std::nextafter(std::fabs(rounded), std::numeric_limits<T>::infinity());
  const double ulp = static_cast<double>(up - std::fabs(rounded));
  return static_cast<double>(std::fabs(static_cast<long double>(y) - exact)) / ulp;
}

/// f applied by the vector function `lanes` to every x, in whole vectors.
template <class T, class F> std::vector<T> on_lanes(const std::vector<T>& x, F lanes) {
  using V = rpo::detail::simd<T>;
  std::vector<T> in(x), out(x.size() + static_cast<std::size_t>(V::lanes));
  in.resize(out.size(), T(0));
  for (std::size_t i = 0; i < x.size(); i += static_cast<std::size_t>(V::lanes))
    V::store(out.data() + i, lanes(V::load(in.data() + i)));
  out.resize(x.size());
  return out;
}

/// A batch of `pairs` pairs whose gaps β(ℓ_c − ℓ_r) spread over ±`spread` (with DPO's β = 0.1), with lengths and
/// rewards for the presets that read them: the chosen one above the rejected one when `ranked`, else both uniform on
/// [−3, 3] (margins of either sign).
template <class T> struct pair_batch {
  std::vector<T> logp, ref_logp, length, reward;
  pair_batch(std::int64_t pairs, double spread, std::uint64_t seed, bool ranked = true) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> lp(-200, -5), unit(-1, 1), len(1, 200), r(-3, 3);
    const auto n = static_cast<std::size_t>(2 * pairs);
    logp.resize(n), ref_logp.resize(n), length.resize(n), reward.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      logp[i] = static_cast<T>(lp(rng));
      ref_logp[i] = static_cast<T>(static_cast<double>(logp[i]) + 10 * spread * unit(rng));
      length[i] = static_cast<T>(std::round(len(rng)));
      reward[i] = static_cast<T>(r(rng));
    }
    if (ranked)
      for (std::size_t i = 0; i < n; i += 2) reward[i] = reward[i + 1] + static_cast<T>(0.5 + 2 * std::fabs(unit(rng)));
  }
  rpo::batch_input<T> input() const { return {logp, ref_logp, length, reward, {}}; }
};

/// rpo::evaluate's per-pair losses and gradients (the block path) against the composition's one-pair kernel, to
/// `ulp` ulp of each value plus 64 ulp of the batch's largest finite one (DiscoPOP's gradient subtracts terms of that
/// size; for the losses, of at least 1).
template <class P, class T> void check_blocks_equal_pairs(const P& preset, std::int64_t pairs, double spread,
                                                          std::uint64_t seed, double ulp, bool ranked) {
  const auto composed = rpo::as_loss(preset);
  const pair_batch<T> b(pairs, spread, seed, ranked);
  const auto n = static_cast<std::size_t>(2 * pairs);
  std::vector<T> loss(static_cast<std::size_t>(pairs)), grad(n), grad_ref(n);
  rpo::evaluate(preset, b.input(), rpo::batch_output<T>{loss, grad, grad_ref}, rpo::reduction::sum());
  std::vector<T> want_loss(loss.size()), want_grad(n), want_ref(n);
  for (std::size_t i = 0; i < loss.size(); ++i) {
    const rpo::group_ref<T> group{&b.logp[2 * i], &b.ref_logp[2 * i], &b.length[2 * i], &b.reward[2 * i], 2};
    want_loss[i] = composed.evaluate(group, &want_grad[2 * i], &want_ref[2 * i]);
  }
  const auto eps = static_cast<double>(std::numeric_limits<T>::epsilon());
  // `largest` starts at `floor`: 1 for the losses, whose terms are O(1) also where they cancel to a small value
  // (robust DPO's (1−ε)·softplus(−a) − ε·softplus(a) crosses 0).
  const auto check = [&](const std::vector<T>& got, const std::vector<T>& want, const char* what, double floor) {
    double largest = floor;
    for (const T w : want)
      if (std::isfinite(w)) largest = std::max(largest, static_cast<double>(std::fabs(w)));
    for (std::size_t i = 0; i < got.size(); ++i) {
      const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
      // +inf only where the true value is (DiscoPOP with τ > 1 far below 0), and then in both.
      REQUIRE_MESSAGE(std::isfinite(g) == std::isfinite(w),
                      std::string(what) << "[" << i << "] = " << g << ", one pair at a time " << w);
      if (!std::isfinite(w)) {
        REQUIRE(g == w);
        continue;
      }
      const double tol =
          ulp * eps * std::fabs(w) + 64 * eps * largest + static_cast<double>(std::numeric_limits<T>::denorm_min());
      REQUIRE_MESSAGE(std::fabs(g - w) <= tol, std::string(what) << "[" << i << "] = " << g << ", one pair at a time "
                                                                 << w << " (pairs " << pairs << ", spread " << spread
                                                                 << ", " << std::string(P::name) << ")");
    }
  };
  check(loss, want_loss, "group_loss", 1);
  check(grad, want_grad, "grad_logp", 0);
  check(grad_ref, want_ref, "grad_ref_logp", 0);
}

/// `ulp`: 8 by default. DiscoPOP's m·e^{−a} = exp(log σ(a/τ) − a) and FocalPO's P^γ = exp(−γ·softplus(−a)) take an
/// exponential of an argument of size up to |a| (times γ), whose rounding of |a|·ε becomes a relative error of |a|·ε in
/// the result: 8·10⁴ ulp covers the gaps up to ±10⁴ here. `ranked`: as pair_batch's.
template <class P> void check_preset_blocks(const P& preset, double ulp = 8, bool ranked = true) {
  using C = decltype(rpo::as_loss(preset));
  static_assert(rpo::detail::evaluates_pair_blocks<C, double> && rpo::detail::evaluates_pair_blocks<C, float>,
                "the preset should take the block path");
  // Lengths around one vector, one block (256 pairs) and one chunk (2048 pairs) of the batch layer.
  for (const std::int64_t pairs : {1, 3, 7, 8, 9, 17, 255, 256, 257, 2051}) {
    check_blocks_equal_pairs<P, double>(preset, pairs, 1, static_cast<std::uint64_t>(pairs), ulp, ranked);
    check_blocks_equal_pairs<P, float>(preset, pairs, 1, static_cast<std::uint64_t>(pairs), ulp, ranked);
  }
  // Gaps up to ±1e3 and ±1e5: e^{−|a|} subnormal or 0, softplus(−a) ≈ −a or ≈ e^{−a}.
  for (const double spread : {100.0, 1e4}) {
    check_blocks_equal_pairs<P, double>(preset, 300, spread, 11, ulp, ranked);
    check_blocks_equal_pairs<P, float>(preset, 300, spread, 12, ulp, ranked);
  }
}

}  // namespace

TEST_SUITE("pair_block") {
  TEST_CASE_TEMPLATE("exp_gradual: within 2 ulp of e^x over the whole range, subnormal results included", T, float,
                     double) {
    using V = rpo::detail::simd<T>;
    const double lo = std::is_same_v<T, float> ? -103.9 : -745.1, hi = std::is_same_v<T, float> ? 88.3 : 709.0;
    std::vector<T> x(200001);
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = static_cast<T>(lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(x.size() - 1));
    const std::vector<T> y = on_lanes(x, [](typename V::vec v) { return V::exp_gradual(v); });
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      worst = std::max(worst, ulps(y[i], std::exp(static_cast<long double>(x[i]))));
    CHECK_MESSAGE(worst <= 2.0, "worst error " << worst << " ulp");
    const T inf = std::numeric_limits<T>::infinity();
    const std::vector<T> special{-inf, T(-1e30), T(-1000), T(0), T(1000), T(1e30), inf};
    const std::vector<T> e = on_lanes(special, [](typename V::vec v) { return V::exp_gradual(v); });
    for (std::size_t i = 0; i < special.size(); ++i)
      CHECK_MESSAGE(e[i] == std::exp(special[i]), "exp_gradual(" << special[i] << ") = " << e[i]);
    const std::vector<T> nan = on_lanes(std::vector<T>{std::numeric_limits<T>::quiet_NaN()},
                                        [](typename V::vec v) { return V::exp_gradual(v); });
    CHECK(std::isnan(nan[0]));
  }

  TEST_CASE_TEMPLATE("log1p_unit: within 2 ulp of log1p(e) on [0, 1], down to the subnormals", T, float, double) {
    using V = rpo::detail::simd<T>;
    std::vector<T> e;
    for (int i = 0; i <= 100000; ++i) e.push_back(static_cast<T>(i / 100000.0));
    for (int k = std::numeric_limits<T>::min_exponent - std::numeric_limits<T>::digits; k < 0; ++k)
      for (const double m : {1.0, 1.37, 1.83}) e.push_back(static_cast<T>(std::ldexp(m, k)));
    const std::vector<T> y = on_lanes(e, [](typename V::vec v) { return V::log1p_unit(v); });
    double worst = 0;
    for (std::size_t i = 0; i < e.size(); ++i)
      worst = std::max(worst, ulps(y[i], std::log1p(static_cast<long double>(e[i]))));
    CHECK_MESSAGE(worst <= 2.0, "worst error " << worst << " ulp");
  }

  TEST_CASE_TEMPLATE("log1p_unit: within 2 ulp of log1p(e) on [-1/2, 0] (log's range of m - 1)", T, float, double) {
    using V = rpo::detail::simd<T>;
    std::vector<T> e;
    for (int i = 0; i <= 100000; ++i) e.push_back(static_cast<T>(-0.5 * i / 100000.0));
    for (int k = std::numeric_limits<T>::min_exponent - std::numeric_limits<T>::digits; k < -1; ++k)
      e.push_back(static_cast<T>(-std::ldexp(1.37, k)));
    const std::vector<T> y = on_lanes(e, [](typename V::vec v) { return V::log1p_unit(v); });
    double worst = 0;
    for (std::size_t i = 0; i < e.size(); ++i)
      worst = std::max(worst, ulps(y[i], std::log1p(static_cast<long double>(e[i]))));
    CHECK_MESSAGE(worst <= 2.0, "worst error " << worst << " ulp");
  }

  TEST_CASE_TEMPLATE("log: within 2 ulp of log(x) from the smallest subnormal to the largest finite value", T, float,
                     double) {
    using V = rpo::detail::simd<T>;
    using limits = std::numeric_limits<T>;
    std::vector<T> x;
    // Every binade, 40 points in each, and a dense grid around 1 (where log1p(m − 1) carries the result).
    for (int k = limits::min_exponent - limits::digits; k < limits::max_exponent; ++k)
      for (int j = 0; j < 40; ++j) x.push_back(static_cast<T>(std::ldexp(1.0 + j / 40.0, k)));
    for (int i = 0; i <= 100000; ++i) x.push_back(static_cast<T>(0.5 + 1.5 * i / 100000.0));
    x.push_back(limits::denorm_min());
    x.push_back(limits::min());
    x.push_back(limits::max());
    const std::vector<T> y = on_lanes(x, [](typename V::vec v) { return V::log(v); });
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
      if (!std::isfinite(x[i]) || x[i] == T(1)) continue;
      worst = std::max(worst, ulps(y[i], std::log(static_cast<long double>(x[i]))));
    }
    CHECK_MESSAGE(worst <= 2.0, "worst error " << worst << " ulp");
    const T inf = limits::infinity();
    const std::vector<T> special{T(0), T(-0.0), T(1), inf, T(-1), -inf, limits::quiet_NaN()};
    const std::vector<T> s = on_lanes(special, [](typename V::vec v) { return V::log(v); });
    CHECK(s[0] == -inf);
    CHECK(s[1] == -inf);
    CHECK(s[2] == T(0));
    CHECK(s[3] == inf);
    CHECK(std::isnan(s[4]));
    CHECK(std::isnan(s[5]));
    CHECK(std::isnan(s[6]));
  }

  TEST_CASE_TEMPLATE("expm1_lanes and log1mexp_lanes: a few ulp of expm1 and log(1 - e^x)", T, float, double) {
    using V = rpo::detail::simd<T>;
    // Both sides of expm1's switch at |x| = 1 and of log1mexp's at −ln 2, tiny arguments, and the far tails.
    std::vector<T> x;
    for (int i = 0; i <= 100000; ++i) x.push_back(static_cast<T>(-3 + 6.0 * i / 100000.0));
    for (int k = -140; k <= 6; ++k)
      for (const double m : {1.0, 1.37, 1.83}) x.push_back(static_cast<T>(-std::ldexp(m, k)));
    const std::vector<T> e = on_lanes(x, [](typename V::vec v) { return rpo::detail::expm1_lanes<T>(v); });
    double worst = 0;
    for (std::size_t i = 0; i < x.size(); ++i)
      worst = std::max(worst, ulps(e[i], std::expm1(static_cast<long double>(x[i]))));
    CHECK_MESSAGE(worst <= 4.0, "expm1: worst error " << worst << " ulp");
    std::vector<T> negative;
    for (const T v : x)
      if (v < T(0)) negative.push_back(v);
    const std::vector<T> l = on_lanes(negative, [](typename V::vec v) { return rpo::detail::log1mexp_lanes<T>(v); });
    worst = 0;
    for (std::size_t i = 0; i < negative.size(); ++i) {
      const auto v = static_cast<long double>(negative[i]);
      const long double exact = v > -0.6931471805599453094L ? std::log(-std::expm1(v)) : std::log1p(-std::exp(v));
      worst = std::max(worst, ulps(l[i], exact));
    }
    CHECK_MESSAGE(worst <= 4.0, "log1mexp: worst error " << worst << " ulp");
    const std::vector<T> zero =
        on_lanes(std::vector<T>{T(0)}, [](typename V::vec v) { return rpo::detail::log1mexp_lanes<T>(v); });
    CHECK(zero[0] == -std::numeric_limits<T>::infinity());
  }

  TEST_CASE_TEMPLATE("reward_lanes equals the scalar reward models, clamps included", T, float, double) {
    using V = rpo::detail::simd<T>;
    namespace reward = rpo::reward;
    // Log-probs from −1e5 to 0 (and ORPO's logp ≥ 0, where the log-odds are clamped), log-ratios of either sign up to
    // 1e5 (the exponents clamped at 80), lengths 1 to 1000.
    std::vector<T> logp, ref_logp, length;
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> unit(0, 1);
    for (int i = 0; i < 20000; ++i) {
      const double scale = std::pow(10.0, 6 * unit(rng) - 1);  // 0.1 .. 1e5
      logp.push_back(static_cast<T>(-scale * unit(rng)));
      ref_logp.push_back(static_cast<T>(static_cast<double>(logp.back()) + scale * (2 * unit(rng) - 1)));
      length.push_back(static_cast<T>(std::round(1 + 999 * unit(rng) * unit(rng))));
    }
    for (const T special : {T(0), T(1), T(-1e-30), -std::numeric_limits<T>::denorm_min()}) {
      logp.push_back(special);
      ref_logp.push_back(T(0));
      length.push_back(T(1));
    }
    const auto check = [&](const auto& r, const char* name) {
      const std::size_t n = logp.size(), padded = (n + V::lanes - 1) / V::lanes * V::lanes;
      std::vector<T> lp(logp), rl(ref_logp), len(length);
      lp.resize(padded, T(-1)), rl.resize(padded, T(0)), len.resize(padded, T(1));
      for (std::size_t i = 0; i < n; i += static_cast<std::size_t>(V::lanes)) {
        typename V::vec lanes[3];
        rpo::detail::reward_lanes<std::decay_t<decltype(r)>, T>(r, V::load(&lp[i]), V::load(&rl[i]), V::load(&len[i]),
                                                               lanes[0], lanes[1], lanes[2]);
        T v[V::lanes], dl[V::lanes], dr[V::lanes];
        V::store(v, lanes[0]), V::store(dl, lanes[1]), V::store(dr, lanes[2]);
        for (std::size_t k = 0; k < static_cast<std::size_t>(V::lanes) && i + k < n; ++k) {
          const rpo::reward_grad<T> want = r.value_and_grad(lp[i + k], rl[i + k], len[i + k]);
          const auto near = [](T got, T w, double terms) {
            return (std::isinf(w) && got == w) ||
                   std::fabs(static_cast<double>(got) - static_cast<double>(w)) <=
                       8 * static_cast<double>(std::numeric_limits<T>::epsilon()) *
                           (std::fabs(static_cast<double>(w)) + terms) +
                       static_cast<double>(std::numeric_limits<T>::denorm_min());
          };
          // The log-odds β(ā − log1mexp(ā)) subtract two terms of about β(1 + |ā|) near ā = −ln 2: both sides lose
          // the same digits there (the scalar form as much), so their distance is a few ulp of the terms.
          const double terms = std::is_same_v<std::decay_t<decltype(r)>, reward::log_odds>
                                   ? r.beta * (1 + std::fabs(static_cast<double>(lp[i + k] / len[i + k])))
                                   : 0.0;
          INFO(std::string(name) << " at logp " << lp[i + k] << ", ref_logp " << rl[i + k] << ", length "
                                 << len[i + k]);
          REQUIRE_MESSAGE(near(v[k], want.value, terms), "value " << v[k] << " vs " << want.value);
          REQUIRE_MESSAGE(near(dl[k], want.d_logp, 0), "d_logp " << dl[k] << " vs " << want.d_logp);
          REQUIRE_MESSAGE(near(dr[k], want.d_ref_logp, 0), "d_ref_logp " << dr[k] << " vs " << want.d_ref_logp);
        }
      }
    };
    check(reward::alpha_shaped{}, "alpha_shaped");
    check(reward::alpha_shaped{.beta = 1, .alpha = 0}, "alpha_shaped (alpha = 0)");
    check(reward::alpha_shaped{.beta = 1, .alpha = -0.5}, "alpha_shaped (alpha < 0)");
    check(reward::f_divergence{.kind = reward::f_divergence_kind::forward_kl}, "forward_kl");
    check(reward::f_divergence{.kind = reward::f_divergence_kind::jensen_shannon}, "jensen_shannon");
    check(reward::f_divergence{.kind = reward::f_divergence_kind::alpha, .alpha = 0.5}, "alpha");
    check(reward::f_divergence{.kind = reward::f_divergence_kind::alpha, .alpha = 1}, "alpha = 1");
    check(reward::f_divergence{.kind = reward::f_divergence_kind::reverse_kl}, "reverse_kl");
    check(reward::log_odds{}, "log_odds");
  }

  TEST_CASE("the squared and hinge distances and the group schemes keep the one-group loop") {
    using rpo::detail::evaluates_pair_blocks;
    CHECK(evaluates_pair_blocks<decltype(rpo::as_loss(rpo::dpo{})), double>);
    CHECK_FALSE(evaluates_pair_blocks<decltype(rpo::as_loss(rpo::ipo{})), double>);
    CHECK_FALSE(evaluates_pair_blocks<decltype(rpo::as_loss(rpo::rpo_sq{})), double>);
    CHECK_FALSE(evaluates_pair_blocks<decltype(rpo::as_loss(rpo::hinge{})), double>);
    CHECK_FALSE(evaluates_pair_blocks<decltype(rpo::as_loss(rpo::rpo_sqloo{})), double>);
  }

  TEST_CASE("rpo::evaluate a block at a time equals the one-pair kernels: distances to a finite target") {
    // Both regimes of B_softplus and of σ(a) − σ(b) (|a − b| below and above 1) occur at spread 1 and beyond.
    check_preset_blocks(rpo::rpo_bwd{});
    check_preset_blocks(rpo::rpo_fwd{});
    check_preset_blocks(rpo::cdpo{});
    check_preset_blocks(rpo::exo_pair{});
    check_preset_blocks(rpo::dno{});
    check_preset_blocks(rpo::rpo_bwd{.beta = 3, .eta = 0.2});
  }

  TEST_CASE("rpo::evaluate a block at a time equals the one-pair kernels: DPO and its reward models") {
    check_preset_blocks(rpo::dpo{});
    check_preset_blocks(rpo::dpo{.beta = 2.5});
    check_preset_blocks(rpo::dpo_normalized{});
    check_preset_blocks(rpo::simpo{});
    check_preset_blocks(rpo::cpo_pref{});
    check_preset_blocks(rpo::rdpo{});
    check_preset_blocks(rpo::hdpo{});
    check_preset_blocks(rpo::odpo{});
  }

  TEST_CASE("rpo::evaluate a block at a time equals the one-pair kernels: f-DPO and AlphaPO rewards") {
    check_preset_blocks(rpo::alphapo{});
    check_preset_blocks(rpo::fdpo_forward_kl{});
    check_preset_blocks(rpo::fdpo_js{});
    check_preset_blocks(rpo::fdpo_alpha{});
  }

  TEST_CASE("rpo::evaluate a block at a time equals the one-pair kernels: sums with an NLL term") {
    check_preset_blocks(rpo::cpo{});
    check_preset_blocks(rpo::irpo{});
    check_preset_blocks(rpo::orpo{});
    check_preset_blocks(rpo::mpo{});
  }

  TEST_CASE("rpo::evaluate a block at a time equals the one-pair kernels: the pairwise methods outside the template") {
    check_preset_blocks(rpo::robust_dpo{});
    check_preset_blocks(rpo::nca_pair{});
    check_preset_blocks(rpo::bco_pair{});
    check_preset_blocks(rpo::bco_pair{.delta = 0.7});
    check_preset_blocks(rpo::apo_zero{});
    check_preset_blocks(rpo::apo_down{});
    check_preset_blocks(rpo::dpop{});
    check_preset_blocks(rpo::dpo_shift{});
    // MADPO's weight on margins of either sign, both sides of −τ (1 here) and of the switch in c(|m|) at τ.
    check_preset_blocks(rpo::madpo{});
    check_preset_blocks(rpo::madpo{}, 8, false);
    check_preset_blocks(rpo::madpo{.tau = 1}, 8, false);
  }

  TEST_CASE("rpo::evaluate a block at a time equals the one-pair kernels: FocalPO and DiscoPOP") {
    check_preset_blocks(rpo::focalpo{});
    check_preset_blocks(rpo::focalpo{.gamma = 2}, 8e4);  // P^γ = exp(−γ·softplus(−a)): the same conditioning
    check_preset_blocks(rpo::discopop{}, 8e4);
    check_preset_blocks(rpo::discopop{.tau = 3}, 8e4);
  }

  TEST_CASE("a pair's results do not depend on where it sits in the batch, nor on offsets") {
    const pair_batch<double> b(2051, 1, 5);
    std::vector<double> loss(2051), grad(4102);
    rpo::evaluate(rpo::dpo{}, b.input(), rpo::batch_output<double>{.group_loss = loss, .grad_logp = grad},
                  rpo::reduction::sum());
    // The same pairs from pair 5 on, with offsets: each pair's loss and gradient to the last bit.
    std::vector<std::int64_t> offsets;
    for (std::int64_t o = 0; o <= 2 * 2046; o += 2) offsets.push_back(o);
    const auto tail = [](const std::vector<double>& v) { return std::span<const double>(v).subspan(10); };
    std::vector<double> loss2(2046), grad2(4092);
    rpo::evaluate(rpo::dpo{},
                  rpo::batch_input<double>{.logp = tail(b.logp), .ref_logp = tail(b.ref_logp), .offsets = offsets},
                  rpo::batch_output<double>{.group_loss = loss2, .grad_logp = grad2}, rpo::reduction::sum());
    for (std::size_t i = 0; i < loss2.size(); ++i) {
      REQUIRE(loss2[i] == loss[i + 5]);
      REQUIRE(grad2[2 * i] == grad[2 * i + 10]);
      REQUIRE(grad2[2 * i + 1] == grad[2 * i + 11]);
    }
  }

  TEST_CASE_TEMPLATE("a batch of more than 4 MiB (streaming stores, unaligned outputs) equals the same pairs in pieces",
                     T, float, double) {
    const std::int64_t pairs = (std::int64_t{1} << 22) / static_cast<std::int64_t>(sizeof(T)) / 2 + 1001;
    const pair_batch<T> b(pairs, 1, 9);
    const auto n = static_cast<std::size_t>(2 * pairs);
    // Outputs one element past an aligned start, so that the stores begin with the unaligned head.
    std::vector<T> grad(n + 1), ref(n + 1), loss(static_cast<std::size_t>(pairs));
    rpo::evaluate(rpo::dpo{}, b.input(),
                  rpo::batch_output<T>{loss, std::span<T>(grad).subspan(1), std::span<T>(ref).subspan(1)},
                  rpo::reduction::sum());
    std::vector<T> piece_grad(n), piece_ref(n), piece_loss(loss.size());
    const std::size_t step = 4096;  // responses: 2048 pairs, well under 4 MiB
    for (std::size_t i = 0; i < n; i += step) {
      const std::size_t m = std::min(step, n - i);
      const auto part = [&](const std::vector<T>& v) { return std::span<const T>(v).subspan(i, m); };
      rpo::evaluate(rpo::dpo{}, rpo::batch_input<T>{.logp = part(b.logp), .ref_logp = part(b.ref_logp)},
                    rpo::batch_output<T>{std::span<T>(piece_loss).subspan(i / 2, m / 2),
                                         std::span<T>(piece_grad).subspan(i, m), std::span<T>(piece_ref).subspan(i, m)},
                    rpo::reduction::sum());
    }
    for (std::size_t i = 0; i < n; ++i) {
      REQUIRE(grad[i + 1] == piece_grad[i]);
      REQUIRE(ref[i + 1] == piece_ref[i]);
    }
    for (std::size_t i = 0; i < loss.size(); ++i) REQUIRE(loss[i] == piece_loss[i]);
  }
}
