// rpo/bandit/data.hpp — data collection for a bandit run: groups of K responses drawn from a sampling policy and
// scored by a reward model (offline: once, from π_ref; online: every step, from π_θ — RPO.md §7), and labelled
// preference pairs for fitting a reward model.
//
// Public names: rpo::bandit::collect_groups, rpo::bandit::preference,
//               rpo::bandit::collect_preferences.
// Responses are drawn i.i.d. with replacement (a group may repeat an arm, as a sampler at temperature 1 does). A loss
// that ranks by the scores (a label target: DPO, IPO, SimPO) cannot take a group whose ranking ties; such a group
// carries no preference and is dropped, as preference pipelines drop ties.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "rpo/bandit/batch.hpp"
#include "rpo/bandit/problem.hpp"
#include "rpo/bandit/reward_model.hpp"
#include "rpo/concepts.hpp"
#include "rpo/loss.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// `groups_per_prompt` groups of `group_size` responses for every prompt, drawn from `sampler` (an X·V probability
/// table), scored by `rm` (one query per response), with log π_ref read from `ref` (an X·V probability table: the
/// reference of the current round). A group that breaks `ranks` (rpo::ranking::strict: a tie anywhere;
/// rpo::ranking::extremes: best = worst; rpo::ranking::chosen_first: response 0 not above the rest) is dropped.
/// Throws std::invalid_argument for group_size < 1,
/// groups_per_prompt < 1 or tables of the wrong size.
template <class Rng>
response_batch collect_groups(const problem& p, std::span<const double> sampler, std::span<const double> ref,
                              const reward_model& rm, std::int64_t group_size, std::int64_t groups_per_prompt,
                              ranking ranks, Rng& rng);

/// A labelled comparison: arm `chosen` of prompt `prompt` was preferred to arm `rejected`.
struct preference {
  std::int64_t prompt, chosen, rejected;
};

/// `pairs_per_prompt` comparisons for every prompt: two responses drawn i.i.d. from `sampler`, labelled by the order
/// of `labeller`'s scores (hard labels from judge(), Bradley-Terry labels from bradley_terry_judge()). A tie
/// (the same arm twice, under a noiseless labeller) is not a comparison and is dropped.
template <class Rng>
std::vector<preference> collect_preferences(const problem& p, std::span<const double> sampler,
                                            const reward_model& labeller, std::int64_t pairs_per_prompt, Rng& rng);

// ===========================================================================================================
// Implementations
// ===========================================================================================================

template <class Rng>
response_batch collect_groups(const problem& p, std::span<const double> sampler, std::span<const double> ref,
                              const reward_model& rm, std::int64_t group_size, std::int64_t groups_per_prompt,
                              ranking ranks, Rng& rng) {
  constexpr const char* who = "rpo::bandit::collect_groups";
  detail::require(group_size >= 1, who, "group_size", "must be >= 1", static_cast<double>(group_size));
  detail::require(groups_per_prompt >= 1, who, "groups_per_prompt", "must be >= 1",
                  static_cast<double>(groups_per_prompt));
  detail::check_table(who, "sampler", p, sampler);
  detail::check_table(who, "ref", p, ref);
  detail::check_table(who, "the reward model's mean", p, rm.mean);
  response_batch b;
  for (std::int64_t x = 0; x < p.prompts; ++x)
    for (std::int64_t g = 0; g < groups_per_prompt; ++g) {
      for (std::int64_t k = 0; k < group_size; ++k) {
        const std::int64_t y = draw(sampler, p.arms, x, rng);
        b.add(x, y, std::log(ref[p.at(x, y)]), p.length(x, y), rm.score(p.arms, x, y, rng));
      }
      const auto first = static_cast<std::size_t>(b.offsets.back());
      if (rpo::detail::ranking_breach(ranks, b.reward.data() + first, group_size).first < 0)
        b.close_group();
      else
        b.discard_open_group();
    }
  return b;
}

template <class Rng>
std::vector<preference> collect_preferences(const problem& p, std::span<const double> sampler,
                                            const reward_model& labeller, std::int64_t pairs_per_prompt, Rng& rng) {
  constexpr const char* who = "rpo::bandit::collect_preferences";
  detail::require(pairs_per_prompt >= 1, who, "pairs_per_prompt", "must be >= 1", static_cast<double>(pairs_per_prompt));
  detail::check_table(who, "sampler", p, sampler);
  detail::check_table(who, "the labeller's mean", p, labeller.mean);
  std::vector<preference> out;
  for (std::int64_t x = 0; x < p.prompts; ++x)
    for (std::int64_t k = 0; k < pairs_per_prompt; ++k) {
      const std::int64_t y1 = draw(sampler, p.arms, x, rng), y2 = draw(sampler, p.arms, x, rng);
      const double s1 = labeller.score(p.arms, x, y1, rng), s2 = labeller.score(p.arms, x, y2, rng);
      if (s1 > s2) out.push_back({x, y1, y2});
      if (s2 > s1) out.push_back({x, y2, y1});
    }
  return out;
}

}  // namespace rpo::bandit
