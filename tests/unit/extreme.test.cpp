// The extreme-value suite (docs/reliability.md): every registered loss — each preset and every valid general
// composition — at the edges of its domain, in double and float. Sequence log-probs near −1e4 in float (the gap
// cancels), |gap| up to 1e4 in float and 1e15 in double, all-equal rewards and ties, K = 1 where a scheme needs two,
// empty batches, one-token responses, rewards of 1e30. Each case either gives a finite loss and finite gradients, or
// is rejected with an error that says why; nothing returns a silent NaN or Inf.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo.hpp"
#include "rpo/spec.hpp"
#include "support/close.hpp"
#include "support/every_loss.hpp"
#include "support/expect_error.hpp"

// Everything, the test cases too, lives in namespace extreme: this file is compiled in one unity build with
// tests/unit/spec.test.cpp (tests/CMakeLists.txt), whose helpers sit in an anonymous namespace.
namespace extreme {

const std::vector<rpo::any_loss>& losses() { return test::every_loss(); }

/// A group of the loss's size (its fixed size, or `k`) built from per-response generators.
template <class T> struct group {
  std::vector<T> logp, ref_logp, length, reward;
};

/// A loss whose rewards are win probabilities (rpo::sppo_soft) gets each reward r as ½ + ½·tanh(r) ∈ [0, 1]: the same
/// order and ties, and ±1e30 become 1 and 0, the ends of its domain.
template <class T, class F> group<T> make(const rpo::any_loss& l, std::int64_t k, F&& at) {
  const std::int64_t n = l.group_size() != 0 ? l.group_size() : k;
  group<T> g;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto [logp, ref_logp, length, reward] = at(i);
    g.logp.push_back(static_cast<T>(logp));
    g.ref_logp.push_back(static_cast<T>(ref_logp));
    g.length.push_back(static_cast<T>(length));
    g.reward.push_back(static_cast<T>(l.reward_is_probability() ? 0.5 + 0.5 * std::tanh(reward) : reward));
  }
  return g;
}

struct outcome {
  bool ok;
  double loss;
  bool finite;
};

template <class T> outcome run(const rpo::any_loss& l, const group<T>& g) {
  const std::int64_t offsets[2] = {0, static_cast<std::int64_t>(g.logp.size())};
  std::vector<T> grad(g.logp.size()), grad_ref(g.logp.size());
  const T value = l.evaluate(rpo::batch_input<T>{g.logp, g.ref_logp, g.length, g.reward, offsets},
                             rpo::batch_output<T>{{}, grad, grad_ref}, rpo::reduction::sum());
  bool finite = std::isfinite(value);
  for (std::size_t i = 0; i < grad.size(); ++i) finite = finite && std::isfinite(grad[i]) && std::isfinite(grad_ref[i]);
  return {true, static_cast<double>(value), finite};
}

/// Whether the distance is the unbounded squared one.
bool squared(const rpo::any_loss& l) { return l.composition().find("squared") != std::string::npos; }


TEST_CASE("extreme: float log-probs near -1e4 keep the gap (cancellation)") {
  // logp and ref_logp near −1e4 differ by O(1); in float their differences are exact (Sterbenz), so the float loss
  // must match the double loss on the same (float-rounded) inputs to float precision.
  for (const rpo::any_loss& l : losses()) {
    CAPTURE(l.spec());
    const auto at = [](std::int64_t i) {
      const double base = -10000.0 - 3.0 * static_cast<double>(i);
      return std::tuple{base + 0.75 * static_cast<double>(i % 2), base + 0.25, 50.0 + static_cast<double>(i),
                        1.5 - 0.5 * static_cast<double>(i)};
    };
    const group<float> f = make<float>(l, 4, at);
    const auto widen = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
    const group<double> d{widen(f.logp), widen(f.ref_logp), widen(f.length), widen(f.reward)};
    const outcome of = run(l, f), od = run(l, d);
    CHECK(of.finite);
    CHECK(od.finite);
    // Without a reference the score β·log π (or β·log π/n) is formed from −1e4 before the gap, so float keeps only
    // about 1e-4 of a gap of O(1) (docs/reliability.md); with one, ℓ = log π − log π_ref is exact first.
    if (l.composition().find("reference_free") != std::string::npos)
      CHECK_CLOSE(of.loss, od.loss, 1e-3, 1e-5);
    else
      CHECK_CLOSE(of.loss, od.loss, 1e-5, 1e-6);
  }
}

TEST_CASE("extreme: gaps of 1e4 in float and 1e15 in double give finite losses and gradients") {
  for (const rpo::any_loss& l : losses()) {
    CAPTURE(l.spec());
    for (const double sign : {1.0, -1.0}) {
      CAPTURE(sign);
      // The first response ahead by the gap (or behind, sign −1), rewards distinct and ordered the same way.
      const auto at = [&](double gap) {
        return [=](std::int64_t i) {
          return std::tuple{i == 0 ? sign * gap : -static_cast<double>(i), 0.0, 1.0 + static_cast<double>(i),
                            2.0 - static_cast<double>(i)};
        };
      };
      CHECK(run(l, make<float>(l, 3, at(1e4))).finite);
      CHECK(run(l, make<double>(l, 3, at(1e15))).finite);
    }
  }
}

TEST_CASE("extreme: rewards of 1e30 are finite in double, and in float for every bounded distance") {
  for (const rpo::any_loss& l : losses()) {
    CAPTURE(l.spec());
    const auto at = [](std::int64_t i) {
      return std::tuple{-1.0 - static_cast<double>(i), -1.5, 2.0, i == 0 ? 1e30 : -1e30 * static_cast<double>(i)};
    };
    CHECK(run(l, make<double>(l, 3, at)).finite);
    // (a − b)² with |b| ~ 1e30 is 1e60, past float's 3.4e38: the squared distances are promised to |a − b| < 1e19 in
    // float (docs/reliability.md); the Bernoulli and logistic distances saturate and stay finite.
    if (!squared(l) || l.composition().find("reward_gap") == std::string::npos) CHECK(run(l, make<float>(l, 3, at)).finite);
  }
}

TEST_CASE("extreme: all-equal rewards and ties: finite where the scheme takes them, a clear error where it ranks") {
  for (const rpo::any_loss& l : losses()) {
    CAPTURE(l.spec());
    const auto equal = [](std::int64_t i) { return std::tuple{-1.0 - static_cast<double>(i), -2.0, 3.0, 0.5}; };
    if (l.ranks() == rpo::ranking::strict || l.ranks() == rpo::ranking::extremes) {
      test::expect_error<std::domain_error>([&] { run(l, make<double>(l, 3, equal)); }, {"group 0", "tie"});
    } else if (l.ranks() == rpo::ranking::chosen_first) {
      test::expect_error<std::domain_error>([&] { run(l, make<double>(l, 3, equal)); },
                                            {"group 0", "needs the chosen response's explicit reward above"});
    } else {
      const outcome o = run(l, make<double>(l, 3, equal));
      CHECK(o.finite);
    }
  }
}

TEST_CASE("extreme: K = 1, an empty batch, one-token responses") {
  const std::vector<double> one{-1.0}, none{};
  const std::int64_t single[2] = {0, 1}, empty[1] = {0};
  for (const rpo::any_loss& l : losses()) {
    CAPTURE(l.spec());
    // K = 1: every scheme compares at least two responses.
    test::expect_error<std::invalid_argument>(
        [&] {
          l.evaluate(rpo::batch_input<double>{one, one, std::vector<double>{1.0}, one, single}, rpo::batch_output<double>{},
                     rpo::reduction::sum());
        },
        {"group 0", "has 1 responses, but this sampling scheme needs"});
    // No group: the sum is 0, and the mean is an error (it would be 0/0).
    const std::int64_t* no_offsets = l.group_size() != 0 ? nullptr : empty;
    const std::span<const std::int64_t> offsets = no_offsets ? std::span<const std::int64_t>(empty, 1)
                                                             : std::span<const std::int64_t>{};
    CHECK(l.evaluate(rpo::batch_input<double>{none, none, none, none, offsets}, rpo::batch_output<double>{},
                     rpo::reduction::sum()) == 0.0);
    test::expect_error<std::invalid_argument>(
        [&] { l.evaluate(rpo::batch_input<double>{none, none, none, none, offsets}, rpo::batch_output<double>{}); },
        {"the batch is empty", "mean over 0 groups is undefined"});
  }
  // One-token responses: the length-normalised rewards equal the plain ones.
  const std::vector<double> logp{-1.25, -3.5}, ref{-1.5, -2.0}, ones{1.0, 1.0};
  const auto value = [&](const char* spec) {
    return rpo::parse_loss(spec).evaluate(rpo::batch_input<double>{logp, ref, ones, {}, {}}, rpo::batch_output<double>{});
  };
  CHECK(value("dpo_normalized(beta=0.7)") == value("dpo(beta=0.7)"));
  CHECK(value("ipo_normalized(tau=0.3)") == value("ipo(tau=0.3)"));
}

}  // namespace extreme
