#!/usr/bin/env bash
# Federated benchmark: final test quality of ADMM aggregation (plain and masked) beside FedAvg and
# local-only training, and aggregation time per round beside FedAvg's single allreduce of the model,
# for 9 and 15 sites, lenet on Fashion-MNIST and gru-lm on fortunes.
#
#   bash Benchmarks/federated.sh            # release build, writes the tables to stdout
#   ROUNDS=1 SITES="9" MODELS=lenet VARIANTS="admm fedavg" bash Benchmarks/federated.sh
#   BIN=/path/to/other/fedbaechi bash Benchmarks/federated.sh   # another build, to compare (not rebuilt)
#
# Every run's metrics stay in $OUT (default /tmp/fedbaechi-federated) as JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
if [ -z "${BIN:-}" ]; then
  swift build -c release --product fedbaechi >/dev/null
fi
bin=${BIN:-.build/release/fedbaechi}
out=${OUT:-/tmp/fedbaechi-federated}
rounds=${ROUNDS:-3}
mkdir -p "$out"

# Data per run: lenet trains on 9,000 images split among the sites (Dirichlet 0.5), gru-lm on 4,500
# fortunes sequences (categories dealt to sites, at most 4500/V sequences each); both score on the
# whole test set.
args_for() {
  case $1 in
    lenet) echo "--model lenet --partition dirichlet:0.5 --limit-train 9000" ;;
    gru-lm) echo "--model gru-lm --partition natural --limit-train 4500" ;;
  esac
}

for model in ${MODELS:-lenet gru-lm}; do
  for sites in ${SITES:-9 15}; do
    for variant in ${VARIANTS:-admm admm-masked fedavg local}; do
      name="$model-$sites-$variant"
      case $variant in
        admm) flags="--aggregation admm" ;;
        admm-masked) flags="--aggregation admm --masked" ;;
        *) flags="--aggregation $variant" ;;
      esac
      # shellcheck disable=SC2046
      mpirun -np "$sites" -x OPENBLAS_NUM_THREADS "$bin" train federated $(args_for "$model") $flags \
        --rounds "$rounds" --seed 1 --metrics "$out/$name.jsonl" > "$out/$name.log"
      echo "done: $name ($(tail -n 1 "$out/$name.jsonl" | cut -c1-80)...)" >&2
    done
  done
done

python3 - "$out" <<'PY'
import json, sys, os, statistics
out = sys.argv[1]
runs = {}
for name in sorted(os.listdir(out)):
    if name.endswith(".jsonl"):
        runs[name[:-6]] = [json.loads(l) for l in open(os.path.join(out, name)) if l.strip()]
print("| model | sites | aggregation | final global test accuracy / perplexity | final aggregation error | aggregation s per round (median) | / FedAvg's allreduce | MiB sent per site per round (max) |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |")
for key, records in runs.items():
    model, sites, variant = key.split("-", 2) if not key.startswith("gru-lm") else ("gru-lm",) + tuple(key[7:].split("-", 1))
    last = records[-1]
    quality = last.get("global_accuracy")
    quality = f"{quality:.4f}" if quality is not None else f"{last['global_perplexity']:.2f}"
    error = last.get("aggregation_error")
    agg = statistics.median(r["aggregation_seconds_max"] for r in records)
    fedavg = runs.get(key.replace(variant, "fedavg"))
    ratio = "-"
    if fedavg and variant != "local":
        base = statistics.median(r["aggregation_seconds_max"] for r in fedavg)
        ratio = f"{agg / base:.1f}" if base > 0 else "-"
    sent = max(r["bytes_sent_max"] for r in records) / 2**20
    print(f"| {model} | {sites} | {variant} | {quality} | {'-' if error is None else f'{error:.1e}'} | {agg:.3f} | {ratio} | {sent:.1f} |")
PY
