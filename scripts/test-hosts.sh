#!/usr/bin/env bash
# Test hosts on one machine: two (or three) "hosts" made of Linux namespaces, so that MPI runs with
# ranks on different hosts talk over TCP, as on a cluster, instead of through shared memory.
#
# Each host has its own network namespace (fbh-host1, fbh-host2, ...) and its own UTS namespace
# (hostname fbh-host1, ...). A veth pair joins each host to a bridge that lives in a namespace of
# its own (fbh-bridge), so the machine's own network gets no address and no route: traffic stays
# between the hosts' addresses 10.77.0.1, 10.77.0.2, ... (10.77.0.0/24). Processes share the
# machine's files and process table, which is what lets one build and one checkpoint folder serve
# every host, and the tests find and kill ranks by pid.
#
#   scripts/test-hosts.sh up [HOSTS]          builds HOSTS hosts (default 2); removes a leftover first
#   scripts/test-hosts.sh down                removes them (nothing to remove is fine)
#   scripts/test-hosts.sh check               exits 0 when this machine can build them, else says why
#   scripts/test-hosts.sh list                the hosts that are up: "NAME ADDRESS" per line
#   scripts/test-hosts.sh exec HOST CMD...    runs CMD on HOST (host1, host2, fbh-host1 or 10.77.0.1)
#   scripts/test-hosts.sh mpirun ARGS...      mpirun on host1, ranks spread over every host (map-by node)
#   scripts/test-hosts.sh mpirun-agent HOST CMD...   mpirun's launch agent (its plm_rsh_agent: instead of ssh)
#   scripts/test-hosts.sh link HOST up|down   takes HOST's network link up or down
#
# Needs root, iproute2 (ip) and util-linux (unshare, nsenter).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
prefix=fbh                            # names of the namespaces and hostnames: fbh-bridge, fbh-host1, ...
state=/run/fedbaechi-test-hosts       # the UTS namespaces are bind-mounted here, one file per host
subnet=10.77.0
max_hosts=3

die() { echo "test-hosts: $*" >&2; exit 2; }

# Why this machine cannot build test hosts (empty when it can).
missing_reason() {
  [ "$(id -u)" -eq 0 ] || { echo "needs root (namespaces and links)"; return; }
  local tool
  for tool in ip unshare nsenter; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (apt-get install iproute2 util-linux)"; return; }
  done
  # A container may refuse new namespaces even to root.
  ip netns add "$prefix-probe" 2>/dev/null || { echo "cannot create network namespaces here"; return; }
  ip netns delete "$prefix-probe"
}

# The host number of host1, fbh-host1, 10.77.0.1 (and the like); fails for anything else.
host_number() {
  local name=$1 number
  case "$name" in
    "$prefix"-host[0-9]) number=${name#"$prefix"-host} ;;
    host[0-9]) number=${name#host} ;;
    "$subnet".[0-9]) number=${name#"$subnet".} ;;
    *) return 1 ;;
  esac
  [ "$number" -ge 1 ] && [ "$number" -le "$max_hosts" ] || return 1
  echo "$number"
}

# The hosts that are up, by number.
hosts_up() {
  local number
  for number in $(seq "$max_hosts"); do
    [ -e "/run/netns/$prefix-host$number" ] && echo "$number"
  done
}

down() {
  local number
  for number in $(seq "$max_hosts"); do
    # Processes still inside (a failed test's ranks) keep a namespace alive: end them first.
    if [ -e "/run/netns/$prefix-host$number" ]; then
      ip netns pids "$prefix-host$number" 2>/dev/null | xargs -r kill -9 2>/dev/null
      ip netns delete "$prefix-host$number"
    fi
    if [ -e "$state/host$number.uts" ]; then
      umount "$state/host$number.uts" 2>/dev/null
      rm -f "$state/host$number.uts"
    fi
  done
  # Deleting the bridge's namespace deletes the bridge and the veth ends in it (and so their peers).
  [ -e "/run/netns/$prefix-bridge" ] && ip netns delete "$prefix-bridge"
  rmdir "$state" 2>/dev/null
  return 0
}

up() {
  local hosts=${1:-2} number
  [[ "$hosts" =~ ^[0-9]+$ ]] && [ "$hosts" -ge 2 ] && [ "$hosts" -le "$max_hosts" ] || die "up: 2 to $max_hosts hosts, not '$hosts'"
  local reason
  reason=$(missing_reason)
  [ -z "$reason" ] || die "$reason"
  down  # a leftover of an interrupted run
  set -e
  mkdir -p "$state"
  ip netns add "$prefix-bridge"
  ip -n "$prefix-bridge" link add br0 type bridge
  ip -n "$prefix-bridge" link set br0 up
  for number in $(seq "$hosts"); do
    local host=$prefix-host$number
    ip netns add "$host"
    ip -n "$host" link set lo up
    # The host's end is its eth0; the bridge's end is named after the host.
    ip link add eth0 netns "$host" type veth peer name "host$number" netns "$prefix-bridge"
    ip -n "$prefix-bridge" link set "host$number" master br0
    ip -n "$prefix-bridge" link set "host$number" up
    ip -n "$host" addr add "$subnet.$number/24" dev eth0
    ip -n "$host" link set eth0 up
    # A UTS namespace kept alive by its bind mount (no process needs to hold it), with the host's name.
    touch "$state/host$number.uts"
    unshare --uts="$state/host$number.uts" hostname "$host"
  done
  set +e
  # Each host reaches the others. With no ping on a minimal Debian: a TCP connection to a closed port
  # is refused at once when the peer answers, and times out when it does not.
  for number in $(seq 2 "$hosts"); do
    local tries=0
    until [[ $(in_host 1 timeout 2 bash -c "exec 3<>/dev/tcp/$subnet.$number/9" 2>&1) == *refused* ]]; do
      tries=$((tries + 1))
      [ "$tries" -lt 5 ] || { down; die "up: host1 cannot reach $subnet.$number"; }
    done
  done
  echo "test-hosts: $hosts hosts up: $(for number in $(seq "$hosts"); do printf '%s (%s) ' "$prefix-host$number" "$subnet.$number"; done)"
}

# in_host [--exec] NUMBER CMD...: runs CMD in host NUMBER's network and UTS namespaces; with --exec
# in place of this script, so that CMD keeps its pid (a caller that signals mpirun reaches it).
in_host() {
  local replace=""
  [ "$1" = --exec ] && { replace=exec; shift; }
  local number=$1; shift
  [ -e "/run/netns/$prefix-host$number" ] || die "host$number is not up (scripts/test-hosts.sh up)"
  $replace nsenter --net="/run/netns/$prefix-host$number" --uts="$state/host$number.uts" -- "$@"
}

command=${1:-}
[ $# -gt 0 ] && shift
case "$command" in
  up) up "$@" ;;
  down) down ;;
  list)
    for number in $(hosts_up); do echo "$prefix-host$number $subnet.$number"; done ;;
  check)
    reason=$(missing_reason)
    [ -z "$reason" ] || { echo "$reason"; exit 1; } ;;
  exec)
    [ $# -ge 2 ] || die "usage: exec HOST CMD..."
    number=$(host_number "$1") || die "exec: unknown host '$1'"
    shift
    in_host --exec "$number" "$@" ;;
  mpirun-agent)
    # Open MPI calls its agent as `AGENT HOST orted ARGS...` and, as ssh would, means the words after
    # the host as one shell command line.
    [ $# -ge 2 ] || die "usage: mpirun-agent HOST CMD..."
    number=$(host_number "$1") || die "mpirun-agent: unknown host '$1'"
    shift
    in_host --exec "$number" /bin/sh -c "$*" ;;
  mpirun)
    # mpirun runs on host1 (the other hosts' orted daemons connect back to its address); ranks are
    # placed round-robin over the hosts, one slot each, so that rank r is on host (r mod hosts) + 1
    # and more ranks than hosts oversubscribe (ranks then yield when idle). TCP between hosts and
    # shared memory within one, on the test network only; no binding, since every host has the same
    # cores.
    source "$here/mpi-env.sh"
    hosts=$(hosts_up | sed "s/^/$prefix-host/; s/$/:1/" | paste -sd,)
    [ -n "$hosts" ] || die "mpirun: no test hosts are up (scripts/test-hosts.sh up)"
    in_host --exec 1 mpirun --host "$hosts" --map-by node --oversubscribe --bind-to none \
      --mca plm_rsh_agent "$here/test-hosts.sh mpirun-agent" \
      --mca btl tcp,vader,self --mca btl_tcp_if_include "$subnet.0/24" --mca oob_tcp_if_include "$subnet.0/24" \
      "$@" ;;
  link)
    [ $# -eq 2 ] && { [ "$2" = up ] || [ "$2" = down ]; } || die "usage: link HOST up|down"
    number=$(host_number "$1") || die "link: unknown host '$1'"
    ip -n "$prefix-host$number" link set eth0 "$2" ;;
  *) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
