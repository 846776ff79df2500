// Fuzz target: every registered loss on arbitrary finite inputs of moderate size. The bytes pick a loss (a preset
// at its defaults, or a general rpo(...) composition), a group size and the values. The checked entry point either
// rejects the group (a tie a ranking scheme cannot order: std::domain_error) or returns a finite loss whose
// analytic gradient in every log-prob agrees with a central finite difference wherever the loss is smooth there
// (two step sizes agree: not at a hinge's kink).
// @sa docs/reliability.md#fuzzing
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <stdexcept>
#include <vector>

#include <fuzzer/FuzzedDataProvider.h>

#include "rpo/spec.hpp"
#include "support/every_loss.hpp"


namespace rpo_fuzz {

/// One input of fuzz:presets (tests/fuzz/main.cpp dispatches).
int presets(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const rpo::any_loss& loss = test::every_loss()[in.ConsumeIntegralInRange<std::size_t>(0, test::every_loss().size() - 1)];
  const std::int64_t k = loss.group_size() != 0 ? loss.group_size() : in.ConsumeIntegralInRange<std::int64_t>(2, 6);
  const auto n = static_cast<std::size_t>(k);
  std::vector<double> logp(n), ref_logp(n), length(n), reward(n);
  for (std::size_t i = 0; i < n; ++i) {
    logp[i] = in.ConsumeFloatingPointInRange<double>(-60.0, 0.0);
    ref_logp[i] = in.ConsumeFloatingPointInRange<double>(-60.0, 0.0);
    length[i] = in.ConsumeFloatingPointInRange<double>(1.0, 200.0);
    // Win probabilities (rpo::sppo_soft) in their domain [0, 1]; other rewards anywhere in [-10, 10].
    reward[i] = loss.reward_is_probability() ? in.ConsumeProbability<double>()
                                             : in.ConsumeFloatingPointInRange<double>(-10.0, 10.0);
  }
  const std::int64_t offsets[2] = {0, k};
  const auto value = [&](const std::vector<double>& at, std::vector<double>* grad) {
    std::vector<double> unused(n);
    return loss.evaluate(rpo::batch_input<double>{at, ref_logp, length, reward, offsets},
                         rpo::batch_output<double>{{}, grad ? *grad : unused, {}}, rpo::reduction::sum());
  };
  std::vector<double> grad(n);
  double f;
  try {
    f = value(logp, &grad);
  } catch (const std::domain_error&) {  // ties a ranking scheme cannot order
    return 0;
  }
  if (!std::isfinite(f)) std::abort();
  for (std::size_t i = 0; i < n; ++i) {
    if (!std::isfinite(grad[i])) std::abort();
    const auto at = [&](double h) {
      std::vector<double> moved = logp;
      moved[i] += h;
      return value(moved, nullptr);
    };
    constexpr double h = 1e-5;
    double up10, down10, up, down;
    try {
      up10 = at(10 * h), down10 = at(-10 * h), up = at(h), down = at(-h);
    } catch (const std::domain_error&) {  // a step that ties two responses of a ranking
      continue;
    }
    const double coarse = (up10 - down10) / (20 * h), fine = (up - down) / (2 * h);
    // The difference quotient's rounding error: a few ulps of the loss over the step. A loss of 1e12 (f-DPO's
    // forward-KL reward e^{−ℓ} at ℓ = −30) hides any change a step of 1e-5 makes; the tolerance says so.
    const double rounding = 8 * std::numeric_limits<double>::epsilon() * (1 + std::fabs(f)) / h;
    const double scale = 1 + std::fabs(fine);
    // Not smooth here: the two step sizes disagree, or there is a kink at the point itself (DPOP's max(0, −ℓ_c) at
    // ℓ_c = 0; ORPO's odds clamped at p̄ = 1, logp = 0), which a central difference straddles symmetrically at every
    // step size. At a kink the one-sided slopes differ by the same jump at both step sizes; where the loss is smooth
    // their difference is its curvature times the step, ten times larger at the coarse step.
    if (std::fabs(coarse - fine) > 1e-4 * scale + 10 * rounding) continue;
    const double jump = (up - f) / h - (f - down) / h, jump10 = (up10 - f) / (10 * h) - (f - down10) / (10 * h);
    if (std::fabs(jump) > 1e-9 + 10 * rounding && std::fabs(jump10) < 3 * std::fabs(jump)) continue;
    if (std::fabs(grad[i] - fine) > 1e-5 * scale + rounding) {
      std::fprintf(stderr, "rpo_fuzz presets: %s: d loss / d logp[%zu] = %.17g, central difference %.17g\n",
                   loss.spec().c_str(), i, grad[i], fine);
      for (std::size_t j = 0; j < n; ++j)
        std::fprintf(stderr, "  logp %.17g ref_logp %.17g length %.17g reward %.17g\n", logp[j], ref_logp[j],
                     length[j], reward[j]);
      std::abort();
    }
  }
  return 0;
}

}  // namespace rpo_fuzz
