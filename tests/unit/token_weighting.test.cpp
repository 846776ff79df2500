// Token weightings (rpo/token_weighting.hpp): LD-DPO's length-desensitised sequence log-probs (LOSSES.md §1.17)
// and their chain rule, against a reduction written out independently here (the response tokens of each sequence
// listed in order, then the head of n_min and the tail), rpo::sequence_logp at α = 1, and finite differences of
// (loss ∘ reduction), in float and double. WPO (LOSSES.md §1.16): rpo::wpo_weights against softmax and Σp² written
// out in long double, and rpo::evaluate_weighted (rpo/batchwise.hpp) against rpo::evaluate's per-group losses and
// finite differences.
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

#include "rpo/batchwise.hpp"
#include "rpo/presets.hpp"
#include "rpo/token.hpp"
#include "rpo/token_weighting.hpp"
#include "support/close.hpp"
#include "support/expect_error.hpp"
#include "support/gradient_check.hpp"
#include "support/token_case.hpp"

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

/// WPO's weight written out from its definition (LOSSES.md §1.16) in long double: p = softmax(z) (after subtracting
/// the max), then w = exp(mean_t [log p_y − log Σ_v p_v²]) over the response positions.
template <class T>
std::vector<long double> reference_wpo(const std::vector<T>& logits, const std::vector<std::int64_t>& target,
                                       const std::vector<std::uint8_t>& mask, rpo::token_shape shape) {
  const auto [S, Tk, V] = shape;
  std::vector<long double> w;
  for (std::int64_t s = 0; s < S; ++s) {
    long double sum = 0;
    int n = 0;
    for (std::int64_t t = 0; t < Tk; ++t) {
      const auto row = static_cast<std::size_t>(s * Tk + t);
      if (!mask.empty() && mask[row] == 0) continue;
      const T* z = logits.data() + row * static_cast<std::size_t>(V);
      long double m = -std::numeric_limits<long double>::infinity();
      for (std::int64_t v = 0; v < V; ++v) m = std::max(m, static_cast<long double>(z[v]));
      long double total = 0;
      for (std::int64_t v = 0; v < V; ++v) total += std::exp(static_cast<long double>(z[v]) - m);
      long double sq = 0;
      for (std::int64_t v = 0; v < V; ++v) {
        const long double p = std::exp(static_cast<long double>(z[v]) - m) / total;
        sq += p * p;
      }
      const long double p_y = std::exp(static_cast<long double>(z[target[row]]) - m) / total;
      sum += std::log(p_y) - std::log(sq);
      ++n;
    }
    w.push_back(std::exp(sum / n));
  }
  return w;
}

/// Σ_g c_g·L_g, reduced, from rpo::evaluate's unweighted per-group losses: the reference for evaluate_weighted.
template <class L, class T>
double reference_weighted(const L& loss, const rpo::batch_input<T>& in, const std::vector<T>& weights,
                          rpo::reduction how) {
  std::vector<T> group_loss(weights.size());
  rpo::evaluate(loss, in, rpo::batch_output<T>{.group_loss = group_loss}, rpo::reduction::sum());
  double total = 0;
  for (std::size_t g = 0; g < weights.size(); ++g) total += static_cast<double>(weights[g]) * static_cast<double>(group_loss[g]);
  if (how.kind == rpo::reduction::mode::mean) return total / static_cast<double>(weights.size());
  if (how.kind == rpo::reduction::mode::sum_over_count) return total / how.count;
  return total;
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

TEST_SUITE("wpo") {
  TEST_CASE_TEMPLATE("wpo_weights equals softmax and sum of p^2 written out in long double, at odd V and over blocks", T,
                     float, double) {
    const double rtol = std::is_same_v<T, float> ? 2e-5 : 1e-12;
    // V = 4103 spans three online blocks of 2048; V = 1, 7, 33 the vector tails.
    for (const rpo::token_shape shape : {rpo::token_shape{2, 3, 1}, rpo::token_shape{4, 5, 7}, rpo::token_shape{4, 3, 33},
                                         rpo::token_shape{2, 2, 4103}}) {
      CAPTURE(shape.vocab);
      const test::token_case<double> c(shape.sequences, shape.tokens, shape.vocab, 2.0,
                                       static_cast<std::uint64_t>(shape.vocab));
      std::vector<T> logits = c.as<T>(c.logits);
      if (shape.vocab == 4103) {  // a max that grows from block to block: the running sums are rescaled twice
        for (std::size_t row = 0; row < 4; ++row)
          for (std::size_t v = 0; v < 4103; ++v) logits[row * 4103 + v] += static_cast<T>(static_cast<double>(v) / 400);
      }
      std::vector<T> w(static_cast<std::size_t>(shape.sequences));
      rpo::wpo_weights(rpo::token_logits<T>{logits, c.target, c.mask, shape}, w);
      const std::vector<long double> ref = reference_wpo(logits, c.target, c.mask, shape);
      for (std::size_t s = 0; s < w.size(); ++s) CHECK_CLOSE(w[s], static_cast<double>(ref[s]), rtol, 0);
    }
  }

  TEST_CASE_TEMPLATE("wpo_weights: uniform logits give w = 1, a certain target w = 1, and 0 < w <= V", T, float, double) {
    const double rtol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    const rpo::token_shape shape{2, 3, 5};
    // Sequence 0: uniform rows (π_t = 1/V = Σπ²). Sequence 1: the target's logit 40 above the rest (π_t ≈ Σπ² ≈ 1).
    std::vector<T> logits(30, T(0.75));
    for (std::size_t row = 3; row < 6; ++row) logits[row * 5 + 2] = T(40);
    const std::vector<std::int64_t> target{0, 3, 4, 2, 2, 2};
    std::vector<T> w(2);
    rpo::wpo_weights(rpo::token_logits<T>{logits, target, {}, shape}, w);
    CHECK_CLOSE(w[0], 1.0, rtol, 0);
    CHECK_CLOSE(w[1], 1.0, rtol, 0);
    // Upper bound V: a target that holds most of the mass against many tiny tails. Lower: a target far below.
    const test::token_case<double> c(6, 4, 9, 3.0, 21);
    std::vector<double> many(6);
    rpo::wpo_weights(rpo::token_logits<double>{c.logits, c.target, c.mask, c.shape}, std::span<double>(many));
    for (const double x : many) {
      CHECK(x > 0);
      CHECK(x <= 9.0);
    }
  }

  TEST_CASE_TEMPLATE("wpo_weights: logits of magnitude 1e4 are finite and exact (no overflow of e^{2z})", T, float, double) {
    // Rows of logits around ±1e4 with a spread of a few units, so that π and Σπ² are far from 0 and 1: a naive
    // Σ e^{2z} overflows at once (e^{2e4}); the streamed form subtracts the running max.
    const rpo::token_shape shape{4, 3, 37};
    const test::token_case<double> c(4, 3, 37, 2.0, 5);
    std::vector<T> logits = c.as<T>(c.logits);
    for (std::size_t i = 0; i < logits.size(); ++i)
      logits[i] = static_cast<T>((i / 37 % 2 == 0 ? 1e4 : -1e4) + static_cast<double>(logits[i]));
    std::vector<T> w(4);
    rpo::wpo_weights(rpo::token_logits<T>{logits, c.target, c.mask, shape}, w);
    const std::vector<long double> ref = reference_wpo(logits, c.target, c.mask, shape);
    const double rtol = std::is_same_v<T, float> ? 1e-4 : 1e-9;  // float: the reference reads the same rounded logits
    for (std::size_t s = 0; s < 4; ++s) {
      CHECK(std::isfinite(w[s]));
      CHECK(ref[s] > 1e-30L);  // the case is one where the weight is not trivially 0
      CHECK_CLOSE(w[s], static_cast<double>(ref[s]), rtol, 0);
    }
  }

  TEST_CASE("wpo_weights: bad input gives a clear error naming the argument, and writes nothing") {
    test::token_case<double> c(2, 3, 5, 1.0, 1);
    std::vector<double> w(2, 42.0);
    const auto call = [&](const rpo::token_logits<double>& in) { rpo::wpo_weights(in, std::span<double>(w)); };
    rpo::token_logits<double> in{c.logits, c.target, c.mask, c.shape};
    std::vector<double> short_w(1);
    test::expect_error<std::invalid_argument>([&] { rpo::wpo_weights(in, std::span<double>(short_w)); },
                                              {"rpo::wpo_weights", "weight has 1 entries", "sequences = 2"});
    std::vector<std::int64_t> bad_target = c.target;
    std::vector<std::uint8_t> mask = c.mask;
    mask[4] = 1;
    bad_target[4] = 7;
    in.target = bad_target;
    in.mask = mask;
    test::expect_error<std::invalid_argument>([&] { call(in); }, {"rpo::wpo_weights", "target[4]", "= 7"});
    in.target = c.target;
    in.mask = c.mask;
    std::vector<std::uint8_t> empty = c.mask;
    for (std::size_t t = 3; t < 6; ++t) empty[t] = 0;
    in.mask = empty;
    test::expect_error<std::domain_error>([&] { call(in); }, {"rpo::wpo_weights", "sequence 1 has an empty response"});
    in.mask = c.mask;
    std::vector<double> nan_logits = c.logits;
    std::size_t row = 0;
    while (c.mask[row] == 0) ++row;
    nan_logits[row * 5 + 1] = std::numeric_limits<double>::quiet_NaN();
    in.logits = nan_logits;
    const std::string culprit = "target[" + std::to_string(row) + "]";
    test::expect_error<std::domain_error>([&] { call(in); }, {"rpo::wpo_weights", culprit.c_str(), "must be finite"});
    nan_logits[row * 5 + 1] = std::numeric_limits<double>::infinity();
    test::expect_error<std::domain_error>([&] { call(in); }, {culprit.c_str(), "must be finite"});
    CHECK(std::all_of(w.begin(), w.end(), [](double x) { return x == 42.0; }));
    rpo::status st;
    rpo::wpo_weights(in, std::span<double>(w), rpo::errors::report{&st});
    CHECK(st.code == rpo::errc::domain_error);
    CHECK(w[0] == 42.0);
  }

  TEST_CASE_TEMPLATE("evaluate_weighted: all weights 1 is rpo::evaluate, values and gradients", T, float, double) {
    const test::token_case<double> c(8, 1, 1, 1.0, 3);
    std::vector<T> logp(8), ref = c.as<T>(c.ref_logp);
    for (std::size_t i = 0; i < 8; ++i) logp[i] = static_cast<T>(c.ref_logp[i] + c.reward[i]);
    const rpo::batch_input<T> in{.logp = logp, .ref_logp = ref};
    const std::vector<T> ones(4, T(1));
    for (const rpo::reduction how : {rpo::reduction::mean(), rpo::reduction::sum(), rpo::reduction::sum_over(10)}) {
      std::vector<T> gl(4), g(8), gr(8), gl1(4), g1(8), gr1(8);
      const T plain = rpo::evaluate(rpo::dpo{}, in, rpo::batch_output<T>{gl, g, gr}, how);
      const T weighted = rpo::evaluate_weighted(rpo::dpo{}, in, ones, rpo::batch_output<T>{gl1, g1, gr1}, how);
      CHECK(weighted == plain);
      CHECK(gl1 == gl);
      CHECK(g1 == g);
      CHECK(gr1 == gr);
    }
  }

  TEST_CASE_TEMPLATE("evaluate_weighted: the value is the weighted sum of rpo::evaluate's group losses, and its gradient "
                     "matches finite differences (pairs, and ragged groups by offsets)",
                     T, float, double) {
    const double rtol = std::is_same_v<T, float> ? 1e-6 : 1e-14;
    const test::token_case<double> c(10, 1, 1, 1.0, 8);
    std::vector<T> logp(10), ref = c.as<T>(c.ref_logp), reward = c.as<T>(c.reward);
    for (std::size_t i = 0; i < 10; ++i) logp[i] = static_cast<T>(c.ref_logp[i] + 2 * c.reward[i]);
    const auto check = [&](const auto& loss, std::span<const std::int64_t> offsets, const std::vector<T>& weights,
                           rpo::reduction how) {
      const rpo::batch_input<T> in{.logp = logp, .ref_logp = ref, .reward = reward, .offsets = offsets};
      std::vector<T> g(10), gr(10), gl(weights.size());
      const T value = rpo::evaluate_weighted(loss, in, weights, rpo::batch_output<T>{gl, g, gr}, how);
      CHECK_CLOSE(value, reference_weighted(loss, in, weights, how), rtol, 0);
      std::vector<T> unweighted(weights.size());
      rpo::evaluate(loss, in, rpo::batch_output<T>{.group_loss = unweighted}, rpo::reduction::sum());
      for (std::size_t k = 0; k < weights.size(); ++k)
        CHECK_CLOSE(gl[k], static_cast<double>(weights[k]) * static_cast<double>(unweighted[k]), rtol, 0);
      double worst = 0;
      for (std::size_t i = 0; i < 10; ++i) {
        for (const bool on_ref : {false, true}) {
          const auto f = [&](T x) {
            std::vector<T> a = logp, b = ref;
            (on_ref ? b : a)[i] = x;
            return rpo::evaluate_weighted(loss, rpo::batch_input<T>{.logp = a, .ref_logp = b, .reward = reward, .offsets = offsets},
                                          weights, {}, how);
          };
          worst = std::max(worst, test::fd_relative_error(f, (on_ref ? ref : logp)[i], (on_ref ? gr : g)[i],
                                                          test::fd_floor<T>));
        }
      }
      CHECK_MESSAGE(worst < test::fd_tolerance<T>, "worst relative error " << worst);
    };
    const std::vector<T> pair_weights{T(0.5), T(2.25), T(0), T(1), T(3.5)};
    for (const rpo::reduction how : {rpo::reduction::mean(), rpo::reduction::sum(), rpo::reduction::sum_over(7)}) {
      check(rpo::dpo{}, {}, pair_weights, how);
      check(rpo::ipo{}, {}, pair_weights, how);
      const std::vector<std::int64_t> offsets{0, 3, 5, 10};
      check(rpo::rpo_sqloo{}, offsets, std::vector<T>{T(1.5), T(0.25), T(2)}, how);
    }
    // A weight of 0 removes its pair: no loss, no gradient.
    std::vector<T> g(10);
    rpo::evaluate_weighted(rpo::dpo{}, rpo::batch_input<T>{.logp = logp, .ref_logp = ref}, pair_weights,
                           rpo::batch_output<T>{.grad_logp = g});
    CHECK(g[4] == T(0));
    CHECK(g[5] == T(0));
    CHECK(g[0] != T(0));
  }

  TEST_CASE("WPO end to end: weights from the logits, then evaluate_weighted equals w_c·w_r·L summed by hand") {
    const test::token_case<double> c(6, 4, 11, 1.5, 12);
    const rpo::token_logits<double> tok{c.logits, c.target, c.mask, c.shape};
    std::vector<double> w(6), lp(24), seq(6);
    rpo::wpo_weights(tok, std::span<double>(w));
    rpo::token_logp(tok, std::span<double>(lp));
    rpo::sequence_logp<double>(lp, c.mask, c.shape, rpo::token_reduction::sum, seq);
    const std::vector<double> pair_w{w[0] * w[1], w[2] * w[3], w[4] * w[5]};
    const rpo::batch_input<double> in{.logp = seq, .ref_logp = c.ref_logp};
    const double v = rpo::evaluate_weighted(rpo::dpo{}, in, pair_w);
    // By hand: DPO's pair loss −log σ(β(Δlogp − Δref)) = log(1 + e^{−x}), weighted, mean over 3 pairs.
    double by_hand = 0;
    for (std::size_t p = 0; p < 3; ++p) {
      const double x = 0.1 * ((seq[2 * p] - c.ref_logp[2 * p]) - (seq[2 * p + 1] - c.ref_logp[2 * p + 1]));
      by_hand += pair_w[p] * std::log1p(std::exp(-x));
    }
    CHECK_CLOSE(v, by_hand / 3, 1e-13, 0);
    // Legacy TRL's clamp, done by the caller: min(w_c·w_r, 1).
    std::vector<double> clamped = pair_w;
    for (double& x : clamped) x = std::min(x, 1.0);
    CHECK(rpo::evaluate_weighted(rpo::dpo{}, in, clamped) <= rpo::evaluate(rpo::dpo{}, in) + 1e-15);
  }

  TEST_CASE("evaluate_weighted: bad weights and sizes give clear errors, and write nothing") {
    const std::vector<double> logp{-1, -2, -3, -1.5}, ref{-1.2, -1.8, -2.5, -2};
    const rpo::batch_input<double> in{.logp = logp, .ref_logp = ref};
    std::vector<double> g(4, 42.0);
    const auto call = [&](const std::vector<double>& w) {
      rpo::evaluate_weighted(rpo::dpo{}, in, w, rpo::batch_output<double>{.grad_logp = g});
    };
    test::expect_error<std::invalid_argument>([&] { call({1.0}); },
                                              {"rpo::evaluate_weighted", "group_weights has 1 entries", "2 groups"});
    test::expect_error<std::domain_error>([&] { call({1.0, -0.5}); },
                                          {"rpo::evaluate_weighted", "group_weights[1] must be finite and >= 0", "= -0.5"});
    test::expect_error<std::domain_error>([&] { call({std::numeric_limits<double>::quiet_NaN(), 1.0}); },
                                          {"group_weights[0]", "nan"});
    test::expect_error<std::domain_error>([&] { call({std::numeric_limits<double>::infinity(), 1.0}); },
                                          {"group_weights[0]", "inf"});
    // rpo::evaluate's own checks still apply, named after the loss.
    test::expect_error<std::invalid_argument>(
        [&] { rpo::evaluate_weighted(rpo::dpo{.beta = -1}, in, std::vector<double>{1, 1}); }, {"rpo::dpo", "beta"});
    const std::vector<double> bad_logp{-1, std::numeric_limits<double>::quiet_NaN(), -3, -1.5};
    test::expect_error<std::domain_error>(
        [&] {
          rpo::evaluate_weighted(rpo::dpo{}, rpo::batch_input<double>{.logp = bad_logp, .ref_logp = ref},
                                 std::vector<double>{1, 1}, rpo::batch_output<double>{.grad_logp = g});
        },
        {"rpo::dpo", "logp[1]"});
    test::expect_error<std::invalid_argument>(
        [&] {
          rpo::evaluate_weighted(rpo::dpo{}, rpo::batch_input<double>{}, std::vector<double>{});
        },
        {"the batch is empty"});
    CHECK(std::all_of(g.begin(), g.end(), [](double x) { return x == 42.0; }));
    rpo::status st;
    const double v = rpo::evaluate_weighted(rpo::dpo{}, in, std::vector<double>{1, -1}, rpo::batch_output<double>{.grad_logp = g},
                                            rpo::reduction::mean(), rpo::errors::report{&st});
    CHECK(std::isnan(v));
    CHECK(st.code == rpo::errc::domain_error);
    const double v2 = rpo::evaluate_weighted(rpo::dpo{}, rpo::batch_input<double>{.logp = bad_logp, .ref_logp = ref},
                                             std::vector<double>{1, 1}, rpo::batch_output<double>{.grad_logp = g},
                                             rpo::reduction::mean(), rpo::errors::report{&st});
    CHECK(std::isnan(v2));
    CHECK(g[0] == 42.0);
    // errors::unchecked still checks the number of weights (it guards memory).
    test::expect_error<std::invalid_argument>(
        [&] {
          rpo::evaluate_weighted(rpo::dpo{}, in, std::vector<double>{1}, {}, rpo::reduction::mean(), rpo::errors::unchecked{});
        },
        {"group_weights has 1 entries"});
  }
}

