// rpo/spec.hpp — losses chosen at run time from a spec string: "dpo(beta=0.1)", "rpo(distance=sq, ...)".
//
// Public names: rpo::parse_loss, rpo::any_loss, rpo::spec_error, rpo::registered_losses, rpo::loss_info,
//               rpo::parameter_info.
// A spec names a preset with its parameters, `name(key=value, ...)`, or composes one from the four policies with
// the general form `rpo(distance=..., reward=..., target=..., sampling=..., beta=..., ...)`. The result is an
// rpo::any_loss: the same compiled composition as the static type, behind one virtual call per batch. This is the
// entry point of `rpo-eval` and of the Python module; C++ code that knows its loss at compile time should use the
// preset or rpo::loss directly. Not included by <rpo.hpp>: it instantiates every composition it can name.
//
// Compiling the registry once (docs/spec.md#compile_once): parse_loss and registered_losses instantiate every
// composition, over a minute of compilation. By default they are inline here and every translation unit that
// includes this header pays it. Define RPO_SPEC_EXTERN in every translation unit of the program and this header
// only declares them; exactly one translation unit also defines RPO_SPEC_IMPLEMENTATION before including it and
// compiles them once, with external linkage. All translation units of one program must agree (ODR).
// @sa docs/spec.md
#pragma once

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "rpo/batch.hpp"
#include "rpo/batchwise.hpp"
#include "rpo/concepts.hpp"
#include "rpo/distance.hpp"
#include "rpo/errors.hpp"
#include "rpo/extension.hpp"
#include "rpo/loss.hpp"
#include "rpo/presets.hpp"
#include "rpo/reward.hpp"
#include "rpo/sampling.hpp"
#include "rpo/target.hpp"
#include "rpo/token.hpp"

// RPO_DETAIL_SPEC_DEFINES: this translation unit compiles the registry; RPO_DETAIL_SPEC_LINKAGE: `inline` in the
// header-only mode, nothing when it is compiled once.
#if defined(RPO_SPEC_IMPLEMENTATION) || !defined(RPO_SPEC_EXTERN)
#  define RPO_DETAIL_SPEC_DEFINES 1
#else
#  define RPO_DETAIL_SPEC_DEFINES 0
#endif
#if defined(RPO_SPEC_IMPLEMENTATION) || defined(RPO_SPEC_EXTERN)
#  define RPO_DETAIL_SPEC_LINKAGE
#else
#  define RPO_DETAIL_SPEC_LINKAGE inline
#endif

namespace rpo {

// ===========================================================================================================
// Declarations
// ===========================================================================================================

/// A spec that cannot be parsed, names an unknown loss or parameter, or gives an invalid value. The message
/// quotes the spec and lists the valid choices.  @sa docs/spec.md#errors
class spec_error : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// One parameter of a registered loss.  @sa docs/spec.md#registered_losses
struct parameter_info {
  std::string name;           ///< as written in a spec ("beta")
  std::string default_value;  ///< its default as a spec would write it ("0.1"), or "required"
  std::string description;    ///< what it is and its valid range
};

/// One loss that rpo::parse_loss knows.  @sa docs/spec.md#registered_losses
struct loss_info {
  std::string name;         ///< the spec name ("dpo")
  std::string summary;      ///< one line: the method and its source
  std::string composition;  ///< the policies it composes, and how its parameters map onto theirs; "outside: why"
                            ///< for a loss beside the template
  std::string paper;        ///< the source: authors, short title, arXiv id (LOSSES.md)
  std::string libraries;    ///< other libraries that implement it, under their names (LOSSES.md §1-5)
  std::vector<parameter_info> parameters;
};

/// Every loss a spec can name: the presets, then the general form "rpo".  @sa docs/spec.md#registered_losses
RPO_DETAIL_SPEC_LINKAGE const std::vector<loss_info>& registered_losses();

/// A loss chosen at run time: evaluates batches exactly as rpo::evaluate does with the static composition.
/// Cheap to copy (it shares its immutable state).  @sa docs/spec.md#any_loss
class any_loss {
 public:
  /// The spec name: "dpo", ..., or "rpo" for the general form.
  const std::string& name() const noexcept { return state_->name; }
  /// The canonical spec, every parameter written out so that it round-trips: "dpo(beta=0.1)".
  const std::string& spec() const noexcept { return state_->spec; }
  /// The composition in policy names: "distance::bernoulli_bwd_kl, reward::implicit, ...".
  const std::string& composition() const noexcept { return state_->composition; }
  /// The per-response fields the loss reads (rpo::input flags).
  input inputs() const noexcept { return state_->inputs; }
  /// The number of responses of every group (2 for pairs), or 0 when groups of any size ≥ min_group_size work.
  std::int64_t group_size() const noexcept { return state_->group_size; }
  /// The fewest responses a group may have.
  std::int64_t min_group_size() const noexcept { return state_->min_group_size; }
  /// What it needs of a group's explicit rewards (rpo::ranking::none for most); evaluate() rejects a group that breaks
  /// it.
  ranking ranks() const noexcept { return state_->ranks; }
  /// True when the explicit rewards are win probabilities, which evaluate() holds to [0, 1] (rpo::sppo_soft).
  bool reward_is_probability() const noexcept { return state_->reward_is_probability; }

  /// The number of groups evaluate() will see in `in` (offsets.size() − 1, or N / group_size()).
  template <Scalar T> std::int64_t group_count(const batch_input<T>& in) const noexcept;

  /// rpo::evaluate with this loss, double or float: throws std::invalid_argument / std::domain_error on bad
  /// input, with a message that names the spec and the field.
  template <Scalar T>
  T evaluate(const batch_input<T>& in, const batch_output<T>& out = {}, reduction how = reduction::mean()) const;
  /// The same under errors::report: returns NaN and records the error instead of throwing.
  template <Scalar T>
  T evaluate(const batch_input<T>& in, const batch_output<T>& out, reduction how, errors::report policy) const;

  /// rpo::evaluate_tokens with this loss (rpo/token.hpp): logits → sequence log-probs → this loss → ∂(reduced
  /// loss)/∂logits in two streamed passes, float or double, written to `out.grad_logits` (which may be the logits'
  /// own memory). Throws std::invalid_argument / std::domain_error on bad input, as evaluate() does; messages name the
  /// spec.  @sa docs/spec.md#any_loss_tokens
  template <Scalar T>
  T evaluate_tokens(const token_input<T>& in, const token_output<T>& out, reduction how = reduction::mean()) const;

  /// rpo::evaluate_weighted with this loss (rpo/batchwise.hpp): the reduction of c_g·L_g with constant per-group
  /// weights (WPO's w(y_c)·w(y_r), LOSSES.md §1.16), the gradients scaled by c_g. Throws as evaluate() does.
  /// @sa docs/spec.md#any_loss_tokens
  template <Scalar T>
  T evaluate_weighted(const batch_input<T>& in, std::span<const std::type_identity_t<T>> group_weights,
                      const batch_output<T>& out = {}, reduction how = reduction::mean()) const;

  /// Erases a composition or preset of your own under a name and a spec of your choosing (what parse_loss
  /// builds for the registered ones). Its parameters are checked here: throws rpo::spec_error.
  template <LossLike L> static any_loss from(const L& l, std::string name, std::string spec);

 private:
  struct model {
    std::string name, spec, composition;
    input inputs = input::none;
    std::int64_t group_size = 0, min_group_size = 0;
    ranking ranks = ranking::none;
    bool reward_is_probability = false;
    virtual ~model() = default;
    virtual double run(const batch_input<double>& in, const batch_output<double>& out, reduction how) const = 0;
    virtual float run(const batch_input<float>& in, const batch_output<float>& out, reduction how) const = 0;
  };
  template <LossLike L> struct model_of;

  explicit any_loss(std::shared_ptr<const model> state) noexcept : state_(std::move(state)) {}
  std::shared_ptr<const model> state_;
};

/// Parses `spec` into a loss: `name`, `name()` or `name(key=value, ...)`, spaces allowed around tokens, an
/// optional "rpo::" before the name. Parameters left out take their defaults; every parameter is checked here,
/// so a loss that parses can be evaluated. Throws rpo::spec_error.  @sa docs/spec.md#parse_loss
RPO_DETAIL_SPEC_LINKAGE any_loss parse_loss(std::string_view spec);


// ===========================================================================================================
// Implementations
// ===========================================================================================================

template <LossLike L> struct any_loss::model_of final : any_loss::model {
  L held;
  explicit model_of(const L& l) : held(l) {}

  // The parameters were checked by parse_loss; a bare composition is named by its spec in messages.
  template <Scalar T> T run_as(const batch_input<T>& in, const batch_output<T>& out, reduction how) const {
    detail::loss_shape shape = detail::shape_of<L>();
    if constexpr (!Preset<L>) shape.name = spec.c_str();
    return detail::evaluate_batch(as_loss(held), shape, in, out, how, errors::throw_on_error{});
  }
  double run(const batch_input<double>& in, const batch_output<double>& out, reduction how) const override {
    return run_as(in, out, how);
  }
  float run(const batch_input<float>& in, const batch_output<float>& out, reduction how) const override {
    return run_as(in, out, how);
  }
};

template <Scalar T> std::int64_t any_loss::group_count(const batch_input<T>& in) const noexcept {
  if (!in.offsets.empty()) return static_cast<std::int64_t>(in.offsets.size()) - 1;
  return group_size() == 0 ? 0 : static_cast<std::int64_t>(in.logp.size()) / group_size();
}

template <Scalar T>
T any_loss::evaluate(const batch_input<T>& in, const batch_output<T>& out, reduction how) const {
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, float>,
                "rpo::any_loss evaluates double and float batches; use the static composition for other scalars");
  return state_->run(in, out, how);
}

template <Scalar T>
T any_loss::evaluate(const batch_input<T>& in, const batch_output<T>& out, reduction how,
                     errors::report policy) const {
  try {
    return evaluate(in, out, how);
  } catch (const std::domain_error& e) {
    detail::fail(policy, errc::domain_error, e.what());
  } catch (const std::invalid_argument& e) {
    detail::fail(policy, errc::invalid_argument, e.what());
  }
  return std::numeric_limits<T>::quiet_NaN();
}

template <Scalar T>
T any_loss::evaluate_tokens(const token_input<T>& in, const token_output<T>& out, reduction how) const {
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, float>,
                "rpo::any_loss evaluates double and float batches; use the static composition for other scalars");
  return detail::evaluate_tokens_with(spec().c_str(), contains(inputs(), input::length), in, out,
                                      errors::throw_on_error{},
                                      [&](const batch_input<T>& batch, const batch_output<T>& sequences) {
                                        return evaluate(batch, sequences, how);
                                      });
}

template <Scalar T>
T any_loss::evaluate_weighted(const batch_input<T>& in, std::span<const std::type_identity_t<T>> group_weights,
                              const batch_output<T>& out, reduction how) const {
  static_assert(std::is_same_v<T, double> || std::is_same_v<T, float>,
                "rpo::any_loss evaluates double and float batches; use the static composition for other scalars");
  const detail::loss_shape shape{spec().c_str(), inputs(),  group_size(), min_group_size(), ranks(),
                                 reward_is_probability()};
  return detail::evaluate_weighted_with(shape, in, group_weights, out, how, errors::throw_on_error{},
                                        [&](const batch_output<T>& unscaled) {
                                          return evaluate(in, unscaled, reduction::sum());
                                        });
}

namespace detail::spec {

/// A number as a spec writes it: the shortest decimal that reads back to the same double.
inline std::string format(double x) {
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, x);
  return std::string(buffer, result.ptr);
}

inline std::string join(const std::vector<std::string>& names, std::string_view separator = ", ") {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : std::string(separator)) + n;
  return out;
}

/// `name(key=value, ...)` split into its tokens; values are kept as text until their parameter is known.
struct parsed {
  std::string name;
  std::vector<std::pair<std::string, std::string>> arguments;
};

/// `who` names the parser in messages (rpo::parse_loss, or rpo::parse_batch_loss of rpo/batch_spec.hpp).
inline parsed tokenize(std::string_view text, std::string_view who = "rpo::parse_loss") {
  const auto error = [&](const std::string& what, std::size_t at) {
    return spec_error(std::string(who) + ": " + what + " at position " + std::to_string(at) + " in \"" +
                      std::string(text) + "\"");
  };
  std::size_t i = 0;
  const auto skip_spaces = [&] {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
  };
  const auto is_word = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  };
  const auto word = [&](const char* what) {
    skip_spaces();
    const std::size_t start = i;
    while (i < text.size() && is_word(text[i])) ++i;
    if (i == start) throw error(std::string("expected ") + what, start);
    return std::string(text.substr(start, i - start));
  };
  const auto value = [&] {
    skip_spaces();
    const std::size_t start = i;
    while (i < text.size() && (is_word(text[i]) || text[i] == '.' || text[i] == '+' || text[i] == '-')) ++i;
    if (i == start) throw error("expected a value", start);
    // A value may itself be a spec with arguments, `loss=dpo(beta=0.1)` (the batch methods of rpo/batch_spec.hpp that
    // wrap a loss): its text runs to the matching ')'. A number followed by '(' is an error of its own parameter.
    std::size_t end = i;
    skip_spaces();
    if (i < text.size() && text[i] == '(') {
      int depth = 0;
      for (; i < text.size(); ++i) {
        if (text[i] == '(') ++depth;
        if (text[i] == ')' && --depth == 0) break;
      }
      if (i == text.size()) throw error("expected ')' to close the value that starts", start);
      end = ++i;
    } else {
      i = end;
    }
    return std::string(text.substr(start, end - start));
  };

  parsed out;
  skip_spaces();
  if (text.substr(i).starts_with("rpo::")) i += 5;
  out.name = word("a loss name");
  skip_spaces();
  if (i < text.size() && text[i] == '(') {
    ++i;
    skip_spaces();
    if (i < text.size() && text[i] == ')') {
      ++i;
    } else {
      for (;;) {
        std::string key = word("a parameter name");
        skip_spaces();
        if (i >= text.size() || text[i] != '=') throw error("expected '=' after \"" + key + "\"", i);
        ++i;
        std::string v = value();
        for (const auto& [k, _] : out.arguments)
          if (k == key) throw spec_error(std::string(who) + ": parameter \"" + key + "\" is given twice in \"" +
                                         std::string(text) + "\"");
        out.arguments.emplace_back(std::move(key), std::move(v));
        skip_spaces();
        if (i < text.size() && text[i] == ',') {
          ++i;
          continue;
        }
        if (i < text.size() && text[i] == ')') {
          ++i;
          break;
        }
        throw error("expected ',' or ')'", i);
      }
    }
  }
  skip_spaces();
  if (i != text.size()) throw error("unexpected \"" + std::string(text.substr(i)) + "\"", i);
  return out;
}

/// The arguments of one spec, consumed by name; whatever is left at the end is an unknown parameter.
class arguments {
 public:
  arguments(std::string_view text, parsed p, std::string_view who = "rpo::parse_loss")
      : text_(text), who_(who), parsed_(std::move(p)) {}

  const std::string& loss() const noexcept { return parsed_.name; }

  /// The text of `key`, removed from the arguments, or null when it was not given.
  const std::string* take(std::string_view key) {
    for (auto& [k, v] : parsed_.arguments)
      if (k == key && !taken(k)) {
        taken_.push_back(k);
        return &v;
      }
    return nullptr;
  }
  bool given(std::string_view key) const {
    for (const auto& [k, _] : parsed_.arguments)
      if (k == key) return true;
    return false;
  }

  double number(std::string_view key, double fallback) {
    const std::string* v = take(key);
    if (v == nullptr) return fallback;
    double x = 0;
    const auto result = std::from_chars(v->data(), v->data() + v->size(), x);
    if (result.ec != std::errc() || result.ptr != v->data() + v->size())
      throw fail(std::string(key) + " = \"" + *v + "\" is not a number");
    return x;
  }

  /// The index of `key`'s value in `choices`, or `fallback` when not given (−1: the key is required).
  int choice(std::string_view key, const std::vector<std::string>& choices, int fallback) {
    const std::string* v = take(key);
    if (v == nullptr) {
      if (fallback < 0) throw fail(std::string(key) + " must be given: " + std::string(key) + "=" + join(choices, "|"));
      return fallback;
    }
    for (std::size_t c = 0; c < choices.size(); ++c)
      if (choices[c] == *v) return static_cast<int>(c);
    throw fail(std::string(key) + " = \"" + *v + "\" is not one of: " + join(choices));
  }

  /// Throws for the first argument nobody took, listing the loss's parameters.
  void finish(const std::vector<std::string>& valid) const {
    for (const auto& [k, _] : parsed_.arguments)
      if (!taken(k))
        throw fail(parsed_.name + " has no parameter \"" + k + "\"; its parameters are: " +
                   (valid.empty() ? std::string("(none)") : join(valid)));
  }

  spec_error fail(const std::string& what) const {
    return spec_error(std::string(who_) + ": " + what + " (in \"" + std::string(text_) + "\")");
  }

 private:
  bool taken(const std::string& k) const {
    for (const auto& t : taken_)
      if (t == k) return true;
    return false;
  }
  std::string_view text_, who_;
  parsed parsed_;
  std::vector<std::string> taken_;
};

// --- Presets -----------------------------------------------------------------------------------------------

template <class P> struct preset_parameter {
  const char* name;
  double P::*member;
  const char* description;
};

/// One registered preset: its spec name, a summary, how its parameters map onto the composition, its source and
/// the other libraries that implement it (LOSSES.md), and its parameters (their defaults are read from the preset
/// type itself).
template <Preset P, std::size_t N> struct preset_entry {
  const char* name;
  const char* summary;
  const char* mapping;
  const char* paper;      ///< authors, short title, arXiv id
  const char* libraries;  ///< other libraries and their names for it ("none" when LOSSES.md knows of none)
  preset_parameter<P> parameters[N];
};

inline const auto& presets() {
  static const auto table = std::make_tuple(
      preset_entry<dpo, 1>{"dpo",
                           "DPO (Rafailov et al. 2023): softplus(-beta*(dlogp_c - dlogp_r)); LOSSES.md 1.1",
                           "reward.beta = beta",
                           "Rafailov et al., Direct Preference Optimization, arXiv 2305.18290",
                           "TRL DPOTrainer loss_type=sigmoid; NeMo-Aligner dpo; NeMo-RL DPOLossFn; torchtune DPOLoss; "
                           "OpenRLHF DPOLoss; Liger-Kernel LigerFusedLinearDPOLoss sigmoid; PaddleNLP sigmoid",
                           {{"beta", &dpo::beta, "beta > 0"}}},
      preset_entry<cdpo, 2>{
          "cdpo",
          "conservative DPO / label smoothing (Mitchell 2023): (1-eps) softplus(-a) + eps softplus(a); "
          "LOSSES.md 1.2",
          "reward.beta = beta, target.epsilon = epsilon",
          "Mitchell, A note on DPO with noisy preferences (2023, not on arXiv)",
          "legacy TRL sigmoid + label_smoothing (ignored by v1 sigmoid); torchtune "
          "DPOLoss(label_smoothing); OpenRLHF DPOLoss(label_smoothing)",
          {{"beta", &cdpo::beta, "beta > 0"}, {"epsilon", &cdpo::epsilon, "label-flip probability in (0, 0.5]"}}},
      preset_entry<ipo, 1>{"ipo",
                           "IPO as the paper writes it (Azar et al. 2023, Eq. 17): (dlogp_c - dlogp_r - 1/(2 tau))^2, "
                           "summed log-ratios; LOSSES.md 1.4",
                           "reward.beta = 1, target.value = 1/(2 tau)",
                           "Azar et al., A General Theoretical Paradigm to Understand Learning from Human Preferences, "
                           "arXiv 2310.12036",
                           "NeMo-Aligner ipo (summed); OpenRLHF DPOLoss(ipo=True); torchtune IPOLoss (removed)",
                           {{"tau", &ipo::tau, "tau > 0"}}},
      preset_entry<ipo_normalized, 1>{
          "ipo_normalized",
          "IPO in TRL's length-normalised form: (dlogp_c/n_c - dlogp_r/n_r - 1/(2 tau))^2; LOSSES.md 1.4",
          "reward.beta = 1, target.value = 1/(2 tau)",
          "Azar et al., arXiv 2310.12036; the normalisation is TRL's, confirmed with the authors",
          "TRL DPOTrainer loss_type=ipo; NeMo-Aligner ipo + preference_average_log_probs",
          {{"tau", &ipo_normalized::tau, "tau > 0"}}},
      preset_entry<simpo, 2>{
          "simpo",
          "SimPO (Meng et al. 2024): softplus(-(beta*(logp_c/n_c - logp_r/n_r) - gamma)), no "
          "reference; LOSSES.md 2.1",
          "reward.beta = beta, target.gamma = gamma",
          "Meng et al., SimPO: Simple Preference Optimization with a Reference-Free Reward, arXiv "
          "2405.14734",
          "TRL CPOTrainer loss_type=simpo, cpo_alpha=0; Liger-Kernel LigerFusedLinearSimPOLoss; torchtune "
          "SimPOLoss (removed); PaddleNLP simpo",
          {{"beta", &simpo::beta, "beta > 0"},
           {"gamma", &simpo::gamma, "target reward margin, absolute (not gamma/beta)"}}},
      preset_entry<hinge, 1>{"hinge",
                             "SLiC-HF / RSO hinge (TRL's 'hinge'): max(0, 1 - beta*(dlogp_c - dlogp_r)); "
                             "LOSSES.md 1.3",
                             "reward.beta = beta",
                             "Zhao et al., SLiC-HF, arXiv 2305.10425; Liu et al., RSO, arXiv 2309.06657",
                             "TRL DPOTrainer loss_type=hinge; Liger-Kernel DPO hinge; torchtune RSOLoss (deprecated); "
                             "PaddleNLP hinge",
                             {{"beta", &hinge::beta, "beta > 0, the inverse margin"}}},
      preset_entry<dpo_normalized, 1>{"dpo_normalized",
                                      "length-normalised DPO (Tulu 3; TRL's 'sigmoid_norm'); LOSSES.md 1.14",
                                      "reward.beta = beta",
                                      "Lambert et al., Tulu 3, arXiv 2411.15124 (Eq. 6); SimPO paper 2.2",
                                      "TRL DPOTrainer loss_type=sigmoid_norm; NeMo-Aligner and NeMo-RL dpo + "
                                      "preference_average_log_probs",
                                      {{"beta", &dpo_normalized::beta, "beta > 0, per token"}}},
      preset_entry<rpo_sq, 2>{"rpo_sq",
                              "RPO with the squared distance (NeMo-Aligner's rpo_sq); RPO.md (E2)",
                              "reward.beta = beta, target.eta = eta",
                              "Sun et al., Reward-aware Preference Optimization, arXiv 2502.00203",
                              "NeMo-Aligner rpo_sq",
                              {{"beta", &rpo_sq::beta, "beta > 0"}, {"eta", &rpo_sq::eta, "eta >= 0, reward scale"}}},
      preset_entry<rpo_fwd, 2>{
          "rpo_fwd",
          "RPO with the forward Bernoulli KL (NeMo-Aligner's rpo_fwd_kl); RPO.md (E3)",
          "reward.beta = beta, target.eta = eta",
          "Sun et al., Reward-aware Preference Optimization, arXiv 2502.00203",
          "NeMo-Aligner rpo_fwd_kl",
          {{"beta", &rpo_fwd::beta, "beta > 0"}, {"eta", &rpo_fwd::eta, "eta >= 0, reward scale"}}},
      preset_entry<rpo_bwd, 2>{
          "rpo_bwd",
          "RPO with the backward Bernoulli KL, the Nemotron-4 loss (NeMo-Aligner's rpo_bwd_kl); "
          "RPO.md (E4)",
          "reward.beta = beta, target.eta = eta",
          "NVIDIA, Nemotron-4 340B Technical Report, arXiv 2406.11704; Sun et al., arXiv 2502.00203",
          "NeMo-Aligner rpo_bwd_kl",
          {{"beta", &rpo_bwd::beta, "beta > 0"}, {"eta", &rpo_bwd::eta, "eta >= 0, reward scale"}}},
      preset_entry<rpo_sqloo, 2>{
          "rpo_sqloo",
          "RPO-sq with leave-one-out contrasts over K responses (RLOO's gradient online); "
          "RPO.md (L-loo), (L13)",
          "reward.beta = beta, target.eta = eta",
          "Sun et al., arXiv 2502.00203 (RPO.md 3.2)",
          "none as a preference loss; online it is TRL RLOOTrainer's and NeMo-Aligner REINFORCE's RLOO "
          "gradient",
          {{"beta", &rpo_sqloo::beta, "beta > 0"}, {"eta", &rpo_sqloo::eta, "eta >= 0"}}},
      preset_entry<rpo_sqpairs, 2>{
          "rpo_sqpairs",
          "RPO-sq averaged over all pairs of K responses (mean-baseline gradient online); "
          "RPO.md (L-pairs), (L14)",
          "reward.beta = beta, target.eta = eta",
          "Sun et al., arXiv 2502.00203 (RPO.md 3.3)",
          "none; online, related to TRL GRPOTrainer scale_rewards=none (Dr. GRPO's mean baseline)",
          {{"beta", &rpo_sqpairs::beta, "beta > 0"}, {"eta", &rpo_sqpairs::eta, "eta >= 0"}}},
      preset_entry<rpo_softmax_bwd, 2>{
          "rpo_softmax_bwd",
          "the multi-response RPO of NeMo-Aligner PR #311: KL(softmax(eta r) || softmax(beta l)); RPO.md (E10)",
          "reward.beta = beta, target.eta = eta",
          "Sun et al., arXiv 2502.00203 (RPO.md E10)",
          "NeMo-Aligner preference_loss=rpo (PR #311, open)",
          {{"beta", &rpo_softmax_bwd::beta, "beta > 0"}, {"eta", &rpo_softmax_bwd::eta, "eta >= 0"}}},
      preset_entry<rpo_softmax_fwd, 2>{
          "rpo_softmax_fwd",
          "the reverse listwise RPO: KL(softmax(beta l) || softmax(eta r)); RPO.md (E10f)",
          "reward.beta = beta, target.eta = eta",
          "Sun et al., arXiv 2502.00203 (RPO.md E10f)",
          "none",
          {{"beta", &rpo_softmax_fwd::beta, "beta > 0"}, {"eta", &rpo_softmax_fwd::eta, "eta >= 0"}}},
      preset_entry<infonca, 2>{
          "infonca",
          "InfoNCA (Chen et al. 2024): -sum_i softmax(r/alpha)_i log softmax(beta l)_i; "
          "LOSSES.md 4.12",
          "reward.beta = beta, target.eta = 1/alpha",
          "Chen et al., Noise Contrastive Alignment of Language Models with Explicit Rewards, arXiv "
          "2402.05369",
          "thu-ml/Noise-Contrastive-Alignment NCATrainer loss_type=InfoNCA",
          {{"beta", &infonca::beta, "beta > 0"}, {"alpha", &infonca::alpha, "alpha > 0, the reward temperature"}}},
      preset_entry<listwise_dpo, 1>{
          "listwise_dpo",
          "listwise DPO, Plackett-Luce over the ranking by explicit reward; LOSSES.md 4.11",
          "reward.beta = beta",
          "Rafailov et al., arXiv 2305.18290, App. A.3; related: Liu et al., LiPO, arXiv 2402.01878",
          "none",
          {{"beta", &listwise_dpo::beta, "beta > 0"}}},
      preset_entry<dpo_best_worst, 1>{"dpo_best_worst",
                                      "DPO on the best-vs-worst pair of each group by explicit reward; RPO.md 7",
                                      "reward.beta = beta",
                                      "RPO.md 7 (online regime: the best against the worst response)",
                                      "none",
                                      {{"beta", &dpo_best_worst::beta, "beta > 0"}}},
      // The catalogue's methods that fit the template (LOSSES.md 1-4).
      preset_entry<exo_pair, 2>{
          "exo_pair",
          "EXO, pairwise (Ji et al. 2024, Eq. 16; TRL's exo_pair): KL(Bern sigma(a) || Bern(1-eps)); "
          "LOSSES.md 1.5",
          "reward.beta = beta, target.epsilon = epsilon",
          "Ji et al., Towards Efficient Exact Optimization of Language Model Alignment, arXiv 2402.00856",
          "TRL DPOTrainer loss_type=exo_pair; Liger-Kernel DPO exo_pair",
          {{"beta", &exo_pair::beta, "beta > 0"}, {"epsilon", &exo_pair::epsilon, "label smoothing in (0, 0.5]"}}},
      preset_entry<cpo_pref, 1>{
          "cpo_pref",
          "CPO's preference term (Xu et al. 2024): softplus(-beta*(logp_c - logp_r)), no reference; "
          "LOSSES.md 2.1",
          "reward.beta = beta",
          "Xu et al., Contrastive Preference Optimization, arXiv 2401.08417",
          "TRL CPOTrainer loss_type=sigmoid, cpo_alpha=0",
          {{"beta", &cpo_pref::beta, "beta > 0"}}},
      preset_entry<odpo, 2>{"odpo",
                            "ODPO (Amini et al. 2024): softplus(-(a - alpha*log(r_c - r_r))), needs r_c > r_r; "
                            "LOSSES.md 4.1",
                            "reward.beta = beta, target.alpha = alpha",
                            "Amini, Vieira, Cotterell, Direct Preference Optimization with an Offset, arXiv 2402.10571",
                            "PaddleNLP sigmoid + offset_alpha",
                            {{"beta", &odpo::beta, "beta > 0"}, {"alpha", &odpo::alpha, "offset scale >= 0"}}},
      preset_entry<rdpo, 2>{"rdpo",
                            "R-DPO (Park et al. 2024): softplus(-(a + alpha*(n_c - n_r))); LOSSES.md 4.2",
                            "reward.beta = beta, reward.alpha = alpha",
                            "Park et al., Disentangling Length from Quality in Direct Preference Optimization, arXiv "
                            "2403.19159",
                            "none (the gammaPO repository's r-dpo subtracts the length term)",
                            {{"beta", &rdpo::beta, "beta > 0"}, {"alpha", &rdpo::alpha, "length weight, finite"}}},
      preset_entry<hdpo, 2>{"hdpo",
                            "H-DPO (Omura et al. 2024): softplus(-beta*((alpha logp_c - ref_c) - (alpha logp_r - "
                            "ref_r))); LOSSES.md 4.17",
                            "reward.beta = beta, reward.alpha = alpha",
                            "Omura et al., Entropy Controllable Direct Preference Optimization, arXiv 2411.07595",
                            "none",
                            {{"beta", &hdpo::beta, "beta > 0"}, {"alpha", &hdpo::alpha, "entropy coefficient > 0"}}},
      preset_entry<alphapo, 3>{
          "alphapo",
          "AlphaPO (Gupta et al. 2025): SimPO on r = (1 - exp(-alpha logp/n))/alpha; LOSSES.md 2.1",
          "reward.beta = beta, reward.alpha = alpha, target.gamma = gamma",
          "Gupta et al., AlphaPO: Reward Shape Matters for LLM Alignment, arXiv 2501.03884",
          "TRL CPOTrainer loss_type=alphapo (alpha)",
          {{"beta", &alphapo::beta, "beta > 0"},
           {"alpha", &alphapo::alpha, "reward shape, finite (0: SimPO)"},
           {"gamma", &alphapo::gamma, "margin, absolute"}}},
      preset_entry<fdpo_forward_kl, 1>{"fdpo_forward_kl",
                                       "f-DPO, forward KL (Wang et al. 2023): score -exp(-l), exponent clamped at 80; "
                                       "LOSSES.md 1.15",
                                       "reward.beta = beta, reward.kind = forward_kl",
                                       "Wang et al., Beyond Reverse KL (f-DPO), arXiv 2309.16240",
                                       "TRL DPOTrainer f_divergence_type=forward_kl",
                                       {{"beta", &fdpo_forward_kl::beta, "beta > 0"}}},
      preset_entry<fdpo_js, 1>{"fdpo_js",
                               "f-DPO, Jensen-Shannon (Wang et al. 2023): score log sigma(l); LOSSES.md 1.15",
                               "reward.beta = beta, reward.kind = jensen_shannon",
                               "Wang et al., Beyond Reverse KL (f-DPO), arXiv 2309.16240",
                               "TRL DPOTrainer f_divergence_type=js_divergence",
                               {{"beta", &fdpo_js::beta, "beta > 0"}}},
      preset_entry<fdpo_alpha, 2>{
          "fdpo_alpha",
          "f-DPO, alpha-divergence in TRL v1's form: score exp((alpha-1) l)/(alpha-1); "
          "LOSSES.md 1.15",
          "reward.beta = beta, reward.kind = alpha, reward.alpha = alpha",
          "Wang et al., Beyond Reverse KL (f-DPO), arXiv 2309.16240",
          "TRL DPOTrainer f_divergence_type=alpha_divergence, f_alpha_divergence_coef",
          {{"beta", &fdpo_alpha::beta, "beta > 0"}, {"alpha", &fdpo_alpha::alpha, "coefficient in (0, 1] (1: DPO)"}}},
      preset_entry<discopop, 2>{
          "discopop",
          "DiscoPOP (Lu et al. 2024): (1-sigma(a/tau)) softplus(-a) + sigma(a/tau) exp(-a); "
          "LOSSES.md 1.12",
          "reward.beta = beta, distance.tau = tau",
          "Lu et al., Discovering Preference Optimization Algorithms with and for LLMs, arXiv 2406.08414",
          "TRL DPOTrainer loss_type=discopop (discopop_tau); Liger-Kernel DPO discopop",
          {{"beta", &discopop::beta, "beta > 0"}, {"tau", &discopop::tau, "tau > 0"}}},
      preset_entry<focalpo, 2>{"focalpo",
                               "FocalPO (Liu et al. 2025): -sigma(a)^gamma log sigma(a); LOSSES.md 4.5",
                               "reward.beta = beta, distance.gamma = gamma",
                               "Liu et al., FocalPO, arXiv 2501.06645",
                               "none",
                               {{"beta", &focalpo::beta, "beta > 0"}, {"gamma", &focalpo::gamma, "gamma >= 0"}}},
      preset_entry<dno, 1>{"dno",
                           "DNO's general loss (Rosset et al. 2024): -[P log sigma(u) + (1-P) log sigma(-u)], u = beta*"
                           "(l_1 - l_2) against the previous iterate; the rewards carry logit P; LOSSES.md 4.8",
                           "reward.beta = beta, target.eta = 1 (reward[0] - reward[1] = logit P)",
                           "Rosset et al., Direct Nash Optimization, arXiv 2404.03715",
                           "none (DNO-Prct is DPO against the previous iterate)",
                           {{"beta", &dno::beta, "beta > 0 (the paper's eta)"}}},
      // Weighted sums with the NLL term -logp_c/n_c (rpo::sum, rpo::nll; LOSSES.md 1.13, 1.18, 2.1).
      preset_entry<cpo, 2>{"cpo",
                           "CPO (Xu et al. 2024): cpo_pref + lambda * NLL(chosen); LOSSES.md 2.1",
                           "first: reward.beta = beta; second_weight = lambda",
                           "Xu et al., Contrastive Preference Optimization, arXiv 2401.08417",
                           "TRL CPOTrainer loss_type=sigmoid + cpo_alpha (NLL as one token mean); Liger-Kernel CPO",
                           {{"beta", &cpo::beta, "beta > 0"}, {"lambda", &cpo::lambda, "NLL weight >= 0"}}},
      preset_entry<irpo, 2>{"irpo",
                            "Iterative RPO (Pang et al. 2024, v3; TRL's old rpo_alpha): DPO + alpha * NLL(chosen); "
                            "LOSSES.md 1.13",
                            "first: reward.beta = beta; second_weight = alpha",
                            "Pang et al., Iterative Reasoning Preference Optimization, arXiv 2404.19733 (v3)",
                            "TRL loss_type=[sigmoid, sft], loss_weights=[1, alpha] (formerly rpo_alpha); OpenRLHF "
                            "nll_loss_coef; NeMo sft_loss_weight",
                            {{"beta", &irpo::beta, "beta > 0"}, {"alpha", &irpo::alpha, "NLL weight >= 0"}}},
      preset_entry<mpo, 4>{"mpo",
                           "mixed preference optimisation (Wang et al. 2024): w_p DPO + w_q BCO-pair + w_g NLL; "
                           "LOSSES.md 1.18",
                           "beta in both preference terms; first_weight = preference, then quality, generation",
                           "Wang et al., Mixed Preference Optimization, arXiv 2411.10442",
                           "TRL loss_type=[sigmoid, bco_pair, sft], loss_weights=[0.8, 0.2, 1.0]",
                           {{"beta", &mpo::beta, "beta > 0"},
                            {"preference", &mpo::preference, "weight of DPO >= 0"},
                            {"quality", &mpo::quality, "weight of BCO-pair >= 0"},
                            {"generation", &mpo::generation, "weight of the NLL >= 0"}}},
      preset_entry<orpo, 1>{"orpo",
                            "ORPO (Hong et al. 2024): -logp_c/n_c + lambda softplus(-(logodds(p_c) - logodds(p_r))), "
                            "p = exp(logp/n), log(1-p) as log1mexp; LOSSES.md 2.2",
                            "first: reward.beta = 1, first_weight = lambda; second: nll, second_weight = 1",
                            "Hong et al., ORPO: Monolithic Preference Optimization without Reference Model, "
                            "arXiv 2403.07691",
                            "TRL ORPOTrainer (beta = lambda); Liger-Kernel ORPO (no log1mexp guard); PaddleNLP or",
                            {{"lambda", &orpo::lambda, "odds-ratio weight >= 0"}}},
      // Outside the template (rpo::extension::pairwise; LOSSES.md 0.4's criterion).
      preset_entry<robust_dpo, 2>{
          "robust_dpo",
          "robust DPO (Chowdhury et al. 2024): ((1-eps) sp(-a) - eps sp(a))/(1-2eps); "
          "LOSSES.md 1.7",
          "kernel.beta = beta, kernel.epsilon = epsilon",
          "Chowdhury et al., Provably Robust DPO, arXiv 2403.00409",
          "TRL DPOTrainer loss_type=robust; Liger-Kernel DPO robust",
          {{"beta", &robust_dpo::beta, "beta > 0"}, {"epsilon", &robust_dpo::epsilon, "label-flip rate in [0, 0.5)"}}},
      preset_entry<nca_pair, 1>{"nca_pair",
                                "NCA, pairwise (Chen et al. 2024); LOSSES.md 1.6",
                                "kernel.beta = beta",
                                "Chen et al., Noise Contrastive Alignment, arXiv 2402.05369",
                                "TRL DPOTrainer loss_type=nca_pair; Liger-Kernel DPO nca_pair; PaddleNLP nca_pair",
                                {{"beta", &nca_pair::beta, "beta > 0"}}},
      preset_entry<bco_pair, 2>{"bco_pair",
                                "BCO, pairwise: -log sigma(beta l_c - delta) - log sigma(-(beta l_r - delta)), delta the "
                                "running mean of the rewards (0: TRL v1); LOSSES.md 1.8",
                                "kernel.beta = beta, kernel.delta = delta",
                                "Jung et al., Binary Classifier Optimization, arXiv 2404.04656",
                                "TRL DPOTrainer loss_type=bco_pair (v1: no delta; legacy <= 0.28: running-mean delta); "
                                "Liger-Kernel DPO bco_pair",
                                {{"beta", &bco_pair::beta, "beta > 0"},
                                 {"delta", &bco_pair::delta, "reward shift, finite (running mean; 0: TRL v1)"}}},
      preset_entry<sppo_hard, 1>{"sppo_hard",
                                 "SPPO, hard labels (Wu et al. 2024, Eq. 4.7); LOSSES.md 1.9",
                                 "kernel.beta = beta",
                                 "Wu et al., Self-Play Preference Optimization, arXiv 2405.00675",
                                 "TRL DPOTrainer loss_type=sppo_hard; Liger-Kernel DPO sppo_hard; PaddleNLP sppo_hard",
                                 {{"beta", &sppo_hard::beta, "beta > 0"}}},
      preset_entry<sppo_soft, 1>{"sppo_soft",
                                 "SPPO, soft (Wu et al. 2024, Eq. 4.7): sum_y (l_y - (P_y - 1/2)/beta)^2, P_y in [0, 1] "
                                 "the win probability in the reward field; LOSSES.md 1.9 (unverified against the paper)",
                                 "beta = beta",
                                 "Wu et al., Self-Play Preference Optimization, arXiv 2405.00675",
                                 "none (TRL has only sppo_hard)",
                                 {{"beta", &sppo_soft::beta, "beta > 0 (eta = 1/beta)"}}},
      preset_entry<apo_zero, 1>{"apo_zero",
                                "APO-zero (D'Oosterlinck et al. 2024, Eq. 7); LOSSES.md 1.11",
                                "kernel.beta = beta",
                                "D'Oosterlinck et al., Anchored Preference Optimization, arXiv 2408.06266",
                                "TRL DPOTrainer loss_type=apo_zero; Liger-Kernel DPO apo_zero",
                                {{"beta", &apo_zero::beta, "beta > 0"}}},
      preset_entry<apo_down, 1>{"apo_down",
                                "APO-down (D'Oosterlinck et al. 2024, Eq. 8); LOSSES.md 1.11",
                                "kernel.beta = beta",
                                "D'Oosterlinck et al., Anchored Preference Optimization, arXiv 2408.06266",
                                "TRL DPOTrainer loss_type=apo_down; Liger-Kernel DPO apo_down",
                                {{"beta", &apo_down::beta, "beta > 0"}}},
      preset_entry<dpop, 2>{"dpop",
                            "DPO-Positive / Smaug (Pal et al. 2024): penalty inside the sigmoid; LOSSES.md 4.3",
                            "kernel.beta = beta, kernel.lambda = lambda",
                            "Pal et al., Smaug: DPO-Positive, arXiv 2402.13228",
                            "PaddleNLP dpop",
                            {{"beta", &dpop::beta, "beta > 0"}, {"lambda", &dpop::lambda, "penalty >= 0"}}},
      preset_entry<dpo_shift, 2>{
          "dpo_shift",
          "DPO-Shift (Yang et al. 2025), fixed lambda; LOSSES.md 4.15",
          "kernel.beta = beta, kernel.lambda = lambda",
          "Yang et al., DPO-Shift, arXiv 2502.07599",
          "none (authors' code Meaquadddd/DPO-Shift)",
          {{"beta", &dpo_shift::beta, "beta > 0"}, {"lambda", &dpo_shift::lambda, "in (0, 1] (1: DPO)"}}},
      preset_entry<nca, 2>{"nca",
                           "NCA with K responses (Chen et al. 2024): -sum_i [q_i log sigma(s_i) + log sigma(-s_i)/K], "
                           "q = softmax(r/alpha), s = beta l; LOSSES.md 4.12",
                           "beta = beta, alpha = alpha",
                           "Chen et al., Noise Contrastive Alignment of Language Models with Explicit Rewards, "
                           "arXiv 2402.05369",
                           "thu-ml/Noise-Contrastive-Alignment NCATrainer loss_type=NCA",
                           {{"beta", &nca::beta, "beta > 0"}, {"alpha", &nca::alpha, "alpha > 0, the reward temperature"}}},
      // Beside the template: shift-invariant, beyond the four policies (rpo/extension.hpp).
      preset_entry<madpo, 5>{"madpo",
                             "MADPO (Rho 2025): DPO weighted by w(r_c - r_r) = sigma(c(|m|) m)/sigma(m), no gradient "
                             "through w; LOSSES.md 4.7",
                             "beta, c_max, c_min, lambda, tau as named",
                             "Rho, Margin Adaptive DPO, arXiv 2510.05342",
                             "none (TRL PR #5804 closed; authors' code sirano1004/"
                             "Margin-Apative-Direct-Preference-Optimization)",
                             {{"beta", &madpo::beta, "beta > 0"},
                              {"c_max", &madpo::c_max, "finite and > 1"},
                              {"c_min", &madpo::c_min, "in [0, 1)"},
                              {"lambda", &madpo::lambda, "steepness >= 0"},
                              {"tau", &madpo::tau, "margin threshold >= 0"}}},
      preset_entry<swepo, 2>{"swepo",
                             "MPO at set level (Gupta et al. 2024; v1 SWEPO): -log(sum_{r > mean} e^v / sum e^v), "
                             "v = beta l + alpha |r - mean r|; LOSSES.md 4.10",
                             "beta = beta, alpha = alpha",
                             "Gupta et al., Multi-Preference Optimization: Generalizing DPO via Set-Level Contrasts, "
                             "arXiv 2412.04628",
                             "none",
                             {{"beta", &swepo::beta, "beta > 0"},
                              {"alpha", &swepo::alpha, "weight of the reward deviations >= 0"}}});
  return table;
}

// --- The general form: names of the policies --------------------------------------------------------------

template <class... Ts> struct type_list {};

/// A policy's spec key ("bwd_kl") and its C++ name ("distance::bernoulli_bwd_kl").
template <class T> struct component;
template <> struct component<distance::bernoulli_bwd_kl> {
  static constexpr const char *key = "bwd_kl", *type = "distance::bernoulli_bwd_kl";
};
template <> struct component<distance::bernoulli_fwd_kl> {
  static constexpr const char *key = "fwd_kl", *type = "distance::bernoulli_fwd_kl";
};
template <> struct component<distance::squared> {
  static constexpr const char *key = "sq", *type = "distance::squared";
};
template <> struct component<distance::logistic> {
  static constexpr const char *key = "logistic", *type = "distance::logistic";
};
template <> struct component<distance::hinge> {
  static constexpr const char *key = "hinge", *type = "distance::hinge";
};
template <> struct component<distance::discopop> {
  static constexpr const char *key = "discopop", *type = "distance::discopop";
};
template <> struct component<distance::focal> {
  static constexpr const char *key = "focal", *type = "distance::focal";
};
template <> struct component<reward::length_regularized> {
  static constexpr const char *key = "length_regularized", *type = "reward::length_regularized";
};
template <> struct component<reward::entropy_controlled> {
  static constexpr const char *key = "entropy_controlled", *type = "reward::entropy_controlled";
};
template <> struct component<reward::alpha_shaped> {
  static constexpr const char *key = "alpha_shaped", *type = "reward::alpha_shaped";
};
template <> struct component<reward::log_odds> {
  static constexpr const char *key = "log_odds", *type = "reward::log_odds";
};
template <> struct component<reward::f_divergence> {
  static constexpr const char *key = "f_divergence", *type = "reward::f_divergence";
};
template <> struct component<target::log_reward_offset> {
  static constexpr const char *key = "log_reward_offset", *type = "target::log_reward_offset";
};
template <> struct component<reward::implicit> {
  static constexpr const char *key = "implicit", *type = "reward::implicit";
};
template <> struct component<reward::implicit_normalized> {
  static constexpr const char *key = "implicit_norm", *type = "reward::implicit_normalized";
};
template <> struct component<reward::reference_free> {
  static constexpr const char *key = "ref_free", *type = "reward::reference_free";
};
template <> struct component<reward::reference_free_normalized> {
  static constexpr const char *key = "ref_free_norm", *type = "reward::reference_free_normalized";
};
template <> struct component<target::reward_gap> {
  static constexpr const char *key = "reward_gap", *type = "target::reward_gap";
};
template <> struct component<target::hard_label> {
  static constexpr const char *key = "hard", *type = "target::hard_label";
};
template <> struct component<target::constant> {
  static constexpr const char *key = "constant", *type = "target::constant";
};
template <> struct component<target::smoothed_label> {
  static constexpr const char *key = "smoothed", *type = "target::smoothed_label";
};
template <class Inner> struct component<target::margin<Inner>> {
  static constexpr const char* key = component<Inner>::key;
  static inline const std::string type = std::string("target::margin<") + component<Inner>::type + ">";
};
template <> struct component<sampling::pair> {
  static constexpr const char *key = "pair", *type = "sampling::pair";
};
template <> struct component<sampling::leave_one_out> {
  static constexpr const char *key = "loo", *type = "sampling::leave_one_out";
};
template <> struct component<sampling::all_pairs> {
  static constexpr const char *key = "all_pairs", *type = "sampling::all_pairs";
};
template <> struct component<sampling::best_worst> {
  static constexpr const char *key = "best_worst", *type = "sampling::best_worst";
};
template <> struct component<sampling::softmax> {
  static constexpr const char *key = "softmax", *type = "sampling::softmax";
};
template <> struct component<sampling::plackett_luce> {
  static constexpr const char *key = "plackett_luce", *type = "sampling::plackett_luce";
};

using distances = type_list<distance::bernoulli_bwd_kl, distance::bernoulli_fwd_kl, distance::squared,
                            distance::logistic, distance::hinge>;
using rewards = type_list<reward::implicit, reward::implicit_normalized, reward::reference_free,
                          reward::reference_free_normalized>;
using targets = type_list<target::reward_gap, target::hard_label, target::constant, target::smoothed_label>;
using samplings = type_list<sampling::pair, sampling::leave_one_out, sampling::all_pairs, sampling::best_worst,
                            sampling::softmax, sampling::plackett_luce>;

template <class... Ts> std::vector<std::string> keys(type_list<Ts...>) { return {component<Ts>::key...}; }

/// Calls f(std::type_identity<T>{}) with the index-th type of the list.
template <class F, class... Ts> auto visit(type_list<Ts...>, int index, F&& f) {
  using R = std::invoke_result_t<F, std::type_identity<std::tuple_element_t<0, std::tuple<Ts...>>>>;
  int i = 0;
  std::optional<R> out;
  const auto pick = [&]<class T>(std::type_identity<T> type) {
    if (i++ != index) return false;
    out.emplace(f(type));
    return true;
  };
  (void)(pick(std::type_identity<Ts>{}) || ...);
  return R(std::move(*out));
}

/// "distance::..., reward::..., target::..., sampling::..." of an rpo::loss; for the other compositions (rpo::sum,
/// rpo::nll, rpo::extension::pairwise) what they are, and for an extension why it is outside the template.
template <Composition C> std::string composition_of();
template <class A, class B> std::string describe(std::type_identity<sum<A, B>>) {
  return "sum<" + composition_of<A>() + "; " + composition_of<B>() + ">";
}
inline std::string describe(std::type_identity<nll>) { return "nll (-logp_c/n_c, outside: a regulariser)"; }
template <class K> std::string describe(std::type_identity<extension::pairwise<K>>) {
  return std::string("extension::pairwise<extension::") + K::label + "> (outside: " + K::outside + ")";
}
template <class C>
  requires requires {
    { C::label } -> std::convertible_to<const char*>;
    { C::outside } -> std::convertible_to<const char*>;
  }
std::string describe(std::type_identity<C>) {
  return std::string("extension::") + C::label + " (outside: " + C::outside + ")";
}
template <Composition C> std::string composition_of() {
  if constexpr (is_loss_v<C>) {
    return std::string(component<typename C::distance_type>::type) + ", " + component<typename C::reward_type>::type +
           ", " + std::string(component<typename C::target_type>::type) + ", " +
           component<typename C::sampling_type>::type;
  } else {
    return describe(std::type_identity<C>{});
  }
}

}  // namespace detail::spec

template <LossLike L> any_loss any_loss::from(const L& l, std::string name, std::string spec) {
  if (const parameter_error e = check_parameters(l))
    throw spec_error(detail::rule_message(("rpo: " + spec).c_str(), e.name, e.rule, e.value));
  using C = decltype(as_loss(l));
  auto state = std::make_shared<any_loss::model_of<L>>(l);
  state->name = std::move(name);
  state->spec = std::move(spec);
  state->composition = detail::spec::composition_of<C>();
  state->inputs = C::inputs;
  state->group_size = C::group_size;
  state->min_group_size = C::min_group_size;
  state->ranks = C::ranks;
  state->reward_is_probability = detail::reward_is_probability<C>();
  return any_loss(std::move(state));
}

namespace detail::spec {

/// True when the general form puts a margin around target Tg under scheme S (so that `gamma` applies): with pairs,
/// always (γ = 0 changes no bit); over a group, only around a label target, whose pairs are oriented by reward
/// (all_pairs, best_worst). A reward gap over a group, the leave-one-out and the listwise schemes take no margin.
template <class Tg, class S>
inline constexpr bool takes_margin =
    std::is_same_v<S, sampling::pair> ||
    ((std::is_same_v<S, sampling::all_pairs> || std::is_same_v<S, sampling::best_worst>) &&
     !std::is_same_v<Tg, target::reward_gap>);

/// The target type of a general composition.
template <class Tg, class S> using general_target = std::conditional_t<takes_margin<Tg, S>, target::margin<Tg>, Tg>;

/// True when rpo::loss<D, R, general_target<Tg, S>, S> compiles: the rules of its static_asserts, as a value.
template <class D, class Tg, class S> constexpr bool composes() noexcept {
  using G = general_target<Tg, S>;
  if constexpr (std::is_same_v<S, sampling::leave_one_out>) {
    return ScoredTarget<Tg> && AcceptsFiniteTarget<D>;
  } else if constexpr (std::is_same_v<S, sampling::softmax>) {
    return ScoredTarget<Tg> && sampling::listwise_form_of<D> != sampling::listwise_form::none;
  } else if constexpr (std::is_same_v<S, sampling::plackett_luce>) {
    return std::is_same_v<Tg, target::hard_label> &&
           (sampling::listwise_form_of<D> == sampling::listwise_form::backward_kl ||
            sampling::listwise_form_of<D> == sampling::listwise_form::cross_entropy);
  } else {
    return InfiniteTarget<G> ? AcceptsInfiniteTarget<D> : AcceptsFiniteTarget<D>;
  }
}

template <class D, class Tg, class... Ss> constexpr std::array<bool, sizeof...(Ss)> composes_samplings(type_list<Ss...>) {
  return {composes<D, Tg, Ss>()...};
}
template <class D, class... Tgs> constexpr auto composes_targets(type_list<Tgs...>) {
  return std::array{composes_samplings<D, Tgs>(samplings{})...};
}
template <class... Ds> constexpr auto composes_table(type_list<Ds...>) {
  return std::array{composes_targets<Ds>(targets{})...};
}
/// composes_with[d][t][s]: distance d, target t and scheme s make a general composition.
inline constexpr auto composes_with = composes_table(distances{});

template <class Tg, class... Ss> constexpr std::array<bool, sizeof...(Ss)> margins_of(type_list<Ss...>) {
  return {takes_margin<Tg, Ss>...};
}
template <class... Tgs> constexpr auto margin_table(type_list<Tgs...>) {
  return std::array{margins_of<Tgs>(samplings{})...};
}
/// margin_of[t][s]: the general form takes `gamma` with target t and scheme s.
inline constexpr auto margin_of = margin_table(targets{});

/// The numbers of a general spec, after parsing; the policies fill themselves from it.
struct general_parameters {
  double beta = 0, eta = 0, value = 0, epsilon = 0, gamma = 0;
};

/// The one part of the general form that depends on the types: build the composition and erase it.
template <class D, class R, class Tg, class S>
any_loss make_general(const general_parameters& p, std::string spec) {
  loss<D, R, general_target<Tg, S>, S> l{};
  l.reward.beta = p.beta;
  const auto set = [&](Tg& target) {
    if constexpr (std::is_same_v<Tg, target::reward_gap>) target.eta = p.eta;
    if constexpr (std::is_same_v<Tg, target::constant>) target.value = p.value;
    if constexpr (std::is_same_v<Tg, target::smoothed_label>) target.epsilon = p.epsilon;
    (void)target;
  };
  if constexpr (takes_margin<Tg, S>) {
    l.target.gamma = p.gamma;
    set(l.target.inner);
  } else {
    set(l.target);
  }
  return any_loss::from(l, "rpo", std::move(spec));
}

template <class... Rs> constexpr std::array<double, sizeof...(Rs)> default_betas(type_list<Rs...>) {
  return {Rs{}.beta...};
}

/// Why distance, target and scheme (spec keys) make no general composition, and what to use instead.
inline std::string why_not(const std::string& distance, const std::string& target, const std::string& scheme) {
  const std::string what = "distance=" + distance + ", target=" + target + ", sampling=" + scheme + ": ";
  if (scheme == "loo")
    return what + (target != "reward_gap"
                       ? "leave-one-out contrasts t_i - m_{-i}(t) need target=reward_gap (a label has no "
                         "per-response score); use sampling=all_pairs or best_worst with a label"
                       : "the hinge takes no target gap; use distance=sq, bwd_kl, fwd_kl or logistic");
  if (scheme == "softmax")
    return what + (target != "reward_gap" ? "the listwise target softmax(eta r) needs target=reward_gap; for a "
                                            "ranking with a hard label use sampling=plackett_luce"
                                          : "a listwise scheme needs a distance between distributions: bwd_kl, "
                                            "fwd_kl or logistic");
  if (scheme == "plackett_luce")
    return what + "Plackett-Luce is a hard label at every position of the ranking by reward: it needs "
                  "target=hard and distance=bwd_kl or logistic";
  if (target == "hard")
    return what + "distance=" + distance + " has no finite loss at a hard label (b = +inf); with target=hard use "
                  "distance=bwd_kl, logistic or hinge, or give this distance a finite target (smoothed, constant, "
                  "reward_gap)";
  return what + "distance=hinge takes no target gap (its margin 1 plays that role); use target=hard, with gamma=... "
                "to shift it";
}

// The registry: every composition a spec can name is instantiated from here on.
#if RPO_DETAIL_SPEC_DEFINES

inline any_loss parse_general(arguments& args) {
  const std::vector<std::string> d_keys = keys(distances{}), r_keys = keys(rewards{}), t_keys = keys(targets{}),
                                 s_keys = keys(samplings{});
  const int d = args.choice("distance", d_keys, -1);
  const int r = args.choice("reward", r_keys, -1);
  const int t = args.choice("target", t_keys, 0);  // reward_gap: the reward-aware objective, RPO.md (E1)
  const int s = args.choice("sampling", s_keys, 0);
  const std::string& target = t_keys[static_cast<std::size_t>(t)];
  const auto only_with = [&](const char* key, const char* target_key) {
    if (args.given(key) && target != target_key)
      throw args.fail(std::string(key) + " applies only to target=" + target_key + " (this spec has target=" + target +
                      ")");
  };
  only_with("eta", "reward_gap");
  only_with("value", "constant");
  only_with("epsilon", "smoothed");
  const auto ud = static_cast<std::size_t>(d), ut = static_cast<std::size_t>(t), us = static_cast<std::size_t>(s);
  const std::string& distance = d_keys[ud];
  const std::string& scheme = s_keys[us];
  if (!composes_with[ud][ut][us]) throw args.fail(why_not(distance, target, scheme));
  if (args.given("gamma") && !margin_of[ut][us])
    throw args.fail("gamma applies only with sampling=pair, or with sampling=all_pairs or best_worst and a label "
                    "target (hard, constant, smoothed); this spec has target=" + target + ", sampling=" + scheme);

  general_parameters p;
  std::string spec = "rpo(distance=" + d_keys[static_cast<std::size_t>(d)] + ", reward=" +
                     r_keys[static_cast<std::size_t>(r)] + ", target=" + target + ", sampling=" +
                     s_keys[static_cast<std::size_t>(s)];
  p.beta = args.number("beta", default_betas(rewards{})[static_cast<std::size_t>(r)]);
  spec += ", beta=" + format(p.beta);
  if (target == "reward_gap") {
    p.eta = args.number("eta", target::reward_gap{}.eta);
    spec += ", eta=" + format(p.eta);
  } else if (target == "constant") {
    p.value = args.number("value", target::constant{}.value);
    spec += ", value=" + format(p.value);
  } else if (target == "smoothed") {
    p.epsilon = args.number("epsilon", target::smoothed_label{}.epsilon);
    spec += ", epsilon=" + format(p.epsilon);
  }
  if (margin_of[ut][us]) {
    p.gamma = args.number("gamma", 0.0);
    spec += ", gamma=" + format(p.gamma);
  }
  spec += ")";
  args.finish({"distance", "reward", "target", "sampling", "beta", "eta", "value", "epsilon", "gamma"});

  return visit(distances{}, d, [&]<class D>(std::type_identity<D>) -> any_loss {
    return visit(rewards{}, r, [&]<class R>(std::type_identity<R>) -> any_loss {
      return visit(targets{}, t, [&]<class Tg>(std::type_identity<Tg>) -> any_loss {
        return visit(samplings{}, s, [&]<class S>(std::type_identity<S>) -> any_loss {
          // Where the form takes a margin, γ = 0 (the default) is the bare target, bit for bit.
          if constexpr (composes<D, Tg, S>()) {
            return make_general<D, R, Tg, S>(p, spec);
          } else {
            throw std::logic_error("rpo::parse_loss: unreachable (checked above)");
          }
        });
      });
    });
  });
}

template <Preset P, std::size_t N> any_loss parse_preset(const preset_entry<P, N>& entry, arguments& args) {
  P p{};
  std::vector<std::string> names;
  std::string spec = std::string(entry.name) + "(";
  for (std::size_t k = 0; k < N; ++k) {
    const auto& parameter = entry.parameters[k];
    names.emplace_back(parameter.name);
    p.*parameter.member = args.number(parameter.name, p.*parameter.member);
    spec += (k == 0 ? "" : ", ") + std::string(parameter.name) + "=" + format(p.*parameter.member);
  }
  spec += ")";
  args.finish(names);
  return any_loss::from(p, entry.name, spec);
}

inline std::vector<std::string> loss_names() {
  std::vector<std::string> names;
  std::apply([&](const auto&... entry) { (names.emplace_back(entry.name), ...); }, presets());
  names.emplace_back("rpo");
  return names;
}

#endif  // RPO_DETAIL_SPEC_DEFINES

}  // namespace detail::spec

#if RPO_DETAIL_SPEC_DEFINES

RPO_DETAIL_SPEC_LINKAGE any_loss parse_loss(std::string_view spec) {
  namespace s = detail::spec;
  s::arguments args(spec, s::tokenize(spec));
  if (args.loss() == "rpo") return s::parse_general(args);
  std::optional<any_loss> out;
  const auto pick = [&](const auto& entry) {
    if (args.loss() != entry.name) return false;
    out.emplace(s::parse_preset(entry, args));
    return true;
  };
  std::apply([&](const auto&... entry) { (void)(pick(entry) || ...); }, s::presets());
  if (!out)
    throw spec_error("rpo::parse_loss: unknown loss \"" + args.loss() + "\" in \"" + std::string(spec) +
                     "\"; the losses are: " + s::join(s::loss_names()));
  return *out;
}

RPO_DETAIL_SPEC_LINKAGE const std::vector<loss_info>& registered_losses() {
  namespace s = detail::spec;
  static const std::vector<loss_info> table = [] {
    std::vector<loss_info> out;
    std::apply(
        [&](const auto&... entry) {
          const auto add = [&]<Preset P, std::size_t N>(const s::preset_entry<P, N>& e) {
            loss_info info{e.name, e.summary, s::composition_of<typename P::composition>() + " (" + e.mapping + ")",
                           e.paper, e.libraries, {}};
            for (const auto& parameter : e.parameters)
              info.parameters.push_back({parameter.name, s::format(P{}.*parameter.member), parameter.description});
            out.push_back(std::move(info));
          };
          (add(entry), ...);
        },
        s::presets());
    const auto choices = [](auto list) { return s::join(s::keys(list), "|"); };
    out.push_back(
        {"rpo",
         "the general form: any distance, reward model, target and sampling scheme that compose; RPO.md (E1), 3.5",
         "loss<distance, reward, target (in target::margin where gamma applies), sampling> with the chosen policies",
         "Sun et al., Reward-aware Preference Optimization, arXiv 2502.00203; Nemotron-4 340B, arXiv 2406.11704",
         "NeMo-Aligner preference_loss in {dpo, ipo, rpo_sq, rpo_bwd_kl, rpo_fwd_kl}",
         {{"distance", "required", choices(s::distances{})},
          {"reward", "required", choices(s::rewards{})},
          {"target", "reward_gap", choices(s::targets{})},
          {"sampling", "pair", choices(s::samplings{})},
          {"beta", "the reward model's (0.1; 2 for ref_free_norm)", "beta > 0"},
          {"eta", s::format(target::reward_gap{}.eta), "target=reward_gap only: eta >= 0"},
          {"value", s::format(target::constant{}.value), "target=constant only: the target gap b"},
          {"epsilon", s::format(target::smoothed_label{}.epsilon), "target=smoothed only: in (0, 0.5]"},
          {"gamma", "0",
           "a margin subtracted from the policy gap: with sampling=pair (any target), or all_pairs and best_worst with "
           "a label target"}}});
    return out;
  }();
  return table;
}

#endif  // RPO_DETAIL_SPEC_DEFINES

}  // namespace rpo
