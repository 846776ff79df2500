// rpo/sampling.hpp — sampling schemes: which contrasts of a group of responses are compared, and how they are
// weighted.
//
// Public names: rpo::sampling::pair.
// Implements RPO.md §2.1 (one pair per prompt, response 0 chosen). The multi-response schemes of RPO.md §3.5
// (leave-one-out, all pairs, best-vs-worst, softmax) join this header with the groups issue.
// A scheme sees the group through two callables: `score(i)` gives r_π(y_i), and `sink(i, g)` receives
// g = ∂loss/∂r_π(y_i). rpo::loss applies the reward model's chain rule; the scheme never sees log-probs.
// @sa docs/sampling.md
#pragma once

#include <cstdint>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"

namespace rpo::sampling {

namespace detail {
/// D(a − γ‖b) for one contrast (first, second), with b from the target and γ the target's shift (0 unless it
/// is a margin); returns D and ∂D/∂a.
template <class D, class Tg, Scalar T>
RPO_HD constexpr gap_grad<T> contrast(const D& distance, const Tg& target, T a, T r_first, T r_second) noexcept {
  if constexpr (ShiftedTarget<Tg>) a -= T(target.shift());
  return distance.value_and_grad(a, target.gap(r_first, r_second));
}
}  // namespace detail

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

}  // namespace rpo::sampling
