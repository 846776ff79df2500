// rpo/bandit/population.hpp — the exact ("population") trainer: every prompt's groups enumerate the arms, so the
// loss is the one of RPO.md §2.4 with all pairs covered and its minimiser is π* (rpo::bandit::optimum).
//
// Public names: rpo::bandit::coverage, rpo::bandit::make_population_batch, rpo::bandit::population_gradient,
//               rpo::bandit::population_step.
// coverage::pairs: one group per unordered pair of distinct arms of each prompt, the higher-scored arm first (ties
// by index), so a label target (DPO, IPO) reads the judge's deterministic hard preference and a reward-gap target
// (RPO, symmetric under swapping) is unaffected; each pair appears once per prompt. coverage::groups: one group of
// all V arms per prompt (softmax, leave-one-out and all-pairs schemes, RPO.md §3.5). The loss is rpo::evaluate's
// mean over groups, with the scores (the ground truth r* unless others are given) as explicit rewards; its grad_logp
// is mapped to the logits with tabular_policy::accumulate_grad. Deterministic: no sampling.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/bandit/batch.hpp"
#include "rpo/bandit/policy.hpp"
#include "rpo/bandit/problem.hpp"
#include "rpo/loss.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// Which groups of arms the population trainer feeds the loss.
enum class coverage : unsigned char {
  pairs,   ///< every unordered pair of distinct arms, once per prompt, the better arm first
  groups,  ///< all V arms of a prompt as one group
};

/// The groups of `cov` for problem `p` (checked), with log π_ref, lengths and scores filled. The scores are `scores`
/// (an X·V table, e.g. a learnt reward model's) or, when it is empty, the judge's r*.
response_batch make_population_batch(const problem& p, coverage cov, std::span<const double> scores = {});

/// The loss of `policy` on the population batch, with its gradient w.r.t. the logits written into `grad` (X·V
/// entries, overwritten): rpo::bandit::loss_gradient after checking that the policy and `grad` fit the problem.
template <LossLike L>
double population_gradient(const L& l, const problem& p, const tabular_policy& policy, response_batch& batch,
                           std::span<double> grad);

/// One optimizer step on the population loss; returns the loss before the step. The policy is untouched when the
/// loss rejects its parameters.
template <LossLike L, class Optimizer>
double population_step(const L& l, const problem& p, tabular_policy& policy, response_batch& batch, Optimizer& opt);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

inline response_batch make_population_batch(const problem& p, coverage cov, std::span<const double> scores) {
  p.check();
  if (!scores.empty() && scores.size() != p.reward.size())
    throw std::invalid_argument("rpo::bandit::make_population_batch: scores has " + std::to_string(scores.size()) +
                                " entries but the problem has prompts * arms = " + std::to_string(p.reward.size()));
  const auto score = [&](std::int64_t x, std::int64_t y) { return scores.empty() ? p.r(x, y) : scores[p.at(x, y)]; };
  response_batch b;
  const auto add = [&](std::int64_t x, std::int64_t y) { b.add(x, y, std::log(p.pi_ref(x, y)), p.length(x, y), score(x, y)); };
  for (std::int64_t x = 0; x < p.prompts; ++x) {
    if (cov == coverage::groups) {
      for (std::int64_t y = 0; y < p.arms; ++y) add(x, y);
      b.close_group();
      continue;
    }
    for (std::int64_t i = 0; i < p.arms; ++i)
      for (std::int64_t j = i + 1; j < p.arms; ++j) {
        const bool j_first = score(x, j) > score(x, i);  // the better arm first; a tie keeps index order
        add(x, j_first ? j : i);
        add(x, j_first ? i : j);
        b.close_group();
      }
  }
  return b;
}

template <LossLike L>
double population_gradient(const L& l, const problem& p, const tabular_policy& policy, response_batch& batch,
                           std::span<double> grad) {
  if (policy.prompts() != p.prompts || policy.arms() != p.arms || grad.size() != p.reward.size())
    throw std::invalid_argument("rpo::bandit::population_gradient: the policy, the problem and grad must have the "
                                "same prompts * arms");
  return loss_gradient(l, policy, batch, grad);
}

template <LossLike L, class Optimizer>
double population_step(const L& l, const problem& p, tabular_policy& policy, response_batch& batch, Optimizer& opt) {
  std::vector<double> grad(policy.parameters().size());
  const double value = population_gradient(l, p, policy, batch, grad);
  opt.step(policy.parameters(), grad);
  return value;
}

}  // namespace rpo::bandit
