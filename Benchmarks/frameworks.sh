#!/usr/bin/env bash
# Step time of the zoo's networks in fedbaechi, PyTorch and JAX on this machine, rounds interleaved
# (docs/benchmarks.md, "Beside PyTorch and JAX"). Not part of the test command.
#
#   bash Benchmarks/frameworks.sh [--install] [--threads 1|2] [--rounds N] [--steps N] [MODEL...]
#
# VENV (default .venv-frameworks): a virtual environment with torch and jax (Benchmarks/frameworks.py
# holds the twins); --install makes it first (pip install torch jax numpy: several GB).
# One thread: every process pinned to core 1 (OPENBLAS_NUM_THREADS=1, torch.set_num_threads(1), XLA's
# CPU client on one thread); --threads 2: pinned to cores 0 and 1, two threads each.
# Each round runs every model in all three, in an order that rotates from round to round, so that a
# slow minute touches all three alike. fedbaechi runs `fedbaechi profile --time-steps`, whose per-op
# breakdown goes to OUT (default: a temporary folder, kept) as MODEL.ROUND.json beside results.csv.
# Prints a Markdown table for docs/benchmarks.md and each model's breakdown from the last round.
set -uo pipefail
cd "$(dirname "$0")/.."
install=false threads=1 rounds=3 steps=30
while [ $# -gt 0 ]; do
  case "$1" in
    --install) install=true ;;
    --threads) threads=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    --steps) steps=$2; shift ;;
    -*) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    *) break ;;
  esac
  shift
done
models=("$@")
[ ${#models[@]} -gt 0 ] || models=(mlp lenet inception-mini gru-lm rnn-stack)
case "$threads" in 1) cores=1 ;; 2) cores=0,1 ;; *) echo "frameworks: --threads is 1 or 2" >&2; exit 2 ;; esac
venv=${VENV:-$PWD/.venv-frameworks}
if $install; then
  python3 -m venv "$venv" && "$venv/bin/pip" install -q torch jax numpy || exit 1
fi
"$venv/bin/python" -c "import torch, jax" 2>/dev/null \
  || { echo "frameworks: $venv has no torch and jax: run with --install, or set VENV" >&2; exit 2; }
swift build -c release --product fedbaechi >/dev/null || exit 1
out=${OUT:-$(mktemp -d)}
mkdir -p "$out"
export OPENBLAS_NUM_THREADS=$threads
if [ "$threads" = 1 ]; then
  export XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"
else
  export XLA_FLAGS="intra_op_parallelism_threads=$threads"
fi
batch_of() { case $1 in mlp) echo 256 ;; gru-lm|rnn-stack) echo 32 ;; *) echo 64 ;; esac; }

echo "round,model,batch,framework,median_ms,load" > "$out/results.csv"
frameworks=(fedbaechi torch jax)
for r in $(seq "$rounds"); do
  for model in "${models[@]}"; do
    batch=$(batch_of "$model")
    for i in 0 1 2; do
      framework=${frameworks[$(((i + r) % 3))]}
      if [ "$framework" = fedbaechi ]; then
        taskset -c "$cores" .build/release/fedbaechi profile --model "$model" --batch "$batch" --repeats 1 \
          --time-steps "$steps" --output /dev/null --timing-output "$out/$model.$r.json" >/dev/null || exit 1
        ms=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['step_ms'])" "$out/$model.$r.json")
      else
        ms=$(taskset -c "$cores" "$venv/bin/python" Benchmarks/frameworks.py "$framework" "$model" "$batch" "$steps" "$threads" \
          | python3 -c "import json,sys; print(json.loads(sys.stdin.read().splitlines()[-1])['median_ms'])") || exit 1
      fi
      echo "$r,$model,$batch,$framework,$ms,$(cut -d' ' -f1 /proc/loadavg)" >> "$out/results.csv"
    done
  done
  echo "round $r of $rounds done" >&2
done

python3 - "$out" "$rounds" "$threads" "${models[@]}" <<'PY'
import csv, json, statistics, sys
out, rounds, threads, models = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
rows = list(csv.DictReader(open(f"{out}/results.csv")))
def times(model, framework):
    return [float(r["median_ms"]) for r in rows if r["model"] == model and r["framework"] == framework]
loads = [float(r["load"]) for r in rows]
print(f"{threads} thread(s), {rounds} rounds, load average {min(loads):.1f} to {max(loads):.1f}; results in {out}")
print()
print("| model, batch | fedbaechi (ms), rounds | PyTorch | JAX | fedbaechi's throughput / the faster's (median of rounds) |")
print("| --- | --- | --- | --- | ---: |")
for model in models:
    f, t, j = times(model, "fedbaechi"), times(model, "torch"), times(model, "jax")
    ratios = [min(b, c) / a for a, b, c in zip(f, t, j)]
    batch = next(r["batch"] for r in rows if r["model"] == model)
    fmt = lambda xs: " / ".join(f"{x:.1f}" for x in xs)
    print(f"| {model}, {batch} | {fmt(f)} | {fmt(t)} | {fmt(j)} | {statistics.median(ratios):.2f}x |")
for model in models:
    report = json.load(open(f"{out}/{model}.{rounds}.json"))
    print()
    print(f"{model}, batch {report['batch']}: step {report['step_ms']:.2f} ms, sgemm {report['sgemm_ms']:.2f} ms "
          f"({report['sgemm_gflop']:.2f} GFLOP), plain sgemm {report['sgemm_peak_gflops']:.1f} GFLOP/s")
    print()
    print("| op kind | nodes | ms per step | share | sgemm GFLOP/s |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for kind in report["kinds"]:
        if kind["share"] < 0.005:
            continue
        rate = f"{kind['gflops']:.1f}" if kind.get("gflops") else "-"
        print(f"| {kind['kind']} | {kind['nodes']} | {kind['ms']:.2f} | {100 * kind['share']:.1f}% | {rate} |")
PY
