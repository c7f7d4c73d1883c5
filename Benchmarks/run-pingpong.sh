#!/usr/bin/env bash
# Point-to-point latency and bandwidth: the Swift MPI layer beside the same program in C.
# Usage: bash Benchmarks/run-pingpong.sh [--test-hosts] [rounds]   (prints a Markdown table for docs/benchmarks.md)
# --test-hosts: the two ranks on two test hosts (scripts/test-hosts.sh, root), so messages cross Open
# MPI's TCP transport over a veth pair and a bridge instead of shared memory; the hosts are built
# for the run and removed after it.
# The two programs alternate `rounds` times (default 9). Times are the median over rounds of each
# program's own median of 7 timed trials; the ratios are medians of the per-round ratios, so a
# slow minute on a shared machine affects both programs of that round alike.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
launch=(mpirun)
pin=()
hosts=false
if [ "${1:-}" = --test-hosts ]; then hosts=true; shift; fi
rounds=${1:-9}
out=$(mktemp -d)
trap 'rm -rf "$out"; if $hosts; then bash scripts/test-hosts.sh down; fi' EXIT
if $hosts; then
  bash scripts/test-hosts.sh up 2 >/dev/null || exit 1
  # One rank per host, each on a core of its own.
  launch=(bash scripts/test-hosts.sh mpirun)
  pin=(bash -c 'exec taskset -c "$OMPI_COMM_WORLD_RANK" "$@"' pingpong)
fi
swift build -c release --product fedbaechi-pingpong >/dev/null
mpicc -O2 -o "$out/pingpong-c" Benchmarks/pingpong.c
for round in $(seq "$rounds"); do
  "${launch[@]}" -np 2 "${pin[@]}" "$out/pingpong-c" > "$out/c.$round.csv"
  "${launch[@]}" -np 2 "${pin[@]}" "$PWD/.build/release/fedbaechi-pingpong" > "$out/swift.$round.csv"
done
python3 - "$out" "$rounds" <<'PY'
import csv, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(kind, r):
    return {int(row["bytes"]): float(row["one_way_us"]) for row in csv.DictReader(open(f"{out}/{kind}.{r}.csv"))}
c = [load("c", r) for r in range(1, rounds + 1)]
s = [load("swift", r) for r in range(1, rounds + 1)]
med = statistics.median
print(f"| message | C one-way (µs) | Swift one-way (µs) | Swift − C (µs), median of {rounds} rounds | C MB/s | Swift MB/s | Swift / C bandwidth, median of rounds |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted(c[0]):
    tc, ts = med(x[n] for x in c), med(x[n] for x in s)
    diff = med(y[n] - x[n] for x, y in zip(c, s))
    ratio = med(x[n] / y[n] for x, y in zip(c, s))
    label = f"{n} B" if n < 1024 else (f"{n // 1024} KiB" if n < 1 << 20 else f"{n >> 20} MiB")
    print(f"| {label} | {tc:.2f} | {ts:.2f} | {diff:+.2f} | {n / tc:.0f} | {n / ts:.0f} | {ratio:.3f} |")
PY
