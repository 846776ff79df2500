// compile_fail:listwise_scalar_distance — the softmax (listwise) scheme compares two distributions over the group,
// and distance::squared acts on one scalar gap only: rpo::loss<squared, ..., sampling::softmax> is refused by the
// scheme's static_assert (ok: distance::bernoulli_bwd_kl, the multi-response RPO).
#include <rpo/distance.hpp>
#include <rpo/loss.hpp>
#include <rpo/reward.hpp>
#include <rpo/sampling.hpp>
#include <rpo/target.hpp>

#ifdef RPO_SHOULD_FAIL
using distance = rpo::distance::squared;
#else
using distance = rpo::distance::bernoulli_bwd_kl;
#endif

int main() {
  const rpo::loss<distance, rpo::reward::implicit, rpo::target::reward_gap, rpo::sampling::softmax> l{};
  return l.check() ? 1 : 0;
}
