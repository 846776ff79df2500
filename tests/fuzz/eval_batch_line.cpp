// Fuzz target: rpo-eval's batch mode (tools/rpo_eval_batch.hpp, rpo/batch_spec.hpp) on arbitrary bytes. The first
// byte picks a batch method (a fixed list of specs), the rest is one JSON line, a whole batch. A line is evaluated or
// rejected with rpo_eval::usage_error naming the line and field (nothing else escapes, nothing crashes); an evaluated
// batch whose numbers all lie in [-1e15, 1e15] and whose lengths lie in [1, 1e9] (docs/reliability.md's promised
// ranges) has a finite loss and finite outputs.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "rpo/batch_spec.hpp"
#include "rpo_eval_batch.hpp"

namespace rpo_fuzz::detail {

/// Whether every number in `value` (a number, or arrays of them, nested) lies in [lo, hi].
bool all_within(const rpo_eval::json& value, double lo, double hi) {
  if (value.is_number()) return value.get<double>() >= lo && value.get<double>() <= hi;
  if (value.is_array() || value.is_object()) {
    for (const auto& x : value)
      if (!all_within(x, lo, hi)) return false;
  }
  return true;
}

}  // namespace rpo_fuzz::detail

namespace rpo_fuzz {

/// One input of fuzz:eval_batch_line (tests/fuzz/main.cpp dispatches).
int eval_batch_line(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const std::vector<rpo::batch_loss> methods = [] {
    std::vector<rpo::batch_loss> out;
    for (const char* spec : {"kto", "bco_unpaired", "aot", "aot(unpaired=true, epsilon=0.1)", "gamma_po",
                             "gamma_po(simpo=true)", "wpo", "wpo(loss=rpo_sqloo)", "ld_dpo(alpha=0.5)",
                             "ld_dpo(alpha=0, loss=ipo)"})
      out.push_back(rpo::parse_batch_loss(spec));
    return out;
  }();
  const rpo::batch_loss& loss = methods[data[0] % methods.size()];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const rpo_eval::json object = rpo_eval::parse_line(text, 1);
    const rpo_eval::batch_line line = rpo_eval::read_batch_line(object, 1, loss);
    const rpo::batch_result r = rpo_eval::evaluate_batch(loss, line, 1);
    const auto length = object.find("length");
    if (detail::all_within(object, -1e15, 1e15) && (length == object.end() || detail::all_within(*length, 1, 1e9))) {
      if (!std::isfinite(r.loss)) std::abort();
      for (const auto& [name, value] : r.outputs)
        for (const double x : value.values)
          if (!std::isfinite(x)) std::abort();
    }
  } catch (const rpo_eval::usage_error&) {
  }
  return 0;
}

}  // namespace rpo_fuzz
