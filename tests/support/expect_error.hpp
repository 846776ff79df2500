// tests/support/expect_error.hpp — asserting that a call throws a given exception with a given message.
#pragma once

#include <doctest/doctest.h>

#include <initializer_list>
#include <string>

namespace test {

/// Runs `call`, expecting an exception of type E whose message contains every one of `parts`.
template <class E, class F> void expect_error(F&& call, std::initializer_list<const char*> parts) {
  bool thrown = false;
  try {
    call();
  } catch (const E& e) {
    thrown = true;
    const std::string message = e.what();
    for (const char* part : parts) CHECK_MESSAGE(message.find(part) != std::string::npos, message << " lacks " << part);
  }
  CHECK_MESSAGE(thrown, "no exception of the expected type");
}

}  // namespace test
