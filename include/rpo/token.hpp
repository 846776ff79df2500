// rpo/token.hpp — from per-token log-probs or logits to sequence log-probs, any loss, and back to the tokens.
//
// Public names: rpo::token_shape, rpo::token_reduction, rpo::token_logits, rpo::token_logp,
//               rpo::token_logp_backward, rpo::sequence_logp, rpo::sequence_logp_backward, rpo::token_input,
//               rpo::token_output, rpo::evaluate_tokens.
// RPO.md §1 (ℓ = Σ_t m_t·log π(y_t|·), n = Σ_t m_t, ℓ̄ = ℓ/n) and (E8) per token: ∂L/∂log π(y_t|·) =
// ∂L/∂log π(y)·m_t (/n when length-averaged). With log π(y_t|·) = z_{y_t} − logsumexp(z) over the vocabulary,
// ∂log π(y_t|·)/∂z_v = [v = y_t] − softmax(z)_v.
//
// Two ways in:
//   * unfused: token_logp (logits → per-token log-probs), sequence_logp (→ sequence log-probs), rpo::evaluate,
//     sequence_logp_backward, token_logp_backward (→ ∂loss/∂logits). Each piece can be used alone, e.g. with
//     per-token log-probs from elsewhere.
//   * fused: evaluate_tokens does all of it in two streaming passes over the logits: pass 1 reads each response
//     row once (online max and sum of exponentials per block, O(sequences × tokens) storage), the loss is
//     evaluated on the sequence log-probs, and pass 2 reads each row again and writes its gradient, to a caller
//     buffer or in place over the logits. No temporary of size tokens × vocab. Rows of masked tokens are never
//     read, and their gradient is written as zeros.
// Rows run in parallel under OpenMP when the caller compiles with it (-fopenmp); the exponential is vectorised
// (rpo/detail/vexp.hpp) at the width the compiler targets.
// @sa docs/token.md
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/detail/vexp.hpp"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// The shape of a token batch: `sequences` responses of `tokens` positions each (padded to a common length),
/// over a vocabulary of `vocab` entries. Logits are row-major [sequences][tokens][vocab]; per-token arrays
/// (targets, masks, per-token log-probs) are [sequences][tokens].  @sa docs/token.md#token_shape
struct token_shape {
  std::int64_t sequences = 0;  ///< S ≥ 0
  std::int64_t tokens = 0;     ///< T ≥ 0, positions per sequence
  std::int64_t vocab = 0;      ///< V ≥ 1 (read only by the logits functions)
};

/// How the per-token log-probs of a response make its sequence log-prob (RPO.md §1): the masked `sum`
/// ℓ = Σ_t m_t·log π(y_t|·), or the `mean` over the response length ℓ̄ = ℓ/n with n = Σ_t m_t
/// (NeMo's `preference_average_log_probs`).  @sa docs/token.md#token_reduction
enum class token_reduction : unsigned char { sum, mean };

/// Logits with their target token ids and response mask. Position t of a sequence holds the logits that predict
/// its target token target[t] (shift them before, as trainers do). `mask[t]` ≠ 0 marks a response token; an empty
/// mask marks every position. The target of a masked position is never read (it may be −100).
/// @sa docs/token.md#token_logits
template <Scalar T> struct token_logits {
  std::span<const T> logits{};              ///< S·T·V entries, row-major [S][T][V]
  std::span<const std::int64_t> target{};   ///< S·T token ids in [0, V) at response positions
  std::span<const std::uint8_t> mask{};     ///< S·T entries (0: not a response token), or empty for all
  token_shape shape{};                      ///< S, T, V
};

/// Per-token log-probs log π(y_t|·) = z_{y_t} − logsumexp_v z_v for every response position, 0 at masked ones,
/// into `token_logp` (S·T entries). Checks the shape, the sizes and the target ids (a std::invalid_argument
/// names the argument and value), and, under the error policy, that every response row gives a finite log-prob
/// (std::domain_error naming the sequence and token).  @sa docs/token.md#token_logp
template <Scalar T, ErrorPolicy P = errors::throw_on_error>
void token_logp(const token_logits<T>& in, std::type_identity_t<std::span<T>> token_logp, P policy = {});

/// The chain rule through token_logp: ∂loss/∂z_v = g_t·([v = y_t] − softmax(z)_v) for each response position
/// with g_t = grad_token_logp[t], and 0 at masked positions, into `grad_logits` (S·T·V entries; it may be the
/// logits' own memory). Same checks as token_logp.  @sa docs/token.md#token_logp_backward
template <Scalar T, ErrorPolicy P = errors::throw_on_error>
void token_logp_backward(const token_logits<T>& in, std::type_identity_t<std::span<const T>> grad_token_logp,
                         std::type_identity_t<std::span<T>> grad_logits, P policy = {});

/// Sequence log-probs from per-token log-probs (RPO.md §1): logp[s] = Σ_t m_t·token_logp[s,t], or that over
/// n_s = Σ_t m_t for token_reduction::mean; `length` (optional, S entries) receives n_s. Sums are taken in double.
/// `shape.vocab` is not read. A mean over an empty response is a std::domain_error naming the sequence.
/// Call it with the scalar type: rpo::sequence_logp<float>(...).  @sa docs/token.md#sequence_logp
template <Scalar T, ErrorPolicy P = errors::throw_on_error>
void sequence_logp(std::type_identity_t<std::span<const T>> token_logp, std::span<const std::uint8_t> mask,
                   token_shape shape, token_reduction how, std::type_identity_t<std::span<T>> logp,
                   std::type_identity_t<std::span<T>> length = {}, P policy = {});

/// The chain rule through sequence_logp (RPO.md (E8) per token): grad_token_logp[s,t] = grad_logp[s]·m_t, over
/// n_s for token_reduction::mean.  @sa docs/token.md#sequence_logp_backward
template <Scalar T, ErrorPolicy P = errors::throw_on_error>
void sequence_logp_backward(std::type_identity_t<std::span<const T>> grad_logp, std::span<const std::uint8_t> mask,
                            token_shape shape, token_reduction how,
                            std::type_identity_t<std::span<T>> grad_token_logp, P policy = {});

/// The input of the fused pass: the token batch, how tokens make sequence log-probs, and the sequence-level
/// fields of rpo::batch_input that the loss may read. Sequence s is response s of the batch (groups by `offsets`,
/// or consecutive runs of the scheme's size: chosen, rejected, chosen, ... for pairs). `ref_logp` must be made the
/// same way as the policy's (summed, or averaged when `per_sequence` is mean); it is a constant.
/// @sa docs/token.md#token_input
template <Scalar T> struct token_input {
  token_logits<T> tokens{};                            ///< logits, target ids, response mask, shape
  token_reduction per_sequence = token_reduction::sum; ///< sum, or mean over the response length
  std::span<const T> ref_logp{};                       ///< S reference sequence log-probs, if the loss reads them
  std::span<const T> reward{};                         ///< S explicit rewards, if the loss reads them
  std::span<const std::int64_t> offsets{};             ///< G + 1 group boundaries, or empty (see batch_input)
};

/// Where the fused pass writes. `grad_logits` (S·T·V entries, required) may be the logits' own memory: the
/// gradient then replaces them. The others are optional (empty: not wanted).  @sa docs/token.md#token_output
template <Scalar T> struct token_output {
  std::span<T> grad_logits{};  ///< ∂(reduced loss)/∂logits, S·T·V entries; may alias the logits
  std::span<T> logp{};         ///< S sequence log-probs, as sequence_logp gives them
  std::span<T> length{};       ///< S response lengths n_s = Σ_t m_t
  std::span<T> group_loss{};   ///< G per-group losses, before reduction
};

/// The fused pass: logits → per-token log-probs → sequence log-probs → the loss `l` → ∂(reduced loss)/∂logits
/// (RPO.md §1 and (E8)). Returns the reduced loss, as rpo::evaluate does on the same sequence log-probs. Reads
/// each response row of the logits twice and writes each row of the gradient once; extra memory is O(S·T).
/// Length-normalised rewards read the response length n_s = Σ_t m_t; an empty response (all-zero mask) is then a
/// std::domain_error naming the sequence, as is a mean over an empty response. Every check happens before the
/// gradient is written: a call that fails leaves `out` and the logits untouched.  @sa docs/token.md#evaluate_tokens
template <LossLike L, Scalar T, ErrorPolicy P = errors::throw_on_error>
T evaluate_tokens(const L& l, const token_input<T>& in, const token_output<T>& out,
                  reduction how = reduction::mean(), P policy = {});

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

#if defined(__GNUC__) || defined(__clang__)
#  define RPO_DETAIL_PREFETCH(address) __builtin_prefetch(address)
#else
#  define RPO_DETAIL_PREFETCH(address)
#endif

/// The running max m of one row and s₁ = Σ_v e^{x_v − m} (and, with `squares`, s₂ = Σ_v e^{2(x_v − m)}, which WPO's
/// weights need: rpo/token_weighting.hpp), online over blocks that stay in L1, so the row is read once from memory.
/// Per block: its max b, then the running sums rescaled by e^{m − b} (s₂ by its square) when b exceeds the running
/// max m, then the block's e^{x − m} ≤ 1 (the stable "subtract the max" form, STYLE.md §4.5). Sums in double. NaN or
/// +inf in the row gives a non-finite s₁.
template <class T> struct row_sums {
  T max;
  double sum;
  double sum_squares;
};
template <class T, bool squares = false> row_sums<T> row_exp_sums(const T* x, std::int64_t n) noexcept {
  using V = simd<T>;
  constexpr std::int64_t block = 2048;
  constexpr std::int64_t w = V::lanes;
  constexpr T minus_inf = -std::numeric_limits<T>::infinity();
  T m = minus_inf;
  double s = 0, s2 = 0;
  for (std::int64_t b = 0; b < n; b += block) {
    const std::int64_t len = n - b < block ? n - b : block;
    const T* p = x + b;
    const std::int64_t full = len - len % w;
    typename V::vec vm = V::splat(minus_inf);
    for (std::int64_t i = 0; i < full; i += w) vm = V::max(vm, V::load(p + i));
    T bm = V::reduce_max(vm);
    for (std::int64_t i = full; i < len; ++i) bm = p[i] > bm ? p[i] : bm;
    if (bm > m) {
      const double shrink = std::exp(static_cast<double>(m) - static_cast<double>(bm));  // 0 while m = −inf
      s *= shrink;
      if constexpr (squares) s2 *= shrink * shrink;
      m = bm;
    }
    if (!(m > minus_inf)) continue;  // all −inf so far (or NaN only): nothing to add yet
    const typename V::vec vmax = V::splat(m);
    typename V::vec acc = V::splat(T(0)), acc2 = V::splat(T(0));
    // While the exponentials of this block run from L1, the next block is fetched (a prefetch never faults, so
    // addresses past the row's end are harmless): memory and arithmetic overlap instead of taking turns.
    const auto add = [&](typename V::vec e) {
      acc += e;
      if constexpr (squares) acc2 += e * e;
    };
    for (std::int64_t i = 0; i < full; i += w) {
      RPO_DETAIL_PREFETCH(p + block + i);
      add(V::exp_nonpositive(V::load(p + i) - vmax));
    }
    if (full < len) add(V::exp_nonpositive(V::load_partial(p + full, static_cast<int>(len - full), minus_inf) - vmax));
    s += V::reduce_sum(acc);
    if constexpr (squares) s2 += V::reduce_sum(acc2);
  }
  return {m, s, s2};
}

/// log Σ_v e^{x_v} of one row (row_exp_sums): m + log s₁; NaN or +inf in the row gives a non-finite result.
template <class T> T row_logsumexp(const T* x, std::int64_t n) noexcept {
  const row_sums<T> r = row_exp_sums<T>(x, n);
  if (r.sum != r.sum) return std::numeric_limits<T>::quiet_NaN();
  return static_cast<T>(static_cast<double>(r.max) + std::log(r.sum));
}

/// One row of ∂/∂z of c·log π(y|·): g_v = −c·e^{x_v − lse} for v ≠ y, g_y = c·(1 − p_y) = −c·expm1(logp_y), the
/// stable form of the target's entry. `g` may be `x`, except with `stream` (streaming stores into a separate buffer).
template <class T, bool stream = false>
void row_gradient(const T* x, T* g, std::int64_t n, T lse, T c, std::int64_t y, T logp_y) noexcept {
  using V = simd<T>;
  constexpr std::int64_t w = V::lanes;
  const typename V::vec vlse = V::splat(lse), vc = V::splat(-c);
  const auto part = [&](std::int64_t i, int count) {
    V::store_partial(g + i, vc * V::exp_nonpositive(V::load_partial(x + i, count, T(0)) - vlse), count);
  };
  std::int64_t i = 0;
  if constexpr (stream) {  // a head up to the first vector-aligned address of g, where the streaming stores start
    constexpr std::uintptr_t bytes = sizeof(typename V::vec);
    const auto misaligned = static_cast<std::int64_t>(reinterpret_cast<std::uintptr_t>(g) % bytes / sizeof(T));
    const std::int64_t head = misaligned == 0 ? 0 : std::min<std::int64_t>(n, w - misaligned);
    if (head > 0) part(0, static_cast<int>(head));
    i = head;
  }
  constexpr std::int64_t ahead = 1024;  // elements; prefetched as in row_logsumexp
  for (; i + w <= n; i += w) {
    RPO_DETAIL_PREFETCH(x + ahead + i);
    const typename V::vec value = vc * V::exp_nonpositive(V::load(x + i) - vlse);
    if constexpr (stream) {
      V::stream(g + i, value);
    } else {
      V::store(g + i, value);
    }
  }
  if (i < n) part(i, static_cast<int>(n - i));
  if constexpr (stream) V::stream_fence();
  g[y] = static_cast<T>(-static_cast<double>(c) * std::expm1(static_cast<double>(logp_y)));
}

inline std::string token_message(const char* who, const char* name, std::int64_t got, const std::string& rule) {
  return std::string(who) + ": " + name + " has " + std::to_string(got) + " entries but " + rule;
}

/// The size check of every token-layer argument: true when `got` is `want` (or 0 when the argument is `optional`),
/// else a failure under `policy` reading "who: name has got entries but rule".
template <class P>
bool has_size(const P& policy, const char* who, const char* name, std::size_t got, std::int64_t want,
              const std::string& rule, bool optional = false) {
  if (static_cast<std::int64_t>(got) == want || (optional && got == 0)) return true;
  return fail(policy, errc::invalid_argument, token_message(who, name, static_cast<std::int64_t>(got), rule));
}

/// Checks the shape and that the logits, targets and mask have its sizes (rpo/cuda/token.cuh checks its device
/// spans with it too). Throws (or reports) std::invalid_argument naming the argument and the value; returns false
/// after a failure.
template <ErrorPolicy P>
bool check_token_sizes(const char* who, const token_shape& s, std::size_t logits, std::size_t target, std::size_t mask,
                       const P& policy) {
  if (s.sequences < 0) return fail(policy, errc::invalid_argument, rule_message(who, "shape.sequences", "must be >= 0", static_cast<double>(s.sequences)));
  if (s.tokens < 0) return fail(policy, errc::invalid_argument, rule_message(who, "shape.tokens", "must be >= 0", static_cast<double>(s.tokens)));
  if (s.vocab < 1) return fail(policy, errc::invalid_argument, rule_message(who, "shape.vocab", "must be >= 1", static_cast<double>(s.vocab)));
  const std::int64_t rows = s.sequences * s.tokens;
  const auto dims = std::to_string(s.sequences) + " x " + std::to_string(s.tokens);
  const std::string per_token = "must have sequences x tokens = " + dims + " = " + std::to_string(rows);
  return has_size(policy, who, "logits", logits, rows * s.vocab,
                  "must have sequences x tokens x vocab = " + dims + " x " + std::to_string(s.vocab) + " = " +
                      std::to_string(rows * s.vocab)) &&
         has_size(policy, who, "target", target, rows, per_token) &&
         has_size(policy, who, "mask", mask, rows, per_token + " (or none)", true);
}

/// The message for target id `y` at row `r` (sequence r / tokens, token r % tokens) outside [0, vocab).
inline std::string bad_target_message(const char* who, std::int64_t r, const token_shape& s, std::int64_t y) {
  return std::string(who) + ": target[" + std::to_string(r) + "] (sequence " + std::to_string(r / s.tokens) +
         ", token " + std::to_string(r % s.tokens) + ") must be a token id in [0, vocab = " + std::to_string(s.vocab) +
         "), but got target[" + std::to_string(r) + "] = " + std::to_string(y);
}

/// The message for a response row `r` whose token log-prob `value` is not finite.
inline std::string nonfinite_token_message(const char* who, std::int64_t r, std::int64_t tokens, double value) {
  return std::string(who) + ": the log-prob of target[" + std::to_string(r) + "] (sequence " +
         std::to_string(r / tokens) + ", token " + std::to_string(r % tokens) + ") must be finite, but got " +
         format_number(value) + " (its logits hold a NaN or +inf, or the target's logit is -inf)";
}

/// Checks the shape, that every span has its size, and the target ids of response positions. Throws (or reports)
/// std::invalid_argument naming the argument and the value; returns false after a failure.
template <Scalar T, ErrorPolicy P>
bool check_token_logits(const char* who, const token_logits<T>& in, const P& policy) {
  const token_shape& s = in.shape;
  if (!check_token_sizes(who, s, in.logits.size(), in.target.size(), in.mask.size(), policy)) return false;
  const std::int64_t rows = s.sequences * s.tokens;
  for (std::int64_t r = 0; r < rows; ++r) {
    const auto ur = static_cast<std::size_t>(r);
    if (!in.mask.empty() && in.mask[ur] == 0) continue;
    const std::int64_t y = in.target[ur];
    if (y < 0 || y >= s.vocab) return fail(policy, errc::invalid_argument, bad_target_message(who, r, s, y));
  }
  return true;
}

/// Pass 1 over the response rows: lse[r] = logsumexp of row r and token_logp[r] = z_y − lse[r]; 0 and 0 at masked
/// rows, which are not read. Then, under the policy, the first response row whose log-prob is not finite is an
/// error naming it.
template <Scalar T, ErrorPolicy P>
bool forward_rows(const char* who, const token_logits<T>& in, T* lse, T* token_logp, const P& policy) {
  const std::int64_t rows = in.shape.sequences * in.shape.tokens, v = in.shape.vocab;
  const T* logits = in.logits.data();
  const std::int64_t* target = in.target.data();
  const std::uint8_t* mask = in.mask.empty() ? nullptr : in.mask.data();
  RPO_DETAIL_PARALLEL_FOR
  for (std::int64_t r = 0; r < rows; ++r) {
    if (mask != nullptr && mask[r] == 0) {
      lse[r] = T(0);
      token_logp[r] = T(0);
      continue;
    }
    const T* row = logits + r * v;
    const T l = row_logsumexp(row, v);
    lse[r] = l;
    token_logp[r] = row[target[r]] - l;
  }
  if constexpr (!std::is_same_v<P, errors::unchecked>) {
    for (std::int64_t r = 0; r < rows; ++r) {
      if (is_finite(token_logp[r])) continue;
      return fail(policy, errc::domain_error,
                  nonfinite_token_message(who, r, in.shape.tokens, static_cast<double>(token_logp[r])));
    }
  }
  return true;
}

/// Pass 2: row r of the gradient is c[r]·([v = y] − softmax_v), zeros at masked rows. `grad` may be the logits.
template <Scalar T>
void backward_rows(const token_logits<T>& in, const T* lse, const T* token_logp, const T* c, T* grad) {
  const std::int64_t rows = in.shape.sequences * in.shape.tokens, v = in.shape.vocab;
  const T* logits = in.logits.data();
  const std::int64_t* target = in.target.data();
  const std::uint8_t* mask = in.mask.empty() ? nullptr : in.mask.data();
  // Into a caller buffer, the gradient is written with streaming stores: its lines are never read, and a plain store
  // would first fetch each one (docs/performance.md: 0.70 of the floor before, against 0.9-1.0 in place).
  const bool stream = simd<T>::streams && grad != logits;
  RPO_DETAIL_PARALLEL_FOR
  for (std::int64_t r = 0; r < rows; ++r) {
    T* g = grad + r * v;
    if (mask != nullptr && mask[r] == 0) {
      for (std::int64_t i = 0; i < v; ++i) g[i] = T(0);
      continue;
    }
    if (stream) {
      row_gradient<T, true>(logits + r * v, g, v, lse[r], c[r], target[r], token_logp[r]);
    } else {
      row_gradient(logits + r * v, g, v, lse[r], c[r], target[r], token_logp[r]);
    }
  }
}

/// n_s = Σ_t m_t of each sequence.
inline std::int64_t response_length(std::span<const std::uint8_t> mask, std::int64_t s, std::int64_t tokens) {
  if (mask.empty()) return tokens;
  std::int64_t n = 0;
  for (std::int64_t t = 0; t < tokens; ++t) n += mask[static_cast<std::size_t>(s * tokens + t)] != 0 ? 1 : 0;
  return n;
}

inline std::string empty_response(const char* who, std::int64_t s, const char* why) {
  return std::string(who) + ": sequence " + std::to_string(s) + " has an empty response (its mask is all zero, length = 0), " + why;
}

/// The fused pass's check of one response length n of sequence s: an empty response is an error (std::domain_error
/// naming the sequence) when its sequence log-prob is a mean (`per_sequence`) or the loss reads lengths
/// (`needs_length`). False after failing under `sp`.
template <class SP>
bool check_response_length(const SP& sp, const char* who, std::int64_t s, std::int64_t n, token_reduction per_sequence,
                           bool needs_length) {
  if (n > 0) return true;
  if (per_sequence == token_reduction::mean)
    return fail(sp, errc::domain_error,
                empty_response(who, s, "and the mean over its response tokens (per_sequence = mean) is undefined"));
  if (needs_length)
    return fail(sp, errc::domain_error,
                empty_response(who, s, "but this loss normalises its reward by the response length"));
  return true;
}

/// The checks sequence_logp and sequence_logp_backward share: S, T ≥ 0, the per-token array `token_name` (S·T
/// entries), the mask (S·T, or none) and the per-sequence array `sequence_name` (S entries); false after failing
/// under `sp` with a message naming the argument.
template <class SP>
bool check_sequence_sizes(const SP& sp, const char* who, token_shape shape, std::span<const std::uint8_t> mask,
                          const char* token_name, std::size_t token_size, const char* sequence_name,
                          std::size_t sequence_size) {
  if (shape.sequences < 0 || shape.tokens < 0) {
    fail(sp, errc::invalid_argument,
         rule_message(who, shape.sequences < 0 ? "shape.sequences" : "shape.tokens", "must be >= 0",
                      static_cast<double>(shape.sequences < 0 ? shape.sequences : shape.tokens)));
    return false;
  }
  const std::int64_t rows = shape.sequences * shape.tokens;
  const std::string want = "must have sequences x tokens = " + std::to_string(rows);
  return has_size(sp, who, token_name, token_size, rows, want) &&
         has_size(sp, who, "mask", mask.size(), rows, want + " (or none)", true) &&
         has_size(sp, who, sequence_name, sequence_size, shape.sequences,
                  "must have sequences = " + std::to_string(shape.sequences));
}

/// The logits' checks, then the size of a per-token array `name` (sequences × tokens): what token_logp and
/// token_logp_backward check before they read anything.
template <Scalar T, class SP>
bool check_token_rows(const char* who, const token_logits<T>& in, const char* name, std::size_t size, const SP& sp) {
  if (!check_token_logits(who, in, sp)) return false;
  const std::int64_t rows = in.shape.sequences * in.shape.tokens;
  return has_size(sp, who, name, size, rows, "must have sequences x tokens = " + std::to_string(rows));
}

}  // namespace detail

template <Scalar T, ErrorPolicy P>
void token_logp(const token_logits<T>& in, std::type_identity_t<std::span<T>> token_logp, P policy) {
  constexpr const char* who = "rpo::token_logp";
  if (!detail::check_token_rows(who, in, "token_logp", token_logp.size(), detail::shape_policy(policy))) return;
  const std::int64_t rows = in.shape.sequences * in.shape.tokens;
  std::vector<T> lse(static_cast<std::size_t>(rows));
  detail::forward_rows(who, in, lse.data(), token_logp.data(), policy);
}

template <Scalar T, ErrorPolicy P>
void token_logp_backward(const token_logits<T>& in, std::type_identity_t<std::span<const T>> grad_token_logp,
                         std::type_identity_t<std::span<T>> grad_logits, P policy) {
  constexpr const char* who = "rpo::token_logp_backward";
  const auto shape_policy = detail::shape_policy(policy);
  if (!detail::check_token_rows(who, in, "grad_token_logp", grad_token_logp.size(), shape_policy)) return;
  const std::int64_t rows = in.shape.sequences * in.shape.tokens;
  if (!detail::has_size(shape_policy, who, "grad_logits", grad_logits.size(), rows * in.shape.vocab,
                        "must have as many as logits, " + std::to_string(rows * in.shape.vocab)))
    return;
  std::vector<T> lse(static_cast<std::size_t>(rows)), logp(static_cast<std::size_t>(rows));
  if (!detail::forward_rows(who, in, lse.data(), logp.data(), policy)) return;
  detail::backward_rows(in, lse.data(), logp.data(), grad_token_logp.data(), grad_logits.data());
}

template <Scalar T, ErrorPolicy P>
void sequence_logp(std::type_identity_t<std::span<const T>> token_logp, std::span<const std::uint8_t> mask,
                   token_shape shape, token_reduction how, std::type_identity_t<std::span<T>> logp,
                   std::type_identity_t<std::span<T>> length, P policy) {
  constexpr const char* who = "rpo::sequence_logp";
  const auto sp = detail::shape_policy(policy);
  if (!detail::check_sequence_sizes(sp, who, shape, mask, "token_logp", token_logp.size(), "logp", logp.size())) return;
  if (!detail::has_size(sp, who, "length", length.size(), shape.sequences,
                        "must have sequences = " + std::to_string(shape.sequences) + " (or none)", true))
    return;
  if (how == token_reduction::mean)
    for (std::int64_t s = 0; s < shape.sequences; ++s)
      if (detail::response_length(mask, s, shape.tokens) == 0)
        return void(detail::fail(sp, errc::domain_error,
                                 detail::empty_response(who, s, "and the mean over its response tokens is undefined")));
  for (std::int64_t s = 0; s < shape.sequences; ++s) {
    double sum = 0;
    for (std::int64_t t = 0; t < shape.tokens; ++t) {
      const auto i = static_cast<std::size_t>(s * shape.tokens + t);
      if (mask.empty() || mask[i] != 0) sum += static_cast<double>(token_logp[i]);
    }
    const std::int64_t n = detail::response_length(mask, s, shape.tokens);
    const auto us = static_cast<std::size_t>(s);
    logp[us] = static_cast<T>(how == token_reduction::mean ? sum / static_cast<double>(n) : sum);
    if (!length.empty()) length[us] = static_cast<T>(n);
  }
}

template <Scalar T, ErrorPolicy P>
void sequence_logp_backward(std::type_identity_t<std::span<const T>> grad_logp, std::span<const std::uint8_t> mask,
                            token_shape shape, token_reduction how, std::type_identity_t<std::span<T>> grad_token_logp,
                            P policy) {
  constexpr const char* who = "rpo::sequence_logp_backward";
  const auto sp = detail::shape_policy(policy);
  if (!detail::check_sequence_sizes(sp, who, shape, mask, "grad_token_logp", grad_token_logp.size(), "grad_logp",
                                    grad_logp.size()))
    return;
  for (std::int64_t s = 0; s < shape.sequences; ++s) {
    const std::int64_t n = detail::response_length(mask, s, shape.tokens);
    if (how == token_reduction::mean && n == 0)
      return void(detail::fail(sp, errc::domain_error,
                               detail::empty_response(who, s, "and the mean over its response tokens is undefined")));
    const double g = static_cast<double>(grad_logp[static_cast<std::size_t>(s)]);
    const T per_token = static_cast<T>(how == token_reduction::mean ? g / static_cast<double>(n) : g);
    for (std::int64_t t = 0; t < shape.tokens; ++t) {
      const auto i = static_cast<std::size_t>(s * shape.tokens + t);
      grad_token_logp[i] = (mask.empty() || mask[i] != 0) ? per_token : T(0);
    }
  }
}

namespace detail {

/// rpo::evaluate_tokens for any loss: `who` names it in messages, `needs_length` says whether it reads response
/// lengths, and `evaluate_sequences(batch, batch_output)` evaluates it on the sequence log-probs (rpo::evaluate with
/// the reduction, under the policy). The one body of the static entry point and of rpo::any_loss::evaluate_tokens.
template <Scalar T, ErrorPolicy P, class EvaluateSequences>
T evaluate_tokens_with(const char* who, bool needs_length, const token_input<T>& in, const token_output<T>& out,
                       const P& policy, const EvaluateSequences& evaluate_sequences) {
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  const auto sp = detail::shape_policy(policy);
  const token_logits<T>& tok = in.tokens;
  if (!detail::check_token_logits(who, tok, sp)) return nan;
  const std::int64_t s_count = tok.shape.sequences, rows = s_count * tok.shape.tokens;
  const std::string one_per_sequence = "must have one per sequence, " + std::to_string(s_count) + ", or none";
  if (!detail::has_size(sp, who, "grad_logits", out.grad_logits.size(), rows * tok.shape.vocab,
                        "must have as many as logits, " + std::to_string(rows * tok.shape.vocab) +
                            " (it may be the logits' own memory)") ||
      !detail::has_size(sp, who, "logp", out.logp.size(), s_count, one_per_sequence, true) ||
      !detail::has_size(sp, who, "length", out.length.size(), s_count, one_per_sequence, true))
    return nan;

  // Response lengths, and the clear error for an empty response where the loss or the mean needs its length.
  std::vector<T> length(static_cast<std::size_t>(s_count));
  for (std::int64_t s = 0; s < s_count; ++s) {
    const std::int64_t n = detail::response_length(tok.mask, s, tok.shape.tokens);
    length[static_cast<std::size_t>(s)] = static_cast<T>(n);
    if (!detail::check_response_length(sp, who, s, n, in.per_sequence, needs_length)) return nan;
  }

  // Pass 1: one read of each response row.
  std::vector<T> lse(static_cast<std::size_t>(rows)), token_lp(static_cast<std::size_t>(rows));
  if (!detail::forward_rows(who, tok, lse.data(), token_lp.data(), policy)) return nan;
  std::vector<T> logp(static_cast<std::size_t>(s_count));
  sequence_logp<T>(token_lp, tok.mask, tok.shape, in.per_sequence, logp, {}, errors::throw_on_error{});

  // The loss on the sequence log-probs (all of its checks happen here, before any gradient is written).
  std::vector<T> grad_logp(static_cast<std::size_t>(s_count));
  const batch_input<T> batch{.logp = logp, .ref_logp = in.ref_logp, .length = length, .reward = in.reward,
                             .offsets = in.offsets};
  const T value = evaluate_sequences(batch, batch_output<T>{.group_loss = out.group_loss, .grad_logp = grad_logp});
  if constexpr (std::is_same_v<P, errors::report>) {
    if (policy.out != nullptr && !policy.out->ok()) return nan;
  }

  // Pass 2: the second read of each response row and the one write of its gradient.
  std::vector<T> c(static_cast<std::size_t>(rows));
  sequence_logp_backward<T>(grad_logp, tok.mask, tok.shape, in.per_sequence, c, errors::throw_on_error{});
  detail::backward_rows(tok, lse.data(), token_lp.data(), c.data(), out.grad_logits.data());
  if (!out.logp.empty()) std::copy(logp.begin(), logp.end(), out.logp.begin());
  if (!out.length.empty()) std::copy(length.begin(), length.end(), out.length.begin());
  return value;
}

}  // namespace detail

template <LossLike L, Scalar T, ErrorPolicy P>
T evaluate_tokens(const L& l, const token_input<T>& in, const token_output<T>& out, reduction how, P policy) {
  constexpr bool needs_length = contains(detail::shape_of<L>().inputs, input::length);
  return detail::evaluate_tokens_with(loss_name<L>(), needs_length, in, out, policy,
                                      [&](const batch_input<T>& batch, const batch_output<T>& sequences) {
                                        return evaluate(l, batch, sequences, how, policy);
                                      });
}

}  // namespace rpo
