// rpo/fields.hpp — inputs that say in their type which fields they hold, so that a missing field fails to compile.
//
// Public names: rpo::with_fields, rpo::holding, rpo::value_and_grad and rpo::evaluate for rpo::with_fields.
// rpo::pair_input and rpo::batch_input leave out the fields a loss does not read, and a loss that reads one that was
// left out is rejected at run time (NaN fields, empty spans: docs/errors.md). A caller that knows what its data holds
// can say so once, `rpo::holding<input::logp | input::ref_logp>(in)`, and a loss that reads more, e.g. a
// length-normalised reward without lengths, is then a compile error whose static_assert names the missing field and
// the policy that reads it. The values are still checked at run time as usual.
// @sa docs/loss.md#holding
#pragma once

#include "rpo/batch.hpp"
#include "rpo/concepts.hpp"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// An rpo::pair_input or rpo::batch_input (held by value: a pair's eight numbers, or a batch's spans) with the
/// set of fields it holds in its type. Make one with rpo::holding.  @sa docs/loss.md#holding
template <input Fields, class Input> struct with_fields {
  static_assert(contains(Fields, input::logp), "rpo::with_fields: every input holds input::logp (always read)");
  static constexpr input fields = Fields;  ///< the fields the input holds
  Input values;                            ///< the input itself
};

/// `in` declared to hold `Fields`: `rpo::value_and_grad(rpo::simpo{}, rpo::holding<input::logp>(pair))` does not
/// compile, since SimPO's length-normalised reward reads lengths.  @sa docs/loss.md#holding
template <input Fields, class Input> constexpr with_fields<Fields, Input> holding(const Input& in) noexcept {
  return {in};
}

/// rpo::value_and_grad on a pair whose fields are known: fails to compile when the loss reads a field that
/// `Fields` lacks; otherwise the same call, with the same run-time checks.  @sa docs/loss.md#holding
template <LossLike L, input Fields, Scalar T, ErrorPolicy P = errors::throw_on_error>
pair_result<T> value_and_grad(const L& l, const with_fields<Fields, pair_input<T>>& pair, P policy = {});

/// rpo::evaluate on a batch whose fields are known: fails to compile when the loss reads a field that `Fields`
/// lacks; otherwise the same call, with the same run-time checks.  @sa docs/loss.md#holding
template <LossLike L, input Fields, Scalar T, ErrorPolicy P = errors::throw_on_error>
T evaluate(const L& l, const with_fields<Fields, batch_input<T>>& in, const batch_output<T>& out = {},
           reduction how = reduction::mean(), P policy = {});


// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail {

/// One static_assert per field the loss reads and the input lacks, each naming the field and what reads it.
template <LossLike L, input Fields> constexpr void require_fields() noexcept {
  constexpr input reads = decltype(as_loss(std::declval<const L&>()))::inputs;
  constexpr auto lacks = [](input field) { return contains(reads, field) && !contains(Fields, field); };
  static_assert(!lacks(input::length),
                "rpo: the loss reads response lengths (a length-normalised reward model, e.g. simpo or "
                "dpo_normalized) but the input does not hold input::length: fill .length and declare it");
  static_assert(!lacks(input::ref_logp),
                "rpo: the loss reads reference log-probs (a reward model with a reference, e.g. reward::implicit) "
                "but the input does not hold input::ref_logp: fill .ref_logp and declare it");
  static_assert(!lacks(input::reward),
                "rpo: the loss reads explicit rewards (a reward-gap target, or a scheme that ranks by reward) but "
                "the input does not hold input::reward: fill .reward and declare it");
}

}  // namespace detail

template <LossLike L, input Fields, Scalar T, ErrorPolicy P>
pair_result<T> value_and_grad(const L& l, const with_fields<Fields, pair_input<T>>& pair, P policy) {
  detail::require_fields<L, Fields>();
  return value_and_grad(l, pair.values, policy);
}

template <LossLike L, input Fields, Scalar T, ErrorPolicy P>
T evaluate(const L& l, const with_fields<Fields, batch_input<T>>& in, const batch_output<T>& out, reduction how,
           P policy) {
  detail::require_fields<L, Fields>();
  return evaluate(l, in.values, out, how, policy);
}

}  // namespace rpo
