// The one doctest main of all unit-test binaries (compiled once, as the xtensor tests do).
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
