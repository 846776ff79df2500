// rpo/token_weighting.hpp — token-level weightings that a sequence log-prob cannot carry: LD-DPO's
// length-desensitised sequence log-probs and their chain rule, and WPO's per-response weights from the logits.
//
// Public names: rpo::length_desensitized_logp, rpo::length_desensitized_logp_backward, rpo::wpo_weights.
// LOSSES.md §1.17 (LD-DPO; Liu et al., arXiv 2409.06411): for a pair (chosen, rejected) with n_c and n_r response
// tokens and n_min = min(n_c, n_r), each response's sequence log-prob becomes
//   logp̃ = Σ_{k ≤ n_min} log π_k + α·Σ_{k > n_min} log π_k,   α ∈ [0, 1],
// where k counts the response tokens (mask ≠ 0) in order; the same for the reference. Any loss is then evaluated on
// logp̃ and ref̃ (rpo::evaluate). The chain rule: ∂L/∂log π_k = ∂L/∂logp̃ for k ≤ n_min, α·∂L/∂logp̃ for k > n_min.
// The spec-level presets see sequence log-probs only, so LD-DPO is this token-layer reduction followed by any preset.
//
// LOSSES.md §1.16 (WPO; Zhou et al., arXiv 2406.11827, Eq. 2; TRL's `use_weighting`): the weight of a response is
//   w(y) = exp((1/|y|)·Σ_t [log π_t − log Σ_v π(v|·)²]),   log Σ_v π_v² = logsumexp(2z) − 2·logsumexp(z),
// a constant of the objective (no gradient). It is computed from the logits in one streamed pass per response row
// (online max, Σ e^{z−m} and Σ e^{2(z−m)}); the loss of pair i is then weighted by w(y_c,i)·w(y_r,i) with
// rpo::evaluate_weighted (rpo/batchwise.hpp).
// @sa docs/token.md#length_desensitized_logp, docs/token.md#wpo_weights
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/errors.hpp"
#include "rpo/token.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// LD-DPO's sequence log-probs (LOSSES.md §1.17): sequences 2p, 2p + 1 are pair p (chosen, rejected); with
/// n_min = min(n_2p, n_2p+1) response tokens (mask ≠ 0, counted in order), logp[s] = Σ_{k ≤ n_min} token_logp[s,k] +
/// α·Σ_{k > n_min} token_logp[s,k]. α = 1 gives rpo::sequence_logp's sum, α = 0 drops each longer response's tail
/// (its tail is then not read). Call it once with the policy's per-token log-probs and once with the reference's,
/// under the same mask. Sums are taken in double; `shape.vocab` is not read. Checks, before anything is written:
/// S, T ≥ 0 and S even (std::invalid_argument), the sizes (token_logp and mask S·T, logp S), α in [0, 1]
/// (std::invalid_argument, under the error policy). Call it with the scalar type:
/// rpo::length_desensitized_logp<float>(...).  @sa docs/token.md#length_desensitized_logp
template <Scalar T, ErrorPolicy P = errors::throw_on_error>
void length_desensitized_logp(std::type_identity_t<std::span<const T>> token_logp, std::span<const std::uint8_t> mask,
                              token_shape shape, double alpha, std::type_identity_t<std::span<T>> logp, P policy = {});

/// The chain rule through length_desensitized_logp (LOSSES.md §1.17): grad_token_logp[s,t] = grad_logp[s] at the
/// first n_min response tokens of sequence s, α·grad_logp[s] at its later response tokens, 0 at masked positions.
/// Same checks, with grad_logp (S entries) and grad_token_logp (S·T).
/// @sa docs/token.md#length_desensitized_logp_backward
template <Scalar T, ErrorPolicy P = errors::throw_on_error>
void length_desensitized_logp_backward(std::type_identity_t<std::span<const T>> grad_logp,
                                       std::span<const std::uint8_t> mask, token_shape shape, double alpha,
                                       std::type_identity_t<std::span<T>> grad_token_logp, P policy = {});

/// WPO's weight of each response (LOSSES.md §1.16; Zhou et al., arXiv 2406.11827, Eq. 2), into `weight` (S entries):
/// w(y_s) = exp((1/n_s)·Σ_t m_t·[log π(y_t|·) − log Σ_v π(v|·)²]) with log Σ_v π_v² = logsumexp(2z) − 2·logsumexp(z)
/// over the logits z of position t. A constant of the objective: no gradient flows through it. One streamed pass
/// over each response row (the running max m, Σ e^{z−m} and Σ e^{2(z−m)}, rescaled when m grows), so logits of any
/// finite magnitude are fine; sums in double. 0 ≤ w ≤ V (π_t/Σπ² ≤ V·π_t; 0 only by underflow). Weight a pair's
/// loss by w(y_c)·w(y_r) with rpo::evaluate_weighted; nothing is clamped (legacy TRL clamped that product at 1).
/// Checks, before anything is written: as token_logp (shape, sizes, target ids: std::invalid_argument), `weight` has
/// S entries, and, under the error policy, std::domain_error for an empty response (its mean is undefined) and for
/// a non-finite token log-prob.  @sa docs/token.md#wpo_weights
template <Scalar T, ErrorPolicy P = errors::throw_on_error>
void wpo_weights(const token_logits<T>& in, std::type_identity_t<std::span<T>> weight, P policy = {});

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

/// The checks both LD-DPO functions make, before anything is written: the sizes (as sequence_logp), an even number
/// of sequences (pairs), and α in [0, 1] under the error policy (not under errors::unchecked). False after a failure.
template <ErrorPolicy P>
bool check_length_desensitized(const char* who, token_shape shape, std::span<const std::uint8_t> mask,
                               const char* token_name, std::size_t token_size, const char* sequence_name,
                               std::size_t sequence_size, double alpha, const P& policy) {
  const auto sp = shape_policy(policy);
  if (!check_sequence_sizes(sp, who, shape, mask, token_name, token_size, sequence_name, sequence_size)) return false;
  if (shape.sequences % 2 != 0)
    return fail(sp, errc::invalid_argument,
                rule_message(who, "shape.sequences",
                             "must be even (pairs: chosen, rejected, chosen, ...)", static_cast<double>(shape.sequences)));
  if constexpr (!std::is_same_v<P, errors::unchecked>) {
    if (!(alpha >= 0 && alpha <= 1))  // also rejects NaN
      return fail(policy, errc::invalid_parameter, rule_message(who, "alpha", "must be in [0, 1]", alpha));
  }
  return true;
}

/// n_min of the pair that sequence s belongs to: the shorter response length of sequences 2⌊s/2⌋ and 2⌊s/2⌋ + 1.
inline std::int64_t pair_min_length(std::span<const std::uint8_t> mask, std::int64_t s, std::int64_t tokens) {
  const std::int64_t first = s - s % 2;
  const std::int64_t a = response_length(mask, first, tokens), b = response_length(mask, first + 1, tokens);
  return a < b ? a : b;
}

/// One streamed pass over a row of logits x (n entries), the fused pass's row sums with squares
/// (detail::row_exp_sums<T, true> in rpo/token.hpp): the row's log π(y|·) = x_y − m − log s₁ and
/// log π_y − log Σ_v π_v² = x_y − m + log s₁ − log s₂, where m = max x, s₁ = Σ e^{x−m}, s₂ = Σ e^{2(x−m)}
/// (LOSSES.md §1.16: log Σ π² = logsumexp(2x) − 2·logsumexp(x) = log s₂ − 2·log s₁). Every exponent is ≤ 0, so
/// nothing overflows. NaN or +inf in the row, or x_y = −inf, gives a non-finite log π.
struct wpo_row {
  double logp;      ///< log π(y|·)
  double adjusted;  ///< log π(y|·) − log Σ_v π(v|·)²
};
template <class T> wpo_row wpo_row_terms(const T* x, std::int64_t n, std::int64_t y) noexcept {
  const row_sums<T> r = row_exp_sums<T, true>(x, n);  // the fused pass's streamed row sums, with Σ e^{2(x−m)}
  const double top = static_cast<double>(x[y]) - static_cast<double>(r.max), log_s1 = std::log(r.sum);
  return {top - log_s1, top + log_s1 - std::log(r.sum_squares)};
}

}  // namespace detail

template <Scalar T, ErrorPolicy P>
void length_desensitized_logp(std::type_identity_t<std::span<const T>> token_logp, std::span<const std::uint8_t> mask,
                              token_shape shape, double alpha, std::type_identity_t<std::span<T>> logp, P policy) {
  constexpr const char* who = "rpo::length_desensitized_logp";
  if (!detail::check_length_desensitized(who, shape, mask, "token_logp", token_logp.size(), "logp", logp.size(), alpha,
                                         policy))
    return;
  for (std::int64_t s = 0; s < shape.sequences; ++s) {
    const std::int64_t n_min = detail::pair_min_length(mask, s, shape.tokens);
    // LOSSES.md §1.17: head = Σ over the first n_min response tokens, tail = Σ over the later ones.
    double head = 0, tail = 0;
    std::int64_t k = 0;  // response tokens seen so far
    for (std::int64_t t = 0; t < shape.tokens; ++t) {
      const auto i = static_cast<std::size_t>(s * shape.tokens + t);
      if (!mask.empty() && mask[i] == 0) continue;
      if (k++ < n_min) {
        head += static_cast<double>(token_logp[i]);
      } else if (alpha != 0) {  // α = 0 drops the tail without reading it
        tail += static_cast<double>(token_logp[i]);
      }
    }
    logp[static_cast<std::size_t>(s)] = static_cast<T>(head + alpha * tail);
  }
}

template <Scalar T, ErrorPolicy P>
void length_desensitized_logp_backward(std::type_identity_t<std::span<const T>> grad_logp,
                                       std::span<const std::uint8_t> mask, token_shape shape, double alpha,
                                       std::type_identity_t<std::span<T>> grad_token_logp, P policy) {
  constexpr const char* who = "rpo::length_desensitized_logp_backward";
  if (!detail::check_length_desensitized(who, shape, mask, "grad_token_logp", grad_token_logp.size(), "grad_logp",
                                         grad_logp.size(), alpha, policy))
    return;
  for (std::int64_t s = 0; s < shape.sequences; ++s) {
    const std::int64_t n_min = detail::pair_min_length(mask, s, shape.tokens);
    const T head = grad_logp[static_cast<std::size_t>(s)];
    const T tail = static_cast<T>(alpha * static_cast<double>(head));
    std::int64_t k = 0;
    for (std::int64_t t = 0; t < shape.tokens; ++t) {
      const auto i = static_cast<std::size_t>(s * shape.tokens + t);
      if (!mask.empty() && mask[i] == 0) {
        grad_token_logp[i] = T(0);
        continue;
      }
      grad_token_logp[i] = k++ < n_min ? head : tail;
    }
  }
}

template <Scalar T, ErrorPolicy P>
void wpo_weights(const token_logits<T>& in, std::type_identity_t<std::span<T>> weight, P policy) {
  constexpr const char* who = "rpo::wpo_weights";
  const auto sp = detail::shape_policy(policy);
  if (!detail::check_token_logits(who, in, sp)) return;
  const token_shape& shape = in.shape;
  if (!detail::has_size(sp, who, "weight", weight.size(), shape.sequences,
                        "must have sequences = " + std::to_string(shape.sequences)))
    return;
  if constexpr (!std::is_same_v<P, errors::unchecked>) {
    for (std::int64_t s = 0; s < shape.sequences; ++s)
      if (detail::response_length(in.mask, s, shape.tokens) == 0)
        return void(detail::fail(policy, errc::domain_error,
                                 detail::empty_response(who, s, "and its weight, a mean over its response tokens, is undefined")));
  }

  // One pass over each response row: log π_t and log π_t − log Σ_v π_v² (masked rows are not read).
  const std::int64_t rows = shape.sequences * shape.tokens, v = shape.vocab;
  std::vector<double> logp(static_cast<std::size_t>(rows), 0.0), adjusted(static_cast<std::size_t>(rows), 0.0);
  const T* logits = in.logits.data();
  const std::int64_t* target = in.target.data();
  const std::uint8_t* mask = in.mask.empty() ? nullptr : in.mask.data();
  RPO_DETAIL_PARALLEL_FOR
  for (std::int64_t r = 0; r < rows; ++r) {
    if (mask != nullptr && mask[r] == 0) continue;
    const detail::wpo_row t = detail::wpo_row_terms(logits + r * v, v, target[r]);
    logp[static_cast<std::size_t>(r)] = t.logp;
    adjusted[static_cast<std::size_t>(r)] = t.adjusted;
  }
  if constexpr (!std::is_same_v<P, errors::unchecked>) {
    for (std::int64_t r = 0; r < rows; ++r) {
      const double lp = logp[static_cast<std::size_t>(r)];
      if (std::isfinite(lp)) continue;  // masked rows hold 0
      return void(detail::fail(policy, errc::domain_error, detail::nonfinite_token_message(who, r, shape.tokens, lp)));
    }
  }

  // w(y_s) = exp(mean over the response tokens), LOSSES.md §1.16; the mean is ≤ log V, so exp cannot overflow.
  for (std::int64_t s = 0; s < shape.sequences; ++s) {
    double sum = 0;
    for (std::int64_t t = 0; t < shape.tokens; ++t) sum += adjusted[static_cast<std::size_t>(s * shape.tokens + t)];
    const std::int64_t n = detail::response_length(in.mask, s, shape.tokens);
    weight[static_cast<std::size_t>(s)] = static_cast<T>(std::exp(sum / static_cast<double>(n)));
  }
}

}  // namespace rpo
