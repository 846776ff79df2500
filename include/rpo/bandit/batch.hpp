// rpo/bandit/batch.hpp — a batch of scored responses of a bandit, grouped by offsets, and the chain rule from the
// loss on it to the logits of a tabular policy.
//
// Public names: rpo::bandit::response_batch, rpo::bandit::loss_gradient.
// A batch is what rpo::evaluate reads (rpo::batch_input): per response its log π, log π_ref, length and explicit
// reward (the score a reward model gave it), and group offsets; plus the prompt and arm each response is, so that the
// loss's ∂loss/∂log π(y|x) (grad_logp) maps to the logits with tabular_policy::accumulate_grad. The scores are
// constants of the gradient (RPO.md Conventions): only log π depends on θ.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/bandit/policy.hpp"
#include "rpo/bandit/problem.hpp"
#include "rpo/batch.hpp"
#include "rpo/loss.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// Scored responses in groups: response i is arm `arm[i]` of prompt `prompt[i]`, group g is the responses
/// [offsets[g], offsets[g+1]). `logp` is filled by loss_gradient from the policy; the others when a response is added.
struct response_batch {
  std::vector<std::int64_t> prompt, arm, offsets{0};
  std::vector<double> logp, ref_logp, length, reward;

  /// Appends arm y of prompt x with its log π_ref, its length and its score (the explicit reward the loss reads).
  void add(std::int64_t x, std::int64_t y, double ref_logp_xy, double length_xy, double score);
  /// Ends the current group (the responses added since the last call).
  void close_group() { offsets.push_back(static_cast<std::int64_t>(arm.size())); }
  /// Removes the responses added since the last close_group() (a group that is dropped).
  void discard_open_group();
  /// The number of closed groups.
  std::int64_t groups() const noexcept { return static_cast<std::int64_t>(offsets.size()) - 1; }
  /// The number of responses.
  std::size_t size() const noexcept { return arm.size(); }
};

/// The loss `l` of `policy` on `batch` (rpo::evaluate's mean over groups), with its gradient w.r.t. the logits
/// written into `grad` (X·V entries, overwritten). `batch.logp` is refreshed from the policy first. Throws what
/// rpo::evaluate throws (invalid parameters, a group the scheme cannot take) before `grad` is written, and
/// std::invalid_argument when `grad`, the policy and the batch's prompts and arms disagree or the batch is empty.
template <LossLike L>
double loss_gradient(const L& l, const tabular_policy& policy, response_batch& batch, std::span<double> grad);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

inline void response_batch::add(std::int64_t x, std::int64_t y, double ref_logp_xy, double length_xy, double score) {
  prompt.push_back(x);
  arm.push_back(y);
  logp.push_back(0.0);
  ref_logp.push_back(ref_logp_xy);
  length.push_back(length_xy);
  reward.push_back(score);
}

inline void response_batch::discard_open_group() {
  const auto keep = static_cast<std::size_t>(offsets.back());
  for (auto* v : {&prompt, &arm}) v->resize(keep);
  for (auto* v : {&logp, &ref_logp, &length, &reward}) v->resize(keep);
}

template <LossLike L>
double loss_gradient(const L& l, const tabular_policy& policy, response_batch& batch, std::span<double> grad) {
  constexpr const char* who = "rpo::bandit::loss_gradient";
  if (grad.size() != policy.parameters().size())
    throw std::invalid_argument(std::string(who) + ": grad has " + std::to_string(grad.size()) +
                                " entries but the policy has " + std::to_string(policy.parameters().size()) + " logits");
  if (batch.groups() < 1) throw std::invalid_argument(std::string(who) + ": the batch has no group");
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (batch.prompt[i] < 0 || batch.prompt[i] >= policy.prompts() || batch.arm[i] < 0 || batch.arm[i] >= policy.arms())
      throw std::invalid_argument(std::string(who) + ": response " + std::to_string(i) + " is (prompt " +
                                  std::to_string(batch.prompt[i]) + ", arm " + std::to_string(batch.arm[i]) +
                                  "), outside the policy's " + std::to_string(policy.prompts()) + " x " +
                                  std::to_string(policy.arms()));
    batch.logp[i] = policy.log_prob(batch.prompt[i], batch.arm[i]);
  }
  std::vector<double> grad_logp(batch.size());
  const rpo::batch_input<double> in{batch.logp, batch.ref_logp, batch.length, batch.reward, batch.offsets};
  const double value = rpo::evaluate(l, in, rpo::batch_output<double>{.grad_logp = grad_logp});
  for (double& g : grad) g = 0;
  for (std::size_t i = 0; i < batch.size(); ++i)
    policy.accumulate_grad(batch.prompt[i], batch.arm[i], grad_logp[i], grad);
  return value;
}

}  // namespace rpo::bandit
