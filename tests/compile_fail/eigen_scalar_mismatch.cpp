// compile_fail:eigen_scalar_mismatch — rpo::eigen::inputs<double> binds only double columns; an ArrayXf is refused
// by rpo::eigen::column's static_assert instead of being converted silently (ok: an ArrayXd).
#include <Eigen/Core>
#include <rpo/eigen.hpp>

int main() {
#ifdef RPO_SHOULD_FAIL
  const Eigen::ArrayXf logp = Eigen::ArrayXf::Zero(2);
#else
  const Eigen::ArrayXd logp = Eigen::ArrayXd::Zero(2);
#endif
  const rpo::eigen::inputs<double> in{.logp = logp};
  return in.logp.span().size() == 2 ? 0 : 1;
}
