// tools/rpo_eval_lines.hpp — rpo-eval's reading of one JSON Lines group: the shape checks and the evaluation of the
// group under a spec. Shared by rpo-eval (tools/rpo_eval.cpp) and its fuzz target (tests/fuzz/eval_line.cpp); not an
// installed header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rpo/spec.hpp"

namespace rpo_eval {

using json = nlohmann::json;

/// A bad spec, option or input line: reported on stderr, exit code 2.
struct usage_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One line of text as a JSON object; usage_error naming the line when it is not valid JSON or not an object.
inline json parse_line(const std::string& text, std::size_t line_number) {
  json object;
  try {
    object = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond double (1e400)
    throw usage_error("line " + std::to_string(line_number) + ": not valid JSON: " + e.what());
  }
  if (!object.is_object())
    throw usage_error("line " + std::to_string(line_number) + ": expected a JSON object, got " + object.type_name());
  return object;
}

/// The field names a loss reads, for messages: "logp, ref_logp, reward".
inline std::string field_names(rpo::input inputs) {
  std::string out = "logp";
  if (rpo::contains(inputs, rpo::input::ref_logp)) out += ", ref_logp";
  if (rpo::contains(inputs, rpo::input::length)) out += ", length";
  if (rpo::contains(inputs, rpo::input::reward)) out += ", reward";
  return out;
}

/// One line of input, parsed and checked for shape; the values themselves are checked by the library.
class line_reader {
 public:
  line_reader(const json& object, std::size_t line) : object_(object), line_(line) {}

  /// The array `field`, or nullopt when absent. An array of anything but numbers is an error.
  std::optional<std::vector<double>> numbers(const char* field) const {
    const auto it = object_.find(field);
    if (it == object_.end()) return std::nullopt;
    if (!it->is_array()) throw error(std::string("field \"") + field + "\" must be an array of numbers");
    std::vector<double> out;
    out.reserve(it->size());
    for (std::size_t i = 0; i < it->size(); ++i) {
      const json& x = (*it)[i];
      if (!x.is_number())
        throw error(std::string("field \"") + field + "\", entry " + std::to_string(i) + ": expected a number, got " +
                    x.dump());
      out.push_back(x.get<double>());
    }
    return out;
  }

  std::vector<double> required(const char* field, const rpo::any_loss& loss) const {
    auto values = numbers(field);
    if (!values)
      throw error(std::string("field \"") + field + "\" is missing (" + loss.spec() + " reads " +
                  field_names(loss.inputs()) + ")");
    return *values;
  }

  std::optional<double> scalar(const char* field) const {
    const auto it = object_.find(field);
    if (it == object_.end()) return std::nullopt;
    if (!it->is_number()) throw error(std::string("field \"") + field + "\" must be a number");
    return it->get<double>();
  }

  usage_error error(const std::string& what) const {
    return usage_error("line " + std::to_string(line_) + ": " + what);
  }

 private:
  const json& object_;
  std::size_t line_;
};

struct result {
  double loss = 0;
  std::vector<double> grad_logp, grad_ref_logp;
};

/// The group's own loss and gradients: reduction::sum() over its one group.
inline result evaluate(const rpo::any_loss& loss, const line_reader& line) {
  const std::vector<double> logp = line.required("logp", loss);
  std::vector<double> ref_logp, length, reward;
  if (rpo::contains(loss.inputs(), rpo::input::ref_logp)) ref_logp = line.required("ref_logp", loss);
  if (rpo::contains(loss.inputs(), rpo::input::length)) length = line.required("length", loss);
  if (rpo::contains(loss.inputs(), rpo::input::reward)) reward = line.required("reward", loss);

  const std::int64_t offsets[2] = {0, static_cast<std::int64_t>(logp.size())};
  result r{0, std::vector<double>(logp.size()), std::vector<double>(logp.size())};
  try {
    r.loss = loss.evaluate(rpo::batch_input<double>{logp, ref_logp, length, reward, offsets},
                           rpo::batch_output<double>{{}, r.grad_logp, r.grad_ref_logp}, rpo::reduction::sum());
  } catch (const std::exception& e) {
    throw line.error(e.what());
  }
  return r;
}

}  // namespace rpo_eval
