// compile_fail:hard_label_squared — a hard label (b = +inf) has no finite squared distance, so
// rpo::loss<squared, ..., hard_label, ...> is refused by rpo::loss's static_assert (ok: target::reward_gap).
#include <rpo/distance.hpp>
#include <rpo/loss.hpp>
#include <rpo/reward.hpp>
#include <rpo/sampling.hpp>
#include <rpo/target.hpp>

#ifdef RPO_SHOULD_FAIL
using target = rpo::target::hard_label;
#else
using target = rpo::target::reward_gap;
#endif

int main() {
  const rpo::loss<rpo::distance::squared, rpo::reward::implicit, target, rpo::sampling::pair> l{};
  return l.check() ? 1 : 0;
}
