// rpo/eigen.hpp — batches of Eigen arrays and vectors: the only rpo header that includes Eigen.
//
// Public names: rpo::eigen::array, rpo::eigen::column, rpo::eigen::inputs, rpo::eigen::result,
//               rpo::eigen::evaluate.
// Every input is a column (an Eigen array or vector, or any expression of one) whose scalar type is the batch's T (a
// compile error otherwise); contiguous columns are read in place, other expressions are evaluated once. The work happens in rpo::evaluate over spans
// (rpo/batch.hpp): no formula is written twice. Link the CMake target rpo::eigen (it brings Eigen3::Eigen).
// @sa docs/batch.md#eigen
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <optional>
#include <span>
#include <type_traits>

#include "rpo/batch.hpp"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"

namespace rpo::eigen {

/// A column of scalars: `Eigen::Array<T, Eigen::Dynamic, 1>`.
template <class T> using array = Eigen::Array<T, Eigen::Dynamic, 1>;

/// A read-only input column, or nothing: binds to any Eigen column expression (array or vector), viewing it in
/// place when it is contiguous and evaluating it once otherwise.  @sa docs/batch.md#eigen
template <class T> class column {
 public:
  /// No column: the field is not given.
  column() = default;
  /// Binds `values`, a column expression with scalar type T.
  template <class Derived>
  column(const Eigen::DenseBase<Derived>& values) {  // NOLINT(google-explicit-constructor): a column *is* its values
    static_assert(std::is_same_v<typename Derived::Scalar, T>,
                  "rpo::eigen::column<T>: the expression's scalar type must be T; name the type, as in "
                  "rpo::eigen::inputs<float>{...}, or cast the expression with .template cast<T>()");
    if constexpr (std::is_base_of_v<Eigen::MatrixBase<Derived>, Derived>) {
      ref_.emplace(values.derived().array());
    } else {
      ref_.emplace(values.derived());
    }
  }
  // Not copyable: an Eigen::Ref copy does not copy the evaluated temporary it may hold.
  column(const column&) = delete;
  column& operator=(const column&) = delete;
  /// The values as a span (empty when not given).
  std::span<const T> span() const noexcept {
    if (!ref_) return {};
    return {ref_->data(), static_cast<std::size_t>(ref_->size())};
  }

 private:
  std::optional<Eigen::Ref<const array<T>>> ref_;
};

/// The inputs of rpo::eigen::evaluate, as rpo::batch_input but with Eigen columns.  @sa docs/batch.md#eigen
template <Scalar T = double> struct inputs {
  column<T> logp{};                   ///< log π(y_i|x), N entries
  column<T> ref_logp{};               ///< log π_ref(y_i|x), for reference-based rewards
  column<T> length{};                 ///< token counts n_i > 0, for length-normalised rewards
  column<T> reward{};                 ///< explicit rewards r_i, for reward-aware targets
  column<std::int64_t> offsets{};     ///< G + 1 group boundaries, or nothing for fixed-size groups
};

/// The reduced loss, the per-group losses and the gradients of the reduced loss, as Eigen arrays.
/// @sa docs/batch.md#eigen
template <Scalar T> struct result {
  T loss;                 ///< the reduced loss
  array<T> group_loss;    ///< G per-group losses
  array<T> grad_logp;     ///< ∂loss/∂logp_i, N entries
  array<T> grad_ref_logp; ///< ∂loss/∂ref_logp_i, N entries
};

/// rpo::evaluate on Eigen columns: same checks, same reductions, results in Eigen arrays.
/// @sa docs/batch.md#eigen
template <LossLike L, Scalar T = double, ErrorPolicy P = errors::throw_on_error>
result<T> evaluate(const L& l, const inputs<T>& in, reduction how = reduction::mean(), P policy = {}) {
  const batch_input<T> spans{in.logp.span(), in.ref_logp.span(), in.length.span(), in.reward.span(),
                             in.offsets.span()};
  const auto n = static_cast<Eigen::Index>(spans.logp.size());
  result<T> r{T(0), array<T>::Zero(group_count<L>(spans)), array<T>::Zero(n), array<T>::Zero(n)};
  const batch_output<T> out{{r.group_loss.data(), static_cast<std::size_t>(r.group_loss.size())},
                            {r.grad_logp.data(), static_cast<std::size_t>(n)},
                            {r.grad_ref_logp.data(), static_cast<std::size_t>(n)}};
  r.loss = rpo::evaluate(l, spans, out, how, policy);
  return r;
}

}  // namespace rpo::eigen
