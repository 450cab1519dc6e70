# Sourced by scripts/mpi-tests.sh: gradient caching (--chunk-size) under mpirun, and the large-batch study presets.
echo "== gradient caching: --chunk-size gives the unchunked run (3 ranks, uneven shards 9+9+8, chunks of 4)"
# Per-step loss and grad_norm within 1e-4 relative (mlp, vit-tiny); resnet20 --norm group: the first step's gradient
# norm within 1e-4, later ones within 1e-2 (ReLU kinks, as in train.sh's rank-count invariance).
for model in mlp resnet20 vit-tiny; do
    extra=(); later=1e-4; lr=0.2; optim=sgd
    [ "$model" = resnet20 ] && { extra=(--norm group --norm-groups 4); later=1e-2; lr=0.05; }
    [ "$model" = vit-tiny ] && { lr=0.001; optim=adamw; }
    for chunk in none 4; do
        args=(); [ "$chunk" = none ] || args=(--chunk-size "$chunk")
        timeout 300 $MPIRUN -n 3 "$BIN" train --dataset synthetic --train-limit 400 --test-limit 100 --model "$model" \
            "${extra[@]}" --loss clce --batch-size 26 --max-steps 4 --log-every 1 --quiet --warmup-epochs 0 --lr $lr \
            --optimizer $optim "${args[@]}" --out "$WORK/chunk-$model-$chunk" >"$WORK/chunk-$model-$chunk.out" 2>&1 \
            || { fail "train $model --chunk-size $chunk"; tail "$WORK/chunk-$model-$chunk.out"; }
    done
    if worst=$(python3 scripts/compare_runs.py "$WORK/chunk-$model-none/metrics.jsonl" \
                   "$WORK/chunk-$model-4/metrics.jsonl" $later); then
        ok "$model: --chunk-size 4 matches the unchunked run over 4 steps (worst rel. diff $worst)"
    else fail "$model: --chunk-size 4 differs from the unchunked run ($worst)"; fi
done

echo "== gradient caching: BatchNorm is refused on every rank unless the chunk is the whole share"
timeout 60 $MPIRUN -n 2 "$BIN" train --dataset synthetic --train-limit 200 --model resnet20 --batch-size 26 \
    --chunk-size 4 --max-steps 1 >"$WORK/bn.out" 2>"$WORK/bn.err"; rc=$?
if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [ "$(grep -c -- "use --norm group" "$WORK/bn.err")" -ge 1 ]; then
    ok "resnet20 (BatchNorm) --chunk-size 4: exit $rc, names --norm group"
else fail "BatchNorm with --chunk-size: exit $rc"; tail -5 "$WORK/bn.err"; fi
if timeout 120 $MPIRUN -n 2 "$BIN" train --dataset synthetic --train-limit 200 --model resnet20 --batch-size 26 \
        --chunk-size 13 --max-steps 1 --quiet >"$WORK/bn13.out" 2>&1; then
    ok "resnet20 (BatchNorm) --chunk-size 13 = each rank's whole share: accepted"
else fail "BatchNorm with a whole-share chunk refused"; tail -5 "$WORK/bn13.out"; fi

echo "== study presets large-batch and large-batch-steps run end to end (small data, one seed)"
if timeout 600 "$BIN" study --preset large-batch --grid seed=0 --train-limit 4096 --test-limit 300 --epochs 1 \
        --no-epoch-eval --no-plots --quiet --out "$WORK/lb" >"$WORK/lb.out" 2>&1 \
   && [ "$(grep -c ',ok,' "$WORK/lb/results.csv")" -eq 18 ]; then
    ok "--preset large-batch: 18 runs ok (supcon, ce+supcon at 256…4096; clce, ce at 32…256)"
else fail "--preset large-batch"; tail -5 "$WORK/lb.out"; fi
if timeout 600 $MPIRUN -n 2 "$BIN" study --preset large-batch-steps --grid "seed=0 steps=3" \
        --only "loss=supcon,clce" --train-limit 4096 --test-limit 300 --no-plots --quiet --out "$WORK/lbs" \
        >"$WORK/lbs.out" 2>&1 \
   && [ "$(grep -c ',ok,' "$WORK/lbs/results.csv")" -eq 9 ] \
   && python3 - "$WORK/lbs/results.csv" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
assert all(r["steps"] == "3" for r in rows), [r["steps"] for r in rows]
PY
then ok "--preset large-batch-steps --only loss=supcon,clce on 2 ranks: 9 runs of 3 steps each"
else fail "--preset large-batch-steps"; tail -5 "$WORK/lbs.out"; fi

echo "== gradient caching: memory of global batch 4096 in chunks of 256 within 1.3x of an unchunked batch of 256"
# resnet20 --norm group on 28x28 synthetic images: one unchunked step at 256 images, then one chunked step at 4096,
# in one process, the kernel's peak resident size reset before each (dtrain bench --chunk-size).
if timeout 900 "$BIN" bench --model resnet20 --norm group --norm-groups 4 --batch-size 4096 --chunk-size 256 \
        --steps 1 --warmup-steps 0 --json >"$WORK/mem.json" 2>"$WORK/mem.err" \
   && ratio=$(python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print("%.2f %d %d" % (d["peakRatio"], d["referencePeakBytes"] >> 20, d["chunkedPeakBytes"] >> 20)); sys.exit(0 if d["peakRatio"] <= 1.3 else 1)' "$WORK/mem.json"); then
    ok "resnet20 --norm group: peak ratio $ratio (ratio, MB at 256, MB at 4096 chunked)"
else fail "chunked memory: ${ratio:-no report}"; tail -5 "$WORK/mem.err"; fi
