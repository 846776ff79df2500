#!/usr/bin/env bash
# scripts/test.sh — every test, built twice (docs/reliability.md): with g++ in Release (`cmake --workflow --preset
# gcc`), and with clang++ at -O1 under AddressSanitizer and UndefinedBehaviorSanitizer (`--preset asan-ubsan`), which
# also builds the libFuzzer targets and runs each for 60 s. Both: unit tests, the extreme-value suite, static and
# compile-fail checks, header self-containment, consumer projects, examples and the bandit lab, rpo-eval and the
# golden vectors; the Python module (Debian's /usr/bin/python3 and python3-torch) in the g++ build.
# Installs the Debian packages it lacks (as root, or with sudo). Build trees: build/gcc, build/asan-ubsan.
set -euo pipefail

packages=(cmake g++ clang libclang-rt-14-dev make pkgconf libeigen3-dev libxtensor-dev doctest-dev libbenchmark-dev
          nlohmann-json3-dev libcli11-dev pybind11-dev python3-dev python3-numpy python3-torch
          openmpi-bin libopenmpi-dev python3-matplotlib libomp-dev)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
ensure_packages "${packages[@]}"

start=$SECONDS
preset=none
trap 'echo "test.sh: FAILED in the ${preset} workflow after $(( SECONDS - start )) s" >&2' ERR
for preset in gcc asan-ubsan; do
  echo "=== cmake --workflow --preset ${preset}"
  cmake --workflow --preset "${preset}"
done
echo "test.sh: all tests passed with g++ and with clang++ under ASan+UBSan, fuzzers included ($(( SECONDS - start )) s)"
