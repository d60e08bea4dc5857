#!/bin/bash
# Start, stop or query a single-host Slurm cluster (munged + slurmctld + slurmd) that keeps its state,
# logs and config under one folder, with a private munged (other clusters on the host are untouched).
# It installs nothing (see scripts/install-system.sh).
#
#   scripts/slurm-local.sh start  STATE_DIR   # idempotent; prints the SLURM_CONF line to export
#   scripts/slurm-local.sh stop   STATE_DIR   # stops only the daemons this folder started
#   scripts/slurm-local.sh status STATE_DIR
#
# Environment: SLURM_LOCAL_CPUS (default 8: more than the real cores, so 3-rank jobs schedule),
# SLURM_LOCAL_PORT (slurmctld port, default 6817; slurmd uses the next one),
# SLURM_LOCAL_NODES (default 1: the node "localhost"; N > 1: nodes node1..nodeN, one slurmd each on the next
# N ports, all on this host, so that multi-node job layouts run for real; Debian's slurmd runs several per host).
# Recipe: shared/docs/environment.md section 6. Must run as root (munged runs as the munge user).
set -euo pipefail

usage() { echo "usage: $0 start|stop|status STATE_DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
ACTION=$1
mkdir -p "$2"
STATE_DIR=$(cd "$2" && pwd)
CONF=$STATE_DIR/slurm.conf
CPUS=${SLURM_LOCAL_CPUS:-8}
PORT=${SLURM_LOCAL_PORT:-6817}
NODES=${SLURM_LOCAL_NODES:-1}
case $NODES in ''|*[!0-9]*|0) echo "slurm-local: SLURM_LOCAL_NODES must be a positive integer, got '$NODES'" >&2; exit 2 ;; esac
node_names() {  # the node names of this cluster, one per line
  if [ "$NODES" -eq 1 ]; then echo localhost; else seq -f 'node%g' 1 "$NODES"; fi
}
node_lines() {  # NodeName lines: one node on SlurmdPort, or N nodes on the ports after slurmctld's
  if [ "$NODES" -eq 1 ]; then
    echo "SlurmdPort=$((PORT + 1))"
    echo "NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=16000 State=UNKNOWN"
    return
  fi
  local i
  for i in $(seq 1 "$NODES"); do
    echo "NodeName=node$i NodeHostname=localhost NodeAddr=127.0.0.1 Port=$((PORT + i)) CPUs=$CPUS RealMemory=8000 State=UNKNOWN"
  done
}
# munged runs as the munge user, which may not traverse STATE_DIR (pytest's tmp folders are 0700), so its
# socket, pid and log live under /run/slurm-local, in a folder named after STATE_DIR.
MUNGE_DIR=/run/slurm-local/munge-$(printf '%s' "$STATE_DIR" | md5sum | cut -c1-12)
MUNGE_SOCKET=$MUNGE_DIR/munge.socket
export SLURM_CONF=$CONF

alive() {  # alive PIDFILE: true when the file names a running process
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

write_conf() {  # slurm.conf does not expand variables, so the shell writes the paths in
  cat > "$CONF.tmp" <<CONF
# Written by scripts/slurm-local.sh: one node, state under $STATE_DIR
ClusterName=local
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
SlurmdParameters=config_overrides
StateSaveLocation=$STATE_DIR/state
SlurmdSpoolDir=$STATE_DIR/spool-%n
TmpFS=$STATE_DIR/tmp-%n
SlurmctldPidFile=$STATE_DIR/slurmctld.pid
SlurmdPidFile=$STATE_DIR/slurmd-%n.pid
SlurmctldLogFile=$STATE_DIR/slurmctld.log
SlurmdLogFile=$STATE_DIR/slurmd-%n.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SlurmctldPort=$PORT
$(node_lines)
PartitionName=debug Nodes=$(node_names | paste -sd,) Default=YES MaxTime=INFINITE State=UP
CONF
  mv "$CONF.tmp" "$CONF"
}

start_munged() {  # a private munged on a socket inside STATE_DIR, so other clusters are untouched
  if alive "$MUNGE_DIR/munged.pid"; then return; fi
  mkdir -p "$MUNGE_DIR"
  chmod 0755 /run/slurm-local
  chown munge:munge "$MUNGE_DIR"
  chmod 0755 "$MUNGE_DIR"  # munged wants the socket folder searchable by all
  runuser -u munge -- munged --socket="$MUNGE_SOCKET" --pid-file="$MUNGE_DIR/munged.pid" \
    --log-file="$MUNGE_DIR/munged.log" --seed-file="$MUNGE_DIR/munged.seed"
}

wait_idle() {
  for _ in $(seq 1 300); do
    if [ "$(sinfo -h -o %T 2>/dev/null | sort -u)" = idle ]; then return 0; fi
    sleep 0.1
  done
  echo "slurm-local: nodes not idle after 30 s; see $STATE_DIR/slurmctld.log and slurmd-*.log" >&2
  return 1
}

start() {
  local node
  mkdir -p "$STATE_DIR/state"
  alive "$STATE_DIR/slurmctld.pid" || write_conf
  start_munged
  alive "$STATE_DIR/slurmctld.pid" || slurmctld -c
  for node in $(node_names); do
    mkdir -p "$STATE_DIR/spool-$node" "$STATE_DIR/tmp-$node"
    alive "$STATE_DIR/slurmd-$node.pid" || slurmd -N "$node"
  done
  wait_idle
  echo "export SLURM_CONF=$CONF"
}

stop_pid() {  # stop_pid PIDFILE: TERM the process and wait up to 10 s for it to leave
  alive "$1" || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "slurm-local: process $pid ($1) did not stop" >&2
  return 1
}

stop() {
  local file
  if alive "$STATE_DIR/slurmctld.pid"; then scontrol shutdown >/dev/null 2>&1 || true; fi
  for file in "$STATE_DIR"/slurmd-*.pid; do if [ -e "$file" ]; then stop_pid "$file"; fi; done
  stop_pid "$STATE_DIR/slurmctld.pid"
  stop_pid "$MUNGE_DIR/munged.pid"
  rm -rf "$MUNGE_DIR"
  echo "slurm-local: stopped ($STATE_DIR)"
}

status() {
  local name file
  for name in munged slurmctld $(node_names | sed 's/^/slurmd-/'); do
    file=$STATE_DIR/$name.pid
    [ "$name" = munged ] && file=$MUNGE_DIR/munged.pid
    if alive "$file"; then echo "$name: running (pid $(cat "$file"))"; else echo "$name: stopped"; fi
  done
  if alive "$STATE_DIR/slurmctld.pid"; then sinfo -h -o "node %N: %T"; fi
}

case $ACTION in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
