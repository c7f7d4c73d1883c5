#!/usr/bin/env bash
# Point-to-point latency and bandwidth: the Swift MPI layer beside the same program in C.
# Usage: bash Benchmarks/run-pingpong.sh [rounds]   (prints a Markdown table for docs/benchmarks.md)
# The two programs alternate `rounds` times (default 5); each cell is the median over rounds of
# each program's own median of 7 timed trials.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/mpi-env.sh
rounds=${1:-5}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
swift build -c release --product fedbaechi-pingpong >/dev/null
mpicc -O2 -o "$out/pingpong-c" Benchmarks/pingpong.c
for round in $(seq "$rounds"); do
  mpirun -np 2 "$out/pingpong-c" > "$out/c.$round.csv"
  mpirun -np 2 .build/release/fedbaechi-pingpong > "$out/swift.$round.csv"
done
python3 - "$out" "$rounds" <<'PY'
import csv, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
def load(kind):
    rows = {}
    for r in range(1, rounds + 1):
        for row in csv.DictReader(open(f"{out}/{kind}.{r}.csv")):
            rows.setdefault(int(row["bytes"]), []).append((float(row["one_way_us"]), float(row["MB_per_s"])))
    return {k: (statistics.median(x for x, _ in v), statistics.median(y for _, y in v)) for k, v in rows.items()}
c, s = load("c"), load("swift")
print("| message | C one-way (µs) | Swift one-way (µs) | Swift − C (µs) | C MB/s | Swift MB/s | Swift / C bandwidth |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for n in sorted(c):
    label = f"{n} B" if n < 1024 else (f"{n // 1024} KiB" if n < 1 << 20 else f"{n >> 20} MiB")
    print(f"| {label} | {c[n][0]:.2f} | {s[n][0]:.2f} | {s[n][0] - c[n][0]:+.2f} | {c[n][1]:.0f} | {s[n][1]:.0f} | {s[n][1] / c[n][1]:.3f} |")
PY
