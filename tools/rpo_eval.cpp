// rpo-eval — evaluate a loss spec on JSON Lines groups, or check another implementation's numbers against rpo's.
//
//   rpo-eval --loss SPEC [--input F|-] [--output F|-]            one output line per input line
//   rpo-eval --loss SPEC --check [--rtol R] [--atol A] [--input F] every mismatch with the expected fields
//   rpo-eval --batch SPEC [--input F|-] [--output F|-] [--check]  one whole batch per line (rpo/batch_spec.hpp)
//   rpo-eval --list                                              every loss and batch method with its parameters
//   rpo-eval --list --markdown                                   the Markdown tables of docs/catalogue.md
//
// Input: one group per line, {"logp": [...], "ref_logp": [...], "length": [...], "reward": [...]}; fields the loss
// does not read may be left out (and are ignored when present). Response 0 is the chosen one for label-based
// losses. Output: {"loss": x, "grad_logp": [...], "grad_ref_logp": [...]}, the group's own loss (no reduction)
// and its gradients, every number with 17 significant digits so that it reads back to the same double.
// Exit codes: 0 success; 1 --check found mismatches; 2 bad usage, a bad spec or a malformed line (the message
// names the line and the field). A run that does not succeed writes nothing.
// --batch: each line is one whole batch of a batch method (KTO, unpaired BCO, AOT, γ-PO, WPO, LD-DPO) with the fields
// it reads (tools/rpo_eval_batch.hpp); output {"loss": mean over the batch's items, then the method's outputs}.
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
#include "rpo/batch_spec.hpp"
#include "rpo_eval_batch.hpp"
#include "rpo_eval_lines.hpp"

namespace {

using rpo_eval::json;
using rpo_eval::line_reader;
using rpo_eval::result;
using rpo_eval::usage_error;

struct options {
  std::string spec;
  std::string batch;  // --batch SPEC: a batch method, one batch per line
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

/// Adds a message to `mismatches` when `value` differs from `expected` by more than atol + rtol·|expected|.
void add_mismatch(std::vector<std::string>& mismatches, std::size_t line_number, const options& o,
                  const std::string& what, double value, double expected) {
  const double tolerance = o.atol + o.rtol * std::abs(expected);
  const double difference = std::abs(value - expected);
  if (difference <= tolerance) return;  // (false for NaN)
  mismatches.push_back("line " + std::to_string(line_number) + ": " + what + " = " + shortest(value) + ", expected " +
                       shortest(expected) + " (|difference| " + shortest(difference) + " > " + shortest(tolerance) +
                       ")");
}

/// Every difference beyond atol + rtol·|expected| between `got` and the line's expected fields.
std::vector<std::string> compare(const result& got, const line_reader& line, std::size_t line_number,
                                 const options& o) {
  std::vector<std::string> mismatches;
  const auto differs = [&](const std::string& what, double value, double expected) {
    add_mismatch(mismatches, line_number, o, what, value, expected);
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

/// The batch methods (rpo/batch_spec.hpp) as a Markdown table: their batch spec with its defaults, the entry points
/// they evaluate, why a loss of one group cannot express them, and their parameters, all from the batch registry.
void list_batch_markdown() {
  std::cout << "\nThe methods below need a whole batch, a weight from outside the group or the tokens, so a loss "
               "of one group cannot\nexpress them (docs/methods.md#batchwise, docs/methods.md#ld_dpo). Each has a batch spec: "
               "`rpo-eval --batch SPEC`\nevaluates one batch per line (docs/rpo_eval.md#batch), `rpo.evaluate_batch` "
               "one batch from Python.\n\n"
               "| name | source | batch spec, with its defaults | entry point | outside the per-group template: why | "
               "fields of a batch | parameters | other libraries |\n|---|---|---|---|---|---|---|---|\n";
  for (const rpo::batch_method_info& info : rpo::registered_batch_methods()) {
    std::string spec, parameters;
    for (const auto& p : info.parameters) {
      spec += (spec.empty() ? "" : ", ") + p.name + "=" + p.default_value;
      parameters += (parameters.empty() ? "" : "<br>") + code(p.name + " = " + p.default_value) + ": " +
                    cell(p.description);
    }
    std::cout << "| " << code(info.name) << " | " << cell(info.summary) << "<br>" << cell(info.paper) << " | "
              << code(info.name + "(" + spec + ")") << " | " << cell(info.entry_point) << " | " << cell(info.why)
              << " | " << cell(info.fields) << " | " << parameters << " | " << cell(info.libraries) << " |\n";
  }
}

void list_batch_methods() {
  std::cout << "Batch methods (rpo-eval --batch SPEC, one batch per line):\n\n";
  for (const rpo::batch_method_info& info : rpo::registered_batch_methods()) {
    std::string spec;
    for (const auto& p : info.parameters) spec += (spec.empty() ? "" : ", ") + p.name + "=" + p.default_value;
    std::cout << info.name << "(" << spec << ")\n    " << info.summary << "\n    entry point: " << info.entry_point
              << "\n    fields: " << info.fields << "\n    source: " << info.paper << "\n    other libraries: "
              << info.libraries << "\n";
    for (const auto& p : info.parameters)
      std::cout << "    " << p.name << " (default " << p.default_value << "): " << p.description << "\n";
    std::cout << "\n";
  }
}

/// What one input line gives: its loss, its output line, and (with --check) its mismatches.
struct line_outcome {
  double loss = 0;
  std::string output;
  std::vector<std::string> mismatches;
};

/// The loop of both modes: reads --input line by line (blank lines skipped, each line a JSON object), hands each to
/// `each(object, line_number)`, prints the mismatches, then the --check summary ("<spec>: <count> <items> checked")
/// or writes the output all at once. Returns the exit code; throws usage_error for an unreadable input or a bad line.
template <class Each> int run_lines(const options& o, const std::string& spec, const char* items, Each each) {
  std::ifstream file;
  if (o.input != "-") {
    file.open(o.input, std::ios::binary);
    if (!file) throw usage_error("cannot read " + o.input);
  }
  std::istream& in = o.input == "-" ? std::cin : file;

  std::string output, text;
  std::size_t line_number = 0, count = 0, mismatch_count = 0;
  while (std::getline(in, text)) {
    ++line_number;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;  // blank lines are skipped
    const line_outcome r = each(rpo_eval::parse_line(text, line_number), line_number);
    ++count;
    for (const std::string& m : r.mismatches) std::cout << m << "\n";
    mismatch_count += r.mismatches.size();
    if (!std::isfinite(r.loss))
      throw std::runtime_error("line " + std::to_string(line_number) + ": the loss is not finite (" + number(r.loss) +
                               "); please report this input: finite inputs must give a finite loss");
    output += r.output;
  }
  if (in.bad()) throw usage_error("cannot read " + o.input);

  if (o.check) {
    std::cout << "rpo-eval: " << spec << ": " << count << " " << items << " checked, " << mismatch_count
              << " mismatches (rtol " << o.rtol << ", atol " << o.atol << ")\n";
    if (mismatch_count != 0) return 1;
  }
  if (o.output) write_all(*o.output, output);
  return 0;
}

/// parse()'s result, its rpo::spec_error rethrown as a usage_error (exit code 2).
template <class Parse> auto parsed_or_usage_error(Parse&& parse) {
  try {
    return parse();
  } catch (const rpo::spec_error& e) {
    throw usage_error(e.what());
  }
}

/// --loss: one group per line; returns the exit code. Throws usage_error for a bad spec or line.
int run(const options& o) {
  const rpo::any_loss loss = parsed_or_usage_error([&] { return rpo::parse_loss(o.spec); });
  return run_lines(o, loss.spec(), "groups", [&](const json& object, std::size_t line_number) {
    const line_reader line(object, line_number);
    const result r = rpo_eval::evaluate(loss, line);
    return line_outcome{r.loss,
                        "{\"loss\": " + number(r.loss) + ", \"grad_logp\": " + array(r.grad_logp) +
                            ", \"grad_ref_logp\": " + array(r.grad_ref_logp) + "}\n",
                        o.check ? compare(r, line, line_number, o) : std::vector<std::string>{}};
  });
}

/// A field's shape for messages: "a number", "[4]", "[2][3]".
std::string shape_text(const rpo::batch_value& v) {
  if (v.shape.empty()) return "a number";
  std::string out;
  for (const std::size_t n : v.shape) out += "[" + std::to_string(n) + "]";
  return out;
}

/// Every difference beyond atol + rtol·|expected| between a batch's result and the line's expected fields: "loss"
/// (required), then each output field the line holds, entry by entry. An expected field of another shape is a
/// usage_error.
std::vector<std::string> compare_batch(const rpo::batch_result& r, const rpo_eval::batch_line& line,
                                       std::size_t line_number, const rpo::batch_loss& loss, const options& o) {
  std::vector<std::string> mismatches;
  if (!line.loss)
    throw usage_error("line " + std::to_string(line_number) + ": --check needs the expected field \"loss\"");
  add_mismatch(mismatches, line_number, o, "loss", r.loss, *line.loss);
  for (const auto& [name, expected] : line.expected) {
    for (const auto& [got_name, got] : r.outputs) {
      if (got_name != name) continue;
      if (got.shape != expected.shape)
        throw usage_error("line " + std::to_string(line_number) + ": field \"" + name + "\" has shape " +
                          shape_text(expected) + ", but " + loss.spec() + " computes shape " + shape_text(got));
      for (std::size_t i = 0; i < got.values.size(); ++i) {
        // name[i], or name[row][column] for a matrix (appended piece by piece: g++ 12 warns, wrongly, of an
        // overlapping copy in "[" + std::string&&)
        std::string what = name;
        if (got.shape.size() == 2) {
          what.append("[").append(std::to_string(i / got.shape[1])).append("][");
          what.append(std::to_string(i % got.shape[1])).append("]");
        } else {
          what.append("[").append(std::to_string(i)).append("]");
        }
        add_mismatch(mismatches, line_number, o, what, got.values[i], expected.values[i]);
      }
    }
  }
  return mismatches;
}

/// --batch: one batch per line (rpo/batch_spec.hpp, tools/rpo_eval_batch.hpp); returns the exit code. Throws
/// usage_error for a bad spec or line.
int run_batch(const options& o) {
  const rpo::batch_loss loss = parsed_or_usage_error([&] { return rpo::parse_batch_loss(o.batch); });
  return run_lines(o, loss.spec(), "batches", [&](const json& object, std::size_t line_number) {
    const rpo_eval::batch_line line = rpo_eval::read_batch_line(object, line_number, loss);
    const rpo::batch_result r = rpo_eval::evaluate_batch(loss, line, line_number);
    std::string output = "{\"loss\": " + number(r.loss);
    for (const auto& [name, value] : r.outputs)
      output += ", \"" + name + "\": " + rpo_eval::batch_value_text(value, number);
    return line_outcome{r.loss, output + "}\n",
                        o.check ? compare_batch(r, line, line_number, loss, o) : std::vector<std::string>{}};
  });
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"Evaluates a preference loss on JSON Lines groups (or batches), or checks expected values against "
               "rpo's.",
               "rpo-eval"};
  app.add_option("--loss,-l", o.spec, "the loss spec, e.g. 'dpo(beta=0.1)' (see --list)")->type_name("SPEC");
  app.add_option("--batch,-b", o.batch,
                 "a batch method's spec, e.g. 'kto(beta=0.1)': one whole batch per line (see --list)")
      ->type_name("SPEC");
  app.add_option("--input,-i", o.input,
                 "JSON Lines input, one group (with --batch: one batch) per line ('-': standard input)")
      ->type_name("FILE")
      ->capture_default_str();
  auto* output = app.add_option("--output,-o", o.output,
                                "where to write one JSON line per input line ('-': standard output, the default "
                                "without --check)")
                     ->type_name("FILE");
  app.add_flag("--check", o.check,
               "compare with the expected \"loss\" (and \"grad_logp\", \"grad_ref_logp\", with --batch every output "
               "field, when present) of each line; print every mismatch, exit 1 if any");
  app.add_option("--rtol", o.rtol, "relative tolerance of --check")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_option("--atol", o.atol, "absolute tolerance of --check")->check(CLI::NonNegativeNumber)->capture_default_str();
  app.add_flag("--list", o.list, "print every loss and batch method with its parameters and defaults");
  app.add_flag("--markdown", o.markdown, "with --list: print the Markdown tables of docs/catalogue.md");
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
      list_batch_markdown();
    } else {
      list_losses();
      list_batch_methods();
    }
    return 0;
  }
  try {
    if (!o.spec.empty() && !o.batch.empty())
      throw usage_error("give either --loss SPEC (one group per line) or --batch SPEC (one batch per line), not both");
    if (o.spec.empty() && o.batch.empty())
      throw usage_error("--loss SPEC or --batch SPEC is required (rpo-eval --list shows the losses and batch methods)");
    if (o.check && o.output && *o.output == "-")
      throw usage_error("--check prints its report on standard output; give --output a file");
    if (!o.check && !output->count()) o.output = "-";
    return o.batch.empty() ? run(o) : run_batch(o);
  } catch (const usage_error& e) {
    std::cerr << "rpo-eval: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "rpo-eval: " << e.what() << "\n";
    return 2;
  }
}
