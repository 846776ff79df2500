// compile_fail:length_normalized_without_lengths — SimPO's reward is length-normalised (reward::
// reference_free_normalized reads input::length), so a pair declared to hold only log-probs is refused by
// rpo::value_and_grad's static_assert (ok: the pair declares and fills its lengths).
#include <rpo/fields.hpp>
#include <rpo/presets.hpp>

#ifdef RPO_SHOULD_FAIL
constexpr rpo::input fields = rpo::input::logp;
#else
constexpr rpo::input fields = rpo::input::logp | rpo::input::length;
#endif

int main() {
  const rpo::pair_input<double> pair{.logp = {-12, -20}, .length = {10, 12}};
  const auto r = rpo::value_and_grad(rpo::simpo{}, rpo::holding<fields>(pair));
  return r.loss > 0 ? 0 : 1;
}
