// Token weightings (rpo/token_weighting.hpp): LD-DPO's length-desensitised sequence log-probs (LOSSES.md §1.17)
// and their chain rule, against a reduction written out independently here (the response tokens of each sequence
// listed in order, then the head of n_min and the tail), rpo::sequence_logp at α = 1, and finite differences of
// (loss ∘ reduction), in float and double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo/presets.hpp"
#include "rpo/token.hpp"
#include "rpo/token_weighting.hpp"
#include "support/close.hpp"
#include "support/expect_error.hpp"
#include "support/gradient_check.hpp"

namespace {

/// Per-token log-probs of S sequences of T positions, with masks that have gaps (each position a response token
/// with probability 0.7, so lengths differ and the response tokens are not contiguous).
struct ld_case {
  rpo::token_shape shape;
  std::vector<double> token_logp, ref_token_logp;
  std::vector<std::uint8_t> mask;
  ld_case(std::int64_t sequences, std::int64_t tokens, std::uint64_t seed) : shape{sequences, tokens, 0} {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> lp(-6.0, -0.01);
    std::bernoulli_distribution response(0.7);
    const auto rows = static_cast<std::size_t>(sequences * tokens);
    for (std::size_t i = 0; i < rows; ++i) {
      token_logp.push_back(lp(rng));
      ref_token_logp.push_back(lp(rng));
      mask.push_back(response(rng) ? 1 : 0);
    }
  }
};

/// The response-token indices of sequence s, in order: the independent reading of "counted over response tokens".
std::vector<std::size_t> response_tokens(const std::vector<std::uint8_t>& mask, std::int64_t s, std::int64_t tokens) {
  std::vector<std::size_t> out;
  for (std::int64_t t = 0; t < tokens; ++t) {
    const auto i = static_cast<std::size_t>(s * tokens + t);
    if (mask.empty() || mask[i] != 0) out.push_back(i);
  }
  return out;
}

/// LOSSES.md §1.17 written out: per pair, n_min = min(n_c, n_r); Σ of the first n_min listed tokens + α·Σ of the rest.
std::vector<double> reference_ld(const std::vector<double>& lp, const std::vector<std::uint8_t>& mask,
                                 rpo::token_shape shape, double alpha) {
  std::vector<double> out;
  for (std::int64_t p = 0; p < shape.sequences / 2; ++p) {
    const auto c = response_tokens(mask, 2 * p, shape.tokens), r = response_tokens(mask, 2 * p + 1, shape.tokens);
    const std::size_t n_min = std::min(c.size(), r.size());
    for (const auto& seq : {c, r}) {
      double head = 0, tail = 0;
      for (std::size_t k = 0; k < seq.size(); ++k) (k < n_min ? head : tail) += lp[seq[k]];
      out.push_back(head + alpha * tail);
    }
  }
  return out;
}

template <class T> std::vector<T> as(const std::vector<double>& v) { return {v.begin(), v.end()}; }

/// DPO (or any pairwise loss) evaluated on the LD reductions of the policy's and the reference's per-token
/// log-probs: the function whose token gradient the tests check.
template <class L, class T>
T ld_loss(const L& loss, const std::vector<T>& lp, const std::vector<T>& ref, const std::vector<std::uint8_t>& mask,
          rpo::token_shape shape, double alpha, std::vector<T>* grad_lp = nullptr, std::vector<T>* grad_ref = nullptr) {
  const auto S = static_cast<std::size_t>(shape.sequences);
  std::vector<T> seq(S), seq_ref(S), g(S), g_ref(S);
  rpo::length_desensitized_logp<T>(lp, mask, shape, alpha, seq);
  rpo::length_desensitized_logp<T>(ref, mask, shape, alpha, seq_ref);
  const T value = rpo::evaluate(loss, rpo::batch_input<T>{.logp = seq, .ref_logp = seq_ref},
                                rpo::batch_output<T>{.grad_logp = g, .grad_ref_logp = g_ref});
  if (grad_lp != nullptr) {
    grad_lp->assign(lp.size(), T(0));
    rpo::length_desensitized_logp_backward<T>(g, mask, shape, alpha, *grad_lp);
  }
  if (grad_ref != nullptr) {
    grad_ref->assign(ref.size(), T(0));
    rpo::length_desensitized_logp_backward<T>(g_ref, mask, shape, alpha, *grad_ref);
  }
  return value;
}

}  // namespace

TEST_SUITE("token_weighting") {
  TEST_CASE_TEMPLATE("LD-DPO: logp~ equals the head-and-tail sum written out, for alpha in [0, 1] and masks with gaps",
                     T, float, double) {
    const double rtol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    const ld_case c(8, 13, 1);
    for (const double alpha : {0.0, 0.25, 0.5, 0.9, 1.0}) {
      CAPTURE(alpha);
      const std::vector<T> lp = as<T>(c.token_logp);
      std::vector<T> got(8);
      rpo::length_desensitized_logp<T>(lp, c.mask, c.shape, alpha, got);
      const std::vector<double> ref = reference_ld({lp.begin(), lp.end()}, c.mask, c.shape, alpha);
      for (std::size_t s = 0; s < got.size(); ++s) CHECK_CLOSE(got[s], ref[s], rtol, 0);
    }
  }

  TEST_CASE_TEMPLATE("LD-DPO: alpha = 1 is rpo::sequence_logp's sum, alpha = 0 the sum of the first n_min tokens", T,
                     float, double) {
    const double rtol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    const ld_case c(10, 9, 2);
    const std::vector<T> lp = as<T>(c.token_logp);
    std::vector<T> ld(10), plain(10);
    rpo::length_desensitized_logp<T>(lp, c.mask, c.shape, 1.0, ld);
    rpo::sequence_logp<T>(lp, c.mask, c.shape, rpo::token_reduction::sum, plain);
    for (std::size_t s = 0; s < ld.size(); ++s) CHECK_CLOSE(ld[s], plain[s], rtol, 0);

    // α = 0: only the first n_min response tokens count; the longer response of each pair loses its tail.
    rpo::length_desensitized_logp<T>(lp, c.mask, c.shape, 0.0, ld);
    bool some_tail = false;
    for (std::int64_t p = 0; p < 5; ++p) {
      const auto chosen = response_tokens(c.mask, 2 * p, 9), rejected = response_tokens(c.mask, 2 * p + 1, 9);
      const std::size_t n_min = std::min(chosen.size(), rejected.size());
      some_tail = some_tail || chosen.size() != rejected.size();
      for (int side = 0; side < 2; ++side) {
        const auto& toks = side == 0 ? chosen : rejected;
        double head = 0;
        for (std::size_t k = 0; k < n_min; ++k) head += static_cast<double>(lp[toks[k]]);
        CHECK_CLOSE(ld[static_cast<std::size_t>(2 * p + side)], head, rtol, 0);
      }
    }
    CHECK(some_tail);  // the case has pairs of unequal lengths, so the test can fail

    // α = 0 does not read the tail: a −inf there (a token the model rules out) leaves logp~ finite.
    std::vector<T> with_inf = lp;
    const auto chosen = response_tokens(c.mask, 0, 9), rejected = response_tokens(c.mask, 1, 9);
    const auto& longer = chosen.size() > rejected.size() ? chosen : rejected;
    REQUIRE(chosen.size() != rejected.size());
    with_inf[longer.back()] = -std::numeric_limits<T>::infinity();
    rpo::length_desensitized_logp<T>(with_inf, c.mask, c.shape, 0.0, ld);
    CHECK(std::isfinite(ld[0]));
    CHECK(std::isfinite(ld[1]));
  }

  TEST_CASE_TEMPLATE("LD-DPO: pairs of equal response lengths give the plain sum for every alpha, gaps anywhere", T,
                     float, double) {
    const double rtol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    const rpo::token_shape shape{4, 6, 0};
    // Pair 0: 4 and 4 response tokens at different positions; pair 1: 2 and 2, one of them with a gap.
    const std::vector<std::uint8_t> mask{0, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1};
    const std::vector<T> lp = as<T>(ld_case(4, 6, 3).token_logp);
    std::vector<T> plain(4), ld(4);
    rpo::sequence_logp<T>(lp, mask, shape, rpo::token_reduction::sum, plain);
    for (const double alpha : {0.0, 0.3, 1.0}) {
      CAPTURE(alpha);
      rpo::length_desensitized_logp<T>(lp, mask, shape, alpha, ld);
      for (std::size_t s = 0; s < 4; ++s) CHECK_CLOSE(ld[s], plain[s], rtol, 0);
      std::vector<T> grad(24);
      const std::vector<T> g{T(0.5), T(-2), T(3), T(-0.25)};
      rpo::length_desensitized_logp_backward<T>(g, mask, shape, alpha, grad);
      for (std::size_t i = 0; i < 24; ++i) CHECK(grad[i] == (mask[i] != 0 ? g[i / 6] : T(0)));
    }
  }

  TEST_CASE("LD-DPO backward: the head gets grad_logp, the tail alpha·grad_logp, masked positions 0") {
    // Pair: chosen has response tokens at t = 1, 2, 4, 5 (n_c = 4), rejected at t = 0, 3 (n_r = 2): n_min = 2.
    const rpo::token_shape shape{2, 6, 0};
    const std::vector<std::uint8_t> mask{0, 1, 1, 0, 1, 1, 1, 0, 0, 1, 0, 0};
    const std::vector<double> g{2.0, -1.0};
    std::vector<double> grad(12, 42.0);
    rpo::length_desensitized_logp_backward<double>(g, mask, shape, 0.25, grad);
    CHECK(grad == std::vector<double>{0, 2, 2, 0, 0.5, 0.5, -1, 0, 0, -1, 0, 0});
    // An empty mask is every position: 6 and 6 tokens, the plain sum's chain rule.
    rpo::length_desensitized_logp_backward<double>(g, {}, shape, 0.25, grad);
    CHECK(grad == std::vector<double>{2, 2, 2, 2, 2, 2, -1, -1, -1, -1, -1, -1});
  }

  TEST_CASE_TEMPLATE("LD-DPO backward: d(loss o LD)/d token log-prob and d/d ref token log-prob against finite "
                     "differences (DPO, IPO, cDPO)",
                     T, float, double) {
    const ld_case c(6, 11, 4);
    const std::vector<T> lp = as<T>(c.token_logp), ref = as<T>(c.ref_token_logp);
    const auto check = [&](const auto& loss, double alpha) {
      CAPTURE(alpha);
      std::vector<T> grad_lp, grad_ref;
      ld_loss(loss, lp, ref, c.mask, c.shape, alpha, &grad_lp, &grad_ref);
      double worst = 0;
      for (std::size_t i = 0; i < lp.size(); ++i) {
        for (const bool on_ref : {false, true}) {
          const auto f = [&](T x) {
            std::vector<T> a = lp, b = ref;
            (on_ref ? b : a)[i] = x;
            return ld_loss(loss, a, b, c.mask, c.shape, alpha);
          };
          const T x = (on_ref ? ref : lp)[i];
          const T g = (on_ref ? grad_ref : grad_lp)[i];
          if (c.mask[i] == 0) {
            CHECK(g == T(0));  // masked positions are not read: their derivative is exactly 0
            CHECK(f(x + T(1)) == f(x));
            continue;
          }
          worst = std::max(worst, test::fd_relative_error(f, x, g, test::fd_floor<T>));
        }
      }
      CHECK_MESSAGE(worst < test::fd_tolerance<T>, "worst relative error " << worst);
    };
    for (const double alpha : {0.0, 0.4, 1.0}) {
      check(rpo::dpo{.beta = 0.5}, alpha);
      check(rpo::ipo{}, alpha);
      check(rpo::cdpo{}, alpha);
    }
  }

  TEST_CASE("LD-DPO through the whole token layer: d loss / d logits against finite differences (double)") {
    // logits → token_logp → LD (policy; the reference's LD is a constant) → DPO → LD backward → token_logp_backward.
    const rpo::token_shape shape{4, 5, 3};
    std::mt19937_64 rng(9);
    std::normal_distribution<double> z(0, 1.5);
    std::vector<double> logits(60);
    for (double& x : logits) x = z(rng);
    const std::vector<std::int64_t> target{0, 1, 2, 0, 1, 2, 2, 1, 0, 0, 1, 1, -100, 2, 0, 0, 1, 2, 0, 1};
    const std::vector<std::uint8_t> mask{1, 1, 0, 1, 1, 0, 1, 1, 0, 0, 1, 1, 0, 1, 1, 1, 1, 0, 1, 0};
    const std::vector<double> ref{-4.0, -3.5, -2.0, -5.0};
    const double alpha = 0.3;
    const auto loss = [&](const std::vector<double>& zz, std::vector<double>* grad) {
      const rpo::token_logits<double> tok{zz, target, mask, shape};
      std::vector<double> lp(20), seq(4), g(4);
      rpo::token_logp(tok, lp);
      rpo::length_desensitized_logp<double>(lp, mask, shape, alpha, seq);
      const double v = rpo::evaluate(rpo::dpo{}, rpo::batch_input<double>{.logp = seq, .ref_logp = ref},
                                     rpo::batch_output<double>{.grad_logp = g});
      if (grad != nullptr) {
        std::vector<double> g_tok(20);
        rpo::length_desensitized_logp_backward<double>(g, mask, shape, alpha, g_tok);
        grad->resize(60);
        rpo::token_logp_backward(tok, g_tok, *grad);
      }
      return v;
    };
    std::vector<double> grad;
    loss(logits, &grad);
    double worst = 0;
    for (std::size_t i = 0; i < logits.size(); ++i) {
      const auto f = [&](double x) {
        std::vector<double> zz = logits;
        zz[i] = x;
        return loss(zz, nullptr);
      };
      worst = std::max(worst, test::fd_relative_error(f, logits[i], grad[i], test::fd_floor<double>));
    }
    CHECK_MESSAGE(worst < 1e-7, "worst relative error " << worst);
  }

  TEST_CASE("LD-DPO: bad input gives a clear error naming the argument, and writes nothing") {
    const ld_case c(4, 5, 6);
    std::vector<double> out(4, 42.0), grad(20, 42.0);
    const auto forward = [&](rpo::token_shape shape, double alpha) {
      rpo::length_desensitized_logp<double>(c.token_logp, c.mask, shape, alpha, out);
    };
    test::expect_error<std::invalid_argument>([&] { forward(c.shape, 1.5); },
                                              {"rpo::length_desensitized_logp", "alpha must be in [0, 1]", "alpha = 1.5"});
    test::expect_error<std::invalid_argument>([&] { forward(c.shape, -0.1); }, {"alpha = -0.1"});
    test::expect_error<std::invalid_argument>([&] { forward(c.shape, std::numeric_limits<double>::quiet_NaN()); },
                                              {"alpha must be in [0, 1]", "alpha = nan"});
    test::expect_error<std::invalid_argument>(
        [&] {
          rpo::length_desensitized_logp_backward<double>(std::vector<double>(4), c.mask, c.shape, 2.0, grad);
        },
        {"rpo::length_desensitized_logp_backward", "alpha = 2"});
    // An odd number of sequences cannot be pairs.
    std::vector<double> three(3);
    test::expect_error<std::invalid_argument>(
        [&] {
          rpo::length_desensitized_logp<double>(std::span<const double>(c.token_logp).first(15),
                                                std::span<const std::uint8_t>(c.mask).first(15), {3, 5, 0}, 0.5,
                                                three);
        },
        {"shape.sequences must be even", "shape.sequences = 3"});
    // Sizes.
    test::expect_error<std::invalid_argument>(
        [&] { rpo::length_desensitized_logp<double>(std::span<const double>(c.token_logp).first(19), c.mask, c.shape, 0.5, out); },
        {"token_logp has 19 entries", "20"});
    test::expect_error<std::invalid_argument>(
        [&] { rpo::length_desensitized_logp<double>(c.token_logp, std::span<const std::uint8_t>(c.mask).first(7), c.shape, 0.5, out); },
        {"mask has 7 entries"});
    test::expect_error<std::invalid_argument>(
        [&] { rpo::length_desensitized_logp<double>(c.token_logp, c.mask, c.shape, 0.5, std::span<double>(out).first(3)); },
        {"logp has 3 entries", "sequences = 4"});
    test::expect_error<std::invalid_argument>(
        [&] {
          rpo::length_desensitized_logp_backward<double>(std::vector<double>(4), c.mask, c.shape, 0.5,
                                                         std::span<double>(grad).first(10));
        },
        {"grad_token_logp has 10 entries"});
    CHECK(std::all_of(out.begin(), out.end(), [](double x) { return x == 42.0; }));
    CHECK(std::all_of(grad.begin(), grad.end(), [](double x) { return x == 42.0; }));

    // errors::report: the status names alpha, nothing is written; errors::unchecked still checks sizes.
    rpo::status st;
    rpo::length_desensitized_logp<double>(c.token_logp, c.mask, c.shape, 3.0, out, rpo::errors::report{&st});
    CHECK(st.code == rpo::errc::invalid_parameter);
    CHECK(st.message.find("alpha") != std::string::npos);
    CHECK(out[0] == 42.0);
    test::expect_error<std::invalid_argument>(
        [&] {
          rpo::length_desensitized_logp<double>(c.token_logp, c.mask, c.shape, 0.5, std::span<double>(out).first(2),
                                                rpo::errors::unchecked{});
        },
        {"logp has 2 entries"});
  }
}
