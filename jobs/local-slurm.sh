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
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
[ "$(id -u)" -eq 0 ] || { echo "local-slurm: must run as root (it starts munged and slurmd)" >&2; exit 2; }
for tool in munged slurmctld slurmd sbatch sinfo scontrol; do
  command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || { echo "local-slurm: $tool missing: apt-get install slurm-wlm munge" >&2; exit 2; }
done
[ $# -ge 1 ] || { echo "usage: bash jobs/local-slurm.sh JOB.sbatch [...]" >&2; exit 2; }

work=$(mktemp -d /tmp/fedbaechi-slurm.XXXXXX)
chmod 755 "$work"
started_munge=0
cleanup() {
  scontrol shutdown >/dev/null 2>&1
  for _ in $(seq 50); do pgrep -f "slurm(ctld|d) .*$work" >/dev/null || break; sleep 0.2; done
  pkill -9 -f "slurm(ctld|d|stepd).*$work" 2>/dev/null
  if [ "$started_munge" = 1 ] && [ -f /run/munge/munged.pid ]; then
    kill "$(cat /run/munge/munged.pid)" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# munge: the authentication Slurm's daemons use between themselves.
if ! pgrep -x munged >/dev/null; then
  mkdir -p /run/munge /etc/munge && chown munge: /run/munge
  [ -f /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null; chown munge: /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
  runuser -u munge -- /usr/sbin/munged || { echo "local-slurm: munged did not start" >&2; exit 1; }
  started_munge=1
fi

host=$(hostname -s)
mkdir -p "$work/state" "$work/spool" "$work/log" "$work/jobs"
chown -R slurm: "$work/state" "$work/log"
chmod 777 "$work/jobs"
cat > "$work/slurm.conf" <<CONF
ClusterName=fedbaechi-test
SlurmctldHost=$host
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
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host CPUs=16 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=60 State=UP
CONF
export SLURM_CONF="$work/slurm.conf"
/usr/sbin/slurmctld -f "$SLURM_CONF" || { echo "local-slurm: slurmctld did not start" >&2; exit 1; }
/usr/sbin/slurmd -f "$SLURM_CONF" || { echo "local-slurm: slurmd did not start" >&2; exit 1; }

for _ in $(seq 100); do
  state=$(sinfo -h -o %T 2>/dev/null | head -1)
  [ "$state" = idle ] && break
  sleep 0.3
done
[ "$state" = idle ] || { echo "local-slurm: the node did not become idle (state: ${state:-none})" >&2; tail -5 "$work/log/"*.log >&2; exit 1; }
echo "local-slurm: node $host idle"

passed=0
failed=0
for job in "$@"; do
  name=$(basename "$job" .sbatch)
  expect=$(sed -n 's/^# expect: //p' "$job" | head -1)
  expect_exit=$(sed -n 's/^# expect-exit: //p' "$job" | head -1)
  start=$(date +%s)
  (cd "$work/jobs" && FEDBAECHI_REPO="$repo" sbatch --wait --export=ALL "$repo/$job" > "$work/jobs/$name.submit" 2>&1)
  status=$?
  out=$(ls -t "$work/jobs/"*.out 2>/dev/null | head -1)
  echo "---- $job (exit $status, $(( $(date +%s) - start )) s): ${out:-no output file}"
  [ -n "$out" ] && cat "$out"
  if [ "$status" -eq "${expect_exit:-0}" ] && [ -n "$out" ] && { [ -z "$expect" ] || grep -qE "$expect" "$out"; }; then
    passed=$((passed + 1)); echo "---- $job: passed"
  else
    failed=$((failed + 1))
    echo "---- $job: FAILED (exit $status, expected ${expect_exit:-0}${expect:+; output matching: $expect})"
    cat "$work/jobs/$name.submit"
  fi
  rm -f "$work/jobs/"*.out
done
echo "slurm jobs: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
