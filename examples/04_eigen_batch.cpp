// 04 — a batch of Eigen arrays: SimPO (no reference model, length-normalised) in float and double.
// Inputs bind to any Eigen column expression; for float, name the type: rpo::eigen::inputs<float>{...}.
#include <cstdio>

#include <rpo.hpp>
#include <rpo/eigen.hpp>

int main() {
  Eigen::ArrayXd logp(6), length(6);
  logp << -40, -65, -12, -11, -90, -120;
  length << 20, 25, 6, 4, 45, 50;

  const auto r = rpo::eigen::evaluate(rpo::simpo{.beta = 2.0, .gamma = 0.5}, {.logp = logp, .length = length});
  std::printf("SimPO (double): mean loss %.10f, per pair %.6f %.6f %.6f\n", r.loss, r.group_loss(0), r.group_loss(1),
              r.group_loss(2));

  const Eigen::ArrayXf logp_f = logp.cast<float>(), length_f = length.cast<float>();
  const auto f = rpo::eigen::evaluate(rpo::simpo{.beta = 2.0, .gamma = 0.5},
                                      rpo::eigen::inputs<float>{.logp = logp_f, .length = length_f});
  std::printf("SimPO (float):  mean loss %.7f, d loss / d logp[0] = %+.7f\n", static_cast<double>(f.loss),
              static_cast<double>(f.grad_logp(0)));
}
