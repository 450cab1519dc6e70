#!/usr/bin/env bash
# mpirun with the settings these machines need: root allowed, oversubscription allowed (2 cores, up to 4 ranks),
# one OpenBLAS thread per rank forwarded to every rank. Usage: scripts/mpirun.sh -n 4 .build/release/dtrain doctor
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
exec mpirun --oversubscribe -x OPENBLAS_NUM_THREADS "$@"
