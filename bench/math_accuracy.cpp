// The accuracy of the scalar core in ulps against the 60-digit mpmath reference (tests/data/math_reference.csv,
// written by tests/reference/math_reference.py): the largest error of each function in double and in float.
// Run: build/gcc/bench/rpo_math_accuracy [path/to/math_reference.csv]
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "rpo/math.hpp"
#include "support/reference_data.hpp"

namespace {

template <class T> double evaluate(const std::string& name, T x, T y) {
  if (name == "softplus") return static_cast<double>(rpo::softplus(x));
  if (name == "log_sigmoid") return static_cast<double>(rpo::log_sigmoid(x));
  if (name == "sigmoid") return static_cast<double>(rpo::sigmoid(x));
  if (name == "log1mexp") return static_cast<double>(rpo::log1mexp(x));
  if (name == "binary_entropy_logit") return static_cast<double>(rpo::binary_entropy_logit(x));
  if (name == "sigmoid_difference") return static_cast<double>(rpo::sigmoid_difference(x, y));
  if (name == "d_bwd") return static_cast<double>(rpo::bregman_softplus(x, y));   // D_bwd(x||y) = B(x, y)
  if (name == "d_fwd") return static_cast<double>(rpo::bernoulli_kl_logit(x, y));  // D_fwd(x||y) = KL(σ(x)||σ(y))
  return std::numeric_limits<double>::quiet_NaN();
}

/// The error in units of the type's epsilon, relative to the reference; values below the normal range skip.
template <class T> double ulps(double got, double reference) {
  if (std::fabs(reference) < static_cast<double>(std::numeric_limits<T>::min())) return 0;
  return std::fabs(got - reference) / std::fabs(reference) / static_cast<double>(std::numeric_limits<T>::epsilon());
}

}  // namespace

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : RPO_TEST_DATA_DIR "/math_reference.csv";
  std::vector<test::reference_point> rows;
  try {
    rows = test::read_math_reference(path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  std::map<std::string, std::pair<double, double>> worst;  // function -> (double, float)
  for (const test::reference_point& row : rows) {
    auto& w = worst[row.function];
    w.first = std::fmax(w.first, ulps<double>(evaluate(row.function, row.x, row.y), row.value));
    const auto xf = static_cast<float>(row.x), yf = static_cast<float>(row.y);
    if (static_cast<double>(xf) == row.x && static_cast<double>(yf) == row.y)
      w.second = std::fmax(w.second, ulps<float>(evaluate(row.function, xf, yf), row.value));
  }
  std::printf("| function | max error, double (ulp) | max error, float (ulp) |\n|---|---|---|\n");
  for (const auto& [name, w] : worst) std::printf("| %s | %.2f | %.2f |\n", name.c_str(), w.first, w.second);
}
