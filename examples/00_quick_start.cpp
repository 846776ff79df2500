// 00 — the quick start of README.md, verbatim (the test readme:quick_start keeps the two identical).
#include <cstdio>
#include <rpo.hpp>

int main() {
  // DPO on one pair (response 0 is the chosen one): loss and d loss / d log pi.
  const auto r = rpo::value_and_grad(rpo::dpo{.beta = 0.1}, {.logp = {-12.0, -20.0}, .ref_logp = {-13.5, -19.0}});
  std::printf("loss %.6f, grad %+.6f %+.6f\n", r.loss, r.grad_logp[0], r.grad_logp[1]);

  // The same algebra, spelled out: RPO with the backward Bernoulli KL and a reward model's scores.
  using rpo_bwd = rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::implicit, rpo::target::reward_gap,
                            rpo::sampling::pair>;
  const auto s = rpo::value_and_grad(rpo_bwd{.reward = {.beta = 0.2}, .target = {.eta = 1.0}},
                                     {.logp = {-12.0, -20.0}, .ref_logp = {-13.5, -19.0}, .reward = {4.0, 1.5}});
  std::printf("rpo_bwd %.6f\n", s.loss);  // 0.243471, RPO.md §10.2
}
