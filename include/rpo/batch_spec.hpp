// rpo/batch_spec.hpp — the batch-level methods chosen at run time from a spec string: "kto(beta=0.1)",
// "aot(beta=0.1, epsilon=0, unpaired=true)", "wpo(loss=dpo(beta=0.1))", evaluated on one whole batch at a time.
//
// Public names: rpo::parse_batch_loss, rpo::batch_loss, rpo::registered_batch_methods, rpo::batch_method_info,
//               rpo::batch_field_info, rpo::batch_field_kind, rpo::batch_value, rpo::batch_fields, rpo::batch_result.
// The losses of rpo/batchwise.hpp and rpo/token_weighting.hpp need a whole batch (KTO, unpaired BCO, AOT, γ-PO), a
// weight from outside the group (WPO) or the tokens (LD-DPO), so rpo::parse_loss, which builds a loss of one group,
// cannot name them. This is their registry: one table of methods, their parameters with the defaults read from the
// library's own structs, and the fields each reads. A batch comes in as named fields (rpo::batch_fields: numbers,
// arrays, matrices), so that rpo-eval (`--batch`, one JSON object per batch) and the Python module
// (rpo.evaluate_batch) share the parser, the checks and the messages. Specs are parsed with rpo/spec.hpp's tokenizer
// (detail::spec), so the syntax is the same; a value may itself be a loss spec (`loss=dpo(beta=0.1)`).
// Every method returns the **mean** over its items (responses, ranks, pairs or groups) and the gradients of that mean.
// LOSSES.md §1.8 (BCO), §1.10 (AOT), §1.16 (WPO), §1.17 (LD-DPO), §2.3 (KTO), §4.6 (γ-PO).
// @sa docs/rpo_eval.md#batch, docs/methods.md#batch_specs
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/batchwise.hpp"
#include "rpo/spec.hpp"
#include "rpo/token.hpp"
#include "rpo/token_weighting.hpp"

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// The value of one field of a batch: a number (`shape` empty), an array (`shape` {n}) or a matrix, row-major
/// (`shape` {rows, cols}).  @sa docs/rpo_eval.md#batch
struct batch_value {
  std::vector<double> values;     ///< the numbers, row-major for a matrix
  std::vector<std::size_t> shape;  ///< {} a number, {n} an array, {rows, cols} a matrix
};

/// A batch's fields by name: what a line of `rpo-eval --batch` holds, or the keyword arguments of rpo.evaluate_batch.
/// @sa docs/rpo_eval.md#batch
using batch_fields = std::map<std::string, batch_value, std::less<>>;

/// What a field of a batch holds.  @sa docs/rpo_eval.md#batch
enum class batch_field_kind {
  number,       ///< one finite number
  numbers,      ///< an array of numbers
  labels,       ///< an array of 0 (undesirable) and 1 (desirable)
  integers,     ///< an array of integers (offsets)
  matrix,       ///< a matrix of numbers, one row per sequence
  label_matrix  ///< a matrix of 0 and 1 (a response mask)
};

/// One field that a parsed batch loss reads.  @sa docs/rpo_eval.md#batch
struct batch_field_info {
  std::string name;         ///< the field's name ("logp")
  batch_field_kind kind;    ///< what it holds
  bool required;            ///< false: it may be left out (the description says what that means)
  std::string description;  ///< what it is
};

/// One batch method that rpo::parse_batch_loss knows.  @sa docs/rpo_eval.md#batch
struct batch_method_info {
  std::string name;         ///< the spec name ("kto")
  std::string summary;      ///< one line: the method and its LOSSES.md section
  std::string paper;        ///< the source: authors, short title, arXiv id (LOSSES.md)
  std::string entry_point;  ///< the C++ functions it evaluates
  std::string why;          ///< why it is not a loss of one group (not in rpo::parse_loss)
  std::string fields;       ///< the fields a batch gives, in words
  std::string libraries;    ///< other libraries that implement it, under their names (LOSSES.md)
  std::vector<parameter_info> parameters;  ///< its parameters, with their defaults
};

/// The loss of one batch and what else a method writes, each under its field name: the per-item losses
/// ("response_loss", "rank_loss", "pair_loss" or "group_loss"), "grad_logp", "grad_ref_logp", and for LD-DPO the
/// desensitised "logp", "ref_logp" and the token gradients "grad_token_logp", "grad_token_ref_logp".
/// @sa docs/rpo_eval.md#batch
struct batch_result {
  double loss = 0;  ///< the mean over the batch's items
  std::vector<std::pair<std::string, batch_value>> outputs;  ///< in the order of rpo::batch_loss::outputs()
};

namespace detail::batch_spec {
class reader;
}

/// A batch method chosen at run time (rpo::parse_batch_loss). Cheap to copy (it shares its immutable state).
/// @sa docs/rpo_eval.md#batch
class batch_loss {
 public:
  /// The method's spec name: "kto", "bco_unpaired", "aot", "gamma_po", "wpo" or "ld_dpo".
  const std::string& name() const noexcept { return state_->name; }
  /// The canonical spec, every parameter written out so that it round-trips: "kto(beta=0.1, ...)".
  const std::string& spec() const noexcept { return state_->spec; }
  /// The fields it reads (they depend on the parameters: γ-SimPO reads length, WPO what its loss reads).
  const std::vector<batch_field_info>& fields() const noexcept { return state_->fields; }
  /// The names of the outputs evaluate() writes besides the loss, in order.
  const std::vector<std::string>& outputs() const noexcept { return state_->outputs; }

  /// Evaluates one batch in double: checks that every field is known and of its kind (a number, an array, a
  /// matrix; labels 0 or 1; integral offsets), that the required ones are there, then runs the library's entry
  /// point, whose own checks (sizes, finite values) apply. Throws std::invalid_argument (a field unknown, missing
  /// or of the wrong kind or size) or std::domain_error (a value), with a message that names the field.
  batch_result evaluate(const batch_fields& in) const;

 private:
  struct state {
    std::string name, spec;
    std::vector<batch_field_info> fields;
    std::vector<std::string> outputs;
    std::function<batch_result(const detail::batch_spec::reader&)> run;  // on the checked fields
  };
  explicit batch_loss(std::shared_ptr<const state> s) noexcept : state_(std::move(s)) {}
  std::shared_ptr<const state> state_;
  friend batch_loss parse_batch_loss(std::string_view spec);
};

/// Parses a batch-method spec, `name(key=value, ...)` as rpo::parse_loss reads it: parameters left out take their
/// defaults, and every one is checked here. Throws rpo::spec_error; an unknown name lists the batch methods (and
/// says so when the name is a loss of one group, for `rpo-eval --loss`).  @sa docs/rpo_eval.md#batch
inline batch_loss parse_batch_loss(std::string_view spec);

/// Every batch method, with its parameters and defaults.  @sa docs/rpo_eval.md#batch
inline const std::vector<batch_method_info>& registered_batch_methods();

// ===========================================================================================================
// Implementations
// ===========================================================================================================

namespace detail::batch_spec {

using spec::arguments;
using spec::format;

/// A failure that names the field: std::invalid_argument.
inline std::invalid_argument field_error(std::string_view field, const std::string& what) {
  return std::invalid_argument("field \"" + std::string(field) + "\" " + what);
}

inline const char* kind_name(batch_field_kind k) noexcept {
  switch (k) {
    case batch_field_kind::number: return "a number";
    case batch_field_kind::numbers: return "an array of numbers";
    case batch_field_kind::labels: return "an array of 0 and 1";
    case batch_field_kind::integers: return "an array of integers";
    case batch_field_kind::matrix: return "a matrix (an array of rows of equal length) of numbers";
    case batch_field_kind::label_matrix: return "a matrix (an array of rows of equal length) of 0 and 1";
  }
  return "?";
}

/// Checks the kind of one field's value: its shape, and 0/1 or integral entries where the kind says so.
inline void check_kind(const batch_field_info& f, const batch_value& v) {
  const bool is_matrix = f.kind == batch_field_kind::matrix || f.kind == batch_field_kind::label_matrix;
  const std::size_t rank = f.kind == batch_field_kind::number ? 0 : is_matrix ? 2 : 1;
  const bool empty_matrix = is_matrix && v.shape.size() == 1 && v.shape[0] == 0;  // [] is a matrix of no rows
  if (v.shape.size() != rank && !empty_matrix) throw field_error(f.name, std::string("must be ") + kind_name(f.kind));
  for (std::size_t i = 0; i < v.values.size(); ++i) {
    const double x = v.values[i];
    const bool ok = f.kind == batch_field_kind::labels || f.kind == batch_field_kind::label_matrix
                        ? (x == 0 || x == 1)
                        : f.kind == batch_field_kind::integers ? (std::isfinite(x) && x == std::floor(x) &&
                                                                    std::fabs(x) < 9.0e15)
                                                               : true;  // finite values: the library's checks
    if (!ok)
      throw field_error(f.name, "entry " + std::to_string(i) + " must be " +
                                    (f.kind == batch_field_kind::integers ? std::string("an integer")
                                                                          : std::string("0 or 1")) +
                                    ", but got " + detail::spec::format(x));
  }
}

/// The fields of one batch, checked against the loss's list; accessors by name.
class reader {
 public:
  /// Checks `in` against `known`: every field known and of its kind, every required one there. `spec` names the
  /// method in messages, which list its fields: "kto(...) reads logp, ref_logp, desirable, z0 (optional), ...".
  reader(const std::vector<batch_field_info>& known, const batch_fields& in, const std::string& spec) : in_(in) {
    std::string reads;
    for (const auto& k : known) reads += (reads.empty() ? "" : ", ") + k.name + (k.required ? "" : " (optional)");
    reads = " (" + spec + " reads " + reads + ")";
    for (const auto& [name, value] : in) {
      const batch_field_info* f = nullptr;
      for (const auto& k : known)
        if (k.name == name) f = &k;
      if (f == nullptr) throw std::invalid_argument("unknown field \"" + name + "\"" + reads);
      check_kind(*f, value);
    }
    for (const auto& k : known)
      if (k.required && in.find(k.name) == in.end())
        throw std::invalid_argument("field \"" + k.name + "\" is missing" + reads);
  }

  bool has(std::string_view name) const { return in_.find(name) != in_.end(); }
  /// The values of an array field, or an empty vector when it is absent.
  std::vector<double> numbers(std::string_view name) const {
    const auto it = in_.find(name);
    return it == in_.end() ? std::vector<double>{} : it->second.values;
  }
  const batch_value* value(std::string_view name) const {
    const auto it = in_.find(name);
    return it == in_.end() ? nullptr : &it->second;
  }
  double number(std::string_view name, double fallback) const {
    const auto it = in_.find(name);
    return it == in_.end() ? fallback : it->second.values.at(0);
  }
  std::vector<std::uint8_t> labels(std::string_view name) const {
    std::vector<std::uint8_t> out;
    for (const double x : numbers(name)) out.push_back(x == 1 ? 1 : 0);
    return out;
  }
  std::vector<std::int64_t> integers(std::string_view name) const {
    std::vector<std::int64_t> out;
    for (const double x : numbers(name)) out.push_back(static_cast<std::int64_t>(x));
    return out;
  }

 private:
  const batch_fields& in_;
};

inline batch_value array_value(std::vector<double> v) {
  const std::size_t n = v.size();
  return {std::move(v), {n}};
}

inline batch_field_info field(const char* name, batch_field_kind kind, bool required, const char* description) {
  return {name, kind, required, description};
}

/// The fields of rpo::evaluate's layout that `inputs` names (logp always), with their descriptions.
inline void add_pair_fields(std::vector<batch_field_info>& out, input inputs, const char* layout) {
  using k = batch_field_kind;
  out.push_back(field("logp", k::numbers, true, layout));
  if (contains(inputs, input::ref_logp)) out.push_back(field("ref_logp", k::numbers, true, "log pi_ref, as logp"));
  if (contains(inputs, input::length)) out.push_back(field("length", k::numbers, true, "token counts > 0, as logp"));
  if (contains(inputs, input::reward)) out.push_back(field("reward", k::numbers, true, "explicit rewards, as logp"));
}

inline std::string bool_text(bool b) { return b ? "true" : "false"; }

/// `key`'s value as a loss spec (rpo::parse_loss), or `fallback` when not given.
inline any_loss inner_loss(arguments& args, std::string_view key, std::string_view fallback) {
  const std::string* text = args.take(key);
  const std::string spec(text == nullptr ? fallback : std::string_view(*text));
  try {
    return parse_loss(spec);
  } catch (const spec_error& e) {
    throw args.fail(std::string(key) + " = \"" + spec + "\" is not a loss: " + e.what());
  }
}

/// `key` as an integer ≥ `low` (an integral number in int's range).
inline int integer(arguments& args, std::string_view key, int fallback, int low) {
  const double x = args.number(key, fallback);
  if (!(x >= low && x <= 1e9 && x == std::floor(x)))
    throw args.fail(std::string(key) + " = " + format(x) + " must be an integer >= " + std::to_string(low));
  return static_cast<int>(x);
}

/// Checks a parameter set's rule (the struct's check()), as a spec error naming the parameter.
inline void check_parameters(arguments& args, parameter_error e) {
  if (e)
    throw args.fail(std::string(e.name) + " " + e.rule + ", but got " + std::string(e.name) + " = " + format(e.value));
}

struct built {
  std::string spec;
  std::vector<batch_field_info> fields;
  std::vector<std::string> outputs;
  std::function<batch_result(const reader&)> run;
};

/// The KTO/BCO outputs: N per-response losses and the gradients.
struct response_outputs {
  std::vector<double> loss, grad, grad_ref;
  explicit response_outputs(std::size_t n) : loss(n), grad(n), grad_ref(n) {}
  kto_output<double> view() { return {loss, grad, grad_ref}; }
  batch_result result(double value) {
    return {value,
            {{"response_loss", array_value(std::move(loss))},
             {"grad_logp", array_value(std::move(grad))},
             {"grad_ref_logp", array_value(std::move(grad_ref))}}};
  }
};

/// The outputs of rpo::evaluate's layout: per-item losses under `item`, then the gradients.
struct pair_outputs {
  std::vector<double> loss, grad, grad_ref;
  pair_outputs(std::size_t items, std::size_t n) : loss(items), grad(n), grad_ref(n) {}
  batch_output<double> view() { return {loss, grad, grad_ref}; }
  batch_result result(const char* item, double value) {
    return {value,
            {{item, array_value(std::move(loss))},
             {"grad_logp", array_value(std::move(grad))},
             {"grad_ref_logp", array_value(std::move(grad_ref))}}};
  }
};

inline built build_kto(arguments& args) {
  kto l{};
  l.beta = args.number("beta", l.beta);
  l.lambda_desirable = args.number("lambda_desirable", l.lambda_desirable);
  l.lambda_undesirable = args.number("lambda_undesirable", l.lambda_undesirable);
  args.finish({"beta", "lambda_desirable", "lambda_undesirable"});
  check_parameters(args, l.check());
  using k = batch_field_kind;
  built b{"kto(beta=" + format(l.beta) + ", lambda_desirable=" + format(l.lambda_desirable) +
              ", lambda_undesirable=" + format(l.lambda_undesirable) + ")",
          {field("logp", k::numbers, true, "log pi(y_i|x_i) of the N unpaired responses"),
           field("ref_logp", k::numbers, true, "log pi_ref(y_i|x_i), N entries"),
           field("desirable", k::labels, true, "N labels: 1 desirable, 0 undesirable"),
           field("z0", k::number, false, "the reference point; or give kl_logp and kl_ref_logp"),
           field("kl_logp", k::numbers, false,
                 "log pi on the mismatched pairs: z0 = rpo::kto_reference_point(kl_logp, kl_ref_logp)"),
           field("kl_ref_logp", k::numbers, false, "log pi_ref on the mismatched pairs, as kl_logp")},
          {"response_loss", "grad_logp", "grad_ref_logp"},
          {}};
  b.run = [l](const reader& r) {
    const bool kl = r.has("kl_logp") || r.has("kl_ref_logp");
    if (r.has("z0") && kl)
      throw std::invalid_argument("give either field \"z0\" or fields \"kl_logp\" and \"kl_ref_logp\", not both");
    if (!r.has("z0") && !kl)
      throw std::invalid_argument(
          "field \"z0\" is missing: give z0, or kl_logp and kl_ref_logp (the mismatched pairs z0 is estimated from)");
    if (kl && !r.has("kl_logp")) throw field_error("kl_logp", "is missing (kl_ref_logp is given)");
    if (kl && !r.has("kl_ref_logp")) throw field_error("kl_ref_logp", "is missing (kl_logp is given)");
    const std::vector<double> logp = r.numbers("logp"), ref = r.numbers("ref_logp");
    const std::vector<std::uint8_t> desirable = r.labels("desirable");
    const double z0 = kl ? kto_reference_point<double>(r.numbers("kl_logp"), r.numbers("kl_ref_logp"))
                         : r.number("z0", 0);
    response_outputs out(logp.size());
    const double value = evaluate_kto(l, kto_input<double>{logp, ref, desirable, z0}, out.view());
    return out.result(value);
  };
  return b;
}

inline built build_bco(arguments& args) {
  bco_unpaired l{};
  l.beta = args.number("beta", l.beta);
  args.finish({"beta"});
  check_parameters(args, l.check());
  using k = batch_field_kind;
  built b{"bco_unpaired(beta=" + format(l.beta) + ")",
          {field("logp", k::numbers, true, "log pi(y_i|x_i) of the N unpaired responses"),
           field("ref_logp", k::numbers, true, "log pi_ref(y_i|x_i), N entries"),
           field("desirable", k::labels, true, "N labels: 1 desirable, 0 undesirable"),
           field("delta", k::number, false, "the reward shift delta (the running mean; 0 when left out)"),
           field("weight", k::numbers, false, "N constant weights >= 0 (UDM); all 1 when left out")},
          {"response_loss", "grad_logp", "grad_ref_logp"},
          {}};
  b.run = [l](const reader& r) {
    const std::vector<double> logp = r.numbers("logp"), ref = r.numbers("ref_logp"), weight = r.numbers("weight");
    const std::vector<std::uint8_t> desirable = r.labels("desirable");
    response_outputs out(logp.size());
    const double value =
        evaluate_bco(l, bco_input<double>{logp, ref, desirable, weight, r.number("delta", 0)}, out.view());
    return out.result(value);
  };
  return b;
}

inline built build_aot(arguments& args) {
  aot l{};
  l.beta = args.number("beta", l.beta);
  l.epsilon = args.number("epsilon", l.epsilon);
  l.unpaired = args.choice("unpaired", {"false", "true"}, l.unpaired ? 1 : 0) == 1;
  args.finish({"beta", "epsilon", "unpaired"});
  check_parameters(args, l.check());
  built b{"aot(beta=" + format(l.beta) + ", epsilon=" + format(l.epsilon) + ", unpaired=" + bool_text(l.unpaired) + ")",
          {},
          {"rank_loss", "grad_logp", "grad_ref_logp"},
          {}};
  add_pair_fields(b.fields, input::logp | input::ref_logp,
                  "log pi of the 2B responses of B pairs: chosen, rejected, chosen, ...");
  b.run = [l](const reader& r) {
    const std::vector<double> logp = r.numbers("logp"), ref = r.numbers("ref_logp");
    pair_outputs out(logp.size() / 2, logp.size());
    const double value = evaluate_aot(l, batch_input<double>{logp, ref, {}, {}, {}}, out.view());
    return out.result("rank_loss", value);
  };
  return b;
}

inline built build_gamma_po(arguments& args) {
  gamma_po l{};
  gamma_po_optimizer opt{};
  l.beta = args.number("beta", l.beta);
  l.gamma_beta_ratio = args.number("gamma_beta_ratio", l.gamma_beta_ratio);
  l.simpo = args.choice("simpo", {"false", "true"}, l.simpo ? 1 : 0) == 1;
  opt.tau = args.number("tau", opt.tau);
  opt.iterations = integer(args, "iterations", opt.iterations, 1);
  opt.step = args.number("step", opt.step);
  opt.epsilon = args.number("epsilon", opt.epsilon);
  args.finish({"beta", "gamma_beta_ratio", "simpo", "tau", "iterations", "step", "epsilon"});
  check_parameters(args, l.check());
  check_parameters(args, opt.check());
  built b{"gamma_po(beta=" + format(l.beta) + ", gamma_beta_ratio=" + format(l.gamma_beta_ratio) +
              ", simpo=" + bool_text(l.simpo) + ", tau=" + format(opt.tau) +
              ", iterations=" + std::to_string(opt.iterations) + ", step=" + format(opt.step) +
              ", epsilon=" + format(opt.epsilon) + ")",
          {},
          {"pair_loss", "grad_logp", "grad_ref_logp"},
          {}};
  add_pair_fields(b.fields, l.simpo ? (input::logp | input::length) : (input::logp | input::ref_logp),
                  "log pi of the 2B responses of B pairs: chosen, rejected, chosen, ...");
  b.fields.push_back(field("margins", batch_field_kind::numbers, false,
                           "B margins gamma_i; left out: rpo::gamma_po_margins of the batch's gaps, from an empty "
                           "queue (tau, iterations, step, epsilon)"));
  b.run = [l, opt](const reader& r) {
    const std::vector<double> logp = r.numbers("logp"), ref = r.numbers("ref_logp"), length = r.numbers("length");
    const batch_input<double> in{logp, ref, length, {}, {}};
    std::vector<double> margins = r.numbers("margins");
    if (!r.has("margins")) {
      std::vector<double> gaps(logp.size() / 2);
      gamma_po_gaps(l, in, std::span<double>(gaps));
      margins.assign(gaps.size(), 0.0);
      gamma_po_margins(l, opt).compute(gaps, margins);
    }
    pair_outputs out(logp.size() / 2, logp.size());
    const double value = evaluate_gamma_po(l, in, std::span<const double>(margins), out.view());
    return out.result("pair_loss", value);
  };
  return b;
}

inline built build_wpo(arguments& args) {
  const any_loss inner = inner_loss(args, "loss", "dpo");
  args.finish({"loss"});
  built b{"wpo(loss=" + inner.spec() + ")", {}, {"group_loss", "grad_logp", "grad_ref_logp"}, {}};
  add_pair_fields(b.fields, inner.inputs(),
                  inner.group_size() == 2 ? "log pi of the responses: chosen, rejected, chosen, ..."
                                          : "log pi of the responses of every group, one after the other");
  using k = batch_field_kind;
  b.fields.push_back(field("group_weights", k::numbers, true,
                           "G constant weights >= 0, one per group (w(y_c) w(y_r) for WPO, rpo::wpo_weights)"));
  b.fields.push_back(field("offsets", k::integers, inner.group_size() == 0,
                           "G + 1 group boundaries (needed for losses of groups of any size)"));
  b.run = [inner](const reader& r) {
    const std::vector<double> logp = r.numbers("logp"), ref = r.numbers("ref_logp"), length = r.numbers("length"),
                              reward = r.numbers("reward"), weights = r.numbers("group_weights");
    const std::vector<std::int64_t> offsets = r.integers("offsets");
    const batch_input<double> in{logp, ref, length, reward, offsets};
    const std::int64_t groups = inner.group_count(in);
    pair_outputs out(groups > 0 ? static_cast<std::size_t>(groups) : 0, logp.size());
    const double value = inner.evaluate_weighted(in, std::span<const double>(weights), out.view());
    return out.result("group_loss", value);
  };
  return b;
}

inline built build_ld_dpo(arguments& args) {
  if (!args.given("alpha")) throw args.fail("alpha must be given: ld_dpo(alpha=A, loss=...), A in [0, 1]");
  const double alpha = args.number("alpha", 1.0);
  const any_loss inner = inner_loss(args, "loss", "dpo");
  args.finish({"alpha", "loss"});
  if (!(alpha >= 0 && alpha <= 1))
    throw args.fail("alpha must be in [0, 1], but got alpha = " + format(alpha));
  if (inner.group_size() != 2)
    throw args.fail("loss = \"" + inner.spec() + "\" is not a loss of pairs; LD-DPO reweights pairs (n_min per pair)");
  if (contains(inner.inputs(), input::length))
    throw args.fail("loss = \"" + inner.spec() +
                    "\" reads lengths, which LD-DPO's reweighted log-probs do not define; use a loss without length");
  const bool ref = contains(inner.inputs(), input::ref_logp), rewards = contains(inner.inputs(), input::reward);
  using k = batch_field_kind;
  built b{"ld_dpo(alpha=" + format(alpha) + ", loss=" + inner.spec() + ")", {}, {}, {}};
  b.fields.push_back(field("token_logp", k::matrix, true,
                           "S x T per-token log pi, one row per response: chosen, rejected, chosen, ..."));
  if (ref) b.fields.push_back(field("token_ref_logp", k::matrix, true, "S x T per-token log pi_ref, as token_logp"));
  b.fields.push_back(
      field("mask", k::label_matrix, false, "S x T response mask (1: a response token); all 1 when left out"));
  if (rewards) b.fields.push_back(field("reward", k::numbers, true, "S explicit rewards"));
  b.outputs = {"group_loss", "logp"};
  if (ref) b.outputs.emplace_back("ref_logp");
  b.outputs.emplace_back("grad_token_logp");
  if (ref) b.outputs.emplace_back("grad_token_ref_logp");
  b.run = [inner, alpha, ref](const reader& r) {
    const batch_value* tokens = r.value("token_logp");
    if (tokens == nullptr) throw field_error("token_logp", "is missing");  // (the reader checked it is there)
    const std::size_t s = tokens->shape.size() == 2 ? tokens->shape[0] : 0;
    const std::size_t t = tokens->shape.size() == 2 ? tokens->shape[1] : 0;
    const auto same_shape = [&](const char* name) {
      const batch_value* v = r.value(name);
      if (v == nullptr) return;
      const std::size_t vs = v->shape.size() == 2 ? v->shape[0] : 0, vt = v->shape.size() == 2 ? v->shape[1] : 0;
      if (vs != s || vt != t)
        throw field_error(name, "has shape " + std::to_string(vs) + " x " + std::to_string(vt) +
                                    " but token_logp has shape " + std::to_string(s) + " x " + std::to_string(t));
    };
    same_shape("token_ref_logp");
    same_shape("mask");
    const std::vector<std::uint8_t> mask = r.labels("mask");
    const token_shape shape{static_cast<std::int64_t>(s), static_cast<std::int64_t>(t), 1};
    std::vector<double> logp(s), ref_logp(ref ? s : 0);
    length_desensitized_logp<double>(tokens->values, mask, shape, alpha, logp);
    const batch_value* ref_tokens = r.value("token_ref_logp");
    if (ref && ref_tokens == nullptr) throw field_error("token_ref_logp", "is missing");
    if (ref) length_desensitized_logp<double>(ref_tokens->values, mask, shape, alpha, ref_logp);
    const std::vector<double> reward = r.numbers("reward");
    std::vector<double> group_loss(s / 2), grad(s), grad_ref(ref ? s : 0);
    const double value = inner.evaluate(batch_input<double>{logp, ref_logp, {}, reward, {}},
                                        batch_output<double>{group_loss, grad, grad_ref});
    std::vector<double> grad_tokens(s * t), grad_ref_tokens(ref ? s * t : 0);
    length_desensitized_logp_backward<double>(grad, mask, shape, alpha, grad_tokens);
    if (ref) length_desensitized_logp_backward<double>(grad_ref, mask, shape, alpha, grad_ref_tokens);
    batch_result out{value, {}};
    out.outputs.emplace_back("group_loss", array_value(std::move(group_loss)));
    out.outputs.emplace_back("logp", array_value(std::move(logp)));
    if (ref) out.outputs.emplace_back("ref_logp", array_value(std::move(ref_logp)));
    out.outputs.emplace_back("grad_token_logp", batch_value{std::move(grad_tokens), {s, t}});
    if (ref) out.outputs.emplace_back("grad_token_ref_logp", batch_value{std::move(grad_ref_tokens), {s, t}});
    return out;
  };
  return b;
}

/// One registered batch method: its description and its parser.
struct method_entry {
  batch_method_info info;
  built (*build)(arguments&);
};

inline const std::vector<method_entry>& methods() {
  static const std::vector<method_entry> table = [] {
    const kto k{};
    const bco_unpaired bco{};
    const aot a{};
    const gamma_po g{};
    const gamma_po_optimizer opt{};
    return std::vector<method_entry>{
        {{"kto", "KTO (Ethayarajh et al. 2024): unpaired, a value function around the reference point z0; LOSSES.md 2.3",
          "Ethayarajh et al., KTO: Model Alignment as Prospect Theoretic Optimization, arXiv 2402.01306",
          "rpo::evaluate_kto, rpo::kto_reference_point (z0 = 0: TRL's apo_zero_unpaired)",
          "unpaired labelled responses, and a value function of the absolute log-ratio around z0, a statistic of the "
          "whole batch",
          "logp, ref_logp, desirable; z0, or kl_logp and kl_ref_logp",
          "TRL KTOTrainer (desirable_weight, undesirable_weight)",
          {{"beta", format(k.beta), "beta > 0"},
           {"lambda_desirable", format(k.lambda_desirable), ">= 0, the weight of desirable responses"},
           {"lambda_undesirable", format(k.lambda_undesirable), ">= 0, the weight of undesirable responses"}}},
         &build_kto},
        {{"bco_unpaired",
          "BCO, unpaired (Jung et al. 2024): each labelled response classified on its shifted reward; LOSSES.md 1.8",
          "Jung et al., Binary Classifier Optimization for Large Language Model Alignment, arXiv 2404.04656",
          "rpo::evaluate_bco, with delta from rpo::bco_reference_point and optional per-response (UDM) weights",
          "unpaired labelled responses, each classified on its own reward shifted by a running mean carried across "
          "steps",
          "logp, ref_logp, desirable; optional delta, weight",
          "TRL BCOTrainer (experimental; its UDM weights need a classifier on prompt embeddings)",
          {{"beta", format(bco.beta), "beta > 0"}}},
         &build_bco},
        {{"aot", "AOT (Melnyk et al. 2024): sorted margins (or log-ratios) paired by rank; LOSSES.md 1.10",
          "Melnyk et al., Distributional Preference Alignment of LLMs via Optimal Transport, arXiv 2406.05882",
          "rpo::evaluate_aot (unpaired = true for aot_unpaired)",
          "sorts the batch's margins (or log-ratios) and pairs them by rank: each term mixes different pairs",
          "logp, ref_logp of B pairs (chosen, rejected, ...)",
          "TRL DPOTrainer loss_type=aot, aot_unpaired",
          {{"beta", format(a.beta), "beta > 0"},
           {"epsilon", format(a.epsilon), "in [0, 0.5), label smoothing"},
           {"unpaired", bool_text(a.unpaired), "false: aot (sorted margins); true: aot_unpaired (sorted log-ratios)"}}},
         &build_aot},
        {{"gamma_po", "gamma-PO (Sun et al. 2025): DPO or SimPO with per-pair margins optimised over the batch; LOSSES.md 4.6",
          "Sun et al., Robust Preference Optimization via Dynamic Target Margins, arXiv 2506.03690",
          "rpo::evaluate_gamma_po with rpo::gamma_po_margins (rpo::gamma_po_gaps gives the optimiser's input)",
          "per-pair margins optimised over the batch's gaps and a queue of past gaps carried across steps (a batch "
          "spec starts from an empty queue, or takes the margins)",
          "logp and ref_logp (length for simpo=true) of B pairs; optional margins",
          "none (authors' code sunjie279/gammaPO)",
          {{"beta", format(g.beta), "beta > 0"},
           {"gamma_beta_ratio", format(g.gamma_beta_ratio), ">= 0, gamma_0 / beta"},
           {"simpo", bool_text(g.simpo), "false: gamma-DPO (logp, ref_logp); true: gamma-SimPO (logp, length)"},
           {"tau", format(opt.tau), "> 0, the optimiser's KL weight"},
           {"iterations", std::to_string(opt.iterations), ">= 1, evaluations of the margins"},
           {"step", format(opt.step), ">= 0, the EG step (0: min(0.5/tau, 1))"},
           {"epsilon", format(opt.epsilon), ">= 0, in the KL term's log(n(p + epsilon))"}}},
         &build_gamma_po},
        {{"wpo", "WPO (Zhou et al. 2024): any loss with a constant weight per group; LOSSES.md 1.16",
          "Zhou et al., WPO: Enhancing RLHF with Weighted Preference Optimization, arXiv 2406.11827",
          "rpo::evaluate_weighted (rpo::any_loss::evaluate_weighted), the weights from rpo::wpo_weights",
          "the weight w(y_c) w(y_r) comes from the logits (logsumexp of 2 logits at every token), outside the group",
          "the fields of its loss, group_weights; offsets for losses of groups of any size",
          "TRL DPOTrainer use_weighting=True",
          {{"loss", "dpo", "a loss spec (rpo-eval --list), e.g. dpo(beta=0.1)"}}},
         &build_wpo},
        {{"ld_dpo", "LD-DPO (Liu et al. 2024): token log-probs past min(n_c, n_r) weighted by alpha, then any pair loss; "
                    "LOSSES.md 1.17",
          "Liu et al., Length Desensitization in Direct Preference Optimization, arXiv 2409.06411",
          "rpo::length_desensitized_logp (and _backward), then any loss through rpo::evaluate",
          "reweights the per-token log-probs past min(n_c, n_r) before they are summed",
          "token_logp, token_ref_logp (S x T), optional mask; reward when its loss reads it",
          "TRL DPOTrainer ld_alpha (policy only)",
          {{"alpha", "required", "in [0, 1] (1: the plain sum, DPO)"},
           {"loss", "dpo", "a loss of pairs that does not read length, e.g. dpo(beta=0.1)"}}},
         &build_ld_dpo},
    };
  }();
  return table;
}

inline std::string method_names() {
  std::string out;
  for (const auto& m : methods()) out += (out.empty() ? "" : ", ") + m.info.name;
  return out;
}

}  // namespace detail::batch_spec

inline batch_result batch_loss::evaluate(const batch_fields& in) const {
  return state_->run(detail::batch_spec::reader(state_->fields, in, state_->spec));
}

inline batch_loss parse_batch_loss(std::string_view spec) {
  namespace s = detail::spec;
  namespace b = detail::batch_spec;
  constexpr std::string_view who = "rpo::parse_batch_loss";
  s::arguments args(spec, s::tokenize(spec, who), who);
  for (const b::method_entry& m : b::methods()) {
    if (args.loss() != m.info.name) continue;
    b::built built = m.build(args);
    auto state = std::make_shared<batch_loss::state>();
    state->name = m.info.name;
    state->spec = std::move(built.spec);
    state->fields = std::move(built.fields);
    state->outputs = std::move(built.outputs);
    state->run = std::move(built.run);
    return batch_loss(std::move(state));
  }
  std::string hint;
  for (const loss_info& info : registered_losses())
    if (info.name == args.loss()) hint = " (\"" + info.name + "\" is a loss of one group: rpo-eval --loss, rpo.Loss)";
  throw spec_error(std::string(who) + ": unknown batch method \"" + args.loss() + "\" in \"" + std::string(spec) +
                   "\"; the batch methods are: " + b::method_names() + hint);
}

inline const std::vector<batch_method_info>& registered_batch_methods() {
  static const std::vector<batch_method_info> table = [] {
    std::vector<batch_method_info> out;
    for (const auto& m : detail::batch_spec::methods()) out.push_back(m.info);
    return out;
  }();
  return table;
}

}  // namespace rpo
