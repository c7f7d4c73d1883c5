#!/usr/bin/env bash
# Set-up command 2: the whole test suite. Builds once, compiles the MPI header against MPICH, runs
# the unit and end-to-end tests with `swift test`, then the MPI suites under mpirun with 2, 4 and 8
# ranks and the federated suite with 9 and 15 (oversubscribed); then, as root, the rank suites again
# with ranks on two test hosts (TCP between them, scripts/test-hosts.sh) and batch jobs on a two-node
# Slurm made of them.
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

# The rank suites once more with ranks on two hosts: the test hosts of scripts/test-hosts.sh (network
# and UTS namespaces on this machine, needs root), mpirun on the first, Open MPI's TCP transport
# between them as between the nodes of a cluster. The hosts go down at the end, also when a step fails
# or the script is interrupted.
across_hosts() {
  echo "==> test hosts"
  bash scripts/test-hosts.sh up 2 || { failed=$((failed + 1)); echo "<== test hosts: FAILED"; return; }
  trap 'bash scripts/test-hosts.sh down' EXIT
  trap 'exit 130' INT TERM
  local launch=(bash scripts/test-hosts.sh mpirun -x OPENBLAS_NUM_THREADS)
  # Every rank reports its own host: both test hosts' names must appear.
  doctor_across_hosts() {
    local out
    out=$(timeout -k 10 120 "${launch[@]}" -np 2 .build/debug/fedbaechi doctor) || { echo "$out"; return 1; }
    echo "$out"
    grep -q fbh-host1 <<<"$out" && grep -q fbh-host2 <<<"$out" && grep -q "2 rank(s) on 2 host(s)" <<<"$out"
  }
  step "doctor on two hosts" doctor_across_hosts
  # Once more, not at every size: the suites' single-host runs above cover the rank counts.
  step "ModelParallelRankTests with 2 ranks on two hosts" timeout -k 10 600 "${launch[@]}" -np 2 \
    "$bundle" --testing-library swift-testing --filter ModelParallelRankTests
  step "FederatedRankTests with 9 ranks on two hosts" timeout -k 10 900 "${launch[@]}" -np 9 \
    "$bundle" --testing-library swift-testing --filter FederatedRankTests
  # The failure tests that start their own jobs start them across the hosts: a killed model-parallel
  # rank and a killed federated site end the job, and the rerun resumes bit for bit; host 2's link
  # taken down mid-run ends every rank, rank 0 naming the lost one, and the rerun resumes.
  step "FailureTests (killed ranks, a lost link) with ranks on two hosts" env FEDBAECHI_TEST_HOSTS=1 timeout -k 10 900 \
    "$bundle" --testing-library swift-testing --filter "FailureTests/(aKilledModelParallelRank|aKilledFederatedSite|aHostLosingItsLink)"
  bash scripts/test-hosts.sh down
  trap - EXIT INT TERM
}
if reason=$(bash scripts/test-hosts.sh check); then
  across_hosts
else
  echo "==> rank suites on two hosts: skipped ($reason)"
fi

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
  # The same Slurm with two nodes, the test hosts: doctor must report both, and the model-parallel and
  # federated jobs, started by srun and by mpirun inside the allocation, run with ranks on both.
  if reason=$(bash scripts/test-hosts.sh check); then
    step "Slurm batch jobs on two nodes" env TEST_HOSTS=2 FEDBAECHI="$PWD/.build/release/fedbaechi" STEPS=3 ROUNDS=1 \
      EXTRA="--limit-train 1000 --limit-test 200" timeout -k 10 900 \
      bash jobs/local-slurm.sh jobs/doctor.sbatch jobs/train-model-parallel.sbatch jobs/train-model-parallel-mpirun.sbatch \
        jobs/train-federated.sbatch jobs/train-federated-mpirun.sbatch
  else
    echo "==> Slurm batch jobs on two nodes: skipped ($reason)"
  fi
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
