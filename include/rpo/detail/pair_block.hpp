// rpo/detail/pair_block.hpp — pairs evaluated a block at a time, their distance on whole vectors (internal).
//
// Internal names: rpo::detail::evaluates_pair_blocks, rpo::detail::evaluate_pair_block, rpo::detail::hard_label_block,
//                 rpo::detail::target_block, rpo::detail::reward_block, rpo::detail::block_sum, rpo::detail::put_block,
//                 rpo::detail::put_pair_partials, rpo::detail::pair_kernel_block, rpo::detail::scaled,
//                 rpo::detail::over_blocks, rpo::detail::each_vector, rpo::detail::advance,
//                 rpo::detail::hard_label_lanes, rpo::detail::target_lanes, rpo::detail::ratio_lanes,
//                 rpo::detail::margin_adaptive_lanes, rpo::detail::pair_block_size.
// Why: on a million pairs rpo::evaluate spent most of its time in the C library's scalar exp and log1p, called one
// pair after the other. For the pair compositions listed by evaluates_pair_blocks (an rpo::loss of sampling::pair
// with a hard label and the logistic, bwd-KL, focal or DiscoPOP distance, or a finite target and the logistic, bwd-
// or fwd-KL one; an rpo::sum whose first term is one; rpo::extension::pairwise with a logistic kernel; MADPO; the NLL
// term), the batch layer takes the rewards and gaps of a block of pairs (the rewards on vectors where the model has a
// vector form, rpo/detail/reward_lanes.hpp), evaluates the distance on whole vectors (rpo/detail/lane_math.hpp) and
// applies the chain rule (E8). The formulas and their stable forms are those of distance.hpp, math.hpp, reward.hpp
// and extension.hpp, lane by lane, their regimes selected; the values differ from the one-pair kernels by a few ulp (a
// different exp, log1p and log), and do not depend on where a pair sits in the batch (the last vector is padded, not
// evaluated another way) nor on the number of threads. Every other composition keeps the one-group loop.
// @sa docs/batch.md#pair_blocks
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "rpo/concepts.hpp"
#include "rpo/detail/lane_math.hpp"
#include "rpo/detail/reward_lanes.hpp"
#include "rpo/detail/vexp.hpp"
#include "rpo/distance.hpp"
#include "rpo/extension.hpp"
#include "rpo/loss.hpp"
#include "rpo/sampling.hpp"

namespace rpo::detail {

/// The distances whose value and ∂D/∂a at a finite target b have a vector form in target_lanes.
template <class D>
inline constexpr bool has_target_lanes = std::is_same_v<D, distance::logistic> ||
                                         std::is_same_v<D, distance::bernoulli_bwd_kl> ||
                                         std::is_same_v<D, distance::bernoulli_fwd_kl>;

/// The distances whose hard-label limit D(a‖+∞) has a vector form in hard_label_lanes.
template <class D>
inline constexpr bool has_hard_label_lanes =
    std::is_same_v<D, distance::logistic> || std::is_same_v<D, distance::bernoulli_bwd_kl> ||
    std::is_same_v<D, distance::focal> || std::is_same_v<D, distance::discopop>;

/// True for the compositions the batch layer evaluates a block of pairs at a time on T (float or double): an rpo::loss
/// of sampling::pair with a hard-label target and a distance in has_hard_label_lanes, or a finite target and one in
/// has_target_lanes.
template <class C, class T> inline constexpr bool evaluates_pair_blocks = false;
template <class D, class R, class Tg, class T>
inline constexpr bool evaluates_pair_blocks<loss<D, R, Tg, sampling::pair>, T> =
    (std::is_same_v<T, float> || std::is_same_v<T, double>) &&
    (InfiniteTarget<Tg> ? has_hard_label_lanes<D> : has_target_lanes<D>);
/// The kernels of rpo::extension::pairwise with a vector form in ratio_lanes.
template <class K>
inline constexpr bool has_ratio_lanes =
    std::is_same_v<K, extension::robust> || std::is_same_v<K, extension::nca> || std::is_same_v<K, extension::bco> ||
    std::is_same_v<K, extension::apo_zero> || std::is_same_v<K, extension::apo_down> ||
    std::is_same_v<K, extension::dpop> || std::is_same_v<K, extension::dpo_shift>;
/// The pairwise losses outside the template whose kernel has one (robust DPO, NCA, BCO, APO, DPOP, DPO-Shift).
template <class K, class T>
inline constexpr bool evaluates_pair_blocks<extension::pairwise<K>, T> =
    (std::is_same_v<T, float> || std::is_same_v<T, double>) && has_ratio_lanes<K>;
/// MADPO (rpo::extension::margin_adaptive): its weight and loss in margin_adaptive_lanes.
template <class T>
inline constexpr bool evaluates_pair_blocks<extension::margin_adaptive, T> =
    std::is_same_v<T, float> || std::is_same_v<T, double>;
/// The NLL term, one pair at a time within a block (nothing to vectorise), so that sums with it keep their blocks.
template <class T>
inline constexpr bool evaluates_pair_blocks<rpo::nll, T> = std::is_same_v<T, float> || std::is_same_v<T, double>;
/// A weighted sum whose first term does (CPO, IRPO, ORPO, MPO: a preference loss + NLL terms); its second term is
/// taken a block at a time too where it does.
template <class A, class B, class T>
inline constexpr bool evaluates_pair_blocks<rpo::sum<A, B>, T> = evaluates_pair_blocks<A, T>;

/// D(a‖b) and ∂D/∂a on each lane of a and a finite b, for a distance in has_target_lanes: distance.hpp's formulas
/// (∂D/∂b is not needed: sampling::pair reads ∂D/∂a only, b being a constant of the objective).
template <class D, class T>
RPO_DETAIL_LANES void target_lanes(const D&, typename simd<T>::vec a, typename simd<T>::vec b,
                                   typename simd<T>::vec& value, typename simd<T>::vec& slope) noexcept {
  using V = simd<T>;
  const logistic_lanes<T> pa(a), pb(b);
  if constexpr (std::is_same_v<D, rpo::distance::logistic>) {
    value = pb.pos * pa.softplus_minus + pb.neg * pa.softplus_plus;
    slope = sigmoid_difference_lanes(pa, pb);
  } else if constexpr (std::is_same_v<D, rpo::distance::bernoulli_bwd_kl>) {
    value = bregman_softplus_lanes(pa, pb);
    slope = sigmoid_difference_lanes(pa, pb);
  } else {
    static_assert(std::is_same_v<D, rpo::distance::bernoulli_fwd_kl>, "target_lanes: no vector form for this distance");
    value = bregman_softplus_lanes(pb, pa);
    const typename V::vec curvature = pa.pos * pa.neg;  // distance.hpp's slope_times_gap: 0 where it underflows
    slope = curvature == V::splat(T(0)) ? curvature : curvature * (a - b);
  }
}

/// D(a‖+∞) and ∂D/∂a on each lane of a, for a distance in has_hard_label_lanes: distance.hpp's formulas.
template <class D, class T>
RPO_DETAIL_LANES void hard_label_lanes(const D& distance, typename simd<T>::vec a, typename simd<T>::vec& value,
                                       typename simd<T>::vec& slope) noexcept {
  using V = simd<T>;
  using vec = typename V::vec;
  const logistic_lanes<T> pa(a);
  if constexpr (std::is_same_v<D, rpo::distance::logistic> || std::is_same_v<D, rpo::distance::bernoulli_bwd_kl>) {
    // softplus(−a), −σ(−a): the DPO loss (RPO.md §2.2, §10.3).
    value = pa.softplus_minus;
    slope = -pa.neg;
  } else if constexpr (std::is_same_v<D, rpo::distance::focal>) {
    // P^γ·softplus(−a) with P^γ = exp(−γ·softplus(−a)) (LOSSES.md §4.5).
    const vec gamma = V::splat(T(distance.gamma)), sp = pa.softplus_minus;
    const vec weight = V::exp_gradual(-gamma * sp);
    value = weight * sp;
    slope = weight * pa.neg * (gamma * sp - V::splat(T(1)));
  } else {
    static_assert(std::is_same_v<D, rpo::distance::discopop>, "hard_label_lanes: no vector form for this distance");
    // (1 − m)·softplus(−a) + m·e^{−a}, m = σ(a/τ), m·e^{−a} = exp(log σ(a/τ) − a) (LOSSES.md §1.12, §6.4).
    const vec t = V::splat(T(distance.tau));
    const logistic_lanes<T> pz(a / t);
    const vec m = pz.pos, m_bar = pz.neg, sp = pa.softplus_minus;
    const vec e = V::exp_gradual(-pz.softplus_minus - a);
    value = m_bar * sp + e;
    slope = -m_bar * pa.neg + e * (m_bar / t - V::splat(T(1))) - m * m_bar * sp / t;
  }
}

/// The loss and its partials ∂L/∂ℓ_c, ∂L/∂ℓ_r on each lane of the log-ratios ℓ_c, ℓ_r, for a kernel in has_ratio_lanes:
/// the formulas of rpo/extension.hpp, lane by lane (LOSSES.md §1.6–§1.8, §1.11, §4.3, §4.15).
template <class K, class T>
RPO_DETAIL_LANES void ratio_lanes(const K& k, typename simd<T>::vec lc, typename simd<T>::vec lr,
                                  typename simd<T>::vec& value, typename simd<T>::vec& d_chosen,
                                  typename simd<T>::vec& d_rejected) noexcept {
  using V = simd<T>;
  using vec = typename V::vec;
  const vec one = V::splat(T(1)), b = V::splat(T(k.beta));
  if constexpr (std::is_same_v<K, extension::robust>) {
    const T e = T(k.epsilon);
    const vec scale = V::splat(T(1) / (T(1) - T(2) * e)), keep = V::splat(T(1) - e), flip = V::splat(e);
    const logistic_lanes<T> p(b * (lc - lr));
    value = (keep * p.softplus_minus - flip * p.softplus_plus) * scale;
    d_chosen = -b * (keep * p.neg + flip * p.pos) * scale;
    d_rejected = -d_chosen;
  } else if constexpr (std::is_same_v<K, extension::nca>) {
    const vec half = V::splat(T(0.5));
    const logistic_lanes<T> pc(b * lc), pr(b * lr);
    value = pc.softplus_minus + half * pc.softplus_plus + half * pr.softplus_plus;
    d_chosen = b * (half * pc.pos - pc.neg);
    d_rejected = half * b * pr.pos;
  } else if constexpr (std::is_same_v<K, extension::bco>) {
    const vec d = V::splat(T(k.delta));
    const logistic_lanes<T> pc(b * lc - d), pr(b * lr - d);
    value = pc.softplus_minus + pr.softplus_plus;
    d_chosen = -b * pc.neg;
    d_rejected = b * pr.pos;
  } else if constexpr (std::is_same_v<K, extension::apo_zero>) {
    const logistic_lanes<T> pc(b * lc), pr(b * lr);
    value = pc.neg + pr.pos;
    d_chosen = -b * pc.pos * pc.neg;
    d_rejected = b * pr.pos * pr.neg;
  } else if constexpr (std::is_same_v<K, extension::apo_down>) {
    const logistic_lanes<T> pc(b * lc), pa(b * (lc - lr));
    const vec slope_c = pc.pos * pc.neg, slope_a = pa.pos * pa.neg;
    value = pc.pos + pa.neg;
    d_chosen = b * (slope_c - slope_a);
    d_rejected = b * slope_a;
  } else if constexpr (std::is_same_v<K, extension::dpop>) {
    const vec l = V::splat(T(k.lambda)), zero = V::splat(T(0));
    const vec active = lc < zero ? one : zero;
    const logistic_lanes<T> p(b * (lc - lr - l * active * (-lc)));
    value = p.softplus_minus;
    d_chosen = -b * p.neg * (one + l * active);
    d_rejected = b * p.neg;
  } else {
    static_assert(std::is_same_v<K, extension::dpo_shift>, "ratio_lanes: no vector form for this kernel");
    const vec l = V::splat(T(k.lambda));
    const logistic_lanes<T> p(b * (lc - l * lr));
    value = p.softplus_minus;
    d_chosen = -b * p.neg;
    d_rejected = l * b * p.neg;
  }
}

/// The pairs a block holds: a multiple of every vector width, and a few KiB of stack per array.
inline constexpr int pair_block_size = 256;

/// Sets the entries of each input array from n to the end of the last vector to 0, then calls at(i) for the start i of
/// every vector: the one padding rule of the blocks, so that a pair's lanes never depend on where the block ends (the
/// arrays hold pair_block_size entries; the padding's results are not read).
template <class T, class F, class... Inputs> void each_vector(int n, F&& at, Inputs*... inputs) noexcept {
  using V = simd<T>;
  static_assert(pair_block_size % V::lanes == 0);
  const int padded = (n + V::lanes - 1) / V::lanes * V::lanes;
  (std::fill(inputs + n, inputs + padded, T(0)), ...);
  for (int i = 0; i < padded; i += V::lanes) at(i);
}

/// A null pointer, or p + k: a field the loss may not read, moved to a later response.
template <class T> const T* advance(const T* p, std::int64_t k) noexcept { return p == nullptr ? nullptr : p + k; }

/// D(gap[i]‖+∞) into value[i] and ∂D/∂a into slope[i] for i < n ≤ pair_block_size, a vector at a time; the arrays
/// hold pair_block_size entries, and gap's entries from n to the end of the last vector are set to 0 (padding, whose
/// results are not read). What rpo::evaluate_gamma_po shares with the pair blocks (distance::logistic).
/// Another scalar (a dual number, from rpo::evaluate_gamma_po's tests) takes the distance's scalar kernel.
template <class D, class T> void hard_label_block(const D& distance, T* gap, int n, T* value, T* slope) noexcept {
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    using V = simd<T>;
    each_vector<T>(
        n,
        [&](int i) {
          typename V::vec v, s;
          hard_label_lanes<D, T>(distance, V::load(gap + i), v, s);
          V::store(value + i, v);
          V::store(slope + i, s);
        },
        gap);
  } else {
    for (int i = 0; i < n; ++i) {
      const gap_grad<T> d = distance.value_and_grad(gap[i], infinite_target);
      value[i] = d.value;
      slope[i] = d.d_a;
    }
  }
}

/// Σ_i v[i] over i < n in double, in four interleaved partial sums (i mod 4) added as (s0 + s1) + (s2 + s3): a fixed
/// order, so the same bits on every call, without one long chain of dependent additions.
template <class T> double block_sum(const T* v, int n) noexcept {
  double s[4] = {0, 0, 0, 0};
  int i = 0;
  for (; i + 4 <= n; i += 4)
    for (int k = 0; k < 4; ++k) s[k] += static_cast<double>(v[i + k]);
  for (int k = 0; i < n; ++i, ++k) s[k] += static_cast<double>(v[i]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

/// The gradient g scaled by a reduction's factor, as the batch layer scales: rounded to T from the product in double.
template <class T> T scaled(T g, double scale) noexcept {
  return scale == 1 ? g : static_cast<T>(static_cast<double>(g) * scale);
}

/// D(gap[i]‖target[i]) and ∂D/∂a for a finite target, as hard_label_block (both arrays padded with 0).
template <class D, class T>
void target_block(const D& distance, T* gap, T* target, int n, T* value, T* slope) noexcept {
  using V = simd<T>;
  each_vector<T>(
      n,
      [&](int i) {
        typename V::vec v, s;
        target_lanes<D, T>(distance, V::load(gap + i), V::load(target + i), v, s);
        V::store(value + i, v);
        V::store(slope + i, s);
      },
      gap, target);
}

/// Copies a block's n gradients from `from` (in L1) to to[at, at + n), unless `to` is null: with streaming stores when
/// `stream` (simd::stream_copy; simd::stream_fence must follow), with plain ones otherwise.
template <class T> void put_block(T* to, std::int64_t at, const T* from, std::int64_t n, bool stream) noexcept {
  if (to == nullptr) return;
  if (stream)
    simd<T>::stream_copy(to + at, from, n);
  else
    std::copy(from, from + n, to + at);
}

/// Writes sign·d_chosen[i] and sign·d_rejected[i], scaled, as the gradients of responses 2i and 2i + 1 of the block's
/// pairs i < n: into `grad` (L1) first, then to to[first, first + 2n) by put_block; nothing when `to` is null.
template <class T>
void put_pair_partials(T* to, std::int64_t first, const T* d_chosen, const T* d_rejected, T sign, int n, double scale,
                       bool stream, T* grad) noexcept {
  if (to == nullptr) return;
  for (int i = 0; i < n; ++i) {
    grad[2 * i] = scaled(sign * d_chosen[i], scale);
    grad[2 * i + 1] = scaled(sign * d_rejected[i], scale);
  }
  put_block(to, first, grad, 2 * n, stream);
}

/// kernel(x, y, value, d_chosen, d_rejected) on the vectors of x[i], y[i] for i < n (both arrays padded by
/// each_vector), its results stored into value, d_chosen and d_rejected: the vector loop of the evaluators whose kernel
/// takes two inputs per pair and gives the loss and its partials in the chosen and the rejected response.
template <class T, class Kernel>
void pair_kernel_block(int n, T* x, T* y, T* value, T* d_chosen, T* d_rejected, Kernel&& kernel) noexcept {
  using V = simd<T>;
  each_vector<T>(
      n,
      [&](int i) {
        typename V::vec v, dc, dr;
        kernel(V::load(x + i), V::load(y + i), v, dc, dr);
        V::store(value + i, v);
        V::store(d_chosen + i, dc);
        V::store(d_rejected + i, dr);
      },
      x, y);
}

/// The loop every evaluator below shares: for each block of at most pair_block_size pairs from `start` (n of them),
/// body(start, n, value) writes the block's losses into value[0, n) and its gradients; the losses then go to
/// group_loss[start, start + n) (where not null) and into the sum, in double, block by block (block_sum). The streaming
/// stores of the gradients (put_block) are fenced once at the end. rpo::evaluate_gamma_po sums through it too, so that
/// equal margins give rpo::dpo's reduced loss to the last bit (also on dual numbers, which never stream).
template <class T, class Body>
double over_blocks(std::int64_t count, T* group_loss, bool stream, Body&& body) noexcept {
  alignas(64) T value[pair_block_size];
  double sum = 0;
  for (std::int64_t start = 0; start < count; start += pair_block_size) {
    const int n = static_cast<int>(std::min<std::int64_t>(pair_block_size, count - start));
    body(start, n, value);
    if (group_loss != nullptr) std::copy(value, value + n, group_loss + start);
    sum += block_sum(value, n);
  }
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
    if (stream) simd<T>::stream_fence();
  return sum;
}

/// The rewards r_π of responses [0, count) of `run` (count ≤ 2·pair_block_size) and their partials, a vector at a
/// time (reward_lanes), into value, d_logp and d_ref_logp (arrays of 2·pair_block_size entries). Whole vectors are
/// read from the caller's arrays; the last, partial one from a copy padded as each_vector pads.
template <class R, class T>
void reward_block(const R& r, const group_ref<T>& run, int count, T* value, T* d_logp, T* d_ref_logp) noexcept {
  using V = simd<T>;
  constexpr bool reads_ref = contains(R::inputs, input::ref_logp), reads_length = contains(R::inputs, input::length);
  const auto at = [&](const T* logp, const T* ref_logp, const T* length, int i) {
    typename V::vec v, dl, dr;
    reward_lanes<R, T>(r, V::load(logp), reads_ref ? V::load(ref_logp) : V::splat(T(0)),
                       reads_length ? V::load(length) : V::splat(T(1)), v, dl, dr);
    V::store(value + i, v);
    V::store(d_logp + i, dl);
    V::store(d_ref_logp + i, dr);
  };
  const int whole = count / V::lanes * V::lanes;
  for (int i = 0; i < whole; i += V::lanes)
    at(run.logp + i, reads_ref ? run.ref_logp + i : nullptr, reads_length ? run.length + i : nullptr, i);
  if (whole == count) return;
  T logp[V::lanes], ref_logp[V::lanes], length[V::lanes];
  const int rest = count - whole;
  std::copy(run.logp + whole, run.logp + count, logp);
  if (reads_ref) std::copy(run.ref_logp + whole, run.ref_logp + count, ref_logp);
  if (reads_length) std::copy(run.length + whole, run.length + count, length);
  each_vector<T>(rest, [&](int i) { at(logp + i, ref_logp + i, length + i, whole + i); }, logp, ref_logp, length);
}

/// The pairs [0, count) of the arrays (pair i: responses 2i chosen and 2i + 1 rejected; `ref_logp`, `length`, `reward`
/// null when the loss does not read them): writes each pair's loss into group_loss[i] and its gradients, times the
/// reduction's `scale`, into grad_logp and grad_ref_logp (each where not null), and returns the sum of the losses in
/// double, a block at a time (block_sum): what the batch layer's loop over groups gives for evaluates_pair_blocks.
/// The rewards are taken a vector at a time where the model has a vector form (has_reward_lanes), and so is ODPO's
/// offset (has_offset_lanes); a target b that reads no reward is computed once.
template <class D, class R, class Tg, class T>
double evaluate_pair_block(const loss<D, R, Tg, sampling::pair>& l, const T* logp, const T* ref_logp,
                           const T* length, const T* reward, std::int64_t count, T* grad_logp, T* grad_ref_logp,
                           T* group_loss, double scale = 1, bool stream = false) noexcept {
  using V = simd<T>;
  constexpr int block = pair_block_size;
  constexpr bool reads_reward = contains(Tg::inputs, input::reward);
  alignas(64) T gap[block];
  alignas(64) T target[block];      // b, for a finite target
  alignas(64) T difference[block];  // r_c − r_r, for a target's offset in offset_lanes
  alignas(64) T slope[block];
  // The rewards of the block's responses and their partials, for a reward model with a vector form.
  alignas(64) T reward_value[2 * block];
  alignas(64) T reward_d_logp[2 * block];
  alignas(64) T reward_d_ref[2 * block];
  // ∂r_π/∂logp and ∂r_π/∂ref_logp of the block's responses, the rejected one's negated: (E8) with sampling::pair's
  // ∂loss/∂r_π(y₀) = ∂D/∂a = −∂loss/∂r_π(y₁) is then slope[i]·partial[j] for response j of pair i = j/2.
  alignas(64) T d_logp[2 * block];
  alignas(64) T d_ref_logp[2 * block];
  alignas(64) T grad[2 * block];
  T fixed_target = T(0);  // b when it reads no reward: the same for every pair
  if constexpr (!InfiniteTarget<Tg> && !reads_reward) fixed_target = l.target.gap(T(0), T(0));
  return over_blocks(count, group_loss, stream, [&](std::int64_t start, int n, T* value) {
    const std::int64_t first = 2 * start;
    const group_ref<T> run{logp + first, advance(ref_logp, first), advance(length, first), advance(reward, first),
                           2 * static_cast<std::int64_t>(n)};
    if constexpr (has_reward_lanes<R>)
      reward_block(l.reward, run, 2 * n, reward_value, reward_d_logp, reward_d_ref);
    const auto reward_of = [&](int j) {
      if constexpr (has_reward_lanes<R>)
        return reward_grad<T>{reward_value[j], reward_d_logp[j], reward_d_ref[j]};
      else
        return reward_at(l.reward, run, j);
    };
    for (int i = 0; i < n; ++i) {
      const reward_grad<T> chosen = reward_of(2 * i), rejected = reward_of(2 * i + 1);
      const T r0 = reads_reward ? run.reward[2 * i] : T(0);
      const T r1 = reads_reward ? run.reward[2 * i + 1] : T(0);
      if constexpr (has_offset_lanes<Tg>) {
        gap[i] = chosen.value - rejected.value;  // the offset follows, a vector at a time
        difference[i] = r0 - r1;
      } else {
        gap[i] = sampling::detail::shifted_gap(l.target, chosen.value - rejected.value, r0, r1);
      }
      if constexpr (!InfiniteTarget<Tg>) target[i] = reads_reward ? l.target.gap(r0, r1) : fixed_target;
      d_logp[2 * i] = chosen.d_logp;
      d_logp[2 * i + 1] = -rejected.d_logp;
      d_ref_logp[2 * i] = chosen.d_ref_logp;
      d_ref_logp[2 * i + 1] = -rejected.d_ref_logp;
    }
    if constexpr (has_offset_lanes<Tg>) {
      const auto offset = [&](int i) {
        V::store(gap + i, V::load(gap + i) - offset_lanes<Tg, T>(l.target, V::load(difference + i)));
      };
      each_vector<T>(n, offset, difference, gap);
    }
    if constexpr (InfiniteTarget<Tg>)
      hard_label_block(l.distance, gap, n, value, slope);
    else
      target_block(l.distance, gap, target, n, value, slope);
    // Into L1 first, then to the caller's buffer (put_block).
    const auto write = [&](T* to, const T* partial) {
      if (to == nullptr) return;
      for (int j = 0; j < 2 * n; ++j) grad[j] = scaled(slope[j / 2] * partial[j], scale);
      put_block(to, first, grad, 2 * n, stream);
    };
    write(grad_logp, d_logp);
    write(grad_ref_logp, d_ref_logp);
  });
}

/// The same for rpo::extension::pairwise<K> with a kernel in has_ratio_lanes: ℓ = logp − ref_logp per response, the
/// kernel on whole vectors, ∂L/∂logp = ∂L/∂ℓ and ∂L/∂ref_logp = −∂L/∂ℓ.
template <class K, class T>
double evaluate_pair_block(const extension::pairwise<K>& l, const T* logp, const T* ref_logp, const T* /*length*/,
                           const T* /*reward*/, std::int64_t count, T* grad_logp, T* grad_ref_logp, T* group_loss,
                           double scale = 1, bool stream = false) noexcept {
  constexpr int block = pair_block_size;
  alignas(64) T chosen[block];
  alignas(64) T rejected[block];
  alignas(64) T d_chosen[block];
  alignas(64) T d_rejected[block];
  alignas(64) T grad[2 * block];
  return over_blocks(count, group_loss, stream, [&](std::int64_t start, int n, T* value) {
    const std::int64_t first = 2 * start;
    for (int i = 0; i < n; ++i) {
      const std::int64_t c = first + 2 * i;
      chosen[i] = logp[c] - ref_logp[c];
      rejected[i] = logp[c + 1] - ref_logp[c + 1];
    }
    const auto kernel = [&](auto c, auto r, auto& v, auto& dc, auto& dr) {
      ratio_lanes<K, T>(l.kernel, c, r, v, dc, dr);
    };
    pair_kernel_block<T>(n, chosen, rejected, value, d_chosen, d_rejected, kernel);
    put_pair_partials(grad_logp, first, d_chosen, d_rejected, T(1), n, scale, stream, grad);
    put_pair_partials(grad_ref_logp, first, d_chosen, d_rejected, T(-1), n, scale, stream, grad);
  });
}

/// The same for rpo::nll (−logp_c/n_c, ∂/∂logp_c = −1/n_c): no vector form needed, but a block of its own, so that
/// a sum with an NLL term keeps its blocks.
template <class T>
double evaluate_pair_block(const rpo::nll&, const T* logp, const T* /*ref_logp*/, const T* length, const T* /*reward*/,
                           std::int64_t count, T* grad_logp, T* grad_ref_logp, T* group_loss, double scale = 1,
                           bool stream = false) noexcept {
  alignas(64) T grad[2 * pair_block_size];
  alignas(64) T zeros[2 * pair_block_size] = {};
  return over_blocks(count, group_loss, stream, [&](std::int64_t start, int n, T* value) {
    const std::int64_t first = 2 * start;
    for (int i = 0; i < n; ++i) {
      const T size = length[first + 2 * i];
      value[i] = -logp[first + 2 * i] / size;
      grad[2 * i] = scaled(T(-1) / size, scale);
      grad[2 * i + 1] = T(0);
    }
    put_block(grad_logp, first, grad, 2 * n, stream);
    put_block(grad_ref_logp, first, zeros, 2 * n, stream);
  });
}

/// MADPO's weight w(m) and loss on each lane of the gap a and the reward margin m: rpo::extension::margin_adaptive's
/// formulas (LOSSES.md §4.7): w = exp(softplus(−m) − softplus(−c·m)) for m > −τ, else 1, c = c_min + (c_max −
/// c_min)·σ(−(λ(|m| − τ) + log k)), log_k = log k as the scalar kernel rounds it; the loss w·softplus(−a) and
/// ∂L/∂logp_c = −w·β·σ(−a).
template <class T>
RPO_DETAIL_LANES void margin_adaptive_lanes(const extension::margin_adaptive& k, T log_k, typename simd<T>::vec a,
                                            typename simd<T>::vec m, typename simd<T>::vec& value,
                                            typename simd<T>::vec& d_chosen) noexcept {
  using V = simd<T>;
  using vec = typename V::vec;
  const vec tau = V::splat(T(k.tau));
  const logistic_lanes<T> z(V::splat(T(k.lambda)) * ((m < V::splat(T(0)) ? -m : m) - tau) + V::splat(log_k));
  const vec c = V::splat(T(k.c_min)) + V::splat(T(k.c_max - k.c_min)) * z.neg;
  const logistic_lanes<T> pm(m), pcm(c * m);
  const vec w = m > -tau ? V::exp_gradual(pm.softplus_minus - pcm.softplus_minus) : V::splat(T(1));
  const logistic_lanes<T> p(a);
  d_chosen = -w * V::splat(T(k.beta)) * p.neg;
  value = w * p.softplus_minus;
}

/// The same for rpo::extension::margin_adaptive (MADPO): the gaps a and margins r_c − r_r one pair at a time, the
/// weight and loss on whole vectors (margin_adaptive_lanes).
template <class T>
double evaluate_pair_block(const extension::margin_adaptive& l, const T* logp, const T* ref_logp, const T* /*length*/,
                           const T* reward, std::int64_t count, T* grad_logp, T* grad_ref_logp, T* group_loss,
                           double scale = 1, bool stream = false) noexcept {
  constexpr int block = pair_block_size;
  alignas(64) T gap[block];
  alignas(64) T margin[block];
  alignas(64) T d_chosen[block];
  alignas(64) T d_rejected[block];
  alignas(64) T grad[2 * block];
  const T b = T(l.beta), log_k = l.template log_k<T>();
  return over_blocks(count, group_loss, stream, [&](std::int64_t start, int n, T* value) {
    const std::int64_t first = 2 * start;
    for (int i = 0; i < n; ++i) {
      const std::int64_t c = first + 2 * i;
      gap[i] = b * ((logp[c] - ref_logp[c]) - (logp[c + 1] - ref_logp[c + 1]));
      margin[i] = reward[c] - reward[c + 1];
    }
    pair_kernel_block<T>(n, gap, margin, value, d_chosen, d_rejected, [&](auto a, auto m, auto& v, auto& dc, auto& dr) {
      margin_adaptive_lanes<T>(l, log_k, a, m, v, dc);
      dr = -dc;
    });
    put_pair_partials(grad_logp, first, d_chosen, d_rejected, T(1), n, scale, stream, grad);
    put_pair_partials(grad_ref_logp, first, d_chosen, d_rejected, T(-1), n, scale, stream, grad);
  });
}

/// The same for rpo::sum<A, B> whose first term evaluates pair blocks: that term a block at a time, the second one too
/// where it evaluates them (else one pair at a time), combined as rpo::sum::evaluate combines them (w₁·v₁ + w₂·v₂,
/// w₁·g₁ + w₂·g₂).
template <class A, class B, class T>
double evaluate_pair_block(const rpo::sum<A, B>& l, const T* logp, const T* ref_logp, const T* length,
                           const T* reward, std::int64_t count, T* grad_logp, T* grad_ref_logp, T* group_loss,
                           double scale = 1, bool stream = false) noexcept {
  constexpr int block = pair_block_size;
  alignas(64) T term_value[2][block];
  alignas(64) T term_grad[2][2 * block];
  alignas(64) T term_ref[2][2 * block];
  alignas(64) T grad[2 * block];
  alignas(64) T grad_ref[2 * block];
  const T w1 = T(l.first_weight), w2 = T(l.second_weight);
  return over_blocks(count, group_loss, stream, [&](std::int64_t start, int n, T* value) {
    const std::int64_t first = 2 * start;
    const auto term = [&](const auto& loss, int t) {
      evaluate_pair_block(loss, logp + first, advance(ref_logp, first), advance(length, first), advance(reward, first),
                          n, grad_logp != nullptr ? term_grad[t] : nullptr,
                          grad_ref_logp != nullptr ? term_ref[t] : nullptr, term_value[t]);
    };
    term(l.first, 0);
    if constexpr (evaluates_pair_blocks<B, T>) {
      term(l.second, 1);
    } else {
      for (int i = 0; i < n; ++i) {
        const std::int64_t c = first + 2 * i;
        const group_ref<T> pair{logp + c, advance(ref_logp, c), advance(length, c), advance(reward, c), 2};
        term_value[1][i] = l.second.evaluate(pair, grad_logp != nullptr ? &term_grad[1][2 * i] : nullptr,
                                             grad_ref_logp != nullptr ? &term_ref[1][2 * i] : nullptr);
      }
    }
    for (int i = 0; i < n; ++i) value[i] = w1 * term_value[0][i] + w2 * term_value[1][i];
    for (int j = 0; j < 2 * n; ++j) {
      if (grad_logp != nullptr) grad[j] = scaled(w1 * term_grad[0][j] + w2 * term_grad[1][j], scale);
      if (grad_ref_logp != nullptr) grad_ref[j] = scaled(w1 * term_ref[0][j] + w2 * term_ref[1][j], scale);
    }
    put_block(grad_logp, first, grad, 2 * n, stream);
    put_block(grad_ref_logp, first, grad_ref, 2 * n, stream);
  });
}

}  // namespace rpo::detail
