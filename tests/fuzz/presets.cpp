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
#include <cstdlib>
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
    reward[i] = in.ConsumeFloatingPointInRange<double>(-10.0, 10.0);
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
    const auto central = [&](double h) {
      std::vector<double> up = logp, down = logp;
      up[i] += h, down[i] -= h;
      return (value(up, nullptr) - value(down, nullptr)) / (2 * h);
    };
    double coarse, fine;
    try {
      coarse = central(1e-4), fine = central(1e-5);
    } catch (const std::domain_error&) {  // a step that ties two responses of a ranking
      continue;
    }
    const double scale = 1 + std::fabs(fine);
    if (std::fabs(coarse - fine) > 1e-4 * scale) continue;  // not smooth here (a kink, or a ranking that flips)
    if (std::fabs(grad[i] - fine) > 1e-5 * scale) std::abort();
  }
  return 0;
}

}  // namespace rpo_fuzz
