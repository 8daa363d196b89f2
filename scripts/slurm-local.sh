#!/usr/bin/env bash
# A real one-node Slurm on localhost, for running deploy/slurm/laser-array.sbatch as a user
# would (crates/laser-cli/tests/real_slurm.rs; docs/DISTRIBUTED.md).
#
#   bash scripts/slurm-local.sh install   # Debian's slurm-wlm and munge (apt-get; needs root)
#   bash scripts/slurm-local.sh start     # munged, slurmctld, slurmd; prints SLURM_CONF=...
#   bash scripts/slurm-local.sh status    # exit 0 when a cluster started here answers
#   bash scripts/slurm-local.sh stop
#
# Everything but munge's socket lives under LASER_SLURM_DIR (default /tmp/laser-slurm): the
# configuration (one node with this machine's CPUs and 90% of its memory, one partition),
# state, spool and the daemons' logs. `start` is idempotent: a cluster already answering is
# reused. Exit 3 (with the reason on stderr) when Slurm cannot run here: not root, not
# installed, or a daemon that does not come up.
set -euo pipefail

dir=${LASER_SLURM_DIR:-/tmp/laser-slurm}
conf=$dir/slurm.conf

cannot() {
    echo "slurm-local: $*" >&2
    exit 3
}

install() {
    if command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    [[ $(id -u) == 0 ]] || cannot "installing slurm-wlm and munge needs root"
    command -v apt-get >/dev/null || cannot "no apt-get to install slurm-wlm and munge with"
    local log=${TMPDIR:-/tmp}/slurm-local-apt.log
    export DEBIAN_FRONTEND=noninteractive
    # A fresh machine may have no package lists yet: update once, then try again.
    apt-get install -y -q slurm-wlm munge >"$log" 2>&1 ||
        { apt-get update -q >>"$log" 2>&1 && apt-get install -y -q slurm-wlm munge >>"$log" 2>&1; } ||
        cannot "apt-get install slurm-wlm munge failed (see $log)"
}

answering() {
    [[ -f "$conf" ]] && SLURM_CONF=$conf timeout 10 sinfo -h -o '%T' 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'
}

start() {
    [[ $(id -u) == 0 ]] || cannot "a local cluster runs its daemons as root; run as root"
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null ||
        cannot "slurm-wlm and munge are not installed (bash scripts/slurm-local.sh install)"
    if answering; then
        echo "SLURM_CONF=$conf"
        return 0
    fi
    stop >/dev/null 2>&1 || true
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    # munge: the package made a key; the socket lives where every Slurm client looks for it.
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        [[ -f /etc/munge/munge.key ]] || runuser -u munge -- /usr/sbin/mungekey --create 2>/dev/null ||
            cannot "no munge key and mungekey failed"
        mkdir -p /run/munge /var/log/munge /var/lib/munge
        chown munge:munge /run/munge /var/log/munge /var/lib/munge
        runuser -u munge -- /usr/sbin/munged || cannot "munged did not start"
        sleep 1
        munge -n | unmunge >/dev/null 2>&1 || cannot "munge does not answer"
    fi
    local cpus mem_mb
    cpus=$(nproc)
    mem_mb=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
    cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: a one-node cluster on localhost.
ClusterName=laser-local
SlurmctldHost=localhost
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MpiDefault=none
JobRequeue=1
MinJobAge=3600
NodeName=localhost NodeHostname=$(hostname) CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    slurmctld -f "$conf" || cannot "slurmctld did not start (see $dir/log/slurmctld.log)"
    slurmd -f "$conf" -N localhost || cannot "slurmd did not start (see $dir/log/slurmd.log)"
    for _ in $(seq 60); do
        if answering; then
            echo "SLURM_CONF=$conf"
            return 0
        fi
        sleep 0.5
    done
    cannot "the node did not come up (see $dir/log/)"
}

stop() {
    local pid
    for daemon in slurmd slurmctld; do
        if [[ -f "$dir/$daemon.pid" ]]; then
            pid=$(cat "$dir/$daemon.pid")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
            rm -f "$dir/$daemon.pid"
        fi
    done
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) answering ;;
    *)
        echo "usage: bash scripts/slurm-local.sh install|start|status|stop" >&2
        exit 2
        ;;
esac
