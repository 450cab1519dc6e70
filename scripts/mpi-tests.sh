#!/usr/bin/env bash
# Multi-rank tests: dtrain itself under mpirun with 1, 2, 3 and 4 ranks, each inside `timeout`.
# Usage: scripts/mpi-tests.sh [path/to/dtrain]   (default .build/release/dtrain)
set -u
cd "$(dirname "$0")/.."
BIN="${1:-.build/release/dtrain}"
MPIRUN="scripts/mpirun.sh"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
passed=0; failed=0
ok()   { echo "  ok    $1"; passed=$((passed + 1)); }
fail() { echo "  FAIL  $1"; failed=$((failed + 1)); }

json_ok() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); sys.exit(0 if d.get("ok") is True else 1)'; }

echo "== doctor on 1, 2, 3, 4 ranks"
for n in 1 2 3 4; do
    if timeout 120 $MPIRUN -n "$n" "$BIN" doctor --json --iterations 3 2>"$WORK/doctor$n.err" | json_ok; then
        ok "doctor -n $n: \"ok\": true"
    else fail "doctor -n $n"; tail -20 "$WORK/doctor$n.err"; fi
done
if timeout 120 $MPIRUN -n 4 --mca btl tcp,self "$BIN" doctor --json --iterations 3 2>"$WORK/tcp.err" | json_ok; then
    ok "doctor -n 4 over TCP (--mca btl tcp,self)"
else fail "doctor over TCP"; tail -20 "$WORK/tcp.err"; fi
if [ "$(timeout 60 "$BIN" doctor --json --iterations 2 2>/dev/null | json_ok && echo y)" = y ]; then
    ok "doctor without mpirun (one-rank world)"
else fail "doctor without mpirun"; fi

echo "== a failing rank takes the job down"
start=$(date +%s.%N)
timeout 30 $MPIRUN -n 4 "$BIN" doctor --fail-on-rank 2 >/dev/null 2>"$WORK/fail.err"; rc=$?
elapsed=$(python3 -c "print(round($(date +%s.%N) - $start, 2))")
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && python3 -c "import sys; sys.exit(0 if $elapsed < 10 else 1)" \
   && grep -q "rank 2: injected failure" "$WORK/fail.err"; then
    ok "doctor --fail-on-rank 2: exit $rc after ${elapsed}s"
else fail "doctor --fail-on-rank 2: exit $rc after ${elapsed}s"; cat "$WORK/fail.err"; fi

echo "== bad flags get argument-parser's error"
if "$BIN" doctor --no-such-flag >/dev/null 2>"$WORK/flag.err"; then fail "unknown flag accepted"
elif grep -q "Unknown option" "$WORK/flag.err"; then ok "unknown flag rejected"; else fail "unknown flag message"; cat "$WORK/flag.err"; fi
if "$BIN" doctor --blas-threads 0 >/dev/null 2>"$WORK/val.err"; then fail "--blas-threads 0 accepted"
elif grep -q "blas-threads" "$WORK/val.err"; then ok "--blas-threads 0 rejected"; else fail "bad value message"; fi

for extra in scripts/mpi-tests.d/*.sh; do
    [ -e "$extra" ] || continue
    # shellcheck source=/dev/null
    source "$extra"
done

echo
echo "mpi-tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
