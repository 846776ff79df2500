// rpo._rpo, continued — the batch-level and token-level functions of the library that have no spec name, over numpy
// arrays: their value depends on the whole batch (KTO, AOT, γ-PO), on a weight from outside the group (WPO), or on
// tokens (WPO's weights, LD-DPO's sequence log-probs), so rpo.Loss, which evaluates one group at a time through the
// registry, cannot offer them.
//
// Python names: rpo.kto, rpo.KTOResult, rpo.kto_reference_point (rpo::evaluate_kto, rpo::kto_reference_point);
//               rpo.bco (rpo::evaluate_bco);
//               rpo.aot (rpo::evaluate_aot); rpo.evaluate_weighted (rpo::any_loss::evaluate_weighted);
//               rpo.gamma_po_gaps, rpo.gamma_po, rpo.GammaPOMargins (rpo::gamma_po_gaps, rpo::evaluate_gamma_po,
//               rpo::gamma_po_margins); rpo.wpo_weights, rpo.length_desensitized_logp,
//               rpo.length_desensitized_logp_backward (rpo/token_weighting.hpp); rpo.evaluate_tokens,
//               rpo.TokensResult (rpo::any_loss::evaluate_tokens, the fused pass); rpo.evaluate_batch, rpo.batch_methods
//               (rpo/batch_spec.hpp: the batch methods by spec, as rpo-eval --batch). Re-exported by rpo/__init__.py.
// Precision: float32 when the main input (logp, gaps, token_logp, grad_logp, logits) is float32, float64 otherwise;
// the other arrays are converted to it. Every library error (std::invalid_argument, std::domain_error) is a ValueError
// with the library's message; the binding's own checks (shapes, dtypes, what the library cannot see) are ValueErrors
// naming the Python function and the argument. The GIL is released while the library runs, except in GammaPOMargins
// (its queue is shared state).
// @sa python/README.md#batch-level-and-token-level-functions, docs/methods.md#batchwise, docs/token.md
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "result.hpp"
#include "rpo/batch.hpp"
#include "rpo/batch_spec.hpp"
#include "rpo/batchwise.hpp"
#include "rpo/config.hpp"
#include "rpo/spec.hpp"
#include "rpo/token.hpp"
#include "rpo/token_weighting.hpp"

namespace py = pybind11;

namespace rpo_python {
namespace {

/// What rpo.kto returns: the reduced loss and numpy arrays of the N per-response losses and the gradients.
struct kto_result {
  double loss = 0;
  py::array response_loss, grad_logp, grad_ref_logp;
};

/// What rpo.evaluate_tokens returns: the reduced loss, ∂loss/∂logits (the logits array itself when in place), the S
/// sequence log-probs and response lengths, and the G per-group losses.
struct tokens_result {
  double loss = 0;
  py::array grad_logits, logp, length, group_loss;
};

/// A response mask of shape `rows` × `cols` (bool or integers; nonzero marks a response token) as 0/1 bytes, or an
/// empty array for None.
carray<std::uint8_t> mask_of(const py::handle& value, const std::string& who, py::ssize_t rows, py::ssize_t cols) {
  if (value.is_none()) return carray<std::uint8_t>(0);
  const auto m = array_of<std::int64_t>(value, who, "mask", 2, holds::labels);
  if (m.shape(0) != rows || m.shape(1) != cols)
    fail(who, "mask must have shape (" + std::to_string(rows) + ", " + std::to_string(cols) + "), but has shape " +
                  shape_text(m));
  carray<std::uint8_t> out({rows, cols});
  const std::int64_t* in = m.data();
  std::uint8_t* o = out.mutable_data();
  for (py::ssize_t i = 0; i < m.size(); ++i) o[i] = in[i] != 0 ? 1 : 0;
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// KTO
// ---------------------------------------------------------------------------------------------------------------------

/// N labels as the library's 0/1 bytes: booleans or integers, an integer outside [0, 1] refused here, in the library's
/// words, before it could wrap around in the conversion.
carray<std::uint8_t> labels_of(const py::handle& desirable_in, const std::string& who) {
  const auto labels = array_of<std::int64_t>(desirable_in, who, "desirable", 1, holds::labels);
  carray<std::uint8_t> desirable(labels.size());
  for (py::ssize_t i = 0; i < labels.size(); ++i) {
    const std::int64_t v = labels.data()[i];
    if (v != 0 && v != 1) {
      const std::string entry = "desirable[" + std::to_string(i) + "]";
      fail(who, entry + " must be 0 (undesirable) or 1 (desirable), but got " + entry + " = " + std::to_string(v));
    }
    desirable.mutable_data()[i] = static_cast<std::uint8_t>(v);
  }
  return desirable;
}

template <class T>
kto_result kto_as(const rpo::kto& l, const py::handle& logp_in, const py::handle& ref_logp_in,
                  const py::handle& desirable_in, double z0, rpo::reduction how) {
  const std::string who = "rpo.kto";
  const auto logp = array_of<T>(logp_in, who, "logp", 1, holds::reals);
  const auto ref_logp = array_of<T>(ref_logp_in, who, "ref_logp", 1, holds::reals);
  const auto desirable = labels_of(desirable_in, who);
  const py::ssize_t n = logp.size();
  auto response_loss = zeros<T>({n}), grad_logp = zeros<T>({n}), grad_ref_logp = zeros<T>({n});
  const rpo::kto_input<T> in{in_span(logp), in_span(ref_logp), in_span(desirable), static_cast<T>(z0)};
  const rpo::kto_output<T> out{out_span(response_loss), out_span(grad_logp), out_span(grad_ref_logp)};
  T value{};
  library([&] { value = rpo::evaluate_kto(l, in, out, how); });
  return {static_cast<double>(value), std::move(response_loss), std::move(grad_logp), std::move(grad_ref_logp)};
}

template <class T>
kto_result bco_as(const rpo::bco_unpaired& l, const py::handle& logp_in, const py::handle& ref_logp_in,
                  const py::handle& desirable_in, double delta, const py::handle& weight_in, rpo::reduction how) {
  const std::string who = "rpo.bco";
  const auto logp = array_of<T>(logp_in, who, "logp", 1, holds::reals);
  const auto ref_logp = array_of<T>(ref_logp_in, who, "ref_logp", 1, holds::reals);
  const auto desirable = labels_of(desirable_in, who);
  const auto weight = vector_of<T>(weight_in, who, "weight");
  const py::ssize_t n = logp.size();
  auto response_loss = zeros<T>({n}), grad_logp = zeros<T>({n}), grad_ref_logp = zeros<T>({n});
  const rpo::bco_input<T> in{in_span(logp), in_span(ref_logp), in_span(desirable), in_span(weight),
                             static_cast<T>(delta)};
  const rpo::kto_output<T> out{out_span(response_loss), out_span(grad_logp), out_span(grad_ref_logp)};
  T value{};
  library([&] { value = rpo::evaluate_bco(l, in, out, how); });
  return {static_cast<double>(value), std::move(response_loss), std::move(grad_logp), std::move(grad_ref_logp)};
}

template <class T> double kto_reference_point_as(const py::handle& logp_in, const py::handle& ref_logp_in) {
  const std::string who = "rpo.kto_reference_point";
  const auto logp = array_of<T>(logp_in, who, "mismatched_logp", 1, holds::reals);
  const auto ref_logp = array_of<T>(ref_logp_in, who, "mismatched_ref_logp", 1, holds::reals);
  T z0{};
  library([&] { z0 = rpo::kto_reference_point<T>(in_span(logp), in_span(ref_logp)); });
  return static_cast<double>(z0);
}

// ---------------------------------------------------------------------------------------------------------------------
// AOT, γ-PO, evaluate_weighted: rpo::evaluate's layout
// ---------------------------------------------------------------------------------------------------------------------

template <class T>
result aot_as(const rpo::aot& l, const py::handle& logp, const py::handle& ref_logp, const py::handle& offsets,
              rpo::reduction how) {
  const batch<T> b("rpo.aot", logp, ref_logp, py::none(), py::none(), offsets);
  auto rank_loss = zeros<T>({std::max<std::int64_t>(b.pairs(), 0)});
  auto grad_logp = zeros<T>({b.size()}), grad_ref_logp = zeros<T>({b.size()});
  const rpo::batch_output<T> out{out_span(rank_loss), out_span(grad_logp), out_span(grad_ref_logp)};
  T value{};
  library([&] { value = rpo::evaluate_aot(l, b.in, out, how); });
  return {static_cast<double>(value), std::move(rank_loss), std::move(grad_logp), std::move(grad_ref_logp)};
}

template <class T>
py::array gamma_po_gaps_as(const rpo::gamma_po& l, const py::handle& logp, const py::handle& ref_logp,
                           const py::handle& length, const py::handle& offsets) {
  const batch<T> b("rpo.gamma_po_gaps", logp, ref_logp, length, py::none(), offsets);
  auto gaps = zeros<T>({std::max<std::int64_t>(b.pairs(), 0)});
  library([&] { rpo::gamma_po_gaps(l, b.in, out_span(gaps)); });
  return gaps;
}

template <class T>
result gamma_po_as(const rpo::gamma_po& l, const py::handle& margins_in, const py::handle& logp,
                   const py::handle& ref_logp, const py::handle& length, const py::handle& offsets,
                   rpo::reduction how) {
  const std::string who = "rpo.gamma_po";
  const batch<T> b(who, logp, ref_logp, length, py::none(), offsets);
  const auto margins = array_of<T>(margins_in, who, "margins", 1, holds::reals);
  auto pair_loss = zeros<T>({std::max<std::int64_t>(b.pairs(), 0)});
  auto grad_logp = zeros<T>({b.size()}), grad_ref_logp = zeros<T>({b.size()});
  const rpo::batch_output<T> out{out_span(pair_loss), out_span(grad_logp), out_span(grad_ref_logp)};
  T value{};
  library([&] { value = rpo::evaluate_gamma_po(l, b.in, in_span(margins), out, how); });
  return {static_cast<double>(value), std::move(pair_loss), std::move(grad_logp), std::move(grad_ref_logp)};
}

/// rpo::evaluate_weighted for an rpo.Loss (rpo::any_loss::evaluate_weighted: the library's own body and checks).
template <class T>
result evaluate_weighted_as(const rpo::any_loss& loss, const py::handle& weights_in, const py::handle& logp,
                            const py::handle& ref_logp, const py::handle& length, const py::handle& reward,
                            const py::handle& offsets, rpo::reduction how) {
  const std::string who = "rpo.evaluate_weighted";
  const batch<T> b(who, logp, ref_logp, length, reward, offsets);
  const auto weights = array_of<T>(weights_in, who, "group_weights", 1, holds::reals);
  auto group_loss = zeros<T>({std::max<std::int64_t>(loss.group_count(b.in), 0)});
  auto grad_logp = zeros<T>({b.size()}), grad_ref_logp = zeros<T>({b.size()});
  const rpo::batch_output<T> out{out_span(group_loss), out_span(grad_logp), out_span(grad_ref_logp)};
  T value = 0;
  library([&] { value = loss.evaluate_weighted(b.in, in_span(weights), out, how); });
  return {static_cast<double>(value), std::move(group_loss), std::move(grad_logp), std::move(grad_ref_logp)};
}

// ---------------------------------------------------------------------------------------------------------------------
// γ-PO's margin optimiser
// ---------------------------------------------------------------------------------------------------------------------

rpo::gamma_po_margins make_margins(double beta, double gamma_beta_ratio, bool simpo, double tau,
                                   const py::object& iterations, double step, double epsilon,
                                   const py::object& capacity, const py::object& opt_size, const py::object& seed) {
  const std::string who = "rpo.GammaPOMargins";
  rpo::gamma_po_optimizer opt;
  opt.tau = tau;
  opt.iterations = integer_of<int>(iterations, who, "iterations");
  opt.step = step;
  opt.epsilon = epsilon;
  opt.capacity = integer_of<std::size_t>(capacity, who, "capacity");
  opt.opt_size = integer_of<std::size_t>(opt_size, who, "opt_size");
  opt.seed = integer_of<std::uint64_t>(seed, who, "seed");
  rpo::gamma_po_margins m(rpo::gamma_po{beta, gamma_beta_ratio, simpo}, opt);
  // The constructor checks nothing; compute() checks the settings first, so an empty call raises the library's
  // message for a bad one now rather than at the first step (it changes nothing: no gaps, nothing pushed).
  library([&] { m.compute<double>(std::span<const double>{}, std::span<double>{}); }, false);
  return m;
}

template <class T> py::array margins_as(rpo::gamma_po_margins& m, const py::handle& gaps_in) {
  const auto gaps = array_of<T>(gaps_in, "rpo.GammaPOMargins.compute", "gaps", 1, holds::reals);
  auto margins = zeros<T>({gaps.size()});
  // The GIL stays held: the optimiser's queue is state that another thread could change.
  library([&] { m.compute<T>(in_span(gaps), out_span(margins)); }, false);
  return margins;
}

// ---------------------------------------------------------------------------------------------------------------------
// Token level: WPO's weights, LD-DPO
// ---------------------------------------------------------------------------------------------------------------------

/// The target ids and the response mask of (S, T, V) logits, checked against their shape, and the token_logits view
/// of the three (the arrays stay owned here while the library reads them).
template <class T> struct token_arrays {
  carray<std::int64_t> target;
  carray<std::uint8_t> mask;
  rpo::token_logits<T> view;

  token_arrays(const carray<T>& logits, const py::handle& target_in, const py::handle& mask_in, const std::string& who)
      : target(array_of<std::int64_t>(target_in, who, "target", 2, holds::integers)) {
    const py::ssize_t s = logits.shape(0), t = logits.shape(1), v = logits.shape(2);
    if (target.shape(0) != s || target.shape(1) != t)
      fail(who, "target must have the shape (S, T) = (" + std::to_string(s) + ", " + std::to_string(t) +
                    ") of logits' first two dimensions, but has shape " + shape_text(target));
    mask = mask_of(mask_in, who, s, t);
    view = {in_span(logits), in_span(target), in_span(mask), rpo::token_shape{s, t, v}};
  }
};

template <class T> py::array wpo_weights_as(const py::handle& logits_in, const py::handle& target_in, const py::handle& mask_in) {
  const std::string who = "rpo.wpo_weights";
  const auto logits = array_of<T>(logits_in, who, "logits", 3, holds::reals);
  const token_arrays<T> tokens(logits, target_in, mask_in, who);
  auto weight = zeros<T>({logits.shape(0)});
  library([&] { rpo::wpo_weights(tokens.view, out_span(weight)); });
  return weight;
}

/// rpo.evaluate_tokens: the fused pass of an rpo.Loss (rpo::any_loss::evaluate_tokens) over numpy arrays.
template <class T>
tokens_result evaluate_tokens_as(const rpo::any_loss& loss, const py::handle& logits_in, const py::handle& target_in,
                                 const py::handle& mask_in, const py::handle& ref_logp_in, const py::handle& reward_in,
                                 const py::handle& offsets_in, rpo::token_reduction per_sequence, rpo::reduction how,
                                 bool in_place) {
  const std::string who = "rpo.evaluate_tokens";
  carray<T> logits;
  if (in_place) {
    // The gradient replaces the logits: they must be the caller's own writable, C-contiguous array of T, not a copy.
    const bool exact = py::isinstance<py::array>(logits_in) &&
                       py::reinterpret_borrow<py::array>(logits_in).dtype().is(py::dtype::of<T>());
    const auto a = exact ? py::reinterpret_borrow<py::array>(logits_in) : py::array();
    if (!exact || !(a.flags() & py::array::c_style) || !a.writeable())
      fail(who, "in_place=True needs logits to be a writable, C-contiguous numpy array of float32 or float64 (the "
                "gradient replaces it); pass in_place=False for a new gradient array");
    if (a.ndim() != 3) fail(who, "logits must be 3-D (S, T, V), but has shape " + shape_text(a));
    logits = py::reinterpret_borrow<carray<T>>(logits_in);
  } else {
    logits = array_of<T>(logits_in, who, "logits", 3, holds::reals);
  }
  const py::ssize_t s = logits.shape(0), t = logits.shape(1), v = logits.shape(2);
  const token_arrays<T> tokens(logits, target_in, mask_in, who);
  const auto ref_logp = vector_of<T>(ref_logp_in, who, "ref_logp"), reward = vector_of<T>(reward_in, who, "reward");
  const auto offsets = offsets_in.is_none() ? carray<std::int64_t>(0)
                                            : array_of<std::int64_t>(offsets_in, who, "offsets", 1, holds::integers);
  if (!offsets_in.is_none() && offsets.size() == 0)
    fail(who, "offsets must have G + 1 >= 1 entries (0, ..., S), but got none; pass offsets=None for consecutive groups");

  // Every entry of the gradient is written (masked rows get zeros), so a new array need not be cleared first.
  carray<T> grad = in_place ? logits : carray<T>({s, t, v});
  auto logp = zeros<T>({s}), length = zeros<T>({s});
  const std::int64_t groups = offsets.size() != 0 ? static_cast<std::int64_t>(offsets.size()) - 1
                              : loss.group_size() != 0 ? static_cast<std::int64_t>(s) / loss.group_size()
                                                       : 0;
  auto group_loss = zeros<T>({groups});
  const rpo::token_input<T> in{.tokens = tokens.view,
                               .per_sequence = per_sequence,
                               .ref_logp = in_span(ref_logp),
                               .reward = in_span(reward),
                               .offsets = in_span(offsets)};
  const rpo::token_output<T> out{.grad_logits = out_span(grad), .logp = out_span(logp), .length = out_span(length),
                                 .group_loss = out_span(group_loss)};
  T value = 0;
  library([&] { value = loss.evaluate_tokens(in, out, how); });
  return {static_cast<double>(value), std::move(grad), std::move(logp), std::move(length), std::move(group_loss)};
}

template <class T> py::array ld_logp_as(const py::handle& token_logp_in, const py::handle& mask_in, double alpha) {
  const std::string who = "rpo.length_desensitized_logp";
  const auto token_logp = array_of<T>(token_logp_in, who, "token_logp", 2, holds::reals);
  const py::ssize_t s = token_logp.shape(0), t = token_logp.shape(1);
  const auto mask = mask_of(mask_in, who, s, t);
  auto logp = zeros<T>({s});
  library([&] {
    rpo::length_desensitized_logp<T>(in_span(token_logp), in_span(mask), rpo::token_shape{s, t, 0}, alpha,
                                     out_span(logp));
  });
  return logp;
}

template <class T>
py::array ld_logp_backward_as(const py::handle& grad_logp_in, const py::handle& mask_in, double alpha,
                              const py::object& tokens) {
  const std::string who = "rpo.length_desensitized_logp_backward";
  const auto grad_logp = array_of<T>(grad_logp_in, who, "grad_logp", 1, holds::reals);
  const py::ssize_t s = grad_logp.shape(0);
  py::ssize_t t = 0;
  if (mask_in.is_none()) {
    if (tokens.is_none()) fail(who, "without a mask, tokens=T (positions per sequence) must be given");
    t = integer_of<py::ssize_t>(tokens, who, "tokens");
    if (t < 0) fail(who, "tokens must be >= 0, but got tokens = " + std::to_string(t));
  } else {
    const py::array m = as_array(mask_in, who, "mask");
    if (m.ndim() != 2) fail(who, "mask must be 2-D, but has shape " + shape_text(m));
    t = m.shape(1);
    if (!tokens.is_none() && integer_of<py::ssize_t>(tokens, who, "tokens") != t)
      fail(who, "tokens = " + std::string(py::repr(tokens)) + " differs from the mask's shape " + shape_text(m));
  }
  const auto mask = mask_of(mask_in, who, s, t);
  auto grad_token_logp = zeros<T>({s, t});
  library([&] {
    rpo::length_desensitized_logp_backward<T>(in_span(grad_logp), in_span(mask), rpo::token_shape{s, t, 0}, alpha,
                                              out_span(grad_token_logp));
  });
  return grad_token_logp;
}

// ---------------------------------------------------------------------------------------------------------------------
// Batch specs: rpo.evaluate_batch (rpo/batch_spec.hpp's registry, as rpo-eval --batch)
// ---------------------------------------------------------------------------------------------------------------------

/// The keyword arguments of rpo.evaluate_batch as rpo::batch_fields in float64: each a number, a 1-D or a 2-D array of
/// numbers (bool, int or float); None leaves the field out. The registry checks names, kinds and sizes.
rpo::batch_fields batch_fields_of(const py::kwargs& kwargs, const std::string& who) {
  rpo::batch_fields fields;
  for (const auto& [key, value] : kwargs) {
    if (value.is_none()) continue;
    const std::string name = py::str(key);
    const py::array any = as_array(value, who, name.c_str());
    if (any.ndim() > 2)
      fail(who, name + " must be a number, a 1-D or a 2-D array, but has shape " + shape_text(any));
    const py::dtype dtype = any.dtype();
    if (!dtype) fail(who, name + " has no dtype");
    const char kind = dtype.kind();
    if (kind != 'b' && kind != 'i' && kind != 'u' && kind != 'f' && any.size() != 0)
      fail(who, name + " must hold numbers, but has dtype " + std::string(py::str(py::handle(dtype))));
    const auto values = carray<double>::ensure(any);
    if (!values) fail(who, name + " cannot be converted to float64");
    rpo::batch_value v;
    v.values.assign(values.data(), values.data() + values.size());
    for (py::ssize_t d = 0; d < values.ndim(); ++d) v.shape.push_back(static_cast<std::size_t>(values.shape(d)));
    fields.emplace(name, std::move(v));
  }
  return fields;
}

py::dict evaluate_batch(const std::string& spec, const py::kwargs& kwargs) {
  const std::string who = "rpo.evaluate_batch";
  std::optional<rpo::batch_loss> loss;
  library([&] { loss.emplace(rpo::parse_batch_loss(spec)); }, false);
  const rpo::batch_fields fields = batch_fields_of(kwargs, who);
  rpo::batch_result r;
  library([&] { r = loss->evaluate(fields); });
  py::dict out;
  out["loss"] = r.loss;
  for (auto& [name, value] : r.outputs) {
    std::vector<py::ssize_t> shape;
    for (const std::size_t n : value.shape) shape.push_back(static_cast<py::ssize_t>(n));
    auto a = zeros<double>(shape);
    std::copy(value.values.begin(), value.values.end(), a.mutable_data());
    out[py::str(name)] = std::move(a);
  }
  return out;
}

py::list batch_methods() {
  py::list out;
  for (const rpo::batch_method_info& info : rpo::registered_batch_methods()) {
    py::dict d, parameters;
    std::string spec;
    for (const auto& p : info.parameters) {
      parameters[py::str(p.name)] = py::make_tuple(p.default_value, p.description);
      spec += (spec.empty() ? "" : ", ") + p.name + "=" + p.default_value;
    }
    d["name"] = info.name;
    d["spec"] = info.name + "(" + spec + ")";
    d["summary"] = info.summary;
    d["fields"] = info.fields;
    d["entry_point"] = info.entry_point;
    d["parameters"] = parameters;
    out.append(d);
  }
  return out;
}

}  // namespace

void register_batchwise(py::module_& m) {
  m.def("evaluate_batch", &evaluate_batch, py::arg("spec"),
        R"doc(Evaluates one whole batch of a batch method named by its spec (rpo/batch_spec.hpp, the registry that
rpo-eval --batch uses): kto, bco_unpaired, aot, gamma_po, wpo, ld_dpo, e.g.

    rpo.evaluate_batch("kto(beta=0.1)", logp=..., ref_logp=..., desirable=..., z0=0.0)
    rpo.evaluate_batch("wpo(loss=dpo(beta=0.1))", logp=..., ref_logp=..., group_weights=...)

The keyword arguments are the batch's fields (docs/rpo_eval.md#batch; rpo.batch_methods() lists them): numbers,
1-D arrays, or 2-D arrays for LD-DPO's token_logp, token_ref_logp and mask; None leaves a field out. Computes in
float64. Returns a dict: "loss" (a float, the mean over the batch's items) and the method's outputs as numpy arrays:
the per-item losses (response_loss, rank_loss, pair_loss or group_loss), grad_logp, grad_ref_logp, or for ld_dpo
logp, ref_logp, grad_token_logp, grad_token_ref_logp. Raises ValueError for a bad spec, an unknown or missing field,
a field of the wrong kind or size, or a bad value.)doc");
  m.def("batch_methods", &batch_methods,
        R"doc(Every batch method that rpo.evaluate_batch and rpo-eval --batch know: a list of dicts with name, spec
(every parameter at its default), summary, fields, entry_point and parameters ({name: (default, description)}).)doc");


  py::class_<kto_result>(m, "KTOResult", "What rpo.kto returns.")
      .def_readonly("loss", &kto_result::loss, "The reduced loss (a Python float).")
      .def_readonly("response_loss", &kto_result::response_loss,
                    "The N per-response losses, before reduction (the lambda weights included).")
      .def_readonly("grad_logp", &kto_result::grad_logp, "d loss / d logp: N entries, of the reduced loss.")
      .def_readonly("grad_ref_logp", &kto_result::grad_ref_logp,
                    "d loss / d ref_logp = -grad_logp: N entries, of the reduced loss.")
      .def("__repr__", [](const kto_result& r) {
        return "rpo.KTOResult(loss=" + std::string(py::repr(py::float_(r.loss))) +
               ", responses=" + std::to_string(r.response_loss.size()) + ")";
      });

  m.def(
      "kto",
      [](const py::object& logp, const py::object& ref_logp, const py::object& desirable, double z0, double beta,
         double lambda_desirable, double lambda_undesirable, const std::string& reduction, const py::object& count) {
        const rpo::kto l{beta, lambda_desirable, lambda_undesirable};
        const rpo::reduction how = reduction_of("rpo.kto", reduction, count);
        if (is_float32(logp)) return kto_as<float>(l, logp, ref_logp, desirable, z0, how);
        return kto_as<double>(l, logp, ref_logp, desirable, z0, how);
      },
      py::arg("logp"), py::arg("ref_logp"), py::arg("desirable"), py::arg("z0") = 0.0, py::arg("beta") = 0.1,
      py::arg("lambda_desirable") = 1.0, py::arg("lambda_undesirable") = 1.0, py::arg("reduction") = "mean",
      py::arg("count") = py::none(),
      R"doc(KTO (LOSSES.md §2.3; rpo::evaluate_kto) on N unpaired, labelled responses; returns an rpo.KTOResult
(loss, response_loss, grad_logp, grad_ref_logp).

With l = logp - ref_logp, a desirable response costs lambda_desirable * (1 - sigmoid(beta * (l - z0))) and an
undesirable one lambda_undesirable * (1 - sigmoid(beta * (z0 - l))). logp, ref_logp: 1-D arrays of N entries (float32
logp computes in float32, anything else in float64). desirable: N booleans or 0/1 integers. z0: the reference point,
a constant (no gradient), normally rpo.kto_reference_point(...) of the batch's mismatched pairs; 0 gives TRL's
apo_zero_unpaired. beta > 0; lambda_desirable, lambda_undesirable >= 0 (TRL's desirable_weight, undesirable_weight).
reduction: "mean" over the N responses (TRL's), "sum", or "sum_over" with count. Raises ValueError.)doc");

  m.def(
      "bco",
      [](const py::object& logp, const py::object& ref_logp, const py::object& desirable, double delta,
         const py::object& weight, double beta, const std::string& reduction, const py::object& count) {
        const rpo::bco_unpaired l{beta};
        const rpo::reduction how = reduction_of("rpo.bco", reduction, count);
        if (is_float32(logp)) return bco_as<float>(l, logp, ref_logp, desirable, delta, weight, how);
        return bco_as<double>(l, logp, ref_logp, desirable, delta, weight, how);
      },
      py::arg("logp"), py::arg("ref_logp"), py::arg("desirable"), py::arg("delta") = 0.0,
      py::arg("weight") = py::none(), py::arg("beta") = 0.1, py::arg("reduction") = "mean",
      py::arg("count") = py::none(),
      R"doc(Unpaired BCO (LOSSES.md §1.8; rpo::evaluate_bco; TRL's experimental BCOTrainer) on N labelled responses;
returns an rpo.KTOResult (loss, response_loss, grad_logp, grad_ref_logp).

With r = beta * (logp - ref_logp), a desirable response costs weight * softplus(-(r - delta)) and an undesirable one
weight * softplus(r - delta). delta: the running mean of rewards (a constant; see the C++ rpo::bco_reference_point),
0 for none. weight: N constants >= 0 (TRL's UDM density ratios, which need a classifier on prompt embeddings: the
caller's), or None for 1. desirable: N booleans or 0/1 integers. reduction: "mean" over the N responses, "sum", or
"sum_over" with count. Raises ValueError.)doc");

  m.def(
      "kto_reference_point",
      [](const py::object& mismatched_logp, const py::object& mismatched_ref_logp) {
        if (is_float32(mismatched_logp)) return kto_reference_point_as<float>(mismatched_logp, mismatched_ref_logp);
        return kto_reference_point_as<double>(mismatched_logp, mismatched_ref_logp);
      },
      py::arg("mismatched_logp"), py::arg("mismatched_ref_logp"),
      R"doc(KTO's reference point z0 = max(0, mean(mismatched_logp - mismatched_ref_logp)) over the batch's
mismatched pairs (x_j, y_{j+1}) (LOSSES.md §2.3; rpo::kto_reference_point): a Python float, computed in float32 when
mismatched_logp is float32 (the sum in double either way). A constant of the objective: pass it as rpo.kto(z0=...).
Raises ValueError for different sizes, no pairs, or a non-finite value.)doc");

  m.def(
      "aot",
      [](const py::object& logp, const py::object& ref_logp, const py::object& offsets, double beta, double epsilon,
         bool unpaired, const std::string& reduction, const py::object& count) {
        const rpo::aot l{beta, epsilon, unpaired};
        const rpo::reduction how = reduction_of("rpo.aot", reduction, count);
        if (is_float32(logp)) return aot_as<float>(l, logp, ref_logp, offsets, how);
        return aot_as<double>(l, logp, ref_logp, offsets, how);
      },
      py::arg("logp"), py::arg("ref_logp"), py::arg("offsets") = py::none(), py::arg("beta") = 0.1,
      py::arg("epsilon") = 0.0, py::arg("unpaired") = false, py::arg("reduction") = "mean",
      py::arg("count") = py::none(),
      R"doc(AOT (LOSSES.md §1.10; rpo::evaluate_aot, TRL's aot and aot_unpaired) on the B pairs of the batch;
returns an rpo.Result whose group_loss holds the B terms of each RANK k, not of each pair (AOT has no per-pair loss).

logp, ref_logp: 1-D, consecutive (chosen, rejected) pairs; offsets, if given, must make every group a pair.
Paired (unpaired=False): sort u = logp_c - logp_r and u_ref = ref_c - ref_r separately, delta_k = u_(k) - u_ref_(k).
Unpaired: sort l_c and l_r (l = logp - ref_logp) separately, delta_k = l_c,(k) - l_r,(k). Each rank costs
(1 - epsilon) * softplus(-beta * delta_k) + epsilon * softplus(beta * delta_k). beta > 0, epsilon in [0, 0.5).
Ties are ordered by index (the gradient of the stable order). reduction: "mean" over B, "sum", "sum_over" with
count. Raises ValueError.)doc");

  m.def(
      "evaluate_weighted",
      [](const rpo::any_loss& loss, const py::object& group_weights, const py::object& logp, const py::object& ref_logp,
         const py::object& length, const py::object& reward, const py::object& offsets, const std::string& reduction,
         const py::object& count) {
        const std::string who = "rpo.evaluate_weighted";
        if (logp.is_none()) fail(who, "logp must be given");
        const rpo::reduction how = reduction_of(who, reduction, count);
        if (is_float32(logp))
          return evaluate_weighted_as<float>(loss, group_weights, logp, ref_logp, length, reward, offsets, how);
        return evaluate_weighted_as<double>(loss, group_weights, logp, ref_logp, length, reward, offsets, how);
      },
      py::arg("loss"), py::arg("group_weights"), py::arg("logp"), py::arg("ref_logp") = py::none(),
      py::arg("length") = py::none(), py::arg("reward") = py::none(), py::arg("offsets") = py::none(),
      py::arg("reduction") = "mean", py::arg("count") = py::none(),
      R"doc(An rpo.Loss with a constant weight c_g per group (rpo::evaluate_weighted; LOSSES.md §1.16, WPO's
L_g <- w(y_c) * w(y_r) * L_g); returns an rpo.Result.

loss: an rpo.Loss. group_weights: G finite weights >= 0, one per group, constants (no gradient). The other arguments
are those of Loss.value_and_grad. The reduced loss is the reduction of c_g * L_g ("mean" divides by G, not by
sum(c)); group_loss holds the weighted c_g * L_g; each response's gradient is c_g times the unweighted one, scaled
by the reduction. Nothing is clamped. For WPO: c = w[0::2] * w[1::2] with w = rpo.wpo_weights(...). Raises
ValueError (also for a wrong number of weights, or a negative or non-finite one).)doc");

  m.def(
      "gamma_po_gaps",
      [](const py::object& logp, const py::object& ref_logp, const py::object& length, const py::object& offsets,
         double beta, double gamma_beta_ratio, bool simpo) {
        const rpo::gamma_po l{beta, gamma_beta_ratio, simpo};
        if (is_float32(logp)) return gamma_po_gaps_as<float>(l, logp, ref_logp, length, offsets);
        return gamma_po_gaps_as<double>(l, logp, ref_logp, length, offsets);
      },
      py::arg("logp"), py::arg("ref_logp") = py::none(), py::arg("length") = py::none(),
      py::arg("offsets") = py::none(), py::arg("beta") = 0.1, py::arg("gamma_beta_ratio") = 0.5,
      py::arg("simpo") = false,
      R"doc(γ-PO's policy gaps of the B pairs (LOSSES.md §4.6; rpo::gamma_po_gaps): a 1-D array of B entries,
beta * ((logp_c - ref_c) - (logp_r - ref_r)) for γ-DPO (simpo=False, reads logp and ref_logp), or
beta * (logp_c / n_c - logp_r / n_r) for γ-SimPO (simpo=True, reads logp and length). What
rpo.GammaPOMargins.compute takes. Layout as rpo.aot (consecutive pairs, or offsets making every group a pair).
Raises ValueError.)doc");

  m.def(
      "gamma_po",
      [](const py::object& margins, const py::object& logp, const py::object& ref_logp, const py::object& length,
         const py::object& offsets, double beta, double gamma_beta_ratio, bool simpo, const std::string& reduction,
         const py::object& count) {
        const rpo::gamma_po l{beta, gamma_beta_ratio, simpo};
        const rpo::reduction how = reduction_of("rpo.gamma_po", reduction, count);
        if (is_float32(logp)) return gamma_po_as<float>(l, margins, logp, ref_logp, length, offsets, how);
        return gamma_po_as<double>(l, margins, logp, ref_logp, length, offsets, how);
      },
      py::arg("margins"), py::arg("logp"), py::arg("ref_logp") = py::none(), py::arg("length") = py::none(),
      py::arg("offsets") = py::none(), py::arg("beta") = 0.1, py::arg("gamma_beta_ratio") = 0.5,
      py::arg("simpo") = false, py::arg("reduction") = "mean", py::arg("count") = py::none(),
      R"doc(γ-PO's loss given the margins (LOSSES.md §4.6; rpo::evaluate_gamma_po); returns an rpo.Result whose
group_loss holds the B per-pair losses.

margins: B finite margins gamma_i, constants (no gradient), normally rpo.GammaPOMargins(...).compute(gaps). With a
the pair's gap (rpo.gamma_po_gaps) and gamma_0 = gamma_beta_ratio * beta: γ-DPO costs softplus(-(a - (gamma_i -
gamma_0))), γ-SimPO softplus(-(a - gamma_i)). Margins all equal to gamma_0 give DPO (γ-SimPO: SimPO with gamma =
gamma_0). reduction: "mean" over the B pairs, "sum", "sum_over" with count. Raises ValueError.)doc");

  py::class_<rpo::gamma_po_margins>(m, "GammaPOMargins", R"doc(γ-PO's margin optimiser with its FIFO queue of past
gaps (LOSSES.md §4.6; rpo::gamma_po_margins). Not thread-safe: each call changes the queue.

GammaPOMargins(beta=0.1, gamma_beta_ratio=0.5, simpo=False, tau=10.0, iterations=20, step=0.0, epsilon=1e-10,
capacity=2048, opt_size=256, seed=0x9e3779b97f4a7c15): the loss's settings (its gamma_0 = gamma_beta_ratio * beta)
and the optimiser's (docs/methods.md#gamma_po_margins): tau > 0 weighs KL(p || uniform); iterations >= 1; step, the
exponentiated-gradient step (0: min(0.5 / tau, 1)); epsilon >= 0 in log(n (p + epsilon)); the queue keeps at most
capacity gaps; opt_size gaps (current and past) take part in one optimisation; seed seeds the queue sample. A bad
setting raises ValueError here.)doc")
      .def(py::init(&make_margins), py::arg("beta") = 0.1, py::arg("gamma_beta_ratio") = 0.5, py::arg("simpo") = false,
           py::arg("tau") = 10.0, py::arg("iterations") = 20, py::arg("step") = 0.0, py::arg("epsilon") = 1e-10,
           py::arg("capacity") = 2048, py::arg("opt_size") = 256, py::arg("seed") = py::int_(0x9e3779b97f4a7c15ULL))
      .def(
          "compute",
          [](rpo::gamma_po_margins& self, const py::object& gaps) {
            if (is_float32(gaps)) return margins_as<float>(self, gaps);
            return margins_as<double>(self, gaps);
          },
          py::arg("gaps"),
          R"doc(The margins gamma_i of the B current gaps (rpo.gamma_po_gaps), a 1-D array in gaps' precision;
then pushes the gaps into the queue. m = min(len(queue), opt_size - B) past gaps drawn from the queue take part in
the optimisation of p (exponentiated gradient from the uniform p on (1/n) sum softplus(gamma_j - g_j) +
tau * KL(p || uniform), gamma_j = gamma_0 * n * p_j). Raises ValueError (a non-finite gap), leaving the queue
unchanged.)doc")
      .def(
          "push",
          [](rpo::gamma_po_margins& self, const py::object& gaps_in) {
            const std::string who = "rpo.GammaPOMargins.push";
            const auto gaps = array_of<double>(gaps_in, who, "gaps", 1, holds::reals);
            // The library pushes unchecked; a NaN in the queue would silently poison every later margin.
            for (py::ssize_t i = 0; i < gaps.size(); ++i)
              if (!rpo::is_finite(gaps.data()[i]))
                fail(who, "gaps[" + std::to_string(i) + "] must be finite, but got gaps[" + std::to_string(i) +
                              "] = " + std::string(py::repr(py::float_(gaps.data()[i]))));
            self.push(in_span(gaps));
          },
          py::arg("gaps"),
          "Pushes gaps into the queue without optimising (to seed it, as the reference code does with 8 draws of "
          "a standard normal); the oldest are dropped past capacity. Raises ValueError for a non-finite gap.")
      .def("clear", &rpo::gamma_po_margins::clear, "Empties the queue.")
      .def_property_readonly(
          "queue",
          [](const rpo::gamma_po_margins& self) {
            const auto& q = self.queue();
            carray<double> out(static_cast<py::ssize_t>(q.size()));
            std::copy(q.begin(), q.end(), out.mutable_data());
            return out;
          },
          "A copy of the queue of past gaps, oldest first (float64).")
      .def_property_readonly(
          "gamma_0", [](const rpo::gamma_po_margins& self) { return self.loss_settings().gamma_0(); },
          "gamma_0 = gamma_beta_ratio * beta, the mean margin.")
      .def("__repr__", [](const rpo::gamma_po_margins& self) {
        const rpo::gamma_po& l = self.loss_settings();
        return "rpo.GammaPOMargins(beta=" + std::string(py::repr(py::float_(l.beta))) +
               ", gamma_beta_ratio=" + std::string(py::repr(py::float_(l.gamma_beta_ratio))) +
               ", simpo=" + (l.simpo ? "True" : "False") + ", queue=" + std::to_string(self.queue().size()) + ")";
      });

  m.def(
      "wpo_weights",
      [](const py::object& logits, const py::object& target, const py::object& mask) {
        if (is_float32(logits)) return wpo_weights_as<float>(logits, target, mask);
        return wpo_weights_as<double>(logits, target, mask);
      },
      py::arg("logits"), py::arg("target"), py::arg("mask") = py::none(),
      R"doc(WPO's weight of each response (LOSSES.md §1.16; rpo::wpo_weights): a 1-D array of S entries, in the
logits' precision (float32 stays float32), w(y_s) = exp(mean over the response tokens t of
[log pi(y_t) - log sum_v pi(v)^2]), a constant of the objective (no gradient).

logits: (S, T, V), position t holding the logits that predict target[s, t] (shifted, as trainers do). target:
(S, T) integers in [0, V) at response positions (masked ones are not read, -100 is fine). mask: (S, T) booleans or
integers (nonzero: a response token), or None for every position. Weight pair i's loss by w[2i] * w[2i + 1] with
rpo.evaluate_weighted. Raises ValueError (an empty response, a target out of range, a non-finite log-prob).)doc");

  m.def(
      "length_desensitized_logp",
      [](const py::object& token_logp, const py::object& mask, double alpha) {
        if (is_float32(token_logp)) return ld_logp_as<float>(token_logp, mask, alpha);
        return ld_logp_as<double>(token_logp, mask, alpha);
      },
      py::arg("token_logp"), py::arg("mask"), py::arg("alpha"),
      R"doc(LD-DPO's sequence log-probs (LOSSES.md §1.17; rpo::length_desensitized_logp): a 1-D array of S entries
in token_logp's precision. Sequences 2p and 2p + 1 are pair p (chosen, rejected); with n_min the shorter response
length of the pair (tokens with mask != 0, counted in order), logp[s] = sum of the first n_min response tokens +
alpha * sum of the later ones. Call it for the policy and for the reference under the same mask, then evaluate any
loss on the results. token_logp: (S, T), S even; mask: (S, T) booleans or integers, or None for every position;
alpha in [0, 1] (1: the plain sum; 0 drops the longer response's tail). Raises ValueError.)doc");

  m.def(
      "length_desensitized_logp_backward",
      [](const py::object& grad_logp, const py::object& mask, double alpha, const py::object& tokens) {
        if (is_float32(grad_logp)) return ld_logp_backward_as<float>(grad_logp, mask, alpha, tokens);
        return ld_logp_backward_as<double>(grad_logp, mask, alpha, tokens);
      },
      py::arg("grad_logp"), py::arg("mask"), py::arg("alpha"), py::arg("tokens") = py::none(),
      R"doc(The chain rule through rpo.length_desensitized_logp (rpo::length_desensitized_logp_backward): an (S, T)
array in grad_logp's precision, grad_logp[s] at the first n_min response tokens of sequence s, alpha * grad_logp[s]
at its later response tokens, 0 at masked positions. grad_logp: S entries (d loss / d logp of the S sequences);
mask: (S, T), or None for every position, and then tokens=T must be given. Raises ValueError.)doc");

  py::class_<tokens_result>(m, "TokensResult", "What rpo.evaluate_tokens returns.")
      .def_readonly("loss", &tokens_result::loss, "The reduced loss (a Python float).")
      .def_readonly("grad_logits", &tokens_result::grad_logits,
                    "d loss / d logits, (S, T, V), of the reduced loss; the logits array itself with in_place=True.")
      .def_readonly("logp", &tokens_result::logp, "The S sequence log-probs (summed, or averaged with per_sequence).")
      .def_readonly("length", &tokens_result::length, "The S response lengths n_s = sum_t mask[s, t].")
      .def_readonly("group_loss", &tokens_result::group_loss, "The G per-group losses, before reduction.")
      .def("__repr__", [](const tokens_result& r) {
        return "rpo.TokensResult(loss=" + std::string(py::repr(py::float_(r.loss))) + ", sequences=" +
               std::to_string(r.logp.size()) + ")";
      });

  m.def(
      "evaluate_tokens",
      [](const rpo::any_loss& loss, const py::object& logits, const py::object& target, const py::object& mask,
         const py::object& ref_logp, const py::object& reward, const py::object& offsets,
         const std::string& per_sequence, const std::string& reduction, const py::object& count, bool in_place) {
        const std::string who = "rpo.evaluate_tokens";
        if (per_sequence != "sum" && per_sequence != "mean")
          fail(who, "per_sequence must be \"sum\" or \"mean\", but got \"" + per_sequence + "\"");
        const auto per = per_sequence == "sum" ? rpo::token_reduction::sum : rpo::token_reduction::mean;
        const rpo::reduction how = reduction_of(who, reduction, count);
        if (is_float32(logits))
          return evaluate_tokens_as<float>(loss, logits, target, mask, ref_logp, reward, offsets, per, how, in_place);
        return evaluate_tokens_as<double>(loss, logits, target, mask, ref_logp, reward, offsets, per, how, in_place);
      },
      py::arg("loss"), py::arg("logits"), py::arg("target"), py::arg("mask") = py::none(),
      py::arg("ref_logp") = py::none(), py::arg("reward") = py::none(), py::arg("offsets") = py::none(),
      py::arg("per_sequence") = "sum", py::arg("reduction") = "mean", py::arg("count") = py::none(),
      py::arg("in_place") = false,
      R"doc(The fused pass from logits to the gradient of an rpo.Loss (rpo::any_loss::evaluate_tokens; docs/token.md):
log-softmax, gather, masked sum, the loss and its chain rule back to the logits, in two streamed passes over the
logits with O(S * T) extra memory; returns an rpo.TokensResult (loss, grad_logits, logp, length, group_loss).

logits: (S, T, V), position t holding the logits that predict target[s, t] (shifted, as trainers do); float32 stays
float32, anything else is computed in float64. target: (S, T) integers in [0, V) at response positions (masked ones
are not read, -100 is fine). mask: (S, T) booleans or integers (nonzero: a response token), or None for every
position. Sequence s is response s of the batch: consecutive (chosen, rejected) pairs without offsets, or groups by
offsets (G + 1 integers from 0 to S). ref_logp, reward: S sequence-level fields, if the loss reads them (ref_logp made
the same way as the policy's: summed, or averaged with per_sequence="mean"). per_sequence: "sum" (default) or "mean"
over the response length. reduction: "mean" over the G groups, "sum", or "sum_over" with count. in_place=True writes
the gradient over the logits array (which must be a writable, C-contiguous float32 or float64 numpy array) instead
of a new one. The GIL is released, and the rows run on OMP_NUM_THREADS threads. Raises ValueError (target ids outside
[0, V), shapes, an empty response under a length-normalised reward or a mean).)doc");
}

}  // namespace rpo_python
