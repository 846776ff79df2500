#!/usr/bin/env bash
# scripts/run.sh — the main job: the bandit lab (docs/bandit_lab.md: every loss trained on toy bandits, the ablation
# grid and the paper's figures, about a minute on 2 cores), then every example in examples/.
# Installs the Debian packages it lacks (as root, or with sudo). Build tree: build/run; the lab's tables, CSV and
# figures: build/bandit_lab (or $RPO_LAB_OUT).
set -euo pipefail

packages=(cmake g++ make libeigen3-dev libxtensor-dev openmpi-bin libopenmpi-dev python3-matplotlib)

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/packages.sh
source scripts/packages.sh
ensure_packages "${packages[@]}"

build=build/run
# Only the examples: no tests (doctest is not needed) and no benchmarks (nor Google Benchmark). Warnings stay
# warnings here; scripts/test.sh is where they are errors.
cmake -S . -B "${build}" -G "Unix Makefiles" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++ \
  -DRPO_BUILD_TESTS=OFF -DRPO_BUILD_EXAMPLES=ON -DRPO_BUILD_BENCH=OFF -DRPO_BUILD_TOOLS=OFF -DRPO_BUILD_PYTHON=OFF
cmake --build "${build}" --parallel 2

lab=${RPO_LAB_OUT:-build/bandit_lab}
echo "=== bandit lab (tables: ${lab}/summary.md; figures: ${lab}/*.png)"
"${build}"/examples/rpo-bandit-lab --out "${lab}" --threads 2
/usr/bin/python3 examples/bandit_lab/plot.py "${lab}"

# Run each example in order and show what it prints; any failure stops the job.
for example in "${build}"/examples/rpo_example_*; do
  name=${example##*/rpo_example_}
  echo "=== ${name}"
  if [[ ${name} == mpi_* ]]; then
    # Two ranks; Open MPI refuses root unless told (CI and containers run as root).
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 mpirun -np 2 --oversubscribe "${example}"
  else
    "${example}"
  fi
done
echo "run.sh: every example built and ran"
