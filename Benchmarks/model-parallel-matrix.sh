#!/usr/bin/env bash
# Model-parallel validation and step-time benchmark (results go to docs/benchmarks.md by hand).
#
#   bash Benchmarks/model-parallel-matrix.sh [matrix|timing|all] [steps]
#
# matrix: every zoo model (small configurations) x m-TOPO, m-ETF, m-SCT, expert x 2, 4, 8 ranks,
#         each checked bit for bit against single-process training (losses of every step and the
#         final weights), with the debug test bundle under mpirun.
# timing: inception-mini and rnn-stack at their real sizes, release build, `nice`: the median
#         measured step time beside the simulator's predicted makespan, per placer at 2 and 4
#         ranks and on one rank; prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
what=${1:-all}
steps=${2:-12}

if [ "$what" = matrix ] || [ "$what" = all ]; then
  swift build --build-tests >/dev/null
  for ranks in 2 4 8; do
    echo "== matrix with $ranks ranks"
    FEDBAECHI_MODEL_PARALLEL_MATRIX=1 timeout 1800 nice mpirun -np "$ranks" -x OPENBLAS_NUM_THREADS \
      -x FEDBAECHI_MODEL_PARALLEL_MATRIX .build/debug/fedbaechiPackageTests.xctest --testing-library swift-testing \
      --filter ModelParallelRankTests 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -E "^matrix:|passed after|failed|recorded an issue" | sort -u
  done
fi

if [ "$what" = timing ] || [ "$what" = all ]; then
  swift build -c release --product fedbaechi >/dev/null
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
  for model in inception-mini rnn-stack; do
    # The fortunes corpus is small; a smaller vocabulary keeps the language models' step short.
    common=(train model-parallel --model "$model" --steps "$steps" --seed 1 --limit-test 64)
    timeout 1800 nice mpirun -np 1 -x OPENBLAS_NUM_THREADS .build/release/fedbaechi "${common[@]}" \
      --algorithm single --metrics "$out/$model.1.single.jsonl" >/dev/null
    for ranks in 2 4; do
      for algorithm in m-topo m-etf m-sct expert; do
        timeout 1800 nice mpirun -np "$ranks" -x OPENBLAS_NUM_THREADS .build/release/fedbaechi "${common[@]}" \
          --algorithm "$algorithm" --metrics "$out/$model.$ranks.$algorithm.jsonl" >/dev/null
      done
    done
  done
  python3 - "$out" <<'PY'
import json, os, sys
out = sys.argv[1]
print("| model | ranks | placer | measured step (ms, median) | predicted (ms) | predicted / measured | comm wait (ms, max rank) | peak memory (MiB, max rank) | test score |")
print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
for name in sorted(os.listdir(out), key=lambda n: (n.split(".")[0], int(n.split(".")[1]), n.split(".")[2])):
    model, ranks, algorithm = name.split(".")[:3]
    lines = [json.loads(l) for l in open(os.path.join(out, name)) if l.strip()]
    summary = [l for l in lines if l.get("mode") == "model-parallel"][-1]
    epoch = [l for l in lines if "epoch" in l][-1]
    score = epoch.get("test_accuracy") or epoch.get("test_perplexity")
    wait = max(r["communication_wait_ms"] for r in summary["per_rank"])
    peak = max(r["peak_bytes"] for r in summary["per_rank"]) / 2**20
    m, p = summary["median_step_ms"], summary["predicted_step_ms"]
    print(f"| {model} | {ranks} | {algorithm} | {m:.1f} | {p:.1f} | {p / m:.2f} | {wait:.1f} | {peak:.1f} | {score:.4f} |")
PY
fi
