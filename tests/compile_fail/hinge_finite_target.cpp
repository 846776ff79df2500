// compile_fail:hinge_finite_target — distance::hinge has its own margin and takes no target gap b, so
// rpo::loss<hinge, ..., reward_gap, ...> is refused by rpo::loss's static_assert (ok: target::hard_label).
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
  const rpo::loss<rpo::distance::hinge, rpo::reward::implicit, target, rpo::sampling::pair> l{};
  return l.check() ? 1 : 0;
}
