// rpo._rpo — the Python binding of rpo::any_loss (rpo/spec.hpp) over numpy arrays.
//
// Python names: rpo.Loss, rpo.Result, rpo.losses, rpo.__version__ (re-exported by rpo/__init__.py); batchwise.cpp
// adds the batch- and token-level functions that have no spec name: rpo.kto, rpo.kto_reference_point, rpo.KTOResult,
// rpo.aot, rpo.evaluate_weighted, rpo.gamma_po_gaps, rpo.gamma_po, rpo.GammaPOMargins, rpo.wpo_weights,
// rpo.length_desensitized_logp, rpo.length_desensitized_logp_backward.
// A Loss is parsed once from a spec string; Loss.value_and_grad evaluates a batch (rpo/batch.hpp's layout) in
// float64, or in float32 when logp is float32, and returns the reduced loss, the per-group losses and the gradients
// of the reduced loss. Every error of the library (a bad spec, a missing field, a NaN) is a ValueError carrying the
// library's message; the binding adds its own, also ValueErrors, for what the library cannot see (shapes, dtypes).
// @sa python/README.md
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>

#include "rpo/batch.hpp"
#include "rpo/concepts.hpp"
#include "rpo/config.hpp"
#include "rpo/spec.hpp"
#include "arrays.hpp"
#include "result.hpp"

#ifndef RPO_VERSION_STRING
#  define RPO_PYTHON_STRINGIFY_(x) #x
#  define RPO_PYTHON_STRINGIFY(x) RPO_PYTHON_STRINGIFY_(x)
#  define RPO_VERSION_STRING                                                                                  \
    RPO_PYTHON_STRINGIFY(RPO_VERSION_MAJOR) "." RPO_PYTHON_STRINGIFY(RPO_VERSION_MINOR) "." RPO_PYTHON_STRINGIFY( \
        RPO_VERSION_PATCH)
#endif

namespace py = pybind11;

namespace {

constexpr const char* who = "rpo.Loss.value_and_grad";

using rpo_python::result;  // shared with batchwise.cpp (result.hpp)

template <class T>
result evaluate(const rpo::any_loss& loss, const py::handle& logp_in, const py::handle& ref_logp_in,
                const py::handle& length_in, const py::handle& reward_in, const py::handle& offsets_in,
                rpo::reduction how) {
  // The arrays are owned by `b` for the whole call: its spans view them while the GIL is released.
  const rpo_python::batch<T> b(who, logp_in, ref_logp_in, length_in, reward_in, offsets_in, "groups");
  // group_count is 0 or a wrong size only where evaluate rejects the shape before it looks at the outputs.
  auto group_loss = rpo_python::zeros<T>({std::max<std::int64_t>(loss.group_count(b.in), 0)});
  auto grad_logp = rpo_python::zeros<T>({b.size()}), grad_ref_logp = rpo_python::zeros<T>({b.size()});
  const rpo::batch_output<T> out{rpo_python::out_span(group_loss), rpo_python::out_span(grad_logp),
                                 rpo_python::out_span(grad_ref_logp)};
  T value{};
  rpo_python::library([&] { value = loss.evaluate(b.in, out, how); });
  return {static_cast<double>(value), std::move(group_loss), std::move(grad_logp), std::move(grad_ref_logp)};
}

py::tuple input_names(rpo::input flags) {
  py::list names;
  const std::pair<rpo::input, const char*> fields[] = {{rpo::input::logp, "logp"},
                                                       {rpo::input::ref_logp, "ref_logp"},
                                                       {rpo::input::length, "length"},
                                                       {rpo::input::reward, "reward"}};
  for (const auto& [flag, name] : fields)
    if (rpo::contains(flags, flag)) names.append(name);
  return py::tuple(names);
}

rpo::any_loss parse(const std::string& spec) {
  try {
    return rpo::parse_loss(spec);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

std::string repr_of(const rpo::any_loss& loss) { return "rpo.Loss(" + std::string(py::repr(py::str(loss.spec()))) + ")"; }

}  // namespace

PYBIND11_MODULE(_rpo, m) {
  m.doc() = "rpo: preference-optimization losses with analytic gradients (the binding of rpo/spec.hpp)";
  m.attr("__version__") = RPO_VERSION_STRING;

  py::class_<result>(m, "Result", "What Loss.value_and_grad returns.")
      .def_readonly("loss", &result::loss, "The reduced loss (a Python float).")
      .def_readonly("group_loss", &result::group_loss, "The G per-group losses, before reduction.")
      .def_readonly("grad_logp", &result::grad_logp, "d loss / d logp: N entries, of the reduced loss.")
      .def_readonly("grad_ref_logp", &result::grad_ref_logp,
                    "d loss / d ref_logp: N entries, of the reduced loss (zeros when the loss does not read "
                    "ref_logp).")
      .def("__repr__", [](const result& r) {
        return "rpo.Result(loss=" + std::string(py::repr(py::float_(r.loss))) + ", groups=" +
               std::to_string(r.group_loss.size()) + ", responses=" + std::to_string(r.grad_logp.size()) + ")";
      });

  py::class_<rpo::any_loss>(m, "Loss", R"doc(A loss chosen by its spec string, such as "dpo(beta=0.1)" or
"rpo(distance=bwd_kl, reward=implicit, target=reward_gap, beta=0.2, eta=1)". See rpo.losses() for the names.

Raises ValueError, with the valid choices, for a spec that does not parse.)doc")
      .def(py::init(&parse), py::arg("spec"))
      .def_property_readonly("name", &rpo::any_loss::name, "The spec name: 'dpo', ..., or 'rpo' for the general form.")
      .def_property_readonly("spec", &rpo::any_loss::spec,
                             "The canonical spec, every parameter written out: 'dpo(beta=0.1)'.")
      .def_property_readonly("composition", &rpo::any_loss::composition,
                             "The composition in policy names: 'distance::..., reward::..., target::..., sampling::...'.")
      .def_property_readonly(
          "inputs", [](const rpo::any_loss& l) { return input_names(l.inputs()); },
          "The fields the loss reads, as a tuple of names: ('logp', 'ref_logp', ...).")
      .def_property_readonly("group_size", &rpo::any_loss::group_size,
                             "The number of responses of every group (2 for pairs), or 0 for groups of any size.")
      .def_property_readonly("min_group_size", &rpo::any_loss::min_group_size, "The fewest responses a group may have.")
      .def(
          "value_and_grad",
          [](const rpo::any_loss& loss, const py::object& logp, const py::object& ref_logp, const py::object& length,
             const py::object& reward, const py::object& offsets, const std::string& reduction,
             const py::object& count) {
            if (logp.is_none()) throw py::value_error(std::string(who) + ": logp must be given");
            const rpo::reduction how = rpo_python::reduction_of(who, reduction, count, "groups");
            // np.asarray(logp) once: its dtype picks the precision (a list of Python floats is float64).
            const py::array as_array = py::array::ensure(logp);
            const py::handle values = as_array ? py::handle(as_array) : py::handle(logp);
            if (as_array && as_array.dtype().is(py::dtype::of<float>()))
              return evaluate<float>(loss, values, ref_logp, length, reward, offsets, how);
            return evaluate<double>(loss, values, ref_logp, length, reward, offsets, how);
          },
          py::arg("logp"), py::arg("ref_logp") = py::none(), py::arg("length") = py::none(),
          py::arg("reward") = py::none(), py::arg("offsets") = py::none(), py::arg("reduction") = "mean",
          py::arg("count") = py::none(),
          R"doc(Evaluates the loss on a batch; returns an rpo.Result (loss, group_loss, grad_logp, grad_ref_logp).

logp, ref_logp, length, reward: 1-D arrays of the N responses' fields (the fields in `inputs` are required, the others
ignored). The dtype of logp picks the precision: float32 stays float32, anything else is computed in float64; the
other arrays are converted to that dtype. Groups: consecutive pairs (chosen, rejected, chosen, ...) without offsets,
or offsets, G + 1 integers from 0 to N (required by the group losses, group_size == 0). reduction: "mean" over the G groups, "sum", or "sum_over" with count (the
number of groups of the whole global batch). The gradients are those of the reduced loss. Raises ValueError.)doc")
      .def("__repr__", &repr_of)
      .def(py::pickle([](const rpo::any_loss& l) { return l.spec(); },
                      [](const std::string& spec) { return parse(spec); }));

  m.def(
      "losses",
      [] {
        py::list out;
        for (const rpo::loss_info& info : rpo::registered_losses()) {
          py::list parameters;
          for (const rpo::parameter_info& p : info.parameters)
            parameters.append(py::dict(py::arg("name") = p.name, py::arg("default") = p.default_value,
                                       py::arg("description") = p.description));
          out.append(py::dict(py::arg("name") = info.name, py::arg("summary") = info.summary,
                              py::arg("composition") = info.composition, py::arg("paper") = info.paper,
                              py::arg("libraries") = info.libraries, py::arg("parameters") = parameters));
        }
        return out;
      },
      "Every loss a spec can name: a list of dicts (name, summary, composition, paper, libraries, parameters: a list "
      "of dicts name, default, description); the presets, then the general form 'rpo'.");

  rpo_python::register_batchwise(m);  // KTO, AOT, evaluate_weighted, γ-PO, WPO weights, LD-DPO (batchwise.cpp)
}
