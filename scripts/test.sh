#!/usr/bin/env bash
# Set-up command 2: the whole test suite. Builds once, compiles the MPI header against MPICH, runs
# the unit and end-to-end tests with `swift test`, then the MPI suites under mpirun with 2, 4 and 8
# ranks and the federated suite with 9 and 15 (oversubscribed).
#
# `mpirun ... swift test` would deadlock on the build folder's lock, so the MPI suites run the
# already built test executable directly.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
source scripts/mpi-env.sh

passed=0
failed=0
step() {
  local name=$1; shift
  echo "==> $name"
  if "$@"; then passed=$((passed + 1)); echo "<== $name: passed"
  else failed=$((failed + 1)); echo "<== $name: FAILED"; fi
}

swift build --build-tests || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
# Sources/CMPI/cmpi.h against MPICH's headers too, not only the Open MPI it builds on.
step "cmpi.h against MPICH" bash scripts/check-mpich.sh
step "swift test (unit and end-to-end)" swift test --skip-build

bundle=".build/debug/fedbaechiPackageTests.xctest"
# One mpirun per suite: suites in one process would run at once and mix their messages.
mpi_suites="MPIRankTests ModelParallelRankTests"
for ranks in 2 4 8; do
  for suite in $mpi_suites; do
    # A hung collective must fail the run, not stall CI: every MPI run has a time limit.
    step "$suite with $ranks ranks" timeout 600 mpirun -np "$ranks" -x OPENBLAS_NUM_THREADS \
      "$bundle" --testing-library swift-testing --filter "$suite"
  done
done

# Federated aggregation with the sites of a 9-site and a 15-site Kirkman triple system.
for ranks in 9 15; do
  step "FederatedRankTests with $ranks ranks" timeout 900 mpirun -np "$ranks" -x OPENBLAS_NUM_THREADS \
    "$bundle" --testing-library swift-testing --filter FederatedRankTests
done

# The batch jobs of jobs/ on a real, local, single-node Slurm (needs root to start its daemons).
if [ "$(id -u)" -eq 0 ]; then
  # Short runs of the real jobs with the release build they run on a cluster: 3 steps (model
  # parallel) or 1 round (federated) on a slice of the data.
  swift build -c release --product fedbaechi >/dev/null || { echo "release build failed"; failed=$((failed + 1)); }
  step "Slurm batch jobs" env FEDBAECHI="$PWD/.build/release/fedbaechi" STEPS=3 ROUNDS=1 \
    EXTRA="--limit-train 1000 --limit-test 200" \
    bash jobs/local-slurm.sh jobs/doctor.sbatch jobs/tests/bad-graph.sbatch \
      jobs/train-model-parallel.sbatch jobs/train-model-parallel-mpirun.sbatch \
      jobs/train-federated.sbatch jobs/train-federated-mpirun.sbatch
else
  echo "==> Slurm batch jobs: skipped (the local Slurm needs root)"
fi

# The CMake + Ninja build of the same sources, and its CTest tests (MPI runs under mpiexec).
cmake_build() {
  cmake -G Ninja -B build-cmake -DCMAKE_BUILD_TYPE=Debug >/dev/null &&
    cmake --build build-cmake &&
    ctest --test-dir build-cmake --output-on-failure
}
step "CMake build and ctest" cmake_build

echo "steps: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
