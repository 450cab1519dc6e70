# Sourced by scripts/mpi-tests.sh: checkpoints, --resume and faults under mpirun (a rank that throws, a rank killed
# with SIGKILL). Uses $MPIRUN, $BIN, $WORK, ok and fail from mpi-tests.sh; every run is under `timeout`.
REL="$WORK/reliability"
mkdir -p "$REL"
# 400 images / global batch 20 = 20 steps per epoch, so a 30-step run evaluates at step 20 and at the end.
REL_ARGS=(--dataset synthetic --train-limit 400 --test-limit 100 --model mlp --loss clce --batch-size 20
          --log-every 1 --quiet --warmup-epochs 0.5 --lr 0.1)

same_metrics() {  # same_metrics A B RTOL: metrics.jsonl lines agree (timing fields ignored; RTOL 0: exactly)
    python3 - "$1" "$2" "$3" <<'PY'
import json, sys
def lines(p):
    out = []
    for l in open(p):
        d = json.loads(l)
        d.pop("images_per_s", None); d.pop("seconds", None)
        out.append(d)
    return out
a, b, rtol = lines(sys.argv[1]), lines(sys.argv[2]), float(sys.argv[3])
steps = [d["step"] for d in b if "step" in d]
assert steps == sorted(set(steps)), f"duplicate or unordered steps: {steps}"
assert len(a) == len(b), f"{len(a)} vs {len(b)} lines"
worst = 0.0
for x, y in zip(a, b):
    assert x.keys() == y.keys(), f"{sorted(x)} vs {sorted(y)}"
    for k in x:
        if isinstance(x[k], float):
            worst = max(worst, abs(x[k] - y[k]) / max(abs(x[k]), 1e-12))
        elif k != "accuracies":
            assert x[k] == y[k], f"{k}: {x[k]} vs {y[k]}"
print(f"{len(a)} lines, worst rel. diff {worst:.2e}")
sys.exit(0 if worst <= rtol else 1)
PY
}

rel_pids() {  # dtrain processes whose command line mentions $1
    for p in $(pgrep -x dtrain); do
        tr '\0' ' ' < "/proc/$p/cmdline" 2>/dev/null | grep -q -- "$1" && echo "$p"
    done
}

no_leftovers() {  # no_leftovers PATTERN: no dtrain process of that run survives (waits up to 5 s)
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        [ -z "$(rel_pids "$1")" ] && return 0
        sleep 0.5
    done
    return 1
}

checkpoint_step() {  # checkpoint_step DIR: the step recorded in DIR/checkpoint.safetensors
    python3 - "$1/checkpoint.safetensors" 2>/dev/null <<'PY'
import json, struct, sys
with open(sys.argv[1], "rb") as f:
    (n,) = struct.unpack("<Q", f.read(8))
    print(json.loads(f.read(n))["__metadata__"]["step"])
PY
}

seconds_since() { python3 -c "import sys; print(round($(date +%s.%N) - $1, 1))"; }

echo "== reliability: a throwing rank, then --resume is bit-identical (same rank count) or close (other count)"
if timeout 300 $MPIRUN -n 2 "$BIN" train "${REL_ARGS[@]}" --max-steps 30 --out "$REL/full" \
        >"$REL/full.out" 2>&1; then
    ok "uninterrupted run, 2 ranks, 30 steps"
else fail "uninterrupted run"; tail -5 "$REL/full.out"; fi

start=$(date +%s.%N)
timeout 60 $MPIRUN -n 2 "$BIN" train "${REL_ARGS[@]}" --max-steps 30 --out "$REL/cut" --checkpoint-every 7 \
    --fail-at-step 24 --fail-rank 1 >"$REL/cut.out" 2>&1; rc=$?
elapsed=$(seconds_since "$start")
step=$(checkpoint_step "$REL/cut")
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q "rank 1: injected failure after step 24" "$REL/cut.out" \
   && no_leftovers "$REL/cut" && [ "$step" = 21 ]; then
    ok "rank 1 throws after step 24: exit $rc after ${elapsed}s, no rank left, checkpoint at step $step"
else fail "throwing rank: exit $rc after ${elapsed}s, checkpoint step '$step'"; tail -5 "$REL/cut.out"; fi
cp -r "$REL/cut" "$REL/cut3"

if timeout 300 $MPIRUN -n 2 "$BIN" train --resume "$REL/cut" >"$REL/resume.out" 2>&1 \
   && grep -q "resumed from .* at step 21" "$REL/resume.out"; then
    if d=$(same_metrics "$REL/full/metrics.jsonl" "$REL/cut/metrics.jsonl" 0); then
        ok "resumed at step 21 (2 ranks): metrics.jsonl identical to the uninterrupted run's ($d)"
    else fail "resumed metrics differ: $d"; fi
    if d=$(python3 scripts/checkpoint_diff.py "$REL/full/checkpoint.safetensors" "$REL/cut/checkpoint.safetensors" \
            --prefix "" --rtol 0); then
        ok "final parameters and optimiser state bit-identical ($d)"
    else fail "final checkpoint differs: $d"; fi
else fail "resume -n 2"; tail -5 "$REL/resume.out"; fi

if timeout 300 $MPIRUN -n 3 "$BIN" train --resume "$REL/cut3" >"$REL/resume3.out" 2>&1; then
    if d=$(same_metrics "$REL/full/metrics.jsonl" "$REL/cut3/metrics.jsonl" 1e-4); then
        ok "resumed on 3 ranks: metrics within 1e-4 relative ($d)"
    else fail "3-rank resume metrics: $d"; fi
    if d=$(python3 scripts/checkpoint_diff.py "$REL/full/checkpoint.safetensors" "$REL/cut3/checkpoint.safetensors" \
            --rtol 1e-4); then
        ok "resumed on 3 ranks: final parameters within 1e-4 relative ($d)"
    else fail "3-rank resume parameters: $d"; fi
else fail "resume -n 3"; tail -5 "$REL/resume3.out"; fi

echo "== reliability: kill -9 of one rank's process"
timeout 300 $MPIRUN -n 4 "$BIN" train "${REL_ARGS[@]}" --max-steps 100000 --epochs 100000 --out "$REL/kill" \
    --checkpoint-every 5 >"$REL/kill.out" 2>&1 &
job=$!
for _ in $(seq 1 600); do [ -e "$REL/kill/checkpoint.safetensors" ] && break; sleep 0.1; done
sleep 1   # a few more checkpoints: the kill may land during a write
victim=""
for p in $(rel_pids "$REL/kill"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=2" && victim=$p
done
if [ -n "$victim" ]; then
    start=$(date +%s.%N)
    kill -9 "$victim"
    wait "$job"; rc=$?
    elapsed=$(seconds_since "$start")
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && python3 -c "import sys; sys.exit(0 if $elapsed < 30 else 1)" \
       && no_leftovers "$REL/kill"; then
        ok "rank 2 (pid $victim) killed: job exit $rc after ${elapsed}s, no dtrain process left"
    else fail "kill -9: exit $rc after ${elapsed}s, left: $(rel_pids "$REL/kill")"; tail -5 "$REL/kill.out"; fi
    step=$(checkpoint_step "$REL/kill")
    if timeout 300 $MPIRUN -n 4 "$BIN" train --resume "$REL/kill" --max-steps $((step + 5)) \
            >"$REL/kill-resume.out" 2>&1 \
       && [ "$(tail -n 1 "$REL/kill-resume.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["steps"])')" \
            = $((step + 5)) ] \
       && [ -z "$(ls "$REL/kill" | grep '\.tmp\.')" ] \
       && same_metrics "$REL/kill/metrics.jsonl" "$REL/kill/metrics.jsonl" 0 >/dev/null; then
        ok "the checkpoint left by the killed job (step $step) is intact: resumed to step $((step + 5))"
    else fail "resume after kill -9 (checkpoint step $step)"; tail -5 "$REL/kill-resume.out"; fi
else
    fail "kill -9: no checkpoint or no rank-2 process found"; kill -- "$job" 2>/dev/null; wait "$job"
fi

echo "== reliability: bad --resume input exits non-zero, naming the problem"
cp -r "$REL/full" "$REL/bad"
expect_resume_failure() {  # expect_resume_failure NAME PATTERN ARGS...
    local name="$1" pattern="$2"; shift 2
    timeout 60 $MPIRUN -n 2 "$BIN" train "$@" >"$REL/bad.out" 2>&1; local rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q -- "$pattern" "$REL/bad.out" && no_leftovers "$REL/bad"; then
        ok "$name (exit $rc)"
    else fail "$name (exit $rc)"; tail -5 "$REL/bad.out"; fi
}
expect_resume_failure "finished run without a longer --max-steps" "raise --epochs or --max-steps" --resume "$REL/bad"
expect_resume_failure "other batch size" "--batch-size: checkpoint 20, this run 16" --resume "$REL/bad" \
    --batch-size 16 --max-steps 40
expect_resume_failure "other loss" "--loss: checkpoint clce, this run supcon" --resume "$REL/bad" --loss supcon \
    --max-steps 40
python3 - "$REL/bad/checkpoint.safetensors" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[-50] ^= 0x01; open(p, "wb").write(b)
PY
expect_resume_failure "one flipped bit in the checkpoint" "checksum mismatch" --resume "$REL/bad" --max-steps 40
expect_resume_failure "no checkpoint in the folder" "no such file" --resume "$REL/nowhere"

echo "== reliability: a study whose job is killed mid-run continues that run from its checkpoint"
# Two runs of 400 steps (about 2 s each); the job is killed (one rank, SIGKILL) after the first run's first
# checkpoint. Run again, the study continues the cut run and ends exactly where an uninterrupted study does.
STUDY_ARGS=(--dataset synthetic --train-limit 400 --test-limit 100 --model mlp --batch-size 20 --quiet --lr 0.1
            --epochs 20 --max-steps 400 --checkpoint-every 40 --no-plots --grid "seed=0,1")
timeout 300 $MPIRUN -n 2 "$BIN" study "${STUDY_ARGS[@]}" --out "$REL/study-full" >"$REL/study-full.out" 2>&1 \
    || { fail "uninterrupted study"; tail -5 "$REL/study-full.out"; }
timeout 300 $MPIRUN -n 2 "$BIN" study "${STUDY_ARGS[@]}" --out "$REL/study-cut" >"$REL/study-cut.out" 2>&1 &
job=$!
# Run folders are the grid point plus a hash of the run's settings: runs/seed=0_<hash>.
for _ in $(seq 1 600); do compgen -G "$REL/study-cut/runs/seed=0_*/checkpoint.safetensors" >/dev/null && break; sleep 0.05; done
victim=""
for p in $(rel_pids "$REL/study-cut"); do
    tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=1" && victim=$p
done
[ -n "$victim" ] && kill -9 "$victim"
wait "$job"
cut_run=$(compgen -G "$REL/study-cut/runs/seed=0_*" | head -1)
cut_step=$(checkpoint_step "$cut_run")
if [ -n "$victim" ] && [ ! -e "$cut_run/result.json" ] && no_leftovers "$REL/study-cut"; then
    if timeout 300 $MPIRUN -n 2 "$BIN" study "${STUDY_ARGS[@]}" --out "$REL/study-cut" >"$REL/study-again.out" 2>&1 \
       && grep -q "resumed from .* at step $cut_step" "$REL/study-again.out" \
       && d=$(same_metrics "$(compgen -G "$REL/study-full/runs/seed=0_*")/metrics.jsonl" "$cut_run/metrics.jsonl" 0) \
       && cmp -s <(cut -d, -f1-2,24-30 "$REL/study-full/results.csv") <(cut -d, -f1-2,24-30 "$REL/study-cut/results.csv")
    then
        ok "study killed in its first run (checkpoint step $cut_step): continued there, metrics identical ($d)"
    else fail "study continued after kill -9"; tail -5 "$REL/study-again.out"; fi
else
    fail "study kill -9: victim '$victim', cut step '$cut_step', the run finished or processes left"
fi
