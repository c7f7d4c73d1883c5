#!/usr/bin/env bash
# Predicted against measured step time on 2 ranks pinned to the 2 cores, with the assumed link and with
# the link `calibrate --link` measures (results go to docs/benchmarks.md by hand).
#
#   bash Benchmarks/measured-links.sh [--test-hosts] [rounds]
#
# --test-hosts: the 2 ranks on two test hosts (scripts/test-hosts.sh, root), one per core, talking over
# TCP; only the calibration and step 2 run. The hosts are built for the run and removed after it.
#
# 1. calibrate --link on 2 ranks (the table and links.json);
# 2. per round and model (inception-mini, rnn-stack; 12 steps, seed 1): 2 ranks with the assumed link,
#    2 ranks with --links links.json, and 1 rank with everything on it;
# 3. experiments: everything on rank 0 of 2 ranks (the second rank idle), bound and with
#    mpi_yield_when_idle; and the same saved profile placed with four links (assumed, measured,
#    free, ten times slower than measured) so that only the link differs between the plans.
# Prints one line per run: round, model, run, load average, and the end-of-run step time line.
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
hosts=false
if [ "${1:-}" = --test-hosts ]; then hosts=true; shift; fi
rounds=${1:-3}
swift build -c release --product fedbaechi >/dev/null || exit 1
out=$(mktemp -d)
trap 'rm -rf "$out"; if $hosts; then bash scripts/test-hosts.sh down; fi' EXIT
bin=$PWD/.build/release/fedbaechi
launch=(mpirun --bind-to core -x OPENBLAS_NUM_THREADS)
pin=()
if $hosts; then
  bash scripts/test-hosts.sh up 2 >/dev/null || exit 1
  # Rank r on host r + 1 and core r.
  launch=(bash scripts/test-hosts.sh mpirun -x OPENBLAS_NUM_THREADS)
  pin=(bash -c 'exec taskset -c "$OMPI_COMM_WORLD_RANK" "$@"' fedbaechi)
fi

"${launch[@]}" -np 2 "${pin[@]}" $bin calibrate --link --output "$out/links.json"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
d = json.load(open(f"{out}/links.json"))
print("points (bytes, one-way us):", [(int(b), round(t, 1)) for b, t in d["links"]["pairs"][0]["points"]])
for name, latency, bandwidth in [("free", 0.0, 1e15), ("slow10", None, None)]:
    e = json.loads(json.dumps(d))
    p = e["links"]["pairs"][0]
    p["latency_us"] = latency if latency is not None else p["latency_us"] * 10
    p["bandwidth_bytes_per_second"] = bandwidth if bandwidth is not None else p["bandwidth_bytes_per_second"] / 10
    json.dump(e, open(f"{out}/{name}.json", "w"))
PY

run() {  # round model tag ranks [mpirun options --] train options...
  local r=$1 model=$2 tag=$3 np=$4; shift 4
  local mca=()
  if [ "${1:-}" = --yield ]; then mca=(--mca mpi_yield_when_idle 1); shift; fi
  "${launch[@]}" "${mca[@]}" -np "$np" "${pin[@]}" $bin train model-parallel --model "$model" --steps 12 --seed 1 --limit-test 64 "$@" \
    > "$out/run.out" 2>&1
  echo "$r $model $tag load $(cut -d' ' -f1 /proc/loadavg): $(grep 'step time' "$out/run.out" | sed 's/step time: //')"
}

for r in $(seq 1 "$rounds"); do
  for model in inception-mini rnn-stack; do
    run "$r" $model assumed 2
    run "$r" $model measured 2 --links "$out/links.json"
    run "$r" $model one-rank 1 --algorithm single
    $hosts && continue
    run "$r" $model rank0-of-2 2 --algorithm single
    run "$r" $model rank0-of-2-yield 2 --yield --algorithm single
  done
done

$hosts && exit 0
for model in inception-mini rnn-stack; do
  batch=64; [ $model = rnn-stack ] && batch=32
  "${launch[@]}" -np 2 "${pin[@]}" $bin profile --model $model --batch $batch --output "$out/$model.profile.json" >/dev/null
  run 1 $model profile+assumed 2 --profile "$out/$model.profile.json"
  for links in links free slow10; do
    run 1 $model profile+$links 2 --profile "$out/$model.profile.json" --links "$out/$links.json"
  done
done
