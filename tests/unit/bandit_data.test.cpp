// The bandit lab's sampled slice (rpo/bandit/{data,reward_model,bradley_terry,trainer}.hpp): draws and labels
// follow their distributions, the Bradley-Terry fit is the library's logistic loss and recovers the judge, online
// training reaches π*, iterative rounds compose (RPO.md §7), a learnt reward model is over-optimised on the problem
// built for it while the judge is not, and a bad configuration is an error before training.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <vector>

#include "rpo.hpp"
#include "rpo/bandit/bradley_terry.hpp"
#include "rpo/bandit/data.hpp"
#include "rpo/bandit/population.hpp"
#include "rpo/bandit/trainer.hpp"
#include "support/close.hpp"
#include "support/expect_error.hpp"

namespace {

namespace bandit = rpo::bandit;

double softplus(double x) { return x > 0 ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x)); }
double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

using rpo_bwd_pairs = rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::implicit, rpo::target::reward_gap,
                                rpo::sampling::all_pairs>;

}  // namespace

TEST_CASE("bandit: draws follow the table, Bradley-Terry labels follow sigma(r1 - r2)") {
  const bandit::problem p = bandit::random_problem(2, 5, 11);
  std::mt19937_64 rng(5);
  constexpr int n = 200000;
  for (std::int64_t x = 0; x < p.prompts; ++x) {
    std::vector<int> count(static_cast<std::size_t>(p.arms));
    for (int i = 0; i < n; ++i) ++count[static_cast<std::size_t>(bandit::draw(p.ref, p.arms, x, rng))];
    for (std::int64_t y = 0; y < p.arms; ++y) {
      const double q = p.pi_ref(x, y), sd = std::sqrt(q * (1 - q) / n);
      CHECK(std::fabs(count[static_cast<std::size_t>(y)] / double(n) - q) < 5 * sd);  // a 5-sigma band
    }
  }
  // Label frequencies of one pair under the Bradley-Terry judge and under a temperature of 2.
  for (const double t : {1.0, 2.0}) {
    const bandit::reward_model labeller = bandit::bradley_terry_judge(p, t);
    int wins = 0;
    for (int i = 0; i < n; ++i) wins += labeller.score(p.arms, 0, 1, rng) > labeller.score(p.arms, 0, 3, rng);
    const double q = sigmoid((p.r(0, 1) - p.r(0, 3)) / t), sd = std::sqrt(q * (1 - q) / n);
    CAPTURE(t);
    CHECK(std::fabs(wins / double(n) - q) < 5 * sd);
  }
  // A noisy judge's scores have the judge's mean and standard deviation sigma.
  const bandit::reward_model noisy = bandit::noisy_judge(p, 0.7);
  double sum = 0, sq = 0;
  for (int i = 0; i < n; ++i) {
    const double e = noisy.score(p.arms, 1, 2, rng) - p.r(1, 2);
    sum += e, sq += e * e;
  }
  CHECK(std::fabs(sum / n) < 5 * 0.7 / std::sqrt(double(n)));
  CHECK_CLOSE(std::sqrt(sq / n), 0.7, 0.01, 0);
}

TEST_CASE("bandit: collect_groups drops exactly the groups a label loss cannot rank") {
  const bandit::problem p = bandit::random_problem(3, 3, 4);
  const bandit::reward_model judge = bandit::judge(p);
  std::mt19937_64 rng(8);
  for (const rpo::ranking ranks : {rpo::ranking::none, rpo::ranking::extremes, rpo::ranking::strict}) {
    const bandit::response_batch b = bandit::collect_groups(p, p.ref, p.ref, judge, 3, 200, ranks, rng);
    CHECK(b.offsets.front() == 0);
    CHECK(b.size() == static_cast<std::size_t>(3 * b.groups()));
    std::int64_t ties = 0;
    for (std::int64_t g = 0; g < b.groups(); ++g) {
      const auto i = static_cast<std::size_t>(b.offsets[static_cast<std::size_t>(g)]);
      CHECK(b.prompt[i] == b.prompt[i + 2]);
      const double r0 = b.reward[i], r1 = b.reward[i + 1], r2 = b.reward[i + 2];
      CHECK(r0 == p.r(b.prompt[i], b.arm[i]));
      CHECK(b.ref_logp[i] == std::log(p.pi_ref(b.prompt[i], b.arm[i])));
      const bool all_tie = r0 == r1 && r1 == r2, any_tie = r0 == r1 || r1 == r2 || r0 == r2;
      if (ranks == rpo::ranking::extremes) CHECK_FALSE(all_tie);
      if (ranks == rpo::ranking::strict) CHECK_FALSE(any_tie);
      ties += any_tie;
    }
    if (ranks == rpo::ranking::none) {
      CHECK(b.groups() == 600);
      CHECK(ties > 0);  // with 3 arms, K = 3 draws repeat an arm often
    } else {
      CHECK(b.groups() < 600);
    }
  }
}

TEST_CASE("bandit: loss_gradient is the gradient of the batch loss in the logits (finite differences)") {
  const bandit::problem p = bandit::hacking_problem(2, 6, 3);
  bandit::tabular_policy policy(p);
  std::mt19937_64 rng(17);
  std::normal_distribution<double> normal(0, 0.5);
  for (double& t : policy.parameters()) t += normal(rng);
  bandit::response_batch batch =
      bandit::collect_groups(p, policy.probabilities(), p.ref, bandit::noisy_judge(p, 0.5), 4, 3, rpo::ranking::none, rng);
  // SimPO reads the lengths; RPO-sqloo the rewards and the reference.
  const auto check = [&](const auto& loss) {
    std::vector<double> grad(policy.parameters().size()), ignored(grad.size());
    bandit::loss_gradient(loss, policy, batch, grad);
    for (std::size_t i = 0; i < grad.size(); ++i) {
      const double h = 1e-5, saved = policy.parameters()[i];
      policy.parameters()[i] = saved + h;
      const double up = bandit::loss_gradient(loss, policy, batch, ignored);
      policy.parameters()[i] = saved - h;
      const double down = bandit::loss_gradient(loss, policy, batch, ignored);
      policy.parameters()[i] = saved;
      CHECK_CLOSE(grad[i], (up - down) / (2 * h), 1e-6, 1e-9);
    }
  };
  check(rpo::rpo_sqloo{.beta = 0.3, .eta = 1.2});
  check(rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::reference_free_normalized, rpo::target::reward_gap,
                  rpo::sampling::softmax>{.reward = {.beta = 2.0}, .target = {.eta = 0.5}});
}

TEST_CASE("bandit: the Bradley-Terry fit is the library's logistic loss and recovers the judge's reward gaps") {
  // One prompt, four arms, comparisons drawn uniformly and labelled by a Bradley-Terry judge: the maximum-likelihood
  // tabular scores estimate r* up to a constant (standard error about 0.03 at this size).
  bandit::problem p = bandit::random_problem(1, 4, 21);
  p.ref = {0.25, 0.25, 0.25, 0.25};
  std::mt19937_64 rng(3);
  const std::vector<bandit::preference> data =
      bandit::collect_preferences(p, p.ref, bandit::bradley_terry_judge(p), 20000, rng);
  const bandit::bradley_terry_fit fit = bandit::fit_bradley_terry(p, data, {.ridge = 0.0});
  CHECK(fit.gradient_norm < 1e-8);
  // The reported objective is the Bradley-Terry negative log-likelihood, computed here independently.
  double nll = 0;
  for (const bandit::preference& d : data)
    nll += softplus(-(fit.model.mean[p.at(0, d.chosen)] - fit.model.mean[p.at(0, d.rejected)]));
  CHECK_CLOSE(fit.objective, nll / static_cast<double>(data.size()), 1e-12, 0);
  for (std::int64_t y = 1; y < p.arms; ++y) {
    CAPTURE(y);
    CHECK(std::fabs((fit.model.mean[p.at(0, y)] - fit.model.mean[0]) - (p.r(0, y) - p.r(0, 0))) < 0.15);
  }

  // With the hacking problem's linear features, the fit on π_ref's data learns "longer is better" (the judge's
  // slope is 3 where π_ref writes): the direction it will be over-optimised along.
  const bandit::problem hack = bandit::hacking_problem(8, 12, 1);
  const std::vector<bandit::preference> hack_data =
      bandit::collect_preferences(hack, hack.ref, bandit::bradley_terry_judge(hack), 50, rng);
  const bandit::bradley_terry_fit linear = bandit::fit_bradley_terry(hack, hack_data);
  REQUIRE(linear.weights.size() == 2);
  CHECK(linear.gradient_norm < 1e-8);
  CHECK(linear.weights[0] > 0.5);  // quality
  CHECK(linear.weights[1] > 1.0);  // length
}

TEST_CASE("bandit: online RPO with the judge reaches pi*; a run is a function of its seed") {
  const bandit::problem p = bandit::random_problem(4, 6, 9);
  const bandit::train_config c{.regime = bandit::data_regime::online, .group_size = 4, .groups_per_prompt = 8,
                               .steps = 400, .learning_rate = 0.05, .record_every = 50, .beta = 0.5, .eta = 1.0,
                               .seed = 1};
  for (const double tv : {bandit::train(rpo::rpo_sqpairs{.beta = 0.5, .eta = 1.0}, p, bandit::judge(p), c).back().tv,
                          bandit::train(rpo_bwd_pairs{.reward = {.beta = 0.5}, .target = {.eta = 1.0}}, p,
                                        bandit::judge(p), c).back().tv}) {
    MESSAGE("online TV to pi* after 400 steps: " << tv);
    CHECK(tv < 0.02);
  }
  const auto a = bandit::train(rpo::dpo_best_worst{.beta = 0.5}, p, bandit::noisy_judge(p, 0.3), c);
  const auto b = bandit::train(rpo::dpo_best_worst{.beta = 0.5}, p, bandit::noisy_judge(p, 0.3), c);
  bandit::train_config other = c;
  other.seed = 2;
  const auto d = bandit::train(rpo::dpo_best_worst{.beta = 0.5}, p, bandit::noisy_judge(p, 0.3), other);
  REQUIRE(a.size() == b.size());
  for (std::size_t i = 0; i < a.size(); ++i) CHECK(a[i].reward == b[i].reward);
  CHECK(a.back().reward != d.back().reward);
}

TEST_CASE("bandit: iterative rounds compose: R rounds of RPO reach the optimum at beta / R (RPO.md 2.4, 7)") {
  // Each round's optimum is π_ref,r·exp(ηr/β), so R rounds give π_ref·exp(Rηr/β). Offline, K = 6 = V, enough
  // groups that every pair is covered.
  const bandit::problem p = bandit::random_problem(3, 6, 13);
  const double beta = 1.5, eta = 1.0;
  const bandit::train_config c{.regime = bandit::data_regime::offline, .group_size = 6, .groups_per_prompt = 64,
                               .rounds = 3, .steps = 400, .learning_rate = 0.05, .record_every = 400,
                               .beta = beta, .eta = eta, .seed = 4};
  const auto records = bandit::train(rpo::rpo_sqpairs{.beta = beta, .eta = eta}, p, bandit::judge(p), c);
  double round_end[3];
  for (const bandit::record& r : records) round_end[r.round] = r.reward;
  CHECK(round_end[0] < round_end[1]);
  CHECK(round_end[1] < round_end[2]);
  // The last record against the optimum at β/3: its reward, and (through the records' own π*) distance.
  const std::vector<double> star3 = bandit::optimum(p, beta / 3, eta);
  MESSAGE("reward after 3 rounds " << records.back().reward << ", of pi*(beta/3) " << bandit::expected_reward(p, star3));
  CHECK_CLOSE(records.back().reward, bandit::expected_reward(p, star3), 0, 0.02);
  CHECK_CLOSE(records.back().kl, bandit::mean_kl(p, star3), 0, 0.05);
}

TEST_CASE("bandit: Pre-DPO's guiding reference and Curry-DPO's stages compose like rounds (LOSSES.md 4.14, 4.16)") {
  // Both only change the reference: trained to convergence against π_g = π*(β) on data that covers every pair, RPO
  // reaches π_g·exp(ηr/β), the optimum at β/2 (Pre-DPO); S stages with π_ref ← π_θ between them reach β/S
  // (Curry-DPO). The setting of the rounds test above: K = 6 = V, so every group holds every arm.
  const bandit::problem p = bandit::random_problem(3, 6, 13);
  const double beta = 1.5, eta = 1.0;
  const rpo::rpo_sqpairs loss{.beta = beta, .eta = eta};
  bandit::train_config c{.regime = bandit::data_regime::offline, .group_size = 6, .groups_per_prompt = 64,
                         .steps = 400, .learning_rate = 0.05, .record_every = 400, .beta = beta, .eta = eta, .seed = 4};
  const auto plain = bandit::train(loss, p, bandit::judge(p), c);
  c.guiding_reference = true;
  const auto guided = bandit::train(loss, p, bandit::judge(p), c);
  const std::vector<double> star2 = bandit::optimum(p, beta / 2, eta);
  MESSAGE("Pre-DPO: reward " << guided.back().reward << " against " << plain.back().reward << " unguided, "
                             << bandit::expected_reward(p, star2) << " at pi*(beta/2)");
  CHECK(guided.back().reward > plain.back().reward);
  CHECK_CLOSE(guided.back().reward, bandit::expected_reward(p, star2), 0, 0.02);
  CHECK_CLOSE(guided.back().kl, bandit::mean_kl(p, star2), 0, 0.05);
  CHECK(guided.size() == plain.size());  // the records are the second run's

  c.guiding_reference = false;
  c.curriculum_stages = 3;
  c.steps = 1200;
  const auto staged = bandit::train(loss, p, bandit::judge(p), c);
  const std::vector<double> star3 = bandit::optimum(p, beta / 3, eta);
  MESSAGE("Curry-DPO, 3 stages: reward " << staged.back().reward << ", " << bandit::expected_reward(p, star3)
                                         << " at pi*(beta/3)");
  CHECK_CLOSE(staged.back().reward, bandit::expected_reward(p, star3), 0, 0.02);
  CHECK_CLOSE(staged.back().kl, bandit::mean_kl(p, star3), 0, 0.05);
}

TEST_CASE("bandit: curriculum orders each prompt's groups from the widest score spread to the narrowest, in even stages") {
  const bandit::problem p = bandit::random_problem(4, 5, 3);
  std::mt19937_64 rng(9);
  const bandit::response_batch data =
      bandit::collect_groups(p, p.ref, p.ref, bandit::noisy_judge(p, 0.5), 3, 7, rpo::ranking::none, rng);
  REQUIRE(data.groups() == 28);
  const auto spread = [](const bandit::response_batch& b, std::size_t g) {
    const auto first = b.reward.begin() + b.offsets[g], last = b.reward.begin() + b.offsets[g + 1];
    return *std::max_element(first, last) - *std::min_element(first, last);
  };
  // spreads[x][k]: the spreads of prompt x's groups in stage k.
  const std::vector<bandit::response_batch> stages = bandit::curriculum(data, 3);
  REQUIRE(stages.size() == 3);
  std::vector<std::vector<std::vector<double>>> spreads(4, std::vector<std::vector<double>>(3));
  std::size_t responses = 0;
  for (std::size_t k = 0; k < 3; ++k) {
    responses += stages[k].size();
    for (std::size_t g = 0; g + 1 < stages[k].offsets.size(); ++g) {
      CHECK(stages[k].offsets[g + 1] - stages[k].offsets[g] == 3);
      spreads[static_cast<std::size_t>(stages[k].prompt[static_cast<std::size_t>(stages[k].offsets[g])])][k].push_back(
          spread(stages[k], g));
    }
  }
  CHECK(responses == data.size());
  for (std::size_t x = 0; x < 4; ++x) {
    CAPTURE(x);
    CHECK(spreads[x][0].size() == 3);  // 7 groups = 3 + 2 + 2
    CHECK(spreads[x][1].size() == 2);
    CHECK(spreads[x][2].size() == 2);
    std::vector<double> ordered, all;
    for (const auto& part : spreads[x]) ordered.insert(ordered.end(), part.begin(), part.end());
    CHECK(std::is_sorted(ordered.rbegin(), ordered.rend()));  // non-increasing: easiest first
    for (std::size_t g = 0; g + 1 < data.offsets.size(); ++g)
      if (data.prompt[static_cast<std::size_t>(data.offsets[g])] == static_cast<std::int64_t>(x)) all.push_back(spread(data, g));
    std::sort(all.rbegin(), all.rend());
    CHECK(all == ordered);  // the prompt's groups, none lost or made up
  }
  test::expect_error<std::domain_error>([&] { (void)bandit::curriculum(data, 8); },
                                        {"8 stages need a prompt with at least 8 groups", "the most any prompt has is 7"});
  test::expect_error<std::invalid_argument>([&] { (void)bandit::curriculum(data, 0); }, {"stages must be >= 1"});
}

TEST_CASE("bandit: a learnt reward model is over-optimised on the hacking problem; the judge is not") {
  // The configuration of docs/bandit_lab.md: online RPO-bwd (all pairs, K = 4), β = 0.05, 1500 steps.
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    CAPTURE(seed);
    const bandit::problem p = bandit::hacking_problem(8, 12, 1);
    std::mt19937_64 rng(seed);
    const auto data = bandit::collect_preferences(p, p.ref, bandit::bradley_terry_judge(p), 50, rng);
    const bandit::reward_model learnt = bandit::fit_bradley_terry(p, data).model;
    const bandit::train_config c{.regime = bandit::data_regime::online, .group_size = 4, .groups_per_prompt = 8,
                                 .steps = 1500, .learning_rate = 0.05, .record_every = 10, .beta = 0.05, .eta = 1.0,
                                 .seed = seed};
    const rpo_bwd_pairs loss{.reward = {.beta = 0.05}, .target = {.eta = 1.0}};
    const auto on_learnt = bandit::train(loss, p, learnt, c);
    const auto on_judge = bandit::train(loss, p, bandit::judge(p), c);
    const auto peak = std::max_element(on_learnt.begin(), on_learnt.end(),
                                       [](const auto& a, const auto& b) { return a.reward < b.reward; });
    MESSAGE("learnt: true reward " << on_learnt.front().reward << " -> peak " << peak->reward << " at step "
                                   << peak->step << " -> " << on_learnt.back().reward << "; model reward "
                                   << peak->model_reward << " at the peak -> " << on_learnt.back().model_reward);
    CHECK(peak->reward > on_learnt.front().reward + 1.0);       // it rises,
    CHECK(on_learnt.back().reward < peak->reward - 0.3);        // then falls,
    CHECK(on_learnt.back().model_reward > peak->model_reward + 0.1);  // while the learnt reward keeps rising.
    double judge_peak = 0;
    for (const auto& r : on_judge) judge_peak = std::max(judge_peak, r.reward);
    CHECK(on_judge.back().reward > judge_peak - 0.01);          // Trained on the judge, it does not fall.
  }
}

TEST_CASE("bandit: a bad configuration is a clear error before training") {
  const bandit::problem p = bandit::random_problem(2, 3, 0);
  const bandit::reward_model judge = bandit::judge(p);
  const bandit::train_config good{.group_size = 2, .steps = 5};
  const auto with = [&](auto change) {
    bandit::train_config c = good;
    change(c);
    return c;
  };
  using test::expect_error;
  // K against the scheme: a pairwise loss takes exactly 2; every scheme at least 2.
  expect_error<std::invalid_argument>(
      [&] { bandit::train(rpo::dpo{}, p, judge, with([](auto& c) { c.group_size = 4; })); },
      {"group_size must be 2 for rpo::dpo", "group_size = 4"});
  expect_error<std::invalid_argument>(
      [&] { bandit::train(rpo::rpo_sqloo{}, p, judge, with([](auto& c) { c.group_size = 1; })); },
      {"group_size must be >= 2, the smallest group rpo::rpo_sqloo's sampling scheme takes", "group_size = 1"});
  expect_error<std::invalid_argument>(
      [&] { bandit::train(rpo::rpo_sq{}, p, judge, with([](auto& c) { c.learning_rate = 0; })); },
      {"learning_rate must be finite and > 0", "learning_rate = 0"});
  expect_error<std::invalid_argument>(
      [&] { bandit::train(rpo::rpo_sq{}, p, judge, with([](auto& c) { c.learning_rate = -1; })); },
      {"learning_rate = -1"});
  expect_error<std::invalid_argument>([&] { bandit::train(rpo::rpo_sq{.beta = 0.0}, p, judge, good); },
                                      {"rpo::rpo_sq: beta must be finite and > 0", "beta = 0"});
  expect_error<std::invalid_argument>([&] { bandit::train(rpo::rpo_sq{}, p, judge, with([](auto& c) { c.beta = -1; })); },
                                      {"rpo::bandit::train: beta must be finite and > 0"});
  expect_error<std::invalid_argument>([&] { bandit::train(rpo::rpo_sq{}, p, judge, with([](auto& c) { c.steps = 0; })); },
                                      {"steps must be >= 1"});
  expect_error<std::invalid_argument>(
      [&] { bandit::train(rpo::rpo_sq{}, p, judge, with([](auto& c) { c.curriculum_stages = 0; })); },
      {"curriculum_stages must be >= 1"});
  expect_error<std::invalid_argument>(
      [&] { bandit::train(rpo::rpo_sq{}, p, judge, with([](auto& c) { c.curriculum_stages = 2; })); },
      {"curriculum_stages must be 1 in the online regime", "curriculum_stages = 2"});
  expect_error<std::invalid_argument>(
      [&] { bandit::train(rpo::rpo_sq{}, p, bandit::judge(bandit::random_problem(2, 4, 0)), good); },
      {"mean.size() must be the problem's prompts * arms"});
  expect_error<std::invalid_argument>([&] { (void)bandit::noisy_judge(p, -1); }, {"sigma must be finite and >= 0"});
  expect_error<std::invalid_argument>([&] { (void)bandit::bradley_terry_judge(p, 0); },
                                      {"temperature must be finite and > 0"});
  expect_error<std::invalid_argument>([&] { (void)bandit::long_tail_problem(2, 3, 0); }, {"arms must be >= 4"});
  expect_error<std::invalid_argument>([&] { (void)bandit::hacking_problem(0, 8, 0); }, {"prompts must be >= 1"});
  expect_error<std::invalid_argument>([&] { (void)bandit::fit_bradley_terry(p, {}); }, {"data has no comparison"});
  const std::vector<bandit::preference> outside{{0, 0, 3}};
  expect_error<std::invalid_argument>([&] { (void)bandit::fit_bradley_terry(p, outside); },
                                      {"data[0] = (prompt 0, chosen 0, rejected 3) is outside"});
  // K > V with a noiseless judge: every group of a fully ranked label loss ties, offline there is nothing to train on.
  const bandit::problem two = bandit::random_problem(1, 2, 0);
  using dpo_all_pairs = rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::implicit, rpo::target::hard_label,
                                  rpo::sampling::all_pairs>;
  expect_error<std::domain_error>(
      [&] {
        bandit::train(dpo_all_pairs{}, two, bandit::judge(two),
                      with([](auto& c) { c.regime = bandit::data_regime::offline, c.group_size = 3; }));
      },
      {"kept no group"});
  // More curriculum stages than the offline dataset has groups.
  expect_error<std::domain_error>(
      [&] {
        bandit::train(rpo::rpo_sq{}, two, bandit::judge(two),
                      with([](auto& c) {
                        c.regime = bandit::data_regime::offline, c.groups_per_prompt = 2, c.curriculum_stages = 3;
                      }));
      },
      {"3 stages need a prompt with at least 3 groups", "the most any prompt has is 2"});
}

TEST_CASE("bandit: the generators build what they document") {
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    const bandit::problem tail = bandit::long_tail_problem(4, 10, seed);
    tail.check();
    for (std::int64_t x = 0; x < tail.prompts; ++x) {
      // The best arm is one of the two that π_ref writes least.
      std::vector<std::int64_t> by_ref(10);
      for (std::int64_t y = 0; y < 10; ++y) by_ref[static_cast<std::size_t>(y)] = y;
      std::sort(by_ref.begin(), by_ref.end(), [&](auto a, auto b) { return tail.pi_ref(x, a) < tail.pi_ref(x, b); });
      std::int64_t best = 0;
      for (std::int64_t y = 1; y < 10; ++y)
        if (tail.r(x, y) > tail.r(x, best)) best = y;
      CHECK((best == by_ref[0] || best == by_ref[1]));
    }
    const bandit::problem hack = bandit::hacking_problem(4, 8, seed);
    hack.check();
    REQUIRE(hack.feature_dim == 2);
    for (std::int64_t x = 0; x < hack.prompts; ++x)
      for (std::int64_t y = 0; y < hack.arms; ++y) {
        const double q = hack.features[2 * hack.at(x, y)], l = hack.features[2 * hack.at(x, y) + 1];
        CHECK((y >= 6 ? l >= 0.85 : l <= 0.5));
        const double over = std::max(0.0, l - 0.5);
        CHECK(hack.r(x, y) == q + 3 * l - 20 * over * over);
        CHECK(hack.length(x, y) == 1 + std::round(19 * l));
      }
  }
}
