#!/usr/bin/env bash
# The cost of cryptographic secrets: the masked ADMM round of this build beside the same round of a
# baseline binary (for example the last build whose masks came from SplitMix64:
#   git worktree add /tmp/fedbaechi-base <commit> && (cd /tmp/fedbaechi-base && swift build -c release)
# ), same flags, runs interleaved so both see the same machine.
#
#   BASELINE=/tmp/fedbaechi-base/.build/release/fedbaechi bash Benchmarks/federated-masks.sh
#   SITES=15 REPEATS=5 BASELINE=... bash Benchmarks/federated-masks.sh
#
# Local training does not change the aggregation's cost, so the sites train on few examples
# (LIMIT_TRAIN, default 900 in all). Prints, per binary, the median over every round of every run of
# the slowest site's aggregation time (after the barrier that waits for local training), and the ratio.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
: "${BASELINE:?set BASELINE to the fedbaechi binary to compare with}"
swift build -c release --product fedbaechi >/dev/null
current=.build/release/fedbaechi
sites=${SITES:-9}
repeats=${REPEATS:-3}
rounds=${ROUNDS:-3}
iterations=${ITERATIONS:-4}
out=${OUT:-/tmp/fedbaechi-federated-masks}
mkdir -p "$out"
rm -f "$out"/*.jsonl

for repeat in $(seq 1 "$repeats"); do
  for which in baseline current; do
    bin=$current
    [ "$which" = baseline ] && bin=$BASELINE
    mpirun -np "$sites" -x OPENBLAS_NUM_THREADS "$bin" train federated --model lenet --partition dirichlet:0.5 \
      --limit-train "${LIMIT_TRAIN:-900}" --aggregation admm --masked --iterations "$iterations" --rounds "$rounds" --seed 1 \
      --metrics "$out/$which-$repeat.jsonl" > "$out/$which-$repeat.log"
    echo "done: $which, run $repeat" >&2
  done
done

python3 - "$out" "$sites" "$iterations" <<'PY'
import json, os, statistics, sys
out, sites, iterations = sys.argv[1], sys.argv[2], sys.argv[3]
times = {"baseline": [], "current": []}
for name in sorted(os.listdir(out)):
    if name.endswith(".jsonl"):
        which = name.split("-")[0]
        times[which] += [json.loads(l)["aggregation_seconds_max"] for l in open(os.path.join(out, name)) if l.strip()]
base, cur = statistics.median(times["baseline"]), statistics.median(times["current"])
print(f"| sites | K | rounds measured | baseline s per masked round (median) | current | current / baseline |")
print(f"| ---: | ---: | ---: | ---: | ---: | ---: |")
print(f"| {sites} | {iterations} | {len(times['current'])} + {len(times['baseline'])} | {base:.3f} | {cur:.3f} | {cur / base:.2f} |")
PY
