// rpo/concepts.hpp — what a scalar, a distance, a reward model, a target and a sampling scheme are.
//
// Public names:
//   scalars      rpo::scalar_traits, rpo::Scalar
//   results      rpo::gap_grad, rpo::reward_grad, rpo::infinite_target_t, rpo::infinite_target
//   inputs       rpo::input (the per-response fields a policy reads), rpo::contains, operator| on rpo::input
//   parameters   rpo::parameter_error, rpo::is_finite, rpo::require_positive, rpo::require_nonnegative,
//                rpo::require_finite
//   rankings     rpo::ranking (what a sampling scheme needs of the explicit rewards it ranks by)
//   concepts     rpo::Distance, rpo::AcceptsFiniteTarget, rpo::AcceptsInfiniteTarget, rpo::RewardModel,
//                rpo::Target, rpo::InfiniteTarget, rpo::ShiftedTarget, rpo::ScoredTarget, rpo::Sampling
// Layer 1 of DESIGN.md: needs only the standard library. A user policy includes this header, not the built-in
// policy headers. RPO.md §1 gives the symbols (a, b, r_π, β, η).
// @sa docs/concepts.md
#pragma once

#include <concepts>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "rpo/config.hpp"

namespace rpo {

// ===========================================================================================================
// Scalars
// ===========================================================================================================

/// Opt-in for user scalar types (a dual number, an interval): specialise with `enabled = true` to make them
/// satisfy rpo::Scalar (the idea of Eigen's NumTraits). Such a type must also: find exp, log, log1p, expm1 and
/// fabs by argument-dependent lookup; be constructible from double and from int; compare with < > <= >= ==; and
/// specialise std::numeric_limits (epsilon(), infinity()), which the cores use for cutoffs.
/// tests/support/dual.hpp is a complete example.  @sa docs/concepts.md#scalar
template <class T> struct scalar_traits {
  static constexpr bool enabled = false;
};

/// float, double (or an opted-in user type): the number type every rpo formula is templated on.
/// @sa docs/concepts.md#scalar
template <class T>
concept Scalar = std::floating_point<T> || scalar_traits<T>::enabled;

// ===========================================================================================================
// Results of the policies (plain aggregates: trivially copyable, returnable from device code)
// ===========================================================================================================

/// D(a‖b) with its partial derivatives ∂D/∂a and ∂D/∂b.  @sa docs/distance.md
template <class T> struct gap_grad {
  T value;
  T d_a;
  T d_b;
};

/// r_π(y) with its partial derivatives ∂r_π/∂log π(y) and ∂r_π/∂log π_ref(y).  @sa docs/reward.md
template <class T> struct reward_grad {
  T value;
  T d_logp;
  T d_ref_logp;
};

/// The target b = +∞ (a hard preference label), carried as a type: a distance selects its limit formula at
/// compile time, so +∞ never enters arithmetic (STYLE pitfall 10).  @sa docs/target.md#hard_label
struct infinite_target_t {};
/// The value of rpo::infinite_target_t.
inline constexpr infinite_target_t infinite_target{};

// ===========================================================================================================
// What a policy reads, and how it reports a bad parameter
// ===========================================================================================================

/// The per-response input fields, as bit flags: a policy declares the ones it reads in a
/// `static constexpr rpo::input inputs` member, and the checked entry points require exactly those.
/// @sa docs/concepts.md#input
enum class input : unsigned {
  none = 0,
  logp = 1u << 0,      ///< policy sequence log-prob log π(y|x)
  ref_logp = 1u << 1,  ///< reference sequence log-prob log π_ref(y|x)
  length = 1u << 2,    ///< response token count n > 0
  reward = 1u << 3,    ///< explicit reward r(x, y)
};
/// The union of two input sets.
RPO_HD constexpr input operator|(input a, input b) noexcept {
  return static_cast<input>(static_cast<unsigned>(a) | static_cast<unsigned>(b));
}
/// True when the set `set` contains every field of `fields`.
RPO_HD constexpr bool contains(input set, input fields) noexcept {
  return (static_cast<unsigned>(set) & static_cast<unsigned>(fields)) == static_cast<unsigned>(fields);
}

/// What a sampling scheme that ranks the responses of a group by their explicit rewards needs of those rewards.
/// A scheme declares it (a `ranks` member, see rpo::Sampling), and the checked entry points reject a group that
/// breaks it, naming the group and the tied responses.  @sa docs/sampling.md#ranking
enum class ranking : unsigned char {
  none = 0,  ///< the scheme does not rank: ties are fine
  extremes,  ///< the highest and the lowest reward of a group must differ (best-vs-worst)
  strict,    ///< no two rewards of a group may tie (a full ranking: Plackett-Luce, pairs oriented by reward)
  chosen_first,  ///< response 0's reward must exceed every other response's (ODPO's log(r_c − r_r) offset)
};

/// The first parameter of a policy that breaks its rule, or `name == nullptr` when all are valid. A policy's
/// `check()` returns it; the checked entry points turn it into an error such as
/// "rpo::dpo: beta must be > 0, but got beta = -0.1".  @sa docs/errors.md
struct parameter_error {
  const char* name = nullptr;  ///< the parameter, e.g. "beta"
  const char* rule = nullptr;  ///< what it must satisfy, e.g. "must be > 0"
  double value = 0;            ///< what it was
  /// True when a parameter is invalid.
  constexpr explicit operator bool() const noexcept { return name != nullptr; }
};

/// True for a finite number (constexpr, unlike std::isfinite in C++20): x − x is 0 only when x is finite.
template <Scalar T> RPO_HD constexpr bool is_finite(T x) noexcept { return x - x == T(0); }

/// The check for a positive, finite parameter (β, a temperature).
constexpr parameter_error require_positive(const char* name, double value) noexcept {
  if (is_finite(value) && value > 0) return {};
  return {name, "must be finite and > 0", value};
}
/// The check for a non-negative, finite parameter (η, a margin).
constexpr parameter_error require_nonnegative(const char* name, double value) noexcept {
  if (is_finite(value) && value >= 0) return {};
  return {name, "must be finite and >= 0", value};
}
/// The check for a finite parameter.
constexpr parameter_error require_finite(const char* name, double value) noexcept {
  if (is_finite(value)) return {};
  return {name, "must be finite", value};
}

// ===========================================================================================================
// Concepts
// ===========================================================================================================

namespace detail {
template <class P>
concept Policy = std::is_trivially_copyable_v<P> && std::is_default_constructible_v<P> && requires(const P p) {
  { p.check() } -> std::same_as<parameter_error>;
};
template <class P>
concept ReadsInputs = Policy<P> && requires {
  { P::inputs } -> std::convertible_to<input>;
};
}  // namespace detail

/// A distance that takes a finite target b: `value_and_grad(a, b)` returns D(a‖b), ∂D/∂a, ∂D/∂b.
/// @sa docs/concepts.md#distance
template <class D>
concept AcceptsFiniteTarget = requires(const D d, double x, float y) {
  { d.value_and_grad(x, x) } -> std::same_as<gap_grad<double>>;
  { d.value_and_grad(y, y) } -> std::same_as<gap_grad<float>>;
};

/// A distance with a finite limit at b = +∞: `value_and_grad(a, infinite_target)`.  @sa docs/concepts.md#distance
template <class D>
concept AcceptsInfiniteTarget = requires(const D d, double x, float y) {
  { d.value_and_grad(x, infinite_target) } -> std::same_as<gap_grad<double>>;
  { d.value_and_grad(y, infinite_target) } -> std::same_as<gap_grad<float>>;
};

/// A distance D(a‖b) between the policy gap a and the target gap b, with its partials, for finite targets,
/// for b = +∞, or both.  RPO.md §2.2.  @sa docs/concepts.md#distance
template <class D>
concept Distance = detail::Policy<D> && (AcceptsFiniteTarget<D> || AcceptsInfiniteTarget<D>);

/// A reward model r_π(y) from one response's inputs: `value_and_grad(logp, ref_logp, length)` returns r_π with
/// ∂r_π/∂logp and ∂r_π/∂ref_logp; inputs it does not declare in `inputs` are ignored.  RPO.md §1.
/// @sa docs/concepts.md#reward_model
template <class R>
concept RewardModel = detail::ReadsInputs<R> && requires(const R r, double x, float y) {
  { r.value_and_grad(x, x, x) } -> std::same_as<reward_grad<double>>;
  { r.value_and_grad(y, y, y) } -> std::same_as<reward_grad<float>>;
};

/// A target: `gap(r_first, r_second)` gives b for a contrast of two responses, as a number or as
/// rpo::infinite_target_t.  RPO.md §2.1.  @sa docs/concepts.md#target
template <class T>
concept Target = detail::ReadsInputs<T> && requires(const T t, double x, float y) {
  t.gap(x, x);
  t.gap(y, y);
};

/// A target whose gap is +∞ (a hard label).
template <class T>
concept InfiniteTarget = Target<T> && std::same_as<decltype(std::declval<const T&>().gap(0.0, 0.0)), infinite_target_t>;

/// A target that also shifts the policy gap, D(a − γ‖b) (a margin such as SimPO's γ): `shift()` gives γ.
template <class T>
concept ShiftedTarget = Target<T> && requires(const T t) {
  { t.shift() } -> std::convertible_to<double>;
};

/// A target that also scores each response on its own: `score(r)` gives t = η·r, with gap(r₁, r₂) = score(r₁) −
/// score(r₂). The leave-one-out and listwise schemes need it (RPO.md §3: t_i = η·r_i); a label target, which only
/// says which of two responses is preferred, has no such score.  @sa docs/concepts.md#target
template <class T>
concept ScoredTarget = Target<T> && requires(const T t, double x, float y) {
  { t.score(x) } -> std::same_as<double>;
  { t.score(y) } -> std::same_as<float>;
};

/// A sampling scheme: which contrasts of a group of K responses are compared. `group_size` is the K it needs
/// (0 when any K ≥ `min_group_size` works). Optional members, read by rpo::loss when present:
/// `static constexpr rpo::input inputs` (fields the scheme itself reads, e.g. rewards to rank by),
/// `template <class Tg> static constexpr rpo::ranking ranks` (what it needs of those rewards with target Tg), and
/// `template <class D, class Tg> static constexpr bool composes() noexcept` (true, or a static_assert that says
/// why D and Tg do not fit the scheme).  RPO.md §3.  @sa docs/concepts.md#sampling, docs/sampling.md
template <class S>
concept Sampling = detail::Policy<S> && requires {
  { S::group_size } -> std::convertible_to<std::int64_t>;
  { S::min_group_size } -> std::convertible_to<std::int64_t>;
};

}  // namespace rpo
