// rpo/bandit/bradley_terry.hpp — a learnt Bradley-Terry reward model, fitted on labelled comparisons with the
// library's own logistic loss and gradients.
//
// Public names: rpo::bandit::bradley_terry_options, rpo::bandit::bradley_terry_fit, rpo::bandit::fit_bradley_terry.
// The model is linear in the problem's features, s_w(x, y) = w·f(x, y), or tabular (one weight per (x, y)) when the
// problem has none. It minimises the Bradley-Terry negative log-likelihood with a ridge,
//   L(w) = (1/M)·Σ_m softplus(−(s_w(x_m, c_m) − s_w(x_m, r_m))) + (λ/2)·‖w‖²,
// whose data term is rpo::loss<distance::logistic, reward::reference_free, target::hard_label, sampling::pair> with
// β = 1 evaluated on the scores as log-probs: the logistic distance to a hard label is −log σ(a), a = s_c − s_r
// (RPO.md §2.2; the reward model of RPO.md §1 is this BT model). Its ∂L/∂s comes from rpo::evaluate and is mapped to
// w through f. Minimised with Adam, full batch, from w = 0.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "rpo/bandit/data.hpp"
#include "rpo/bandit/optimizer.hpp"
#include "rpo/bandit/problem.hpp"
#include "rpo/bandit/reward_model.hpp"
#include "rpo/batch.hpp"
#include "rpo/distance.hpp"
#include "rpo/loss.hpp"
#include "rpo/reward.hpp"
#include "rpo/sampling.hpp"
#include "rpo/target.hpp"

namespace rpo::bandit {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// How the Bradley-Terry model is fitted.
struct bradley_terry_options {
  double ridge = 1e-3;          ///< λ ≥ 0, the L2 penalty (λ/2)·‖w‖²; > 0 keeps the tabular fit finite on separable data
  std::int64_t steps = 2000;    ///< Adam steps ≥ 1, full batch
  double learning_rate = 0.05;  ///< Adam's learning rate > 0
};

/// A fitted model: the weights, the reward model they define (noiseless, for every X·V response), and the final
/// objective L(w) and max-norm of its gradient (how far from the optimum the fit stopped).
struct bradley_terry_fit {
  std::vector<double> weights;  ///< w: feature_dim entries, or X·V when the problem has no features
  reward_model model;           ///< s_w(x, y) for every response
  double objective = 0;         ///< L(w) at the end
  double gradient_norm = 0;     ///< max_i |∂L/∂w_i| at the end
};

/// The data term of L: Bradley-Terry's negative log-likelihood as the library's logistic distance to a hard label.
using bradley_terry_loss =
    rpo::loss<distance::logistic, reward::reference_free, target::hard_label, sampling::pair>;

/// Fits s_w on the comparisons `data` (each prompt and arm inside the problem). Throws std::invalid_argument for
/// empty data, a comparison outside the problem, or invalid options.
bradley_terry_fit fit_bradley_terry(const problem& p, std::span<const preference> data,
                                    const bradley_terry_options& options = {});

// ===========================================================================================================
// Implementations
// ===========================================================================================================

inline bradley_terry_fit fit_bradley_terry(const problem& p, std::span<const preference> data,
                                           const bradley_terry_options& options) {
  constexpr const char* who = "rpo::bandit::fit_bradley_terry";
  p.check();
  detail::require(std::isfinite(options.ridge) && options.ridge >= 0, who, "options.ridge", "must be finite and >= 0",
                  options.ridge);
  detail::require(std::isfinite(options.learning_rate) && options.learning_rate > 0, who, "options.learning_rate",
                  "must be finite and > 0", options.learning_rate);
  detail::require(options.steps >= 1, who, "options.steps", "must be >= 1", static_cast<double>(options.steps));
  if (data.empty()) throw std::invalid_argument(std::string(who) + ": data has no comparison");
  for (std::size_t m = 0; m < data.size(); ++m) {
    const preference& d = data[m];
    if (d.prompt < 0 || d.prompt >= p.prompts || d.chosen < 0 || d.chosen >= p.arms || d.rejected < 0 ||
        d.rejected >= p.arms)
      throw std::invalid_argument(std::string(who) + ": data[" + std::to_string(m) + "] = (prompt " +
                                  std::to_string(d.prompt) + ", chosen " + std::to_string(d.chosen) + ", rejected " +
                                  std::to_string(d.rejected) + ") is outside the problem's " +
                                  std::to_string(p.prompts) + " x " + std::to_string(p.arms));
  }
  adam opt(options.learning_rate);

  const bool tabular = p.feature_dim == 0;
  const std::size_t dim = tabular ? p.reward.size() : static_cast<std::size_t>(p.feature_dim);
  const auto feature = [&](std::size_t response, std::size_t i) {
    return tabular ? (i == response ? 1.0 : 0.0) : p.features[response * dim + i];
  };
  const auto scores = [&](const std::vector<double>& w) {
    std::vector<double> s(p.reward.size());
    for (std::size_t r = 0; r < s.size(); ++r) {
      if (tabular) {
        s[r] = w[r];
        continue;
      }
      for (std::size_t i = 0; i < dim; ++i) s[r] += w[i] * feature(r, i);
    }
    return s;
  };

  std::vector<double> w(dim, 0.0), grad(dim), logp(2 * data.size()), grad_logp(logp.size());
  const bradley_terry_loss loss{.reward = {.beta = 1.0}};
  const auto objective = [&]() {
    const std::vector<double> s = scores(w);
    for (std::size_t m = 0; m < data.size(); ++m) {
      logp[2 * m] = s[p.at(data[m].prompt, data[m].chosen)];
      logp[2 * m + 1] = s[p.at(data[m].prompt, data[m].rejected)];
    }
    double value = rpo::evaluate(loss, rpo::batch_input<double>{.logp = logp},
                                 rpo::batch_output<double>{.grad_logp = grad_logp});
    for (std::size_t i = 0; i < dim; ++i) {
      grad[i] = options.ridge * w[i];
      value += 0.5 * options.ridge * w[i] * w[i];
    }
    for (std::size_t m = 0; m < data.size(); ++m)
      for (const auto& [arm, g] : {std::pair{data[m].chosen, grad_logp[2 * m]}, std::pair{data[m].rejected, grad_logp[2 * m + 1]}}) {
        const std::size_t r = p.at(data[m].prompt, arm);
        if (tabular)
          grad[r] += g;
        else
          for (std::size_t i = 0; i < dim; ++i) grad[i] += g * feature(r, i);
      }
    return value;
  };

  for (std::int64_t step = 0; step < options.steps; ++step) {
    objective();
    opt.step(w, grad);
  }
  bradley_terry_fit fit;
  fit.objective = objective();
  for (const double g : grad) fit.gradient_norm = std::fmax(fit.gradient_norm, std::fabs(g));
  fit.model = {scores(w), score_noise::none, 0.0};
  fit.weights = std::move(w);
  return fit;
}

}  // namespace rpo::bandit
