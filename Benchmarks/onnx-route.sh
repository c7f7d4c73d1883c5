#!/usr/bin/env bash
# The cost of the ONNX route: step times at batch 32 on one thread of the zoo's lenet and of the same
# network read from ONNX (interleaved rounds, medians); then a ResNet-style CNN and a transformer
# encoder read from ONNX, each beside its native twin built with GraphBuilder as the zoo builds its
# models (fedbaechi-onnx-twins: same initial weights, losses checked equal, steps interleaved in one
# process). Not part of the test command.
#
#   bash Benchmarks/onnx-route.sh [rounds] [steps]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
steps=${2:-20}
swift build -c release --product fedbaechi >/dev/null
swift build -c release --product fedbaechi-onnx-twins >/dev/null
bin=.build/release/fedbaechi
models=$(mktemp -d)
trap 'rm -rf "$models"' EXIT
python3 Benchmarks/onnx_route_models.py "$models"
export OPENBLAS_NUM_THREADS=1
pin=""
command -v taskset >/dev/null && pin="taskset -c 0"

step_ms() {  # the median step time fedbaechi profile reports, in ms
  $pin "$bin" profile --model "$1" --batch 32 --repeats 1 --time-steps "$steps" --output /dev/null 2>&1 |
    sed -n 's/^step time (median of [0-9]*): \([0-9.]*\) ms.*/\1/p'
}

declare -A samples
for round in $(seq "$rounds"); do
  for model in lenet "$models/lenet.onnx"; do
    samples[$model]+="$(step_ms "$model") "
  done
  echo "round $round of $rounds done" >&2
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
zoo=$(echo "${samples[lenet]}" | median)
onnx=$(echo "${samples[$models/lenet.onnx]}" | median)
echo "| network, batch 32, one thread | route | step (median of $rounds rounds) | vs the zoo |"
echo "|---|---|---:|---:|"
echo "| lenet | zoo | $zoo ms | 1.00 |"
echo "| lenet | ONNX | $onnx ms | $(awk -v a="$onnx" -v b="$zoo" 'BEGIN {printf "%.3f", a / b}') |"
echo
$pin .build/release/fedbaechi-onnx-twins "$models" $((rounds * steps)) 32
echo "zoo lenet samples: ${samples[lenet]}" >&2
echo "ONNX lenet samples: ${samples[$models/lenet.onnx]}" >&2
