#!/usr/bin/env bash
# Run the offline smoke study on a real single-node Slurm through profiles/slurm.
#
# Usage: tests/slurm/run_slurm_test.sh [WORKDIR]
#
# Installs Debian's Slurm and munge (apt-get), writes a loopback-only cluster of
# this machine with one generic GPU (gres File=/dev/null) into WORKDIR, starts
# munged, slurmctld and slurmd, runs `python -m clipstudy.smoke` with
# --workflow-profile profiles/slurm, and checks every sbatch call: GPU rules ask
# for --gpus=1, CPU rules for no GPU, local rules are never submitted, and GPU
# jobs see the GPU Slurm allocated. Stops what it started on exit, munged
# included: the install runs under a policy-rc.d that keeps apt from starting
# daemons, and a munged the install started anyway is stopped as well.
#
# Exit status: 0 passed, 1 failed, 77 skipped (the reason is printed).
# Environment: PYTHON (default: the repo's .venv), CLIPSTUDY_SLURM_TIMEOUT
# (seconds for the workflow run, default 1200), CLIPSTUDY_SLURM_TARGETS (files
# of the smoke study to build; default: one zero-shot score per data source and
# one relevance score, which submits every kind of job; "all": the whole study,
# about 40 Slurm jobs, some 25 minutes on 2 CPUs).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
RUN_TIMEOUT=${CLIPSTUDY_SLURM_TIMEOUT:-1200}
DEFAULT_TARGETS="results/metrics/tiny-vit_seed0/tfds-cassava/train/study.json \
results/metrics/tiny-rn_seed0/miniplaces/val/study.json \
results/relevance/scores/portrait/tiny-vit_seed0/astronaut.csv"
TARGETS=${CLIPSTUDY_SLURM_TARGETS:-$DEFAULT_TARGETS}
[[ $TARGETS == all ]] && TARGETS=""
WORK=$(realpath -m "${1:-$(mktemp -d "${TMPDIR:-/tmp}/clipstudy-slurm.XXXXXX")}")
CONF_LINK=/etc/slurm/slurm.conf
GRES_LINK=/etc/slurm/gres.conf
POLICY=/usr/sbin/policy-rc.d

skip() {
    echo "SKIP: $*"
    exit 77
}

say() {
    echo "[slurm-test $(date +%T)] $*"
}

now() {
    date +%s.%N
}

seconds_since() {
    awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'
}

# --- can this machine host a throw-away cluster? -----------------------------
[[ $(id -u) == 0 ]] || skip "needs root to install Slurm and run its daemons"
command -v apt-get >/dev/null || skip "needs apt-get (Debian/Ubuntu) to install Slurm"
command -v timeout >/dev/null || skip "needs coreutils timeout"
[[ -x $PYTHON ]] || skip "no Python at $PYTHON; set PYTHON to the project's venv"
for file in "$CONF_LINK" "$GRES_LINK"; do
    if [[ -e $file && ! -L $file ]]; then
        skip "$file is a real Slurm configuration; not replacing it"
    fi
done
if pgrep -x slurmctld >/dev/null || pgrep -x slurmd >/dev/null; then
    skip "a Slurm daemon already runs here; not starting a second cluster"
fi

mkdir -p "$WORK"/{etc,state,spool,log,bin,munge}
say "work folder $WORK"
STARTED_PIDS=()
LINKED_CONF=0
WROTE_POLICY=0
# a munged running now is not ours to stop; one that appears later is
MUNGED_BEFORE=$(pgrep -x munged || true)
T_TOTAL=$(now)

cleanup() {
    local status=$?
    set +e
    if command -v scancel >/dev/null && [[ $LINKED_CONF == 1 ]]; then
        # every job of this throw-away cluster is ours
        squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null
    fi
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null
    done
    for pid in "${STARTED_PIDS[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -9 "$pid" 2>/dev/null
    done
    if [[ $LINKED_CONF == 1 ]]; then
        rm -f "$CONF_LINK" "$GRES_LINK"
    fi
    [[ $WROTE_POLICY == 1 ]] && rm -f "$POLICY"
    say "stopped the daemons this test started (${#STARTED_PIDS[@]})"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- install -----------------------------------------------------------------
T_INSTALL=$(now)
PACKAGES=(slurmctld slurmd slurm-client munge)
INSTALLED=$(dpkg-query -W -f='${Status}\n' "${PACKAGES[@]}" 2>/dev/null \
    | grep -c "install ok installed" || true)
if [[ $INSTALLED == "${#PACKAGES[@]}" ]]; then
    say "Slurm and munge already installed"
else
    say "installing ${PACKAGES[*]}"
    export DEBIAN_FRONTEND=noninteractive
    if [[ ! -e $POLICY ]]; then
        # keep the packages' maintainer scripts from starting their daemons
        printf '#!/bin/sh\nexit 101\n' >"$POLICY"
        chmod +x "$POLICY"
        WROTE_POLICY=1
    fi
    if ! apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
        >"$WORK/log/apt.log" 2>&1; then
        apt-get update -q >>"$WORK/log/apt.log" 2>&1 \
            || skip "apt-get update failed (no package mirror?); see $WORK/log/apt.log"
        apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
            >>"$WORK/log/apt.log" 2>&1 \
            || skip "apt-get install failed; see $WORK/log/apt.log"
    fi
fi
if [[ $WROTE_POLICY == 1 ]]; then
    rm -f "$POLICY"
    WROTE_POLICY=0
fi
# a daemon the install started anyway (an existing policy-rc.d allowed it) is ours
for pid in $(pgrep -x munged || true); do
    if ! grep -qx "$pid" <<<"$MUNGED_BEFORE"; then
        say "the install started munged (pid $pid); it is stopped on exit"
        STARTED_PIDS+=("$pid")
    fi
done
# none ran before (checked above), so any slurmctld or slurmd now is the install's
for pid in $(pgrep -x slurmctld || true) $(pgrep -x slurmd || true); do
    say "the install started a Slurm daemon (pid $pid); stopping it"
    kill "$pid"
    STARTED_PIDS+=("$pid")
done
INSTALL_S=$(seconds_since "$T_INSTALL")
say "install: ${INSTALL_S} s"

# --- configure and start -----------------------------------------------------
T_START=$(now)
HOST=$(hostname -s)
# slurmd -C describes this machine; keep its CPU layout, leave memory headroom
NODE=$(slurmd -C | head -n 1)
MEMORY=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODE")
NODE=$(sed "s/RealMemory=[0-9]*/RealMemory=$((MEMORY * 9 / 10))/" <<<"$NODE")
CPUS=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$NODE")

cat >"$WORK/etc/slurm.conf" <<EOF
# A throw-away single-node cluster on loopback for clipstudy's Slurm test.
ClusterName=clipstudy
SlurmctldHost=$HOST(127.0.0.1)
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1024
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
MinJobAge=300
ReturnToService=2
GresTypes=gpu
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
$NODE NodeAddr=127.0.0.1 Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
cat >"$WORK/etc/gres.conf" <<EOF
# One generic GPU; File= is required or Slurm 22.05 drops it.
AutoDetect=off
NodeName=$HOST Name=gpu File=/dev/null
EOF
# srun inside each job reads the default path only; gres.conf lies beside it
mkdir -p /etc/slurm
ln -sfn "$WORK/etc/slurm.conf" "$CONF_LINK"
ln -sfn "$WORK/etc/gres.conf" "$GRES_LINK"
LINKED_CONF=1

if ! (munge -n | unmunge) >/dev/null 2>&1; then
    [[ -s /etc/munge/munge.key ]] || skip "munge has no key at /etc/munge/munge.key"
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    munged --force --foreground >"$WORK/log/munged.out" 2>&1 &
    STARTED_PIDS+=($!)
    for _ in $(seq 50); do
        (munge -n | unmunge) >/dev/null 2>&1 && break
        sleep 0.1
    done
    (munge -n | unmunge) >/dev/null 2>&1 \
        || { say "munged did not start"; cat "$WORK/log/munged.out"; exit 1; }
fi
slurmctld -D -i >"$WORK/log/slurmctld.out" 2>&1 &
STARTED_PIDS+=($!)
slurmd -D >"$WORK/log/slurmd.out" 2>&1 &
STARTED_PIDS+=($!)
STATE=unknown
for _ in $(seq 100); do
    STATE=$(sinfo -h -o %T 2>/dev/null | head -n 1 || true)
    [[ $STATE == idle ]] && break
    sleep 0.3
done
if [[ $STATE != idle ]]; then
    say "node state is '$STATE', not idle; daemon logs follow"
    tail -n 20 "$WORK"/log/slurmctld.log "$WORK"/log/slurmd.log 2>/dev/null
    exit 1
fi
START_S=$(seconds_since "$T_START")
say "cluster up (node idle, $CPUS CPUs, 1 generic GPU): ${START_S} s"

# --- run the smoke study through the Slurm profile ---------------------------
# record every submission, then submit it for real
cat >"$WORK/bin/sbatch" <<EOF
#!/usr/bin/env bash
printf '%q ' "\$@" >>"$WORK/sbatch-calls.txt"
printf '\n' >>"$WORK/sbatch-calls.txt"
exec $(command -v sbatch) "\$@"
EOF
chmod +x "$WORK/bin/sbatch"
export PATH="$WORK/bin:$PATH"

T_RUN=$(now)
say "running the smoke study through profiles/slurm (timeout ${RUN_TIMEOUT} s)"
say "targets: ${TARGETS:-all}"
set +e
# test-only overrides: poll quickly, keep the logs of successful jobs
timeout -s INT -k 30 "$RUN_TIMEOUT" "$PYTHON" -m clipstudy.smoke \
    --cores "$CPUS" "$WORK/smoke" -- \
    --workflow-profile "$REPO/profiles/slurm" \
    --slurm-init-seconds-before-status-checks 2 \
    --seconds-between-status-checks 2 \
    --slurm-keep-successful-logs \
    --slurm-no-account \
    $TARGETS \
    >"$WORK/log/snakemake.out" 2>&1
RUN_STATUS=$?
set -e
RUN_S=$(seconds_since "$T_RUN")
say "workflow finished with status $RUN_STATUS: ${RUN_S} s"
if [[ $RUN_STATUS != 0 ]]; then
    tail -n 60 "$WORK/log/snakemake.out"
    find "$WORK/smoke/.snakemake/slurm_logs" -name '*.log' -newer "$WORK/etc/slurm.conf" \
        -exec sh -c 'echo "== $1"; tail -n 15 "$1"' _ {} \; 2>/dev/null | tail -n 80
    exit 1
fi

# --- check what was submitted ------------------------------------------------
"$PYTHON" "$REPO/tests/slurm/check_submissions.py" \
    --calls "$WORK/sbatch-calls.txt" \
    --rules "$REPO/rules" \
    --workdir "$WORK/smoke" \
    --output "$WORK/log/snakemake.out"

TOTAL_S=$(seconds_since "$T_TOTAL")
printf 'install_s=%s start_s=%s run_s=%s total_s=%s\n' \
    "$INSTALL_S" "$START_S" "$RUN_S" "$TOTAL_S" | tee "$WORK/times.txt"
say "PASSED"
