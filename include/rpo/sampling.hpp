// rpo/sampling.hpp — sampling schemes: which contrasts of a group of responses are compared, and how they are
// weighted.
//
// Public names: rpo::sampling::pair, rpo::sampling::leave_one_out, rpo::sampling::all_pairs,
//               rpo::sampling::best_worst, rpo::sampling::softmax, rpo::sampling::plackett_luce,
//               rpo::sampling::listwise_form, rpo::sampling::listwise_form_of.
// Implements RPO.md §2.1 (one pair per prompt, response 0 chosen) and the multi-response forms of RPO.md §3.5
// ((L-loo), (L-pairs), (L-soft): (E10), (E10f)), best-vs-worst (RPO.md §7, online regime), InfoNCA (LOSSES.md
// §4.12) and Plackett-Luce listwise DPO (LOSSES.md §4.11). Every multi-response form is normalised so that K = 2
// gives back the pairwise loss exactly (RPO.md §3.5).
// A scheme sees the group through two callables: `score(i)` gives s_i = r_π(y_i), and `sink(i, g)` receives
// g = ∂loss/∂s_i, exactly once per response. rpo::loss applies the reward model's chain rule; the scheme never sees
// log-probs. Every scheme is host/device code without allocation: O(K²) work and O(1) memory per group.
// @sa docs/sampling.md
#pragma once

#include <cstdint>
#include <limits>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/math.hpp"

// The distances the listwise schemes know by name (rpo/distance.hpp defines them; a policy header never includes
// another: see listwise_form_of below).
namespace rpo::distance {
struct bernoulli_bwd_kl;
struct bernoulli_fwd_kl;
struct logistic;
}  // namespace rpo::distance

namespace rpo::sampling {

// ===========================================================================================================
// The listwise form of a distance
// ===========================================================================================================

/// The divergence between the policy's and the target's distributions over a group, p = softmax(s) and
/// q = softmax(t), that a listwise scheme computes for a pairwise distance D; at K = 2 each is D itself
/// (a two-class softmax is the sigmoid of the difference).  RPO.md (E10), (E10f); LOSSES.md §4.12.
/// @sa docs/sampling.md#softmax
enum class listwise_form : unsigned char {
  none = 0,       ///< D acts on one scalar gap only (squared, hinge): no listwise form
  backward_kl,    ///< KL(q ‖ p), the listwise D_bwd (E10)
  forward_kl,     ///< KL(p ‖ q), the listwise D_fwd (E10f)
  cross_entropy,  ///< −Σ q_i log p_i = KL(q ‖ p) + H(q), the listwise logistic distance (InfoNCA)
};

/// The listwise form of distance D: a trait that a user distance specialises to opt in.
template <class D> inline constexpr listwise_form listwise_form_of = listwise_form::none;
template <> inline constexpr listwise_form listwise_form_of<distance::bernoulli_bwd_kl> = listwise_form::backward_kl;
template <> inline constexpr listwise_form listwise_form_of<distance::bernoulli_fwd_kl> = listwise_form::forward_kl;
template <> inline constexpr listwise_form listwise_form_of<distance::logistic> = listwise_form::cross_entropy;

// ===========================================================================================================
// Helpers
// ===========================================================================================================

namespace detail {

/// a − γ for one contrast (first, second): the gap a shifted by the target's γ (0 unless it is a margin or reads one
/// from the rewards, as target::log_reward_offset).
template <class Tg, Scalar T> RPO_HD constexpr T shifted_gap(const Tg& target, T a, T r_first, T r_second) noexcept {
  if constexpr (ShiftedTarget<Tg>) a -= T(target.shift());
  if constexpr (requires { target.shift(r_first, r_second); }) a -= target.shift(r_first, r_second);
  return a;
}

/// D(a − γ‖b) for one contrast (first, second), with b from the target and γ the target's shift (0 unless it
/// is a margin); returns D and ∂D/∂a.
template <class D, class Tg, Scalar T>
RPO_HD constexpr gap_grad<T> contrast(const D& distance, const Tg& target, T a, T r_first, T r_second) noexcept {
  return distance.value_and_grad(shifted_gap(target, a, r_first, r_second), target.gap(r_first, r_second));
}

/// True when the pairs of a group are oriented by explicit reward, the higher-reward response first: with a label
/// target, which says "the first response is preferred", or a margin, which shifts the gap of the preferred one.
/// A reward-gap target is antisymmetric (gap(r_j, r_i) = −gap(r_i, r_j)), so with it a pair keeps index order.
template <class Tg>
inline constexpr bool orients_by_reward = !contains(Tg::inputs, input::reward) || ShiftedTarget<Tg>;

/// i ranks before j: a higher reward, or an equal one and a lower index. The checked entry points reject ties where
/// a scheme ranks (rpo::ranking); the unchecked kernels order them by index, so that they stay well defined.
template <Scalar T> RPO_HD constexpr bool ranks_before(const T* reward, std::int64_t i, std::int64_t j) noexcept {
  return reward[i] > reward[j] || (reward[i] == reward[j] && i < j);
}

/// log Σ_{i<n} e^{x(i)} in three parts: the maximum `max`, its index `at`, and
/// `log1p_rest` = log(1 + Σ_{i≠at} e^{x(i) − max}), so that log softmax(x)_i = (x(i) − max) − log1p_rest is exact
/// to the last bits also where it is tiny (the largest x(i) of a confident softmax). math.hpp's logsumexp shifts by
/// the maximum in the same way; log1p instead of log keeps that accuracy.
template <class T> struct lse_parts {
  T max;
  std::int64_t at;
  T log1p_rest;
};
template <Scalar T, class X> RPO_HD constexpr lse_parts<T> log_sum_exp(std::int64_t n, const X& x) noexcept {
  RPO_USING_STD(exp) RPO_USING_STD(log1p)
  lse_parts<T> out{x(0), 0, T(0)};
  for (std::int64_t i = 1; i < n; ++i) {
    const T xi = x(i);
    if (xi > out.max) {
      out.max = xi;
      out.at = i;
    }
  }
  T rest = T(0);
  for (std::int64_t i = 0; i < n; ++i)
    if (i != out.at) rest += exp(x(i) - out.max);
  out.log1p_rest = log1p(rest);
  return out;
}

/// w·φ(u) with φ(u) = e^u − 1 − u ≥ 0, given w, u and w·e^u: one term of KL(w ‖ w·e^u) = Σ_i w_i·φ(u_i) (which holds
/// because both distributions sum to 1). No cancellation: the series of φ for |u| < 1, and for |u| ≥ 1 the direct
/// difference, whose terms are within a factor 4 of the result (the regime split of math.hpp's bregman_softplus).
template <Scalar T> RPO_HD constexpr T kl_term(T w, T u, T w_exp_u) noexcept {
  RPO_USING_STD(fabs)
  if (fabs(u) < T(1)) return w * rpo::detail::expm1mx(u);
  return w_exp_u - w - w * u;
}

/// w·(e^u − 1) given w, u and w·e^u: a difference of two probabilities, p − q with p = q·e^u, without cancellation.
template <Scalar T> RPO_HD constexpr T probability_difference(T w, T u, T w_exp_u) noexcept {
  RPO_USING_STD(fabs) RPO_USING_STD(expm1)
  if (fabs(u) < T(1)) return w * expm1(u);
  return w_exp_u - w;
}

}  // namespace detail

// ===========================================================================================================
// One pair
// ===========================================================================================================

/// One pair per prompt, response 0 chosen: loss = D(a − γ‖b), a = r_π(y₀) − r_π(y₁), b = the target of
/// (y₀, y₁).  RPO.md (E1). ∂loss/∂r_π(y₀) = ∂D/∂a = −∂loss/∂r_π(y₁).  @sa docs/sampling.md#pair
struct pair {
  static constexpr std::int64_t group_size = 2;      ///< exactly two responses per group
  static constexpr std::int64_t min_group_size = 2;  ///< (the same)
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }

  /// The loss of one pair; `reward` may be null when the target reads no rewards.
  template <class D, class Tg, Scalar T, class Score, class Sink>
  RPO_HD constexpr T evaluate(const D& distance, const Tg& target, const Score& score, const T* reward, std::int64_t,
                              Sink&& sink) const noexcept {
    const T r0 = contains(Tg::inputs, input::reward) ? reward[0] : T(0);
    const T r1 = contains(Tg::inputs, input::reward) ? reward[1] : T(0);
    const gap_grad<T> d = detail::contrast(distance, target, score(0) - score(1), r0, r1);
    sink(0, d.d_a);
    sink(1, -d.d_a);
    return d.value;
  }
};

// ===========================================================================================================
// Multi-response schemes (K ≥ 2 responses per group, any K: give groups by offsets)
// ===========================================================================================================

/// (L-loo): loss = (1/K)·Σ_i D(s_i − m₋ᵢ(s) ‖ t_i − m₋ᵢ(t)), m₋ᵢ the leave-one-out mean, t_i = η·r_i;
/// ∂loss/∂s_k = (D′_k − (1/K)·Σ_i D′_i)/(K − 1).  RPO.md §3.5 (L-loo), §3.2; with D_sq its gradient is RLOO's (L13).
/// Any distance with a finite target; the target must score single responses (target::reward_gap). At K = 2 it is
/// ½·(D(a‖b) + D(−a‖−b)) = D(a‖b) for the built-in distances, which are symmetric under (a, b) → (−a, −b).
/// @sa docs/sampling.md#leave_one_out
struct leave_one_out {
  static constexpr std::int64_t group_size = 0;      ///< any K
  static constexpr std::int64_t min_group_size = 2;  ///< K ≥ 2
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }

  /// Compile-time fit of a distance and a target (rpo::loss asserts it).
  template <class D, class Tg> static constexpr bool composes() noexcept {
    static_assert(ScoredTarget<Tg>,
                  "rpo::sampling::leave_one_out: the leave-one-out contrast t_i - m_{-i}(t) needs a target that scores "
                  "each response from its explicit reward (target::reward_gap, t_i = eta * r_i); a label target "
                  "(hard_label, smoothed_label, constant, margin) only says which of two responses is preferred and "
                  "has no leave-one-out form: use sampling::all_pairs or sampling::best_worst with it");
    return true;
  }

  /// The loss of one group of `size` responses.
  template <class D, class Tg, Scalar T, class Score, class Sink>
  RPO_HD constexpr T evaluate(const D& distance, const Tg& target, const Score& score, const T* reward,
                              std::int64_t size, Sink&& sink) const noexcept {
    const T others = T(size - 1);
    // D(s_i − m₋ᵢ(s) ‖ gap(r_i, m₋ᵢ(r))); the gap of a scored target is affine, so gap(r_i, m₋ᵢ(r)) = t_i − m₋ᵢ(t),
    // and at K = 2 both arguments are exactly the pair's.
    const auto term = [&](std::int64_t i) {
      T s_rest = T(0), r_rest = T(0);
      for (std::int64_t j = 0; j < size; ++j) {
        if (j == i) continue;
        s_rest += score(j);
        r_rest += reward[j];
      }
      return distance.value_and_grad(score(i) - s_rest / others, target.gap(reward[i], r_rest / others));
    };
    T value = T(0), slope_sum = T(0);
    for (std::int64_t i = 0; i < size; ++i) {
      const gap_grad<T> d = term(i);
      value += d.value;
      slope_sum += d.d_a;
    }
    const T mean_slope = slope_sum / T(size);
    for (std::int64_t k = 0; k < size; ++k) sink(k, (term(k).d_a - mean_slope) / others);
    return value / T(size);
  }
};

/// (L-pairs): loss = (2/(K(K−1)))·Σ_{i<j} D(s_i − s_j − γ ‖ b_ij), the mean over the K(K−1)/2 unordered pairs.
/// RPO.md §3.5 (L-pairs), §3.3; with D_sq its gradient is the mean-baseline estimator's (L14). Any distance.
/// With target::reward_gap, b_ij = η(r_i − r_j) in index order. With a label target (hard_label, smoothed_label,
/// constant) or a margin, each pair is oriented by the explicit rewards, the higher-reward response first, and two
/// equal rewards are an error of the checked entry points (`ranks`: ranking::strict).
/// @sa docs/sampling.md#all_pairs
struct all_pairs {
  static constexpr std::int64_t group_size = 0;      ///< any K
  static constexpr std::int64_t min_group_size = 2;  ///< K ≥ 2
  /// Reads the explicit rewards (to orient pairs when the target is a label).
  static constexpr input inputs = input::reward;
  /// A label target orients every pair by reward: no two rewards of a group may tie.
  template <class Tg>
  static constexpr ranking ranks = detail::orients_by_reward<Tg> ? ranking::strict : ranking::none;
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }

  /// The loss of one group of `size` responses. Every pair is evaluated twice (once for each of its responses), so
  /// that each response's gradient is complete when it is sunk, with no storage.
  template <class D, class Tg, Scalar T, class Score, class Sink>
  RPO_HD constexpr T evaluate(const D& distance, const Tg& target, const Score& score, const T* reward,
                              std::int64_t size, Sink&& sink) const noexcept {
    const T weight = T(2) / (T(size) * T(size - 1));
    T value = T(0);
    for (std::int64_t i = 0; i < size; ++i) {
      T slope = T(0);
      for (std::int64_t j = 0; j < size; ++j) {
        if (j == i) continue;
        bool i_first = i < j;
        if constexpr (detail::orients_by_reward<Tg>) i_first = detail::ranks_before(reward, i, j);
        const std::int64_t first = i_first ? i : j, second = i_first ? j : i;
        const gap_grad<T> d = detail::contrast(distance, target, score(first) - score(second), reward[first],
                                               reward[second]);
        slope += i_first ? d.d_a : -d.d_a;
        if (i < j) value += d.value;
      }
      sink(i, weight * slope);
    }
    return weight * value;
  }
};

/// Best-vs-worst: one pair per group, the highest-reward response against the lowest-reward one,
/// loss = D(s_best − s_worst − γ ‖ target.gap(r_best, r_worst)); the other responses get gradient 0. Any distance
/// and target. The best is the first response with the highest reward and the worst the last with the lowest; a
/// group whose best and worst rewards tie is an error of the checked entry points (`ranks`: ranking::extremes).
/// RPO.md §7 (online regime: "form pairs ... best against worst").  @sa docs/sampling.md#best_worst
struct best_worst {
  static constexpr std::int64_t group_size = 0;      ///< any K
  static constexpr std::int64_t min_group_size = 2;  ///< K ≥ 2
  /// Reads the explicit rewards (to find the best and the worst response).
  static constexpr input inputs = input::reward;
  /// The best and the worst reward of a group must differ.
  template <class Tg> static constexpr ranking ranks = ranking::extremes;
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }

  /// The loss of one group of `size` responses.
  template <class D, class Tg, Scalar T, class Score, class Sink>
  RPO_HD constexpr T evaluate(const D& distance, const Tg& target, const Score& score, const T* reward,
                              std::int64_t size, Sink&& sink) const noexcept {
    std::int64_t best = 0, worst = size - 1;
    for (std::int64_t i = 1; i < size; ++i)
      if (reward[i] > reward[best]) best = i;
    for (std::int64_t i = size - 2; i >= 0; --i)
      if (reward[i] < reward[worst]) worst = i;
    // best < worst when every reward ties (0 and K − 1), so the two are always distinct responses.
    const gap_grad<T> d = detail::contrast(distance, target, score(best) - score(worst), reward[best], reward[worst]);
    for (std::int64_t i = 0; i < size; ++i) sink(i, i == best ? d.d_a : i == worst ? -d.d_a : T(0));
    return d.value;
  }
};

/// The listwise (softmax) forms over the whole group, with p = softmax(s), q = softmax(t), t_i = η·r_i, and the
/// distance choosing the divergence (listwise_form_of):
///   distance::bernoulli_bwd_kl  KL(q ‖ p)          ∂/∂s_i = p_i − q_i                 (E10): the multi-response RPO
///   distance::bernoulli_fwd_kl  KL(p ‖ q)          ∂/∂s_i = p_i·Σ_j p_j (d_i − d_j)   (E10f), d = log p − log q
///   distance::logistic          −Σ_i q_i log p_i   ∂/∂s_i = p_i − q_i                 InfoNCA (LOSSES.md §4.12)
/// RPO.md §3.1, §3.5 (L-soft). At K = 2 these are D_bwd, D_fwd and D_log of (s₀ − s₁ ‖ t₀ − t₁). The target must
/// score single responses (target::reward_gap); for a ranking with a hard label use plackett_luce.
/// @sa docs/sampling.md#softmax
struct softmax {
  static constexpr std::int64_t group_size = 0;      ///< any K
  static constexpr std::int64_t min_group_size = 2;  ///< K ≥ 2
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }

  /// Compile-time fit of a distance and a target (rpo::loss asserts it).
  template <class D, class Tg> static constexpr bool composes() noexcept {
    static_assert(listwise_form_of<D> != listwise_form::none,
                  "rpo::sampling::softmax: a listwise scheme needs a distance between distributions: "
                  "distance::bernoulli_bwd_kl (KL(softmax(t) || softmax(s)), the multi-response RPO), "
                  "distance::bernoulli_fwd_kl (KL(softmax(s) || softmax(t))) or distance::logistic (the "
                  "cross-entropy, InfoNCA); squared and hinge act on one scalar gap and have no softmax form: use "
                  "sampling::leave_one_out or sampling::all_pairs with them");
    static_assert(ScoredTarget<Tg>,
                  "rpo::sampling::softmax: the target distribution softmax(t) needs t_i = eta * r_i for each response "
                  "(target::reward_gap); a label target has no per-response score: for a ranking with a hard label "
                  "use sampling::plackett_luce");
    return true;
  }

  /// The loss of one group of `size` responses.
  template <class D, class Tg, Scalar T, class Score, class Sink>
  RPO_HD constexpr T evaluate(const D&, const Tg& target, const Score& score, const T* reward, std::int64_t size,
                              Sink&& sink) const noexcept {
    RPO_USING_STD(exp)
    constexpr listwise_form form = listwise_form_of<D>;
    const auto t_of = [&](std::int64_t i) { return target.score(reward[i]); };
    const detail::lse_parts<T> ls = detail::log_sum_exp<T>(size, score), lt = detail::log_sum_exp<T>(size, t_of);
    // log p_i, log q_i and u_i = log p_i − log q_i, each shifted by its own maximum first.
    struct point {
      T log_p, log_q, u, p, q;
    };
    const auto at = [&](std::int64_t i) {
      const T log_p = (score(i) - ls.max) - ls.log1p_rest, log_q = (t_of(i) - lt.max) - lt.log1p_rest;
      return point{log_p, log_q, log_p - log_q, exp(log_p), exp(log_q)};
    };
    T value = T(0);
    for (std::int64_t i = 0; i < size; ++i) {
      if constexpr (form == listwise_form::backward_kl) {
        const point x = at(i);
        value += detail::kl_term(x.q, x.u, x.p);  // Σ q_i φ(u_i), φ(u) = e^u − 1 − u
      } else if constexpr (form == listwise_form::forward_kl) {
        const point x = at(i);
        value += detail::kl_term(x.p, -x.u, x.q);  // Σ p_i φ(−u_i)
      } else {
        // −log p_i = (max − s_i) + log1p_rest ≥ 0: exactly log1p_rest at the largest s_i.
        value += exp((t_of(i) - lt.max) - lt.log1p_rest) * ((ls.max - score(i)) + ls.log1p_rest);
      }
    }
    for (std::int64_t i = 0; i < size; ++i) {
      const point x = at(i);
      if constexpr (form == listwise_form::forward_kl) {
        // p_i·(d_i − Σ_j p_j d_j) = p_i·Σ_j p_j (d_i − d_j), and d_i − d_j = c_i − c_j with c = s − t: the
        // normalisers cancel exactly, so a saturated policy's tiny gradient keeps its relative accuracy (at K = 2
        // this is σ(a)σ(−a)(a − b) term for term).
        const T c_i = score(i) - t_of(i);
        T mixed = T(0);
        for (std::int64_t j = 0; j < size; ++j)
          if (j != i) mixed += exp((score(j) - ls.max) - ls.log1p_rest) * (c_i - (score(j) - t_of(j)));
        sink(i, x.p * mixed);
      } else {
        sink(i, detail::probability_difference(x.q, x.u, x.p));  // p_i − q_i
      }
    }
    return value;
  }
};

/// Plackett-Luce listwise DPO over the ranking π of the group by explicit reward (descending):
/// loss = −Σ_{k=1}^{K−1} log softmax(s_π(k), …, s_π(K))₁ = Σ_k [log Σ_{j≥k} e^{s_π(j)} − s_π(k)];
/// ∂loss/∂s_π(m) = Σ_{k≤min(m,K−1)} softmax_k(π(m)) − [m < K].  LOSSES.md §4.11 (DPO paper, App. A.3).
/// At K = 2 it is DPO: softplus(−(s_best − s_worst)). The listwise limit b = +∞ of D_bwd, so the target must be
/// target::hard_label and the distance bernoulli_bwd_kl or logistic; the rewards are read only to rank, and two
/// equal rewards are an error of the checked entry points (`ranks`: ranking::strict).
/// @sa docs/sampling.md#plackett_luce
struct plackett_luce {
  static constexpr std::int64_t group_size = 0;      ///< any K
  static constexpr std::int64_t min_group_size = 2;  ///< K ≥ 2
  /// Reads the explicit rewards (to rank the responses).
  static constexpr input inputs = input::reward;
  /// A full ranking: no two rewards of a group may tie.
  template <class Tg> static constexpr ranking ranks = ranking::strict;
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }

  /// Compile-time fit of a distance and a target (rpo::loss asserts it).
  template <class D, class Tg> static constexpr bool composes() noexcept {
    static_assert(InfiniteTarget<Tg> && !ShiftedTarget<Tg>,
                  "rpo::sampling::plackett_luce: a ranking is a hard label for every position (the b = +inf limit, "
                  "as in DPO), so the target must be target::hard_label; the ranking itself comes from the explicit "
                  "rewards. For graded rewards use sampling::softmax with target::reward_gap");
    static_assert(listwise_form_of<D> == listwise_form::backward_kl ||
                      listwise_form_of<D> == listwise_form::cross_entropy,
                  "rpo::sampling::plackett_luce: the Plackett-Luce likelihood is the listwise limit of "
                  "distance::bernoulli_bwd_kl (or distance::logistic, the same at b = +inf); other distances have no "
                  "Plackett-Luce form");
    return true;
  }

  /// The loss of one group of `size` responses. The ranking is walked from the best response down, each next one
  /// found by a scan (no sort, no storage); every quantity is kept relative to the current response's s, so that a
  /// confident policy's tiny losses and gradients keep their relative accuracy.
  template <class D, class Tg, Scalar T, class Score, class Sink>
  RPO_HD constexpr T evaluate(const D&, const Tg&, const Score& score, const T* reward, std::int64_t size,
                              Sink&& sink) const noexcept {
    RPO_USING_STD(exp) RPO_USING_STD(expm1) RPO_USING_STD(log1p)
    std::int64_t current = 0;  // the best response
    for (std::int64_t j = 1; j < size; ++j)
      if (detail::ranks_before(reward, j, current)) current = j;
    T value = T(0);
    // x = s_π(m) + log H_{m−1}, H_{m−1} = Σ_{k<m} e^{−L_k}, L_k = log Σ_{j≥k} e^{s_π(j)}: the sum of the earlier
    // softmax probabilities of the current response is e^x. −inf before the first step.
    T x = -std::numeric_limits<T>::infinity();
    for (std::int64_t m = 0; m < size; ++m) {
      const T s = score(current);
      // The responses from π(m) down: the current one and those it ranks before. The next is the first of them.
      std::int64_t next = -1, top = current;
      T top_score = s;
      for (std::int64_t j = 0; j < size; ++j) {
        if (!detail::ranks_before(reward, current, j)) continue;
        if (next < 0 || detail::ranks_before(reward, j, next)) next = j;
        const T sj = score(j);
        if (sj > top_score) {
          top = j;
          top_score = sj;
        }
      }
      T gradient;
      if (m + 1 < size) {
        // d = L_m − s_π(m) = log Σ_{j≥m} e^{s_j − s} ≥ 0, shifted by the suffix maximum.
        T rest = T(0);
        for (std::int64_t j = 0; j < size; ++j)
          if ((j == current || detail::ranks_before(reward, current, j)) && j != top) rest += exp(score(j) - top_score);
        const T d = (top_score - s) + log1p(rest);
        value += d;
        x = logsumexp(x, -d);  // s + log H_m
        gradient = expm1(x);   // Σ_{k≤m} softmax_k(π(m)) − 1
      } else {
        gradient = exp(x);  // the last response: Σ_{k<K} softmax_k(π(K))
      }
      sink(current, gradient);
      if (next < 0) break;  // the last response (or, with NaN rewards, which only errors::unchecked lets in, an end)
      x += score(next) - s;
      current = next;
    }
    return value;
  }
};

}  // namespace rpo::sampling
