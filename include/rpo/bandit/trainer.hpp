// rpo/bandit/trainer.hpp — a bandit training run: any loss, a reward model, offline or online data, iterative rounds,
// and the metrics along the way.
//
// Public names: rpo::bandit::data_regime, rpo::bandit::optimizer_kind, rpo::bandit::train_config,
//               rpo::bandit::record, rpo::bandit::check_config, rpo::bandit::train, rpo::bandit::curriculum.
// The regimes of RPO.md §7. Offline: at the start of each round, `groups_per_prompt` groups of K responses per prompt
// are drawn from that round's π_ref and scored once by the reward model; every step is a full-batch step on that
// fixed dataset. Online: every step draws fresh groups from the current π_θ and scores them; the samples are data
// (no gradient through the sampling), π_ref fixed within a round — online RPO-sqloo is then RLOO (RPO.md (E13)).
// Iterative: each round after the first sets π_ref to the current policy (the paper's "iterative online RPO";
// TR-DPO's reference refresh). Two schedules of the literature that change the data and the reference, not the loss
// (LOSSES.md §4.14, §4.16): Curry-DPO's curriculum (each offline dataset in stages from the easiest groups, the widest
// reward gap, to the hardest, π_ref ← π_θ between stages) and Pre-DPO's guiding reference (train once, then train
// again from the original π_ref with the trained policy as the reference). Groups whose ranking the loss cannot take
// (ties, for a label target) are dropped (rpo/bandit/data.hpp). The policy starts at π_ref; the metrics
// (rpo/bandit/metrics.hpp) are measured against the problem's original π_ref and its optimum π* for the configured
// (β, η) and the judge r*, whatever the reward model.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <map>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "rpo/bandit/batch.hpp"
#include "rpo/bandit/data.hpp"
#include "rpo/bandit/metrics.hpp"
#include "rpo/bandit/optimizer.hpp"
#include "rpo/bandit/policy.hpp"
#include "rpo/bandit/problem.hpp"
#include "rpo/bandit/reward_model.hpp"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// Where a run's data comes from (RPO.md §7).
enum class data_regime : unsigned char {
  offline,  ///< drawn once per round from that round's π_ref and scored once; full-batch steps on it
  online,   ///< drawn from the current policy and scored at every step
};

/// The optimizer of a run (rpo/bandit/optimizer.hpp).
enum class optimizer_kind : unsigned char { sgd, adam };

/// A run's configuration. check_config() says what is wrong with one before any training.
struct train_config {
  data_regime regime = data_regime::online;      ///< offline or online
  std::int64_t group_size = 2;                    ///< K ≥ 2 responses per group, as the loss's scheme allows
  std::int64_t groups_per_prompt = 4;             ///< ≥ 1: per step (online) or per round's dataset (offline)
  std::int64_t rounds = 1;                        ///< ≥ 1; each round after the first sets π_ref ← π_θ
  std::int64_t curriculum_stages = 1;             ///< ≥ 1; > 1: Curry-DPO, offline only (see rpo::bandit::curriculum)
  bool guiding_reference = false;                 ///< Pre-DPO: the whole run twice, the second guided by the first
  std::int64_t steps = 200;                       ///< ≥ 1 optimizer steps per round
  optimizer_kind optimizer = optimizer_kind::adam;  ///< a fresh one each round
  double learning_rate = 0.05;                    ///< > 0
  std::int64_t record_every = 10;                 ///< ≥ 1: a record every this many steps, and at each round's end
  double beta = 0.5;                              ///< β > 0 of the optimum π* the records measure against
  double eta = 1.0;                               ///< η ≥ 0 of that optimum
  std::uint64_t seed = 0;                         ///< the run is a function of its seed
};

/// The metrics of the policy after `step` optimizer steps (0: before training).
struct record {
  std::int64_t round = 0;      ///< 0-based round
  std::int64_t step = 0;       ///< steps taken so far, over all rounds
  double reward = 0;           ///< expected ground-truth reward E_π[r*]
  double model_reward = 0;     ///< expected score of the run's reward model E_π[s] (noiseless)
  double kl = 0;               ///< KL(π ‖ π_ref) to the original reference, mean over prompts
  double tv = 0;               ///< total variation to π* (β, η of the config), mean over prompts
  double win_rate = 0;         ///< against the original π_ref under the judge
  double loss = 0;             ///< the loss of the last step's batch (NaN at step 0)
  std::int64_t groups = 0;     ///< groups in the last step's batch, after dropping ties (0 at step 0)
};

/// Throws std::invalid_argument naming the first invalid setting of `c` for loss `l` on problem `p` with reward model
/// `rm`: the problem and reward model's own checks, the loss's parameters (as rpo::evaluate would), K against what
/// the loss's sampling scheme takes, counts < 1, a learning rate, β or η out of range, a curriculum online.
template <LossLike L>
void check_config(const L& l, const problem& p, const reward_model& rm, const train_config& c);

/// Trains a tabular policy (started at π_ref) with loss `l` on data scored by `rm`; returns the records. Everything
/// is checked first (check_config). Throws std::domain_error when an offline dataset keeps no group (every group's
/// ranking tied, e.g. a label loss with K > V and a noiseless judge), or too few for its curriculum stages. An online
/// step whose groups all tie is skipped.
///
/// With `curriculum_stages` = S > 1 (Curry-DPO, offline), each round's dataset is split by rpo::bandit::curriculum
/// into S stages, easiest first; the round's steps are shared out in order (the first steps % S stages take one
/// more), and each stage after the first starts with π_ref ← π_θ and a fresh optimizer. With `guiding_reference`
/// (Pre-DPO), the configured run is made once to train a guiding policy π_g, then made again from the same seed (so
/// on the same offline data) from the original π_ref with π_g as the reference of the loss; the records are the
/// second run's, their KL still to the original π_ref.
template <LossLike L>
std::vector<record> train(const L& l, const problem& p, const reward_model& rm, const train_config& c);

/// Curry-DPO's curriculum (LOSSES.md §4.14): the groups of each prompt of `batch` ordered from the widest spread of
/// their scores (max − min of `reward`, the easiest to rank) to the narrowest, ties in their original order, and cut
/// into `stages` consecutive parts whose sizes differ by at most one group (the larger ones first); stage k holds part
/// k of every prompt, so each stage keeps the prompts and goes from easy to hard within each. Throws
/// std::invalid_argument when `stages` < 1, std::domain_error when no prompt has `stages` groups (a stage would be
/// empty).
std::vector<response_batch> curriculum(const response_batch& batch, std::int64_t stages);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

template <LossLike L>
void check_config(const L& l, const problem& p, const reward_model& rm, const train_config& c) {
  constexpr const char* who = "rpo::bandit::train";
  p.check();
  rm.check(p);
  rpo::detail::check_loss_parameters(l, errors::throw_on_error{});  // rpo::evaluate's own check and message
  using scheme = decltype(as_loss(l));  // its group sizes are those of its sampling scheme
  const auto k = static_cast<double>(c.group_size);
  if (scheme::group_size != 0 && c.group_size != scheme::group_size)
    throw std::invalid_argument(std::string(who) + ": group_size must be " + std::to_string(scheme::group_size) + " for " +
                                loss_name<L>() + ", whose sampling scheme takes groups of exactly that size, but got "
                                "group_size = " + std::to_string(c.group_size));
  const std::string at_least = "must be >= " + std::to_string(scheme::min_group_size) + ", the smallest group " +
                               loss_name<L>() + "'s sampling scheme takes";
  detail::require(c.group_size >= scheme::min_group_size, who, "group_size", at_least.c_str(), k);
  detail::require(c.groups_per_prompt >= 1, who, "groups_per_prompt", "must be >= 1",
                  static_cast<double>(c.groups_per_prompt));
  detail::require(c.rounds >= 1, who, "rounds", "must be >= 1", static_cast<double>(c.rounds));
  detail::require(c.steps >= 1, who, "steps", "must be >= 1", static_cast<double>(c.steps));
  detail::require(c.record_every >= 1, who, "record_every", "must be >= 1", static_cast<double>(c.record_every));
  detail::require(std::isfinite(c.learning_rate) && c.learning_rate > 0, who, "learning_rate",
                  "must be finite and > 0", c.learning_rate);
  detail::require(std::isfinite(c.beta) && c.beta > 0, who, "beta", "must be finite and > 0", c.beta);
  detail::require(std::isfinite(c.eta) && c.eta >= 0, who, "eta", "must be finite and >= 0", c.eta);
  detail::require(c.curriculum_stages >= 1, who, "curriculum_stages", "must be >= 1",
                  static_cast<double>(c.curriculum_stages));
  detail::require(c.curriculum_stages == 1 || c.regime == data_regime::offline, who, "curriculum_stages",
                  "must be 1 in the online regime (a curriculum orders a fixed, offline dataset)",
                  static_cast<double>(c.curriculum_stages));
}

inline std::vector<response_batch> curriculum(const response_batch& batch, std::int64_t stages) {
  constexpr const char* who = "rpo::bandit::curriculum";
  if (stages < 1)
    throw std::invalid_argument(std::string(who) + ": stages must be >= 1, but got stages = " + std::to_string(stages));
  const auto first_of = [&](std::int64_t g) { return static_cast<std::size_t>(batch.offsets[static_cast<std::size_t>(g)]); };
  const auto spread = [&](std::int64_t g) {
    const auto [lo, hi] = std::minmax_element(batch.reward.begin() + static_cast<std::ptrdiff_t>(first_of(g)),
                                              batch.reward.begin() + static_cast<std::ptrdiff_t>(first_of(g + 1)));
    return *hi - *lo;
  };
  // Each prompt's groups, widest spread first (ties in their order), cut into `stages` parts.
  std::map<std::int64_t, std::vector<std::int64_t>> by_prompt;
  for (std::int64_t g = 0; g < batch.groups(); ++g) by_prompt[batch.prompt[first_of(g)]].push_back(g);
  std::size_t most = 0;
  for (auto& [x, groups] : by_prompt) {
    std::stable_sort(groups.begin(), groups.end(), [&](std::int64_t a, std::int64_t b) { return spread(a) > spread(b); });
    most = std::max(most, groups.size());
  }
  if (most < static_cast<std::size_t>(stages))
    throw std::domain_error(std::string(who) + ": " + std::to_string(stages) + " stages need a prompt with at least " +
                            std::to_string(stages) + " groups, but the most any prompt has is " + std::to_string(most));
  std::vector<response_batch> out(static_cast<std::size_t>(stages));
  for (const auto& [x, groups] : by_prompt) {
    const auto n = static_cast<std::int64_t>(groups.size());
    std::size_t next = 0;
    for (std::int64_t k = 0; k < stages; ++k) {
      response_batch& stage = out[static_cast<std::size_t>(k)];
      for (std::int64_t m = n / stages + (k < n % stages ? 1 : 0); m > 0; --m, ++next) {
        const std::int64_t g = groups[next];
        for (std::size_t i = first_of(g); i < first_of(g + 1); ++i)
          stage.add(batch.prompt[i], batch.arm[i], batch.ref_logp[i], batch.length[i], batch.reward[i]);
        stage.close_group();
      }
    }
  }
  return out;
}

namespace detail {

/// log π_ref of each response of `batch` under `ref` (X·V), after a reference refresh.
inline void set_reference(response_batch& batch, const problem& p, std::span<const double> ref) {
  for (std::size_t i = 0; i < batch.size(); ++i) batch.ref_logp[i] = std::log(ref[p.at(batch.prompt[i], batch.arm[i])]);
}

/// One run of train(): the policy starts at p.ref and the loss's first reference is `reference` (p.ref, or Pre-DPO's
/// guiding policy); offline data of the first round is drawn from p.ref. Writes the final policy to `last` if given.
template <LossLike L>
std::vector<record> train_from(const L& l, const problem& p, const reward_model& rm, const train_config& c,
                               std::vector<double> reference, std::vector<double>* last) {
  constexpr ranking ranks = decltype(as_loss(l))::ranks;
  const std::vector<double> star = optimum(p, c.beta, c.eta);
  std::mt19937_64 rng(c.seed);
  tabular_policy policy(p);
  std::vector<double> ref = std::move(reference), grad(policy.parameters().size());
  std::vector<record> out;

  const auto measure = [&](std::int64_t round, std::int64_t step, double loss, std::int64_t groups) {
    const std::vector<double> pi = policy.probabilities();
    out.push_back({round, step, expected_reward(p, pi), rm.expected(pi, p.arms), mean_kl(p, pi),
                   total_variation(p, pi, star), win_rate(p, pi), loss, groups});
  };
  measure(0, 0, std::nan(""), 0);
  const auto fresh_optimizer = [&] {
    return c.optimizer == optimizer_kind::sgd ? std::variant<sgd, adam>(sgd(c.learning_rate))
                                              : std::variant<sgd, adam>(adam(c.learning_rate));
  };

  std::int64_t step = 0;
  for (std::int64_t round = 0; round < c.rounds; ++round) {
    if (round > 0) ref = policy.probabilities();
    std::variant<sgd, adam> opt = fresh_optimizer();
    std::vector<response_batch> stages(1);
    if (c.regime == data_regime::offline) {
      // The data of the first round comes from the original π_ref, whatever the reference (Pre-DPO's guide).
      const std::vector<double>& sampler = round == 0 ? p.ref : ref;
      stages[0] = collect_groups(p, sampler, ref, rm, c.group_size, c.groups_per_prompt, ranks, rng);
      if (stages[0].groups() == 0)
        throw std::domain_error("rpo::bandit::train: the offline dataset of round " + std::to_string(round) +
                                " kept no group: every group's scores tie, which " + loss_name<L>() +
                                " cannot rank (draw more distinct responses, or use a noisy judge)");
      if (c.curriculum_stages > 1) stages = curriculum(stages[0], c.curriculum_stages);
    }
    double loss = std::nan("");
    std::int64_t groups = 0;
    const auto n_stages = static_cast<std::int64_t>(stages.size());
    std::int64_t s = 0;  // steps taken in this round
    for (std::int64_t k = 0; k < n_stages; ++k) {
      response_batch& dataset = stages[static_cast<std::size_t>(k)];
      if (k > 0) {  // Curry-DPO: each stage after the first is trained against the policy the last one left
        ref = policy.probabilities();
        set_reference(dataset, p, ref);
        opt = fresh_optimizer();
      }
      const std::int64_t stage_steps = c.steps / n_stages + (k < c.steps % n_stages ? 1 : 0);
      for (std::int64_t t = 0; t < stage_steps; ++t) {
        ++step;
        ++s;
        response_batch online;
        if (c.regime == data_regime::online) {
          const std::vector<double> pi = policy.probabilities();
          online = collect_groups(p, pi, ref, rm, c.group_size, c.groups_per_prompt, ranks, rng);
        }
        response_batch& batch = c.regime == data_regime::online ? online : dataset;
        groups = batch.groups();
        if (groups > 0) {
          loss = loss_gradient(l, policy, batch, grad);
          std::visit([&](auto& o) { o.step(policy.parameters(), grad); }, opt);
        }
        if (s % c.record_every == 0 || s == c.steps) measure(round, step, loss, groups);
      }
    }
  }
  if (last != nullptr) *last = policy.probabilities();
  return out;
}

}  // namespace detail

template <LossLike L>
std::vector<record> train(const L& l, const problem& p, const reward_model& rm, const train_config& c) {
  check_config(l, p, rm, c);
  if (!c.guiding_reference) return detail::train_from(l, p, rm, c, p.ref, nullptr);
  std::vector<double> guide;
  (void)detail::train_from(l, p, rm, c, p.ref, &guide);   // Pre-DPO's step 1: the guiding policy
  return detail::train_from(l, p, rm, c, guide, nullptr);  // step 2: from π_ref again, against the guide
}

}  // namespace rpo::bandit
