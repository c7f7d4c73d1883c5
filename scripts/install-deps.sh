#!/usr/bin/env bash
# Installs the Debian 12 packages fedbaechi needs, skipping those already present.
# Usage: bash scripts/install-deps.sh   (as root, or with sudo available)
set -euo pipefail

packages=(
  pkg-config
  libopenmpi-dev openmpi-bin      # MPI (Open MPI 4.1)
  libmpich-dev                    # MPICH's headers: scripts/check-mpich.sh compiles Sources/CMPI against them
  libopenblas-dev                 # BLAS kernels
  coinor-libclp-dev               # the LP solver behind m-SCT
  zlib1g-dev                      # reads the gzip'd datasets
  dataset-fashion-mnist fortunes  # the datasets the model zoo trains on
  cmake ninja-build               # the CMake build (CMakeLists.txt, CMakeHelpers/)
  slurm-wlm munge                 # a local Slurm that tests the batch jobs in jobs/
  iproute2                        # ip: the test hosts of scripts/test-hosts.sh (unshare, nsenter: util-linux, essential)
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

# The ONNX tests read the light models the `onnx` package ships; pip needs python3-pip.
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages are installed"
else
  [ -z "$sudo" ] || command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# Open MPI stays the MPI that mpicc, mpirun and <mpi.h> mean: fedbaechi builds and runs on it, and
# MPICH is here only for its headers. Debian ranks Open MPI first, but a machine whose alternatives
# were set by hand, or a later MPICH, could switch them; each group is set back to Open MPI then.
restore_open_mpi() {
  local group=$1 openmpi current
  openmpi=$(update-alternatives --list "$group" 2>/dev/null | grep -m1 openmpi) || return 0
  current=$(update-alternatives --query "$group" | sed -n 's/^Value: //p')
  if [ "$current" != "$openmpi" ]; then
    echo "install-deps: $group pointed to $current; setting it back to Open MPI ($openmpi)"
    $sudo update-alternatives --set "$group" "$openmpi"
  fi
}
for group in mpi mpirun "mpi-$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)"; do
  restore_open_mpi "$group"
done
mpirun --version 2>/dev/null | grep -q "Open MPI" || { echo "install-deps: mpirun is not Open MPI's" >&2; exit 1; }

# onnx from PyPI, the version Sources/ONNXImport/Generated was made from. Debian 12's own Python
# is "externally managed" (PEP 668): pip then needs --break-system-packages, which only adds
# packages beside Debian's.
pip_install() {  # module version what-is-skipped-without-it
  if ! python3 -c "import $1, sys; sys.exit($1.__version__ != '$2')" 2>/dev/null; then
    echo "install-deps: pip install $1==$2"
    python3 -m pip install -q "$1==$2" 2>/dev/null ||
      python3 -m pip install -q --break-system-packages "$1==$2" ||
      echo "install-deps: warning: could not install $1 from PyPI; $3 will be skipped" >&2
  fi
}
pip_install onnx 1.23.2 "the ONNX light-model tests"
# onnxruntime is the independent truth of the ONNX training tests (every op's forward, the exported
# model's outputs); numpy comes with onnx.
pip_install onnxruntime 1.32.0 "the ONNX training tests"
