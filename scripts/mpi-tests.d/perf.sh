# Sourced by scripts/mpi-tests.sh: the training step allocates nothing, and bench/study run under mpirun.
echo "== the training step allocates nothing (heap allocation count independent of the step count)"
# Slack of 20: the count of one process varies by up to ~11 between runs under load (MPI's and OpenBLAS's threads),
# whatever the step count; one allocation per step would add 27 (54 with --chunk-size's two phases).
if cc -shared -fPIC -O2 -o "$WORK/malloc-count.so" scripts/tools/malloc-count.c 2>"$WORK/cc.err"; then
    count_allocations() {  # count_allocations MODEL STEPS [ARGS...]: allocations of one bench process (one rank)
        local model="$1" steps="$2"; shift 2
        rm -f "$WORK/mc"
        DTRAIN_MALLOC_COUNT_FILE="$WORK/mc" LD_PRELOAD="$WORK/malloc-count.so" \
            timeout 300 "$BIN" bench --model "$model" --loss clce --batch-size 32 --warmup-steps 2 --steps "$steps" \
            "$@" >/dev/null 2>&1
        # Every process of the run reports (timeout, MPI's singleton helper, dtrain); dtrain's count is the largest.
        sort -k2 -n "$WORK/mc" | tail -n 1 | awk '{ print $2 }'
    }
    for model in mlp cnn resnet20 vit-tiny; do
        few=$(count_allocations "$model" 3); many=$(count_allocations "$model" 30)
        if [ -n "$few" ] && [ -n "$many" ] && [ "$few" -gt 10000 ] && [ $((many - few)) -le 20 ] && [ $((few - many)) -le 20 ]; then
            ok "$model: $few allocations after 2+3 steps, $many after 2+30 steps"
        else fail "$model allocations grow with steps: '$few' vs '$many'"; fi
    done
    # The gradient-cached step (bench --chunk-size runs an unchunked and a chunked phase, the same steps each).
    for model in mlp cnn; do
        few=$(count_allocations "$model" 3 --chunk-size 8); many=$(count_allocations "$model" 30 --chunk-size 8)
        if [ -n "$few" ] && [ -n "$many" ] && [ "$few" -gt 10000 ] && [ $((many - few)) -le 20 ] && [ $((few - many)) -le 20 ]; then
            ok "$model --chunk-size 8: $few allocations after 2+3 steps per phase, $many after 2+30"
        else fail "$model --chunk-size 8 allocations grow with steps: '$few' vs '$many'"; fi
    done
else fail "cannot build the malloc counter"; cat "$WORK/cc.err"; fi

echo "== bench and study under mpirun"
if timeout 300 $MPIRUN -n 2 "$BIN" bench --model mlp --batch-size 64 --steps 3 --json 2>/dev/null \
    | python3 -c 'import json,sys; d=json.loads(sys.stdin.read().strip().splitlines()[-1]); assert d["ranks"] == 2 and d["imagesPerS"] > 0 and d["sgemmGFLOPs"] > 0 and len(d["perRank"]) == 2, d; assert all(r["peakResidentBytes"] > 0 and any(a["name"] == "parameters" for a in r["arenas"]) for r in d["perRank"]), d; assert abs(sum(r["flopsPerStep"] for r in d["perRank"]) - d["trainFlopsPerImage"] * d["globalBatch"]) < 1e-6 * d["trainFlopsPerImage"] * d["globalBatch"], d'; then
    ok "bench -n 2 --json: per-rank and total figures with the sgemm ceiling, peak RSS and arenas per rank"
else fail "bench -n 2"; fi
if timeout 120 "$BIN" bench loss --n 512 --dim 64 --repeats 2 --json \
    | python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); assert d["seconds"] > 0 and d["gemmFloorSeconds"] > 0, d'; then
    ok "bench loss --json: time and GEMM floor"
else fail "bench loss"; fi
if timeout 600 $MPIRUN -n 2 "$BIN" study --preset ablation --grid "seed=0" --dataset synthetic --train-limit 400 \
        --test-limit 100 --batch-size 40 --epochs 1 --quiet --no-plots --out "$WORK/study" >"$WORK/study.out" 2>&1 \
   && [ "$(($(wc -l < "$WORK/study/results.csv") - 1))" -eq 3 ] && grep -q "clce" "$WORK/study/summary.md"; then
    ok "study --preset ablation -n 2: 3 runs in results.csv and summary.md"
else fail "study under mpirun"; tail -5 "$WORK/study.out"; fi
