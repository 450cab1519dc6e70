# Sourced by scripts/mpi-tests.sh: `dtrain eval`, `fewshot` and `analyze` on 1, 2 and 3 ranks give the run's
# accuracies and the same numbers whatever the rank count (embeddings are per image; episodes depend on the seed).
echo "== eval / fewshot / analyze under mpirun"
ev="$WORK/eval-run"
if ! timeout 300 "$BIN" train --dataset synthetic --train-limit 600 --test-limit 150 --batch-size 60 --epochs 1 \
    --loss ce --classes 0,1,2,3,4,5 --eval head,knn,linear-probe --quiet --out "$ev" >"$ev.summary" 2>"$ev.err"; then
    fail "train for eval"; tail "$ev.err"
else
    for n in 1 2 3; do
        timeout 300 $MPIRUN -n "$n" "$BIN" eval --checkpoint "$ev" --eval head,knn,linear-probe --json \
            >"$ev.eval$n" 2>"$ev.eval$n.err" || { fail "eval -n $n"; tail "$ev.eval$n.err"; continue; }
        if python3 - "$ev.summary" "$ev.eval$n" <<'PY'
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])["accuracies"]
e = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])["accuracies"]
bad = [k for k in s if abs(s[k] - e[k]) > (1.5 / 150 if k == "linear-probe" else 1e-12)]
sys.exit(1 if bad else 0)
PY
        then ok "eval -n $n: the run's accuracies"; else fail "eval -n $n accuracies"; cat "$ev.summary" "$ev.eval$n"; fi
        timeout 300 $MPIRUN -n "$n" "$BIN" fewshot --checkpoint "$ev" --classes 6,7,8,9 --ways 3 --shots 1,5 \
            --episodes 200 --classifier logreg --seed 4 --json 2>/dev/null | tail -1 >"$ev.fs$n"
        timeout 300 $MPIRUN -n "$n" "$BIN" analyze --checkpoint "$ev" --limit 500 --out "$ev.an$n" --json \
            2>/dev/null | tail -1 >"$ev.an$n.json"
    done
    if [ -s "$ev.fs1" ] && cmp -s "$ev.fs1" "$ev.fs2" && cmp -s "$ev.fs1" "$ev.fs3"; then
        ok "fewshot: identical JSON on 1, 2, 3 ranks"; else fail "fewshot differs across ranks"; cat "$ev.fs"*; fi
    if [ -s "$ev.an1/embeddings.npy" ] && cmp -s "$ev.an1/embeddings.npy" "$ev.an2/embeddings.npy" \
        && cmp -s "$ev.an1/embeddings.npy" "$ev.an3/embeddings.npy"; then
        ok "analyze: identical embeddings.npy on 1, 2, 3 ranks"; else fail "analyze embeddings differ across ranks"; fi
    # scripts/compare_fewshot.py on a hand-made study folder whose four runs share that few-shot result: every
    # paired difference is 0, a tie.
    fsd="$WORK/fewshot-study"; mkdir -p "$fsd/runs"
    echo "run,status,loss,seed,test_accuracy" > "$fsd/results.csv"
    for r in clce:0 clce:1 ce:0 ce:1; do
        mkdir -p "$fsd/runs/${r/:/-}"; cp "$ev.fs1" "$fsd/runs/${r/:/-}/fewshot-logreg.json"
        echo "${r/:/-},ok,${r%:*},${r#*:},0.5" >> "$fsd/results.csv"
    done
    if table=$(python3 scripts/compare_fewshot.py "$fsd") && grep -q "| clce − other (points) | 1-shot | 5-shot |" <<<"$table" \
       && grep -q "| ce | +0.00 ± 0.00 tie | +0.00 ± 0.00 tie |" <<<"$table" && grep -q "^\*\*logreg\*\*: 3-way" <<<"$table"; then
        ok "compare_fewshot.py: per-loss means and paired differences"
    else fail "compare_fewshot.py"; echo "$table"; fi
    if timeout 60 "$BIN" fewshot --checkpoint "$ev" --classes 4,5,6 --ways 3 --episodes 10 >/dev/null 2>"$ev.ov"; then
        fail "fewshot accepted trained classes"
    elif grep -q "allow-overlap" "$ev.ov"; then ok "fewshot refuses trained classes"; else fail "overlap message"; fi
    # A rank stalled in an evaluation command: the others' watchdogs end the job, and no process is left behind.
    for cmd in eval fewshot; do
        extra=(--eval head,knn); [ "$cmd" = fewshot ] && extra=(--classes 6,7,8,9 --ways 3 --episodes 50)
        start=$(date +%s.%N)
        timeout 120 $MPIRUN -n 3 "$BIN" "$cmd" --checkpoint "$ev" "${extra[@]}" --stall-rank 1 --stall-timeout 3 \
            >/dev/null 2>"$ev.stall-$cmd"; rc=$?
        elapsed=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
        left=$(pgrep -f -- "--stall-rank 1 --stall-timeout 3" | wc -l)
        if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$left" -eq 0 ] \
           && grep -q "the evaluation made no progress for [0-9.]* s" "$ev.stall-$cmd" \
           && python3 -c "import sys; sys.exit(0 if $elapsed < 60 else 1)"; then
            ok "$cmd -n 3 with rank 1 stalled: the watchdog ended the job after ${elapsed}s (exit $rc)"
        else fail "$cmd with a stalled rank: exit $rc after ${elapsed}s, $left process(es) left"; tail -5 "$ev.stall-$cmd"; fi
        pkill -9 -f -- "--stall-rank 1 --stall-timeout 3" 2>/dev/null
    done
fi
