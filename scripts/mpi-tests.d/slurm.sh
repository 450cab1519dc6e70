# Sourced by scripts/mpi-tests.sh: dtrain under a real Slurm on this machine (munged, slurmctld and slurmd on
# localhost with a private slurm.conf, MpiDefault=pmix): `dtrain doctor` and a short training run through
# `srun --mpi=pmix -n 4` and through `sbatch scripts/slurm/dtrain.sbatch`, each checked for the requested world
# size (without PMIx, Open MPI starts N one-rank jobs without complaint). The daemons are stopped at the end.
# Needs root (the daemons) and Debian's slurm-wlm, munge and libpmix-dev, installed here when missing.
echo "== slurm: srun --mpi=pmix and sbatch on a one-node Slurm on localhost"
SL="$WORK/slurm"
slurm_skip=""
if [ "$(id -u)" != 0 ]; then
    slurm_skip="not root: starting munged, slurmctld and slurmd needs root"
elif ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null || ! dpkg -s libpmix-dev >/dev/null 2>&1; then
    echo "  installing slurm-wlm, munge, libpmix-dev"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge libpmix-dev >"$WORK/slurm-apt.log" 2>&1 \
        || slurm_skip="apt-get install slurm-wlm munge libpmix-dev failed (see the log above)"
    [ -n "$slurm_skip" ] && tail -5 "$WORK/slurm-apt.log"
fi
if [ -n "$slurm_skip" ] && [ "${CI:-}" = true ]; then fail "slurm: $slurm_skip (CI must run this test)"
elif [ -n "$slurm_skip" ]; then echo "  SKIPPED: $slurm_skip"
else
    mkdir -p "$SL/state" "$SL/spool"
    export SLURM_CONF="$SL/slurm.conf"
    cat >"$SLURM_CONF" <<CONF
ClusterName=dtraintest
SlurmctldHost=localhost
MpiDefault=pmix
ProctrackType=proctrack/linuxproc
ReturnToService=2
SlurmctldPidFile=$SL/slurmctld.pid
SlurmdPidFile=$SL/slurmd.pid
SlurmctldLogFile=$SL/slurmctld.log
SlurmdLogFile=$SL/slurmd.log
SlurmdSpoolDir=$SL/spool
StateSaveLocation=$SL/state
SlurmUser=root
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
NodeName=localhost CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
    # munge: use a running munged, else start one (and stop only that one at the end).
    slurm_munged_pid=""
    if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        [ -f /etc/munge/munge.key ] || mungekey -c
        chown munge:munge /etc/munge/munge.key
        mkdir -p /run/munge && chown munge:munge /run/munge
        su -s /bin/sh munge -c /usr/sbin/munged
        for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
        slurm_munged_pid=$(cat /run/munge/munged.pid 2>/dev/null)
    fi
    slurm_alive() { [ -n "$1" ] && [ -e "/proc/$1" ]; }
    slurm_stop() {  # the daemons this test started, by the pids they wrote
        local pid
        for pid in $slurm_pids $slurm_munged_pid; do kill "$pid" 2>/dev/null; done
        for _ in $(seq 50); do
            slurm_alive "$(echo $slurm_pids | cut -d' ' -f1)" || slurm_alive "$(echo $slurm_pids | cut -s -d' ' -f2)" \
                || break
            sleep 0.2
        done
        unset SLURM_CONF
    }
    /usr/sbin/slurmctld && /usr/sbin/slurmd -N localhost
    for _ in $(seq 50); do [ -s "$SL/slurmctld.pid" ] && [ -s "$SL/slurmd.pid" ] && break; sleep 0.1; done
    slurm_pids="$(cat "$SL/slurmd.pid" 2>/dev/null) $(cat "$SL/slurmctld.pid" 2>/dev/null)"
    state=""
    for _ in $(seq 60); do
        state=$(sinfo -h -o %t 2>/dev/null | head -1)
        [ "$state" = idle ] && break; sleep 0.5
    done
    if [ "$state" != idle ]; then
        fail "slurm: node not idle after 30 s (state \"$state\")"; tail -5 "$SL/slurmctld.log" "$SL/slurmd.log"
    else
        ok "slurm: munged, slurmctld, slurmd up; node localhost idle ($(nproc) CPUs)"
        # -O (overcommit): 4 ranks on a node of fewer CPUs, as --oversubscribe does for mpirun.
        if timeout 180 srun --mpi=pmix -O -n 4 env OPENBLAS_NUM_THREADS=1 "$BIN" doctor --json --iterations 2 \
                >"$SL/doctor.json" 2>"$SL/doctor.err" \
           && python3 - "$SL/doctor.json" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["ok"] is True and d["ranks"] == 4, (d["ok"], d["ranks"])
assert d["launcher"]["kind"] == "srun/pmix" and d["launcher"]["announcedSize"] == 4, d["launcher"]
PY
        then ok "srun --mpi=pmix -n 4 dtrain doctor: 4 ranks, launched by srun/pmix, \"ok\": true"
        else fail "srun dtrain doctor"; tail -5 "$SL/doctor.err" "$SL/doctor.json"; fi

        # train.sh's 5-step rank-count invariance run, compared with the same run on 1 rank.
        SLURM_TRAIN=(--dataset synthetic --train-limit 400 --test-limit 100 --model mlp --loss clce --batch-size 26
                     --max-steps 5 --log-every 1 --quiet --warmup-epochs 0 --lr 0.2)
        if timeout 180 srun --mpi=pmix -O -n 4 env OPENBLAS_NUM_THREADS=1 "$BIN" train "${SLURM_TRAIN[@]}" \
                --out "$SL/srun-train" >"$SL/srun-train.out" 2>&1 \
           && [ "$(tail -1 "$SL/srun-train.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ranks"])')" = 4 ]; then
            [ -f "$WORK/cluster-ref-1/metrics.jsonl" ] || timeout 120 $MPIRUN -n 1 "$BIN" train "${SLURM_TRAIN[@]}" \
                --out "$WORK/cluster-ref-1" >/dev/null 2>&1
            if worst=$(python3 scripts/compare_runs.py "$WORK/cluster-ref-1/metrics.jsonl" "$SL/srun-train/metrics.jsonl")
            then ok "srun -n 4 dtrain train: 4 ranks, matches 1 rank over 5 steps (worst rel. diff $worst)"
            else fail "srun -n 4 train differs from the 1-rank run ($worst)"; fi
        else fail "srun dtrain train"; tail -5 "$SL/srun-train.out"; fi

        if timeout 300 sbatch --wait -O -n 4 --time 5 --output "$SL/sbatch.out" \
                --export ALL,DTRAIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")" \
                scripts/slurm/dtrain.sbatch "${SLURM_TRAIN[@]}" --out "$SL/sbatch-train" >"$SL/sbatch.submit" 2>&1 \
           && grep -q "dtrain doctor: 4 rank(s)" "$SL/sbatch.out" && grep -q "launched by: srun/pmix" "$SL/sbatch.out" \
           && grep -q "OK: every check passed" "$SL/sbatch.out" \
           && [ "$(tail -1 "$SL/sbatch.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["ranks"])')" = 4 ]; then
            ok "sbatch scripts/slurm/dtrain.sbatch (-n 4): doctor ok on 4 ranks, train on 4 ranks ($(head -1 "$SL/sbatch.submit"))"
        else fail "sbatch dtrain.sbatch"; cat "$SL/sbatch.submit"; tail -8 "$SL/sbatch.out"; fi
    fi
    slurm_stop
    still=""; for pid in $slurm_pids; do slurm_alive "$pid" && still="$still $pid"; done
    if [ -n "$still" ]; then fail "slurm: daemons still running after stop:$still"
    else ok "slurm: daemons stopped"; fi
fi
