// What the two source files of the extension rpo._rpo share: rpo.Result's C++ type (so that the batch-level
// functions of batchwise.cpp return the same Python class as Loss.value_and_grad) and the registration hook of
// batchwise.cpp. Named namespace, not an anonymous one: both translation units must see one type.
// @sa python/README.md
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

namespace rpo_python {

/// What Loss.value_and_grad (and rpo.aot, rpo.evaluate_weighted, rpo.gamma_po) return: the reduced loss, and numpy
/// arrays of the per-group losses and the gradients.
struct result {
  double loss = 0;
  pybind11::array group_loss, grad_logp, grad_ref_logp;
};

/// Adds the batch-level and token-level functions (python/src/batchwise.cpp) to the module; called after rpo.Result
/// is registered.
void register_batchwise(pybind11::module_& m);

}  // namespace rpo_python
