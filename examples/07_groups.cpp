// 07 — groups of K responses per prompt: a ragged batch given by offsets, the multi-response presets, and the
// identity that makes online leave-one-out RPO-sq REINFORCE leave-one-out (RPO.md (L13)).
// Responses are stored group after group; offsets[g] is where group g starts (here K = 4, 2 and 3). Every
// multi-response preset is its pairwise counterpart at K = 2 (rpo_sqloo is rpo_sq, rpo_softmax_bwd is rpo_bwd, ...).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include <rpo.hpp>

int main() {
  const std::vector<double> logp{-12, -20, -15, -18, -30, -28, -7, -9, -8};
  const std::vector<double> ref_logp{-13.5, -19, -15, -17, -31, -27, -8, -8.5, -8};
  const std::vector<double> reward{4, 1.5, 2.5, 0, 2, 2.5, 0.3, -0.2, 1};
  const std::vector<std::int64_t> offsets{0, 4, 6, 9};
  const rpo::batch_input<double> batch{.logp = logp, .ref_logp = ref_logp, .reward = reward, .offsets = offsets};

  std::vector<double> grad(logp.size()), per_group(3);
  const auto show = [&](const char* name, const auto& loss) {
    const double mean = rpo::evaluate(loss, batch, {.group_loss = per_group, .grad_logp = grad});
    std::printf("%-22s mean %.9f   groups %.6f %.6f %.6f\n", name, mean, per_group[0], per_group[1], per_group[2]);
  };
  show("rpo_sqloo", rpo::rpo_sqloo{.beta = 0.2, .eta = 1.0});
  show("rpo_sqpairs", rpo::rpo_sqpairs{.beta = 0.2, .eta = 1.0});
  show("rpo_softmax_bwd", rpo::rpo_softmax_bwd{.beta = 0.2, .eta = 1.0});
  show("rpo_softmax_fwd", rpo::rpo_softmax_fwd{.beta = 0.2, .eta = 1.0});
  show("infonca", rpo::infonca{.beta = 0.2, .alpha = 1.0});
  show("listwise_dpo", rpo::listwise_dpo{.beta = 0.2});
  show("dpo_best_worst", rpo::dpo_best_worst{.beta = 0.2});

  // (L13): with the sum reduction, ∂L/∂log π(y_k) = −(2βη/(K−1))·Â_k, Â the leave-one-out advantage of the
  // KL-shaped reward R̃ = r − (β/η)·ℓ. Computed here from its definition, for every group.
  const double beta = 0.2, eta = 1.0;
  rpo::evaluate(rpo::rpo_sqloo{.beta = beta, .eta = eta}, batch, {.grad_logp = grad}, rpo::reduction::sum());
  double worst = 0;
  for (std::size_t g = 0; g + 1 < offsets.size(); ++g) {
    const auto first = static_cast<std::size_t>(offsets[g]), last = static_cast<std::size_t>(offsets[g + 1]);
    const double k = static_cast<double>(last - first);
    double total = 0;
    for (std::size_t i = first; i < last; ++i) total += reward[i] - (beta / eta) * (logp[i] - ref_logp[i]);
    for (std::size_t i = first; i < last; ++i) {
      const double shaped = reward[i] - (beta / eta) * (logp[i] - ref_logp[i]);
      const double advantage = shaped - (total - shaped) / (k - 1);
      worst = std::fmax(worst, std::fabs(grad[i] + 2 * beta * eta / (k - 1) * advantage));
    }
  }
  std::printf("RLOO identity (L13): largest difference %.3g\n", worst);

  // A ranking needs distinct rewards: listwise DPO refuses a tie, and names the group.
  const std::vector<double> tied{4, 1.5, 1.5, 0, 2, 2.5, 0.3, -0.2, 1};
  try {
    rpo::evaluate(rpo::listwise_dpo{}, {.logp = logp, .ref_logp = ref_logp, .reward = tied, .offsets = offsets});
    return 1;
  } catch (const std::domain_error& e) {
    std::printf("tie: %s\n", e.what());
  }
  return worst <= 1e-14 ? 0 : 1;
}
