#!/usr/bin/env bash
# Placement only, on a login node: no MPI, no allocation. Writes the plan and its Gantt chart.
#
#   bash jobs/place-login-node.sh GRAPH [DEVICES] [MEMORY] [ALGORITHM]
#
# GRAPH is a fedbaechi graph JSON (`fedbaechi profile` writes one), a Baechi/TensorFlow profile,
# or synthetic:layered:N. Defaults: 4 devices of 8GiB, algorithm auto. Outputs land beside the
# graph as NAME.plan.json and NAME.plan.svg. Exit status: 0, 2 bad input, 3 no plan fits.
set -euo pipefail
graph=${1:?usage: place-login-node.sh GRAPH [DEVICES] [MEMORY] [ALGORITHM]}
devices=${2:-${DEVICES:-4}}
memory=${3:-${MEMORY:-8GiB}}
algorithm=${4:-${ALGORITHM:-auto}}
repo=$(cd "$(dirname "$0")/.." && pwd)
FEDBAECHI=${FEDBAECHI:-$repo/.build/release/fedbaechi}
case "$graph" in
  synthetic:*) stem="$PWD/$(echo "$graph" | tr ':' '-')" ;;
  *) stem="${graph%.json}" ;;
esac
"$FEDBAECHI" place "$graph" --devices "$devices" --memory "$memory" --algorithm "$algorithm" \
  --output "$stem.plan.json" --gantt "$stem.plan.svg"
echo "plan: $stem.plan.json  chart: $stem.plan.svg"
