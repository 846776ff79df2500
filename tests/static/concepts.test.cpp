// Compile-time checks only (mp-units' test/static): every built-in policy satisfies its concept and is trivially
// copyable; near misses do not; capabilities are detected from overloads, not declared.
#include <type_traits>

#include "rpo.hpp"

namespace {

using namespace rpo;

// Distances, and which targets they take.
static_assert(Distance<distance::squared> && AcceptsFiniteTarget<distance::squared> &&
              !AcceptsInfiniteTarget<distance::squared>);
static_assert(Distance<distance::bernoulli_bwd_kl> && AcceptsFiniteTarget<distance::bernoulli_bwd_kl> &&
              AcceptsInfiniteTarget<distance::bernoulli_bwd_kl>);
static_assert(Distance<distance::bernoulli_fwd_kl> && !AcceptsInfiniteTarget<distance::bernoulli_fwd_kl>);
static_assert(Distance<distance::logistic> && AcceptsFiniteTarget<distance::logistic> &&
              AcceptsInfiniteTarget<distance::logistic>);
static_assert(Distance<distance::hinge> && !AcceptsFiniteTarget<distance::hinge> &&
              AcceptsInfiniteTarget<distance::hinge>);

// Reward models, targets, sampling.
static_assert(RewardModel<reward::implicit> && RewardModel<reward::implicit_normalized> &&
              RewardModel<reward::reference_free> && RewardModel<reward::reference_free_normalized>);
static_assert(contains(reward::implicit_normalized::inputs, input::length) &&
              !contains(reward::implicit::inputs, input::length));
static_assert(!contains(reward::reference_free::inputs, input::ref_logp));
static_assert(Target<target::reward_gap> && Target<target::hard_label> && Target<target::constant> &&
              Target<target::smoothed_label> && Target<target::margin<>> &&
              Target<target::margin<target::reward_gap>>);
static_assert(InfiniteTarget<target::hard_label> && InfiniteTarget<target::margin<>>);
static_assert(!InfiniteTarget<target::reward_gap> && !InfiniteTarget<target::margin<target::constant>>);
static_assert(ShiftedTarget<target::margin<>> && !ShiftedTarget<target::hard_label>);
static_assert(Sampling<sampling::pair> && sampling::pair::group_size == 2);
static_assert(ScoredTarget<target::reward_gap> && !ScoredTarget<target::hard_label> &&
              !ScoredTarget<target::constant> && !ScoredTarget<target::margin<target::reward_gap>>);

// Group schemes: any K >= 2, the fields they read themselves, and what they need of the rewards they rank by.
static_assert(Sampling<sampling::leave_one_out> && Sampling<sampling::all_pairs> && Sampling<sampling::best_worst> &&
              Sampling<sampling::softmax> && Sampling<sampling::plackett_luce>);
static_assert(sampling::softmax::group_size == 0 && sampling::softmax::min_group_size == 2);
static_assert(contains(rpo_sqpairs::composition::inputs, input::reward) &&
              contains(listwise_dpo::composition::inputs, input::reward) &&
              !contains(dpo::composition::inputs, input::reward));
static_assert(listwise_dpo::composition::ranks == ranking::strict &&
              dpo_best_worst::composition::ranks == ranking::extremes &&
              rpo_sqpairs::composition::ranks == ranking::none && rpo_softmax_bwd::composition::ranks == ranking::none);
static_assert(loss<distance::hinge, reward::implicit, target::hard_label, sampling::all_pairs>::ranks ==
              ranking::strict);  // a label orients every pair by reward: no ties

// Every policy is a trivially copyable aggregate (device-ready, designated-initialisable).
static_assert(std::is_trivially_copyable_v<distance::bernoulli_bwd_kl> && std::is_aggregate_v<reward::implicit> &&
              std::is_trivially_copyable_v<target::margin<>> && std::is_aggregate_v<target::margin<>>);

// Near misses: not a policy at all; a distance without value_and_grad; one that is not trivially copyable.
struct no_value_and_grad {
  constexpr parameter_error check() const noexcept { return {}; }
};
struct not_trivially_copyable {
  not_trivially_copyable(const not_trivially_copyable&) {}
  template <class T> gap_grad<T> value_and_grad(T, T) const { return {}; }
  constexpr parameter_error check() const noexcept { return {}; }
};
struct reward_without_inputs {
  template <class T> reward_grad<T> value_and_grad(T, T, T) const { return {}; }
  constexpr parameter_error check() const noexcept { return {}; }
};
static_assert(!Distance<int> && !Distance<no_value_and_grad> && !Distance<not_trivially_copyable>);
static_assert(!RewardModel<reward_without_inputs> && !RewardModel<distance::squared>);
static_assert(!Target<reward::implicit> && !Sampling<int>);

// Compositions and presets.
static_assert(Composition<dpo::composition> && !Composition<dpo> && Preset<dpo> && LossLike<dpo> && LossLike<rpo_bwd::composition>);
static_assert(std::is_same_v<dpo::composition,
                             loss<distance::bernoulli_bwd_kl, reward::implicit, target::hard_label, sampling::pair>>);
static_assert(std::is_same_v<decltype(as_loss(simpo{})), simpo::composition>);
static_assert(contains(rpo_sq::composition::inputs, input::logp | input::ref_logp | input::reward));
static_assert(contains(simpo::composition::inputs, input::length) && !contains(simpo::composition::inputs, input::ref_logp));

// Parameters are checked in constant expressions too.
static_assert(!check_parameters(dpo{}) && check_parameters(dpo{.beta = -1}));
static_assert(!check_parameters(ipo{.tau = 0.1}) && check_parameters(ipo{.tau = 0}));

// The scalar concept accepts float and double, and only what opts in.
static_assert(Scalar<float> && Scalar<double> && !Scalar<int> && !Scalar<long double*>);

}  // namespace
