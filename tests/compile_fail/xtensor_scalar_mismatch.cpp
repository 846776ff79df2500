// compile_fail:xtensor_scalar_mismatch — rpo::xtensor::inputs<double> binds only double expressions; a float tensor
// is refused by rpo::xtensor::column's static_assert instead of being converted silently (ok: a double tensor).
#include <rpo/xtensor.hpp>

int main() {
#ifdef RPO_SHOULD_FAIL
  const xt::xtensor<float, 1> logp = xt::zeros<float>({2});
#else
  const xt::xtensor<double, 1> logp = xt::zeros<double>({2});
#endif
  const rpo::xtensor::inputs<double> in{.logp = logp};
  return in.logp.span().size() == 2 ? 0 : 1;
}
