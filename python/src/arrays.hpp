// python/src/arrays.hpp — what the two source files of the extension rpo._rpo share to go between numpy and the
// library: arrays checked and converted (a ValueError naming the function and the argument for what the library
// cannot see: dimensions, dtypes, sizes), spans over them, the reduction argument, the batch of rpo::evaluate's
// layout, and the call into the library with the GIL released and its errors turned into ValueErrors.
// @sa python/README.md
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/concepts.hpp"

namespace rpo_python {

namespace py = pybind11;

inline std::string shape_text(const py::array& a) {
  std::string out = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) out += (d == 0 ? "" : ", ") + std::to_string(a.shape(d));
  return out + (a.ndim() == 1 ? ",)" : ")");
}

[[noreturn]] inline void fail(const std::string& who, const std::string& what) { throw py::value_error(who + ": " + what); }

/// The ValueError for a `value` that np.asarray refuses, with numpy's reason; `ndim` (0: any) says what was wanted.
[[noreturn]] inline void not_array_like(const py::handle& value, const std::string& who, const char* name,
                                        py::ssize_t ndim = 0) {
  std::string why;
  try {  // numpy's own reason (a ragged list, say); ensure() clears it
    py::module_::import("numpy").attr("asarray")(value);
  } catch (py::error_already_set& e) {
    why = ": " + std::string(py::str(e.value()));
  }
  const std::string shape = ndim > 0 ? "a " + std::to_string(ndim) + "-D numpy array" : "a numpy array";
  fail(who, std::string(name) + " must be array-like (" + shape + ", a list)" + why);
}

/// np.asarray(value), or a ValueError naming `name` (with numpy's reason) when it cannot be one.
inline py::array as_array(const py::handle& value, const std::string& who, const char* name) {
  py::array any = py::array::ensure(value);
  if (!any) not_array_like(value, who, name);
  return any;
}

/// The kinds of numbers an argument may hold.
enum class holds { reals, integers, labels };

/// `value` as a C-contiguous array of T with `ndim` dimensions (a view when it already is one, a copy otherwise);
/// ValueErrors name `name` for what is not array-like, has another number of dimensions, or holds the wrong kind of
/// numbers (reals: float, int, bool excluded; integers: int; labels: bool or int).
template <class T>
py::array_t<T, py::array::c_style | py::array::forcecast> array_of(const py::handle& value, const std::string& who,
                                                                   const char* name, py::ssize_t ndim, holds what) {
  const py::array any = py::array::ensure(value);
  if (!any) not_array_like(value, who, name, ndim);
  if (any.ndim() != ndim)
    fail(who, std::string(name) + " must be " + std::to_string(ndim) + "-D, but has shape " + shape_text(any));
  const py::dtype dtype = any.dtype();
  if (!dtype) fail(who, std::string(name) + " has no dtype");  // never; it tells g++ the descriptor is not null
  const char kind = dtype.kind();
  const bool ok = what == holds::reals      ? (kind == 'f' || kind == 'i' || kind == 'u')
                  : what == holds::integers ? (kind == 'i' || kind == 'u' || any.size() == 0)
                                            : (kind == 'b' || kind == 'i' || kind == 'u' || any.size() == 0);
  if (!ok) {
    const char* want = what == holds::reals ? "real numbers" : what == holds::integers ? "integers" : "booleans or integers";
    fail(who, std::string(name) + " must hold " + want + ", but has dtype " + std::string(py::str(py::handle(dtype))));
  }
  auto out = py::array_t<T, py::array::c_style | py::array::forcecast>::ensure(any);
  if (!out) fail(who, std::string(name) + " cannot be converted to " + std::string(py::str(py::dtype::of<T>())));
  return out;
}

template <class T> using carray = py::array_t<T, py::array::c_style | py::array::forcecast>;

/// A 1-D real input, or an empty array for None.
template <class T> carray<T> vector_of(const py::handle& value, const std::string& who, const char* name) {
  if (value.is_none()) return carray<T>(0);
  return array_of<T>(value, who, name, 1, holds::reals);
}

template <class T> std::span<const T> in_span(const carray<T>& a) { return {a.data(), static_cast<std::size_t>(a.size())}; }
template <class T> std::span<T> out_span(carray<T>& a) { return {a.mutable_data(), static_cast<std::size_t>(a.size())}; }

template <class T> carray<T> zeros(std::vector<py::ssize_t> shape) {
  carray<T> a(std::move(shape));
  std::fill(a.mutable_data(), a.mutable_data() + a.size(), T(0));
  return a;
}

/// Whether the main input is float32 (np.asarray(value).dtype == float32): it picks the precision.
inline bool is_float32(const py::handle& value) {
  const py::array a = py::array::ensure(value);
  return a && a.dtype().is(py::dtype::of<float>());
}

/// Runs the library call `f` (with the GIL released when `release`), turning its std::invalid_argument (rpo::spec_error
/// is one) and std::domain_error into ValueErrors carrying the library's message.
template <class F> void library(F&& f, bool release = true) {
  std::string error;
  {
    std::optional<py::gil_scoped_release> released;
    if (release) released.emplace();
    try {
      f();
    } catch (const std::invalid_argument& e) {
      error = e.what();
    } catch (const std::domain_error& e) {
      error = e.what();
    }
  }
  if (!error.empty()) throw py::value_error(error);
}

/// reduction="mean" | "sum" | "sum_over" with count, the number of `terms` (groups, responses, ...) of the whole
/// global batch.
inline rpo::reduction reduction_of(const std::string& who, const std::string& how, const py::object& count,
                                   const char* terms = "terms") {
  if (how == "mean" || how == "sum") {
    if (!count.is_none())
      fail(who, "count is used only with reduction=\"sum_over\", not with reduction=\"" + how + "\"");
    return how == "mean" ? rpo::reduction::mean() : rpo::reduction::sum();
  }
  if (how == "sum_over") {
    if (count.is_none())
      fail(who, std::string("reduction=\"sum_over\" needs count=..., the number of ") + terms +
                    " of the whole global batch");
    double c = 0;
    try {
      c = count.cast<double>();
    } catch (const py::cast_error&) {
      fail(who, "count must be a number, but got " + std::string(py::repr(count)));
    }
    if (!(rpo::is_finite(c) && c > 0))
      fail(who, "count must be finite and > 0, but got count = " + std::string(py::repr(count)));
    return rpo::reduction::sum_over(c);
  }
  fail(who, "reduction must be \"mean\", \"sum\" or \"sum_over\", but got \"" + how + "\"");
}

/// A Python int as I, or a ValueError naming `name` (negative sizes, a seed out of range, a float).
template <class I> I integer_of(const py::handle& value, const std::string& who, const char* name) {
  if (!py::isinstance<py::int_>(value) || py::isinstance<py::bool_>(value))
    fail(who, std::string(name) + " must be an integer, but got " + std::string(py::repr(value)));
  try {
    return value.cast<I>();
  } catch (const py::cast_error&) {
    fail(who, std::string(name) + " must be in [" + std::to_string(std::numeric_limits<I>::min()) + ", " +
                  std::to_string(std::numeric_limits<I>::max()) + "], but got " + std::string(py::repr(value)));
  }
}

/// The batch of rpo::evaluate's layout, with its arrays owned for the whole call (the spans view them while the GIL
/// is released). Offsets: None for consecutive groups of the loss's size (`without_offsets` names them in the message
/// for an empty array), or G + 1 integers.
template <class T> struct batch {
  carray<T> logp, ref_logp, length, reward;
  carray<std::int64_t> offsets;
  rpo::batch_input<T> in;

  batch(const std::string& who, const py::handle& logp_in, const py::handle& ref_logp_in, const py::handle& length_in,
        const py::handle& reward_in, const py::handle& offsets_in, const char* without_offsets = "pairs")
      : logp(array_of<T>(logp_in, who, "logp", 1, holds::reals)),
        ref_logp(vector_of<T>(ref_logp_in, who, "ref_logp")),
        length(vector_of<T>(length_in, who, "length")),
        reward(vector_of<T>(reward_in, who, "reward")),
        offsets(offsets_in.is_none() ? carray<std::int64_t>(0)
                                     : array_of<std::int64_t>(offsets_in, who, "offsets", 1, holds::integers)) {
    if (!offsets_in.is_none() && offsets.size() == 0)
      fail(who, std::string("offsets must have G + 1 >= 1 entries (0, ..., N), but got none; pass offsets=None for "
                            "consecutive ") + without_offsets);
    in = {in_span(logp), in_span(ref_logp), in_span(length), in_span(reward), in_span(offsets)};
  }
  std::int64_t size() const { return static_cast<std::int64_t>(logp.size()); }
  /// The number of pairs the library will see: offsets.size() − 1, or N / 2 (wrong only where it rejects the shape
  /// before it looks at the outputs).
  std::int64_t pairs() const { return offsets.size() != 0 ? static_cast<std::int64_t>(offsets.size()) - 1 : size() / 2; }
};

}  // namespace rpo_python
