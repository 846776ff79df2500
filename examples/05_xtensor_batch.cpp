// 05 — a batch as an xtensor of shape [pairs, 2] (chosen, rejected): gradients come back in that shape.
#include <cstdio>

#include <rpo.hpp>
#include <rpo/xtensor.hpp>

int main() {
  const xt::xtensor<double, 2> logp = {{-12, -20}, {-30, -28}, {-7, -9}};
  const xt::xtensor<double, 2> ref_logp = {{-13.5, -19}, {-31, -27}, {-8, -8.5}};
  const auto r = rpo::xtensor::evaluate(rpo::dpo{.beta = 0.1}, {.logp = logp, .ref_logp = ref_logp});
  std::printf("DPO: mean loss %.10f\n", r.loss);
  for (std::size_t g = 0; g < 3; ++g)
    std::printf("pair %zu: loss %.6f  d/d logp chosen %+.6f rejected %+.6f\n", g, r.group_loss(g), r.grad_logp(g, 0),
                r.grad_logp(g, 1));
}
