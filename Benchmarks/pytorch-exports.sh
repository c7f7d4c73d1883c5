#!/usr/bin/env bash
# Real PyTorch exports (both exporters, eval and training mode) trained by fedbaechi; see
# Benchmarks/pytorch_exports.py. Installs torch into its own virtual environment (several GB) on first
# use; not part of the test command.
#
#   bash Benchmarks/pytorch-exports.sh [venv directory]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${1:-.build/venv-torch}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip setuptools
  "$venv/bin/pip" install -q torch onnx==1.23.2 onnxruntime==1.32.0 onnxscript numpy
fi
swift build -c release --product fedbaechi >/dev/null
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$venv/bin/python" Benchmarks/pytorch_exports.py "$PWD/.build/release/fedbaechi" "$out"
