// rpo/target.hpp — targets: the gap b that the policy gap a is pulled towards, from explicit rewards or a label.
//
// Public names: rpo::target::reward_gap, rpo::target::hard_label, rpo::target::constant,
//               rpo::target::smoothed_label, rpo::target::margin, rpo::target::log_reward_offset.
// Implements RPO.md §2.1 (b = η(r(y₁) − r(y₂))) and the label targets of RPO.md §4 and LOSSES.md §0.4
// (b = +∞, a constant, logit(1 − ε), a margin), and ODPO's offset (LOSSES.md §4.1). In a pair, response 0 is the chosen one: label targets say
// "response 0 is preferred".
// @sa docs/target.md
#pragma once

#include <cmath>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"

namespace rpo::target {

/// b = η·(r(y₁) − r(y₂)) from explicit rewards (a reward model, a judge, human scores).  RPO.md (E1).
/// The rewards are constants of the objective: no gradient flows into them.  @sa docs/target.md#reward_gap
struct reward_gap {
  double eta = 1.0;  ///< η ≥ 0, the scale of the explicit reward (NeMo's `gt_reward_scale`, default 1)
  static constexpr input inputs = input::reward;
  template <Scalar T> RPO_HD constexpr T gap(T r_first, T r_second) const noexcept {
    return T(eta) * (r_first - r_second);
  }
  /// t = η·r, one response's scaled reward: the leave-one-out and softmax schemes compare these (RPO.md §3).
  template <Scalar T> RPO_HD constexpr T score(T r) const noexcept { return T(eta) * r; }
  /// η must be finite and >= 0.
  constexpr parameter_error check() const noexcept { return require_nonnegative("eta", eta); }
};

/// b = +∞: a hard preference for response 0, the η → ∞ limit of reward_gap (RPO.md §4, DPO row). Carried as
/// rpo::infinite_target_t, so only distances with a finite limit there compose with it.
/// @sa docs/target.md#hard_label
struct hard_label {
  static constexpr input inputs = input::none;
  template <Scalar T> RPO_HD constexpr infinite_target_t gap(T, T) const noexcept { return {}; }
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }
};

/// b = a fixed number for every pair, e.g. IPO's ½ (RPO.md §4, IPO row; §10.4).  @sa docs/target.md#constant
struct constant {
  double value = 0.5;  ///< the target gap b (finite)
  static constexpr input inputs = input::none;
  template <Scalar T> RPO_HD constexpr T gap(T, T) const noexcept { return T(value); }
  /// value must be finite.
  constexpr parameter_error check() const noexcept { return require_finite("value", value); }
};

/// b = logit(1 − ε) = log((1 − ε)/ε): a label that is wrong with probability ε (conservative DPO, Mitchell 2023).
/// RPO.md §4 (cDPO row), LOSSES.md §1.2.  @sa docs/target.md#smoothed_label
struct smoothed_label {
  double epsilon = 0.1;  ///< ε ∈ (0, 0.5], the label-flip probability; ε = 0 is target::hard_label
  static constexpr input inputs = input::none;
  template <Scalar T> RPO_HD constexpr T gap(T, T) const noexcept {
    RPO_USING_STD(log1p) RPO_USING_STD(log)
    return T(log1p(-epsilon) - log(epsilon));
  }
  /// ε must lie in (0, 0.5].
  constexpr parameter_error check() const noexcept {
    if (epsilon > 0 && epsilon <= 0.5) return {};
    return {"epsilon", "must be in (0, 0.5] (epsilon = 0 is a hard label: target::hard_label, rpo::dpo)", epsilon};
  }
};

/// A margin γ: the inner target's b with the policy gap shifted, D(a − γ‖b) (SimPO's γ; RSO's and SLiC's
/// margins).  RPO.md §4 (SimPO row), LOSSES.md §2.1.  @sa docs/target.md#margin
template <Target Inner = hard_label> struct margin {
  double gamma = 0.5;  ///< γ, the shift subtracted from the policy gap (finite)
  Inner inner{};       ///< the target that gives b
  static constexpr input inputs = Inner::inputs;
  template <Scalar T> RPO_HD constexpr auto gap(T r_first, T r_second) const noexcept {
    return inner.gap(r_first, r_second);
  }
  /// γ.
  RPO_HD constexpr double shift() const noexcept { return gamma; }
  /// γ must be finite, and the inner target valid.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_finite("gamma", gamma)) return e;
    return inner.check();
  }
};

/// ODPO's offset (Amini et al. 2024): a hard label with the policy gap shifted by o = α·log(r_c − r_r), so that the
/// loss is D(a − o‖∞), −log σ(a − o) with D_bwd. The explicit reward enters as a margin, not as a soft target
/// (LOSSES.md §4.1). It needs r_c > r_r: `ranks` = ranking::chosen_first, which the checked entry points enforce
/// (PaddleNLP's + 1e-6 inside the log is not used). Pairs only.  @sa docs/target.md#log_reward_offset
struct log_reward_offset {
  double alpha = 1.0;  ///< α ≥ 0, the offset's scale (the paper's default 1)
  static constexpr input inputs = input::reward;
  static constexpr ranking ranks = ranking::chosen_first;
  template <Scalar T> RPO_HD constexpr infinite_target_t gap(T, T) const noexcept { return {}; }
  /// o = α·log(r_first − r_second), subtracted from the policy gap.
  template <Scalar T> RPO_HD constexpr T shift(T r_first, T r_second) const noexcept {
    RPO_USING_STD(log)
    return T(alpha) * T(log(r_first - r_second));
  }
  /// α must be finite and >= 0.
  constexpr parameter_error check() const noexcept { return require_nonnegative("alpha", alpha); }
};

}  // namespace rpo::target
