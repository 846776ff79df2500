// compile_fail:reward_gap_without_rewards — RPO's target is the explicit reward gap (target::reward_gap reads
// input::reward), so a batch declared to hold only log-probs and reference log-probs is refused by
// rpo::evaluate's static_assert (ok: the batch declares and fills its rewards).
#include <vector>

#include <rpo/fields.hpp>
#include <rpo/presets.hpp>

#ifdef RPO_SHOULD_FAIL
constexpr rpo::input fields = rpo::input::logp | rpo::input::ref_logp;
#else
constexpr rpo::input fields = rpo::input::logp | rpo::input::ref_logp | rpo::input::reward;
#endif

int main() {
  const std::vector<double> logp{-12, -20}, ref_logp{-13.5, -19}, reward{1, 0};
  const rpo::batch_input<double> batch{.logp = logp, .ref_logp = ref_logp, .reward = reward};
  return rpo::evaluate(rpo::rpo_bwd{}, rpo::holding<fields>(batch)) > 0 ? 0 : 1;
}
