// rpo/loss.hpp — the composition loss<Distance, RewardModel, Target, Sampling> and its checked pair entry point.
//
// Public names: rpo::loss, rpo::group_ref, rpo::pair_input, rpo::pair_result, rpo::is_loss_v, rpo::Composition,
//               rpo::Preset,
//               rpo::LossLike, rpo::as_loss, rpo::loss_name, rpo::check_parameters, rpo::value_and_grad.
// A sampling scheme may add fields to read (`inputs`), a ranking it needs of the rewards (`ranks`), and a
// compile-time check of the distance and target it takes (`composes`); rpo::loss reads all three here.
// Implements RPO.md (E1) and the chain rule (E8): ∂loss/∂log π(y_i) = ∂loss/∂r_π(y_i) · ∂r_π(y_i)/∂log π(y_i).
// This is the only place that chain rule is written; the policies give only their local partials.
// @sa docs/loss.md
#pragma once

#include <bit>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/errors.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// One group's inputs (K = `size` responses of one prompt), read-only and trivially copyable, so it can be
/// passed to device code. A pointer is null when the caller has no such field; only the fields the loss reads
/// (`loss::inputs`) must be set.  @sa docs/loss.md#group_ref
template <class T> struct group_ref {
  const T* logp = nullptr;      ///< log π(y_i|x), summed over response tokens
  const T* ref_logp = nullptr;  ///< log π_ref(y_i|x)
  const T* length = nullptr;    ///< response token counts n_i > 0
  const T* reward = nullptr;    ///< explicit rewards r(x, y_i)
  std::int64_t size = 0;        ///< K
};

namespace detail {
/// The fields a sampling scheme reads itself (its optional `inputs`), e.g. rewards to rank by.
template <class S> constexpr input scheme_inputs() noexcept {
  if constexpr (requires { { S::inputs } -> std::convertible_to<input>; }) {
    return S::inputs;
  } else {
    return input::none;
  }
}
/// What the scheme needs of the rewards it ranks by, with target Tg (its optional `ranks<Tg>`).
template <class S, class Tg> constexpr ranking scheme_ranks() noexcept {
  if constexpr (requires { { S::template ranks<Tg> } -> std::convertible_to<ranking>; }) {
    return S::template ranks<Tg>;
  } else {
    return ranking::none;
  }
}
/// What a target needs of the explicit rewards (its optional `ranks`, e.g. ODPO's offset needs r_c > r_r).
template <class Tg> constexpr ranking target_ranks() noexcept {
  if constexpr (requires { { Tg::ranks } -> std::convertible_to<ranking>; }) {
    return Tg::ranks;
  } else {
    return ranking::none;
  }
}
/// The scheme's need, or else the target's (a scheme that ranks and a target that needs an order do not meet in
/// any composition the library builds; rpo::loss refuses the pair).
constexpr ranking combined_ranks(ranking scheme, ranking target) noexcept {
  return scheme != ranking::none ? scheme : target;
}
/// Whether the scheme takes distance D and target Tg (its optional `composes<D, Tg>()`, whose static_asserts say
/// why not).
template <class S, class D, class Tg> constexpr bool scheme_composes() noexcept {
  if constexpr (requires { { S::template composes<D, Tg>() } -> std::same_as<bool>; }) {
    return S::template composes<D, Tg>();
  } else {
    return true;
  }
}
}  // namespace detail

/// The composition of a distance, a reward model, a target and a sampling scheme into one loss:
/// loss = S over the group's contrasts of D(a − γ‖b), a = r_π(y_i) − r_π(y_j), b from the target.  RPO.md (E1).
/// An aggregate: `rpo::loss<...>{.reward = {.beta = 0.2}, .target = {.eta = 1}}`.  @sa docs/loss.md
template <Distance D, RewardModel R, Target Tg, Sampling S> struct loss {
  static_assert(detail::scheme_composes<S, D, Tg>(),
                "rpo::loss: the sampling scheme does not take this distance and target (see the message above)");
  static_assert(!InfiniteTarget<Tg> || AcceptsInfiniteTarget<D>,
                "rpo::loss: a hard label (b = +inf) needs a distance with a finite limit there "
                "(distance::bernoulli_bwd_kl, distance::logistic, distance::hinge); with distance::squared or "
                "distance::bernoulli_fwd_kl use target::smoothed_label, target::constant or target::reward_gap");
  static_assert(detail::target_ranks<Tg>() == ranking::none || S::group_size == 2,
                "rpo::loss: this target needs the chosen response's reward above the rejected one's "
                "(target::log_reward_offset: log(r_c - r_r)), which only a pair has; use it with sampling::pair");
  static_assert(InfiniteTarget<Tg> || AcceptsFiniteTarget<D>,
                "rpo::loss: this distance takes no target gap b (its own margin plays that role, as in "
                "distance::hinge); use target::hard_label, or target::margin<target::hard_label> to shift it");

  using distance_type = D;
  using reward_type = R;
  using target_type = Tg;
  using sampling_type = S;

  D distance{};  ///< D(a‖b)
  R reward{};    ///< r_π(y)
  Tg target{};   ///< b
  S sampling{};  ///< which contrasts

  /// The per-response fields this loss reads: logp, and those of the reward model, the target and the scheme.
  static constexpr input inputs = input::logp | R::inputs | Tg::inputs | detail::scheme_inputs<S>();
  /// What the scheme needs of the explicit rewards it ranks by (ranking::none for most); the checked entry points
  /// reject a group that breaks it.
  static constexpr ranking ranks = detail::combined_ranks(detail::scheme_ranks<S, Tg>(), detail::target_ranks<Tg>());
  /// The number of responses of every group (the scheme's), or 0 when any K ≥ min_group_size works.
  static constexpr std::int64_t group_size = S::group_size;
  /// The fewest responses a group may have.
  static constexpr std::int64_t min_group_size = S::min_group_size;

  /// The first invalid parameter of the four policies, in the order distance, reward, target, sampling.
  constexpr parameter_error check() const noexcept;

  /// The loss of one group, unchecked (host and device): writes ∂loss/∂logp_i into grad_logp[i] and
  /// ∂loss/∂ref_logp_i into grad_ref_logp[i] when those pointers are not null. The group must hold valid,
  /// complete inputs; rpo::value_and_grad and rpo::evaluate check them first.
  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept;
};

/// True for a specialisation of rpo::loss.
template <class L> inline constexpr bool is_loss_v = false;
template <class D, class R, class Tg, class S> inline constexpr bool is_loss_v<loss<D, R, Tg, S>> = true;

/// What the batch layer evaluates: a trivially copyable loss of one group with its parameters' check(), the fields
/// it reads (`inputs`), the group sizes it takes (`group_size`, 0 for any, and `min_group_size`), what it needs of
/// the explicit rewards (`ranks`) and `evaluate(group, grad_logp, grad_ref_logp)`. Every rpo::loss is one; so are
/// the weighted sums of rpo::sum, the NLL term rpo::nll and the extensions outside the template (rpo/extension.hpp),
/// which is how they reach rpo::evaluate, the spec registry and the bindings without a second code path.
/// @sa docs/loss.md, docs/methods.md
template <class C>
concept Composition = std::is_trivially_copyable_v<C> && requires(const C c, const group_ref<double>& gd,
                                                                  double* pd, const group_ref<float>& gf, float* pf) {
  { C::inputs } -> std::convertible_to<input>;
  { C::ranks } -> std::convertible_to<ranking>;
  { C::group_size } -> std::convertible_to<std::int64_t>;
  { C::min_group_size } -> std::convertible_to<std::int64_t>;
  { c.check() } -> std::same_as<parameter_error>;
  { c.evaluate(gd, pd, pd) } -> std::same_as<double>;
  { c.evaluate(gf, pf, pf) } -> std::same_as<float>;
};

/// A named method (rpo::dpo, rpo::simpo, ...): its own parameters, a `name`, and `compose()`, which gives the
/// composition it stands for. It may add a `check()` for parameters that the composition does not carry.
/// @sa docs/presets.md
template <class P>
concept Preset = std::is_trivially_copyable_v<P> && requires(const P p) {
  { p.compose() } -> Composition;
  { P::name } -> std::convertible_to<const char*>;
};

/// What the entry points accept: a composition or a preset.
template <class L>
concept LossLike = Composition<L> || Preset<L>;

/// The composition behind a preset (or the composition itself).  @sa docs/loss.md#as_loss
template <LossLike L> constexpr auto as_loss(const L& l) noexcept;

/// The name used in error messages: the preset's ("rpo::dpo"), or "rpo::loss".
template <LossLike L> constexpr const char* loss_name() noexcept;

/// The first invalid parameter: the preset's own check (when it has one), then its composition's.
template <LossLike L> constexpr parameter_error check_parameters(const L& l) noexcept;

/// The two responses of one preference pair, response 0 the chosen one. A field the loss does not read may
/// be left out; it then holds NaN, and a loss that reads it rejects the call. `T` defaults to double, so
/// `rpo::value_and_grad(rpo::dpo{}, {.logp = {-12, -20}, .ref_logp = {-13.5, -19}})` works as written.
/// @sa docs/loss.md#pair_input
template <Scalar T = double> struct pair_input {
  static constexpr T absent = std::numeric_limits<T>::quiet_NaN();
  T logp[2] = {absent, absent};      ///< log π(y_c|x), log π(y_r|x)
  T ref_logp[2] = {absent, absent};  ///< log π_ref(y_c|x), log π_ref(y_r|x)
  T length[2] = {absent, absent};    ///< token counts n_c, n_r > 0
  T reward[2] = {absent, absent};    ///< explicit rewards r_c, r_r
};

/// The loss of one pair and its gradients. `grad_ref_logp` is ∂loss/∂ref_logp, for callers that check it; the
/// reference log-probs are constants of the objective and get no update.  @sa docs/loss.md#pair_result
template <Scalar T> struct pair_result {
  T loss;
  T grad_logp[2];
  T grad_ref_logp[2];
};

/// The loss of one pair and its analytic gradients, after checking the parameters and the inputs under the
/// error policy (throw by default): NaN or infinite log-probs, rewards or lengths that the loss reads, and
/// lengths ≤ 0 are rejected with a message naming the field.  @sa docs/loss.md#value_and_grad
template <LossLike L, Scalar T = double, ErrorPolicy P = errors::throw_on_error>
pair_result<T> value_and_grad(const L& l, const pair_input<T>& pair, P policy = {});

namespace detail {
/// What the checks need to know of a loss, as values: one instantiation of each check per scalar type and
/// policy serves every composition.
struct loss_shape {
  const char* name;             ///< for messages: loss_name<L>(), or a spec
  input inputs;                 ///< the fields it reads
  std::int64_t group_size;      ///< the sampling scheme's fixed group size, or 0
  std::int64_t min_group_size;  ///< the fewest responses a group may have
  ranking ranks = ranking::none;  ///< what the scheme needs of the rewards it ranks by
  bool reward_is_probability = false;  ///< each explicit reward must lie in [0, 1] (a win probability)
};
/// True when a composition declares `static constexpr bool reward_is_probability = true`: its explicit rewards are
/// probabilities (soft SPPO's P̂), which the checks then hold to [0, 1]. Compositions without the member: false.
template <class C> constexpr bool reward_is_probability() noexcept {
  if constexpr (requires { { C::reward_is_probability } -> std::convertible_to<bool>; }) {
    return C::reward_is_probability;
  } else {
    return false;
  }
}
template <LossLike L> constexpr loss_shape shape_of() noexcept;
/// r_π(y_i) and its partials ∂r_π/∂logp_i, ∂r_π/∂ref_logp_i for response i of `group`: rpo::loss's reading of a
/// response, shared with the pair blocks of the batch layer (rpo/detail/pair_block.hpp).
template <RewardModel R, Scalar T>
RPO_HD constexpr reward_grad<T> reward_at(const R& reward, const group_ref<T>& group, std::int64_t i) noexcept;
/// Checks the loss's parameters under the policy; false (after raising) when one is invalid.
template <LossLike L, ErrorPolicy P> bool check_loss_parameters(const L& l, const P& policy);
/// Checks the values of every field the loss reads in `group` (one group, or a whole batch seen as one run of
/// responses); `first` is the index of its first response in the caller's arrays (for the message).
template <Scalar T, ErrorPolicy P>
bool check_group_values(const loss_shape& shape, const group_ref<T>& group, std::int64_t first, const P& policy);
/// Where the `size` explicit rewards `r` of a group break `ranks`: the two responses that tie (ranking::strict), the
/// chosen response and one not below it (ranking::chosen_first), or the best and the worst when they tie
/// (ranking::extremes); {−1, −1} when the group keeps the ranking. The one rule behind check_group_ranking's error and
/// behind callers that drop such groups instead (rpo/bandit/data.hpp).
template <Scalar T>
constexpr std::pair<std::int64_t, std::int64_t> ranking_breach(ranking ranks, const T* r, std::int64_t size) noexcept;
/// Checks what the scheme needs of the rewards it ranks by (`shape.ranks`) in group number `index`, whose first
/// response is `first` in the caller's arrays: no tie at all (ranking::strict), or a best reward above the worst
/// (ranking::extremes). A domain error names the group and the tied responses.
template <Scalar T, ErrorPolicy P>
bool check_group_ranking(const loss_shape& shape, const group_ref<T>& group, std::int64_t index, std::int64_t first,
                         const P& policy);
}  // namespace detail

// ===========================================================================================================
// Implementations
// ===========================================================================================================

template <Distance D, RewardModel R, Target Tg, Sampling S>
constexpr parameter_error loss<D, R, Tg, S>::check() const noexcept {
  if (auto e = distance.check()) return e;
  if (auto e = reward.check()) return e;
  if (auto e = target.check()) return e;
  return sampling.check();
}

/// r_π(y_i) and its partials for response i of `group`. Fields the reward model does not read are passed as neutral
/// values (ref 0, length 1) and ignored by it.
template <RewardModel R, Scalar T>
RPO_HD constexpr reward_grad<T> detail::reward_at(const R& reward, const group_ref<T>& group, std::int64_t i) noexcept {
  const T ref = contains(R::inputs, input::ref_logp) ? group.ref_logp[i] : T(0);
  const T length = contains(R::inputs, input::length) ? group.length[i] : T(1);
  return reward.value_and_grad(group.logp[i], ref, length);
}

template <Distance D, RewardModel R, Target Tg, Sampling S>
template <Scalar T>
RPO_HD constexpr T loss<D, R, Tg, S>::evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                                                std::type_identity_t<T>* grad_ref_logp) const noexcept {
  const auto reward_of = [&](std::int64_t i) { return detail::reward_at(reward, group, i); };
  // (E8): the scheme gives ∂loss/∂r_π(y_i) once per response; multiply by the reward model's partials.
  const auto chain = [&](std::int64_t i, T d_score, const reward_grad<T>& r) {
    if (grad_logp != nullptr) grad_logp[i] = d_score * r.d_logp;
    if (grad_ref_logp != nullptr) grad_ref_logp[i] = d_score * r.d_ref_logp;
  };
  if constexpr (S::group_size > 0) {
    // A fixed group size (a pair): each response's reward and partials are evaluated once, not once for the score
    // and again for the chain rule (the f-divergence and log-odds rewards cost an exponential or two each).
    reward_grad<T> rewards[S::group_size]{};
    for (std::int64_t i = 0; i < S::group_size; ++i) rewards[i] = reward_of(i);
    const auto score = [&](std::int64_t i) { return rewards[i].value; };
    const auto sink = [&](std::int64_t i, T d_score) { chain(i, d_score, rewards[i]); };
    return sampling.evaluate(distance, target, score, group.reward, group.size, sink);
  } else {
    const auto score = [&](std::int64_t i) { return reward_of(i).value; };
    const auto sink = [&](std::int64_t i, T d_score) { chain(i, d_score, reward_of(i)); };
    return sampling.evaluate(distance, target, score, group.reward, group.size, sink);
  }
}

template <LossLike L> constexpr auto as_loss(const L& l) noexcept {
  if constexpr (Composition<L>) {
    return l;
  } else {
    return l.compose();
  }
}

template <LossLike L> constexpr const char* loss_name() noexcept {
  if constexpr (Preset<L>) {
    return L::name;
  } else {
    return "rpo::loss";
  }
}

template <LossLike L> constexpr parameter_error check_parameters(const L& l) noexcept {
  if constexpr (Preset<L> && requires { l.check(); }) {
    if (auto e = l.check()) return e;
  }
  return as_loss(l).check();
}

namespace detail {

template <LossLike L, ErrorPolicy P> bool check_loss_parameters(const L& l, const P& policy) {
  if constexpr (std::is_same_v<P, errors::unchecked>) {
    return true;
  } else {
    const parameter_error e = check_parameters(l);
    if (!e) return true;
    return fail(policy, errc::invalid_parameter, rule_message(loss_name<L>(), e.name, e.rule, e.value));
  }
}

template <LossLike L> constexpr loss_shape shape_of() noexcept {
  using C = decltype(as_loss(std::declval<const L&>()));
  return {loss_name<L>(), C::inputs, C::group_size, C::min_group_size, C::ranks, reward_is_probability<C>()};
}

/// Whether the n values are all finite (and > 0 when `positive`). For float and double, one pass over the bits that
/// the compiler vectorises, an OR of integer comparisons: finite when the bits without the sign are below those of
/// +inf; finite and > 0 when the bits, as an unsigned integer, lie in [1, +inf) (the sign bit, ±0, inf and NaN fall
/// outside). The comparisons of floating-point values, x − x == 0 and x > 0, are not vectorised (their NaN cases),
/// and took a third of rpo::evaluate's time on a million pairs; other scalars still use them. Under OpenMP, a long
/// run is split over threads (an OR: the same answer on any number of them).
template <Scalar T> bool all_valid(const T* x, std::int64_t n, bool positive) noexcept {
  if constexpr (std::is_same_v<T, double> || std::is_same_v<T, float>) {
    using U = std::conditional_t<sizeof(T) == 8, std::uint64_t, std::uint32_t>;
    constexpr U inf = std::bit_cast<U>(std::numeric_limits<T>::infinity());
    constexpr U magnitude = static_cast<U>(~(U(1) << (8 * sizeof(U) - 1)));
    // Finite: (bits & magnitude) ≥ inf is bad. Finite and > 0: bits − 1 ≥ inf − 1 is bad (0 wraps around).
    const U mask = positive ? static_cast<U>(~U(0)) : magnitude, low = positive ? U(1) : U(0), limit = inf - low;
    const auto bad_at = [&](std::int64_t i) {
      return static_cast<U>(static_cast<U>((std::bit_cast<U>(x[i]) & mask) - low) >= limit);
    };
    U bad = 0;
    if (n > 65536) {  // a branch, not an `if` clause: a parallel region costs its start even when it runs serially
#if defined(_OPENMP)
#  pragma omp parallel for schedule(static) reduction(| : bad)
#endif
      for (std::int64_t i = 0; i < n; ++i) bad |= bad_at(i);
    } else {
      for (std::int64_t i = 0; i < n; ++i) bad |= bad_at(i);
    }
    return bad == 0;
  } else {
    for (std::int64_t i = 0; i < n; ++i)
      if (!(is_finite(x[i]) && (!positive || x[i] > T(0)))) return false;
    return true;
  }
}

template <Scalar T, ErrorPolicy P>
bool check_group_values(const loss_shape& shape, const group_ref<T>& group, std::int64_t first, const P& policy) {
  if constexpr (std::is_same_v<P, errors::unchecked>) {
    return true;
  } else {
    // `positive`: finite and > 0 (lengths); `probability`: in [0, 1] (rewards that are win probabilities, which also
    // excludes NaN and ±inf); otherwise finite.
    const auto field = [&](input which, const T* values, const char* name, bool positive, bool probability) {
      if (!contains(shape.inputs, which) || group.size == 0) return true;
      // One branch-free pass first (all_valid, for the finite rules); the culprit is looked for only after a failure,
      // or directly for the rare probability rule.
      if (!probability && all_valid(values, group.size, positive)) return true;
      for (std::int64_t i = 0; i < group.size; ++i) {
        const T x = values[i];
        if (probability ? (x >= T(0) && x <= T(1)) : (is_finite(x) && (!positive || x > T(0)))) continue;
        const std::string indexed = std::string(name) + "[" + std::to_string(first + i) + "]";
        const char* rule = probability ? "must be a probability in [0, 1]"
                           : positive  ? "must be finite and > 0"
                                       : "must be finite";
        return fail(policy, errc::domain_error, rule_message(shape.name, indexed, rule, static_cast<double>(x)));
      }
      return true;
    };
    return field(input::logp, group.logp, "logp", false, false) &&
           field(input::ref_logp, group.ref_logp, "ref_logp", false, false) &&
           field(input::length, group.length, "length", true, false) &&
           field(input::reward, group.reward, "reward", false, shape.reward_is_probability);
  }
}

template <Scalar T, ErrorPolicy P>
bool check_group_ranking(const loss_shape& shape, const group_ref<T>& group, std::int64_t index, std::int64_t first,
                         const P& policy) {
  if constexpr (std::is_same_v<P, errors::unchecked>) {
    return true;
  } else {
    if (shape.ranks == ranking::none || group.reward == nullptr || group.size < 2) return true;
    const T* r = group.reward;
    const auto where = [&] {
      return std::string(shape.name) + ": group " + std::to_string(index) + " (responses " + std::to_string(first) +
             " to " + std::to_string(first + group.size - 1) + ")";
    };
    const auto name = [&](std::int64_t i) { return "reward[" + std::to_string(first + i) + "]"; };
    const auto [i, j] = ranking_breach(shape.ranks, r, group.size);
    if (i < 0) return true;
    if (shape.ranks == ranking::chosen_first)
      return fail(policy, errc::domain_error,
                  where() + " needs the chosen response's explicit reward above the others' (its offset is "
                            "log(r_c - r_r)), but " + name(i) + " = " + format_number(static_cast<double>(r[i])) +
                      " and " + name(j) + " = " + format_number(static_cast<double>(r[j])) +
                      ": drop or swap the pair, or use a loss without the log offset (rpo::dpo)");
    if (shape.ranks == ranking::strict)
      return fail(policy, errc::domain_error,
                  where() + " is ranked by its explicit rewards, but responses " + std::to_string(first + i) + " and " +
                      std::to_string(first + j) + " tie (" + name(i) + " = " + name(j) + " = " +
                      format_number(static_cast<double>(r[i])) +
                      "): ties in a ranking have no order; break them, or use a scheme that takes ties "
                      "(sampling::softmax, or sampling::all_pairs with target::reward_gap)");
    return fail(policy, errc::domain_error,
                where() + " has its best and worst explicit rewards tied (every response has reward = " +
                    format_number(static_cast<double>(r[i])) +
                    "), so it has no best-vs-worst pair; ties in a ranking have no order: drop the group, or use "
                    "a scheme that takes ties (sampling::softmax, sampling::leave_one_out)");
  }
}

template <Scalar T>
constexpr std::pair<std::int64_t, std::int64_t> ranking_breach(ranking ranks, const T* r, std::int64_t size) noexcept {
  if (ranks == ranking::chosen_first) {
    for (std::int64_t i = 1; i < size; ++i)
      if (!(r[0] > r[i])) return {0, i};
  } else if (ranks == ranking::strict) {
    for (std::int64_t i = 0; i < size; ++i)
      for (std::int64_t j = i + 1; j < size; ++j)
        if (r[i] == r[j]) return {i, j};
  } else if (ranks == ranking::extremes && size > 0) {
    std::int64_t best = 0, worst = 0;
    for (std::int64_t i = 1; i < size; ++i) {
      if (r[i] > r[best]) best = i;
      if (r[i] < r[worst]) worst = i;
    }
    if (!(r[best] > r[worst])) return {best, worst};
  }
  return {-1, -1};
}

}  // namespace detail

template <LossLike L, Scalar T, ErrorPolicy P>
pair_result<T> value_and_grad(const L& l, const pair_input<T>& pair, P policy) {
  const auto composed = as_loss(l);
  using C = decltype(composed);
  static_assert(C::group_size == 2 || (C::group_size == 0 && C::min_group_size <= 2),
                "rpo::value_and_grad(loss, pair_input): the loss must use a sampling scheme that takes groups of two "
                "responses (sampling::pair, or a multi-response scheme at K = 2); for groups of K responses use "
                "rpo::evaluate");
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  pair_result<T> result{nan, {T(0), T(0)}, {T(0), T(0)}};
  const group_ref<T> group{pair.logp, pair.ref_logp, pair.length, pair.reward, 2};
  constexpr detail::loss_shape shape = detail::shape_of<L>();
  if (!detail::check_loss_parameters(l, policy) || !detail::check_group_values(shape, group, 0, policy) ||
      !detail::check_group_ranking(shape, group, 0, 0, policy))
    return result;
  result.loss = composed.evaluate(group, result.grad_logp, result.grad_ref_logp);
  return result;
}

}  // namespace rpo
