// Fuzz target: rpo-eval's input parser (tools/rpo_eval_lines.hpp) on arbitrary bytes. The first byte picks a
// registered loss (its defaults), the rest is one JSON Lines group. A line is evaluated or rejected with
// rpo_eval::usage_error naming the line and field (nothing else escapes, nothing crashes); an evaluated group whose
// values lie in the promised range (docs/reliability.md: |log-probs| <= 1e15, |rewards| <= 1e30, 1 <= lengths <= 1e9)
// has a finite loss and finite gradients.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "rpo/spec.hpp"
#include "rpo_eval_lines.hpp"

namespace rpo_fuzz::detail {

/// Whether every number of array `field` (when present) lies in [lo, hi].
bool within(const rpo_eval::json& object, const char* field, double lo, double hi) {
  const auto it = object.find(field);
  if (it == object.end() || !it->is_array()) return true;
  for (const auto& x : *it)
    if (x.is_number() && !(x.get<double>() >= lo && x.get<double>() <= hi)) return false;
  return true;
}

}  // namespace rpo_fuzz::detail

namespace rpo_fuzz {

/// One input of fuzz:eval_line (tests/fuzz/main.cpp dispatches).
int eval_line(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  static const std::vector<rpo::any_loss> losses = [] {
    std::vector<rpo::any_loss> out;
    for (const rpo::loss_info& info : rpo::registered_losses())
      if (info.name != "rpo") out.push_back(rpo::parse_loss(info.name));
    return out;
  }();
  const rpo::any_loss& loss = losses[data[0] % losses.size()];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const rpo_eval::json object = rpo_eval::parse_line(text, 1);
    const rpo_eval::result r = rpo_eval::evaluate(loss, rpo_eval::line_reader(object, 1));
    if (detail::within(object, "logp", -1e15, 1e15) && detail::within(object, "ref_logp", -1e15, 1e15) &&
        detail::within(object, "reward", -1e30, 1e30) && detail::within(object, "length", 1, 1e9)) {
      if (!std::isfinite(r.loss)) std::abort();
      for (std::size_t i = 0; i < r.grad_logp.size(); ++i)
        if (!std::isfinite(r.grad_logp[i]) || !std::isfinite(r.grad_ref_logp[i])) std::abort();
    }
  } catch (const rpo_eval::usage_error&) {
  }
  return 0;
}

}  // namespace rpo_fuzz
