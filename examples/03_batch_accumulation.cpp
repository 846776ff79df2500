// 03 — a batch of pairs over plain arrays, and gradient accumulation that stays exact.
// Pairs are interleaved (chosen, rejected, chosen, ...). The gradient is that of the reduced loss: with the mean,
// each group's gradient is divided by the number of groups. Micro-batches reduced with sum_over(global count)
// add up to the whole batch's mean exactly.
#include <cmath>
#include <cstdio>
#include <span>
#include <vector>

#include <rpo.hpp>

int main() {
  const std::vector<double> logp{-12, -20, -30, -28, -7, -9, -15, -16};
  const std::vector<double> ref_logp{-13.5, -19, -31, -27, -8, -8.5, -15, -15.5};
  const std::vector<double> reward{4, 1.5, 2, 2.5, 0.3, -0.2, 1, 0};
  const rpo::rpo_sq loss{.beta = 0.2, .eta = 1.0};

  std::vector<double> grad(logp.size()), per_pair(4);
  const double mean = rpo::evaluate(loss, {.logp = logp, .ref_logp = ref_logp, .reward = reward},
                                    {.group_loss = per_pair, .grad_logp = grad});
  std::printf("whole batch: mean loss %.12f over %zu pairs\n", mean, per_pair.size());

  // Two micro-batches of two pairs each, reduced against the global count of 4 pairs.
  std::vector<double> accumulated_grad(logp.size());
  double accumulated = 0;
  for (std::size_t start : {0u, 4u}) {
    const auto part = [&](const std::vector<double>& v) { return std::span<const double>(v).subspan(start, 4); };
    accumulated += rpo::evaluate(loss, {.logp = part(logp), .ref_logp = part(ref_logp), .reward = part(reward)},
                                 {.grad_logp = std::span<double>(accumulated_grad).subspan(start, 4)},
                                 rpo::reduction::sum_over(4));
  }
  double worst = 0;
  for (std::size_t i = 0; i < grad.size(); ++i) worst = std::fmax(worst, std::fabs(grad[i] - accumulated_grad[i]));
  std::printf("accumulated: loss %.12f, largest gradient difference %.3g\n", accumulated, worst);
  return std::fabs(accumulated - mean) <= 1e-12 * std::fabs(mean) && worst <= 1e-15 ? 0 : 1;
}
