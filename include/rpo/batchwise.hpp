// rpo/batchwise.hpp — losses whose value depends on the whole batch, not on one group at a time: KTO, AOT and γ-PO;
// and any loss with a per-group weight that comes from outside the group (WPO).
//
// Public names: rpo::kto, rpo::kto_input, rpo::kto_output, rpo::kto_reference_point, rpo::evaluate_kto,
//               rpo::aot, rpo::evaluate_aot, rpo::bco_reference_point, rpo::bco_unpaired, rpo::bco_input,
//               rpo::evaluate_bco,
//               rpo::gamma_po, rpo::gamma_po_gaps, rpo::evaluate_gamma_po, rpo::gamma_po_optimizer,
//               rpo::gamma_po_margins, rpo::evaluate_weighted.
// Implements LOSSES.md §2.3 (KTO), §1.10 (AOT, paired and unpaired), §4.6 (γ-PO) and §1.8's unpaired BCO, and keeps
// BCO's running reward mean δ (§1.8), the batch statistic that rpo::bco_pair and rpo::evaluate_bco take as `delta`.
// None is an rpo::Composition, and none can be one: rpo::evaluate hands a loss one group at a time, and these need
// the batch.
//   * KTO takes unpaired responses, each with a desirable/undesirable label, and puts a Kahneman–Tversky value
//     function on each response's own log-ratio around a reference point z0, a statistic of the whole (global)
//     batch on mismatched pairs. It is not a function of a pair's gap (LOSSES.md §0.4's criterion: not invariant to
//     r_π(y) → r_π(y) + c(x)), and its "group" would be one labelled response.
//   * Unpaired BCO classifies each labelled response on its own shifted reward, with optional constant weights.
//   * AOT sorts the batch's margins (or log-ratios) and pairs them by rank, so each term mixes different pairs: the
//     loss of a pair does not exist, only the loss of a rank.
//   * γ-PO is DPO (or SimPO) with a margin per pair; the margins are optimised over the batch's gaps and a queue of
//     past gaps carried across steps (rpo::gamma_po_margins), then enter the loss as constants.
// All are entry points beside rpo::evaluate with its conventions: spans in, the reduced loss out, gradients of the
// reduced loss, the same reductions (rpo::reduction) and error policies, every check before anything is written,
// float batches summed in double. None is a loss of one group, so rpo::parse_loss, `rpo-eval --loss` and rpo.Loss do
// not offer them; each has a batch spec instead (rpo/batch_spec.hpp: `rpo-eval --batch`, rpo.evaluate_batch), and the
// Python module binds each as a function of its own too (python/src/batchwise.cpp).
// rpo::evaluate_weighted is rpo::evaluate with a constant weight per group, for the weighting of LOSSES.md §1.16
// (WPO): L_g ← c_g·L_g, the gradients scaled by c_g (for WPO c_g = w(y_c)·w(y_r), from rpo::wpo_weights in
// rpo/token_weighting.hpp). The weight comes from outside the group, so it is not a composition either.
// @sa docs/methods.md#batchwise, docs/methods.md#evaluate_weighted
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/detail/pair_block.hpp"
#include "rpo/distance.hpp"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"
#include "rpo/math.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// KTO (Ethayarajh et al. 2024, arXiv 2402.01306; TRL `KTOTrainer`): for an unpaired response with log-ratio
/// ℓ = logp − ref_logp, the loss is λ_D·(1 − σ(β(ℓ − z0))) if it is desirable and λ_U·(1 − σ(β(z0 − ℓ))) if not;
/// z0 is the batch's reference point (rpo::kto_reference_point), a constant of the objective.
/// ∂L/∂logp = −λ_D·β·σ′(β(ℓ − z0)) (desirable), +λ_U·β·σ′(β(z0 − ℓ)) (undesirable); ∂L/∂ref_logp = −∂L/∂logp.
/// Outside the template: unpaired, and a value function of the absolute ℓ around a batch statistic, not a
/// function of a pair's gap.  LOSSES.md §2.3.  @sa docs/methods.md#kto
struct kto {
  double beta = 0.1;                ///< β > 0 (TRL's 0.1)
  double lambda_desirable = 1.0;    ///< λ_D ≥ 0, the weight of desirable responses (TRL's `desirable_weight`, 1)
  double lambda_undesirable = 1.0;  ///< λ_U ≥ 0, the weight of undesirable responses (TRL's `undesirable_weight`, 1)
  /// β finite and > 0; λ_D, λ_U finite and ≥ 0.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    if (auto e = require_nonnegative("lambda_desirable", lambda_desirable)) return e;
    return require_nonnegative("lambda_undesirable", lambda_undesirable);
  }
};

/// What rpo::evaluate_kto reads: N unpaired responses, each with its label, and the reference point z0.
/// @sa docs/methods.md#kto
template <Scalar T = double> struct kto_input {
  std::span<const T> logp{};                  ///< log π(y_i|x_i), N entries
  std::span<const T> ref_logp{};              ///< log π_ref(y_i|x_i), N entries
  std::span<const std::uint8_t> desirable{};  ///< N labels: 1 desirable, 0 undesirable
  T z0 = T(0);  ///< the reference point, finite; normally rpo::kto_reference_point (0 gives TRL's apo_zero_unpaired)
};

/// Where rpo::evaluate_kto writes; each span is either empty (not wanted) or has N entries.
/// @sa docs/methods.md#kto
template <Scalar T = double> struct kto_output {
  std::span<T> response_loss{};  ///< N per-response losses, before reduction (the λ weights included)
  std::span<T> grad_logp{};      ///< ∂(reduced loss)/∂logp_i
  std::span<T> grad_ref_logp{};  ///< ∂(reduced loss)/∂ref_logp_i = −grad_logp_i (a constant of the objective)
};

/// KTO's reference point z0 = max(0, mean_j (logp_j − ref_logp_j)) over the batch's mismatched pairs (x_j, y_{j+1}),
/// the estimate of KL(π‖π_ref) of LOSSES.md §2.3. A constant of the objective: rpo::evaluate_kto gives no gradient
/// through it (TRL computes it detached). The sum is taken in double. Checks, under the error policy: equal sizes,
/// at least one pair, finite values; on failure it returns NaN (errors::report). Name T for float batches:
/// `rpo::kto_reference_point<float>(logp, ref)`. Across ranks, TRL averages each rank's unclamped mean and clamps
/// once; see docs/methods.md#kto.  LOSSES.md §2.3, §6 item 9.  @sa docs/methods.md#kto
template <Scalar T = double, ErrorPolicy P = errors::throw_on_error>
T kto_reference_point(std::span<const std::type_identity_t<T>> mismatched_logp,
                      std::span<const std::type_identity_t<T>> mismatched_ref_logp, P policy = {});

/// Evaluates KTO on N unpaired responses: writes the per-response losses and the gradients of the reduced loss,
/// returns the reduced loss (`reduction::mean()` is the mean over the N responses, as TRL's). Checks, under the error
/// policy and before anything is written: the parameters; that ref_logp and desirable have N entries; the output
/// sizes; the reduction; finite logp, ref_logp and z0; labels 0 or 1. Sizes are checked also under
/// errors::unchecked.  LOSSES.md §2.3.  @sa docs/methods.md#kto
template <Scalar T = double, ErrorPolicy P = errors::throw_on_error>
T evaluate_kto(const kto& l, const kto_input<T>& in, const kto_output<T>& out = {}, reduction how = reduction::mean(),
               P policy = {});

/// BCO, unpaired (Jung et al. 2024, arXiv 2404.04656; TRL's experimental `BCOTrainer`): each labelled response is
/// classified on its own reward r = β(logp − ref_logp) shifted by δ, the running mean of rewards
/// (rpo::bco_reference_point): the loss is −log σ(r − δ) = softplus(−(r − δ)) if desirable, −log σ(−(r − δ)) =
/// softplus(r − δ) if not, times a constant weight w_i ≥ 0 per response (TRL's UDM density-ratio weights, which it
/// computes for undesirable responses from a classifier on prompt embeddings: an input here; 1 when not given).
/// ∂L/∂logp = −w·β·σ(−(r − δ)) (desirable), +w·β·σ(r − δ) (undesirable); δ and w are constants. Outside the template:
/// a binary classification of each response, no pair.  LOSSES.md §1.8.  @sa docs/methods.md#bco_unpaired
struct bco_unpaired {
  double beta = 0.1;  ///< β > 0 (TRL's 0.1)
  /// β finite and > 0.
  constexpr parameter_error check() const noexcept { return require_positive("beta", beta); }
};

/// What rpo::evaluate_bco reads: N unpaired responses with their labels, δ, and optional per-response weights.
/// @sa docs/methods.md#bco_unpaired
template <Scalar T = double> struct bco_input {
  std::span<const T> logp{};                  ///< log π(y_i|x_i), N entries
  std::span<const T> ref_logp{};              ///< log π_ref(y_i|x_i), N entries
  std::span<const std::uint8_t> desirable{};  ///< N labels: 1 desirable, 0 undesirable
  std::span<const T> weight{};                ///< N constant weights ≥ 0 (UDM), or empty for all 1
  T delta = T(0);                             ///< δ, finite: normally rpo::bco_reference_point's mean (0: no shift)
};

/// Evaluates unpaired BCO on N responses: writes the per-response losses (weights included) and the gradients of the
/// reduced loss into `out` (rpo::kto_output's layout), returns the reduced loss (`reduction::mean()` over the N
/// responses). Checks, under the error policy and before anything is written: the parameters; the sizes of ref_logp,
/// desirable and weight (N, or none for weight) and of the outputs, and the reduction (also under errors::unchecked);
/// finite logp, ref_logp and δ; labels 0 or 1; weights finite and ≥ 0.  LOSSES.md §1.8.
/// @sa docs/methods.md#bco_unpaired
template <Scalar T = double, ErrorPolicy P = errors::throw_on_error>
T evaluate_bco(const bco_unpaired& l, const bco_input<T>& in, const kto_output<T>& out = {},
               reduction how = reduction::mean(), P policy = {});

/// AOT (Melnyk et al. 2024, arXiv 2406.05882; TRL `aot`, `aot_unpaired`). Paired: sort u_i = logp_c,i − logp_r,i and,
/// separately, u^ref_i = ref_c,i − ref_r,i over the B pairs of the batch, δ_(k) = u_(k) − u^ref_(k). Unpaired: sort
/// ℓ_c,i and ℓ_r,i separately, δ_(k) = ℓ_c,(k) − ℓ_r,(k). Then L = mean_k [(1−ε)·softplus(−βδ_(k)) +
/// ε·softplus(βδ_(k))]. The element of rank k on the first side gets ∂L/∂(·) = (β/B)(σ(βδ_(k)) − (1−ε)), the element
/// of rank k on the second side its negative. Outside the template: a first-order stochastic-dominance constraint on
/// quantiles of the batch, not a per-pair loss.  LOSSES.md §1.10.  @sa docs/methods.md#aot
struct aot {
  double beta = 0.1;      ///< β > 0 (TRL's 0.1)
  double epsilon = 0.0;   ///< ε ∈ [0, 0.5), label smoothing (TRL's `label_smoothing`, 0)
  bool unpaired = false;  ///< false: TRL's `aot` (sorted margins); true: `aot_unpaired` (sorted log-ratios)
  /// β finite and > 0; ε in [0, 0.5).
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    if (epsilon >= 0 && epsilon < 0.5) return {};
    return {"epsilon", "must be in [0, 0.5)", epsilon};
  }
};

/// Evaluates AOT on the B pairs of `in` (rpo::evaluate's fixed pairs: chosen, rejected, chosen, ...; offsets, if
/// given, must make every group a pair; length and reward are not read). `out.group_loss` has B entries: entry k is
/// the term of **rank** k, (1−ε)·softplus(−βδ_(k)) + ε·softplus(βδ_(k)), not the loss of pair k (AOT has none).
/// The gradients are those of the reduced loss; mean() divides by B. Ties are ordered by index (a stable sort): the
/// loss is continuous there but not differentiable, and the gradient returned is that of the stable order. Checks as
/// rpo::evaluate, under the error policy, before anything is written.  LOSSES.md §1.10.  @sa docs/methods.md#aot
template <Scalar T = double, ErrorPolicy P = errors::throw_on_error>
T evaluate_aot(const aot& l, const batch_input<T>& in, const batch_output<T>& out = {},
               reduction how = reduction::mean(), P policy = {});

/// rpo::evaluate with a constant weight per group (LOSSES.md §1.16, WPO's L_i ← L_i·w(y_c,i)·w(y_r,i)): the reduced
/// loss of c_g·L_g over the groups, and gradients c_g·∂L_g/∂logp (and ∂/∂ref_logp), scaled by the reduction;
/// `group_weights` (one per group, finite and ≥ 0) are constants, so no gradient flows through them. `mean()` is
/// (1/G)·Σ_g c_g·L_g, as TRL's mean of the weighted losses (not normalised by Σ c_g). `out.group_loss` receives the
/// weighted c_g·L_g. Nothing is clamped. Checks, before anything is written: everything rpo::evaluate checks, that
/// `group_weights` has one entry per group (std::invalid_argument, also under errors::unchecked), and, under the
/// error policy, that each weight is finite and ≥ 0 (std::domain_error naming group_weights[g]). All 1: rpo::evaluate.
/// @sa docs/methods.md#evaluate_weighted
template <LossLike L, Scalar T, ErrorPolicy P = errors::throw_on_error>
T evaluate_weighted(const L& l, const batch_input<T>& in, std::type_identity_t<std::span<const T>> group_weights,
                    const batch_output<T>& out = {}, reduction how = reduction::mean(), P policy = {});

/// γ-PO (Sun et al. 2025, arXiv 2506.03690, ACL 2025 Findings; reference code sunjie279/gammaPO): DPO or SimPO with a
/// target margin γ_i per pair, a constant of the objective (no gradient) chosen over the batch by
/// rpo::gamma_po_margins. With γ_0 = gamma_beta_ratio·β and x_i the argument of the sigmoid:
///   γ-DPO (`simpo = false`): L_i = −log σ(a_i − (γ_i − γ_0)) = softplus(−x_i), a_i = β(ℓ_c − ℓ_r), ℓ = logp − ref_logp;
///     ∂L/∂logp_c = −β·σ(−x_i) = −∂L/∂logp_r, ∂L/∂ref_logp = −∂L/∂logp;
///   γ-SimPO (`simpo = true`): L_i = softplus(−x_i), x_i = a_i − γ_i, a_i = β(logp_c/n_c − logp_r/n_r), no reference;
///     ∂L/∂logp_c = −β·σ(−x_i)/n_c, ∂L/∂logp_r = +β·σ(−x_i)/n_r.
/// Margins all equal to γ_0 give rpo::dpo with the same β (γ-SimPO: rpo::simpo with gamma = γ_0) to the last bit.
/// LOSSES.md §4.6.  @sa docs/methods.md#gamma_po
struct gamma_po {
  double beta = 0.1;              ///< β > 0 (DPO's 0.1; γ-SimPO's released configurations use 2.5 and 10)
  double gamma_beta_ratio = 0.5;  ///< γ_0/β ≥ 0 (our choice; the released configurations use 0.15 to 0.5)
  bool simpo = false;             ///< false: γ-DPO (reads logp, ref_logp); true: γ-SimPO (reads logp, length)
  /// γ_0 = gamma_beta_ratio·β, the mean margin (computed in double).
  constexpr double gamma_0() const noexcept { return gamma_beta_ratio * beta; }
  /// β finite and > 0; gamma_beta_ratio finite and ≥ 0.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("beta", beta)) return e;
    return require_nonnegative("gamma_beta_ratio", gamma_beta_ratio);
  }
};

/// Writes the B policy gaps g_i = a_i of `in`'s pairs into `gaps` (B entries): β(ℓ_c − ℓ_r) for γ-DPO,
/// β(logp_c/n_c − logp_r/n_r) for γ-SimPO, the same expressions rpo::evaluate_gamma_po uses. They are what
/// rpo::gamma_po_margins::compute takes, as constants. Checks as rpo::evaluate_gamma_po (parameters, shape, finite
/// inputs, lengths > 0), before anything is written; returns false after a failure.  LOSSES.md §4.6.
/// @sa docs/methods.md#gamma_po
template <Scalar T = double, ErrorPolicy P = errors::throw_on_error>
bool gamma_po_gaps(const gamma_po& l, const batch_input<T>& in, std::span<std::type_identity_t<T>> gaps,
                   P policy = {});

/// Evaluates γ-PO on the B pairs of `in` (rpo::evaluate's fixed pairs: chosen, rejected, chosen, ...; offsets, if
/// given, must make every group a pair) with the margins γ_i given, one per pair (normally from
/// rpo::gamma_po_margins). γ-DPO reads logp and ref_logp, γ-SimPO logp and length. Writes the per-pair losses and the
/// gradients of the reduced loss (none through the margins), returns the reduced loss (mean(): over the B pairs).
/// Checks, under the error policy and before anything is written: the parameters, rpo::evaluate's shape and value
/// checks, that `margins` has B entries (also under errors::unchecked) and that each is finite.  LOSSES.md §4.6.
/// @sa docs/methods.md#gamma_po
template <Scalar T = double, ErrorPolicy P = errors::throw_on_error>
T evaluate_gamma_po(const gamma_po& l, const batch_input<T>& in, std::span<const std::type_identity_t<T>> margins,
                    const batch_output<T>& out = {}, reduction how = reduction::mean(), P policy = {});

/// The settings of γ-PO's margin optimiser (rpo::gamma_po_margins) that LOSSES.md §4.6 leaves open. Each default is
/// that of the reference code as read (scripts/xpo_trainer.py and scripts/simpo_trainer.py of sunjie279/gammaPO,
/// commit 72d4263; rpo was never run against it), except where a comment says "our choice" (unverified against the
/// reference code's behaviour).  @sa docs/methods.md#gamma_po_margins
struct gamma_po_optimizer {
  double tau = 10.0;           ///< τ > 0, the weight of KL(p‖uniform) (our choice: the released configurations use 3 to 20)
  int iterations = 20;         ///< ≥ 1: γ = γ_0·n·p is evaluated this many times, with one EG update of p in between
  double step = 0.0;           ///< the EG step size η > 0, or 0 for the reference's min(0.5/τ, 1)
  double epsilon = 1e-10;      ///< ε ≥ 0 in the KL term's log(n(p + ε)) (the reference's 1e-10; 0 gives the plain KL)
  std::size_t capacity = 2048; ///< the FIFO queue of past gaps holds at most this many (LOSSES.md's 2048)
  std::size_t opt_size = 256;  ///< n = B + min(queue size, opt_size − B) gaps take part in one optimisation (256)
  std::uint64_t seed = 0x9e3779b97f4a7c15;  ///< the seed of the queue sample (our choice; the reference uses Python's random)
  /// The EG step actually taken: `step`, or min(0.5/τ, 1) when it is 0.
  constexpr double step_size() const noexcept { return step > 0 ? step : (0.5 / tau < 1 ? 0.5 / tau : 1.0); }
  /// τ finite and > 0; iterations ≥ 1; step finite and ≥ 0; ε finite and ≥ 0.
  constexpr parameter_error check() const noexcept {
    if (auto e = require_positive("tau", tau)) return e;
    if (iterations < 1) return {"iterations", "must be >= 1", static_cast<double>(iterations)};
    if (auto e = require_nonnegative("step", step)) return e;
    return require_nonnegative("epsilon", epsilon);
  }
};

/// γ-PO's margin optimiser (LOSSES.md §4.6), with its state: a first-in-first-out queue of past gaps. Each call of
/// compute(gaps, margins) takes the B current gaps g_i (constants) and:
///   1. draws m = min(queue size, opt_size − B) past gaps from the queue, uniformly without replacement (none when
///      B ≥ opt_size); the optimisation runs over the n = m + B gaps;
///   2. starts from the uniform p = 1/n and runs exponentiated-gradient descent on
///      f(p) = (1/n)·Σ_j softplus(γ_j − g_j) + τ·Σ_j (p_j + ε)·log(n(p_j + ε)),  γ_j = γ_0·n·p_j
///      (= (1/n)Σ −log σ(g_j − γ_j) + τ·KL(p‖uniform) at ε = 0): p_j ← p_j·e^{−η·∂f/∂p_j}/Σ_k p_k·e^{−η·∂f/∂p_k},
///      ∂f/∂p_j = γ_0·σ(γ_j − g_j) + τ(1 + log(n(p_j + ε))), evaluating γ `iterations` times (iterations − 1 updates);
///   3. writes γ_i = γ_0·n·p_i of the B current gaps, then pushes them into the queue (dropping the oldest past
///      `capacity`).
/// Pairs with larger gaps get larger margins. The queue's gaps take part in the optimisation (they share p and n);
/// only the current pairs' margins are returned. Not a policy: it owns memory and changes on every call. Sums are in
/// double; float gaps are widened.  @sa docs/methods.md#gamma_po_margins
class gamma_po_margins {
 public:
  /// An optimiser for the loss `l` (its γ_0) with the settings `opt`; the queue starts empty.
  explicit gamma_po_margins(const gamma_po& l = {}, const gamma_po_optimizer& opt = {}) noexcept;

  /// Computes the margins of the B gaps into `margins` (B entries), then pushes the gaps into the queue. Checks, under
  /// the error policy and before anything is written or pushed: the parameters, that `margins` has B entries (also
  /// under errors::unchecked), that every gap is finite. Returns false after a failure (the queue is then unchanged).
  template <Scalar T, ErrorPolicy P = errors::throw_on_error>
  bool compute(std::span<const std::type_identity_t<T>> gaps, std::span<T> margins, P policy = {});
  /// The same, for a std::vector or other contiguous range of double.
  template <ErrorPolicy P = errors::throw_on_error>
  bool compute(std::span<const double> gaps, std::span<double> margins, P policy = {}) {
    return compute<double, P>(gaps, margins, policy);
  }

  /// The queue, oldest first.
  const std::deque<double>& queue() const noexcept { return queue_; }
  /// Pushes gaps into the queue without optimising (e.g. to seed it, as the reference seeds its own with 8 draws of a
  /// standard normal); values are not checked.
  void push(std::span<const double> gaps);
  /// Empties the queue.
  void clear() noexcept { queue_.clear(); }
  /// The loss whose γ_0 is used.
  const gamma_po& loss_settings() const noexcept { return loss_; }
  /// The optimiser's settings.
  const gamma_po_optimizer& settings() const noexcept { return opt_; }

 private:
  gamma_po loss_;
  gamma_po_optimizer opt_;
  std::deque<double> queue_;
  std::uint64_t state_;  // splitmix64
  std::vector<double> work_gaps_, work_p_, work_logw_;
  std::vector<std::size_t> work_index_;
  std::uint64_t next_random() noexcept;
  std::size_t random_below(std::size_t bound) noexcept;
};

/// BCO's reward shift δ (LOSSES.md §1.8): the running mean of every implicit reward r = β(logp − ref_logp) pushed so
/// far, chosen and rejected alike; 0 before the first push. The caller pushes each batch's rewards, then passes `mean`
/// as rpo::bco_pair's `delta` (a constant of the objective: no gradient through it). A trivially copyable aggregate,
/// so that it can be saved with a checkpoint and restored by assigning `mean` and `count`.
/// **Legacy TRL** pushes one value per step, the batch's mean reward (RunningMoments.update on a 0-d tensor), and
/// reads δ after that push: batches are weighted equally, not by their sizes. Pushing every reward gives the same δ
/// when all batches have the same size; for TRL's weighting with ragged batches, push the batch mean alone.
/// @sa docs/methods.md#bco_delta
struct bco_reference_point {
  double mean = 0;         ///< δ: the mean of the values pushed so far (0 before the first)
  std::int64_t count = 0;  ///< how many values have been pushed

  /// Adds each of `rewards` to the running mean (the batch's mean is taken in double, then merged by its count).
  /// An empty span changes nothing. Checks, under the error policy and before the state changes: every reward finite
  /// (a domain error naming `rewards[i]`), and a valid state (count ≥ 0, mean finite). Returns false after a failed
  /// check (errors::report), true otherwise. Name T for float batches: `delta.push<float>(rewards)`.
  /// LOSSES.md §1.8.  @sa docs/methods.md#bco_delta
  template <Scalar T = double, ErrorPolicy P = errors::throw_on_error>
  bool push(std::span<const std::type_identity_t<T>> rewards, P policy = {});
};

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

/// A term of a batch-level loss and its derivative in the one variable it is a function of.
template <class T> struct value_slope {
  T value;
  T slope;
};

/// KTO's term of one response and its derivative in ℓ, with x = β(ℓ − z0): desirable λ_D·σ(−x) (= λ_D(1 − σ(x)),
/// with no cancellation), slope −λ_D·β·σ(x)σ(−x); undesirable λ_U·σ(x) (= λ_U(1 − σ(−x))), slope +λ_U·β·σ(x)σ(−x).
/// One exponential for both σ(±x).  LOSSES.md §2.3.
template <Scalar T> RPO_HD constexpr value_slope<T> kto_term(const kto& l, T ratio, T z0, bool desirable) noexcept {
  const T b = T(l.beta);
  const auto p = rpo::detail::logistic_of(b * (ratio - z0));
  const T slope = b * p.pos * p.neg;  // β·σ′(x)
  if (desirable) {
    const T w = T(l.lambda_desirable);
    return {w * p.neg, -w * slope};
  }
  const T w = T(l.lambda_undesirable);
  return {w * p.pos, w * slope};
}

/// AOT's term of one rank and its derivative in x = βδ: (1−ε)·softplus(−x) + ε·softplus(x), slope
/// ε·σ(x) − (1−ε)·σ(−x) (= σ(x) − (1−ε), written so that ε = 0 gives DPO's −σ(−x) to the last bit instead of
/// σ(x) − 1, which loses every digit when σ(x) ≈ 1). One exponential and one log1p.  LOSSES.md §1.2, §1.10.
template <Scalar T> RPO_HD constexpr value_slope<T> aot_term(T x, T epsilon) noexcept {
  const auto p = rpo::detail::logistic_of(x);
  const auto s = p.softpluses();
  const T keep = T(1) - epsilon;
  return {keep * s.minus + epsilon * s.plus, epsilon * p.pos - keep * p.neg};
}

/// Checks a batch-level loss's parameters under the policy (nothing under errors::unchecked), naming `who`.
template <ErrorPolicy P> bool check_batchwise_parameters(const char* who, parameter_error e, const P& policy) {
  if constexpr (std::is_same_v<P, errors::unchecked>) {
    return true;
  } else {
    if (!e) return true;
    return fail(policy, errc::invalid_parameter, rule_message(who, e.name, e.rule, e.value));
  }
}

/// Checks that every value of `values` is finite, and ≥ 0 when `nonnegative` (weights), nothing under
/// errors::unchecked: the finite rule first in one pass over the bits (rpo::detail::all_valid, as the batch layer's
/// check), then the culprit is looked for only after a failure. The message names `name[i]`.
template <Scalar T, ErrorPolicy P>
bool check_finite_values(const char* who, const char* name, std::span<const T> values, const P& policy,
                         bool nonnegative = false) {
  if constexpr (std::is_same_v<P, errors::unchecked>) {
    return true;
  } else {
    if (!nonnegative && all_valid(values.data(), static_cast<std::int64_t>(values.size()), false)) return true;
    for (std::size_t i = 0; i < values.size(); ++i) {
      if (is_finite(values[i]) && (!nonnegative || values[i] >= T(0))) continue;
      return fail(policy, errc::domain_error,
                  rule_message(who, std::string(name) + "[" + std::to_string(i) + "]",
                               nonnegative ? "must be finite and >= 0" : "must be finite",
                               static_cast<double>(values[i])));
    }
    return true;
  }
}

/// `a` before `b` in a total order: numbers by <, NaN (possible only under errors::unchecked) after every number.
/// std::stable_sort needs a strict weak order, which a plain < is not once a NaN is in the keys.
template <Scalar T> constexpr bool sorts_before(T a, T b) noexcept {
  const bool a_nan = !(a == a), b_nan = !(b == b);
  if (a_nan || b_nan) return !a_nan && b_nan;
  return a < b;
}

/// The indices 0..n−1 in the stable ascending order of `keys` (ties keep index order).
template <Scalar T> std::vector<std::size_t> stable_order(const std::vector<T>& keys) {
  std::vector<std::size_t> order(keys.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t i, std::size_t j) { return sorts_before(keys[i], keys[j]); });
  return order;
}

}  // namespace detail

template <Scalar T, ErrorPolicy P>
T kto_reference_point(std::span<const std::type_identity_t<T>> mismatched_logp,
                      std::span<const std::type_identity_t<T>> mismatched_ref_logp, P policy) {
  constexpr const char* who = "rpo::kto_reference_point";
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  const auto shape = detail::shape_policy(policy);
  const std::size_t n = mismatched_logp.size();
  if (mismatched_ref_logp.size() != n) {
    detail::fail(shape, errc::invalid_argument,
                 detail::size_message(who, "mismatched_ref_logp", mismatched_ref_logp.size(), "mismatched_logp", n));
    return nan;
  }
  if (n == 0) {
    detail::fail(shape, errc::invalid_argument,
                 std::string(who) + ": no mismatched pairs were given, and the mean over 0 pairs is undefined");
    return nan;
  }
  if (!detail::check_finite_values(who, "mismatched_logp", mismatched_logp, policy) ||
      !detail::check_finite_values(who, "mismatched_ref_logp", mismatched_ref_logp, policy))
    return nan;
  double total = 0;  // in double also for float batches; each difference of two floats is exact in double
  for (std::size_t i = 0; i < n; ++i)
    total += static_cast<double>(mismatched_logp[i]) - static_cast<double>(mismatched_ref_logp[i]);
  const double mean = total / static_cast<double>(n);
  return static_cast<T>(mean > 0 ? mean : 0.0);
}

namespace detail {

/// The body of the losses over unpaired labelled responses (KTO, unpaired BCO): every check of their inputs before
/// anything is written, then term(ratio ℓ_i, desirable_i) → {value, ∂/∂ℓ_i} per response, times its weight when
/// `weight` is given, summed in double and reduced. `shift` (z0 or δ, named `shift_name`) must be finite.
template <Scalar T, ErrorPolicy P, class Term>
T evaluate_labelled(const char* who, parameter_error parameters, std::span<const T> logp, std::span<const T> ref_logp,
                    std::span<const std::uint8_t> desirable, std::span<const T> weight, T shift,
                    const char* shift_name, const kto_output<T>& out, reduction how, const P& policy,
                    const Term& term) {
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  if (!check_batchwise_parameters(who, parameters, policy)) return nan;

  // Sizes, outputs and the reduction guard memory or the meaning of the call: checked also under errors::unchecked.
  const auto shape = shape_policy(policy);
  const std::size_t n = logp.size();
  const auto input_size = [&](std::size_t got, const char* name) {
    return got == n || fail(shape, errc::invalid_argument, size_message(who, name, got, "logp", n));
  };
  const auto output_size = [&](std::size_t got, const char* name) {
    return got == 0 || got == n ||
           fail(shape, errc::invalid_argument,
                std::string(who) + ": " + name + " has " + std::to_string(got) + " entries but must have " +
                    std::to_string(n) + " (one per response) or none");
  };
  if (!input_size(ref_logp.size(), "ref_logp") || !input_size(desirable.size(), "desirable") ||
      !output_size(weight.size(), "weight") || !output_size(out.response_loss.size(), "response_loss") ||
      !output_size(out.grad_logp.size(), "grad_logp") || !output_size(out.grad_ref_logp.size(), "grad_ref_logp") ||
      !check_reduction(who, how, n, "responses", shape))
    return nan;

  // Values, under the policy.
  if (!check_finite_values(who, "logp", logp, policy) || !check_finite_values(who, "ref_logp", ref_logp, policy))
    return nan;
  if constexpr (!std::is_same_v<P, errors::unchecked>) {
    if (!is_finite(shift)) {
      fail(policy, errc::domain_error, rule_message(who, shift_name, "must be finite", static_cast<double>(shift)));
      return nan;
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (desirable[i] <= 1) continue;
      const std::string entry = "desirable[" + std::to_string(i) + "]";
      fail(policy, errc::domain_error,
           std::string(who) + ": " + entry + " must be 0 (undesirable) or 1 (desirable), but got " + entry + " = " +
               std::to_string(static_cast<unsigned>(desirable[i])));
      return nan;
    }
  }
  if (!check_finite_values(who, "weight", weight, policy, true)) return nan;

  const double scale = reduction_scale(how, n);
  double total = 0;  // accumulated in double also for float batches
  for (std::size_t i = 0; i < n; ++i) {
    value_slope<T> t = term(logp[i] - ref_logp[i], desirable[i] != 0);
    if (!weight.empty()) t = {weight[i] * t.value, weight[i] * t.slope};
    if (!out.response_loss.empty()) out.response_loss[i] = t.value;
    total += static_cast<double>(t.value);
    const T g = static_cast<T>(static_cast<double>(t.slope) * scale);
    if (!out.grad_logp.empty()) out.grad_logp[i] = g;
    if (!out.grad_ref_logp.empty()) out.grad_ref_logp[i] = -g;
  }
  return static_cast<T>(total * scale);
}

/// Unpaired BCO's term of one response and its derivative in ℓ, with x = βℓ − δ: desirable softplus(−x), slope
/// −β·σ(−x); undesirable softplus(x), slope β·σ(x). One exponential and one log1p.  LOSSES.md §1.8.
template <Scalar T> RPO_HD constexpr value_slope<T> bco_term(const bco_unpaired& l, T ratio, T delta, bool desirable) noexcept {
  const T b = T(l.beta);
  const auto p = rpo::detail::logistic_of(b * ratio - delta);
  const auto s = p.softpluses();
  return desirable ? value_slope<T>{s.minus, -b * p.neg} : value_slope<T>{s.plus, b * p.pos};
}

}  // namespace detail

template <Scalar T, ErrorPolicy P>
T evaluate_kto(const kto& l, const kto_input<T>& in, const kto_output<T>& out, reduction how, P policy) {
  return detail::evaluate_labelled<T>("rpo::evaluate_kto", l.check(), in.logp, in.ref_logp, in.desirable, {}, in.z0,
                                      "z0", out, how, policy, [&](T ratio, bool desirable) {
                                        return detail::kto_term(l, ratio, in.z0, desirable);
                                      });
}

template <Scalar T, ErrorPolicy P>
T evaluate_bco(const bco_unpaired& l, const bco_input<T>& in, const kto_output<T>& out, reduction how, P policy) {
  return detail::evaluate_labelled<T>("rpo::evaluate_bco", l.check(), in.logp, in.ref_logp, in.desirable, in.weight,
                                      in.delta, "delta", out, how, policy, [&](T ratio, bool desirable) {
                                        return detail::bco_term(l, ratio, in.delta, desirable);
                                      });
}

template <Scalar T, ErrorPolicy P>
T evaluate_aot(const aot& l, const batch_input<T>& in, const batch_output<T>& out, reduction how, P policy) {
  constexpr const char* who = "rpo::evaluate_aot";
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  if (!detail::check_batchwise_parameters(who, l.check(), policy)) return nan;
  // rpo::evaluate's shape checks for fixed pairs that read logp and ref_logp: sizes, offsets (every group a pair),
  // the output sizes (group_loss: one per pair, here one per rank), the reduction.
  constexpr detail::loss_shape shape{who, input::logp | input::ref_logp, 2, 2, ranking::none};
  const std::int64_t groups = detail::check_batch_shape(shape, in, out, how, detail::shape_policy(policy));
  if (groups < 0) return nan;
  if (!detail::check_finite_values(who, "logp", in.logp, policy) ||
      !detail::check_finite_values(who, "ref_logp", in.ref_logp, policy))
    return nan;

  // Pair i is responses 2i (chosen) and 2i + 1 (rejected), with or without offsets (they were checked to be pairs).
  // Both forms sort two keys per pair and pair them by rank, δ_(k) = first_(k) − second_(k):
  //   paired:   first = u = logp_c − logp_r,  second = u_ref = ref_c − ref_r;
  //   unpaired: first = ℓ_c = logp_c − ref_c, second = ℓ_r = logp_r − ref_r.
  const auto pairs = static_cast<std::size_t>(groups);
  const T* lp = in.logp.data();
  const T* rp = in.ref_logp.data();
  std::vector<T> first(pairs), second(pairs);
  for (std::size_t i = 0; i < pairs; ++i) {
    const std::size_t c = 2 * i, r = 2 * i + 1;
    first[i] = l.unpaired ? lp[c] - rp[c] : lp[c] - lp[r];
    second[i] = l.unpaired ? lp[r] - rp[r] : rp[c] - rp[r];
  }
  const std::vector<std::size_t> first_order = detail::stable_order(first), second_order = detail::stable_order(second);

  // The sort is a permutation, so (a.e.) ∂L/∂first_i = β·scale·f′(βδ_(k)) for the i of rank k on the first side, and
  // ∂L/∂second_j = −β·scale·f′(βδ_(k)) for the j of rank k on the second side; each index has exactly one rank.
  // Then the chain rule through the keys: u_i = logp_c,i − logp_r,i, ℓ_c,i = logp_c,i − ref_c,i, and so on.
  const T b = T(l.beta), eps = T(l.epsilon);
  const double scale = detail::reduction_scale(how, pairs);
  // Each key is a difference plus[p] − minus[m] of two inputs: ∂L/∂plus[p] = g, ∂L/∂minus[m] = −g.
  const auto put = [](std::span<T> plus, std::size_t p, std::span<T> minus, std::size_t m, T g) {
    if (!plus.empty()) plus[p] = g;
    if (!minus.empty()) minus[m] = -g;
  };
  double total = 0;  // accumulated in double also for float batches
  for (std::size_t k = 0; k < pairs; ++k) {
    const std::size_t i = first_order[k], j = second_order[k];
    const detail::value_slope<T> t = detail::aot_term(b * (first[i] - second[j]), eps);
    if (!out.group_loss.empty()) out.group_loss[k] = t.value;
    total += static_cast<double>(t.value);
    const T d = static_cast<T>(static_cast<double>(b * t.slope) * scale);  // ∂L/∂first_i = −∂L/∂second_j
    if (l.unpaired) {
      put(out.grad_logp, 2 * i, out.grad_ref_logp, 2 * i, d);           // ℓ_c,i = logp_c,i − ref_c,i
      put(out.grad_logp, 2 * j + 1, out.grad_ref_logp, 2 * j + 1, -d);  // ℓ_r,j = logp_r,j − ref_r,j
    } else {
      put(out.grad_logp, 2 * i, out.grad_logp, 2 * i + 1, d);           // u_i = logp_c,i − logp_r,i
      put(out.grad_ref_logp, 2 * j, out.grad_ref_logp, 2 * j + 1, -d);  // u_ref,j = ref_c,j − ref_r,j
    }
  }
  return static_cast<T>(total * scale);
}

namespace detail {

/// rpo::evaluate_weighted after the parameter check, for any loss: `shape` describes it (for the shape checks and
/// messages), and `evaluate_sum(out)` evaluates it on `in` with reduction::sum() under the policy. The one body of the
/// static entry point and of rpo::any_loss::evaluate_weighted.
template <Scalar T, ErrorPolicy P, class EvaluateSum>
T evaluate_weighted_with(const loss_shape& shape, const batch_input<T>& in, std::span<const T> group_weights,
                         const batch_output<T>& out, reduction how, const P& policy, const EvaluateSum& evaluate_sum) {
  constexpr const char* who = "rpo::evaluate_weighted";
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  // rpo::evaluate's shape checks (sizes, offsets, outputs, the reduction), to know G before the weights are read.
  const auto sp = detail::shape_policy(policy);
  const std::int64_t groups = detail::check_batch_shape(shape, in, out, how, sp);
  if (groups < 0) return nan;
  const auto g_count = static_cast<std::size_t>(groups);
  if (group_weights.size() != g_count) {
    detail::fail(sp, errc::invalid_argument,
                 std::string(who) + ": group_weights has " + std::to_string(group_weights.size()) +
                     " entries but the batch has " + std::to_string(g_count) + " groups (one weight per group)");
    return nan;
  }
  if (!detail::check_finite_values(who, "group_weights", group_weights, policy, true)) return nan;

  // The unweighted per-group losses and gradients (reduction::sum(): no scaling yet), written straight into `out`;
  // rpo::evaluate checks every value before it writes anything.
  std::vector<T> group_loss(g_count);
  const T unweighted = evaluate_sum(batch_output<T>{group_loss, out.grad_logp, out.grad_ref_logp});
  if constexpr (std::is_same_v<P, errors::report>) {  // it failed, reported, and wrote nothing
    if (unweighted != unweighted && policy.out != nullptr && !policy.out->ok()) return nan;
  } else {
    (void)unweighted;
  }

  // c_g·L_g, and each response's gradient times c_g·scale (LOSSES.md §1.16: ∂(cL)/∂logp = c·∂L/∂logp).
  const double scale = detail::reduction_scale(how, g_count);
  const std::int64_t fixed = shape.group_size;
  double total = 0;  // in double also for float batches
  for (std::size_t g = 0; g < g_count; ++g) {
    const double c = static_cast<double>(group_weights[g]);
    const double weighted = c * static_cast<double>(group_loss[g]);
    total += weighted;
    if (!out.group_loss.empty()) out.group_loss[g] = static_cast<T>(weighted);
    const auto first = static_cast<std::size_t>(in.offsets.empty() ? static_cast<std::int64_t>(g) * fixed : in.offsets[g]);
    const auto last = static_cast<std::size_t>(in.offsets.empty() ? static_cast<std::int64_t>(g + 1) * fixed
                                                                   : in.offsets[g + 1]);
    const double factor = c * scale;
    for (std::size_t i = first; i < last; ++i) {
      if (!out.grad_logp.empty()) out.grad_logp[i] = static_cast<T>(static_cast<double>(out.grad_logp[i]) * factor);
      if (!out.grad_ref_logp.empty())
        out.grad_ref_logp[i] = static_cast<T>(static_cast<double>(out.grad_ref_logp[i]) * factor);
    }
  }
  return static_cast<T>(total * scale);
}

}  // namespace detail

template <LossLike L, Scalar T, ErrorPolicy P>
T evaluate_weighted(const L& l, const batch_input<T>& in, std::type_identity_t<std::span<const T>> group_weights,
                    const batch_output<T>& out, reduction how, P policy) {
  if (!detail::check_loss_parameters(l, policy)) return std::numeric_limits<T>::quiet_NaN();
  return detail::evaluate_weighted_with(detail::shape_of<L>(), in, group_weights, out, how, policy,
                                        [&](const batch_output<T>& unscaled) {
                                          return evaluate(l, in, unscaled, reduction::sum(), policy);
                                        });
}

// -----------------------------------------------------------------------------------------------------------
// γ-PO
// -----------------------------------------------------------------------------------------------------------

namespace detail {

/// The policy gap a of one pair of γ-PO and its partials in the pair's four inputs (the reward models'
/// expressions: γ-DPO as reward::implicit, γ-SimPO as reward::reference_free_normalized, so that equal margins give
/// rpo::dpo and rpo::simpo to the last bit).
template <class T> struct gamma_po_gap_partials {
  T gap;                ///< a = r_c − r_r
  T d_chosen, d_rejected;          ///< ∂r_c/∂logp_c, ∂r_r/∂logp_r
  T d_ref_chosen, d_ref_rejected;  ///< ∂r_c/∂ref_c, ∂r_r/∂ref_r (0 for γ-SimPO)
};
template <Scalar T>
RPO_HD constexpr gamma_po_gap_partials<T> gamma_po_gap(const gamma_po& l, const T* logp, const T* ref_logp,
                                                       const T* length, std::size_t c, std::size_t r) noexcept {
  if (l.simpo) {
    const T bc = T(l.beta) / length[c], br = T(l.beta) / length[r];
    return {bc * logp[c] - br * logp[r], bc, br, T(0), T(0)};
  }
  const T b = T(l.beta);
  return {b * (logp[c] - ref_logp[c]) - b * (logp[r] - ref_logp[r]), b, b, -b, -b};
}

/// The shape and value checks of rpo::evaluate_gamma_po and rpo::gamma_po_gaps: the parameters, rpo::evaluate's
/// checks for fixed pairs reading logp and ref_logp (γ-DPO) or logp and length (γ-SimPO). Returns B, or −1.
template <Scalar T, ErrorPolicy P>
std::int64_t check_gamma_po_batch(const char* who, const gamma_po& l, const batch_input<T>& in,
                                  const batch_output<T>& out, reduction how, const P& policy) {
  if (!check_batchwise_parameters(who, l.check(), policy)) return -1;
  const loss_shape shape{who, l.simpo ? (input::logp | input::length) : (input::logp | input::ref_logp), 2, 2,
                         ranking::none};
  const std::int64_t groups = check_batch_shape(shape, in, out, how, shape_policy(policy));
  if (groups < 0) return -1;
  const auto at = [](auto s) { return s.empty() ? nullptr : s.data(); };
  const group_ref<T> everything{at(in.logp), at(in.ref_logp), at(in.length), at(in.reward),
                                static_cast<std::int64_t>(in.logp.size())};
  if (!check_group_values(shape, everything, 0, policy)) return -1;
  return groups;
}

/// f(p) of rpo::gamma_po_margins over the n gaps g, f(p) = (1/n)·Σ_j softplus(γ_j − g_j) + τ·Σ_j (p_j + ε)·log(n(p_j +
/// ε)) with γ_j = γ_0·n·p_j, and (into `grad`, if not empty) its partials ∂f/∂p_j = γ_0·σ(γ_j − g_j) + τ(1 + log(n(p_j
/// + ε))). softplus(γ − g) = −log σ(g − γ) and σ(γ − g) come from one exponential (never log σ). In double.
/// LOSSES.md §4.6.
inline double gamma_po_objective(std::span<const double> g, std::span<const double> p, double gamma_0, double tau,
                                 double epsilon, std::span<double> grad) {
  const double n = static_cast<double>(g.size());
  double fit = 0, kl = 0;
  for (std::size_t j = 0; j < g.size(); ++j) {
    const double gamma = gamma_0 * n * p[j];
    const auto s = logistic_of(gamma - g[j]);
    fit += s.softpluses().plus;
    const double q = p[j] + epsilon, log_nq = std::log(n * q);
    kl += q * log_nq;
    if (!grad.empty()) grad[j] = gamma_0 * s.pos + tau * (1 + log_nq);
  }
  return fit / n + tau * kl;
}

}  // namespace detail

template <Scalar T, ErrorPolicy P>
bool gamma_po_gaps(const gamma_po& l, const batch_input<T>& in, std::span<std::type_identity_t<T>> gaps, P policy) {
  constexpr const char* who = "rpo::gamma_po_gaps";
  const std::int64_t groups = detail::check_gamma_po_batch(who, l, in, batch_output<T>{}, reduction::sum(), policy);
  if (groups < 0) return false;
  const auto pairs = static_cast<std::size_t>(groups);
  if (gaps.size() != pairs)
    return detail::fail(detail::shape_policy(policy), errc::invalid_argument,
                        std::string(who) + ": gaps has " + std::to_string(gaps.size()) + " entries but must have " +
                            std::to_string(pairs) + " (one per pair)");
  for (std::size_t i = 0; i < pairs; ++i)
    gaps[i] = detail::gamma_po_gap(l, in.logp.data(), in.ref_logp.data(), in.length.data(), 2 * i, 2 * i + 1).gap;
  return true;
}

template <Scalar T, ErrorPolicy P>
T evaluate_gamma_po(const gamma_po& l, const batch_input<T>& in, std::span<const std::type_identity_t<T>> margins,
                    const batch_output<T>& out, reduction how, P policy) {
  constexpr const char* who = "rpo::evaluate_gamma_po";
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  // Parameters, rpo::evaluate's shape checks (sizes, offsets: every group a pair; outputs; the reduction) and value
  // checks; then the margins: their size (guards memory: also under errors::unchecked), their values.
  const std::int64_t groups = detail::check_gamma_po_batch(who, l, in, out, how, policy);
  if (groups < 0) return nan;
  const auto pairs = static_cast<std::size_t>(groups);
  if (margins.size() != pairs) {
    detail::fail(detail::shape_policy(policy), errc::invalid_argument,
                 std::string(who) + ": margins has " + std::to_string(margins.size()) + " entries but must have " +
                     std::to_string(pairs) + " (one per pair)");
    return nan;
  }
  if (!detail::check_finite_values(who, "margins", margins, policy)) return nan;

  // Pair i is responses 2i (chosen) and 2i + 1 (rejected), with or without offsets (they were checked to be pairs).
  // x = a − (γ_i − γ_0) (γ-DPO) or a − γ_i (γ-SimPO); L = softplus(−x), ∂L/∂x = −σ(−x).
  // The shift γ_i − γ_0 is exactly 0 when γ_i == γ_0, so that x == a and the pair is rpo::dpo's to the last bit.
  const T gamma_0 = static_cast<T>(l.gamma_0());
  const double scale = detail::reduction_scale(how, pairs);
  const auto scaled = [scale](T g) { return detail::scaled(g, scale); };
  const auto put = [](std::span<T> s, std::size_t i, T g) {
    if (!s.empty()) s[i] = g;
  };
  // Summed in double in blocks and chunks of rpo::evaluate's sizes, the sums then added in order: the same sum as
  // rpo::evaluate's, so that equal margins reproduce rpo::dpo's reduced loss to the last bit.
  double total = 0;
  constexpr std::size_t block = detail::pair_block_size;
  alignas(64) T x[block];
  alignas(64) T slope[block];
  detail::gamma_po_gap_partials<T> gaps[block];
  for (std::size_t begin = 0; begin < pairs; begin += static_cast<std::size_t>(detail::groups_per_chunk)) {
    const std::size_t end = std::min(pairs, begin + static_cast<std::size_t>(detail::groups_per_chunk));
    T* const group_loss = out.group_loss.empty() ? nullptr : out.group_loss.data() + begin;
    // A block of pairs at a time, softplus(−x) and −σ(−x) on whole vectors: rpo::evaluate's kernel for rpo::dpo.
    const auto block_of = [&](std::int64_t from, int n, T* value) {
      const std::size_t start = begin + static_cast<std::size_t>(from), count = static_cast<std::size_t>(n);
      for (std::size_t k = 0; k < count; ++k) {
        const std::size_t i = start + k;
        gaps[k] = detail::gamma_po_gap(l, in.logp.data(), in.ref_logp.data(), in.length.data(), 2 * i, 2 * i + 1);
        x[k] = l.simpo ? gaps[k].gap - margins[i] : gaps[k].gap - (margins[i] - gamma_0);
      }
      detail::hard_label_block(distance::logistic{}, x, n, value, slope);
      for (std::size_t k = 0; k < count; ++k) {
        const std::size_t c = 2 * (start + k), r = c + 1;
        const auto& g = gaps[k];
        const T d = slope[k];  // ∂L/∂r_c = d, ∂L/∂r_r = −d
        put(out.grad_logp, c, scaled(d * g.d_chosen));
        put(out.grad_logp, r, scaled(-d * g.d_rejected));
        put(out.grad_ref_logp, c, scaled(d * g.d_ref_chosen));
        put(out.grad_ref_logp, r, scaled(-d * g.d_ref_rejected));
      }
    };
    total += detail::over_blocks(static_cast<std::int64_t>(end - begin), group_loss, false, block_of);
  }
  return static_cast<T>(total * scale);
}

inline gamma_po_margins::gamma_po_margins(const gamma_po& l, const gamma_po_optimizer& opt) noexcept
    : loss_(l), opt_(opt), state_(opt.seed) {}

inline std::uint64_t gamma_po_margins::next_random() noexcept {  // splitmix64 (Steele, Lea, Flood 2014)
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline std::size_t gamma_po_margins::random_below(std::size_t bound) noexcept {  // uniform on [0, bound), no bias
  const std::uint64_t b = bound, threshold = (0 - b) % b;
  std::uint64_t x = next_random();
  while (x < threshold) x = next_random();
  return static_cast<std::size_t>(x % b);
}

inline void gamma_po_margins::push(std::span<const double> gaps) {
  if (opt_.capacity == 0) return;
  for (const double g : gaps) {
    queue_.push_back(g);
    if (queue_.size() > opt_.capacity) queue_.pop_front();
  }
}

template <Scalar T, ErrorPolicy P>
bool gamma_po_margins::compute(std::span<const std::type_identity_t<T>> gaps, std::span<T> margins, P policy) {
  constexpr const char* who = "rpo::gamma_po_margins";
  if (!detail::check_batchwise_parameters(who, loss_.check(), policy) ||
      !detail::check_batchwise_parameters(who, opt_.check(), policy))
    return false;
  const std::size_t b = gaps.size();
  if (margins.size() != b)
    return detail::fail(detail::shape_policy(policy), errc::invalid_argument,
                        detail::size_message(who, "margins", margins.size(), "gaps", b));
  if (!detail::check_finite_values(who, "gaps", gaps, policy)) return false;
  if (b == 0) return true;

  // 1. The optimisation set: m past gaps drawn without replacement (a partial Fisher–Yates shuffle of the queue's
  //    indices), then the B current gaps; n = m + B.
  const std::size_t room = opt_.opt_size > b ? opt_.opt_size - b : 0;
  const std::size_t m = queue_.size() < room ? queue_.size() : room, n = m + b;
  work_gaps_.resize(n);
  work_index_.resize(queue_.size());
  for (std::size_t k = 0; k < work_index_.size(); ++k) work_index_[k] = k;
  for (std::size_t k = 0; k < m; ++k) {
    std::swap(work_index_[k], work_index_[k + random_below(work_index_.size() - k)]);
    work_gaps_[k] = queue_[work_index_[k]];
  }
  for (std::size_t i = 0; i < b; ++i) work_gaps_[m + i] = static_cast<double>(gaps[i]);

  // 2. Exponentiated gradient from the uniform p, in log space: log w_j = log p_j − η·∂f/∂p_j, p = softmax(log w)
  //    (the largest exponent is 0, so no exp overflows). γ is evaluated `iterations` times: iterations − 1 updates.
  const double gamma_0 = loss_.gamma_0(), eta = opt_.step_size(), count = static_cast<double>(n);
  work_p_.assign(n, 1.0 / count);
  work_logw_.resize(n);
  for (int it = 1; it < opt_.iterations; ++it) {
    detail::gamma_po_objective(work_gaps_, work_p_, gamma_0, opt_.tau, opt_.epsilon, work_logw_);
    double top = -std::numeric_limits<double>::infinity();
    for (std::size_t j = 0; j < n; ++j) {
      work_logw_[j] = std::log(work_p_[j]) - eta * work_logw_[j];
      top = work_logw_[j] > top ? work_logw_[j] : top;
    }
    double total = 0;
    for (std::size_t j = 0; j < n; ++j) total += (work_p_[j] = std::exp(work_logw_[j] - top));
    for (double& q : work_p_) q /= total;
  }

  // 3. The current pairs' margins, then the queue.
  for (std::size_t i = 0; i < b; ++i) margins[i] = static_cast<T>(gamma_0 * count * work_p_[m + i]);
  push(std::span<const double>(work_gaps_).subspan(m));
  return true;
}

template <Scalar T, ErrorPolicy P> bool bco_reference_point::push(std::span<const std::type_identity_t<T>> rewards, P policy) {
  constexpr const char* who = "rpo::bco_reference_point::push";
  if constexpr (!std::is_same_v<P, errors::unchecked>) {
    if (!(count >= 0) || !is_finite(mean))
      return detail::fail(policy, errc::invalid_argument,
                          std::string(who) + ": the running state must have count >= 0 and a finite mean, but got "
                                             "count = " + std::to_string(count) + " and mean = " +
                              detail::format_number(mean));
  }
  if (!detail::check_finite_values(who, "rewards", rewards, policy)) return false;
  if (rewards.empty()) return true;
  double total = 0;  // in double also for float batches
  for (const T& r : rewards) total += static_cast<double>(r);
  const auto n = static_cast<std::int64_t>(rewards.size());
  const double batch_mean = total / static_cast<double>(n);
  count += n;
  // The merged mean of (mean, old count) and (batch_mean, n): a weighted update, exact when count was 0.
  mean += (batch_mean - mean) * (static_cast<double>(n) / static_cast<double>(count));
  return true;
}

}  // namespace rpo
