// 02 — one algebra: a preset is a composition, and a new loss is a new composition.
// RPO-bwd with a reward model's scores, then the same distance with a length-normalised implicit reward and a
// margin, which no preset names.
#include <cstdio>

#include <rpo.hpp>

int main() {
  const rpo::pair_input<double> pair{
      .logp = {-42.0, -57.0}, .ref_logp = {-44.0, -55.0}, .length = {21, 30}, .reward = {3.2, 0.4}};

  // The Nemotron-4 RPO loss: D_bwd(a || b), a = beta (l_c - l_r), b = eta (r_c - r_r).
  const auto bwd = rpo::value_and_grad(rpo::rpo_bwd{.beta = 0.2, .eta = 1.0}, pair);
  std::printf("rpo_bwd                         loss %.10f  grad %+.10f %+.10f\n", bwd.loss, bwd.grad_logp[0],
              bwd.grad_logp[1]);

  // The same method written as its composition: identical numbers.
  using rpo_bwd_composition = rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::implicit,
                                        rpo::target::reward_gap, rpo::sampling::pair>;
  const auto same = rpo::value_and_grad(rpo_bwd_composition{.reward = {.beta = 0.2}, .target = {.eta = 1.0}}, pair);
  std::printf("the same composition            loss %.10f\n", same.loss);

  // A composition of our own: forward KL, per-token implicit reward, reward-gap target shifted by a margin.
  using custom = rpo::loss<rpo::distance::bernoulli_fwd_kl, rpo::reward::implicit_normalized,
                           rpo::target::margin<rpo::target::reward_gap>, rpo::sampling::pair>;
  const auto c = rpo::value_and_grad(custom{.reward = {.beta = 2.0}, .target = {.gamma = 0.1, .inner = {.eta = 0.5}}},
                                     pair);
  std::printf("fwd KL, per-token reward, margin loss %.10f  grad %+.10f %+.10f\n", c.loss, c.grad_logp[0],
              c.grad_logp[1]);
}
