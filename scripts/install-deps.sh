#!/usr/bin/env bash
# Installs the Debian 12 packages fedbaechi needs, skipping those already present.
# Usage: bash scripts/install-deps.sh   (as root, or with sudo available)
set -euo pipefail

packages=(
  pkg-config
  libopenmpi-dev openmpi-bin      # MPI (Open MPI 4.1)
  libopenblas-dev                 # BLAS kernels
  coinor-libclp-dev               # the LP solver behind m-SCT
  zlib1g-dev                      # reads the gzip'd datasets
  dataset-fashion-mnist fortunes  # the datasets the model zoo trains on
  cmake ninja-build               # the CMake build (CMakeLists.txt, CMakeHelpers/)
  slurm-wlm munge                 # a local Slurm that tests the batch jobs in jobs/
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} Debian packages are installed"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
