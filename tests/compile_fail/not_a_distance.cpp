// compile_fail:not_a_distance — rpo::loss's first parameter must satisfy rpo::Distance; `int` does not, and the
// constraint (not a static_assert) rejects it, naming the concept (ok: distance::bernoulli_bwd_kl).
#include <rpo/distance.hpp>
#include <rpo/loss.hpp>
#include <rpo/reward.hpp>
#include <rpo/sampling.hpp>
#include <rpo/target.hpp>

#ifdef RPO_SHOULD_FAIL
using distance = int;
#else
using distance = rpo::distance::bernoulli_bwd_kl;
#endif

int main() {
  const rpo::loss<distance, rpo::reward::implicit, rpo::target::hard_label, rpo::sampling::pair> l{};
  return l.check() ? 1 : 0;
}
