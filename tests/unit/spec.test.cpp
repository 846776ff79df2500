// Spec strings and rpo::any_loss: every registered loss parses, its canonical spec reads back to itself, and
// the erased loss gives bit for bit what the static composition gives; the general form equals each preset it
// spells out; bad specs name what is wrong and list the valid choices.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <set>
#include <span>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "rpo/spec.hpp"
#include "support/expect_error.hpp"
#include "support/token_case.hpp"

namespace {

/// A random batch of G pairs with every field, in T. Each pair's rewards are ordered, r_c > r_r (ODPO needs it).
template <class T> struct random_batch {
  std::vector<T> logp, ref_logp, length, reward;
  explicit random_batch(std::size_t groups, unsigned seed = 7) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> lp(-300, -1), shift(-20, 20), n(1, 200), r(-5, 5);
    for (std::size_t i = 0; i < 2 * groups; ++i) {
      const double l = lp(rng);
      logp.push_back(static_cast<T>(l));
      ref_logp.push_back(static_cast<T>(l + shift(rng)));
      length.push_back(static_cast<T>(std::round(n(rng))));
      reward.push_back(static_cast<T>(r(rng)));
      if (i % 2 == 1 && reward[i] > reward[i - 1]) std::swap(reward[i], reward[i - 1]);
    }
  }
  rpo::batch_input<T> input() const { return {logp, ref_logp, length, reward, {}}; }
};

/// Loss, per-group losses and both gradients of one evaluation.
template <class T> struct outputs {
  T loss{};
  std::vector<T> group_loss, grad_logp, grad_ref_logp;
  bool operator==(const outputs&) const = default;
};

template <class T, class F> outputs<T> run(std::size_t groups, std::size_t n, F&& evaluate) {
  outputs<T> o{T(0), std::vector<T>(groups), std::vector<T>(n), std::vector<T>(n)};
  o.loss = evaluate(rpo::batch_output<T>{o.group_loss, o.grad_logp, o.grad_ref_logp});
  return o;
}

/// The erased loss against a static loss on the same batch: equal to the last bit.
template <class T, class L> void check_same(const rpo::any_loss& erased, const L& typed, rpo::reduction how) {
  const random_batch<T> batch(16);
  const auto in = batch.input();
  const auto got = run<T>(16, 32, [&](const auto& out) { return erased.evaluate(in, out, how); });
  const auto want = run<T>(16, 32, [&](const auto& out) { return rpo::evaluate(typed, in, out, how); });
  CHECK(got == want);
}

std::string message_of(const char* spec) {
  try {
    (void)rpo::parse_loss(spec);
  } catch (const rpo::spec_error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_SUITE("spec") {
  TEST_CASE_TEMPLATE("any_loss::evaluate_tokens is rpo::evaluate_tokens with the static preset, to the last bit", T,
                     float, double) {
    // Pairs (dpo: ref_logp; simpo: lengths, so the empty-response check too) and K-groups (rpo_sqloo: rewards).
    const test::token_case<T> c(6, 5, 37, 3.0, 11);
    const std::vector<std::int64_t> offsets{0, 4, 6};
    const auto run = [&](const auto& loss, bool grouped, bool in_place) {
      std::vector<T> logits = c.logits, grad(in_place ? 0 : c.logits.size()), logp(6);
      const rpo::token_input<T> in{.tokens = {logits, c.target, c.mask, c.shape}, .ref_logp = c.ref_logp,
                                   .reward = c.reward, .offsets = grouped ? std::span<const std::int64_t>(offsets)
                                                                          : std::span<const std::int64_t>()};
      const rpo::token_output<T> out{.grad_logits = in_place ? std::span<T>(logits) : std::span<T>(grad), .logp = logp};
      T value;
      if constexpr (std::is_same_v<std::decay_t<decltype(loss)>, rpo::any_loss>) {
        value = loss.evaluate_tokens(in, out, rpo::reduction::sum());
      } else {
        value = rpo::evaluate_tokens(loss, in, out, rpo::reduction::sum());
      }
      return std::make_tuple(value, in_place ? logits : grad, logp);
    };
    for (const bool in_place : {false, true}) {
      CHECK(run(rpo::parse_loss("dpo(beta=0.3)"), false, in_place) == run(rpo::dpo{.beta = 0.3}, false, in_place));
      CHECK(run(rpo::parse_loss("simpo"), false, in_place) == run(rpo::simpo{}, false, in_place));
      CHECK(run(rpo::parse_loss("rpo_sqloo"), true, in_place) == run(rpo::rpo_sqloo{}, true, in_place));
    }
    // Errors name the spec: a target id outside [0, V), an empty response under a length-normalised reward.
    std::vector<std::int64_t> bad_target = c.target;
    bad_target[static_cast<std::size_t>(std::find(c.mask.begin(), c.mask.end(), 1) - c.mask.begin())] = 37;
    std::vector<T> logits = c.logits;
    const rpo::any_loss simpo = rpo::parse_loss("simpo");
    const auto message = [&](const rpo::token_input<T>& in) {
      std::vector<T> grad(in.tokens.logits.size());
      try {
        simpo.evaluate_tokens(in, {.grad_logits = grad});
      } catch (const std::exception& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    };
    const std::string bad_id = message({.tokens = {logits, bad_target, c.mask, c.shape}, .ref_logp = c.ref_logp});
    CHECK(bad_id.find(simpo.spec()) != std::string::npos);
    CHECK(bad_id.find("37") != std::string::npos);
    const test::token_case<T> empty(2, 4, 7, 1.0, 3, 1);
    std::vector<T> empty_logits = empty.logits;
    const std::string no_response = message({.tokens = {empty_logits, empty.target, empty.mask, empty.shape}});
    CHECK(no_response.find("sequence 1 has an empty response") != std::string::npos);
    CHECK(no_response.find(simpo.spec()) != std::string::npos);
  }

  TEST_CASE("every preset parses by name, and the erased loss is the static preset to the last bit") {
    const auto check = [](const char* name, const auto& preset) {
      CAPTURE(name);
      const rpo::any_loss l = rpo::parse_loss(name);
      CHECK(l.name() == name);
      CHECK(l.group_size() == 2);
      CHECK(l.inputs() == decltype(rpo::as_loss(preset))::inputs);
      check_same<double>(l, preset, rpo::reduction::mean());
      check_same<float>(l, preset, rpo::reduction::sum());
      check_same<double>(l, preset, rpo::reduction::sum_over(40));
    };
    check("dpo", rpo::dpo{});
    check("cdpo", rpo::cdpo{});
    check("ipo", rpo::ipo{});
    check("ipo_normalized", rpo::ipo_normalized{});
    check("simpo", rpo::simpo{});
    check("hinge", rpo::hinge{});
    check("dpo_normalized", rpo::dpo_normalized{});
    check("rpo_sq", rpo::rpo_sq{});
    check("rpo_fwd", rpo::rpo_fwd{});
    check("rpo_bwd", rpo::rpo_bwd{});
    check("exo_pair", rpo::exo_pair{});
    check("cpo_pref", rpo::cpo_pref{});
    check("odpo", rpo::odpo{});
    check("rdpo", rpo::rdpo{});
    check("hdpo", rpo::hdpo{});
    check("alphapo", rpo::alphapo{});
    check("fdpo_forward_kl", rpo::fdpo_forward_kl{});
    check("fdpo_js", rpo::fdpo_js{});
    check("fdpo_alpha", rpo::fdpo_alpha{});
    check("discopop", rpo::discopop{});
    check("focalpo", rpo::focalpo{});
    check("cpo", rpo::cpo{});
    check("irpo", rpo::irpo{});
    check("mpo", rpo::mpo{});
    check("robust_dpo", rpo::robust_dpo{});
    check("nca_pair", rpo::nca_pair{});
    check("bco_pair", rpo::bco_pair{});
    check("sppo_hard", rpo::sppo_hard{});
    check("apo_zero", rpo::apo_zero{});
    check("apo_down", rpo::apo_down{});
    check("dpop", rpo::dpop{});
    check("dpo_shift", rpo::dpo_shift{});
  }

  TEST_CASE("parameters reach the preset: non-default values give the preset built with them") {
    check_same<double>(rpo::parse_loss("dpo(beta=0.37)"), rpo::dpo{.beta = 0.37}, rpo::reduction::mean());
    check_same<double>(rpo::parse_loss("cdpo(epsilon=0.25, beta=0.3)"), rpo::cdpo{.beta = 0.3, .epsilon = 0.25},
                       rpo::reduction::mean());
    check_same<double>(rpo::parse_loss("ipo(tau=0.02)"), rpo::ipo{.tau = 0.02}, rpo::reduction::mean());
    check_same<double>(rpo::parse_loss(" rpo::simpo ( beta = 2.5 , gamma = -1e-1 ) "),
                       rpo::simpo{.beta = 2.5, .gamma = -0.1}, rpo::reduction::mean());
    check_same<double>(rpo::parse_loss("rpo_fwd(beta=0.5, eta=3)"), rpo::rpo_fwd{.beta = 0.5, .eta = 3},
                       rpo::reduction::mean());
    check_same<double>(rpo::parse_loss("fdpo_alpha(alpha=0.25, beta=0.3)"), rpo::fdpo_alpha{.beta = 0.3, .alpha = 0.25},
                       rpo::reduction::mean());
    check_same<double>(rpo::parse_loss("alphapo(beta=5, alpha=-0.5, gamma=1)"),
                       rpo::alphapo{.beta = 5, .alpha = -0.5, .gamma = 1}, rpo::reduction::mean());
    check_same<float>(rpo::parse_loss("discopop(tau=0.5)"), rpo::discopop{.tau = 0.5}, rpo::reduction::mean());
  }

  TEST_CASE("bco_pair's delta and sppo_soft through the registry: the static presets to the last bit, their checks") {
    check_same<double>(rpo::parse_loss("bco_pair(beta=0.3, delta=-1.25)"), rpo::bco_pair{.beta = 0.3, .delta = -1.25},
                       rpo::reduction::mean());
    check_same<float>(rpo::parse_loss("bco_pair(delta=2)"), rpo::bco_pair{.delta = 2}, rpo::reduction::sum());
    CHECK(rpo::parse_loss("bco_pair").spec() == "bco_pair(beta=0.1, delta=0)");
    CHECK(contains(message_of("bco_pair(delta=inf)"), "delta must be finite"));

    // sppo_soft reads its rewards as win probabilities: a batch with P in [0, 1] (the ends included).
    random_batch<double> batch(16);
    for (std::size_t i = 0; i < batch.reward.size(); ++i)
      batch.reward[i] = i == 0 ? 1.0 : i == 1 ? 0.0 : 0.5 + 0.5 * std::tanh(batch.reward[i]);
    const rpo::any_loss soft = rpo::parse_loss("sppo_soft(beta=0.25)");
    CHECK(soft.group_size() == 2);
    CHECK(soft.reward_is_probability());
    CHECK_FALSE(rpo::parse_loss("dpo").reward_is_probability());
    CHECK_FALSE(rpo::parse_loss("madpo").reward_is_probability());
    const auto in = batch.input();
    const auto got = run<double>(16, 32, [&](const auto& out) { return soft.evaluate(in, out); });
    const auto want =
        run<double>(16, 32, [&](const auto& out) { return rpo::evaluate(rpo::sppo_soft{.beta = 0.25}, in, out); });
    CHECK(got == want);
    batch.reward[5] = 1.5;
    test::expect_error<std::domain_error>([&] { (void)soft.evaluate(batch.input()); },
                                          {"rpo::sppo_soft: reward[5] must be a probability in [0, 1], but got "
                                           "reward[5] = 1.5"});
  }

  TEST_CASE("the general form spelling out a preset is that preset, to the last bit") {
    const auto same = [](const char* spec, const auto& preset) {
      CAPTURE(spec);
      check_same<double>(rpo::parse_loss(spec), preset, rpo::reduction::mean());
      check_same<float>(rpo::parse_loss(spec), preset, rpo::reduction::mean());
    };
    same("rpo(distance=bwd_kl, reward=implicit, target=hard, beta=0.1)", rpo::dpo{});
    same("rpo(distance=logistic, reward=implicit, target=smoothed, beta=0.1, epsilon=0.1)", rpo::cdpo{});
    same("rpo(distance=sq, reward=implicit, target=constant, beta=1, value=5)", rpo::ipo{.tau = 0.1});
    same("rpo(distance=sq, reward=implicit_norm, target=constant, beta=1, value=2.5)", rpo::ipo_normalized{.tau = 0.2});
    same("rpo(distance=bwd_kl, reward=ref_free_norm, target=hard, gamma=0.5)", rpo::simpo{});
    same("rpo(distance=hinge, reward=implicit, target=hard, beta=0.3)", rpo::hinge{.beta = 0.3});
    same("rpo(distance=bwd_kl, reward=implicit_norm, target=hard, beta=5)", rpo::dpo_normalized{});
    same("rpo(distance=sq, reward=implicit, beta=0.2)", rpo::rpo_sq{});  // target=reward_gap is the default
    same("rpo(distance=fwd_kl, reward=implicit, target=reward_gap, beta=0.2, eta=1)", rpo::rpo_fwd{});
    same("rpo(distance=bwd_kl, reward=implicit, target=reward_gap, sampling=pair, beta=0.2, eta=2)",
         rpo::rpo_bwd{.eta = 2});
  }

  TEST_CASE("a general composition without a margin equals the bare static composition: gamma = 0 changes no bit") {
    using namespace rpo;
    check_same<double>(parse_loss("rpo(distance=fwd_kl, reward=ref_free, target=smoothed, epsilon=0.2, beta=0.4)"),
                       loss<distance::bernoulli_fwd_kl, reward::reference_free, target::smoothed_label, sampling::pair>{
                           .reward = {.beta = 0.4}, .target = {.epsilon = 0.2}},
                       reduction::mean());
    check_same<double>(parse_loss("rpo(distance=logistic, reward=implicit_norm, target=constant, value=-0.75)"),
                       loss<distance::logistic, reward::implicit_normalized, target::constant, sampling::pair>{
                           .target = {.value = -0.75}},
                       reduction::sum());
    check_same<double>(
        parse_loss("rpo(distance=sq, reward=ref_free_norm, gamma=0.3, eta=0.5)"),
        loss<distance::squared, reward::reference_free_normalized, target::margin<target::reward_gap>, sampling::pair>{
            .target = {.gamma = 0.3, .inner = {.eta = 0.5}}},
        reduction::mean());
  }

  TEST_CASE("every registered loss's canonical spec reads back to itself, and names all its parameters") {
    std::set<std::string> names;
    for (const rpo::loss_info& info : rpo::registered_losses()) {
      CAPTURE(info.name);
      CHECK(names.insert(info.name).second);
      CHECK_FALSE(info.summary.empty());
      CHECK_FALSE(info.composition.empty());
      if (info.name == "rpo") continue;
      const rpo::any_loss l = rpo::parse_loss(info.name);
      CHECK(rpo::parse_loss(l.spec()).spec() == l.spec());
      std::string expected = info.name + "(";
      for (std::size_t k = 0; k < info.parameters.size(); ++k)
        expected += (k == 0 ? "" : ", ") + info.parameters[k].name + "=" + info.parameters[k].default_value;
      CHECK(l.spec() == expected + ")");
      CHECK(contains(info.composition, l.composition()));
    }
    CHECK(names.count("rpo") == 1);
    const std::string general = "rpo(distance=logistic, reward=ref_free_norm, target=smoothed, epsilon=0.01)";
    const rpo::any_loss l = rpo::parse_loss(general);
    CHECK(l.spec() == "rpo(distance=logistic, reward=ref_free_norm, target=smoothed, sampling=pair, beta=2, "
                      "epsilon=0.01, gamma=0)");
    CHECK(rpo::parse_loss(l.spec()).spec() == l.spec());
    CHECK(l.composition() ==
          "distance::logistic, reward::reference_free_normalized, target::margin<target::smoothed_label>, "
          "sampling::pair");
    // Shortest round-trip numbers: 0.1 is written "0.1", and 1/3 keeps every digit it needs.
    CHECK(rpo::parse_loss("dpo(beta=0.333333333333333314829616256247)").spec() == "dpo(beta=0.3333333333333333)");
  }

  TEST_CASE("unknown names and parameters list the valid ones") {
    const std::string unknown = message_of("dpoo(beta=0.1)");
    CHECK(contains(unknown, "unknown loss \"dpoo\""));
    for (const rpo::loss_info& info : rpo::registered_losses()) CHECK(contains(unknown, info.name));
    CHECK(contains(message_of("simpo(eta=1)"), "simpo has no parameter \"eta\"; its parameters are: beta, gamma"));
    CHECK(contains(message_of("rpo(distance=kl, reward=implicit)"),
                   "distance = \"kl\" is not one of: bwd_kl, fwd_kl, sq, logistic, hinge"));
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, sampling=lo)"),
                   "sampling = \"lo\" is not one of: pair, loo, all_pairs, best_worst, softmax, plackett_luce"));
    CHECK(contains(message_of("rpo(reward=implicit)"),
                   "distance must be given: distance=bwd_kl|fwd_kl|sq|logistic|hinge"));
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, target=hard, eta=1)"),
                   "eta applies only to target=reward_gap (this spec has target=hard)"));
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, lambda=1)"), "rpo has no parameter \"lambda\""));
  }

  TEST_CASE("compositions that make no sense are refused with the reason") {
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, target=hard)"),
                   "distance=sq has no finite loss at a hard label"));
    CHECK(contains(message_of("rpo(distance=fwd_kl, reward=implicit, target=hard)"),
                   "distance=fwd_kl has no finite loss at a hard label"));
    CHECK(contains(message_of("rpo(distance=hinge, reward=implicit, target=constant)"),
                   "distance=hinge takes no target gap"));
  }

  TEST_CASE("invalid values are refused at parse time, naming the parameter and its value") {
    CHECK(contains(message_of("dpo(beta=-0.1)"), "dpo(beta=-0.1): beta must be finite and > 0, but got beta = -0.1"));
    CHECK(contains(message_of("dpo(beta=0)"), "beta must be finite and > 0"));
    CHECK(contains(message_of("dpo(beta=inf)"), "beta must be finite and > 0"));
    CHECK(contains(message_of("dpo(beta=nan)"), "beta must be finite and > 0"));
    CHECK(contains(message_of("ipo(tau=0)"), "tau must be finite and > 0"));
    CHECK(contains(message_of("cdpo(epsilon=0.6)"), "epsilon must be in (0, 0.5]"));
    CHECK(contains(message_of("rpo_sq(eta=-1)"), "eta must be finite and >= 0"));
    CHECK(contains(message_of("rpo(distance=bwd_kl, reward=implicit, target=hard, gamma=inf)"), "gamma must be finite"));
    CHECK(contains(message_of("dpo(beta=abc)"), "beta = \"abc\" is not a number"));
    CHECK(contains(message_of("dpo(beta=0.1x)"), "beta = \"0.1x\" is not a number"));
  }

  TEST_CASE("syntax errors give the position") {
    CHECK(contains(message_of(""), "expected a loss name at position 0"));
    CHECK(contains(message_of("dpo(beta"), "expected '=' after \"beta\" at position 8"));
    CHECK(contains(message_of("dpo(beta=)"), "expected a value at position 9"));
    CHECK(contains(message_of("dpo(beta=0.1"), "expected ',' or ')' at position 12"));
    CHECK(contains(message_of("dpo(beta=0.1,)"), "expected a parameter name at position 13"));
    CHECK(contains(message_of("dpo(beta=0.1) extra"), "unexpected \"extra\" at position 14"));
    CHECK(contains(message_of("dpo(beta=1, beta=2)"), "parameter \"beta\" is given twice"));
    CHECK(rpo::parse_loss("dpo()").spec() == "dpo(beta=0.1)");
  }

  TEST_CASE("group presets and their general forms are the static presets on ragged groups, to the last bit") {
    // Ragged groups of 2 to 5 responses with distinct rewards (the ranking schemes reject ties).
    const std::vector<std::int64_t> offsets{0, 3, 5, 10, 14, 16};
    const random_batch<double> batch(8);
    const rpo::batch_input<double> in{batch.logp, batch.ref_logp, batch.length, batch.reward, offsets};
    const auto same = [&](const char* spec, const auto& preset) {
      CAPTURE(spec);
      const rpo::any_loss erased = rpo::parse_loss(spec);
      CHECK(erased.group_size() == 0);
      const auto got = run<double>(5, 16, [&](const auto& out) { return erased.evaluate(in, out); });
      const auto want = run<double>(5, 16, [&](const auto& out) { return rpo::evaluate(preset, in, out); });
      CHECK(got == want);
    };
    same("rpo_sqloo", rpo::rpo_sqloo{});
    same("rpo(distance=sq, reward=implicit, sampling=loo, beta=0.2)", rpo::rpo_sqloo{});
    same("rpo_sqpairs(beta=0.3, eta=2)", rpo::rpo_sqpairs{.beta = 0.3, .eta = 2});
    same("rpo(distance=sq, reward=implicit, sampling=all_pairs, beta=0.3, eta=2)", rpo::rpo_sqpairs{.beta = 0.3, .eta = 2});
    same("rpo_softmax_bwd", rpo::rpo_softmax_bwd{});
    same("rpo(distance=bwd_kl, reward=implicit, sampling=softmax, beta=0.2, eta=0.2)", rpo::rpo_softmax_bwd{});
    same("rpo_softmax_fwd", rpo::rpo_softmax_fwd{});
    same("infonca(beta=0.05, alpha=0.5)", rpo::infonca{.beta = 0.05, .alpha = 0.5});
    same("rpo(distance=logistic, reward=implicit, sampling=softmax, beta=0.05, eta=2)", rpo::infonca{.beta = 0.05, .alpha = 0.5});
    same("listwise_dpo", rpo::listwise_dpo{});
    same("rpo(distance=bwd_kl, reward=implicit, target=hard, sampling=plackett_luce)", rpo::listwise_dpo{});
    same("dpo_best_worst(beta=0.4)", rpo::dpo_best_worst{.beta = 0.4});
    same("rpo(distance=bwd_kl, reward=implicit, target=hard, sampling=best_worst, beta=0.4)",
         rpo::dpo_best_worst{.beta = 0.4});
    CHECK(rpo::parse_loss("rpo(distance=sq, reward=implicit, sampling=loo)").spec() ==
          "rpo(distance=sq, reward=implicit, target=reward_gap, sampling=loo, beta=0.1, eta=1)");
    CHECK(rpo::parse_loss("rpo(distance=hinge, reward=implicit, target=hard, sampling=all_pairs)").spec() ==
          "rpo(distance=hinge, reward=implicit, target=hard, sampling=all_pairs, beta=0.1, gamma=0)");
  }

  TEST_CASE("group compositions that make no sense, and a margin where none applies, are refused with the reason") {
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, target=hard, sampling=loo)"),
                   "leave-one-out contrasts t_i - m_{-i}(t) need target=reward_gap"));
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, sampling=softmax)"),
                   "a listwise scheme needs a distance between distributions"));
    CHECK(contains(message_of("rpo(distance=bwd_kl, reward=implicit, target=hard, sampling=softmax)"),
                   "use sampling=plackett_luce"));
    CHECK(contains(message_of("rpo(distance=bwd_kl, reward=implicit, sampling=plackett_luce)"),
                   "it needs target=hard and distance=bwd_kl or logistic"));
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, sampling=loo, gamma=0.1)"),
                   "gamma applies only with sampling=pair"));
    CHECK(contains(message_of("rpo(distance=sq, reward=implicit, sampling=all_pairs, gamma=0.1)"),
                   "gamma applies only with sampling=pair"));
  }

  TEST_CASE("evaluation errors name the spec of a general composition, and errors::report records them") {
    const rpo::any_loss l = rpo::parse_loss("rpo(distance=sq, reward=implicit, beta=0.5)");
    const std::vector<double> logp{-1, -2}, ref{-1, -2};
    try {
      (void)l.evaluate(rpo::batch_input<double>{.logp = logp, .ref_logp = ref});
      FAIL("expected an exception");
    } catch (const std::invalid_argument& e) {
      CHECK(std::string(e.what()) == l.spec() + ": reward is read by this loss but was not given");
    }
    const std::vector<double> bad{-1, std::numeric_limits<double>::quiet_NaN()};
    rpo::status status;
    const double v = l.evaluate(rpo::batch_input<double>{.logp = bad, .ref_logp = ref, .reward = ref}, {},
                                rpo::reduction::mean(), rpo::errors::report{&status});
    CHECK(std::isnan(v));
    CHECK(status.code == rpo::errc::domain_error);
    CHECK(contains(status.message, "logp[1] must be finite"));
    CHECK(l.group_count(rpo::batch_input<double>{.logp = logp}) == 1);
  }
}
