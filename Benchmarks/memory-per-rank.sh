#!/usr/bin/env bash
# Model parallelism beyond one rank, measured (docs/benchmarks.md, "Memory per rank" and "Profiling op by op"):
#   bash Benchmarks/memory-per-rank.sh profile   # op-by-op profile against the whole-step profile; profiling time on 1, 2, 4, 8 ranks
#   bash Benchmarks/memory-per-rank.sh memory    # the 24x1024 mlp on 1, 2, 4 and 8 ranks: size, measured peaks, step times
# Needs the release build (swift build -c release) and dataset-fashion-mnist. Not part of the test command.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.build/release/fedbaechi
export OPENBLAS_NUM_THREADS=1
mpirun_="mpirun --oversubscribe -x OPENBLAS_NUM_THREADS"
[ "$(id -u)" -eq 0 ] && mpirun_="$mpirun_ --allow-run-as-root"
out=$(mktemp -d)
wide=$(printf '1024,%.0s' {1..23})1024

case "${1:-}" in
profile)
  # Same minute, interleaved: whole-step then op by op, for each zoo model at its default batch.
  for model in mlp lenet inception-mini gru-lm rnn-stack; do
    case $model in mlp) batch=128;; lenet|inception-mini) batch=64;; *) batch=32;; esac
    $bin profile --model $model --batch $batch --repeats 5 --method whole-step --output $out/$model-whole.json > /dev/null
    $bin profile --model $model --batch $batch --repeats 5 --method ops --output $out/$model-ops.json > /dev/null
    python3 - "$model" "$out/$model-whole.json" "$out/$model-ops.json" <<'PY'
import json, statistics, sys
model, whole, ops = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
timed = [(w["compute_us"], o["compute_us"]) for w, o in zip(whole["nodes"], ops["nodes"])
         if not w["name"].startswith(("input/", "var/"))]
sw, so = sum(w for w, _ in timed), sum(o for _, o in timed)
ratios = [o / w for w, o in timed if w >= 20]
big = sorted(timed, reverse=True)[:10]
print(f"| {model} | {len(timed)} | {sw/1000:.1f} | {so/1000:.1f} | {so/sw:.2f} | {statistics.median(ratios):.2f} | "
      f"{statistics.median([o / w for w, o in big]):.2f} |")
PY
  done
  # Profiling time on 1, 2, 4, 8 ranks (the job's ranks share the ops).
  for spec in "mlp --hidden $wide --batch 128" "inception-mini --batch 64" "rnn-stack --batch 32"; do
    for ranks in 1 2 4 8; do
      line=$($mpirun_ -np $ranks $bin profile --model $spec --repeats 3 --output $out/p.json | grep "^profiled")
      echo "${spec%% *} ranks=$ranks: $line"
    done
  done
  ;;
memory)
  for ranks in 1 2 4 8; do
    $mpirun_ -np $ranks $bin train model-parallel --model mlp --hidden $wide --limit-train 1024 --limit-test 512 \
      --steps 8 --learning-rate 0.0001 --metrics $out/m$ranks.jsonl > $out/o$ranks.txt
  done
  $mpirun_ -np 8 $bin train model-parallel --model mlp --hidden $wide --device-memory 64MiB --limit-train 1024 --limit-test 512 \
    --steps 8 --learning-rate 0.0001 --metrics $out/m64.jsonl > $out/o64.txt
  for run in 1 2 4 8 64; do
    python3 - "$run" "$out/m$run.jsonl" <<'PY'
import json, sys
run, path = sys.argv[1], sys.argv[2]
s = [json.loads(l) for l in open(path) if '"summary"' in l][-1]
r = s["per_rank"]
mib = lambda b: b / 1048576
print(f"| {s['ranks']} | {mib(s['memory_limit_bytes']):.0f} MiB | {max(mib(x['predicted_peak_bytes']) for x in r):.1f} | "
      f"{max(mib(x['peak_bytes']) for x in r):.1f} | {max(mib(x['peak_rss_bytes']) for x in r):.1f} | "
      f"{min(mib(x['start_rss_bytes']) for x in r):.1f}-{max(mib(x['start_rss_bytes']) for x in r):.1f} | "
      f"{max(mib(x['peak_rss_bytes'] - x['peak_bytes'] - x['data_bytes']) for x in r):.1f} | "
      f"{s['median_step_ms']:.0f} | {s['predicted_step_ms']:.0f} | {s.get('profiling_seconds') or 0:.2f} |")
PY
  done
  ;;
*) echo "usage: $0 profile|memory" >&2; exit 64;;
esac
