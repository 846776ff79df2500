// rpo-bandit-lab — every loss trained on tabular softmax bandits, where the optimum is known in closed form
// (docs/bandit_lab.md). The ablation grid (distance × reward model × offline/online × K × seeds), then the four
// experiments behind the paper's figures: online RPO-bwd against RLOO, a learnt reward model over-optimised, and
// iterative rounds; then the schedules of the literature that change data or reference, not the loss (TR-DPO,
// Curry-DPO, Pre-DPO). Writes CSV for plot.py and prints Markdown tables; every run is a function of its seed.
//
//   rpo-bandit-lab [--out DIR] [--quick] [--threads N] [--problem random|long_tail]
//
// Exit status: 0, or 2 on a usage error or a failed run (with the reason on stderr).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "rpo.hpp"
#include "rpo/bandit/bradley_terry.hpp"
#include "rpo/bandit/trainer.hpp"

namespace {

namespace bandit = rpo::bandit;
namespace distance = rpo::distance;
namespace reward = rpo::reward;
namespace target = rpo::target;
namespace sampling = rpo::sampling;

// ---------------------------------------------------------------------------------------------------------------
// The methods of the grid. The RPO distances take all pairs of a group with the explicit reward gap as target (RPO.md
// §3.5 (L-pairs)); the label methods take the best-vs-worst pair of a group, ranked by the reward model (RPO.md §7,
// online regime). At K = 2 each is its pairwise preset (rpo_sq, rpo_fwd, rpo_bwd, dpo, ipo, simpo).
// ---------------------------------------------------------------------------------------------------------------

struct settings {
  double beta = 0.5, eta = 1.0;  // the lab's β and η: π* ∝ π_ref·exp(2r)
};

using run_fn = std::function<std::vector<bandit::record>(const bandit::problem&, const bandit::reward_model&,
                                                         const bandit::train_config&)>;

template <class L> run_fn runner(L l) {
  return [l](const bandit::problem& p, const bandit::reward_model& rm, const bandit::train_config& c) {
    return bandit::train(l, p, rm, c);
  };
}

struct method {
  std::string name, composition;
  run_fn run;
};

std::vector<method> methods(const settings& s) {
  using rpo::loss;
  const double b = s.beta, e = s.eta;
  return {
      {"RPO-sq", "sq / implicit / reward_gap / all_pairs",
       runner(loss<distance::squared, reward::implicit, target::reward_gap, sampling::all_pairs>{
           .reward = {.beta = b}, .target = {.eta = e}})},
      {"RPO-fwd", "fwd_kl / implicit / reward_gap / all_pairs",
       runner(loss<distance::bernoulli_fwd_kl, reward::implicit, target::reward_gap, sampling::all_pairs>{
           .reward = {.beta = b}, .target = {.eta = e}})},
      {"RPO-bwd", "bwd_kl / implicit / reward_gap / all_pairs",
       runner(loss<distance::bernoulli_bwd_kl, reward::implicit, target::reward_gap, sampling::all_pairs>{
           .reward = {.beta = b}, .target = {.eta = e}})},
      {"DPO", "bwd_kl / implicit / hard / best_worst", runner(rpo::dpo_best_worst{.beta = b})},
      // IPO with τ = β: a summed log-ratio gap of 1/(2τ) for the preferred response (LOSSES.md §1.4).
      {"IPO", "sq / implicit(beta=1) / constant(1/(2 tau)) / best_worst",
       runner(loss<distance::squared, reward::implicit, target::constant, sampling::best_worst>{
           .reward = {.beta = 1.0}, .target = {.value = 1.0 / (2.0 * b)}})},
      // SimPO without a reference, per-token normalised, margin γ = β/2 (LOSSES.md §2.1).
      {"SimPO", "bwd_kl / ref_free_norm / margin(hard) / best_worst",
       runner(loss<distance::bernoulli_bwd_kl, reward::reference_free_normalized, target::margin<>,
                   sampling::best_worst>{.reward = {.beta = b}, .target = {.gamma = b / 2}})},
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Runs, in parallel, each a function of its own configuration and seed.
// ---------------------------------------------------------------------------------------------------------------

struct job {
  std::string experiment, method, rm, regime;
  std::int64_t k = 2, seed = 0;
  const bandit::problem* problem = nullptr;
  bandit::reward_model model;
  bandit::train_config config;
  run_fn run;
  std::vector<bandit::record> records;
};

void run_all(std::vector<job>& jobs, unsigned threads) {
  std::size_t next = 0;
  std::mutex lock;
  std::exception_ptr failure;
  const auto worker = [&] {
    for (;;) {
      std::size_t i;
      {
        const std::lock_guard guard(lock);
        if (next == jobs.size() || failure) return;
        i = next++;
      }
      try {
        jobs[i].records = jobs[i].run(*jobs[i].problem, jobs[i].model, jobs[i].config);
      } catch (...) {
        const std::lock_guard guard(lock);
        failure = std::current_exception();
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < std::max(1u, threads); ++t) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

/// The learnt reward model of a seed: Bradley-Terry, fitted on comparisons drawn from π_ref and labelled by a
/// Bradley-Terry judge (temperature 1), `pairs` per prompt.
bandit::reward_model learnt(const bandit::problem& p, std::int64_t pairs, std::uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ULL);
  const auto data = bandit::collect_preferences(p, p.ref, bandit::bradley_terry_judge(p), pairs, rng);
  return bandit::fit_bradley_terry(p, data).model;
}

// ---------------------------------------------------------------------------------------------------------------
// Summaries: mean and 95% interval (Student t) over seeds.
// ---------------------------------------------------------------------------------------------------------------

struct interval {
  double mean = 0, half = 0;
};

interval summarise(const std::vector<double>& v) {
  // t_{0.975, n−1} for n = 2..10; n = 1 has no interval.
  static constexpr double t975[] = {0, 12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262};
  interval out;
  for (const double x : v) out.mean += x / static_cast<double>(v.size());
  if (v.size() < 2) return out;
  double ss = 0;
  for (const double x : v) ss += (x - out.mean) * (x - out.mean);
  const double sd = std::sqrt(ss / static_cast<double>(v.size() - 1));
  out.half = t975[std::min<std::size_t>(v.size() - 1, 9)] * sd / std::sqrt(static_cast<double>(v.size()));
  return out;
}

std::string show(const interval& i, int digits = 3) {
  std::ostringstream s;
  s.setf(std::ios::fixed);
  s.precision(digits);
  s << i.mean;
  if (i.half > 0) s << " ± " << i.half;
  return s.str();
}

// The final record of each job, grouped by everything but the seed.
struct cell {
  std::vector<double> reward, kl, objective, win, tv;
};

std::string key_of(const job& j) {
  return j.experiment + "|" + j.method + "|" + j.rm + "|" + j.regime + "|" + std::to_string(j.k);
}

void write_curves(const std::filesystem::path& file, const std::vector<job>& jobs) {
  std::ofstream out(file);
  out << "experiment,method,reward_model,regime,k,seed,learning_rate,round,step,reward,model_reward,kl,tv,win_rate,loss,groups\n";
  out.precision(10);
  for (const job& j : jobs)
    for (const bandit::record& r : j.records)
      out << j.experiment << ',' << j.method << ',' << j.rm << ',' << j.regime << ',' << j.k << ',' << j.seed << ','
          << j.config.learning_rate << ',' << r.round << ',' << r.step << ',' << r.reward << ',' << r.model_reward << ',' << r.kl << ',' << r.tv << ','
          << r.win_rate << ',' << (std::isnan(r.loss) ? std::string("") : std::to_string(r.loss)) << ',' << r.groups
          << '\n';
  if (!out) throw std::runtime_error("cannot write " + file.string());
}

struct options {
  std::filesystem::path out = "bandit_lab";
  bool quick = false;
  std::string problem = "random";  // the grid's: random or long_tail
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
};

options parse(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      o.quick = true;
    } else if ((a == "--out" || a == "--threads" || a == "--problem") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--out") {
        o.out = v;
      } else if (a == "--problem") {
        if (v != "random" && v != "long_tail")
          throw std::invalid_argument("--problem must be random or long_tail, but got " + v);
        o.problem = v;
      } else {
        char* end = nullptr;
        const long n = std::strtol(v.c_str(), &end, 10);
        if (*end != '\0' || n < 1 || n > 256) throw std::invalid_argument("--threads must be 1..256, but got " + v);
        o.threads = static_cast<unsigned>(n);
      }
    } else if (a == "--help" || a == "-h") {
      std::cout << "usage: rpo-bandit-lab [--out DIR] [--quick] [--threads N] [--problem random|long_tail]\n"
                   "  --out DIR      where the CSV files and summary.md go (default: bandit_lab)\n"
                   "  --quick        one seed, K = 2, short runs: a smoke test\n"
                   "  --threads N    runs in parallel (default: the hardware's)\n"
                   "  --problem P    the grid's problem: random (r* ~ N(0, 1), the default) or long_tail (Zipf\n"
                   "                 pi_ref, the best arms the rarest), also used by the RLOO and iteration experiments;\n"
                   "                 the over-optimisation experiment keeps the hacking problem\n";
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown or incomplete argument '" + a + "' (see --help)");
    }
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) try {
  const options opt = parse(argc, argv);
  std::filesystem::create_directories(opt.out);
  const settings s;
  const std::vector<method> all = methods(s);
  const std::vector<std::int64_t> seeds = opt.quick ? std::vector<std::int64_t>{1} : std::vector<std::int64_t>{1, 2, 3};
  const std::vector<std::int64_t> ks = opt.quick ? std::vector<std::int64_t>{2} : std::vector<std::int64_t>{2, 4, 8};
  const std::int64_t steps = opt.quick ? 60 : 300;

  // The grid's problem: 8 prompts × 12 arms, fixed; the seeds vary the data and the learnt model.
  const bandit::problem grid_problem = opt.problem == "long_tail" ? bandit::long_tail_problem(8, 12, 2025)
                                                                  : bandit::random_problem(8, 12, 2025);
  const char* grid_name = opt.problem == "long_tail" ? "Long-tail problem (8 prompts x 12 arms, Zipf pi_ref)"
                                                     : "Random problem (8 prompts x 12 arms, r* ~ N(0, 1))";
  std::map<std::int64_t, bandit::reward_model> learnt_models;
  for (const std::int64_t seed : seeds) learnt_models[seed] = learnt(grid_problem, 50, static_cast<std::uint64_t>(seed));

  std::vector<job> jobs;
  for (const method& m : all)
    for (const std::string rm : {"judge", "learnt"})
      for (const std::string regime : {"offline", "online"})
        for (const std::int64_t k : ks)
          for (const std::int64_t seed : seeds) {
            job j{"grid", m.name, rm, regime, k, seed, &grid_problem, {}, {}, m.run, {}};
            j.model = rm == "judge" ? bandit::judge(grid_problem) : learnt_models.at(seed);
            j.config = {.regime = regime == "online" ? bandit::data_regime::online : bandit::data_regime::offline,
                        .group_size = k,
                        // Online: 4 fresh groups per prompt per step; offline: a fixed dataset of 32 per prompt.
                        .groups_per_prompt = regime == "online" ? 4 : 32,
                        .steps = steps,
                        .learning_rate = 0.05,
                        .record_every = 10,
                        .beta = s.beta,
                        .eta = s.eta,
                        .seed = static_cast<std::uint64_t>(seed)};
            jobs.push_back(std::move(j));
          }

  // Online RPO-bwd against RLOO (online RPO-sqloo, RPO.md (E13)): both have the optimum π*; plain SGD over a sweep of
  // learning rates, K = 4, the exact judge and a noisy one (σ = 1), 5 seeds. Stability: how wide a range of rates
  // still reaches π*.
  const std::vector<std::int64_t> rloo_seeds = opt.quick ? std::vector<std::int64_t>{1} : std::vector<std::int64_t>{1, 2, 3, 4, 5};
  const std::vector<double> rloo_rates = opt.quick ? std::vector<double>{1.0} : std::vector<double>{0.3, 1, 3, 10, 30, 100, 300, 1000};
  const std::vector<std::pair<std::string, run_fn>> rloo_methods = {
      {"RPO-bwd", all[2].run},
      {"RLOO", runner(rpo::rpo_sqloo{.beta = s.beta, .eta = s.eta})},
  };
  for (const auto& [name, run] : rloo_methods)
    for (const std::string rm : {"judge", "noisy"})
    for (const double rate : rloo_rates)
      for (const std::int64_t seed : rloo_seeds) {
        job j{"rloo", name, rm, "online", 4, seed, &grid_problem, {}, {}, run, {}};
        j.model = rm == "judge" ? bandit::judge(grid_problem) : bandit::noisy_judge(grid_problem, 1.0);
        j.config = {.regime = bandit::data_regime::online, .group_size = 4, .groups_per_prompt = 4,
                    .steps = opt.quick ? 60 : 400, .optimizer = bandit::optimizer_kind::sgd, .learning_rate = rate,
                    .record_every = 10, .beta = s.beta, .eta = s.eta, .seed = static_cast<std::uint64_t>(seed)};
        jobs.push_back(std::move(j));
      }

  // Over-optimisation: the hacking problem, online RPO-bwd at β = 0.05, the judge against a learnt linear model.
  const settings hack_settings{0.05, 1.0};
  const bandit::problem hack_problem = bandit::hacking_problem(8, 12, 1);
  const run_fn hack_run =
      runner(rpo::loss<distance::bernoulli_bwd_kl, reward::implicit, target::reward_gap, sampling::all_pairs>{
          .reward = {.beta = hack_settings.beta}, .target = {.eta = hack_settings.eta}});
  for (const std::string rm : {"judge", "learnt"})
    for (const std::int64_t seed : seeds) {
      job j{"overopt", "RPO-bwd", rm, "online", 4, seed, &hack_problem, {}, {}, hack_run, {}};
      j.model = rm == "judge" ? bandit::judge(hack_problem) : learnt(hack_problem, 50, static_cast<std::uint64_t>(seed));
      j.config = {.regime = bandit::data_regime::online, .group_size = 4, .groups_per_prompt = 8,
                  .steps = opt.quick ? 100 : 1500, .learning_rate = 0.05, .record_every = 10,
                  .beta = hack_settings.beta, .eta = hack_settings.eta, .seed = static_cast<std::uint64_t>(seed)};
      jobs.push_back(std::move(j));
    }

  // Iterative rounds: offline RPO-bwd and DPO, K = 2, 150 steps per round, π_ref refreshed each round. The labels are
  // Bradley-Terry draws (a noiseless judge leaves DPO no untied pair once it has collapsed onto one arm).
  for (const std::int64_t m : {std::int64_t{2}, std::int64_t{3}})
    for (const std::int64_t seed : seeds) {
      job j{"iterations", all[static_cast<std::size_t>(m)].name, "bradley_terry", "offline", 2, seed, &grid_problem,
            {}, {}, all[static_cast<std::size_t>(m)].run, {}};
      j.model = bandit::bradley_terry_judge(grid_problem);
      j.config = {.regime = bandit::data_regime::offline, .group_size = 2, .groups_per_prompt = 32,
                  .rounds = opt.quick ? 2 : 5, .steps = opt.quick ? 30 : 150, .learning_rate = 0.05,
                  .record_every = 10, .beta = s.beta, .eta = s.eta, .seed = static_cast<std::uint64_t>(seed)};
      jobs.push_back(std::move(j));
    }

  // Schedules of the literature that change the data or the reference, not the loss (LOSSES.md §4.14, §4.16): offline
  // DPO (K = 2, Bradley-Terry labels, as the iterations) with the same budget of optimizer steps, plainly, with
  // TR-DPO's reference refresh (3 rounds), Curry-DPO's curriculum (3 stages, easiest pairs first) and Pre-DPO's
  // guiding reference (the run twice, the second against the first's policy).
  const std::int64_t schedule_steps = opt.quick ? 60 : 300;
  const std::vector<std::pair<std::string, std::function<void(bandit::train_config&)>>> schedules = {
      {"DPO", [](bandit::train_config&) {}},
      {"TR-DPO (3 rounds)", [&](bandit::train_config& c) { c.rounds = 3, c.steps = schedule_steps / 3; }},
      {"Curry-DPO (3 stages)", [](bandit::train_config& c) { c.curriculum_stages = 3; }},
      {"Pre-DPO (guiding reference)", [](bandit::train_config& c) { c.guiding_reference = true; }},
  };
  for (const auto& [name, change] : schedules)
    for (const std::int64_t seed : seeds) {
      job j{"schedules", name, "bradley_terry", "offline", 2, seed, &grid_problem, {}, {}, all[3].run, {}};
      j.model = bandit::bradley_terry_judge(grid_problem);
      j.config = {.regime = bandit::data_regime::offline, .group_size = 2, .groups_per_prompt = 32,
                  .steps = schedule_steps, .learning_rate = 0.05, .record_every = 10, .beta = s.beta, .eta = s.eta,
                  .seed = static_cast<std::uint64_t>(seed)};
      change(j.config);
      jobs.push_back(std::move(j));
    }

  run_all(jobs, opt.threads);
  write_curves(opt.out / "curves.csv", jobs);
  {
    // The analytic optimum π* of each experiment's problem (RPO.md §2.4), for the plots' reference lines.
    std::ofstream out(opt.out / "optimum.csv");
    out.precision(10);
    out << "experiment,beta,eta,reward,kl,win_rate\n";
    const auto row = [&](const char* experiment, const bandit::problem& p, const settings& at) {
      const std::vector<double> star = bandit::optimum(p, at.beta, at.eta);
      out << experiment << ',' << at.beta << ',' << at.eta << ',' << bandit::expected_reward(p, star) << ','
          << bandit::mean_kl(p, star) << ',' << bandit::win_rate(p, star) << '\n';
    };
    row("grid", grid_problem, s);
    row("overopt", hack_problem, hack_settings);
    if (!out) throw std::runtime_error("cannot write " + (opt.out / "optimum.csv").string());
  }

  // The grid table.
  std::map<std::string, cell> cells;
  std::vector<std::string> order;
  for (const job& j : jobs) {
    if (j.experiment != "grid") continue;
    const std::string key = key_of(j);
    if (!cells.count(key)) order.push_back(key);
    const bandit::record& r = j.records.back();
    cell& c = cells[key];
    c.reward.push_back(r.reward), c.kl.push_back(r.kl), c.win.push_back(r.win_rate), c.tv.push_back(r.tv);
    c.objective.push_back(r.reward - s.beta / s.eta * r.kl);  // J(π) = E_π[r*] − (β/η)·KL, maximised by π* (RPO.md §2.4)
  }
  std::ostringstream md;
  const bandit::record start = jobs.front().records.front();
  md << "## Ablation grid\n\n"
     << grid_name << ", beta = " << s.beta << ", eta = " << s.eta << ", Adam 0.05, "
     << steps << " steps; mean ± 95% interval over " << seeds.size() << " seed(s). At pi_ref: reward "
     << show({start.reward, 0}) << ", win rate 0.500, TV to pi* " << show({start.tv, 0})
     << ". J = reward - (beta/eta) KL is the objective pi* maximises (RPO.md 2.4).\n\n"
     << "| method | reward model | data | K | reward | KL | J | win rate | TV to pi* |\n"
        "|---|---|---|---|---|---|---|---|---|\n";
  std::ofstream summary_csv(opt.out / "summary.csv");
  summary_csv << "method,reward_model,regime,k,seeds,reward,reward_ci,kl,kl_ci,objective,objective_ci,win_rate,"
                 "win_rate_ci,tv,tv_ci\n";
  for (const job& j : jobs) {
    if (j.experiment != "grid" || j.seed != seeds.front()) continue;
    const cell& c = cells.at(key_of(j));
    const interval r = summarise(c.reward), kl = summarise(c.kl), J = summarise(c.objective), w = summarise(c.win),
                   tv = summarise(c.tv);
    md << "| " << j.method << " | " << j.rm << " | " << j.regime << " | " << j.k << " | " << show(r) << " | " << show(kl)
       << " | " << show(J) << " | " << show(w) << " | " << show(tv) << " |\n";
    summary_csv << j.method << ',' << j.rm << ',' << j.regime << ',' << j.k << ',' << c.reward.size();
    for (const interval& i : {r, kl, J, w, tv}) summary_csv << ',' << i.mean << ',' << i.half;
    summary_csv << '\n';
  }

  // The experiments behind the claims, as numbers (docs/bandit_lab.md reads them).
  // Final true reward, final model reward and peak true reward over the seeds of one experiment's runs.
  const auto final_of = [&](const std::string& experiment, const std::string& name, const std::string& rm) {
    std::vector<double> reward, model, peak;
    for (const job& j : jobs) {
      if (j.experiment != experiment || j.method != name || j.rm != rm) continue;
      reward.push_back(j.records.back().reward);
      model.push_back(j.records.back().model_reward);
      double top = -1e300;
      for (const bandit::record& r : j.records) top = std::max(top, r.reward);
      peak.push_back(top);
    }
    return std::vector<interval>{summarise(reward), summarise(model), summarise(peak)};
  };
  md << "\n## Online RPO-bwd against RLOO (K = 4, SGD, " << rloo_seeds.size() << " seed(s), " << (opt.quick ? 60 : 400)
     << " steps)\n\nFinal TV to pi* (the optimum of both) by learning rate, with the exact judge and a noisy one "
        "(sigma = 1).\n\n| learning rate | RPO-bwd, exact | RLOO, exact | RPO-bwd, noisy | RLOO, noisy |\n"
        "|---|---|---|---|---|\n";
  for (const double rate : rloo_rates) {
    std::map<std::string, std::vector<double>> tv;
    for (const job& j : jobs)
      if (j.experiment == "rloo" && j.config.learning_rate == rate) tv[j.method + j.rm].push_back(j.records.back().tv);
    md << "| " << rate;
    for (const char* column : {"RPO-bwdjudge", "RLOOjudge", "RPO-bwdnoisy", "RLOOnoisy"})
      md << " | " << show(summarise(tv[column]));
    md << " |\n";
  }
  md << "\n## Over-optimisation (hacking problem, online RPO-bwd, beta = 0.05)\n\n"
     << "| reward model | peak true reward | final true reward | final model reward |\n|---|---|---|---|\n";
  for (const std::string rm : {"judge", "learnt"}) {
    const auto v = final_of("overopt", "RPO-bwd", rm);
    md << "| " << rm << " | " << show(v[2]) << " | " << show(v[0]) << " | " << show(v[1]) << " |\n";
  }
  md << "\n## Iterative rounds (offline, K = 2, Bradley-Terry labels, pi_ref refreshed each round)\n\n| method | round | reward | KL |\n|---|---|---|---|\n";
  for (const std::string name : {"RPO-bwd", "DPO"}) {
    std::map<std::int64_t, std::pair<std::vector<double>, std::vector<double>>> by_round;
    for (const job& j : jobs) {
      if (j.experiment != "iterations" || j.method != name) continue;
      for (std::size_t i = 1; i < j.records.size(); ++i)
        if (i + 1 == j.records.size() || j.records[i + 1].round != j.records[i].round) {
          by_round[j.records[i].round + 1].first.push_back(j.records[i].reward);
          by_round[j.records[i].round + 1].second.push_back(j.records[i].kl);
        }
    }
    for (const auto& [round, v] : by_round)
      md << "| " << name << " | " << round << " | " << show(summarise(v.first)) << " | " << show(summarise(v.second))
         << " |\n";
  }

  md << "\n## Schedules (offline DPO, K = 2, Bradley-Terry labels, " << schedule_steps
     << " optimizer steps in all)\n\n| schedule | reward | KL | TV to pi* | win rate |\n|---|---|---|---|---|\n";
  for (const auto& [name, change] : schedules) {
    std::vector<double> reward, kl, tv, win;
    for (const job& j : jobs) {
      if (j.experiment != "schedules" || j.method != name) continue;
      reward.push_back(j.records.back().reward);
      kl.push_back(j.records.back().kl);
      tv.push_back(j.records.back().tv);
      win.push_back(j.records.back().win_rate);
    }
    md << "| " << name << " | " << show(summarise(reward)) << " | " << show(summarise(kl)) << " | "
       << show(summarise(tv)) << " | " << show(summarise(win)) << " |\n";
  }

  std::ofstream(opt.out / "summary.md") << md.str();
  std::cout << md.str() << "\nWrote " << (opt.out / "curves.csv").string() << ", " << (opt.out / "summary.csv").string()
            << " and " << (opt.out / "summary.md").string() << " (" << jobs.size() << " runs).\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "rpo-bandit-lab: " << e.what() << '\n';
  return 2;
}
