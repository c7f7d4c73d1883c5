#!/usr/bin/env bash
# ONNX light models of the `onnx` package, placed for training on 4 devices (docs/benchmarks.md,
# "ONNX models"): ops, import time, placement time and simulated step per algorithm, the
# smallest memory per device with which each algorithm finds a plan, and the same for auto with
# its step at that memory. Release build; times are
# medians of RUNS runs (import: RUNS fresh processes; placement: --repeat RUNS in one process).
#
#   pip install onnx && bash Benchmarks/onnx-models.sh [RUNS] [extra place flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-9}
shift || true
swift build -c release --product fedbaechi >/dev/null
bin=.build/release/fedbaechi
light=$(python3 -c 'import onnx, os; print(os.path.dirname(onnx.__file__))')/backend/test/data/light
common=(--devices 4 --batch 32 --training --optimizer adam "$@")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# "84.51 ms" -> milliseconds
to_ms() { awk '{u = $2; x = $1; if (u == "us") x /= 1000; else if (u == "s") x *= 1000; printf "%.2f\n", x}'; }

echo "| model | ops | import | one device: step, peak memory | m-TOPO: placement, step | m-ETF: placement, step | m-SCT: placement, step | smallest memory per device: m-TOPO, m-ETF, m-SCT | auto: smallest memory per device, step there (chosen) |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for model in bvlc_alexnet densenet121 inception_v1 inception_v2 resnet50 shufflenet squeezenet vgg19 zfnet512; do
  file=$light/light_$model.onnx
  ops=$("$bin" place "$file" "${common[@]}" --memory 1TiB --algorithm m-topo | sed -n 's/^graph .*: \([0-9]*\) ops.*/\1/p')
  import=$(for _ in $(seq "$runs"); do
    "$bin" place "$file" "${common[@]}" --memory 1TiB --algorithm m-topo | sed -n 's/.*reading the graph \(.*\)$/\1/p' | to_ms
  done | median)
  "$bin" place "$file" "${common[@]}" --memory 1TiB --algorithm single --output "$out/plan.json" >/dev/null
  row="| $model | $ops | $import ms | $(jq -r '"\(.makespan_us / 10 | round / 100) ms, \(.devices[0].peak_memory_bytes / 1073741824 * 1000 | round / 1000) GiB"' "$out/plan.json")"
  smallest=()
  for algorithm in m-topo m-etf m-sct; do
    "$bin" place "$file" "${common[@]}" --memory 1TiB --algorithm "$algorithm" --repeat "$runs" --output "$out/plan.json" >/dev/null
    row="$row | $(jq -r '"\(.placement_seconds * 1000 * 100 | round / 100) ms, \(.makespan_us / 10 | round / 100) ms"' "$out/plan.json")"
    message=$("$bin" place "$file" "${common[@]}" --memory 1MiB --algorithm "$algorithm" 2>&1 >/dev/null || true)
    smallest+=("$(echo "$message" | sed -n 's/.*devices of \(.*\) each (smallest found by search).*/\1/p')")
  done
  message=$("$bin" place "$file" "${common[@]}" --memory 1MiB --algorithm auto 2>&1 >/dev/null || true)
  least=$(echo "$message" | sed -n 's/.*devices of \(.*\) each (smallest found by search).*/\1/p')
  "$bin" place "$file" "${common[@]}" --memory "$least" --algorithm auto --output "$out/plan.json" >/dev/null
  auto=$(jq -r '"\(.makespan_us / 10 | round / 100) ms (\(.algorithm))"' "$out/plan.json")
  echo "$row | ${smallest[0]}, ${smallest[1]}, ${smallest[2]} | $least, $auto |"
done
