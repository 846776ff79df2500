// tests/support/reference_data.hpp — reads tests/data/math_reference.csv, the 60-digit mpmath values written by
// tests/reference/math_reference.py.
#pragma once

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace test {

struct reference_point {
  std::string function;
  double x, y, value;
};

/// Every row of the CSV at `path`.
inline std::vector<reference_point> read_math_reference(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<reference_point> rows;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#' || line.rfind("function,", 0) == 0) continue;
    std::stringstream fields(line);
    std::string name, x, y, value;
    std::getline(fields, name, ',');
    std::getline(fields, x, ',');
    std::getline(fields, y, ',');
    std::getline(fields, value, ',');
    // strtod gives 0 (or a subnormal) for values below the double range, as the comparison wants.
    rows.push_back({name, std::strtod(x.c_str(), nullptr), std::strtod(y.c_str(), nullptr),
                    std::strtod(value.c_str(), nullptr)});
  }
  return rows;
}

/// Every row of tests/data/math_reference.csv whose function column is `function`.
inline std::vector<reference_point> math_reference(const std::string& function) {
  std::vector<reference_point> rows;
  for (const reference_point& row : read_math_reference(std::string(RPO_TEST_DATA_DIR) + "/math_reference.csv"))
    if (row.function == function) rows.push_back(row);
  if (rows.empty()) throw std::runtime_error("no reference rows for " + function + " in math_reference.csv");
  return rows;
}

}  // namespace test
