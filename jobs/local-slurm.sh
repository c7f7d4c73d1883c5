#!/usr/bin/env bash
# A throwaway single-node Slurm for testing fedbaechi's batch jobs on one machine, without
# systemd: munge, slurmctld and slurmd run from a temporary folder and are always shut down.
#
#   bash jobs/local-slurm.sh JOB.sbatch [JOB2.sbatch ...]
#
# Submits each job with `sbatch --wait` (from a scratch folder where its .out file lands), prints
# its output, and checks it: a job passes when it exits with the status its `# expect-exit:`
# comment names (0 when absent) and its output matches its `# expect:` comment, if any. Exits non-zero when any job failed. Needs root and Debian's
# slurm-wlm and munge packages.
#
#   TEST_HOSTS=2 bash jobs/local-slurm.sh JOB.sbatch [...]
#
# The same Slurm with N nodes: the test hosts of scripts/test-hosts.sh (brought up here and torn down
# at the end), slurmctld on the first and one slurmd on each, every daemon in its host's namespaces
# (spool, pid and log files named per node with %n; one munged serves all, through its socket on the
# shared file system). Jobs are submitted with --nodes=N, so their ranks run on every host.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "local-slurm: must run as root (it starts munged and slurmd)" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch sinfo scontrol; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "local-slurm: $tool missing: apt-get install slurm-wlm munge" >&2; exit 2; }
done
[ $# -ge 1 ] || { echo "usage: bash jobs/local-slurm.sh JOB.sbatch [...]" >&2; exit 2; }

nodes=${TEST_HOSTS:-}
# Where slurmctld and the Slurm commands run: on the first test host (the only place that reaches the
# others' addresses), or here.
on_controller=()
if [ -n "$nodes" ]; then
  bash "$repo/scripts/test-hosts.sh" up "$nodes" || exit 1
  on_controller=(bash "$repo/scripts/test-hosts.sh" exec host1)
fi

work=$(mktemp -d /tmp/fedbaechi-slurm.XXXXXX)
chmod 755 "$work"
started_munge=0
cleanup() {
  "${on_controller[@]}" scontrol shutdown >/dev/null 2>&1
  for _ in $(seq 50); do pgrep -f "slurm(ctld|d) .*$work" >/dev/null || break; sleep 0.2; done
  pkill -9 -f "slurm(ctld|d|stepd).*$work" 2>/dev/null
  if [ "$started_munge" = 1 ] && [ -f /run/munge/munged.pid ]; then
    local munged
    munged=$(cat /run/munge/munged.pid)
    kill "$munged" 2>/dev/null
    # Gone before this script ends: a run right after must not find a munged that is about to exit.
    for _ in $(seq 50); do kill -0 "$munged" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -rf "$work"
  [ -z "$nodes" ] || bash "$repo/scripts/test-hosts.sh" down
}
trap cleanup EXIT INT TERM

# munge: the authentication Slurm's daemons use between themselves.
if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge /etc/munge && chown munge: /run/munge
  [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chown munge: /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  runuser -u munge -- /usr/sbin/munged || { echo "local-slurm: munged did not start" >&2; exit 1; }
  started_munge=1
fi

mkdir -p "$work/state" "$work/spool" "$work/log" "$work/jobs"
chown -R slurm: "$work/state" "$work/log"
chmod 777 "$work/jobs"
if [ -n "$nodes" ]; then
  # One line per test host ("fbh-host1 10.77.0.1"); the first runs slurmctld.
  mapfile -t hosts < <(bash "$repo/scripts/test-hosts.sh" list)
  controller="${hosts[0]% *}(${hosts[0]#* })"
  node_lines=$(for host in "${hosts[@]}"; do echo "NodeName=${host% *} NodeAddr=${host#* } CPUs=16 State=UNKNOWN"; done)
  node_names=$(for host in "${hosts[@]}"; do echo "${host% *}"; done | paste -sd,)
  per_node=-%n
  for host in "${hosts[@]}"; do mkdir -p "$work/spool/${host% *}"; done
else
  host=$(hostname -s)
  controller=$host
  node_lines="NodeName=$host CPUs=16 State=UNKNOWN"
  node_names=$host
  per_node=""
fi
cat > "$work/slurm.conf" <<CONF
ClusterName=fedbaechi-test
SlurmctldHost=$controller
SlurmUser=slurm
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=pmix
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
ReturnToService=2
SlurmdParameters=config_overrides
MailProg=/bin/true
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool${per_node:+/%n}
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd$per_node.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd$per_node.log
SlurmctldPort=16817
SlurmdPort=16818
$node_lines
PartitionName=debug Nodes=$node_names Default=YES MaxTime=60 State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
"${on_controller[@]}" /usr/sbin/slurmctld -f "$SLURM_CONF" || { echo "local-slurm: slurmctld did not start" >&2; exit 1; }
if [ -n "$nodes" ]; then
  # The hosts share /tmp, where each step's PMIx client folder would be made under the same name: each
  # slurmd reads its own copy of the configuration, beside an mpi.conf that puts them apart.
  for host in "${hosts[@]}"; do
    name=${host% *}
    mkdir -p "$work/etc/$name" "$work/pmix/$name"
    cp "$SLURM_CONF" "$work/etc/$name/slurm.conf"
    echo "PMIxCliTmpDirBase=$work/pmix/$name" > "$work/etc/$name/mpi.conf"
    bash "$repo/scripts/test-hosts.sh" exec "$name" /usr/sbin/slurmd -f "$work/etc/$name/slurm.conf" -N "$name" ||
      { echo "local-slurm: slurmd on $name did not start" >&2; exit 1; }
  done
else
  /usr/sbin/slurmd -f "$SLURM_CONF" || { echo "local-slurm: slurmd did not start" >&2; exit 1; }
fi

# Every node idle: one line of sinfo per state, so "idle" alone.
for _ in $(seq 100); do
  state=$("${on_controller[@]}" sinfo -h -o %T 2>/dev/null | sort -u | paste -sd,)
  [ "$state" = idle ] && break
  sleep 0.3
done
[ "$state" = idle ] || { echo "local-slurm: the nodes did not become idle (state: ${state:-none})" >&2; for log in "$work/log/"*.log; do echo "--- $log" >&2; tail -n 5 "$log" >&2; done; exit 1; }
echo "local-slurm: $node_names idle"

passed=0
failed=0
for job in "$@"; do
  name=$(basename "$job" .sbatch)
  expect=$(sed -n 's/^# expect: //p' "$job" | head -1)
  expect_exit=$(sed -n 's/^# expect-exit: //p' "$job" | head -1)
  start=$(date +%s)
  (cd "$work/jobs" && FEDBAECHI_REPO="$repo" "${on_controller[@]}" sbatch --wait --export=ALL ${nodes:+--nodes="$nodes"} \
     "$repo/$job" > "$work/jobs/$name.submit" 2>&1)
  status=$?
  out=$(ls -t "$work/jobs/"*.out 2>/dev/null | head -1)
  echo "---- $job (exit $status, $(( $(date +%s) - start )) s): ${out:-no output file}"
  [ -n "$out" ] && cat "$out"
  # On several nodes, a job that reports its ranks' hosts (doctor) must report every node.
  spread=yes
  if [ -n "$nodes" ] && [ -n "$out" ] && grep -q "rank(s) on" "$out" && ! grep -q "rank(s) on $nodes host(s)" "$out"; then spread=no; fi
  if [ "$status" -eq "${expect_exit:-0}" ] && [ -n "$out" ] && { [ -z "$expect" ] || grep -qE "$expect" "$out"; } && [ "$spread" = yes ]; then
    passed=$((passed + 1)); echo "---- $job: passed"
  else
    failed=$((failed + 1))
    echo "---- $job: FAILED (exit $status, expected ${expect_exit:-0}${expect:+; output matching: $expect}${nodes:+; ranks on $nodes hosts})"
    cat "$work/jobs/$name.submit"
  fi
  rm -f "$work/jobs/"*.out
done
echo "slurm jobs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
