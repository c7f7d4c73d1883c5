#!/usr/bin/env bash
# The per-op table of docs/formats.md ("Shape inference against the ONNX backend node tests"):
# runs Tests/PlacementTests/ONNXBackendNodeTests.swift, which imports every backend node test case
# of the installed onnx package and compares the shapes it infers with the reference's outputs,
# and prints the Markdown table it writes. Needs `pip install onnx` (scripts/install-deps.sh).
# Usage: scripts/onnx-backend-shapes.sh [TABLE.md]   (standard output without an argument)
set -euo pipefail
cd "$(dirname "$0")/.."
table=${1:-}
scratch=$(mktemp)
trap 'rm -f "$scratch"' EXIT
swift build --build-tests >/dev/null
# The table is written even when a shape is wrong (the test then fails, and so does this script).
status=0
ONNX_BACKEND_SHAPES_TABLE="$scratch" swift test --skip-build --filter ONNXBackendNodeTests >&2 || status=$?
[ -s "$scratch" ] || { echo "onnx-backend-shapes: no table was written (is the onnx package installed?)" >&2; exit 1; }
if [ -n "$table" ]; then cp "$scratch" "$table"; else cat "$scratch"; fi
exit "$status"
