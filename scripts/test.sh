#!/usr/bin/env bash
# scripts/test.sh — every test, built with g++ and with clang++ (`cmake --workflow --preset gcc`, then `clang`):
# unit tests, static and compile-fail checks, header self-containment, consumer projects, examples, rpo-eval and
# the golden vectors, the Python module (with Debian's /usr/bin/python3 and python3-torch).
# Installs the Debian packages it lacks (as root, or with sudo). Build trees: build/gcc, build/clang.
set -euo pipefail

packages=(cmake g++ clang make pkgconf libeigen3-dev libxtensor-dev doctest-dev libbenchmark-dev
          nlohmann-json3-dev libcli11-dev pybind11-dev python3-dev python3-numpy python3-torch
          openmpi-bin libopenmpi-dev python3-matplotlib)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
ensure_packages "${packages[@]}"

start=$SECONDS
preset=none
trap 'echo "test.sh: FAILED in the ${preset} workflow after $(( SECONDS - start )) s" >&2' ERR
for preset in gcc clang; do
  echo "=== cmake --workflow --preset ${preset}"
  cmake --workflow --preset "${preset}"
done
echo "test.sh: all tests passed with g++ and clang++ ($(( SECONDS - start )) s)"
