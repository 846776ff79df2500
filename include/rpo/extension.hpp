// rpo/extension.hpp — losses beside the RPO template: weighted sums of losses, the NLL term, and the pairwise methods
// that do not depend on the policy only through the reward gap.
//
// Public names: rpo::sum, rpo::nll, rpo::extension::pairwise, rpo::extension::ratio_grad,
//               rpo::extension::robust, rpo::extension::nca, rpo::extension::bco, rpo::extension::sppo_hard,
//               rpo::extension::apo_zero, rpo::extension::apo_down, rpo::extension::dpop, rpo::extension::dpo_shift,
//               rpo::extension::margin_adaptive, rpo::extension::sppo_soft, rpo::extension::nca_group,
//               rpo::extension::set_contrast.
// Each is an rpo::Composition (loss.hpp): the batch layer, the spec registry and the bindings take it exactly as they
// take an rpo::loss. LOSSES.md §0.4 gives the criterion: a loss fits the template only if it depends on r_π through
// the gap a, i.e. is invariant to r_π(y) → r_π(y) + c(x). The kernels below put a term on an absolute log-ratio
// (NCA, BCO, SPPO, APO, DPOP's anchor), mix the two rewards asymmetrically (DPO-Shift), or combine two distances
// with signs that make no divergence (robust DPO): each says which in its comment and in docs/methods.md. Two are
// shift-invariant and so inside by that criterion, but need what the four policies do not give: MADPO a per-pair
// weight from the explicit rewards, MPO/SWEPO a set-level target with reward-dependent score offsets.
// @sa docs/methods.md
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/loss.hpp"
#include "rpo/math.hpp"

namespace rpo {

// ===========================================================================================================
// Weighted sums of losses, and the NLL term
// ===========================================================================================================

/// w₁·L₁ + w₂·L₂ on the same groups, for mixtures such as DPO + α·NLL (IRPO, TRL's `loss_type=["sigmoid","sft"]`)
/// or CPO = its preference term + λ·NLL (LOSSES.md §1.13, §1.18, §2.1). Both terms must take groups of one fixed
/// size (pairs); nest sums for more terms. The gradient is w₁·∇L₁ + w₂·∇L₂. Weights are finite and ≥ 0.
/// @sa docs/methods.md#sum
template <Composition A, Composition B> struct sum {
  static_assert(A::group_size == B::group_size && A::group_size > 0 && A::group_size <= 16,
                "rpo::sum: both terms must take groups of the same fixed size (pairs); sums of multi-response "
                "losses over ragged groups are not supported");
  static_assert(A::ranks == ranking::none || B::ranks == ranking::none || A::ranks == B::ranks,
                "rpo::sum: the two terms need different orders of the explicit rewards");

  A first{};                 ///< L₁
  B second{};                ///< L₂
  double first_weight = 1;   ///< w₁ ≥ 0
  double second_weight = 1;  ///< w₂ ≥ 0

  static constexpr input inputs = A::inputs | B::inputs;
  static constexpr ranking ranks = A::ranks != ranking::none ? A::ranks : B::ranks;
  /// The explicit rewards are held to [0, 1] when either term reads them as probabilities (rpo::sppo_soft).
  static constexpr bool reward_is_probability =
      detail::reward_is_probability<A>() || detail::reward_is_probability<B>();
  static constexpr std::int64_t group_size = A::group_size;
  static constexpr std::int64_t min_group_size = A::group_size;

  /// The terms' parameters, then the weights (finite and >= 0).
  constexpr parameter_error check() const noexcept {
    if (auto e = first.check()) return e;
    if (auto e = second.check()) return e;
    if (auto e = require_nonnegative("first_weight", first_weight)) return e;
    return require_nonnegative("second_weight", second_weight);
  }

  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept {
    constexpr auto k = static_cast<std::size_t>(group_size);
    T g1[k] = {}, g2[k] = {}, r1[k] = {}, r2[k] = {};
    const T v1 = first.evaluate(group, grad_logp != nullptr ? g1 : nullptr, grad_ref_logp != nullptr ? r1 : nullptr);
    const T v2 = second.evaluate(group, grad_logp != nullptr ? g2 : nullptr, grad_ref_logp != nullptr ? r2 : nullptr);
    const T w1 = T(first_weight), w2 = T(second_weight);
    for (std::int64_t i = 0; i < group.size && i < group_size; ++i) {
      if (grad_logp != nullptr) grad_logp[i] = w1 * g1[i] + w2 * g2[i];
      if (grad_ref_logp != nullptr) grad_ref_logp[i] = w1 * r1[i] + w2 * r2[i];
    }
    return w1 * v1 + w2 * v2;
  }
};

/// The negative log-likelihood of the chosen response, per sample and per token: −logp_c/n_c (IRPO v3's NLL,
/// OpenRLHF's `nll_loss_coef` term; LOSSES.md §1.13). ∂/∂logp_c = −1/n_c, nothing on the rejected response or the
/// reference. TRL's `sft` is one token mean over all chosen tokens of the batch instead: the same when the chosen
/// lengths are equal (docs/methods.md). Outside the template (a regulariser); a term of rpo::sum.
/// @sa docs/methods.md#nll
struct nll {
  static constexpr input inputs = input::logp | input::length;
  static constexpr ranking ranks = ranking::none;
  static constexpr std::int64_t group_size = 2;
  static constexpr std::int64_t min_group_size = 2;
  /// No parameters.
  constexpr parameter_error check() const noexcept { return {}; }
  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept {
    const T n = group.length[0];
    if (grad_logp != nullptr) {
      grad_logp[0] = T(-1) / n;
      grad_logp[1] = T(0);
    }
    if (grad_ref_logp != nullptr) grad_ref_logp[0] = grad_ref_logp[1] = T(0);
    return -group.logp[0] / n;
  }
};

// ===========================================================================================================
// Pairwise methods outside the template
// ===========================================================================================================

namespace extension {

/// A kernel's loss of one pair and its partials in the log-ratios ℓ_c = logp_c − ref_c and ℓ_r = logp_r − ref_r.
template <class T> struct ratio_grad {
  T value;
  T d_chosen;    ///< ∂L/∂ℓ_c
  T d_rejected;  ///< ∂L/∂ℓ_r
};

/// A pairwise loss of the two log-ratios, response 0 chosen: ∂L/∂logp = ∂L/∂ℓ and ∂L/∂ref_logp = −∂L/∂ℓ. The kernel
/// K gives `value_and_grad(ℓ_c, ℓ_r)` (an rpo::extension::ratio_grad) and `check()`.  @sa docs/methods.md#outside
template <class K> struct pairwise {
  K kernel{};
  static constexpr input inputs = input::logp | input::ref_logp;
  static constexpr ranking ranks = ranking::none;
  static constexpr std::int64_t group_size = 2;
  static constexpr std::int64_t min_group_size = 2;
  /// The kernel's parameters.
  constexpr parameter_error check() const noexcept { return kernel.check(); }
  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept {
    const ratio_grad<T> r =
        kernel.value_and_grad(group.logp[0] - group.ref_logp[0], group.logp[1] - group.ref_logp[1]);
    if (grad_logp != nullptr) {
      grad_logp[0] = r.d_chosen;
      grad_logp[1] = r.d_rejected;
    }
    if (grad_ref_logp != nullptr) {
      grad_ref_logp[0] = -r.d_chosen;
      grad_ref_logp[1] = -r.d_rejected;
    }
    return r.value;
  }
};

/// Robust DPO (Chowdhury et al. 2024; TRL `robust`): [(1−ε)·softplus(−a) − ε·softplus(a)]/(1−2ε), a = β(ℓ_c − ℓ_r);
/// ∂L/∂ℓ_c = β(σ(a) − (1−ε)/(1−2ε)) = −∂L/∂ℓ_r. Outside: a signed combination of D_bwd(a‖∞) and D_bwd(−a‖∞), no
/// divergence, unbounded below (≈ −εa/(1−2ε) as a → ∞).  LOSSES.md §1.7.
struct robust {
  static constexpr const char* label = "robust";
  static constexpr const char* outside = "a signed combination of D_bwd(a||inf) and D_bwd(-a||inf), unbounded below";
  double beta = 0.1;     ///< β > 0
  double epsilon = 0.1;  ///< ε ∈ [0, 0.5), the label-flip rate (the paper's 0.1)
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    const T b = T(beta), e = T(epsilon), a = b * (lc - lr), scale = T(1) / (T(1) - T(2) * e);
    const auto p = rpo::detail::logistic_of(a);  // one exponential for σ(±a), softplus(±a)
    const auto [softplus_a, softplus_minus_a] = p.softpluses();
    const T value = ((T(1) - e) * softplus_minus_a - e * softplus_a) * scale;
    // β(σ(a) − (1−ε)/(1−2ε)) written as −β((1−ε)σ(−a) + εσ(a))/(1−2ε): two terms of one sign, no cancellation
    // when σ(a) ≈ 1 (the form with σ(a) − 1 loses all digits of DPO's −σ(−a) there).
    const T d = -b * ((T(1) - e) * p.neg + e * p.pos) * scale;
    return {value, d, -d};
  }
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    if (epsilon >= 0 && epsilon < 0.5) return {};
    return {"epsilon", "must be in [0, 0.5)", epsilon};
  }
};

/// NCA, pairwise (Chen et al. 2024; TRL `nca_pair`): −log σ(βℓ_c) − ½·log σ(−βℓ_c) − ½·log σ(−βℓ_r);
/// ∂L/∂ℓ_c = β(1.5·σ(βℓ_c) − 1), ∂L/∂ℓ_r = ½β·σ(βℓ_r). Outside: pointwise terms on the absolute ℓ_c, ℓ_r.
/// LOSSES.md §1.6.
struct nca {
  static constexpr const char* label = "nca";
  static constexpr const char* outside = "pointwise terms on the absolute log-ratios (not shift-invariant)";
  double beta = 0.01;  ///< β > 0 (the paper's and TRL's paper index: 0.01)
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    const T b = T(beta), xc = b * lc, xr = b * lr, half = T(0.5);
    const auto pc = rpo::detail::logistic_of(xc), pr = rpo::detail::logistic_of(xr);  // one exponential each
    const auto sc = pc.softpluses();
    return {sc.minus + half * sc.plus + half * pr.softpluses().plus, b * (half * pc.pos - pc.neg),
            half * b * pr.pos};
  }
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// BCO, pairwise (Jung et al. 2024): −log σ(βℓ_c − δ) − log σ(−(βℓ_r − δ)), δ the running mean of the implicit
/// rewards βℓ (rpo::bco_reference_point), a constant of the objective (no gradient through it). δ = 0 (the default) is
/// TRL v1's `bco_pair`, bit for bit; δ ≠ 0 is legacy TRL's and the paper's shifted form. With x_c = βℓ_c − δ and
/// x_r = βℓ_r − δ: L = softplus(−x_c) + softplus(x_r), ∂L/∂ℓ_c = −β·σ(−x_c), ∂L/∂ℓ_r = β·σ(x_r). Outside: a binary
/// classification of each response on its own.  LOSSES.md §1.8.  @sa docs/methods.md#bco_pair
struct bco {
  static constexpr const char* label = "bco";
  static constexpr const char* outside = "a pointwise binary classification of each response";
  double beta = 0.1;   ///< β > 0
  double delta = 0.0;  ///< δ, finite: the shift of both rewards (0: TRL v1, no shift)
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    // x − 0 is x exactly (signed zeros included), so δ = 0 gives the unshifted form to the last bit.
    const T b = T(beta), d = T(delta), xc = b * lc - d, xr = b * lr - d;
    const auto pc = rpo::detail::logistic_of(xc), pr = rpo::detail::logistic_of(xr);  // one exponential each
    return {pc.softpluses().minus + pr.softpluses().plus, -b * pc.neg, b * pr.pos};
  }
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_finite("delta", delta);
  }
};

/// SPPO with hard labels (Wu et al. 2024, Eq. 4.7; TRL `sppo_hard`): (ℓ_c − 1/(2β))² + (ℓ_r + 1/(2β))²;
/// ∂L/∂ℓ_c = 2(ℓ_c − 1/(2β)), ∂L/∂ℓ_r = 2(ℓ_r + 1/(2β)). Outside: it regresses the absolute log-ratios (the
/// pointwise analogue of D_sq).  LOSSES.md §1.9.
struct sppo_hard {
  static constexpr const char* label = "sppo_hard";
  static constexpr const char* outside = "a squared regression of the absolute log-ratios";
  double beta = 0.1;  ///< β > 0 (η_SPPO = 1/β)
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    const T h = T(0.5 / beta), ec = lc - h, er = lr + h;
    return {ec * ec + er * er, T(2) * ec, T(2) * er};
  }
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// APO-zero (D'Oosterlinck et al. 2024, Eq. 7; TRL `apo_zero`): 1 − σ(βℓ_c) + σ(βℓ_r);
/// ∂L/∂ℓ_c = −β·σ′(βℓ_c), ∂L/∂ℓ_r = β·σ′(βℓ_r). Outside: anchored on the absolute log-ratios.  LOSSES.md §1.11.
struct apo_zero {
  static constexpr const char* label = "apo_zero";
  static constexpr const char* outside = "anchored on the absolute log-ratios";
  double beta = 0.1;  ///< β > 0
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    const T b = T(beta), xc = b * lc, xr = b * lr;
    const auto pc = rpo::detail::logistic_of(xc), pr = rpo::detail::logistic_of(xr);  // one exponential each
    return {pc.neg + pr.pos, -b * pc.pos * pc.neg, b * pr.pos * pr.neg};
  }
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// APO-down (Eq. 8; TRL `apo_down`): σ(βℓ_c) + 1 − σ(a), a = β(ℓ_c − ℓ_r); ∂L/∂ℓ_c = β(σ′(βℓ_c) − σ′(a)),
/// ∂L/∂ℓ_r = β·σ′(a). Outside: anchored on the absolute ℓ_c.  LOSSES.md §1.11.
struct apo_down {
  static constexpr const char* label = "apo_down";
  static constexpr const char* outside = "anchored on the absolute log-ratio of the chosen response";
  double beta = 0.1;  ///< β > 0
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    const T b = T(beta), xc = b * lc, a = b * (lc - lr);
    const auto pc = rpo::detail::logistic_of(xc), pa = rpo::detail::logistic_of(a);  // one exponential each
    const T slope_c = pc.pos * pc.neg, slope_a = pa.pos * pa.neg;
    return {pc.pos + pa.neg, b * (slope_c - slope_a), b * slope_a};
  }
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// DPO-Positive / Smaug (Pal et al. 2024; PaddleNLP `dpop`): −log σ(u), u = β(ℓ_c − ℓ_r − λ·max(0, −ℓ_c)), the
/// penalty inside the sigmoid (LOSSES.md §7.9: outside it rewards a lower chosen likelihood). ∂L/∂ℓ_c =
/// −β·σ(−u)·(1 + λ·[ℓ_c < 0]), ∂L/∂ℓ_r = β·σ(−u). Outside: a one-sided anchor on the absolute ℓ_c.  LOSSES.md §4.3.
struct dpop {
  static constexpr const char* label = "dpop";
  static constexpr const char* outside = "a one-sided anchor max(0, ref_c - logp_c) on the absolute chosen log-ratio";
  double beta = 0.1;     ///< β > 0
  double lambda = 50.0;  ///< λ ≥ 0 (the paper's and PaddleNLP's 50)
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    const T b = T(beta), l = T(lambda), active = lc < T(0) ? T(1) : T(0);
    const T u = b * (lc - lr - l * active * (-lc));
    const auto p = rpo::detail::logistic_of(u);  // one exponential for softplus(−u), σ(−u)
    const T s = p.neg;
    return {p.softpluses().minus, -b * s * (T(1) + l * active), b * s};
  }
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_nonnegative("lambda", lambda);
  }
};

/// DPO-Shift (Yang et al. 2025): −log σ(β(ℓ_c − λ·ℓ_r)) with a fixed λ; ∂L/∂ℓ_c = −β·σ(−u), ∂L/∂ℓ_r = λβ·σ(−u).
/// Outside for λ ≠ 1: asymmetric, not shift-invariant (λ = 1 is DPO). The paper's schedules of λ are the caller's:
/// a new preset value per step.  LOSSES.md §4.15.
struct dpo_shift {
  static constexpr const char* label = "dpo_shift";
  static constexpr const char* outside = "weights the two log-ratios asymmetrically (lambda != 1)";
  double beta = 0.1;     ///< β > 0
  double lambda = 0.95;  ///< λ ∈ (0, 1] (fixed values in the paper: 0.9, 0.95)
  template <Scalar T> RPO_HD constexpr ratio_grad<T> value_and_grad(T lc, T lr) const noexcept {
    const T b = T(beta), l = T(lambda), u = b * (lc - l * lr);
    const auto p = rpo::detail::logistic_of(u);  // one exponential for softplus(−u), σ(−u)
    return {p.softpluses().minus, -b * p.neg, l * b * p.neg};
  }
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    if (lambda > 0 && lambda <= 1) return {};
    return {"lambda", "must be in (0, 1]", lambda};
  }
};

// ===========================================================================================================
// Methods that read the explicit rewards: a weighted pair, and two losses over groups of K responses
// ===========================================================================================================

/// MADPO (Rho 2025): −w(m)·log σ(a), a = β(ℓ_c − ℓ_r), m = r_c − r_r from a reward model; w(m) = σ(c(|m|)·m)/σ(m) if
/// m > −τ, else 1, with c(u) = c_min + (c_max − c_min)/(1 + k·e^{λ(u − τ)}), k = (c_max − 1)/(1 − c_min). The weight is
/// a constant of the objective (no gradient), so ∂L/∂logp = w·(DPO's gradient). Stable forms: w = exp(softplus(−m) −
/// softplus(−c·m)) and c(u) = c_min + (c_max − c_min)·σ(−(λ(u − τ) + log k)); c(τ) = 1, so w is continuous at m = −τ.
/// Beside the template, not outside its criterion: it is shift-invariant (a weighted D_bwd), but rpo::loss has no
/// per-pair weight.  LOSSES.md §4.7.  @sa docs/methods.md#madpo
struct margin_adaptive {
  static constexpr const char* label = "margin_adaptive";
  static constexpr const char* outside =
      "a D_bwd weighted by w(r_c - r_r): shift-invariant, but the template has no per-pair weight";
  double beta = 0.1;    ///< β > 0
  double c_max = 2.0;   ///< c_max > 1 (the reference code's 2)
  double c_min = 0.5;   ///< c_min ∈ [0, 1) (0.5)
  double lambda = 1.0;  ///< λ ≥ 0, the steepness of c(u) (1)
  double tau = 2.0;     ///< τ ≥ 0, the margin threshold (2)
  static constexpr input inputs = input::logp | input::ref_logp | input::reward;
  static constexpr ranking ranks = ranking::none;
  static constexpr std::int64_t group_size = 2;
  static constexpr std::int64_t min_group_size = 2;

  /// log k, k = (c_max − 1)/(1 − c_min): c(u)'s shift, c(τ) = 1.
  template <Scalar T> RPO_HD constexpr T log_k() const noexcept {
    RPO_USING_STD(log)
    return T(log((c_max - 1) / (1 - c_min)));
  }
  /// w(m), the weight of a pair whose reward margin is m.
  template <Scalar T> RPO_HD constexpr T weight(T m) const noexcept {
    RPO_USING_STD(exp) RPO_USING_STD(fabs)
    if (!(m > -T(tau))) return T(1);
    const T c = T(c_min) + T(c_max - c_min) * sigmoid(-(T(lambda) * (T(fabs(m)) - T(tau)) + log_k<T>()));
    return T(exp(softplus(-m) - softplus(-c * m)));
  }
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    if (!(c_max > 1 && is_finite(c_max))) return {"c_max", "must be finite and > 1", c_max};
    if (!(c_min >= 0 && c_min < 1)) return {"c_min", "must be in [0, 1)", c_min};
    if (auto e = require_nonnegative("lambda", lambda)) return e;
    return require_nonnegative("tau", tau);
  }
  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept {
    const T b = T(beta);
    const T a = b * ((group.logp[0] - group.ref_logp[0]) - (group.logp[1] - group.ref_logp[1]));
    const T w = weight(group.reward[0] - group.reward[1]);
    const auto p = rpo::detail::logistic_of(a);  // one exponential for softplus(−a) and σ(−a)
    const T d = -w * b * p.neg;                  // ∂L/∂logp_c
    if (grad_logp != nullptr) {
      grad_logp[0] = d;
      grad_logp[1] = -d;
    }
    if (grad_ref_logp != nullptr) {
      grad_ref_logp[0] = -d;
      grad_ref_logp[1] = d;
    }
    return w * p.softpluses().minus;
  }
};

/// Soft SPPO (Wu et al. 2024, Eq. 4.7 with estimated win probabilities), the pair form: for each response y of the
/// pair, L_y = (ℓ_y − η(P̂_y − ½))² with η = 1/β, ℓ_y = logp_y − ref_logp_y and P̂_y ∈ [0, 1] its estimated win
/// probability P̂(y ≻ π_t | x), read from the explicit `reward` field; L = L_0 + L_1. The target η(P̂ − ½) is written
/// (1/(2β))·(2P̂ − 1), so that P̂ = (1, 0) gives rpo::extension::sppo_hard to the last bit. ∂L/∂logp_y = 2(ℓ_y −
/// η(P̂_y − ½)) = −∂L/∂ref_logp_y; P̂ is data, with no gradient. The two responses need no order (neither is "chosen");
/// the checked entry points reject a P̂ outside [0, 1] (`reward_is_probability`). Outside: a squared regression of
/// each absolute log-ratio.  LOSSES.md §1.9 (unverified against the paper text), §4.9.  @sa docs/methods.md#sppo_soft
struct sppo_soft {
  static constexpr const char* label = "sppo_soft";
  static constexpr const char* outside =
      "a squared regression of each absolute log-ratio onto eta (P - 1/2), P the win probability in the reward field";
  double beta = 0.1;  ///< β > 0 (η_SPPO = 1/β)
  static constexpr input inputs = input::logp | input::ref_logp | input::reward;
  static constexpr ranking ranks = ranking::none;
  static constexpr bool reward_is_probability = true;  ///< each reward is a win probability P̂ ∈ [0, 1]
  static constexpr std::int64_t group_size = 2;
  static constexpr std::int64_t min_group_size = 2;
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept {
    const T h = T(0.5 / beta);  // η/2, as sppo_hard's
    // The residuals ℓ_y − h(2P̂_y − 1); at P̂ = 1 and 0 the factor is ±1 exactly, giving sppo_hard's ℓ_c − h, ℓ_r + h.
    const T e0 = (group.logp[0] - group.ref_logp[0]) - h * (T(2) * group.reward[0] - T(1));
    const T e1 = (group.logp[1] - group.ref_logp[1]) - h * (T(2) * group.reward[1] - T(1));
    if (grad_logp != nullptr) {
      grad_logp[0] = T(2) * e0;
      grad_logp[1] = T(2) * e1;
    }
    if (grad_ref_logp != nullptr) {
      grad_ref_logp[0] = -(T(2) * e0);
      grad_ref_logp[1] = -(T(2) * e1);
    }
    return e0 * e0 + e1 * e1;  // the expression of sppo_hard's value
  }
};

/// NCA with K responses and explicit rewards (Chen et al. 2024): −Σ_i [q_i·log σ(s_i) + (1/K)·log σ(−s_i)], q =
/// softmax(r/α), s_i = β·ℓ_i; ∂L/∂logp_i = β(σ(s_i)/K − q_i·σ(−s_i)) = −∂L/∂ref_logp_i. Outside: pointwise terms on
/// the absolute log-ratios. At K = 2 with a one-hot q (α → 0, r_c > r_r) it is rpo::nca_pair.  LOSSES.md §4.12.
/// @sa docs/methods.md#nca
struct nca_group {
  static constexpr const char* label = "nca_group";
  static constexpr const char* outside = "pointwise terms on the absolute log-ratios (not shift-invariant)";
  double beta = 0.01;  ///< β > 0 (the paper's 0.01, as rpo::infonca)
  double alpha = 1.0;  ///< α > 0, the reward temperature (as rpo::infonca)
  static constexpr input inputs = input::logp | input::ref_logp | input::reward;
  static constexpr ranking ranks = ranking::none;
  static constexpr std::int64_t group_size = 0;
  static constexpr std::int64_t min_group_size = 2;
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_positive("alpha", alpha);
  }
  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept {
    RPO_USING_STD(exp) RPO_USING_STD(log)
    const std::int64_t k = group.size;
    const T b = T(beta), inv_alpha = T(1 / alpha), per = T(1) / T(k);
    T top = group.reward[0] * inv_alpha;
    for (std::int64_t i = 1; i < k; ++i) top = group.reward[i] * inv_alpha > top ? group.reward[i] * inv_alpha : top;
    T z = 0;
    for (std::int64_t i = 0; i < k; ++i) z += T(exp(group.reward[i] * inv_alpha - top));
    T value = 0;
    for (std::int64_t i = 0; i < k; ++i) {
      const T q = T(exp(group.reward[i] * inv_alpha - top)) / z, s = b * (group.logp[i] - group.ref_logp[i]);
      const auto ps = rpo::detail::logistic_of(s);  // one exponential for σ(±s), softplus(±s)
      const auto sp = ps.softpluses();
      value += q * sp.minus + per * sp.plus;
      const T d = b * (per * ps.pos - q * ps.neg);
      if (grad_logp != nullptr) grad_logp[i] = d;
      if (grad_ref_logp != nullptr) grad_ref_logp[i] = -d;
    }
    return value;
  }
};

/// Multi-preference optimisation at set level (MPO, Gupta et al. 2024; v1 titled SWEPO): with δr_i = r_i − mean r,
/// Y⁺ = {i : δr_i > 0}, Y⁻ the rest, and v_i = β·ℓ_i + α·|δr_i|, L = −log(Σ_{Y⁺} e^{v} / Σ_all e^{v}), evaluated as
/// softplus(lse_{Y⁻}(v) − lse_{Y⁺}(v)); ∂L/∂logp_k = β·σ(lse_{Y⁻} − lse_{Y⁺})·(1[k∈Y⁻]·softmax_{Y⁻}(v)_k −
/// 1[k∈Y⁺]·softmax_{Y⁺}(v)_k). The rewards must not all tie (ranking::extremes); should rounding put the mean on the
/// top reward, Y⁺ is the responses at the top. At K = 2 and α = 0 it is DPO on the pair oriented by reward.
/// Beside the template, not outside its criterion: shift-invariant, but its target is a set and α·|δr| enters the
/// scores, which no distance and target of the four policies express.  LOSSES.md §4.10 (unverified details).
/// @sa docs/methods.md#swepo
struct set_contrast {
  static constexpr const char* label = "set_contrast";
  static constexpr const char* outside =
      "a softmax over the group with a set target and reward offsets alpha |r - mean r| in the scores: shift-invariant, "
      "but no distance and target of the template express it";
  double beta = 0.1;   ///< β > 0
  double alpha = 1.0;  ///< α ≥ 0, the weight of the reward deviations (0: plain set contrast)
  static constexpr input inputs = input::logp | input::ref_logp | input::reward;
  static constexpr ranking ranks = ranking::extremes;
  static constexpr std::int64_t group_size = 0;
  static constexpr std::int64_t min_group_size = 2;
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_nonnegative("alpha", alpha);
  }
  template <Scalar T>
  RPO_HD constexpr T evaluate(const group_ref<T>& group, std::type_identity_t<T>* grad_logp,
                              std::type_identity_t<T>* grad_ref_logp) const noexcept {
    RPO_USING_STD(exp) RPO_USING_STD(log) RPO_USING_STD(fabs)
    const std::int64_t k = group.size;
    const T b = T(beta), al = T(alpha);
    T total = 0, best = group.reward[0];
    for (std::int64_t i = 0; i < k; ++i) {
      total += group.reward[i];
      best = group.reward[i] > best ? group.reward[i] : best;
    }
    const T mean = total / T(k);
    bool any_above = false;
    for (std::int64_t i = 0; i < k; ++i) any_above = any_above || group.reward[i] > mean;
    const auto above = [&](std::int64_t i) { return any_above ? group.reward[i] > mean : group.reward[i] == best; };
    const auto score = [&](std::int64_t i) {
      return b * (group.logp[i] - group.ref_logp[i]) + al * T(fabs(group.reward[i] - mean));
    };
    // lse over each set, shifted by its own maximum (both sets are non-empty: the rewards do not all tie).
    T top_p = 0, top_m = 0;
    bool seen_p = false, seen_m = false;
    for (std::int64_t i = 0; i < k; ++i) {
      const T v = score(i);
      if (above(i)) {
        top_p = !seen_p || v > top_p ? v : top_p;
        seen_p = true;
      } else {
        top_m = !seen_m || v > top_m ? v : top_m;
        seen_m = true;
      }
    }
    T z_p = 0, z_m = 0;
    for (std::int64_t i = 0; i < k; ++i) (above(i) ? z_p : z_m) += T(exp(score(i) - (above(i) ? top_p : top_m)));
    const T gap = (top_m + T(log(z_m))) - (top_p + T(log(z_p)));
    const auto pg = rpo::detail::logistic_of(gap);  // one exponential for σ(gap) and softplus(gap)
    const T pull = pg.pos;
    for (std::int64_t i = 0; i < k; ++i) {
      const bool plus = above(i);
      const T share = T(exp(score(i) - (plus ? top_p : top_m))) / (plus ? z_p : z_m);
      const T d = b * pull * (plus ? -share : share);
      if (grad_logp != nullptr) grad_logp[i] = d;
      if (grad_ref_logp != nullptr) grad_ref_logp[i] = -d;
    }
    return pg.softpluses().plus;
  }
};

}  // namespace extension
}  // namespace rpo
