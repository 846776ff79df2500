// Tokens (rpo/token.hpp): per-token log-probs, sequence log-probs and their chain rules, and the fused
// logits → loss → ∂loss/∂logits pass, against an independent plain double loop (log-softmax, gather, masked sum,
// the loss in double, the chain rule written out), for every preset, in float and double.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/detail/vexp.hpp"
#include "rpo/presets.hpp"
#include "rpo/token.hpp"
#include "support/close.hpp"
#include "support/expect_error.hpp"
#include "support/token_case.hpp"

namespace {

using token_case = test::token_case<double>;

/// The independent reference: log-softmax, gather and the masked sum in plain double loops.
struct reference {
  std::vector<double> lse, token_logp, seq_logp, length;
};
reference reference_forward(const token_case& c, const std::vector<double>& logits, rpo::token_reduction how) {
  const auto [S, T, V] = c.shape;
  reference r;
  for (std::int64_t row = 0; row < S * T; ++row) {
    const double* z = logits.data() + row * V;
    double m = -std::numeric_limits<double>::infinity();
    for (std::int64_t v = 0; v < V; ++v) m = std::max(m, z[v]);
    double sum = 0;
    for (std::int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - m);
    r.lse.push_back(m + std::log(sum));
    const auto i = static_cast<std::size_t>(row);
    r.token_logp.push_back(c.mask[i] != 0 ? z[c.target[i]] - r.lse.back() : 0.0);
  }
  for (std::int64_t s = 0; s < S; ++s) {
    double sum = 0, n = 0;
    for (std::int64_t t = 0; t < T; ++t) {
      const auto i = static_cast<std::size_t>(s * T + t);
      sum += c.mask[i] != 0 ? r.token_logp[i] : 0.0;
      n += c.mask[i] != 0 ? 1 : 0;
    }
    r.seq_logp.push_back(how == rpo::token_reduction::mean ? sum / n : sum);
    r.length.push_back(n);
  }
  return r;
}
/// ∂loss/∂z = c_row·([v = y] − softmax_v), c_row = ∂loss/∂ℓ_s·m_t (/n_s for the mean).
std::vector<double> reference_backward(const token_case& c, const std::vector<double>& logits, const reference& r,
                                       const std::vector<double>& grad_seq, rpo::token_reduction how) {
  const auto [S, T, V] = c.shape;
  std::vector<double> g(logits.size(), 0.0);
  for (std::int64_t row = 0; row < S * T; ++row) {
    const auto i = static_cast<std::size_t>(row);
    if (c.mask[i] == 0) continue;
    const auto s = static_cast<std::size_t>(row / T);
    const double k = grad_seq[s] / (how == rpo::token_reduction::mean ? r.length[s] : 1.0);
    for (std::int64_t v = 0; v < V; ++v) {
      const double p = std::exp(logits[static_cast<std::size_t>(row * V + v)] - r.lse[i]);
      g[static_cast<std::size_t>(row * V + v)] = k * ((v == c.target[i] ? 1.0 : 0.0) - p);
    }
  }
  return g;
}

template <class T> double max_abs(const std::vector<T>& v) {
  double m = 0;
  for (T x : v) m = std::max(m, std::fabs(static_cast<double>(x)));
  return m;
}

/// Every entry of `got` within rtol of `ref`, with an absolute floor of atol·max|ref|.
template <class A, class B> void check_all_close(const std::vector<A>& got, const std::vector<B>& ref, double rtol, double atol,
                                                 const char* what) {
  REQUIRE(got.size() == ref.size());
  const double floor = atol * std::max(max_abs(ref), 1e-300);
  std::size_t bad = 0, first = 0;
  for (std::size_t i = 0; i < got.size(); ++i)
    if (!test::rel_close(static_cast<double>(got[i]), static_cast<double>(ref[i]), rtol, floor) && bad++ == 0) first = i;
  CHECK_MESSAGE(bad == 0, what << ": " << bad << " of " << got.size() << " entries differ; first [" << first
                                << "] = " << (got.empty() ? 0.0 : static_cast<double>(got[first])) << ", reference "
                                << (ref.empty() ? 0.0 : static_cast<double>(ref[first])));
}

/// Unfused (token_logp, sequence_logp, rpo::evaluate, the two backward functions), fused to a caller buffer, fused
/// in place, and the double reference, on one case; the group layout comes from the loss (pairs, or `offsets`).
template <class L, class T>
void check_fused_equals_unfused(const L& loss, const token_case& c, rpo::token_reduction how,
                                std::span<const std::int64_t> offsets, double rtol_same, double rtol_ref) {
  const std::vector<T> logits = c.as<T>(c.logits), ref_logp = c.as<T>(c.ref_logp), reward = c.as<T>(c.reward);
  const rpo::token_logits<T> tok{.logits = logits, .target = c.target, .mask = c.mask, .shape = c.shape};
  const auto S = static_cast<std::size_t>(c.shape.sequences), rows = S * static_cast<std::size_t>(c.shape.tokens);

  // Unfused.
  std::vector<T> token_lp(rows), seq(S), length(S), grad_seq(S), grad_token(rows), grad_unfused(logits.size());
  rpo::token_logp(tok, token_lp);
  rpo::sequence_logp<T>(token_lp, c.mask, c.shape, how, seq, length);
  const T loss_unfused = rpo::evaluate(
      loss, rpo::batch_input<T>{.logp = seq, .ref_logp = ref_logp, .length = length, .reward = reward, .offsets = offsets},
      rpo::batch_output<T>{.grad_logp = grad_seq});
  rpo::sequence_logp_backward<T>(grad_seq, c.mask, c.shape, how, grad_token);
  rpo::token_logp_backward(tok, grad_token, grad_unfused);

  // Fused, to a caller buffer and in place.
  const rpo::token_input<T> in{.tokens = tok, .per_sequence = how, .ref_logp = ref_logp, .reward = reward, .offsets = offsets};
  std::vector<T> grad_fused(logits.size()), fused_logp(S);
  const T loss_fused = rpo::evaluate_tokens(loss, in, rpo::token_output<T>{.grad_logits = grad_fused, .logp = fused_logp});
  std::vector<T> in_place = logits;
  rpo::token_input<T> in2 = in;
  in2.tokens.logits = in_place;
  const T loss_in_place = rpo::evaluate_tokens(loss, in2, rpo::token_output<T>{.grad_logits = in_place});

  // The double reference on the same (rounded) logits.
  const std::vector<double> z(logits.begin(), logits.end());
  const reference r = reference_forward(c, z, how);
  std::vector<double> ref_grad_seq(S);
  const double ref_loss = rpo::evaluate(
      loss, rpo::batch_input<double>{.logp = r.seq_logp, .ref_logp = c.ref_logp, .length = r.length, .reward = c.reward,
                                     .offsets = offsets},
      rpo::batch_output<double>{.grad_logp = ref_grad_seq});
  const std::vector<double> ref_grad = reference_backward(c, z, r, ref_grad_seq, how);

  CHECK_CLOSE(loss_fused, loss_unfused, rtol_same, rtol_same);
  CHECK_CLOSE(loss_in_place, loss_fused, 0, 0);
  CHECK_CLOSE(loss_fused, ref_loss, rtol_ref, rtol_ref);
  check_all_close(fused_logp, seq, rtol_same, rtol_same, "fused sequence logp vs unfused");
  check_all_close(seq, r.seq_logp, rtol_ref, rtol_ref, "sequence logp vs reference");
  check_all_close(grad_fused, grad_unfused, rtol_same, rtol_same, "fused gradient vs unfused");
  check_all_close(in_place, grad_fused, 0, 0, "in-place gradient vs caller buffer");
  check_all_close(grad_fused, ref_grad, rtol_ref, rtol_ref, "fused gradient vs reference");
}

template <class L> constexpr bool reads_length() { return contains(rpo::detail::shape_of<L>().inputs, rpo::input::length); }

template <class L> void check_every_shape(const L& loss, std::span<const std::int64_t> offsets, std::int64_t sequences) {
  struct dims {
    std::int64_t tokens, vocab;
  };
  // Odd vocabularies (tails of every vector width), T = 1, and a vocabulary over two of the online blocks.
  for (const dims d : {dims{1, 1}, dims{1, 7}, dims{5, 33}, dims{3, 257}, dims{2, 4103}}) {
    for (const auto how : {rpo::token_reduction::sum, rpo::token_reduction::mean}) {
      CAPTURE(d.tokens);
      CAPTURE(d.vocab);
      CAPTURE(static_cast<int>(how));
      const token_case c(sequences, d.tokens, d.vocab, 3.0, static_cast<std::uint64_t>(d.tokens * 1000 + d.vocab));
      check_fused_equals_unfused<L, double>(loss, c, how, offsets, 1e-12, 1e-9);
      check_fused_equals_unfused<L, float>(loss, c, how, offsets, 1e-5, 2e-4);
    }
  }
  // A fully masked response: fine for summed log-probs of a loss that does not read lengths (its log-prob is 0).
  if (!reads_length<L>()) {
    const token_case c(sequences, 4, 19, 2.0, 7, /*empty_sequence=*/1);
    check_fused_equals_unfused<L, double>(loss, c, rpo::token_reduction::sum, offsets, 1e-12, 1e-9);
    check_fused_equals_unfused<L, float>(loss, c, rpo::token_reduction::sum, offsets, 1e-5, 2e-4);
  }
}

}  // namespace

TEST_SUITE("token") {
  TEST_CASE_TEMPLATE("vectorised exp: within 2 ulp of the correctly rounded e^x over the normal range, limits exact",
                     T, float, double) {
    using V = rpo::detail::simd<T>;
    const double lo = std::is_same_v<T, float> ? -87.3 : -708.0, hi = std::is_same_v<T, float> ? 88.3 : 709.0;
    const int n = 200001;
    double worst = 0;
    std::vector<T> x(static_cast<std::size_t>(n) + static_cast<std::size_t>(V::lanes)), y(x.size());
    for (int i = 0; i < n; ++i) x[static_cast<std::size_t>(i)] = static_cast<T>(lo + (hi - lo) * i / (n - 1));
    for (std::size_t i = 0; i + static_cast<std::size_t>(V::lanes) <= x.size(); i += static_cast<std::size_t>(V::lanes))
      V::store(y.data() + i, V::exp(V::load(x.data() + i)));
    for (int i = 0; i < n; ++i) {
      const auto ui = static_cast<std::size_t>(i);
      const long double exact = std::exp(static_cast<long double>(x[ui]));
      const double ulp = static_cast<double>(std::nextafter(static_cast<T>(exact), std::numeric_limits<T>::infinity()) -
                                             static_cast<T>(exact));
      worst = std::max(worst, static_cast<double>(std::fabs(static_cast<long double>(y[ui]) - exact)) / ulp);
    }
    CHECK_MESSAGE(worst <= 2.0, "worst error " << worst << " ulp");
    const T inf = std::numeric_limits<T>::infinity();
    const T special[] = {-inf, T(-1e30), T(0), T(1e30), inf, std::numeric_limits<T>::quiet_NaN()};
    for (const T s : special) {
      const T e = V::exp(V::splat(s))[0];
      if (s != s) {
        CHECK(e != e);
      } else {
        CHECK_MESSAGE(e == std::exp(s), "exp(" << s << ") = " << e);
      }
    }
  }

  TEST_CASE_TEMPLATE("token_logp and its backward equal a plain double log-softmax, at odd V and T = 1", T, float, double) {
    const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    for (const rpo::token_shape shape : {rpo::token_shape{3, 1, 1}, rpo::token_shape{2, 7, 13}, rpo::token_shape{1, 3, 5001}}) {
      const std::int64_t S = shape.sequences, Tk = shape.tokens, V = shape.vocab;
      CAPTURE(V);
      const token_case c(S, Tk, V, 4.0, static_cast<std::uint64_t>(V));
      const std::vector<T> logits = c.as<T>(c.logits);
      const rpo::token_logits<T> tok{.logits = logits, .target = c.target, .mask = c.mask, .shape = c.shape};
      std::vector<T> lp(c.target.size());
      rpo::token_logp(tok, lp);
      const reference r = reference_forward(c, {logits.begin(), logits.end()}, rpo::token_reduction::sum);
      // Token log-probs lose |lse|·eps in float: compare against the row's scale.
      check_all_close(lp, r.token_logp, rtol, rtol * 10, "token_logp");

      std::mt19937_64 rng(3);
      std::normal_distribution<double> g(0, 1);
      std::vector<T> grad_token(lp.size()), grad(logits.size());
      for (T& x : grad_token) x = static_cast<T>(g(rng));
      rpo::token_logp_backward(tok, grad_token, grad);
      std::vector<double> ref(logits.size(), 0.0);
      for (std::size_t row = 0; row < lp.size(); ++row) {
        if (c.mask[row] == 0) continue;
        for (std::int64_t v = 0; v < V; ++v) {
          const auto i = row * static_cast<std::size_t>(V) + static_cast<std::size_t>(v);
          ref[i] = static_cast<double>(grad_token[row]) *
                   ((v == c.target[row] ? 1.0 : 0.0) - std::exp(static_cast<double>(logits[i]) - r.lse[row]));
        }
      }
      check_all_close(grad, ref, rtol * 10, rtol, "token_logp_backward");
    }
  }

  TEST_CASE("sequence_logp: masked sum and mean, and the chain rule back to the tokens (RPO.md (E8) per token)") {
    const rpo::token_shape shape{2, 4, 0};
    const std::vector<double> lp{-1, -2, -3, -4, -0.5, -0.25, -8, -16};
    const std::vector<std::uint8_t> mask{0, 1, 1, 0, 1, 1, 1, 1};
    std::vector<double> seq(2), length(2), grad(8);
    rpo::sequence_logp<double>(lp, mask, shape, rpo::token_reduction::sum, seq, length);
    CHECK(seq[0] == -5.0);
    CHECK(seq[1] == -24.75);
    CHECK(length[0] == 2.0);
    CHECK(length[1] == 4.0);
    rpo::sequence_logp<double>(lp, mask, shape, rpo::token_reduction::mean, seq);
    CHECK(seq[0] == -2.5);
    CHECK(seq[1] == -24.75 / 4);
    const std::vector<double> g{2.0, -1.0};
    rpo::sequence_logp_backward<double>(g, mask, shape, rpo::token_reduction::mean, grad);
    CHECK(grad == std::vector<double>{0, 1, 1, 0, -0.25, -0.25, -0.25, -0.25});
    rpo::sequence_logp_backward<double>(g, {}, shape, rpo::token_reduction::sum, grad);
    CHECK(grad == std::vector<double>{2, 2, 2, 2, -1, -1, -1, -1});
  }

  TEST_CASE_TEMPLATE("fused equals unfused and the double reference: pairwise presets, odd V, T = 1, masks", P, rpo::dpo,
                     rpo::cdpo, rpo::ipo, rpo::ipo_normalized, rpo::simpo, rpo::hinge, rpo::dpo_normalized,
                     rpo::rpo_sq, rpo::rpo_fwd, rpo::rpo_bwd) {
    check_every_shape(P{}, {}, 4);
  }

  TEST_CASE_TEMPLATE("fused equals unfused and the double reference: group presets over ragged groups", P,
                     rpo::rpo_sqloo, rpo::rpo_sqpairs, rpo::rpo_softmax_bwd, rpo::rpo_softmax_fwd, rpo::infonca,
                     rpo::listwise_dpo, rpo::dpo_best_worst) {
    const std::vector<std::int64_t> offsets{0, 3, 5};
    check_every_shape(P{}, offsets, 5);
  }

  TEST_CASE_TEMPLATE("logits of magnitude 1e4 give finite, exact log-probs and gradients (no overflow)", T, float, double) {
    const token_case c(4, 3, 37, 1e4, 11);
    const double rtol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
    // float keeps |logits|·eps absolutely: the reference runs on the same rounded logits, with atol at that scale.
    check_fused_equals_unfused<rpo::rpo_bwd, T>(rpo::rpo_bwd{}, c, rpo::token_reduction::sum, {}, rtol, rtol * 10);
    check_fused_equals_unfused<rpo::ipo, T>(rpo::ipo{}, c, rpo::token_reduction::mean, {}, rtol, rtol * 10);
    const std::vector<T> logits = c.as<T>(c.logits), ref = c.as<T>(c.ref_logp);
    std::vector<T> grad(logits.size());
    const T value = rpo::evaluate_tokens(rpo::dpo{}, rpo::token_input<T>{.tokens = {logits, c.target, c.mask, c.shape}, .ref_logp = ref},
                                         rpo::token_output<T>{.grad_logits = grad});
    CHECK(std::isfinite(value));
    for (const T g : grad) REQUIRE(std::isfinite(g));
  }

  TEST_CASE("the reduction of the fused pass is rpo::evaluate's: sum and sum_over(count) scale the gradient") {
    const token_case c(4, 3, 11, 1.0, 5);
    const rpo::token_input<double> in{.tokens = {c.logits, c.target, c.mask, c.shape}, .ref_logp = c.ref_logp};
    std::vector<double> mean(c.logits.size()), sum(c.logits.size()), over(c.logits.size());
    const double m = rpo::evaluate_tokens(rpo::dpo{}, in, rpo::token_output<double>{.grad_logits = mean});
    const double s = rpo::evaluate_tokens(rpo::dpo{}, in, rpo::token_output<double>{.grad_logits = sum}, rpo::reduction::sum());
    const double o = rpo::evaluate_tokens(rpo::dpo{}, in, rpo::token_output<double>{.grad_logits = over},
                                          rpo::reduction::sum_over(8));
    CHECK_CLOSE(s, 2 * m, 1e-14, 0);
    CHECK_CLOSE(o, s / 8, 1e-14, 0);
    for (std::size_t i = 0; i < sum.size(); ++i) {
      CHECK_CLOSE(sum[i], 2 * mean[i], 1e-12, 1e-15);
      CHECK_CLOSE(over[i], sum[i] / 8, 1e-12, 1e-15);
    }
  }

  TEST_CASE("bad input: target ids, shapes, sizes and empty responses give a clear error naming the argument and value") {
    token_case c(2, 3, 5, 1.0, 1);
    std::vector<double> grad(c.logits.size(), 42.0);
    const auto call = [&](const rpo::token_input<double>& in) {
      return rpo::evaluate_tokens(rpo::dpo{}, in, rpo::token_output<double>{.grad_logits = grad});
    };
    rpo::token_input<double> in{.tokens = {c.logits, c.target, c.mask, c.shape}, .ref_logp = c.ref_logp};
    CHECK(std::isfinite(call(in)));

    std::vector<std::int64_t> bad_target = c.target;
    bad_target[4] = 5;
    c.mask[4] = 1;
    in.tokens.target = bad_target;
    std::fill(grad.begin(), grad.end(), 42.0);
    test::expect_error<std::invalid_argument>([&] { call(in); },
                                              {"rpo::dpo", "target[4]", "sequence 1, token 1", "vocab = 5", "= 5"});
    bad_target[4] = -3;
    test::expect_error<std::invalid_argument>([&] { call(in); }, {"target[4]", "must be a token id in [0, vocab = 5)", "= -3"});
    CHECK(std::all_of(grad.begin(), grad.end(), [](double g) { return g == 42.0; }));  // untouched on failure
    in.tokens.target = c.target;

    std::vector<double> short_logits(c.logits.begin(), c.logits.end() - 1);
    in.tokens.logits = short_logits;
    test::expect_error<std::invalid_argument>([&] { call(in); }, {"logits has 29 entries", "2 x 3 x 5 = 30"});
    in.tokens.logits = c.logits;
    std::vector<std::uint8_t> short_mask(5, 1);
    in.tokens.mask = short_mask;
    test::expect_error<std::invalid_argument>([&] { call(in); }, {"mask has 5 entries", "2 x 3 = 6"});
    in.tokens.mask = c.mask;
    in.tokens.target = std::span<const std::int64_t>(c.target).first(4);
    test::expect_error<std::invalid_argument>([&] { call(in); }, {"target has 4 entries"});
    in.tokens.target = c.target;
    in.tokens.shape.vocab = 0;
    test::expect_error<std::invalid_argument>([&] { call(in); }, {"shape.vocab must be >= 1", "shape.vocab = 0"});
    in.tokens.shape = c.shape;
    std::vector<double> short_grad(3);
    test::expect_error<std::invalid_argument>(
        [&] { rpo::evaluate_tokens(rpo::dpo{}, in, rpo::token_output<double>{.grad_logits = short_grad}); },
        {"grad_logits has 3 entries", "30"});
    std::vector<double> short_ref(1);
    in.ref_logp = short_ref;
    test::expect_error<std::invalid_argument>([&] { call(in); }, {"ref_logp has 1 entries but logp has 2"});
    in.ref_logp = c.ref_logp;

    // Empty responses: a clear error where a length is needed (a length-normalised reward, or the mean).
    std::vector<std::uint8_t> empty = c.mask;
    for (int t = 3; t < 6; ++t) empty[static_cast<std::size_t>(t)] = 0;
    in.tokens.mask = empty;
    CHECK(std::isfinite(call(in)));  // dpo on summed log-probs: an empty response has log-prob 0
    test::expect_error<std::domain_error>(
        [&] { rpo::evaluate_tokens(rpo::simpo{}, in, rpo::token_output<double>{.grad_logits = grad}); },
        {"rpo::simpo", "sequence 1 has an empty response", "length = 0", "normalises its reward by the response length"});
    in.per_sequence = rpo::token_reduction::mean;
    test::expect_error<std::domain_error>([&] { call(in); }, {"sequence 1 has an empty response", "mean"});
    std::vector<double> seq(2);
    test::expect_error<std::domain_error>(
        [&] { rpo::sequence_logp<double>(std::vector<double>(6), empty, {2, 3, 0}, rpo::token_reduction::mean, seq); },
        {"rpo::sequence_logp", "sequence 1 has an empty response"});
    in.per_sequence = rpo::token_reduction::sum;
    in.tokens.mask = c.mask;

    // Non-finite logits in a response row.
    std::vector<double> nan_logits = c.logits;
    std::size_t row = 0;
    while (c.mask[row] == 0) ++row;
    nan_logits[row * 5 + 2] = std::numeric_limits<double>::quiet_NaN();
    in.tokens.logits = nan_logits;
    const std::string culprit = "target[" + std::to_string(row) + "]";
    test::expect_error<std::domain_error>([&] { call(in); }, {culprit.c_str(), "must be finite", "NaN or +inf"});
    rpo::status st;
    const double v = rpo::evaluate_tokens(rpo::dpo{}, in, rpo::token_output<double>{.grad_logits = grad}, rpo::reduction::mean(),
                                          rpo::errors::report{&st});
    CHECK(std::isnan(v));
    CHECK(st.code == rpo::errc::domain_error);
  }
}
