// The bandit lab's exact slice (rpo/bandit/*.hpp): RPO losses with ground-truth rewards and all arms covered
// converge to the analytic optimum π* ∝ π_ref·exp(η·r/β) (RPO.md §2.4); DPO with hard preferences drifts to the best
// arm while IPO settles (Azar et al. 2023); one online RPO-sqloo step is one RLOO step (RPO.md §3.4–3.5, (L13));
// bad configuration is an error before training.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo.hpp"
#include "rpo/bandit/metrics.hpp"
#include "rpo/bandit/optimizer.hpp"
#include "rpo/bandit/policy.hpp"
#include "rpo/bandit/population.hpp"
#include "rpo/bandit/problem.hpp"
#include "support/close.hpp"

namespace {

namespace bandit = rpo::bandit;

constexpr std::int64_t prompts = 3, arms = 5;
constexpr std::uint64_t seed = 20240605;

/// Full-batch gradient descent on the population loss until the gradient is below `tol` (or `max_steps`); returns
/// the total variation to π* and writes the steps used.
template <class L>
double train_to_optimum(const L& l, bandit::coverage cov, double beta, double eta, double learning_rate,
                        int max_steps, int& steps) {
  const bandit::problem p = bandit::random_problem(prompts, arms, seed);
  bandit::tabular_policy policy(p);
  bandit::response_batch batch = bandit::make_population_batch(p, cov);
  bandit::sgd opt(learning_rate);
  std::vector<double> grad(policy.parameters().size());
  for (steps = 0; steps < max_steps; ++steps) {
    bandit::population_gradient(l, p, policy, batch, grad);
    double norm = 0;
    for (double g : grad) norm = std::fmax(norm, std::fabs(g));
    if (norm < 1e-12) break;
    opt.step(policy.parameters(), grad);
  }
  const std::vector<double> pi = policy.probabilities(), star = bandit::optimum(p, beta, eta);
  return bandit::total_variation(p, pi, star);
}

struct setting {
  double beta, eta;
};
constexpr setting settings[] = {{0.2, 1.0}, {0.5, 0.5}, {1.0, 2.0}};

}  // namespace

TEST_CASE("bandit: RPO-sq, RPO-fwd, RPO-bwd on all pairs converge to pi* (RPO.md 2.4)") {
  for (const setting s : settings) {
    CAPTURE(s.beta);
    CAPTURE(s.eta);
    // The loss is a function of β·(θ_i − θ_j): a rate ∝ 1/β² keeps the step the same in a.
    const double lr = 1.0 / (s.beta * s.beta);
    int steps = 0;
    const double tv_sq = train_to_optimum(rpo::rpo_sq{.beta = s.beta, .eta = s.eta}, bandit::coverage::pairs, s.beta,
                                          s.eta, 2 * lr, 20000, steps);
    MESSAGE("rpo_sq beta=" << s.beta << " eta=" << s.eta << " TV=" << tv_sq << " steps=" << steps);
    CHECK(tv_sq < 1e-3);
    const double tv_fwd = train_to_optimum(rpo::rpo_fwd{.beta = s.beta, .eta = s.eta}, bandit::coverage::pairs,
                                           s.beta, s.eta, 16 * lr, 20000, steps);
    MESSAGE("rpo_fwd beta=" << s.beta << " eta=" << s.eta << " TV=" << tv_fwd << " steps=" << steps);
    CHECK(tv_fwd < 1e-3);
    const double tv_bwd = train_to_optimum(rpo::rpo_bwd{.beta = s.beta, .eta = s.eta}, bandit::coverage::pairs,
                                           s.beta, s.eta, 16 * lr, 20000, steps);
    MESSAGE("rpo_bwd beta=" << s.beta << " eta=" << s.eta << " TV=" << tv_bwd << " steps=" << steps);
    CHECK(tv_bwd < 1e-3);
  }
}

TEST_CASE("bandit: RPO-softmax-bwd and RPO-sqloo over all arms converge to pi* (RPO.md 2.4, 3.5)") {
  for (const setting s : settings) {
    CAPTURE(s.beta);
    CAPTURE(s.eta);
    const double lr = 1.0 / (s.beta * s.beta);
    int steps = 0;
    const double tv_soft = train_to_optimum(rpo::rpo_softmax_bwd{.beta = s.beta, .eta = s.eta},
                                            bandit::coverage::groups, s.beta, s.eta, 4 * lr, 20000, steps);
    MESSAGE("rpo_softmax_bwd beta=" << s.beta << " eta=" << s.eta << " TV=" << tv_soft << " steps=" << steps);
    CHECK(tv_soft < 1e-3);
    const double tv_loo = train_to_optimum(rpo::rpo_sqloo{.beta = s.beta, .eta = s.eta}, bandit::coverage::groups,
                                           s.beta, s.eta, 2 * lr, 20000, steps);
    MESSAGE("rpo_sqloo beta=" << s.beta << " eta=" << s.eta << " TV=" << tv_loo << " steps=" << steps);
    CHECK(tv_loo < 1e-3);
  }
}

TEST_CASE("bandit: DPO with hard preferences drifts to the best arm, IPO settles (Azar et al. 2023)") {
  const bandit::problem p = bandit::random_problem(prompts, arms, seed);
  // The best arm of each prompt under the judge, its probability and its log-odds log π(best) − log(1 − π(best))
  // (from the logits, so that it keeps resolving the drift after π(best) rounds to 1 in double).
  const auto best_arm = [&](std::int64_t x) {
    std::int64_t b = 0;
    for (std::int64_t y = 1; y < arms; ++y)
      if (p.r(x, y) > p.r(x, b)) b = y;
    return b;
  };
  const auto log_odds = [&](const bandit::tabular_policy& policy, std::int64_t x) {
    const std::int64_t b = best_arm(x);
    double top = -std::numeric_limits<double>::infinity(), rest = 0;
    for (std::int64_t y = 0; y < arms; ++y)
      if (y != b) top = std::fmax(top, policy.log_prob(x, y));
    for (std::int64_t y = 0; y < arms; ++y)
      if (y != b) rest += std::exp(policy.log_prob(x, y) - top);
    return policy.log_prob(x, b) - (top + std::log(rest));
  };
  for (const double beta : {0.1, 1.0}) {
    CAPTURE(beta);
    bandit::tabular_policy policy(p);
    bandit::response_batch batch = bandit::make_population_batch(p, bandit::coverage::pairs);
    bandit::sgd opt(50.0 / (beta * beta));
    std::vector<double> before;
    for (int step = 1; step <= 4000; ++step) {
      bandit::population_step(rpo::dpo{.beta = beta}, p, policy, batch, opt);
      if (step == 3000)
        for (std::int64_t x = 0; x < prompts; ++x) before.push_back(log_odds(policy, x));
    }
    const std::vector<double> pi = policy.probabilities();
    for (std::int64_t x = 0; x < prompts; ++x) {
      const double p_best = pi[p.at(x, best_arm(x))], after = log_odds(policy, x);
      const double earlier = before[static_cast<std::size_t>(x)];
      MESSAGE("dpo beta=" << beta << " prompt " << x << ": p(best) = " << p_best << " at step 4000; log-odds "
                          << earlier << " at step 3000, " << after << " at step 4000");
      CHECK(p_best > 0.99);
      CHECK(after > earlier + 1e-3);  // still moving: DPO has no finite optimum here
    }
  }
  for (const double tau : {0.1, 0.5}) {
    CAPTURE(tau);
    bandit::tabular_policy policy(p);
    bandit::response_batch batch = bandit::make_population_batch(p, bandit::coverage::pairs);
    bandit::sgd opt(2.0);
    std::vector<double> before;
    for (int step = 1; step <= 400; ++step) {
      bandit::population_step(rpo::ipo{.tau = tau}, p, policy, batch, opt);
      if (step == 300) before = policy.probabilities();
    }
    const std::vector<double> after = policy.probabilities();
    double change = 0, top = 0;
    for (std::size_t i = 0; i < after.size(); ++i) {
      change = std::fmax(change, std::fabs(after[i] - before[i]));
      top = std::fmax(top, after[i]);
    }
    MESSAGE("ipo tau=" << tau << ": max change over steps 300..400 " << change << ", largest probability " << top
                       << ", log-odds of the best arm " << log_odds(policy, 0) << " " << log_odds(policy, 1) << " "
                       << log_odds(policy, 2));
    CHECK(change < 1e-12);
    CHECK(top < 1 - 1e-3);
  }
}

TEST_CASE("bandit: one online RPO-sqloo step is one RLOO step with the KL-shaped reward (RPO.md L13)") {
  const bandit::problem p = bandit::random_problem(prompts, arms, seed);
  bandit::tabular_policy policy(p);
  std::mt19937_64 rng(97);
  std::normal_distribution<double> normal(0, 0.7);
  for (double& t : policy.parameters()) t += normal(rng);  // the identity holds at every θ, not only at π_ref
  const double beta = 0.3, eta = 1.5, learning_rate = 0.05;
  for (const std::int64_t K : {2, 4, 7}) {
    CAPTURE(K);
    const std::int64_t x = 1;
    std::vector<std::int64_t> ys;
    for (std::int64_t k = 0; k < K; ++k) ys.push_back(policy.sample(x, rng));  // repeats allowed
    // RPO-sqloo through rpo::evaluate, mapped to θ, one SGD step.
    std::vector<double> logp, ref_logp, reward;
    for (const std::int64_t y : ys) {
      logp.push_back(policy.log_prob(x, y));
      ref_logp.push_back(std::log(p.pi_ref(x, y)));
      reward.push_back(p.r(x, y));
    }
    const std::vector<std::int64_t> offsets{0, K};
    std::vector<double> grad_logp(ys.size()), grad(policy.parameters().size(), 0.0);
    rpo::evaluate(rpo::rpo_sqloo{.beta = beta, .eta = eta}, rpo::batch_input<double>{logp, ref_logp, {}, reward, offsets},
                  rpo::batch_output<double>{.grad_logp = grad_logp});
    for (std::size_t i = 0; i < ys.size(); ++i) policy.accumulate_grad(x, ys[i], grad_logp[i], grad);
    bandit::tabular_policy rpo_policy = policy;
    bandit::sgd(learning_rate).step(rpo_policy.parameters(), grad);

    // RLOO written out: R̃ = r − (β/η)(log π − log π_ref), Â_i = R̃_i − mean_{j≠i} R̃_j, θ ← θ + α'·Σ_i Â_i·∇log π(y_i),
    // ∇_θ[x][z] log π(y|x) = 1{y=z} − π(z|x), α' = α·2βη/(K−1).
    std::vector<double> theta(policy.parameters().begin(), policy.parameters().end());
    const auto row = [&](std::int64_t z) { return static_cast<std::size_t>(x * arms + z); };
    double top = -std::numeric_limits<double>::infinity(), norm = 0;
    for (std::int64_t z = 0; z < arms; ++z) top = std::fmax(top, theta[row(z)]);
    for (std::int64_t z = 0; z < arms; ++z) norm += std::exp(theta[row(z)] - top);
    std::vector<double> pi(static_cast<std::size_t>(arms)), shaped;
    for (std::int64_t z = 0; z < arms; ++z) pi[static_cast<std::size_t>(z)] = std::exp(theta[row(z)] - top) / norm;
    double shaped_sum = 0;
    for (const std::int64_t y : ys) {
      const double log_pi = std::log(pi[static_cast<std::size_t>(y)]);
      shaped.push_back(p.r(x, y) - (beta / eta) * (log_pi - std::log(p.pi_ref(x, y))));
      shaped_sum += shaped.back();
    }
    const double rate = learning_rate * 2 * beta * eta / static_cast<double>(K - 1);
    std::vector<double> rloo = theta;
    for (std::size_t i = 0; i < ys.size(); ++i) {
      const double advantage = shaped[i] - (shaped_sum - shaped[i]) / static_cast<double>(K - 1);
      for (std::int64_t z = 0; z < arms; ++z)
        rloo[row(z)] += rate * advantage * ((ys[i] == z ? 1.0 : 0.0) - pi[static_cast<std::size_t>(z)]);
    }
    double worst = 0;
    for (std::size_t i = 0; i < rloo.size(); ++i) worst = std::fmax(worst, std::fabs(rloo[i] - rpo_policy.parameters()[i]));
    MESSAGE("K=" << K << ": max |theta_rpo - theta_rloo| = " << worst);
    CHECK(worst <= 1e-12);
  }
}

TEST_CASE("bandit: metrics at pi_ref and at pi*") {
  const bandit::problem p = bandit::random_problem(prompts, arms, seed);
  const bandit::tabular_policy policy(p);
  const std::vector<double> ref = policy.probabilities();
  CHECK_CLOSE(bandit::mean_kl(p, ref), 0.0, 0, 1e-14);
  CHECK_CLOSE(bandit::win_rate(p, ref), 0.5, 1e-14, 0);
  CHECK_CLOSE(bandit::total_variation(p, ref, p.ref), 0.0, 0, 1e-14);
  const std::vector<double> star = bandit::optimum(p, 0.2, 1.0);
  CHECK(bandit::expected_reward(p, star) > bandit::expected_reward(p, ref));
  CHECK(bandit::win_rate(p, star) > 0.5);
  CHECK(bandit::mean_kl(p, star) > 0);
  // J(π) = E_π[r] − (β/η)·KL(π ‖ π_ref) is maximised by π*: J(π*) ≥ J(π_ref) = E_ref[r].
  CHECK(bandit::expected_reward(p, star) - 0.2 * bandit::mean_kl(p, star) >= bandit::expected_reward(p, ref));
  // η = 0 gives π_ref back.
  CHECK_CLOSE(bandit::total_variation(p, bandit::optimum(p, 0.2, 0.0), ref), 0.0, 0, 1e-14);
}

TEST_CASE("bandit: Adam's first step is learning_rate * sign(grad)") {
  std::vector<double> params{1.0, -2.0, 0.5}, grad{3.0, -0.25, 1e-3};
  bandit::adam opt(0.1);
  opt.step(params, grad);
  // m̂ = g and v̂ = g² after bias correction, so the step is lr·g/(|g| + ε).
  CHECK_CLOSE(params[0], 1.0 - 0.1 * 3.0 / (3.0 + 1e-8), 1e-15, 0);
  CHECK_CLOSE(params[1], -2.0 + 0.1 * 0.25 / (0.25 + 1e-8), 1e-15, 0);
  CHECK_CLOSE(params[2], 0.5 - 0.1 * 1e-3 / (1e-3 + 1e-8), 1e-15, 0);
}

TEST_CASE("bandit: bad configuration is a clear error before training") {
  const auto throws_with = [](auto&& f, const std::string& needle) {
    try {
      f();
    } catch (const std::invalid_argument& e) {
      const std::string what = e.what();
      CHECK_MESSAGE(what.find(needle) != std::string::npos, what);
      return;
    }
    FAIL("no std::invalid_argument for " << needle);
  };
  throws_with([] { (void)bandit::random_problem(3, 1, 0); }, "arms must be >= 2 (a preference needs two arms), but got arms = 1");
  throws_with([] { (void)bandit::random_problem(0, 4, 0); }, "prompts must be >= 1, but got prompts = 0");
  throws_with([] { bandit::problem{.prompts = 1, .arms = 2, .reward = {0.0, std::numeric_limits<double>::quiet_NaN()}, .ref = {0.5, 0.5}}.check(); }, "reward[0][1] must be finite");
  throws_with([] { bandit::problem{.prompts = 1, .arms = 2, .reward = {0.0, 1.0}, .ref = {0.0, 1.0}}.check(); }, "ref[0][0] must be finite and > 0");
  throws_with([] { bandit::problem{.prompts = 1, .arms = 2, .reward = {0.0, 1.0}, .ref = {0.5, 0.6}}.check(); }, "the sum of ref[0] must be 1");
  throws_with([] { (void)bandit::sgd{0.0}; }, "rpo::bandit::sgd: learning_rate must be finite and > 0, but got learning_rate = 0");
  throws_with([] { (void)bandit::sgd{-0.1}; }, "learning_rate = -0.1");
  throws_with([] { (void)bandit::sgd{std::numeric_limits<double>::quiet_NaN()}; }, "learning_rate = nan");
  throws_with([] { (void)bandit::adam{0.0}; }, "rpo::bandit::adam: learning_rate must be finite and > 0");
  throws_with([] { (void)bandit::adam{0.1, 1.0}; }, "beta1 must be in [0, 1)");
  throws_with([] { (void)bandit::optimum(bandit::random_problem(2, 3, 0), 0.0, 1.0); }, "beta must be finite and > 0");

  // β ≤ 0: the preset's check, through rpo::evaluate, before the optimizer touches θ.
  const bandit::problem p = bandit::random_problem(prompts, arms, seed);
  bandit::tabular_policy policy(p);
  const std::vector<double> theta(policy.parameters().begin(), policy.parameters().end());
  bandit::response_batch batch = bandit::make_population_batch(p, bandit::coverage::pairs);
  bandit::sgd opt(0.1);
  throws_with([&] { bandit::population_step(rpo::rpo_sq{.beta = 0.0}, p, policy, batch, opt); },
              "rpo::rpo_sq: beta must be finite and > 0, but got beta = 0");
  throws_with([&] { bandit::population_step(rpo::ipo{.tau = -1.0}, p, policy, batch, opt); }, "tau = -1");
  CHECK(std::vector<double>(policy.parameters().begin(), policy.parameters().end()) == theta);
}
