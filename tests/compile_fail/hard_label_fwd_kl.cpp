// compile_fail:hard_label_fwd_kl — KL(Bern σ(a) ‖ Bern σ(b)) diverges as b → +inf, so
// rpo::loss<bernoulli_fwd_kl, ..., hard_label, ...> is refused by rpo::loss's static_assert (ok: target::reward_gap).
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
  const rpo::loss<rpo::distance::bernoulli_fwd_kl, rpo::reward::implicit, target, rpo::sampling::pair> l{};
  return l.check() ? 1 : 0;
}
