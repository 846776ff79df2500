// rpo/xtensor.hpp — batches of xtensor containers and expressions: the only rpo header that includes xtensor.
//
// Public names: rpo::xtensor::column, rpo::xtensor::inputs, rpo::xtensor::result, rpo::xtensor::evaluate.
// An input is any xtensor expression, read in row-major order (so a [pairs, 2] tensor of chosen and rejected
// log-probs is a batch of pairs). The value type must be the batch's T (a compile error otherwise, as in the Eigen
// adaptor); row-major containers are read in place, other expressions are evaluated once. Gradients come back in the shape of `logp`. The work happens in rpo::evaluate over
// spans (rpo/batch.hpp). Uses xtensor 0.24's flat include paths (STYLE.md pitfall 1). Link rpo::xtensor.
// @sa docs/batch.md#xtensor
#pragma once

#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#if __has_include(<xtensor/containers/xarray.hpp>)
#  include <xtensor/containers/xarray.hpp>
#  include <xtensor/containers/xtensor.hpp>
#  include <xtensor/core/xexpression.hpp>
#else
#  include <xtensor/xarray.hpp>
#  include <xtensor/xexpression.hpp>
#  include <xtensor/xtensor.hpp>
#endif

#include "rpo/batch.hpp"
#include "rpo/errors.hpp"
#include "rpo/loss.hpp"

namespace rpo::xtensor {

/// A read-only input of any shape, read in row-major order, or nothing.  @sa docs/batch.md#xtensor
template <class T> class column {
 public:
  /// No column: the field is not given.
  column() = default;
  /// Binds `values`, an expression with value type T: viewed in place when it is a row-major container, evaluated once
  /// otherwise.
  template <class E>
  column(const xt::xexpression<E>& values) {  // NOLINT(google-explicit-constructor): a column *is* its values
    static_assert(std::is_same_v<typename E::value_type, T>,
                  "rpo::xtensor::column<T>: the expression's value type must be T; name the type, as in "
                  "rpo::xtensor::inputs<float>{...}, or cast the expression with xt::cast<T>()");
    const E& e = values.derived_cast();
    if constexpr (xt::has_data_interface<E>::value && E::static_layout == xt::layout_type::row_major) {
      view_ = {e.data() + e.data_offset(), e.size()};
    } else {
      owned_ = e;
      view_ = {owned_.data(), owned_.size()};
    }
    shape_.assign(e.shape().begin(), e.shape().end());
  }
  // Not copyable: the view may point into the column's own storage.
  column(const column&) = delete;
  column& operator=(const column&) = delete;
  /// The values in row-major order (empty when not given).
  std::span<const T> span() const noexcept { return view_; }
  /// The shape of the bound expression.
  const std::vector<std::size_t>& shape() const noexcept { return shape_; }

 private:
  xt::xarray<T, xt::layout_type::row_major> owned_{};
  std::span<const T> view_{};
  std::vector<std::size_t> shape_{0};  // an absent column has no entries (an empty shape would be one scalar)
};

/// The inputs of rpo::xtensor::evaluate, as rpo::batch_input but with xtensor expressions.
/// @sa docs/batch.md#xtensor
template <Scalar T = double> struct inputs {
  column<T> logp{};                ///< log π(y_i|x), N entries in any shape
  column<T> ref_logp{};            ///< log π_ref(y_i|x), for reference-based rewards
  column<T> length{};              ///< token counts n_i > 0, for length-normalised rewards
  column<T> reward{};              ///< explicit rewards r_i, for reward-aware targets
  column<std::int64_t> offsets{};  ///< G + 1 group boundaries, or nothing for fixed-size groups
};

/// The reduced loss, the per-group losses (1-D) and the gradients of the reduced loss (in the shape of logp).
/// @sa docs/batch.md#xtensor
template <Scalar T> struct result {
  T loss;                         ///< the reduced loss
  xt::xtensor<T, 1> group_loss;   ///< G per-group losses
  xt::xarray<T> grad_logp;        ///< ∂loss/∂logp_i, shaped as logp
  xt::xarray<T> grad_ref_logp;    ///< ∂loss/∂ref_logp_i, shaped as logp
};

/// rpo::evaluate on xtensor expressions: same checks, same reductions, results as xtensor containers.
/// @sa docs/batch.md#xtensor
template <LossLike L, Scalar T = double, ErrorPolicy P = errors::throw_on_error>
result<T> evaluate(const L& l, const inputs<T>& in, reduction how = reduction::mean(), P policy = {}) {
  const batch_input<T> spans{in.logp.span(), in.ref_logp.span(), in.length.span(), in.reward.span(),
                             in.offsets.span()};
  const auto groups = static_cast<std::size_t>(group_count<L>(spans));
  result<T> r{T(0), xt::zeros<T>({groups}), xt::zeros<T>(in.logp.shape()), xt::zeros<T>(in.logp.shape())};
  const batch_output<T> out{{r.group_loss.data(), r.group_loss.size()},
                            {r.grad_logp.data(), r.grad_logp.size()},
                            {r.grad_ref_logp.data(), r.grad_ref_logp.size()}};
  r.loss = rpo::evaluate(l, spans, out, how, policy);
  return r;
}

}  // namespace rpo::xtensor
