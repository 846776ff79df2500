// compile_fail:leave_one_out_hard_label — the leave-one-out contrast t_i − m₋ᵢ(t) needs a score per response from
// explicit rewards, which a hard label does not have: rpo::loss<..., hard_label, sampling::leave_one_out> is refused
// by the scheme's static_assert (ok: target::reward_gap).
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
  const rpo::loss<rpo::distance::bernoulli_bwd_kl, rpo::reward::implicit, target, rpo::sampling::leave_one_out> l{};
  return l.check() ? 1 : 0;
}
