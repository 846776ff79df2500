// The consumer's core check: <rpo.hpp> alone, one DPO pair, values against references computed independently.
//   a = beta * ((logp_c - ref_c) - (logp_r - ref_r)) = 0.2 * ((-12 + 13.5) - (-20 + 19)) = 0.5
//   loss = softplus(-a) = ln(1 + e^-0.5);  d loss / d logp_c = -beta * sigmoid(-a) = -d loss / d logp_r
// The reference values are mpmath at 30 digits of these formulas, not numbers rpo printed.
#include <cmath>
#include <cstdio>
#include <rpo.hpp>

#include "expect.hpp"

using consumer::expect;
using consumer::failures;

int main() {
  const auto r = rpo::value_and_grad(rpo::dpo{.beta = 0.2}, {.logp = {-12, -20}, .ref_logp = {-13.5, -19}});
  constexpr double loss = 0.474076984180106680873;       // ln(1 + e^-0.5)
  constexpr double grad = 0.0755081337596290870722;      // 0.2 * sigmoid(-0.5)
  expect("loss", r.loss, loss);
  expect("grad_logp[0]", r.grad_logp[0], -grad);
  expect("grad_logp[1]", r.grad_logp[1], grad);
  expect("grad_ref_logp[0]", r.grad_ref_logp[0], grad);
  expect("grad_ref_logp[1]", r.grad_ref_logp[1], -grad);
  std::printf("rpo %d.%d.%d: %s\n", RPO_VERSION_MAJOR, RPO_VERSION_MINOR, RPO_VERSION_PATCH,
              failures == 0 ? "consumer OK" : "consumer FAILED");
  return failures == 0 ? 0 : 1;
}
