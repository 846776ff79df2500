// 01 — the DPO loss of one preference pair and its gradient.
// Response 0 is the chosen one. The gradient is with respect to the policy's sequence log-probs; the
// reference log-probs are constants of the objective (their partials are reported, not updated).
#include <cstdio>

#include <rpo.hpp>

int main() {
  const rpo::dpo loss{.beta = 0.1};
  const auto r = rpo::value_and_grad(loss, {.logp = {-12.0, -20.0}, .ref_logp = {-13.5, -19.0}});
  std::printf("DPO loss           %.12f\n", r.loss);
  std::printf("d loss / d logp    chosen %+.12f  rejected %+.12f\n", r.grad_logp[0], r.grad_logp[1]);
  std::printf("d loss / d ref     chosen %+.12f  rejected %+.12f\n", r.grad_ref_logp[0], r.grad_ref_logp[1]);
}
