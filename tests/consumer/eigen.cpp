// The consumer's Eigen check: rpo::eigen::evaluate on two DPO pairs (beta = 0.2), mean over the pairs.
//   pair 0: logp {-12, -20}, ref {-13.5, -19}: a = 0.5;   pair 1: logp {-30, -25}, ref {-29, -27}: a = -0.6
//   loss = (softplus(-0.5) + softplus(0.6)) / 2;  d loss / d logp_c = -beta * sigmoid(-a) / 2 = -d loss / d logp_r
// The reference values are mpmath at 30 digits of these formulas, not numbers rpo printed.
#include <cmath>
#include <cstdio>
#include <rpo.hpp>
#include <rpo/eigen.hpp>

#include "expect.hpp"

using consumer::expect;
using consumer::failures;

int main() {
  Eigen::ArrayXd logp(4), ref_logp(4);
  logp << -12, -20, -30, -25;
  ref_logp << -13.5, -19, -29, -27;
  const auto r = rpo::eigen::evaluate(rpo::dpo{.beta = 0.2}, {.logp = logp, .ref_logp = ref_logp});
  constexpr double loss = 0.755782467332996153662;   // (ln(1 + e^-0.5) + ln(1 + e^0.6)) / 2
  constexpr double g0 = 0.0377540668798145435361;    // 0.2 * sigmoid(-0.5) / 2
  constexpr double g1 = 0.0645656306225795452909;    // 0.2 * sigmoid(0.6) / 2
  expect("loss", r.loss, loss);
  expect("grad_logp(0)", r.grad_logp(0), -g0);
  expect("grad_logp(1)", r.grad_logp(1), g0);
  expect("grad_logp(2)", r.grad_logp(2), -g1);
  expect("grad_logp(3)", r.grad_logp(3), g1);
  if (r.group_loss.size() != 2) {
    std::printf("group_loss has %ld entries, want 2 MISMATCH\n", static_cast<long>(r.group_loss.size()));
    ++failures;
  }
  std::printf("%s\n", failures == 0 ? "eigen consumer OK" : "eigen consumer FAILED");
  return failures == 0 ? 0 : 1;
}
