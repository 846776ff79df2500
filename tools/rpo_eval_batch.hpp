// tools/rpo_eval_batch.hpp — rpo-eval's batch mode (`--batch SPEC`): one JSON object per line is one whole batch of a
// batch method (rpo/batch_spec.hpp). Reads a line into rpo::batch_fields, evaluates it, writes the result as JSON and
// lists the differences from the line's expected fields. Not an installed header.
// @sa docs/rpo_eval.md#batch
#pragma once

#include <cstddef>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "rpo/batch_spec.hpp"
#include "rpo_eval_lines.hpp"

namespace rpo_eval {

/// One JSON value as a batch field: a number, an array of numbers, or an array of arrays of numbers of equal length
/// (a matrix). Anything else is a usage_error naming the line, the field and the entry.
inline rpo::batch_value batch_value_of(const json& v, const std::string& field, std::size_t line) {
  const auto bad = [&](const std::string& what) {
    return usage_error("line " + std::to_string(line) + ": field \"" + field + "\" " + what);
  };
  const auto number_at = [&](const json& x, const std::string& where) {
    if (!x.is_number()) throw bad(where + ": expected a number, got " + x.dump());
    return x.get<double>();
  };
  if (v.is_number()) return {{v.get<double>()}, {}};
  if (!v.is_array()) throw bad("must be a number or an array, got " + v.dump());
  rpo::batch_value out;
  if (!v.empty() && v[0].is_array()) {
    const std::size_t cols = v[0].size();
    for (std::size_t r = 0; r < v.size(); ++r) {
      if (!v[r].is_array() || v[r].size() != cols)
        throw bad("row " + std::to_string(r) + ": expected an array of " + std::to_string(cols) +
                  " numbers (the length of row 0), got " + v[r].dump());
      for (std::size_t c = 0; c < cols; ++c)
        out.values.push_back(number_at(v[r][c], "entry [" + std::to_string(r) + "][" + std::to_string(c) + "]"));
    }
    out.shape = {v.size(), cols};
    return out;
  }
  for (std::size_t i = 0; i < v.size(); ++i) out.values.push_back(number_at(v[i], "entry " + std::to_string(i)));
  out.shape = {v.size()};
  return out;
}

/// A batch_value as JSON text, every number with 17 significant digits (`number` formats one).
template <class Number> std::string batch_value_text(const rpo::batch_value& v, Number number) {
  if (v.shape.empty()) return number(v.values.at(0));
  const auto row = [&](std::size_t first, std::size_t count) {
    std::string out = "[";
    for (std::size_t i = 0; i < count; ++i) out += (i == 0 ? "" : ", ") + number(v.values[first + i]);
    return out + "]";
  };
  if (v.shape.size() == 1) return row(0, v.shape[0]);
  std::string out = "[";
  for (std::size_t r = 0; r < v.shape[0]; ++r) out += (r == 0 ? "" : ", ") + row(r * v.shape[1], v.shape[1]);
  return out + "]";
}

/// A line of a batch: the fields the method reads, and the expected values (`loss` and the method's outputs) kept
/// apart for --check.
struct batch_line {
  rpo::batch_fields inputs;
  std::optional<double> loss;
  std::vector<std::pair<std::string, rpo::batch_value>> expected;
};

inline batch_line read_batch_line(const json& object, std::size_t line, const rpo::batch_loss& loss) {
  batch_line out;
  for (const auto& [name, value] : object.items()) {
    if (name == "loss") {
      if (!value.is_number())
        throw usage_error("line " + std::to_string(line) + ": field \"loss\" must be a number");
      out.loss = value.get<double>();
      continue;
    }
    rpo::batch_value v = batch_value_of(value, name, line);
    bool is_output = false;
    for (const std::string& o : loss.outputs()) is_output = is_output || o == name;
    if (is_output)
      out.expected.emplace_back(name, std::move(v));
    else
      out.inputs.emplace(name, std::move(v));
  }
  return out;
}

/// The batch's result: the library's messages (a field unknown, missing, of the wrong kind or size, a bad value)
/// become usage errors naming the line.
inline rpo::batch_result evaluate_batch(const rpo::batch_loss& loss, const batch_line& b, std::size_t line) {
  try {
    return loss.evaluate(b.inputs);
  } catch (const std::exception& e) {
    throw usage_error("line " + std::to_string(line) + ": " + e.what());
  }
}

}  // namespace rpo_eval
