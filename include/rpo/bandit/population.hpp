// rpo/bandit/population.hpp — the exact ("population") trainer: every prompt's groups enumerate the arms, so the
// loss is the one of RPO.md §2.4 with all pairs covered and its minimiser is π* (rpo::bandit::optimum).
//
// Public names: rpo::bandit::coverage, rpo::bandit::population_batch, rpo::bandit::make_population_batch,
//               rpo::bandit::population_gradient, rpo::bandit::population_step.
// coverage::pairs: one group per unordered pair of distinct arms of each prompt, the higher-reward arm first (ties
// by index), so a label target (DPO, IPO) reads the judge's deterministic hard preference and a reward-gap target
// (RPO, symmetric under swapping) is unaffected; each pair appears once per prompt. coverage::groups: one group of
// all V arms per prompt (softmax, leave-one-out and all-pairs schemes, RPO.md §3.5). The loss is rpo::evaluate's
// mean over groups, with the ground-truth rewards r* as explicit rewards; its grad_logp is mapped to the logits with
// tabular_policy::accumulate_grad. Deterministic: no sampling.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <vector>

#include "rpo/bandit/policy.hpp"
#include "rpo/bandit/problem.hpp"
#include "rpo/batch.hpp"
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

/// The responses of a population batch: for each, its prompt and arm, plus the group offsets and the fields
/// rpo::batch_input reads (log π and log π_ref are filled by population_gradient at each step).
struct population_batch {
  std::vector<std::int64_t> prompt, arm, offsets{0};
  std::vector<double> logp, ref_logp, reward;
};

/// The groups of `cov` for problem `p` (checked), with rewards and log π_ref filled.
population_batch make_population_batch(const problem& p, coverage cov);

/// The loss of `policy` on the population batch, with its gradient w.r.t. the logits written into `grad` (X·V
/// entries, overwritten). Errors of the loss (β ≤ 0, ...) are thrown by rpo::evaluate before anything is written.
template <LossLike L>
double population_gradient(const L& l, const problem& p, const tabular_policy& policy, population_batch& batch,
                           std::span<double> grad);

/// One optimizer step on the population loss; returns the loss before the step. The policy is untouched when the
/// loss rejects its parameters.
template <LossLike L, class Optimizer>
double population_step(const L& l, const problem& p, tabular_policy& policy, population_batch& batch, Optimizer& opt);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

inline population_batch make_population_batch(const problem& p, coverage cov) {
  p.check();
  population_batch b;
  const auto add = [&](std::int64_t x, std::int64_t y) {
    b.prompt.push_back(x);
    b.arm.push_back(y);
    b.reward.push_back(p.r(x, y));
    b.ref_logp.push_back(std::log(p.pi_ref(x, y)));
  };
  for (std::int64_t x = 0; x < p.prompts; ++x) {
    if (cov == coverage::groups) {
      for (std::int64_t y = 0; y < p.arms; ++y) add(x, y);
      b.offsets.push_back(static_cast<std::int64_t>(b.arm.size()));
      continue;
    }
    for (std::int64_t i = 0; i < p.arms; ++i)
      for (std::int64_t j = i + 1; j < p.arms; ++j) {
        const bool j_first = p.r(x, j) > p.r(x, i);  // the better arm first; a tie keeps index order
        add(x, j_first ? j : i);
        add(x, j_first ? i : j);
        b.offsets.push_back(static_cast<std::int64_t>(b.arm.size()));
      }
  }
  b.logp.assign(b.arm.size(), 0.0);
  return b;
}

template <LossLike L>
double population_gradient(const L& l, const problem& p, const tabular_policy& policy, population_batch& batch,
                           std::span<double> grad) {
  if (policy.prompts() != p.prompts || policy.arms() != p.arms || grad.size() != p.reward.size())
    throw std::invalid_argument("rpo::bandit::population_gradient: the policy, the problem and grad must have the "
                                "same prompts * arms");
  for (std::size_t i = 0; i < batch.arm.size(); ++i) batch.logp[i] = policy.log_prob(batch.prompt[i], batch.arm[i]);
  std::vector<double> grad_logp(batch.arm.size());
  const rpo::batch_input<double> in{batch.logp, batch.ref_logp, {}, batch.reward, batch.offsets};
  const double value = rpo::evaluate(l, in, rpo::batch_output<double>{.grad_logp = grad_logp});
  for (double& g : grad) g = 0;
  for (std::size_t i = 0; i < batch.arm.size(); ++i)
    policy.accumulate_grad(batch.prompt[i], batch.arm[i], grad_logp[i], grad);
  return value;
}

template <LossLike L, class Optimizer>
double population_step(const L& l, const problem& p, tabular_policy& policy, population_batch& batch, Optimizer& opt) {
  std::vector<double> grad(policy.parameters().size());
  const double value = population_gradient(l, p, policy, batch, grad);
  opt.step(policy.parameters(), grad);
  return value;
}

}  // namespace rpo::bandit
