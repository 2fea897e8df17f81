#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (CI, or a developer's Debian box), for
# tests/test_slurm.py. Needs root. Installs slurm-wlm and munge with apt-get if they are missing,
# writes /etc/slurm/slurm.conf from `slurmd -C` (this machine's CPUs and memory), starts munged,
# slurmctld and slurmd, and waits until `sinfo` shows the node idle.
#
# The cluster has no accounting database (AccountingStorageType=accounting_storage/none): submit
# with `--slurm-status-command squeue --slurm-no-account`, as tests/test_slurm.py does. MinJobAge is
# kept at 300 s so that finished jobs stay visible to squeue long enough for Snakemake's status checks.
#
# Idempotent: if `sinfo` already answers, nothing is started. Daemon logs: /var/log/slurm/.
# Usage: .ci/start-slurm.sh [--no-install]
set -euo pipefail

if sinfo --noheader >/dev/null 2>&1; then
  echo "start-slurm: SLURM already answers: $(sinfo --noheader --format='%n %T %c' | head -1)"
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "start-slurm: must run as root (it writes /etc/slurm and starts daemons)" >&2
  exit 1
fi

if [[ "${1:-}" != "--no-install" ]] && ! command -v slurmctld >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
for tool in munged slurmctld slurmd sinfo sbatch squeue scancel; do
  command -v "$tool" >/dev/null 2>&1 || { echo "start-slurm: $tool not found after installing slurm-wlm and munge" >&2; exit 1; }
done

HOST=$(hostname -s)
# This machine as slurmd sees it, e.g. "NodeName=vm CPUs=2 ... RealMemory=24105"
HW=$(slurmd -C | head -1)
CPUS=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$HW")
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$HW")
if [[ -z "$CPUS" || -z "$MEM" ]]; then
  echo "start-slurm: could not read CPUs and RealMemory from 'slurmd -C': $HW" >&2
  exit 1
fi
MEM=$((MEM * 95 / 100))   # leave the OS some memory; slurmd drains a node that reports less than configured

mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/munge
cat >/etc/slurm/slurm.conf <<EOF
# One-node test cluster written by .ci/start-slurm.sh for $HOST ($CPUS CPUs, $MEM MB).
ClusterName=radpersona-ci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
KillWait=10
SlurmctldTimeout=60
SlurmdTimeout=60
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF

chown munge:munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
if ! pgrep -u munge -x munged >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
fi
slurmctld
slurmd

for _ in $(seq 1 60); do
  state=$(sinfo --noheader --nodes="$HOST" --format='%T' 2>/dev/null || true)
  if [[ "$state" == idle* ]]; then
    echo "start-slurm: node $HOST idle ($CPUS CPUs, $MEM MB); partition main"
    exit 0
  fi
  sleep 1
done
echo "start-slurm: node $HOST did not become idle within 60 s (state: ${state:-none})" >&2
tail -20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1
