// rpo/batch.hpp — a batch of groups over raw spans: per-group losses, the reduced loss and its gradient.
//
// Public names: rpo::batch_input, rpo::batch_output, rpo::reduction, rpo::evaluate.
// The reference path that the Eigen and xtensor adaptors end in. Reductions happen here, once (DESIGN.md):
// the mean over groups, the sum, or the sum divided by a caller-given count (for gradient accumulation and data
// parallelism, where the count is that of the whole global batch). Gradients are those of the *reduced* loss.
// @sa docs/batch.md
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <vector>

#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/detail/pair_block.hpp"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// A batch of N responses in G groups. Spans of fields the loss does not read may be left empty. Groups are
/// given by `offsets` (G + 1 increasing entries from 0 to N: group g is [offsets[g], offsets[g+1])) or, when
/// `offsets` is empty, are consecutive runs of the sampling scheme's fixed size (2 for pairs: chosen, rejected,
/// chosen, rejected, ...).  @sa docs/batch.md#batch_input
template <Scalar T = double> struct batch_input {
  std::span<const T> logp{};                 ///< log π(y_i|x), N entries (always read)
  std::span<const T> ref_logp{};             ///< log π_ref(y_i|x), N entries, for reference-based rewards
  std::span<const T> length{};               ///< token counts n_i > 0, N entries, for length-normalised rewards
  std::span<const T> reward{};               ///< explicit rewards r_i, N entries, for reward-aware targets
  std::span<const std::int64_t> offsets{};   ///< G + 1 group boundaries, or empty
};

/// Where rpo::evaluate writes; each span is either empty (not wanted) or exactly the size shown.
/// @sa docs/batch.md#batch_output
template <Scalar T = double> struct batch_output {
  std::span<T> group_loss{};     ///< G per-group losses, before reduction
  std::span<T> grad_logp{};      ///< N entries of ∂(reduced loss)/∂logp_i
  std::span<T> grad_ref_logp{};  ///< N entries of ∂(reduced loss)/∂ref_logp_i (a constant of the objective)
};

/// How per-group losses become one number: `mean()` over the G groups of this call, `sum()`, or
/// `sum_over(count)` = sum / count, where count is the number of groups of the whole global batch, so that
/// micro-batches or ranks add up to the whole batch's mean.  @sa docs/batch.md#reduction
struct reduction {
  enum class mode : unsigned char { mean, sum, sum_over_count };
  mode kind = mode::mean;  ///< which reduction
  double count = 0;       ///< the divisor of sum_over_count (> 0)

  static constexpr reduction mean() noexcept { return {mode::mean, 0}; }
  static constexpr reduction sum() noexcept { return {mode::sum, 0}; }
  static constexpr reduction sum_over(double count) noexcept { return {mode::sum_over_count, count}; }
};

/// Evaluates the loss on every group of the batch, writes the per-group losses and the gradients of the
/// reduced loss into `out`, and returns the reduced loss. Checks, under the error policy: the parameters,
/// that every field the loss reads is given with N entries, the offsets, the output sizes, and every value the
/// loss reads (finite; lengths > 0), all before anything is written, so a call that fails leaves `out` untouched.
/// Float batches are reduced in double.  @sa docs/batch.md#evaluate
template <LossLike L, Scalar T = double, ErrorPolicy P = errors::throw_on_error>
T evaluate(const L& l, const batch_input<T>& in, const batch_output<T>& out = {},
           reduction how = reduction::mean(), P policy = {});

/// The number of groups rpo::evaluate will see in `in` (for sizing `group_loss`): offsets.size() − 1, or
/// N / K for fixed groups of the scheme's size K. Returns 0 where the shape is invalid (evaluate reports why).
/// @sa docs/batch.md#group_count
template <LossLike L, Scalar T> std::int64_t group_count(const batch_input<T>& in) noexcept;

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

inline std::string size_message(const char* who, const char* name, std::size_t got, const char* what,
                                std::size_t want) {
  return std::string(who) + ": " + name + " has " + std::to_string(got) + " entries but " + what + " has " +
         std::to_string(want);
}

/// Checks the reduction: a mean over `count` = 0 terms is undefined, sum_over needs a finite count > 0. `what` names
/// the terms in the message ("groups"; "responses" for rpo::evaluate_kto).
template <ErrorPolicy P>
bool check_reduction(const char* who, reduction how, std::size_t count, const char* what, const P& policy) {
  if (how.kind == reduction::mode::mean && count == 0)
    return fail(policy, errc::invalid_argument,
                std::string(who) + ": the batch is empty, and the mean over 0 " + what +
                    " is undefined (use reduction::sum() or reduction::sum_over(count))");
  if (how.kind == reduction::mode::sum_over_count && !(is_finite(how.count) && how.count > 0))
    return fail(policy, errc::invalid_argument, rule_message(who, "reduction count", "must be finite and > 0", how.count));
  return true;
}

/// The factor a checked reduction applies to a sum of `count` terms: 1/count (mean), 1 (sum), 1/c (sum_over(c)).
inline double reduction_scale(reduction how, std::size_t count) noexcept {
  if (how.kind == reduction::mode::mean) return 1.0 / static_cast<double>(count);
  if (how.kind == reduction::mode::sum_over_count) return 1.0 / how.count;
  return 1.0;
}

/// Checks sizes, offsets, the reduction and the outputs; returns the number of groups, or −1 after raising.
template <Scalar T, ErrorPolicy P>
std::int64_t check_batch_shape(const loss_shape& shape, const batch_input<T>& in, const batch_output<T>& out,
                               reduction how, const P& policy) {
  const char* who = shape.name;
  const std::size_t n = in.logp.size();
  const auto fail_with = [&](errc code, const std::string& message) {
    fail(policy, code, message);
    return std::int64_t{-1};
  };
  const auto field = [&](input which, std::span<const T> values, const char* name) {
    if (!contains(shape.inputs, which) || values.size() == n) return true;
    if (values.empty())
      return fail(policy, errc::invalid_argument,
                  std::string(who) + ": " + name + " is read by this loss but was not given");
    return fail(policy, errc::invalid_argument, size_message(who, name, values.size(), "logp", n));
  };
  if (!field(input::ref_logp, in.ref_logp, "ref_logp") || !field(input::length, in.length, "length") ||
      !field(input::reward, in.reward, "reward"))
    return -1;

  const std::int64_t size = shape.group_size, min_size = shape.min_group_size;
  std::int64_t groups = 0;
  if (in.offsets.empty()) {
    if (size == 0)
      return fail_with(errc::invalid_argument, std::string(who) +
                                                   ": offsets must be given: this sampling scheme takes groups "
                                                   "of any size");
    if (static_cast<std::int64_t>(n) % size != 0)
      return fail_with(errc::invalid_argument,
                       std::string(who) + ": logp has " + std::to_string(n) +
                           " entries, which is not a multiple of the group size " + std::to_string(size) +
                           " (every group of this sampling scheme has exactly " + std::to_string(size) +
                           " responses, also with offsets)");
    groups = static_cast<std::int64_t>(n) / size;
  } else {
    const auto& o = in.offsets;
    if (o.front() != 0)
      return fail_with(errc::invalid_argument,
                       std::string(who) + ": offsets[0] must be 0, but got offsets[0] = " + std::to_string(o.front()));
    for (std::size_t g = 1; g < o.size(); ++g) {
      const std::int64_t k = o[g] - o[g - 1];
      if (k < 0)
        return fail_with(errc::invalid_argument,
                         std::string(who) + ": offsets must not decrease, but offsets[" + std::to_string(g) +
                             "] = " + std::to_string(o[g]) + " is below offsets[" + std::to_string(g - 1) +
                             "] = " + std::to_string(o[g - 1]));
      if (k < min_size || (size != 0 && k != size))
        return fail_with(errc::invalid_argument,
                         std::string(who) + ": group " + std::to_string(g - 1) + " (offsets[" + std::to_string(g - 1) +
                             "] to offsets[" + std::to_string(g) + "]) has " + std::to_string(k) +
                             " responses, but this sampling scheme needs " +
                             (size != 0 ? "exactly " + std::to_string(size) : "at least " + std::to_string(min_size)));
    }
    if (o.back() != static_cast<std::int64_t>(n))
      return fail_with(errc::invalid_argument, std::string(who) + ": offsets must end at the number of responses " +
                                                   std::to_string(n) + ", but the last offset is " +
                                                   std::to_string(o.back()));
    groups = static_cast<std::int64_t>(o.size()) - 1;
  }

  const auto output = [&](std::size_t got, const char* name, std::size_t want, const char* what) {
    if (got == 0 || got == want) return true;
    return fail(policy, errc::invalid_argument,
                std::string(who) + ": " + name + " has " + std::to_string(got) + " entries but must have " +
                    std::to_string(want) + " (" + what + ") or none");
  };
  if (!output(out.group_loss.size(), "group_loss", static_cast<std::size_t>(groups), "one per group") ||
      !output(out.grad_logp.size(), "grad_logp", n, "one per response") ||
      !output(out.grad_ref_logp.size(), "grad_ref_logp", n, "one per response"))
    return -1;

  if (!check_reduction(who, how, static_cast<std::size_t>(groups), "groups", policy)) return -1;
  return groups;
}

}  // namespace detail

template <LossLike L, Scalar T> std::int64_t group_count(const batch_input<T>& in) noexcept {
  using C = decltype(as_loss(std::declval<const L&>()));
  if (!in.offsets.empty()) return static_cast<std::int64_t>(in.offsets.size()) - 1;
  if constexpr (C::group_size == 0) {
    return 0;
  } else {
    return static_cast<std::int64_t>(in.logp.size()) / C::group_size;
  }
}

namespace detail {

/// The groups rpo::evaluate gives one thread at a time, and over which it sums the losses before adding the sums: a
/// constant, so that the reduced loss does not depend on the number of threads.
inline constexpr std::int64_t groups_per_chunk = 2048;

/// rpo::evaluate after the parameter check: the shape and value checks (shared by every composition, named
/// `shape.name` in messages), the loop over groups, and the reduction.
template <Composition C, Scalar T, ErrorPolicy P>
T evaluate_batch(const C& composed, const loss_shape& shape, const batch_input<T>& in, const batch_output<T>& out,
                 reduction how, const P& policy) {
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  const std::int64_t groups = check_batch_shape(shape, in, out, how, shape_policy(policy));
  if (groups < 0) return nan;

  const auto at = [](auto s, std::int64_t i) { return s.empty() ? nullptr : s.data() + i; };
  // Every value is checked before anything is written: a failed call leaves the outputs untouched.
  const group_ref<T> everything{at(in.logp, 0), at(in.ref_logp, 0), at(in.length, 0), at(in.reward, 0),
                                static_cast<std::int64_t>(in.logp.size())};
  if (!check_group_values(shape, everything, 0, policy)) return nan;
  // A field the loss reads is non-empty here (checked above); one it does not read is passed as null.
  const auto read = [&](input field, std::span<const T> s, std::int64_t first) {
    return contains(C::inputs, field) ? s.data() + first : nullptr;
  };
  constexpr std::int64_t fixed = C::group_size;
  // Group g is responses [first_of(g), first_of(g + 1)): the groups are contiguous and cover the batch.
  const auto first_of = [&](std::int64_t g) {
    return in.offsets.empty() ? g * fixed : in.offsets[static_cast<std::size_t>(g)];
  };
  const auto group_at = [&](std::int64_t g) {
    const std::int64_t first = first_of(g);
    return group_ref<T>{in.logp.data() + first, read(input::ref_logp, in.ref_logp, first),
                        read(input::length, in.length, first), read(input::reward, in.reward, first),
                        first_of(g + 1) - first};
  };
  // A scheme that ranks by reward (rpo::ranking) needs its ties rejected here, also before anything is written. Groups
  // of a fixed size (ODPO's pairs) take one pass with the rule alone (ranking_breach) first; the group, and its
  // message, are looked for only after a failure.
  const auto all_ranked = [&] {
    if (fixed == 0) return false;
    bool ranked = true;
    for (std::int64_t g = 0; g < groups; ++g)
      ranked &= ranking_breach(shape.ranks, in.reward.data() + first_of(g), fixed).first < 0;
    return ranked;
  };
  if (!std::is_same_v<P, errors::unchecked> && shape.ranks != ranking::none && !all_ranked())
    for (std::int64_t g = 0; g < groups; ++g) {
      const group_ref<T> group = group_at(g);
      if (!check_group_ranking(shape, group, g, group.logp - in.logp.data(), policy)) return nan;
    }
  // Chunks of groups_per_chunk groups, each a contiguous run of responses: its losses summed in double (also for float
  // batches), its gradients scaled by the reduction while they are in cache, then the chunk sums added in chunk
  // order. The chunks run on parallel threads under OpenMP; the order of every sum is fixed by the chunks alone,
  // so the result is the same to the last bit on any number of threads.
  const double scale = reduction_scale(how, static_cast<std::size_t>(groups));
  const auto scale_range = [scale](std::span<T> grad, std::int64_t begin, std::int64_t end) {
    if (grad.empty() || scale == 1) return;
    for (std::int64_t i = begin; i < end; ++i) {
      T& g = grad[static_cast<std::size_t>(i)];
      g = scaled(g, scale);
    }
  };
  // A large batch's gradients go to memory with streaming stores (pair blocks only): their lines are not read first,
  // and they would not stay in cache anyway. A small one's stay in cache for the caller.
  [[maybe_unused]] const bool stream_gradients = in.logp.size() * sizeof(T) >= (std::size_t{1} << 22);
  const auto run_chunk = [&](std::int64_t chunk) {
    const std::int64_t begin = chunk * groups_per_chunk, end = std::min(groups, begin + groups_per_chunk);
    if constexpr (evaluates_pair_blocks<C, T>) {
      // Pairs with a vector form of their distance: a block at a time (rpo/detail/pair_block.hpp). Every group is a
      // pair, so group g is responses 2g and 2g + 1 also when offsets are given.
      const std::int64_t first = 2 * begin;
      // The reduction's scale is applied as each gradient is written.
      return evaluate_pair_block(composed, in.logp.data() + first, read(input::ref_logp, in.ref_logp, first),
                                 read(input::length, in.length, first), read(input::reward, in.reward, first),
                                 end - begin, at(out.grad_logp, first), at(out.grad_ref_logp, first),
                                 at(out.group_loss, begin), scale, stream_gradients);
    } else {
      double sum = 0;
      for (std::int64_t g = begin; g < end; ++g) {
        const group_ref<T> group = group_at(g);
        const std::int64_t first = group.logp - in.logp.data();
        const T value = composed.evaluate(group, at(out.grad_logp, first), at(out.grad_ref_logp, first));
        if (!out.group_loss.empty()) out.group_loss[static_cast<std::size_t>(g)] = value;
        sum += static_cast<double>(value);
      }
      scale_range(out.grad_logp, first_of(begin), first_of(end));
      scale_range(out.grad_ref_logp, first_of(begin), first_of(end));
      return sum;
    }
  };
  const std::int64_t chunks = (groups + groups_per_chunk - 1) / groups_per_chunk;
  double total = 0;
  if (chunks <= 1) {
    total = chunks == 1 ? run_chunk(0) : 0.0;
  } else {
    std::vector<double> partial(static_cast<std::size_t>(chunks));
    RPO_DETAIL_PARALLEL_FOR
    for (std::int64_t c = 0; c < chunks; ++c) partial[static_cast<std::size_t>(c)] = run_chunk(c);
    for (const double p : partial) total += p;
  }
  return static_cast<T>(total * scale);
}

}  // namespace detail

template <LossLike L, Scalar T, ErrorPolicy P>
T evaluate(const L& l, const batch_input<T>& in, const batch_output<T>& out, reduction how, P policy) {
  if (!detail::check_loss_parameters(l, policy)) return std::numeric_limits<T>::quiet_NaN();
  return detail::evaluate_batch(as_loss(l), detail::shape_of<L>(), in, out, how, policy);
}

}  // namespace rpo
