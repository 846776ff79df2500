// rpo-eval — evaluate a loss spec on JSON Lines groups, or check another implementation's numbers against rpo's.
//
//   rpo-eval --loss SPEC [--input F|-] [--output F|-]            one output line per input line
//   rpo-eval --loss SPEC --check [--rtol R] [--atol A] [--input F] every mismatch with the expected fields
//   rpo-eval --list                                              every loss with its parameters
//   rpo-eval --list --markdown                                   the Markdown tables of docs/catalogue.md (+ no-spec methods)
//
// Input: one group per line, {"logp": [...], "ref_logp": [...], "length": [...], "reward": [...]}; fields the loss
// does not read may be left out (and are ignored when present). Response 0 is the chosen one for label-based
// losses. Output: {"loss": x, "grad_logp": [...], "grad_ref_logp": [...]}, the group's own loss (no reduction)
// and its gradients, every number with 17 significant digits so that it reads back to the same double.
// Exit codes: 0 success; 1 --check found mismatches; 2 bad usage, a bad spec or a malformed line (the message
// names the line and the field). A run that does not succeed writes nothing.
// @sa docs/rpo_eval.md
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include "rpo/batchwise.hpp"
#include "rpo/spec.hpp"
#include "rpo_eval_lines.hpp"

namespace {

using rpo_eval::json;
using rpo_eval::line_reader;
using rpo_eval::result;
using rpo_eval::usage_error;

struct options {
  std::string spec;
  std::string input = "-";
  std::optional<std::string> output;
  bool list = false;
  bool markdown = false;
  bool check = false;
  double rtol = 1e-9;
  double atol = 1e-12;
};

std::string number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.17g", x);
  return buffer;
}

/// The shortest text that reads back to the same double, for messages: 0.58 rather than 0.57999999999999996.
std::string shortest(double x) { return rpo::detail::spec::format(x); }

std::string array(const std::vector<double>& xs) {
  std::string out = "[";
  for (std::size_t i = 0; i < xs.size(); ++i) out += (i == 0 ? "" : ", ") + number(xs[i]);
  return out + "]";
}

/// Every difference beyond atol + rtol·|expected| between `got` and the line's expected fields.
std::vector<std::string> compare(const result& got, const line_reader& line, std::size_t line_number,
                                 const options& o) {
  std::vector<std::string> mismatches;
  const auto differs = [&](const std::string& what, double value, double expected) {
    const double tolerance = o.atol + o.rtol * std::abs(expected);
    const double difference = std::abs(value - expected);
    if (difference <= tolerance) return;  // (false for NaN)
    mismatches.push_back("line " + std::to_string(line_number) + ": " + what + " = " + shortest(value) +
                         ", expected " + shortest(expected) + " (|difference| " + shortest(difference) + " > " +
                         shortest(tolerance) + ")");
  };
  const std::optional<double> loss = line.scalar("loss");
  if (!loss) throw line.error("--check needs the expected field \"loss\"");
  differs("loss", got.loss, *loss);
  const auto field = [&](const char* name, const std::vector<double>& values) {
    const auto expected = line.numbers(name);
    if (!expected) return;
    if (expected->size() != values.size())
      throw line.error(std::string("field \"") + name + "\" has " + std::to_string(expected->size()) +
                       " entries but logp has " + std::to_string(values.size()));
    for (std::size_t i = 0; i < values.size(); ++i)
      differs(std::string(name) + "[" + std::to_string(i) + "]", values[i], (*expected)[i]);
  };
  field("grad_logp", got.grad_logp);
  field("grad_ref_logp", got.grad_ref_logp);
  return mismatches;
}

/// Writes `text` to `path` (or stdout for "-") all at once: a file is written beside its destination under a
/// temporary name and renamed, so that a reader never sees half of it.
void write_all(const std::string& path, const std::string& text) {
  if (path == "-") {
    std::cout << text << std::flush;
    if (!std::cout) throw std::runtime_error("cannot write to standard output");
    return;
  }
  const std::string temporary = path + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
    file << text;
    file.close();
    if (!file) {
      std::error_code ignored;
      std::filesystem::remove(temporary, ignored);
      throw std::runtime_error("cannot write " + path);
    }
  }
  std::error_code ec;
  std::filesystem::rename(temporary, path, ec);
  if (ec) {
    std::filesystem::remove(temporary, ec);
    throw std::runtime_error("cannot write " + path);
  }
}

void list_losses() {
  for (const rpo::loss_info& info : rpo::registered_losses()) {
    std::string parameters;
    for (const auto& p : info.parameters)
      parameters += (parameters.empty() ? "" : ", ") + p.name + "=" +
                    (p.default_value.find(' ') == std::string::npos ? p.default_value : "...");
    std::cout << info.name << "(" << parameters << ")\n    " << info.summary << "\n    composition: " << info.composition
              << "\n    source: " << info.paper << "\n    other libraries: " << info.libraries << "\n";
    for (const auto& p : info.parameters)
      std::cout << "    " << p.name << " (default " << p.default_value << "): " << p.description << "\n";
    std::cout << "\n";
  }
}

/// Text for one cell of a Markdown table: '|' escaped, and '<' too, so that "sum<...>" is not taken for HTML.
std::string cell(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '<') out += "&lt;";
    else out += c;
  }
  return out;
}

/// A code span for one cell ('|' escaped; inside backticks '<' needs nothing).
std::string code(const std::string& text) {
  std::string out = "`";
  for (const char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out + "`";
}

/// The registry as a Markdown table, one row per loss: docs/catalogue.md holds it between two marker comments, and
/// the CTest docs:catalogue_up_to_date regenerates and compares it.
void list_markdown() {
  std::cout << "| name | source | spec, with its defaults | composition, or outside the template: why | parameters | "
               "other libraries |\n|---|---|---|---|---|---|\n";
  for (const rpo::loss_info& info : rpo::registered_losses()) {
    std::string spec, parameters;
    for (const auto& p : info.parameters) {
      spec += (spec.empty() ? "" : ", ") + p.name + "=" +
              (p.default_value.find(' ') == std::string::npos ? p.default_value : "...");
      parameters += (parameters.empty() ? "" : "<br>") + code(p.name + " = " + p.default_value) + ": " +
                    cell(p.description);
    }
    std::cout << "| " << code(info.name) << " | " << cell(info.summary) << "<br>" << cell(info.paper) << " | "
              << code(info.name + "(" + spec + ")") << " | " << code(info.composition) << " | " << parameters
              << " | " << cell(info.libraries) << " |\n";
  }
}

/// The catalogue's methods that have no spec, because a loss of one group cannot express them: their entry points,
/// why they are outside, and their parameters with the defaults read from the library's own structs.
struct entry_point_row {
  const char* name;
  const char* source;
  const char* entry;
  const char* why;
  std::string parameters;
  const char* libraries;
};

std::vector<entry_point_row> entry_point_rows() {
  const auto param = [](const char* name, double value, const char* rule) {
    return code(std::string(name) + " = " + shortest(value)) + ": " + rule;
  };
  const rpo::kto kto{};
  const rpo::aot aot{};
  const rpo::bco_unpaired bco{};
  const rpo::gamma_po gamma{};
  const rpo::gamma_po_optimizer opt{};
  return {
      {"KTO", "Ethayarajh et al., KTO: Model Alignment as Prospect Theoretic Optimization, arXiv 2402.01306; LOSSES.md 2.3",
       "rpo::evaluate_kto, rpo::kto_reference_point (z0 = 0: TRL's apo_zero_unpaired)",
       "unpaired labelled responses, and a value function of the absolute log-ratio around z0, a statistic of the "
       "whole batch",
       param("beta", kto.beta, "beta > 0") + "<br>" + param("lambda_desirable", kto.lambda_desirable, ">= 0") + "<br>" +
           param("lambda_undesirable", kto.lambda_undesirable, ">= 0"),
       "TRL KTOTrainer (desirable_weight, undesirable_weight)"},
      {"BCO, unpaired", "Jung et al., Binary Classifier Optimization for Large Language Model Alignment, arXiv "
       "2404.04656; LOSSES.md 1.8",
       "rpo::evaluate_bco, with delta from rpo::bco_reference_point and optional per-response (UDM) weights",
       "unpaired labelled responses, each classified on its own reward shifted by a running mean carried across steps",
       param("beta", bco.beta, "beta > 0") + "<br>" + code("delta") + ": finite (the running mean)<br>" +
           code("weight") + ": >= 0 per response, or none",
       "TRL BCOTrainer (experimental; its UDM weights need a classifier on prompt embeddings)"},
      {"AOT, AOT-unpaired", "Melnyk et al., Distributional Preference Alignment of LLMs via Optimal Transport, arXiv "
       "2406.05882; LOSSES.md 1.10",
       "rpo::evaluate_aot (unpaired = true for aot_unpaired)",
       "sorts the batch's margins (or log-ratios) and pairs them by rank: each term mixes different pairs",
       param("beta", aot.beta, "beta > 0") + "<br>" + param("epsilon", aot.epsilon, "in [0, 0.5)") + "<br>" +
           code("unpaired = false"),
       "TRL DPOTrainer loss_type=aot, aot_unpaired"},
      {"gamma-PO", "Sun et al., Robust Preference Optimization via Dynamic Target Margins, arXiv 2506.03690; LOSSES.md "
       "4.6",
       "rpo::evaluate_gamma_po with rpo::gamma_po_margins (rpo::gamma_po_gaps gives the optimiser's input)",
       "per-pair margins optimised over the batch's gaps and a queue of past gaps carried across steps",
       param("beta", gamma.beta, "beta > 0") + "<br>" + param("gamma_beta_ratio", gamma.gamma_beta_ratio, ">= 0") +
           "<br>" + code("simpo = false") + "<br>" + param("tau", opt.tau, "> 0 (optimiser)") + "<br>" +
           param("iterations", opt.iterations, ">= 1") + "<br>" +
           param("capacity", static_cast<double>(opt.capacity), "queue length") + "<br>" +
           param("opt_size", static_cast<double>(opt.opt_size), "gaps per optimisation"),
       "none (authors' code sunjie279/gammaPO)"},
      {"WPO", "Zhou et al., WPO: Enhancing RLHF with Weighted Preference Optimization, arXiv 2406.11827; LOSSES.md 1.16",
       "rpo::wpo_weights (from the logits), then rpo::evaluate_weighted with w(y_c) w(y_r) per pair",
       "the weight needs logsumexp(2 logits) at every token, which sequence log-probs do not carry",
       "any loss's, plus the per-group weights (finite, >= 0; not clamped)", "TRL DPOTrainer use_weighting=True"},
      {"LD-DPO", "Liu et al., Length Desensitization in Direct Preference Optimization, arXiv 2409.06411; LOSSES.md "
       "1.17",
       "rpo::length_desensitized_logp (and _backward), then any loss through rpo::evaluate",
       "reweights the per-token log-probs past min(n_c, n_r) before they are summed",
       code("alpha") + ": in [0, 1], no default (1 is the plain sum)", "TRL DPOTrainer ld_alpha (policy only)"},
  };
}

/// The registry's table, then the table of the methods without a spec (entry_point_rows).
void list_entry_points_markdown() {
  std::cout << "\nThe methods below have no spec: a loss of one group cannot express them, so each is an entry point "
               "of its own\n(docs/methods.md#batchwise, docs/methods.md#ld_dpo), not offered by this tool.\n\n"
               "| method | source | entry point | outside the per-group template: why | parameters | other "
               "libraries |\n|---|---|---|---|---|---|\n";
  for (const entry_point_row& row : entry_point_rows())
    std::cout << "| " << row.name << " | " << cell(row.source) << " | " << cell(row.entry) << " | " << cell(row.why)
              << " | " << row.parameters << " | " << cell(row.libraries) << " |\n";
}

/// Reads every line, evaluates or checks it; returns the exit code. Throws usage_error for a bad line.
int run(const options& o) {
  const rpo::any_loss loss = [&] {
    try {
      return rpo::parse_loss(o.spec);
    } catch (const rpo::spec_error& e) {
      throw usage_error(e.what());
    }
  }();

  std::ifstream file;
  if (o.input != "-") {
    file.open(o.input, std::ios::binary);
    if (!file) throw usage_error("cannot read " + o.input);
  }
  std::istream& in = o.input == "-" ? std::cin : file;

  std::string output, text;
  std::size_t line_number = 0, groups = 0, mismatch_count = 0;
  while (std::getline(in, text)) {
    ++line_number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are skipped
    const json object = rpo_eval::parse_line(text, line_number);
    const line_reader line(object, line_number);
    const result r = rpo_eval::evaluate(loss, line);
    ++groups;
    if (o.check) {
      for (const std::string& m : compare(r, line, line_number, o)) {
        std::cout << m << "\n";
        ++mismatch_count;
      }
    }
    if (!std::isfinite(r.loss))
      throw std::runtime_error("line " + std::to_string(line_number) + ": the loss is not finite (" + number(r.loss) +
                               "); please report this input: finite inputs must give a finite loss");
    output += "{\"loss\": " + number(r.loss) + ", \"grad_logp\": " + array(r.grad_logp) +
              ", \"grad_ref_logp\": " + array(r.grad_ref_logp) + "}\n";
  }
  if (in.bad()) throw usage_error("cannot read " + o.input);

  if (o.check) {
    std::cout << "rpo-eval: " << loss.spec() << ": " << groups << " groups checked, " << mismatch_count
              << " mismatches (rtol " << o.rtol << ", atol " << o.atol << ")\n";
    if (mismatch_count != 0) return 1;
  }
  if (o.output) write_all(*o.output, output);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"Evaluates a preference loss on JSON Lines groups, or checks expected values against rpo's.",
               "rpo-eval"};
  app.add_option("--loss,-l", o.spec, "the loss spec, e.g. 'dpo(beta=0.1)' (see --list)")->type_name("SPEC");
  app.add_option("--input,-i", o.input, "JSON Lines input, one group per line ('-': standard input)")
      ->type_name("FILE")
      ->capture_default_str();
  auto* output = app.add_option("--output,-o", o.output,
                                "where to write one JSON line per group ('-': standard output, the default "
                                "without --check)")
                     ->type_name("FILE");
  app.add_flag("--check", o.check,
               "compare with the expected \"loss\" (and \"grad_logp\", \"grad_ref_logp\" when present) of each line; "
               "print every mismatch, exit 1 if any");
  app.add_option("--rtol", o.rtol, "relative tolerance of --check")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--atol", o.atol, "absolute tolerance of --check")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_flag("--list", o.list, "print every loss with its parameters, defaults and composition");
  app.add_flag("--markdown", o.markdown, "with --list: print the losses as the Markdown table of docs/catalogue.md");
  app.set_version_flag("--version", std::string("rpo-eval ") + RPO_EVAL_VERSION);
  app.footer(
      "Exit codes: 0 success, 1 --check found mismatches, 2 bad usage, spec or input line.\n"
      "A run that fails writes nothing. Documentation: docs/rpo_eval.md.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }

  if (o.markdown && !o.list) {
    std::cerr << "rpo-eval: --markdown goes with --list\n";
    return 2;
  }
  if (o.list) {
    if (o.markdown) {
      list_markdown();
      list_entry_points_markdown();
    } else {
      list_losses();
    }
    return 0;
  }
  try {
    if (o.spec.empty()) throw usage_error("--loss SPEC is required (rpo-eval --list shows the losses)");
    if (o.check && o.output && *o.output == "-")
      throw usage_error("--check prints its report on standard output; give --output a file");
    if (!o.check && !output->count()) o.output = "-";
    return run(o);
  } catch (const usage_error& e) {
    std::cerr << "rpo-eval: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "rpo-eval: " << e.what() << "\n";
    return 2;
  }
}
