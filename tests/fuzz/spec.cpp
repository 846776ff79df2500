// Fuzz target: the spec parser (rpo::parse_loss) on arbitrary bytes. A spec either parses or throws rpo::spec_error
// (nothing else escapes, nothing crashes), and a parsed spec's canonical form parses back to itself.
// @sa docs/reliability.md#fuzzing
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "rpo/spec.hpp"

namespace rpo_fuzz {

/// One input of fuzz:spec (tests/fuzz/main.cpp dispatches).
int spec(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const rpo::any_loss loss = rpo::parse_loss(text);
    if (rpo::parse_loss(loss.spec()).spec() != loss.spec()) std::abort();  // canonical specs round-trip
  } catch (const rpo::spec_error&) {
  }
  return 0;
}

}  // namespace rpo_fuzz
