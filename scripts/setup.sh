#!/usr/bin/env bash
# Set-up command 1: install what is missing, build in release mode, and run the main job on its
# built-in default with 8 ranks on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
swift build -c release
source scripts/mpi-env.sh
set -x
mpirun -np 8 -x OPENBLAS_NUM_THREADS .build/release/fedbaechi train
