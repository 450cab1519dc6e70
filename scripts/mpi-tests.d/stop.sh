# Sourced by scripts/mpi-tests.sh: stopping a job (Ctrl-C of mpirun, SIGTERM of one rank, a second signal), output
# folder ownership, a stalled rank ended by the watchdog, study grids sharing a folder, divergence, and the messages
# and exit statuses of common mistakes. Uses $MPIRUN, $BIN, $WORK, ok and fail; every run is under `timeout`.
ST="$WORK/stop"
mkdir -p "$ST"
# 400 images / global batch 20 = 20 steps per epoch; 240 steps take a few seconds on 4 oversubscribed ranks.
ST_ARGS=(--dataset synthetic --train-limit 400 --test-limit 100 --model mlp --loss clce --batch-size 20
         --log-every 1 --quiet --warmup-epochs 0.5 --lr 0.1 --epochs 12 --max-steps 240)

st_pids() {  # dtrain processes whose command line mentions $1
    for p in $(pgrep -x dtrain); do
        { tr '\0' ' ' < "/proc/$p/cmdline"; } 2>/dev/null | grep -q -- "$1" && echo "$p"
    done
}
st_rank_pid() {  # st_rank_pid PATTERN RANK: the pid of that rank of the job whose command line mentions PATTERN
    for p in $(st_pids "$1"); do
        { tr '\0' '\n' < "/proc/$p/environ"; } 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$p"
    done
}
st_gone() {  # st_gone PATTERN: no dtrain process of that job is left (waits up to 10 s)
    for _ in $(seq 1 20); do [ -z "$(st_pids "$1")" ] && return 0; sleep 0.5; done
    return 1
}
st_wait_lines() {  # st_wait_lines FILE N: wait (up to 60 s) until FILE has at least N lines
    for _ in $(seq 1 600); do
        [ -e "$1" ] && [ "$(wc -l < "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}
st_step() {  # st_step DIR: the step of DIR/checkpoint.safetensors
    python3 - "$1/checkpoint.safetensors" 2>/dev/null <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    print(json.loads(f.read(n))["__metadata__"]["step"])
PY
}
st_same() {  # st_same A B: metrics.jsonl identical but for timing fields
    python3 - "$1" "$2" <<'PY'
import json, sys
def lines(p):
    out = []
    for l in open(p):
        d = json.loads(l); d.pop("images_per_s", None); d.pop("seconds", None); out.append(d)
    return out
a, b = lines(sys.argv[1]), lines(sys.argv[2])
print(f"{len(a)} vs {len(b)} lines")
sys.exit(0 if a == b else 1)
PY
}

st_start() {  # st_start OUT ARGS...: `timeout 300 $MPIRUN ARGS` in the background, with job control on so that its
    # SIGINT is not ignored (a non-interactive shell's background jobs ignore it; a terminal's Ctrl-C is not).
    # Sets job (the timeout's pid) and wrapper (scripts/mpirun.sh's pid, which a Ctrl-C reaches).
    local out="$1"; shift
    set -m
    timeout 300 $MPIRUN "$@" >"$out" 2>&1 &
    job=$!
    set +m
    wrapper=""
    for _ in $(seq 1 50); do wrapper=$(pgrep -P "$job" | head -1); [ -n "$wrapper" ] && break; sleep 0.1; done
}

echo "== stop: Ctrl-C (SIGINT to scripts/mpirun.sh) of a 4-rank job, then --resume is bit-identical"
timeout 300 $MPIRUN -n 4 "$BIN" train "${ST_ARGS[@]}" --out "$ST/ref" >"$ST/ref.out" 2>&1 \
    || { fail "uninterrupted 4-rank reference run"; tail -5 "$ST/ref.out"; }
st_start "$ST/int.out" -n 4 "$BIN" train "${ST_ARGS[@]}" --out "$ST/int"
st_wait_lines "$ST/int/metrics.jsonl" 60
start=$(date +%s.%N)
kill -INT "$wrapper"
wait "$job"; rc=$?
elapsed=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
step=$(st_step "$ST/int")
if [ "$rc" -eq 130 ] && grep -q "stopped by SIGINT after step $step of 240" "$ST/int.out" \
   && grep -q -- "--resume $ST/int" "$ST/int.out" && st_gone "$ST/int" && [ ! -e "$ST/int/.dtrain.lock" ]; then
    ok "Ctrl-C of mpirun: exit $rc after ${elapsed}s, every rank stopped after step $step, checkpoint written"
else fail "Ctrl-C of mpirun: exit $rc, checkpoint step '$step'"; tail -8 "$ST/int.out"; fi
resume_cmd=$(grep -A1 "Continue with" "$ST/int.out" | tail -n 1 | sed 's/^ *//')
if [ -n "$step" ] && timeout 300 $MPIRUN -n 4 "$BIN" train --resume "$ST/int" >"$ST/int-resume.out" 2>&1 \
   && grep -q "resumed from .* at step $step" "$ST/int-resume.out" \
   && d=$(st_same "$ST/ref/metrics.jsonl" "$ST/int/metrics.jsonl") \
   && python3 scripts/checkpoint_diff.py "$ST/ref/checkpoint.safetensors" "$ST/int/checkpoint.safetensors" \
        --prefix "" --rtol 0 >/dev/null; then
    ok "resumed at step $step: metrics.jsonl ($d) and final parameters/optimiser state bit-identical; printed: $resume_cmd"
else fail "resume after Ctrl-C (step '$step')"; tail -5 "$ST/int-resume.out"; fi

# A plain mpirun (no relay) aborts the job on SIGINT: SIGTERM to every rank after 1 s, SIGKILL 1 s later. The
# ranks still stop gracefully on that SIGTERM, and a small model's checkpoint is written in time.
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 timeout 300 mpirun --oversubscribe -x OPENBLAS_NUM_THREADS=1 \
    -n 2 "$BIN" train "${ST_ARGS[@]}" --max-steps 100000 --epochs 10000 --out "$ST/plain" >"$ST/plain.out" 2>&1 &
job=$!
st_wait_lines "$ST/plain/metrics.jsonl" 30
plain_mpirun=$(pgrep -P "$job" -x mpirun)
kill -INT "$plain_mpirun"
# Open MPI 4.1's mpirun has been seen (once in six CI runs) to hang after its ranks exited, their zombies unreaped,
# ignoring timeout's SIGTERM: give it 30 s, then SIGKILL it and say so. What is checked is dtrain's part.
hung=""
for _ in $(seq 1 60); do kill -0 "$job" 2>/dev/null || break; sleep 0.5; done
if kill -0 "$job" 2>/dev/null; then
    hung=", mpirun itself hung after its ranks exited and was killed"
    kill -9 "$plain_mpirun" 2>/dev/null
fi
wait "$job"; rc=$?
step=$(st_step "$ST/plain")
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "stopped by SIGTERM after step $step " "$ST/plain.out" \
   && st_gone "$ST/plain"; then
    ok "SIGINT to a plain mpirun: the ranks' SIGTERM stops them after step $step with the checkpoint (mpirun exit $rc$hung)"
else fail "plain mpirun SIGINT: exit $rc, step '$step'"; tail -5 "$ST/plain.out"; fi

echo "== stop: SIGTERM to one rank stops every rank at the same step; a second signal ends the job at once"
timeout 300 $MPIRUN -n 3 "$BIN" train "${ST_ARGS[@]}" --out "$ST/term" >"$ST/term.out" 2>&1 &
job=$!
st_wait_lines "$ST/term/metrics.jsonl" 40
victim=$(st_rank_pid "$ST/term" 2)
[ -n "$victim" ] && kill -TERM "$victim"
wait "$job"; rc=$?
step=$(st_step "$ST/term")
if [ -n "$victim" ] && [ "$rc" -eq 143 ] && grep -q "stopped by SIGTERM after step $step of 240" "$ST/term.out" \
   && [ "$(grep -c 'stopped by SIGTERM' "$ST/term.out")" -eq 1 ] && st_gone "$ST/term"; then
    ok "SIGTERM to rank 2: exit $rc, all 3 ranks stopped after step $step, one message (rank 0)"
else fail "SIGTERM to one rank: exit $rc, step '$step'"; tail -5 "$ST/term.out"; fi
# The cnn's slower steps let the second signal arrive before the stop is complete (two signals sent at once would
# merge into one pending signal).
timeout 300 $MPIRUN -n 2 "$BIN" train "${ST_ARGS[@]}" --model cnn --batch-size 64 --max-steps 100000 --epochs 10000 \
    --out "$ST/twice" >"$ST/twice.out" 2>&1 &
job=$!
st_wait_lines "$ST/twice/metrics.jsonl" 3
victim=$(st_rank_pid "$ST/twice" 1)
start=$(date +%s.%N)
[ -n "$victim" ] && { kill -INT "$victim"; sleep 0.02; kill -INT "$victim"; }
wait "$job"; rc=$?
elapsed=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
if [ -n "$victim" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "second signal: stopping at once" "$ST/twice.out" \
   && python3 -c "import sys; sys.exit(0 if $elapsed < 20 else 1)" && st_gone "$ST/twice"; then
    ok "two SIGINTs to rank 1: the job ends at once (exit $rc after ${elapsed}s)"
else fail "second signal: exit $rc after ${elapsed}s"; tail -5 "$ST/twice.out"; fi

echo "== stop: output folder ownership"
timeout 300 $MPIRUN -n 2 "$BIN" train "${ST_ARGS[@]}" --max-steps 100000 --epochs 10000 --out "$ST/shared" \
    >"$ST/shared-a.out" 2>&1 &
job=$!
st_wait_lines "$ST/shared/metrics.jsonl" 5
timeout 60 $MPIRUN -n 2 "$BIN" train "${ST_ARGS[@]}" --out "$ST/shared" --overwrite >"$ST/shared-b.out" 2>&1; rc=$?
holder=$(sed -n 's/^pid=//p' "$ST/shared/.dtrain.lock" 2>/dev/null)
if [ "$rc" -eq 74 ] && grep -q "output folder $ST/shared is in use by pid $holder on host" "$ST/shared-b.out" \
   && [ "$(grep -c 'is in use by' "$ST/shared-b.out")" -eq 1 ]; then
    ok "a second job on the same --out is refused (exit $rc) naming the holder (pid $holder)"
else fail "second job on one folder: exit $rc"; tail -5 "$ST/shared-b.out"; fi
kill -TERM "$job"; wait "$job"
timeout 60 $MPIRUN -n 2 "$BIN" train "${ST_ARGS[@]}" --out "$ST/shared" >"$ST/shared-c.out" 2>&1; rc=$?
if [ "$rc" -eq 64 ] && grep -q "holds an interrupted run (checkpoint at step [0-9]* of [0-9]*)" "$ST/shared-c.out" \
   && grep -q -- "--resume $ST/shared" "$ST/shared-c.out" && [ "$(grep -c 'holds an' "$ST/shared-c.out")" -eq 1 ]; then
    ok "train --out over an interrupted run is refused (exit $rc): use --resume or --overwrite"
else fail "train over an interrupted run: exit $rc"; tail -5 "$ST/shared-c.out"; fi
printf 'host=%s\npid=99999999\nstarted=2000-01-01T00:00:00Z\ncommand=dtrain train\n' "$(hostname)" \
    >"$ST/shared/.dtrain.lock"
timeout 120 $MPIRUN -n 2 "$BIN" train --resume "$ST/shared/checkpoint.safetensors" --no-checkpoint \
    --max-steps "$(( $(st_step "$ST/shared") + 3 ))" >"$ST/shared-d.out" 2>&1; rc=$?
if [ "$rc" -eq 0 ] && grep -q "took over the lock of pid 99999999 on host $(hostname)" "$ST/shared-d.out" \
   && [ ! -e "$ST/shared/.dtrain.lock" ]; then
    ok "a stale lock (dead pid, this host) is taken over with a note; --resume accepts the checkpoint file"
else fail "stale lock / --resume FILE: exit $rc"; tail -5 "$ST/shared-d.out"; fi

echo "== stop: a stalled rank (SIGSTOP) is ended by the watchdog"
timeout 300 $MPIRUN -n 3 "$BIN" train "${ST_ARGS[@]}" --max-steps 100000 --epochs 10000 --out "$ST/stall" \
    --step-timeout 3 >"$ST/stall.out" 2>&1 &
job=$!
st_wait_lines "$ST/stall/metrics.jsonl" 20
victim=$(st_rank_pid "$ST/stall" 1)
start=$(date +%s.%N)
[ -n "$victim" ] && kill -STOP "$victim"
wait "$job"; rc=$?
elapsed=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
if [ -n "$victim" ] && [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] \
   && grep -q "no training step finished for [0-9.]* s (the last was step [0-9]*" "$ST/stall.out" \
   && python3 -c "import sys; sys.exit(0 if $elapsed < 30 else 1)" && st_gone "$ST/stall"; then
    ok "rank 1 stopped with SIGSTOP: the watchdog ended the job after ${elapsed}s (exit $rc): $(grep -o 'the last was step [0-9]*' "$ST/stall.out" | head -1)"
else fail "stalled rank: exit $rc after ${elapsed}s"; tail -5 "$ST/stall.out"; fi
for p in $(st_pids "$ST/stall"); do kill -CONT "$p"; kill -9 "$p"; done 2>/dev/null
# The same during the final evaluation (rank 2 stops itself as it starts): the others' watchdogs see no
# evaluation progress.
start=$(date +%s.%N)
timeout 120 $MPIRUN -n 3 "$BIN" train "${ST_ARGS[@]}" --max-steps 6 --eval head,knn,linear-probe \
    --out "$ST/stall-eval" --step-timeout 3 --stall-in-evaluation-rank 2 >"$ST/stall-eval.out" 2>&1; rc=$?
elapsed=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] \
   && grep -q "the evaluation after step 6 made no progress for [0-9.]* s" "$ST/stall-eval.out" \
   && python3 -c "import sys; sys.exit(0 if $elapsed < 60 else 1)" && st_gone "$ST/stall-eval"; then
    ok "rank 2 stopped in the final evaluation: the watchdog ended the job after ${elapsed}s (exit $rc)"
else fail "stalled rank in an evaluation: exit $rc after ${elapsed}s"; tail -5 "$ST/stall-eval.out"; fi
for p in $(st_pids "$ST/stall-eval"); do kill -CONT "$p"; kill -9 "$p"; done 2>/dev/null

echo "== stop: study grids sharing a folder, bad grid values, failed runs"
SG_ARGS=(--dataset synthetic --train-limit 200 --test-limit 50 --model mlp --batch-size 20 --quiet --epochs 1
         --no-plots)
timeout 300 $MPIRUN -n 2 "$BIN" study "${SG_ARGS[@]}" --grid "loss=ce seed=0,1" --out "$ST/study" \
    >"$ST/study-a.out" 2>&1; rc_a=$?
timeout 300 $MPIRUN -n 2 "$BIN" study "${SG_ARGS[@]}" --grid "loss=clce seed=0,1" --out "$ST/study" \
    >"$ST/study-b.out" 2>&1; rc_b=$?
runs=$(ls "$ST/study/runs" 2>/dev/null | wc -l)
rows=$(($(wc -l < "$ST/study/results.csv") - 1))
if [ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ] && [ "$runs" -eq 4 ] && [ "$rows" -eq 4 ] \
   && [ "$(ls "$ST/study/runs" | grep -c '^seed=0_')" -eq 2 ] \
   && grep -q "also holds 2 run(s) of other grids" "$ST/study/summary.md"; then
    ok "two grids in one study folder: 4 run folders ($(ls "$ST/study/runs" | tr '\n' ' ')), 4 rows in results.csv, the summary names the 2 of the other grid"
else fail "shared study folder: exits $rc_a/$rc_b, $runs run folders, $rows rows"; tail -5 "$ST/study-b.out"; fi
STOP_ARGS=(--dataset synthetic --train-limit 400 --test-limit 50 --model mlp --batch-size 20 --quiet --epochs 10
           --no-plots --grid "seed=0,1")
st_start "$ST/study-int.out" -n 2 "$BIN" study "${STOP_ARGS[@]}" --out "$ST/study-int"
for _ in $(seq 1 600); do compgen -G "$ST/study-int/runs/seed=0_*/checkpoint.safetensors" >/dev/null && break; sleep 0.05; done
kill -INT "$wrapper"
wait "$job"; rc=$?
if [ "$rc" -eq 130 ] && grep -q "study: stopped by SIGINT during run runs/seed=0_" "$ST/study-int.out" \
   && timeout 300 $MPIRUN -n 2 "$BIN" study "${STOP_ARGS[@]}" --out "$ST/study-int" >"$ST/study-int2.out" 2>&1 \
   && grep -q "resumed from .*seed=0_.* at step" "$ST/study-int2.out" \
   && [ "$(($(wc -l < "$ST/study-int/results.csv") - 1))" -eq 2 ]; then
    ok "Ctrl-C of a study: exit $rc, run again it continues the cut run from its checkpoint"
else fail "Ctrl-C of a study: exit $rc"; tail -5 "$ST/study-int.out"; tail -3 "$ST/study-int2.out"; fi
timeout 60 $MPIRUN -n 2 "$BIN" study "${SG_ARGS[@]}" --grid "lambda=0.5,2 seed=0" --out "$ST/study-bad" \
    >"$ST/study-bad.out" 2>&1; rc=$?
if [ "$rc" -eq 64 ] && [ "$(grep -c 'lambda=2 seed=0: --lambda must be in \[0, 1\]' "$ST/study-bad.out")" -eq 1 ] \
   && [ ! -e "$ST/study-bad/runs" ]; then
    ok "grid value lambda=2 rejected before the first run (exit $rc, printed once)"
else fail "bad grid value: exit $rc"; tail -5 "$ST/study-bad.out"; fi
timeout 120 $MPIRUN -n 2 "$BIN" study "${SG_ARGS[@]}" --grid "lr=0.05,1e30" --out "$ST/study-fail" \
    >"$ST/study-fail.out" 2>&1; rc=$?
if [ "$rc" -eq 1 ] && grep -q "study: 1 run(s) failed:" "$ST/study-fail.out" \
   && grep -q "runs/lr=1e30_[0-9a-f]*: non-finite" "$ST/study-fail.out"; then
    ok "a study with a failed run exits $rc and lists it"
else fail "study with a failed run: exit $rc"; tail -5 "$ST/study-fail.out"; fi

echo "== stop: divergence and messages"
timeout 120 $MPIRUN -n 2 "$BIN" train --dataset synthetic --train-limit 400 --test-limit 100 --batch-size 20 --quiet \
    --optimizer adamw --lr 1000 --warmup-epochs 0 --epochs 5 >"$ST/div.out" 2>&1; rc=$?
if [ "$rc" -eq 1 ] && grep -q "diverged at step [0-9]*: the loss" "$ST/div.out"; then
    ok "AdamW at lr 1000 stopped (exit $rc): $(grep -o 'diverged at step [0-9]*' "$ST/div.out" | head -1)"
else fail "divergent AdamW: exit $rc"; tail -5 "$ST/div.out"; fi
timeout 60 $MPIRUN -n 2 "$BIN" train --dataset synthetic --tau -1 >"$ST/tau.out" 2>&1; rc=$?
if [ "$rc" -eq 64 ] && [ "$(grep -c -- '--tau must be > 0, got -1.0' "$ST/tau.out")" -eq 1 ]; then
    ok "--tau -1 under mpirun -n 2: one message, exit $rc"
else fail "--tau -1: exit $rc"; cat "$ST/tau.out" | head -5; fi
timeout 60 "$BIN" train --dataset synthetic --tau inf >"$ST/inf.out" 2>&1; rc=$?
if [ "$rc" -eq 64 ] && grep -q -- "--tau must be > 0, got inf" "$ST/inf.out"; then ok "--tau inf rejected (exit $rc)"
else fail "--tau inf: exit $rc"; cat "$ST/inf.out" | head -3; fi
timeout 60 "$BIN" train --dataset synthetic --max-steps 1 --out /proc/dtrain-no/run >"$ST/io.out" 2>&1; rc=$?
if [ "$rc" -eq 74 ] && grep -q "/proc/dtrain-no" "$ST/io.out" && ! grep -q "NSCocoaErrorDomain\|ExitCodeError" "$ST/io.out"
then ok "unwritable --out: plain words with the path and reason, exit $rc"
else fail "unwritable --out: exit $rc"; cat "$ST/io.out" | head -3; fi
timeout 60 "$BIN" train --dataset synthetic --train-limit 10 --batch-size 20 >"$ST/one.out" 2>&1; rc=$?
if [ "$rc" -eq 64 ] && grep -q -- "--batch-size: global batch 20 is larger" "$ST/one.out" \
   && ! grep -q "ExitCodeError" "$ST/one.out"; then
    ok "one-rank runtime error: the flag as typed, no ExitCodeError, exit $rc"
else fail "one-rank error: exit $rc"; cat "$ST/one.out" | head -3; fi
mkdir -p "$ST/corrupt"; head -c 100 /dev/urandom >"$ST/corrupt/checkpoint.safetensors"
timeout 60 $MPIRUN -n 2 "$BIN" train --resume "$ST/corrupt" >"$ST/corrupt.out" 2>&1; rc=$?
if [ "$rc" -eq 65 ] && [ "$(grep -c -- '--resume: .*checkpoint.safetensors' "$ST/corrupt.out")" -eq 1 ]; then
    ok "a corrupt --resume checkpoint: data error, once, exit $rc"
else fail "corrupt --resume checkpoint: exit $rc"; head -5 "$ST/corrupt.out"; fi
timeout 60 $MPIRUN -n 2 "$BIN" doctor --fail-on-rank 7 >"$ST/doc.out" 2>&1; rc=$?
if [ "$rc" -eq 64 ] && [ "$(grep -c 'fail-on-rank 7 is not a rank' "$ST/doc.out")" -eq 1 ]; then
    ok "doctor --fail-on-rank 7 on 2 ranks rejected once (exit $rc)"
else fail "doctor --fail-on-rank 7: exit $rc"; head -5 "$ST/doc.out"; fi
timeout 60 "$BIN" train --dataset synthetic --train-limit 100 --batch-size 20 --epochs 1 --max-steps 9 --quiet \
    >"$ST/cap.out" 2>&1; rc=$?
if [ "$rc" -eq 0 ] && grep -q "note: --max-steps 9 is beyond --epochs 1 (5 steps)" "$ST/cap.out"; then
    ok "--max-steps beyond --epochs is stated"
else fail "--max-steps cap: exit $rc"; tail -3 "$ST/cap.out"; fi
