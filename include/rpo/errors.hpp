// rpo/errors.hpp — what a checked entry point does with bad input: throw, report, or trust the caller.
//
// Public names: rpo::errc, rpo::status, rpo::errors::throw_on_error, rpo::errors::report,
//               rpo::errors::unchecked, rpo::ErrorPolicy.
// The error policy is a template parameter of each checked entry point (Boost.Math's idea, on one axis).
// Validation happens only at host entry points (rpo::value_and_grad, rpo::evaluate and the adaptors), never in
// the scalar cores. A message names the function, the argument, the rule and the value:
//   "rpo::dpo: beta must be finite and > 0, but got beta = -0.1".
// @sa docs/errors.md
#pragma once

#include <cstdio>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace rpo {

/// What kind of input was rejected.  @sa docs/errors.md
enum class errc : unsigned char {
  ok = 0,
  invalid_parameter,  ///< a policy parameter breaks its rule (β ≤ 0, ε outside (0, ½], ...)
  invalid_argument,   ///< sizes disagree, a required input is missing, offsets are malformed
  domain_error,       ///< an input value is outside the domain (NaN or infinite log-prob, length ≤ 0)
};

/// The outcome of a call under errors::report: `ok()` or the first error with its message.
/// @sa docs/errors.md#report
struct status {
  errc code = errc::ok;
  std::string message;  ///< empty when ok
  /// True when no error was reported.
  bool ok() const noexcept { return code == errc::ok; }
};

namespace errors {

/// Throw std::invalid_argument (parameters, sizes, missing inputs) or std::domain_error (input values).
/// The default on the host.  @sa docs/errors.md#throw_on_error
struct throw_on_error {};

/// Record the first error into `*out` and return a quiet NaN loss; nothing is thrown. For callers that cannot
/// throw. The caller must check `out->ok()`.  @sa docs/errors.md#report
struct report {
  status* out = nullptr;  ///< where the error goes; must not be null
};

/// Check no parameter and no input value: for inner loops whose inputs were validated before. Bad values then give
/// unspecified (possibly NaN) results. Sizes, offsets and output spans are still checked, and a wrong one still
/// throws, because it would otherwise read or write out of bounds.  @sa docs/errors.md#unchecked
struct unchecked {};

}  // namespace errors

/// One of the three error policies of rpo::errors.  @sa docs/errors.md
template <class P>
concept ErrorPolicy = std::is_same_v<P, errors::throw_on_error> || std::is_same_v<P, errors::report> ||
                      std::is_same_v<P, errors::unchecked>;

namespace detail {

/// A number as an error message shows it: enough digits to tell values apart, nan and inf by name.
inline std::string format_number(double x) {
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.10g", x);
  return buffer;
}

/// Raises `message` under the policy. Returns false so that callers can write `return fail(...)`.
template <ErrorPolicy P> bool fail(const P& policy, errc code, const std::string& message) {
  if constexpr (std::is_same_v<P, errors::throw_on_error>) {
    (void)policy;
    if (code == errc::domain_error) throw std::domain_error(message);
    throw std::invalid_argument(message);
  } else if constexpr (std::is_same_v<P, errors::report>) {
    if (policy.out != nullptr && policy.out->ok()) {
      policy.out->code = code;
      policy.out->message = message;
    }
  } else {
    (void)policy;
    (void)code;
    (void)message;
  }
  return false;
}

/// The policy for checks that guard memory safety (sizes, offsets): errors::unchecked throws there too.
template <ErrorPolicy P> constexpr auto shape_policy(const P& policy) noexcept {
  if constexpr (std::is_same_v<P, errors::unchecked>) {
    return errors::throw_on_error{};
  } else {
    return policy;
  }
}

/// "who: name must ..., but got name = value".
inline std::string rule_message(const char* who, const std::string& name, const char* rule, double value) {
  return std::string(who) + ": " + name + " " + rule + ", but got " + name + " = " + format_number(value);
}

}  // namespace detail
}  // namespace rpo
