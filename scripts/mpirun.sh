#!/usr/bin/env bash
# mpirun with the settings these machines need: root allowed, oversubscription allowed (2 cores, up to 4 ranks),
# one OpenBLAS thread per rank forwarded to every rank. Usage: scripts/mpirun.sh -n 4 .build/release/dtrain doctor
#
# Stopping: mpirun cannot forward SIGINT or SIGTERM to the ranks (it aborts the job instead: SIGTERM to every rank,
# SIGKILL a second later, exit 1), but it forwards SIGUSR1 and SIGUSR2, which dtrain reads as SIGINT and SIGTERM.
# So this script runs mpirun in its own session (a terminal's Ctrl-C reaches only this script) and relays Ctrl-C as
# SIGUSR1 and SIGTERM as SIGUSR2: every rank finishes its step, the checkpoint is written, and the job exits 130 or
# 143. A second signal is relayed too (dtrain then stops at once); if the job is still running DTRAIN_STOP_GRACE
# seconds (default 60) after the first signal, mpirun's own abort ends it.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
setsid mpirun --oversubscribe -x OPENBLAS_NUM_THREADS "$@" <&0 &
pid=$!
timer=""
relay() {  # relay SIGNAL: pass it on to mpirun, which forwards it to every rank
    kill -"$1" "$pid" 2>/dev/null
    if [ -z "$timer" ]; then
        ( sleep "${DTRAIN_STOP_GRACE:-60}"; kill -INT "$pid" 2>/dev/null ) &
        timer=$!
    fi
}
trap 'relay USR1' INT
trap 'relay USR2' TERM
while :; do
    wait "$pid"; rc=$?
    kill -0 "$pid" 2>/dev/null || break   # gone (a trapped signal interrupts `wait` with status > 128)
done
[ -n "$timer" ] && kill "$timer" 2>/dev/null
exit "$rc"
