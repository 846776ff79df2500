// The doctest main of the CUDA tests: exits 77 (CTest's SKIP_RETURN_CODE) when a test case was skipped for want of a
// device and nothing failed, so that a machine without a GPU shows "Skipped", with the reason in the output.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "cuda/device.hpp"
#include "rpo/cuda/error.cuh"

namespace {
bool skipped = false;
}

bool test::cuda::device_or_skip() {
  static const rpo::cuda::device_probe probe = rpo::cuda::probe_device();
  if (probe.available) return true;
  if (!skipped) std::printf("SKIPPED: no usable CUDA device (%s)\n", probe.reason.c_str());
  skipped = true;
  return false;
}

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int result = context.run();
  if (context.shouldExit()) return result;  // --list-test-cases, --help, ...: no test ran
  return result == 0 && skipped ? 77 : result;
}
