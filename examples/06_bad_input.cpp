// 06 — bad input is an error that names the argument, never a silent NaN; errors::report for code that cannot throw.
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>

#include <rpo.hpp>

int main() {
  const rpo::pair_input<double> pair{.logp = {-12, std::numeric_limits<double>::quiet_NaN()}, .ref_logp = {-13.5, -19}};
  try {
    rpo::value_and_grad(rpo::dpo{}, pair);
  } catch (const std::domain_error& e) {
    std::printf("thrown: %s\n", e.what());
  }
  try {
    rpo::value_and_grad(rpo::simpo{.beta = -2}, {.logp = {-12, -20}, .length = {5, 6}});
  } catch (const std::invalid_argument& e) {
    std::printf("thrown: %s\n", e.what());
  }
  rpo::status status;
  const auto r = rpo::value_and_grad(rpo::dpo{}, pair, rpo::errors::report{&status});
  std::printf("reported: %s (loss is %s)\n", status.message.c_str(), std::isnan(r.loss) ? "NaN, flagged" : "finite");
  return status.ok() ? 1 : 0;
}
