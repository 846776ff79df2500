// rpo/presets.hpp — the named methods, each one composition of the four policies.
//
// Public names (pairwise, response 0 chosen):
//   rpo::dpo, rpo::cdpo, rpo::ipo, rpo::ipo_normalized, rpo::simpo, rpo::hinge, rpo::dpo_normalized,
//   rpo::rpo_sq, rpo::rpo_fwd, rpo::rpo_bwd,
//   rpo::exo_pair, rpo::cpo_pref, rpo::odpo, rpo::rdpo, rpo::hdpo, rpo::alphapo, rpo::fdpo_forward_kl, rpo::fdpo_js,
//   rpo::fdpo_alpha, rpo::discopop, rpo::focalpo (the catalogue's methods that fit the template, LOSSES.md §1–4).
//   rpo::dno (DNO: the logistic distance against b = logit P carried by the rewards).
// Public names (weighted sums with the NLL term, rpo/extension.hpp): rpo::cpo, rpo::irpo, rpo::mpo, rpo::orpo.
// Public names (outside the template, rpo/extension.hpp; docs/methods.md says why each is outside):
//   rpo::robust_dpo, rpo::nca_pair, rpo::bco_pair, rpo::sppo_hard, rpo::sppo_soft, rpo::apo_zero, rpo::apo_down,
//   rpo::dpop, rpo::dpo_shift, and over groups rpo::nca.
// Public names (beside the template, rpo/extension.hpp: shift-invariant, but beyond the four policies): rpo::madpo,
//   and over groups rpo::swepo.
// Public names (groups of K ≥ 2 responses, given by offsets; each is its pairwise counterpart at K = 2):
//   rpo::rpo_sqloo, rpo::rpo_sqpairs, rpo::rpo_softmax_bwd, rpo::rpo_softmax_fwd, rpo::infonca,
//   rpo::listwise_dpo, rpo::dpo_best_worst.
// A preset holds the method's own parameters under the paper's names, and `compose()` gives the composition it
// is; its `composition` alias is the one line that says "DPO is RPO-bwd with a hard label". The table of
// RPO.md §4 and LOSSES.md §5 gives the decompositions; docs/presets.md lists them with their defaults.
// @sa docs/presets.md
#pragma once

#include "rpo/concepts.hpp"
#include "rpo/distance.hpp"
#include "rpo/extension.hpp"
#include "rpo/loss.hpp"
#include "rpo/reward.hpp"
#include "rpo/sampling.hpp"
#include "rpo/target.hpp"

namespace rpo {

/// DPO (Rafailov et al. 2023): softplus(−a), a = β(ℓ_c − ℓ_r). D_bwd / implicit / hard label: the b → +∞ limit
/// of RPO-bwd.  LOSSES.md §1.1, RPO.md §4 (DPO row).  @sa docs/presets.md#dpo
struct dpo {
  static constexpr const char* name = "rpo::dpo";
  double beta = 0.1;  ///< β > 0 (the paper's and TRL's 0.1)
  using composition = loss<distance::bernoulli_bwd_kl, reward::implicit, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}}; }
};

/// Conservative DPO / label smoothing (Mitchell 2023): (1 − ε)·softplus(−a) + ε·softplus(a). The logistic
/// (cross-entropy) distance against the smoothed label b = logit(1 − ε); equal to RPO-bwd with that constant
/// target plus H₂(ε).  LOSSES.md §1.2, RPO.md §4 (cDPO row).  @sa docs/presets.md#cdpo
struct cdpo {
  static constexpr const char* name = "rpo::cdpo";
  double beta = 0.1;     ///< β > 0
  double epsilon = 0.1;  ///< ε ∈ (0, 0.5], the probability that a label is flipped
  using composition = loss<distance::logistic, reward::implicit, target::smoothed_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.epsilon = epsilon}}; }
};

/// IPO as the paper writes it (Azar et al. 2023, Eq. 17; NeMo-Aligner and OpenRLHF): (Δ − 1/(2τ))², with the
/// summed log-ratio gap Δ = ℓ_c − ℓ_r. D_sq / implicit with β = 1 / constant b = 1/(2τ); equivalently
/// D_sq(τΔ‖½)/τ² (RPO.md §10.4).  LOSSES.md §1.4.  @sa docs/presets.md#ipo
struct ipo {
  static constexpr const char* name = "rpo::ipo";
  double tau = 0.1;  ///< τ > 0, the regularisation strength (TRL's and NeMo's `beta`)
  using composition = loss<distance::squared, reward::implicit, target::constant, sampling::pair>;
  constexpr composition compose() const noexcept {
    return {.reward = {.beta = 1.0}, .target = {.value = 1.0 / (2.0 * tau)}};
  }
  /// τ must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("tau", tau); }
};

/// IPO in TRL's length-normalised form: (d − 1/(2τ))², d = ℓ_c/n_c − ℓ_r/n_r. D_sq / implicit_normalized with
/// β = 1 / constant b = 1/(2τ). Its target is in nats per token, so τ is not comparable with rpo::ipo's.
/// LOSSES.md §1.4.  @sa docs/presets.md#ipo_normalized
struct ipo_normalized {
  static constexpr const char* name = "rpo::ipo_normalized";
  double tau = 0.1;  ///< τ > 0 (TRL's `beta`)
  using composition = loss<distance::squared, reward::implicit_normalized, target::constant, sampling::pair>;
  constexpr composition compose() const noexcept {
    return {.reward = {.beta = 1.0}, .target = {.value = 1.0 / (2.0 * tau)}};
  }
  /// τ must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("tau", tau); }
};

/// SimPO (Meng et al. 2024): softplus(−(β(ā_c − ā_r) − γ)), ā = log π/n, no reference model. D_bwd /
/// reference_free_normalized / hard label with margin γ.  LOSSES.md §2.1, RPO.md §4 (SimPO row).
/// @sa docs/presets.md#simpo
struct simpo {
  static constexpr const char* name = "rpo::simpo";
  double beta = 2.0;   ///< β > 0 (the paper: 2 to 10)
  double gamma = 0.5;  ///< γ, the target reward margin, absolute (TRL's `simpo_gamma`; not γ/β)
  using composition =
      loss<distance::bernoulli_bwd_kl, reward::reference_free_normalized, target::margin<>, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.gamma = gamma}}; }
};

/// The SLiC-HF / RSO hinge loss as TRL's `hinge`: max(0, 1 − a), a = β(ℓ_c − ℓ_r); β is the inverse margin.
/// distance::hinge / implicit / hard label.  LOSSES.md §1.3.  @sa docs/presets.md#hinge
struct hinge {
  static constexpr const char* name = "rpo::hinge";
  double beta = 0.1;  ///< β > 0 (TRL's default; TRL's paper index uses 0.05 for RSO)
  using composition = loss<distance::hinge, reward::implicit, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}}; }
};

/// Length-normalised DPO (Tülu 3, Eq. 6; TRL's `sigmoid_norm`): softplus(−β(ℓ_c/n_c − ℓ_r/n_r)). D_bwd /
/// implicit_normalized / hard label.  LOSSES.md §1.14.  @sa docs/presets.md#dpo_normalized
struct dpo_normalized {
  static constexpr const char* name = "rpo::dpo_normalized";
  double beta = 5.0;  ///< β > 0, per token (Tülu 3 reports 5)
  using composition = loss<distance::bernoulli_bwd_kl, reward::implicit_normalized, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}}; }
};

/// RPO with the squared distance: (a − b)², a = β(ℓ_c − ℓ_r), b = η(r_c − r_r). NeMo-Aligner's `rpo_sq`.
/// RPO.md (E2), §6.1.  @sa docs/presets.md#rpo_sq
struct rpo_sq {
  static constexpr const char* name = "rpo::rpo_sq";
  double beta = 0.2;  ///< β > 0 (NeMo's `ref_policy_kl_penalty`, default 0.2)
  double eta = 1.0;   ///< η ≥ 0 (NeMo's `gt_reward_scale`, default 1)
  using composition = loss<distance::squared, reward::implicit, target::reward_gap, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = eta}}; }
};

/// RPO with the forward Bernoulli KL: KL(Bern σ(a) ‖ Bern σ(b)). NeMo-Aligner's `rpo_fwd_kl`.
/// RPO.md (E3), §6.1.  @sa docs/presets.md#rpo_fwd
struct rpo_fwd {
  static constexpr const char* name = "rpo::rpo_fwd";
  double beta = 0.2;  ///< β > 0
  double eta = 1.0;   ///< η ≥ 0
  using composition = loss<distance::bernoulli_fwd_kl, reward::implicit, target::reward_gap, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = eta}}; }
};

/// RPO with the backward Bernoulli KL: KL(Bern σ(b) ‖ Bern σ(a)), the Nemotron-4 RPO loss. NeMo-Aligner's
/// `rpo_bwd_kl`.  RPO.md (E4), §6.1.  @sa docs/presets.md#rpo_bwd
struct rpo_bwd {
  static constexpr const char* name = "rpo::rpo_bwd";
  double beta = 0.2;  ///< β > 0
  double eta = 1.0;   ///< η ≥ 0
  using composition = loss<distance::bernoulli_bwd_kl, reward::implicit, target::reward_gap, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = eta}}; }
};

// ===========================================================================================================
// Groups of K responses (RPO.md §3.5, LOSSES.md §4.11, §4.12): rpo::evaluate with offsets
// ===========================================================================================================

/// RPO-sqloo: (1/K)·Σ_i (s_i − m₋ᵢ(s) − (t_i − m₋ᵢ(t)))², s = β·ℓ, t = η·r, m₋ᵢ the leave-one-out mean. Online, its
/// gradient is REINFORCE leave-one-out's: ∂/∂log π(y_k) = −(2βη/(K−1))·Â_k with the KL-shaped reward
/// r − (β/η)·ℓ (RPO.md (L13)). rpo_sq at K = 2.  RPO.md §3.2, §3.5 (L-loo).  @sa docs/presets.md#rpo_sqloo
struct rpo_sqloo {
  static constexpr const char* name = "rpo::rpo_sqloo";
  double beta = 0.2;  ///< β > 0 (as rpo_sq)
  double eta = 1.0;   ///< η ≥ 0
  using composition = loss<distance::squared, reward::implicit, target::reward_gap, sampling::leave_one_out>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = eta}}; }
};

/// RPO-sq over all pairs: (2/(K(K−1)))·Σ_{i<j} (s_i − s_j − η(r_i − r_j))², the mean over unordered pairs. Online,
/// its gradient is the mean-baseline (Dr. GRPO) estimator's: −(4βη/(K−1))·(R̃_k − mean R̃) (RPO.md (L14)).
/// rpo_sq at K = 2.  RPO.md §3.3, §3.5 (L-pairs).  @sa docs/presets.md#rpo_sqpairs
struct rpo_sqpairs {
  static constexpr const char* name = "rpo::rpo_sqpairs";
  double beta = 0.2;  ///< β > 0
  double eta = 1.0;   ///< η ≥ 0
  using composition = loss<distance::squared, reward::implicit, target::reward_gap, sampling::all_pairs>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = eta}}; }
};

/// The multi-response RPO of NeMo-Aligner PR #311 (`preference_loss: rpo`): KL(softmax(η·r) ‖ softmax(β·ℓ)) over the
/// group, ∂/∂log π(y_i) = β·(p_i − q_i). rpo_bwd at K = 2. Defaults are that pull request's: β = 0.2, η = 0.2.
/// RPO.md (E10), §6.3.  @sa docs/presets.md#rpo_softmax_bwd
struct rpo_softmax_bwd {
  static constexpr const char* name = "rpo::rpo_softmax_bwd";
  double beta = 0.2;  ///< β > 0 (PR #311: 0.2)
  double eta = 0.2;   ///< η ≥ 0 (PR #311: 0.2)
  using composition = loss<distance::bernoulli_bwd_kl, reward::implicit, target::reward_gap, sampling::softmax>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = eta}}; }
};

/// The reverse listwise RPO: KL(softmax(β·ℓ) ‖ softmax(η·r)) over the group. rpo_fwd at K = 2. It has no official
/// code, so its defaults are the pairwise RPO's (β = 0.2, η = 1).  RPO.md (E10f).  @sa docs/presets.md#rpo_softmax_fwd
struct rpo_softmax_fwd {
  static constexpr const char* name = "rpo::rpo_softmax_fwd";
  double beta = 0.2;  ///< β > 0 (as rpo_fwd)
  double eta = 1.0;   ///< η ≥ 0 (as rpo_fwd)
  using composition = loss<distance::bernoulli_fwd_kl, reward::implicit, target::reward_gap, sampling::softmax>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = eta}}; }
};

/// InfoNCA (Chen et al. 2024, arXiv 2402.05369): −Σ_i softmax(r/α)_i·log softmax(β·ℓ)_i, ∂/∂log π(y_i) =
/// β·(p_i − q_i). The logistic distance (cross-entropy) / implicit / reward_gap with η = 1/α / softmax: RPO-softmax-bwd
/// plus the entropy of softmax(r/α), the same gradient. LOSSES.md §4.12; RPO.md §4 (InfoNCA row).
/// @sa docs/presets.md#infonca
struct infonca {
  static constexpr const char* name = "rpo::infonca";
  double beta = 0.01;  ///< β > 0 (the paper's and the authors' recipe: 0.01)
  double alpha = 1.0;  ///< α > 0, the reward temperature: 1 takes the rewards as they are (LOSSES.md gives none)
  using composition = loss<distance::logistic, reward::implicit, target::reward_gap, sampling::softmax>;
  constexpr composition compose() const noexcept {
    return {.reward = {.beta = beta}, .target = {.eta = 1.0 / alpha}};
  }
  /// α must be finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("alpha", alpha); }
};

/// Listwise DPO (Plackett-Luce; DPO paper App. A.3): −Σ_{k<K} log softmax(s_π(k), …, s_π(K))₁ over the ranking π of
/// the group by explicit reward (ties are an error), s = β·ℓ. D_bwd / implicit / hard label / plackett_luce; DPO at
/// K = 2.  LOSSES.md §4.11.  @sa docs/presets.md#listwise_dpo
struct listwise_dpo {
  static constexpr const char* name = "rpo::listwise_dpo";
  double beta = 0.1;  ///< β > 0 (as dpo)
  using composition = loss<distance::bernoulli_bwd_kl, reward::implicit, target::hard_label, sampling::plackett_luce>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}}; }
};

/// DPO on the best-vs-worst pair of each group (by explicit reward; a group whose rewards all tie is an error):
/// softplus(−β(ℓ_best − ℓ_worst)). D_bwd / implicit / hard label / best_worst; DPO at K = 2.  RPO.md §7 (online
/// regime: best against worst).  @sa docs/presets.md#dpo_best_worst
struct dpo_best_worst {
  static constexpr const char* name = "rpo::dpo_best_worst";
  double beta = 0.1;  ///< β > 0 (as dpo)
  using composition = loss<distance::bernoulli_bwd_kl, reward::implicit, target::hard_label, sampling::best_worst>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}}; }
};

// ===========================================================================================================
// Methods of the catalogue (LOSSES.md) that fit the template: compositions, some with a policy of their own
// ===========================================================================================================

/// EXO, pairwise (Ji et al. 2024, Eq. 16; TRL's `exo_pair`): σ(a)[log σ(a) − log(1−ε)] + σ(−a)[log σ(−a) − log ε],
/// the KL from the policy's (σ(a), σ(−a)) to the smoothed label (1−ε, ε). Exactly D_fwd / implicit /
/// smoothed_label: D_fwd(a‖logit(1−ε)) = KL(Bern σ(a) ‖ Bern(1−ε)), NeMo's `rpo_fwd_kl` with a label-derived target.
/// ∂L/∂a = σ(a)σ(−a)(a − a*), a* = log((1−ε)/ε).  LOSSES.md §1.5.  @sa docs/presets.md#exo_pair
struct exo_pair {
  static constexpr const char* name = "rpo::exo_pair";
  double beta = 0.1;       ///< β > 0 (TRL's 0.1)
  double epsilon = 1e-3;   ///< ε ∈ (0, 0.5] (the paper's 1e-3; TRL's `label_smoothing`, which must be > 0)
  using composition = loss<distance::bernoulli_fwd_kl, reward::implicit, target::smoothed_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.epsilon = epsilon}}; }
};

/// CPO's preference term (Xu et al. 2024; TRL `CPOTrainer`, `loss_type="sigmoid"`, ε = 0): softplus(−β(logp_c −
/// logp_r)), no reference model. D_bwd / reference_free / hard label. rpo::cpo adds the NLL term.
/// LOSSES.md §2.1.  @sa docs/presets.md#cpo_pref
struct cpo_pref {
  static constexpr const char* name = "rpo::cpo_pref";
  double beta = 0.1;  ///< β > 0 (TRL's `CPOConfig`: 0.1)
  using composition = loss<distance::bernoulli_bwd_kl, reward::reference_free, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}}; }
};

/// ODPO, DPO with an offset (Amini et al. 2024): softplus(−(a − α·log(r_c − r_r))), a = β(ℓ_c − ℓ_r); needs
/// r_c > r_r. D_bwd / implicit / target::log_reward_offset (a reward-dependent margin on a hard label).
/// LOSSES.md §4.1.  @sa docs/presets.md#odpo
struct odpo {
  static constexpr const char* name = "rpo::odpo";
  double beta = 0.1;   ///< β > 0
  double alpha = 1.0;  ///< α ≥ 0, the offset's scale (the paper's 1)
  using composition = loss<distance::bernoulli_bwd_kl, reward::implicit, target::log_reward_offset, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.alpha = alpha}}; }
};

/// R-DPO, length-regularised DPO (Park et al. 2024): softplus(−(a + α(n_c − n_r))). D_bwd / length_regularized /
/// hard label.  LOSSES.md §4.2 (the sign as written there; unverified against the paper).  @sa docs/presets.md#rdpo
struct rdpo {
  static constexpr const char* name = "rpo::rdpo";
  double beta = 0.1;    ///< β > 0
  double alpha = 0.01;  ///< α, the length weight (the paper sweeps about 0.005 to 0.05)
  using composition = loss<distance::bernoulli_bwd_kl, reward::length_regularized, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta, .alpha = alpha}}; }
};

/// H-DPO, entropy-controllable DPO (Omura et al. 2024): softplus(−β[(α·logp_c − ref_c) − (α·logp_r − ref_r)]).
/// D_bwd / entropy_controlled / hard label.  LOSSES.md §4.17 (unverified against the paper).  @sa docs/presets.md#hdpo
struct hdpo {
  static constexpr const char* name = "rpo::hdpo";
  double beta = 0.1;   ///< β > 0
  double alpha = 1.0;  ///< α > 0; α < 1 sharpens the policy, α = 1 is DPO (LOSSES.md gives no default)
  using composition = loss<distance::bernoulli_bwd_kl, reward::entropy_controlled, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta, .alpha = alpha}}; }
};

/// AlphaPO (Gupta et al. 2025; TRL `CPOTrainer` `loss_type="alphapo"`): softplus(−(β(r_α(ā_c) − r_α(ā_r)) − γ)),
/// r_α(ā) = (1 − e^{−αā})/α, ā = logp/n, no reference model. D_bwd / alpha_shaped / hard label with margin γ.
/// α = 0 is SimPO.  LOSSES.md §2.1, §4.4.  @sa docs/presets.md#alphapo
struct alphapo {
  static constexpr const char* name = "rpo::alphapo";
  double beta = 2.5;    ///< β > 0 (the AlphaPO example: 2.5)
  double alpha = 0.25;  ///< α, the reward shape (the example: 0.25)
  double gamma = 0.1;   ///< γ, the margin, absolute (the example: 0.1)
  using composition = loss<distance::bernoulli_bwd_kl, reward::alpha_shaped, target::margin<>, sampling::pair>;
  constexpr composition compose() const noexcept {
    return {.reward = {.beta = beta, .alpha = alpha}, .target = {.gamma = gamma}};
  }
};

/// f-DPO with the forward KL (Wang et al. 2023; TRL `f_divergence_type="forward_kl"`): softplus(−β(e^{−ℓ_r} −
/// e^{−ℓ_c})). D_bwd / f_divergence (forward_kl) / hard label; exponents clamped at 80.  LOSSES.md §1.15.
/// @sa docs/presets.md#fdpo
struct fdpo_forward_kl {
  static constexpr const char* name = "rpo::fdpo_forward_kl";
  double beta = 0.1;  ///< β > 0
  using composition = loss<distance::bernoulli_bwd_kl, reward::f_divergence, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept {
    return {.reward = {.beta = beta, .kind = reward::f_divergence_kind::forward_kl}};
  }
};

/// f-DPO with the Jensen–Shannon divergence (TRL `js_divergence`): softplus(−β(log σ(ℓ_c) − log σ(ℓ_r))).
/// D_bwd / f_divergence (jensen_shannon) / hard label.  LOSSES.md §1.15.  @sa docs/presets.md#fdpo
struct fdpo_js {
  static constexpr const char* name = "rpo::fdpo_js";
  double beta = 0.1;  ///< β > 0
  using composition = fdpo_forward_kl::composition;
  constexpr composition compose() const noexcept {
    return {.reward = {.beta = beta, .kind = reward::f_divergence_kind::jensen_shannon}};
  }
};

/// f-DPO with the α-divergence in TRL v1's form (`alpha_divergence`, coefficient α): softplus(−β(ψ(ℓ_c) − ψ(ℓ_r))),
/// ψ(ℓ) = e^{(α−1)ℓ}/(α−1). D_bwd / f_divergence (alpha) / hard label; α = 1 is DPO. Legacy TRL's coefficient is
/// 1 − α.  LOSSES.md §1.15.  @sa docs/presets.md#fdpo
struct fdpo_alpha {
  static constexpr const char* name = "rpo::fdpo_alpha";
  double beta = 0.1;   ///< β > 0
  double alpha = 0.5;  ///< α ∈ (0, 1] (TRL v1's `f_alpha_divergence_coef`: 0.5)
  using composition = fdpo_forward_kl::composition;
  constexpr composition compose() const noexcept {
    return {.reward = {.beta = beta, .kind = reward::f_divergence_kind::alpha, .alpha = alpha}};
  }
};

/// DiscoPOP (Lu et al. 2024; TRL's `discopop`): (1 − σ(a/τ))·softplus(−a) + σ(a/τ)·e^{−a}, a = β(ℓ_c − ℓ_r).
/// distance::discopop / implicit / hard label.  LOSSES.md §1.12.  @sa docs/presets.md#discopop
struct discopop {
  static constexpr const char* name = "rpo::discopop";
  double beta = 0.1;   ///< β > 0 (as DPO)
  double tau = 0.05;   ///< τ > 0 (the paper's and TRL's 0.05)
  using composition = loss<distance::discopop, reward::implicit, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.distance = {.tau = tau}, .reward = {.beta = beta}}; }
};

/// FocalPO (Liu et al. 2025): −σ(a)^γ·log σ(a), a = β(ℓ_c − ℓ_r); γ = 0 is DPO. distance::focal / implicit / hard
/// label.  LOSSES.md §4.5.  @sa docs/presets.md#focalpo
struct focalpo {
  static constexpr const char* name = "rpo::focalpo";
  double beta = 0.1;    ///< β > 0 (as DPO)
  double gamma = 0.05;  ///< γ ≥ 0 (LOSSES.md gives no value; the paper fixes one small γ)
  using composition = loss<distance::focal, reward::implicit, target::hard_label, sampling::pair>;
  constexpr composition compose() const noexcept { return {.distance = {.gamma = gamma}, .reward = {.beta = beta}}; }
};

/// DNO's general loss (Rosset et al. 2024): −[P·log σ(u) + (1 − P)·log σ(−u)], u = β(ℓ₁ − ℓ₂) with the previous
/// iterate π_t as the reference, P = P(y₁ ≻ y₂ | x) the preference probability. Exactly the logistic distance (the
/// cross-entropy; D_bwd plus the constant H₂(P)) / implicit / reward_gap with η = 1, the rewards carrying
/// b = logit P: reward[0] − reward[1] = log(P/(1 − P)), e.g. (logit P, 0). ∂L/∂logp₁ = β(σ(u) − P). DNO-Prct
/// (binarised P) is rpo::dpo against π_t.  LOSSES.md §4.8 (the general loss is unverified against the paper).
/// @sa docs/presets.md#dno
struct dno {
  static constexpr const char* name = "rpo::dno";
  double beta = 0.1;  ///< β > 0, the paper's η_DNO (LOSSES.md gives no default: DPO's 0.1)
  using composition = loss<distance::logistic, reward::implicit, target::reward_gap, sampling::pair>;
  constexpr composition compose() const noexcept { return {.reward = {.beta = beta}, .target = {.eta = 1.0}}; }
};

// ===========================================================================================================
// Weighted sums with the NLL term (LOSSES.md §1.13, §1.18, §2.1): rpo::sum of compositions
// ===========================================================================================================

/// CPO (Xu et al. 2024; TRL `CPOTrainer` with `cpo_alpha` = λ): cpo_pref + λ·NLL(chosen), the NLL per sample and per
/// token (−logp_c/n_c; TRL takes one token mean over the batch).  LOSSES.md §2.1, §1.13.  @sa docs/methods.md#cpo
struct cpo {
  static constexpr const char* name = "rpo::cpo";
  double beta = 0.1;    ///< β > 0 (TRL's `CPOConfig`: 0.1)
  double lambda = 1.0;  ///< λ ≥ 0, the NLL weight (TRL's `cpo_alpha`: 1)
  using composition = sum<cpo_pref::composition, nll>;
  constexpr composition compose() const noexcept {
    return {.first = cpo_pref{.beta = beta}.compose(), .second = {}, .first_weight = 1, .second_weight = lambda};
  }
  /// λ must be finite and >= 0.
  constexpr parameter_error check() const noexcept { return require_nonnegative("lambda", lambda); }
};

/// Iterative RPO's loss (Pang et al. 2024, v3; TRL `loss_type=["sigmoid","sft"]`, `loss_weights=[1, α]`, formerly
/// `rpo_alpha`): DPO + α·NLL(chosen), the NLL −logp_c/n_c with α on the NLL as in the paper's v3. Unrelated to
/// reward-aware preference optimization.  LOSSES.md §1.13, §7.5.  @sa docs/methods.md#irpo
struct irpo {
  static constexpr const char* name = "rpo::irpo";
  double beta = 0.1;   ///< β > 0
  double alpha = 1.0;  ///< α ≥ 0, the NLL weight (the paper's 1)
  using composition = sum<dpo::composition, nll>;
  constexpr composition compose() const noexcept {
    return {.first = dpo{.beta = beta}.compose(), .second = {}, .first_weight = 1, .second_weight = alpha};
  }
  /// α must be finite and >= 0.
  constexpr parameter_error check() const noexcept { return require_nonnegative("alpha", alpha); }
};

/// Mixed preference optimisation (Wang et al. 2024, arXiv 2411.10442; TRL `loss_type=["sigmoid","bco_pair","sft"]`,
/// `loss_weights=[0.8, 0.2, 1.0]`): w_p·DPO + w_q·BCO-pair + w_g·NLL(chosen), one β for both preference terms.
/// LOSSES.md §1.18.  @sa docs/methods.md#mpo
struct mpo {
  static constexpr const char* name = "rpo::mpo";
  double beta = 0.1;        ///< β > 0
  double preference = 0.8;  ///< w_p ≥ 0, the weight of DPO
  double quality = 0.2;     ///< w_q ≥ 0, the weight of BCO-pair
  double generation = 1.0;  ///< w_g ≥ 0, the weight of the NLL
  using composition = sum<dpo::composition, sum<extension::pairwise<extension::bco>, nll>>;
  constexpr composition compose() const noexcept {
    return {.first = dpo{.beta = beta}.compose(),
            .second = {.first = {.kernel = {.beta = beta}}, .second = {}, .first_weight = quality,
                       .second_weight = generation},
            .first_weight = preference,
            .second_weight = 1};
  }
  /// The weights must be finite and >= 0.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_nonnegative("preference", preference)) return e;
    if (auto e = require_nonnegative("quality", quality)) return e;
    return require_nonnegative("generation", generation);
  }
};

/// ORPO (Hong et al. 2024; TRL `ORPOTrainer`, its `beta` = λ): NLL(chosen) − λ·log σ(lo), lo = log odds(p̄_c) −
/// log odds(p̄_r), p̄ = e^{logp/n}: the NLL −logp_c/n_c plus λ times D_bwd / reward::log_odds (β = 1) / hard label,
/// reference-free. log(1 − p̄) is log1mexp (LOSSES.md §6.5). ∂/∂logp_c = −1/n_c − λσ(−lo)/(n_c(1 − p̄_c)).
/// LOSSES.md §2.2.  @sa docs/methods.md#orpo
struct orpo {
  static constexpr const char* name = "rpo::orpo";
  double lambda = 0.1;  ///< λ ≥ 0, the odds-ratio weight (TRL's `beta`: 0.1)
  using odds_ratio = loss<distance::bernoulli_bwd_kl, reward::log_odds, target::hard_label, sampling::pair>;
  using composition = sum<odds_ratio, nll>;
  constexpr composition compose() const noexcept {
    return {.first = {.reward = {.beta = 1.0}}, .second = {}, .first_weight = lambda, .second_weight = 1};
  }
  /// λ must be finite and >= 0.
  constexpr parameter_error check() const noexcept { return require_nonnegative("lambda", lambda); }
};

// ===========================================================================================================
// Outside the template (LOSSES.md §0.4's criterion): rpo::extension::pairwise kernels
// ===========================================================================================================

/// Robust DPO (Chowdhury et al. 2024; TRL `robust`). Outside: a signed combination of D_bwd(a‖∞) and D_bwd(−a‖∞),
/// unbounded below.  LOSSES.md §1.7.  @sa docs/methods.md#robust_dpo
struct robust_dpo {
  static constexpr const char* name = "rpo::robust_dpo";
  double beta = 0.1;     ///< β > 0
  double epsilon = 0.1;  ///< ε ∈ [0, 0.5), the label-flip rate (the paper's 0.1)
  using composition = extension::pairwise<extension::robust>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta, .epsilon = epsilon}}; }
};

/// NCA, pairwise (Chen et al. 2024; TRL `nca_pair`). Outside: absolute terms.  LOSSES.md §1.6.
/// @sa docs/methods.md#nca_pair
struct nca_pair {
  static constexpr const char* name = "rpo::nca_pair";
  double beta = 0.01;  ///< β > 0 (the paper's 0.01)
  using composition = extension::pairwise<extension::nca>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta}}; }
};

/// BCO, pairwise (Jung et al. 2024): −log σ(βℓ_c − δ) − log σ(−(βℓ_r − δ)). δ = 0 (the default) is TRL v1's
/// `bco_pair`; legacy TRL and the paper pass the running mean of the rewards (rpo::bco_reference_point), rebuilding
/// the preset each step. Outside: pointwise.  LOSSES.md §1.8.  @sa docs/methods.md#bco_pair
struct bco_pair {
  static constexpr const char* name = "rpo::bco_pair";
  double beta = 0.1;   ///< β > 0
  double delta = 0.0;  ///< δ, finite: the reward shift, a constant of the objective (0: TRL v1)
  using composition = extension::pairwise<extension::bco>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta, .delta = delta}}; }
};

/// SPPO with hard labels (Wu et al. 2024; TRL `sppo_hard`). Outside: pointwise squared.  LOSSES.md §1.9.
/// @sa docs/methods.md#sppo_hard
struct sppo_hard {
  static constexpr const char* name = "rpo::sppo_hard";
  double beta = 0.1;  ///< β > 0
  using composition = extension::pairwise<extension::sppo_hard>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta}}; }
};

/// Soft SPPO (Wu et al. 2024, Eq. 4.7 with P̂ estimated): Σ_y (ℓ_y − (P̂_y − ½)/β)² over the pair, P̂_y ∈ [0, 1] in the
/// `reward` field. P̂ = (1, 0) is rpo::sppo_hard. Outside: pointwise squared.  LOSSES.md §1.9 (unverified against the
/// paper text).  @sa docs/methods.md#sppo_soft
struct sppo_soft {
  static constexpr const char* name = "rpo::sppo_soft";
  double beta = 0.1;  ///< β > 0 (η_SPPO = 1/β)
  using composition = extension::sppo_soft;
  constexpr composition compose() const noexcept { return {.beta = beta}; }
};

/// APO-zero (D'Oosterlinck et al. 2024; TRL `apo_zero`). Outside: anchored.  LOSSES.md §1.11.
/// @sa docs/methods.md#apo_zero
struct apo_zero {
  static constexpr const char* name = "rpo::apo_zero";
  double beta = 0.1;  ///< β > 0
  using composition = extension::pairwise<extension::apo_zero>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta}}; }
};

/// APO-down (TRL `apo_down`). Outside: anchored.  LOSSES.md §1.11.  @sa docs/methods.md#apo_down
struct apo_down {
  static constexpr const char* name = "rpo::apo_down";
  double beta = 0.1;  ///< β > 0
  using composition = extension::pairwise<extension::apo_down>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta}}; }
};

/// DPO-Positive (Smaug; Pal et al. 2024), the penalty inside the sigmoid. Outside: a one-sided absolute anchor.
/// LOSSES.md §4.3, §7.9.  @sa docs/methods.md#dpop
struct dpop {
  static constexpr const char* name = "rpo::dpop";
  double beta = 0.1;     ///< β > 0
  double lambda = 50.0;  ///< λ ≥ 0 (the paper's 50)
  using composition = extension::pairwise<extension::dpop>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta, .lambda = lambda}}; }
};

/// DPO-Shift (Yang et al. 2025) with a fixed λ. Outside for λ ≠ 1: asymmetric.  LOSSES.md §4.15.
/// @sa docs/methods.md#dpo_shift
struct dpo_shift {
  static constexpr const char* name = "rpo::dpo_shift";
  double beta = 0.1;     ///< β > 0
  double lambda = 0.95;  ///< λ ∈ (0, 1]
  using composition = extension::pairwise<extension::dpo_shift>;
  constexpr composition compose() const noexcept { return {.kernel = {.beta = beta, .lambda = lambda}}; }
};

/// NCA with K responses and explicit rewards (Chen et al. 2024). Outside: absolute terms. rpo::nca_pair at K = 2 with
/// a one-hot target.  LOSSES.md §4.12.  @sa docs/methods.md#nca
struct nca {
  static constexpr const char* name = "rpo::nca";
  double beta = 0.01;  ///< β > 0 (the paper's 0.01)
  double alpha = 1.0;  ///< α > 0, the reward temperature of q = softmax(r/α) (as rpo::infonca)
  using composition = extension::nca_group;
  constexpr composition compose() const noexcept { return {.beta = beta, .alpha = alpha}; }
};

// ===========================================================================================================
// Beside the template: shift-invariant, but beyond the four policies (rpo/extension.hpp)
// ===========================================================================================================

/// MADPO (Rho 2025): DPO weighted by w(r_c − r_r) from a reward model, no gradient through the weight.
/// LOSSES.md §4.7.  @sa docs/methods.md#madpo
struct madpo {
  static constexpr const char* name = "rpo::madpo";
  double beta = 0.1;    ///< β > 0
  double c_max = 2.0;   ///< c_max > 1 (the reference code's 2)
  double c_min = 0.5;   ///< c_min ∈ [0, 1) (0.5)
  double lambda = 1.0;  ///< λ ≥ 0 (1)
  double tau = 2.0;     ///< τ ≥ 0 (2)
  using composition = extension::margin_adaptive;
  constexpr composition compose() const noexcept {
    return {.beta = beta, .c_max = c_max, .c_min = c_min, .lambda = lambda, .tau = tau};
  }
};

/// Multi-preference optimisation at set level (Gupta et al. 2024, arXiv 2412.04628; v1 titled SWEPO, hence the name:
/// rpo::mpo is Wang et al.'s mixed preference optimisation). LOSSES.md §4.10.  @sa docs/methods.md#swepo
struct swepo {
  static constexpr const char* name = "rpo::swepo";
  double beta = 0.1;   ///< β > 0 (LOSSES.md gives none: DPO's 0.1)
  double alpha = 1.0;  ///< α ≥ 0, the weight of |r − mean r| (LOSSES.md gives none; 0 is the plain set contrast)
  using composition = extension::set_contrast;
  constexpr composition compose() const noexcept { return {.beta = beta, .alpha = alpha}; }
};

}  // namespace rpo
