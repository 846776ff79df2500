// Bad input at the checked entry points: a clear error naming the argument, never a silent NaN.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo.hpp"
#include "support/expect_error.hpp"

namespace {

constexpr double not_a_number = std::numeric_limits<double>::quiet_NaN();
constexpr double infinity = std::numeric_limits<double>::infinity();

using test::expect_error;

const rpo::pair_input<double> good{.logp = {-12, -20}, .ref_logp = {-13.5, -19}, .length = {10, 12}, .reward = {4, 1}};

}  // namespace

TEST_SUITE("errors") {
  TEST_CASE_TEMPLATE("the value check on the bits agrees with x - x == 0 and x > 0 on every class of number", T, double,
                     float) {
    using lim = std::numeric_limits<T>;
    const std::vector<T> values{T(0), -T(0), lim::denorm_min(), -lim::denorm_min(), lim::min(), -lim::min(), T(1), T(-1),
                                lim::max(), lim::lowest(), lim::infinity(), -lim::infinity(), lim::quiet_NaN(),
                                -lim::quiet_NaN(), lim::signaling_NaN(), lim::epsilon(), T(1e-30), T(-3.5)};
    for (const T x : values)
      for (const bool positive : {false, true}) {
        CAPTURE(x);
        CAPTURE(positive);
        const bool expected = (x - x == T(0)) && (!positive || x > T(0));
        CHECK(rpo::detail::all_valid(&x, 1, positive) == expected);
        // Inside a run of valid values, at each position of a vectorised block and of its remainder.
        for (std::size_t at : {std::size_t{0}, std::size_t{5}, std::size_t{16}, std::size_t{34}}) {
          std::vector<T> run(35, T(2));
          run[at] = x;
          CHECK(rpo::detail::all_valid(run.data(), static_cast<std::int64_t>(run.size()), positive) == expected);
        }
      }
    CHECK(rpo::detail::all_valid(static_cast<const T*>(nullptr), 0, true));
  }

  TEST_CASE("NaN or infinite log-probs, rewards and lengths are rejected with the field and index") {
    auto bad = good;
    bad.logp[1] = not_a_number;
    expect_error<std::domain_error>([&] { rpo::value_and_grad(rpo::dpo{}, bad); },
                                    {"rpo::dpo", "logp[1]", "must be finite", "nan"});
    bad = good;
    bad.ref_logp[0] = -infinity;
    expect_error<std::domain_error>([&] { rpo::value_and_grad(rpo::rpo_bwd{}, bad); }, {"rpo::rpo_bwd", "ref_logp[0]", "-inf"});
    bad = good;
    bad.reward[1] = infinity;
    expect_error<std::domain_error>([&] { rpo::value_and_grad(rpo::rpo_sq{}, bad); }, {"reward[1]", "inf"});
    bad = good;
    bad.length[0] = 0;
    expect_error<std::domain_error>([&] { rpo::value_and_grad(rpo::simpo{}, bad); }, {"rpo::simpo", "length[0]", "> 0", "= 0"});
    bad.length[0] = -3;
    expect_error<std::domain_error>([&] { rpo::value_and_grad(rpo::ipo_normalized{}, bad); }, {"length[0]", "-3"});
  }

  TEST_CASE("a field the loss does not read may be anything, NaN included") {
    rpo::pair_input<double> in{.logp = {-12, -20}, .ref_logp = {-13.5, -19}};  // no lengths, no rewards: NaN
    CHECK(std::isfinite(rpo::value_and_grad(rpo::dpo{}, in).loss));
    CHECK(std::isfinite(rpo::value_and_grad(rpo::ipo{}, in).loss));
    rpo::pair_input<double> no_ref{.logp = {-12, -20}, .length = {3, 4}};
    CHECK(std::isfinite(rpo::value_and_grad(rpo::simpo{}, no_ref).loss));
    expect_error<std::domain_error>([&] { rpo::value_and_grad(rpo::dpo{}, no_ref); }, {"ref_logp[0]"});
  }

  TEST_CASE("parameters out of range: beta <= 0, eta < 0, tau <= 0, epsilon outside 0 < eps <= 1/2, gamma not finite") {
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::dpo{.beta = -0.1}, good); },
                                        {"rpo::dpo: beta must be finite and > 0, but got beta = -0.1"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::dpo{.beta = 0}, good); }, {"beta", "= 0"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::simpo{.beta = not_a_number}, good); }, {"beta", "nan"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::rpo_fwd{.eta = -1}, good); },
                                        {"rpo::rpo_fwd", "eta must be finite and >= 0", "-1"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::ipo{.tau = 0}, good); }, {"rpo::ipo", "tau", "= 0"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::ipo_normalized{.tau = -2}, good); }, {"tau"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::cdpo{.epsilon = 0}, good); },
                                        {"epsilon must be in (0, 0.5]", "hard_label"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::cdpo{.epsilon = 0.7}, good); }, {"epsilon", "0.7"});
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(rpo::simpo{.gamma = infinity}, good); }, {"gamma", "inf"});
    using custom = rpo::loss<rpo::distance::squared, rpo::reward::implicit, rpo::target::constant, rpo::sampling::pair>;
    expect_error<std::invalid_argument>([] { rpo::value_and_grad(custom{.target = {.value = not_a_number}}, good); },
                                        {"rpo::loss: value must be finite"});
  }

  TEST_CASE("batches: sizes, missing fields, groups, offsets, outputs and reductions") {
    const std::vector<double> lp{-1, -2, -3, -4}, ref{-1, -2, -3}, five{-1, -2, -3, -4, -5};
    const std::vector<double> ref4{-1, -1, -1, -1};
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref}); },
                                        {"rpo::dpo: ref_logp has 3 entries but logp has 4"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::rpo_sq{}, {.logp = lp, .ref_logp = ref4}); },
                                        {"reward is read by this loss but was not given"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::simpo{}, {.logp = lp}); }, {"length"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::simpo{}, {.logp = five, .length = five}); },
                                        {"5 entries", "not a multiple of the group size 2",
                                         "exactly 2 responses, also with offsets"});  // offsets cannot help here
    const std::vector<std::int64_t> three_groups{0, 1, 3, 4}, not_zero{1, 2, 4}, short_end{0, 2};
    expect_error<std::invalid_argument>(
        [&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref4, .offsets = three_groups}); },
        {"group 0", "has 1 responses", "exactly 2"});
    expect_error<std::invalid_argument>(
        [&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref4, .offsets = not_zero}); }, {"offsets[0] must be 0"});
    expect_error<std::invalid_argument>(
        [&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref4, .offsets = short_end}); },
        {"offsets must end at the number of responses 4", "last offset is 2"});
    std::vector<double> grad3(3), losses3(3);
    expect_error<std::invalid_argument>(
        [&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref4}, {.grad_logp = grad3}); },
        {"grad_logp has 3 entries but must have 4"});
    expect_error<std::invalid_argument>(
        [&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref4}, {.group_loss = losses3}); },
        {"group_loss has 3 entries but must have 2"});
    expect_error<std::invalid_argument>([&] { rpo::evaluate(rpo::dpo{}, rpo::batch_input<double>{}); },
                                        {"the batch is empty", "reduction::sum()"});
    expect_error<std::invalid_argument>(
        [&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref4}, {}, rpo::reduction::sum_over(0)); },
        {"reduction count must be finite and > 0"});
    std::vector<double> bad = lp;
    bad[3] = not_a_number;
    expect_error<std::domain_error>([&] { rpo::evaluate(rpo::dpo{}, {.logp = bad, .ref_logp = ref4}); }, {"logp[3]"});
    // An empty batch with a sum is 0, not an error: an empty micro-batch adds nothing.
    CHECK(rpo::evaluate(rpo::dpo{}, rpo::batch_input<double>{}, {}, rpo::reduction::sum()) == 0);
  }

  TEST_CASE("errors::report fills a status and returns NaN instead of throwing: errors::unchecked checks no values") {
    rpo::status status;
    auto bad = good;
    bad.logp[0] = not_a_number;
    const auto r = rpo::value_and_grad(rpo::dpo{}, bad, rpo::errors::report{&status});
    CHECK(std::isnan(r.loss));
    CHECK(!status.ok());
    CHECK(status.code == rpo::errc::domain_error);
    CHECK(status.message.find("logp[0]") != std::string::npos);

    rpo::status param;
    const auto p = rpo::value_and_grad(rpo::dpo{.beta = -1}, good, rpo::errors::report{&param});
    CHECK(std::isnan(p.loss));
    CHECK(param.code == rpo::errc::invalid_parameter);

    rpo::status fine;
    const auto ok = rpo::value_and_grad(rpo::dpo{}, good, rpo::errors::report{&fine});
    CHECK(fine.ok());
    CHECK(std::isfinite(ok.loss));

    // unchecked: no exception, the NaN goes through (the caller promised valid input).
    CHECK(std::isnan(rpo::value_and_grad(rpo::dpo{}, bad, rpo::errors::unchecked{}).loss));

    // A failed batch leaves the outputs untouched: the bad value is in the last pair, found before any is written.
    const std::vector<double> batch_logp{-1, -2, -3, not_a_number}, batch_ref{-1, -1, -1, -1};
    std::vector<double> grad(4, 7.0), losses(2, 7.0);
    rpo::status batch_status;
    const double value = rpo::evaluate(rpo::dpo{}, {.logp = batch_logp, .ref_logp = batch_ref},
                                       {.group_loss = losses, .grad_logp = grad}, rpo::reduction::mean(),
                                       rpo::errors::report{&batch_status});
    CHECK(std::isnan(value));
    CHECK(batch_status.message.find("logp[3]") != std::string::npos);
    CHECK(grad == std::vector<double>(4, 7.0));
    CHECK(losses == std::vector<double>(2, 7.0));
    // ... but sizes still throw under unchecked: a wrong one would read past the end of an array.
    const std::vector<double> lp{-1, -2, -3, -4}, ref{-1, -2};
    expect_error<std::invalid_argument>(
        [&] { rpo::evaluate(rpo::dpo{}, {.logp = lp, .ref_logp = ref}, {}, rpo::reduction::mean(), rpo::errors::unchecked{}); },
        {"ref_logp has 2 entries but logp has 4"});
  }
}

TEST_CASE("rpo::holding: a declared input gives the undeclared call's result, and keeps the run-time checks") {
  using rpo::input;
  const rpo::pair_input<double> pair{.logp = {-12, -20}, .ref_logp = {-13.5, -19}, .length = {10, 12}};
  static_assert(rpo::with_fields<input::logp | input::length, rpo::pair_input<double>>::fields ==
                (input::logp | input::length));
  // Declaring more than the loss reads is fine (simpo reads no reference).
  const auto declared = rpo::value_and_grad(rpo::simpo{}, rpo::holding<input::logp | input::ref_logp | input::length>(pair));
  const auto plain = rpo::value_and_grad(rpo::simpo{}, pair);
  CHECK(declared.loss == plain.loss);
  CHECK(declared.grad_logp[0] == plain.grad_logp[0]);
  CHECK(declared.grad_logp[1] == plain.grad_logp[1]);

  const std::vector<double> logp{-12, -20, -3, -4}, ref{-13.5, -19, -3.5, -3}, reward{1, 0, 0.25, 0.5};
  const rpo::batch_input<double> batch{.logp = logp, .ref_logp = ref, .reward = reward};
  std::vector<double> g1(4), g2(4);
  const double a = rpo::evaluate(rpo::rpo_bwd{}, rpo::holding<input::logp | input::ref_logp | input::reward>(batch),
                                 {.grad_logp = g1}, rpo::reduction::sum());
  const double b = rpo::evaluate(rpo::rpo_bwd{}, batch, {.grad_logp = g2}, rpo::reduction::sum());
  CHECK(a == b);
  CHECK(g1 == g2);

  // The declaration is a promise about which fields are there, not about their values: a NaN is still refused.
  rpo::pair_input<double> bad = pair;
  bad.ref_logp[1] = std::numeric_limits<double>::quiet_NaN();
  expect_error<std::domain_error>(
      [&] { (void)rpo::value_and_grad(rpo::dpo{}, rpo::holding<input::logp | input::ref_logp>(bad)); },
      {"ref_logp[1] must be finite"});
}
