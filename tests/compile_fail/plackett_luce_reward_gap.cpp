// compile_fail:plackett_luce_reward_gap — Plackett-Luce is the hard-label (b = +inf) limit over a ranking, so a
// graded target does not compose with it: rpo::loss<..., reward_gap, sampling::plackett_luce> is refused by the
// scheme's static_assert (ok: target::hard_label, rpo::listwise_dpo's composition).
#include <rpo/distance.hpp>
#include <rpo/loss.hpp>
#include <rpo/reward.hpp>
#include <rpo/sampling.hpp>
#include <rpo/target.hpp>

#ifdef RPO_SHOULD_FAIL
using target = rpo::target::reward_gap;
#else
using target = rpo::target::hard_label;
#endif

int main() {
  const rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::implicit, target, rpo::sampling::plackett_luce> l{};
  return l.check() ? 1 : 0;
}
