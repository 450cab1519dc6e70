#!/usr/bin/env bash
# The studies published in docs/RESULTS.md (issue 5), one rank each, resumable: run it again with the same
# folder and finished runs are skipped, a run cut short continues from its last epoch checkpoint.
#
#   scripts/studies.sh [mlp-grid|lambda|cnn|large-batch|large-batch-cnn|fewshot|publish|all]...   (default: all)
#
#   mlp-grid  MLP: ce, supcon, ce+supcon, clce, clce-no-hnm × batch 32…1024 × seeds 0–2, 15 epochs (75 runs,
#             about 1.5–3.5 min each on an idle core)
#   lambda    MLP: CLCE λ sweep at batch 64, seeds 0–2 (21 runs)
#   cnn       CNN: ce, clce and ce+supcon at batch 64 and 256, seed 0, 15 epochs (6 runs, about 80 min each
#             on one core, about 40 on two ranks)
#   large-batch  MLP: the design card's contrast, `--preset large-batch` (15 epochs) and `--preset
#             large-batch-steps` (500 steps for every batch size): supcon and ce+supcon at batch 256…4096 against
#             clce and ce at 32…256, seeds 0–2 (54 runs each). Seed by seed, alternating the two protocols, so
#             that a cut-short session leaves whole seeds. About 4 h + 3 h on one idle core.
#   large-batch-cnn  the CNN on both presets with `--chunk-size 256`, seed by seed, each seed's CLCE and CE at 64
#             and SupCon and CE+SupCon at 512 first under both protocols (2 × 54 runs; 50-60 min each on one idle
#             core, or 25-30 on two ranks, at 15 epochs; 1-60 min at 500 steps: days, so run it where there are
#             cores to spare)
#   fewshot   MLP: ce, clce, supcon, ce+supcon, clce-no-hnm trained on classes 0-4, seeds 0-2, from scratch and
#             fine-tuned from the CE run (2 × 15 runs, about a minute each), then 5-way 1- and 5-shot episodes on
#             classes 5-9 (scripts/compare_fewshot.py)
#   publish   copy each study's results.csv, summary.md and plots into docs/results/, with CLCE's paired
#             differences against the other losses (scripts/compare_losses.py)
#
# Environment: RUNS (default runs), DTRAIN (default .build/release/dtrain), MPIRUN (default: none, one rank;
# e.g. MPIRUN="scripts/mpirun.sh -n 2" to give each run two ranks). Two of these commands can run side by
# side on a 2-core machine (e.g. `scripts/studies.sh mlp-grid &  scripts/studies.sh cnn`).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-runs}
DTRAIN=${DTRAIN:-.build/release/dtrain}
read -r -a launcher <<< "${MPIRUN:-}"
export OPENBLAS_NUM_THREADS=1
[ -x "$DTRAIN" ] || { echo "studies.sh: $DTRAIN not found; run 'swift build -c release' first" >&2; exit 2; }

# Flags shared by every study: per-epoch checkpoints (resumable mid-run), no per-epoch evaluation (the final one
# still runs; neither changes a run's result).
common=(--epochs 15 --quiet --no-epoch-eval --checkpoint-every-epochs 1)

study() { "${launcher[@]}" "$DTRAIN" study "$@" "${common[@]}"; }

# One part of a seed-by-seed study: `part WHAT study-arguments…`. Failed runs (exit 1) are noted and the next part
# runs; a study stopped by a signal (exit 130 or 143; its cut run keeps its checkpoint) stops this script too, and
# so does a usage error (64). The script's own status is 1 if any part had failed runs.
failed_parts=()
part() {
    local what=$1 status=0
    shift
    study "$@" || status=$?
    case $status in
        0) ;;
        1) echo "studies.sh: $what: some runs failed (see the summary)" >&2; failed_parts+=("$what") ;;
        *) echo "studies.sh: $what: study ended with status $status; stopping" >&2; exit "$status" ;;
    esac
}

mlp_grid() {
    study --grid "seed=0,1,2 batch-size=32,64,128,256,1024 loss=ce,supcon,ce+supcon,clce,clce-no-hnm" \
        --model mlp --out "$RUNS/mlp-grid"
}
lambda() {
    study --preset lambda-sweep --model mlp --out "$RUNS/mlp-lambda-sweep"
}
cnn() {
    study --grid "batch-size=64,256 loss=ce,clce,ce+supcon" --model cnn --seed 0 --out "$RUNS/cnn-grid"
}
large_batch() {
    for seed in 0 1 2; do
        part "large-batch seed $seed" --preset large-batch --only "seed=$seed" --model mlp \
            --out "$RUNS/mlp-large-batch"
        part "large-batch-steps seed $seed" --preset large-batch-steps --only "seed=$seed" --model mlp \
            --out "$RUNS/mlp-large-batch-steps"
    done
}
large_batch_cnn() {
    # The CNN's 4096-image batches are 8192 views: gradient caching keeps the activations at 2 × 256 views.
    # Each seed starts with the design card's question, CLCE and CE at 64 against SupCon and CE+SupCon at 512,
    # under both protocols (the 500-step cells are cheap: 32 k and 256 k images), so that a machine that allows
    # only a few runs answers it first; then the rest of that seed, 15 epochs and then 500 steps.
    local epochs=(--preset large-batch --model cnn --chunk-size 256 --out "$RUNS/cnn-large-batch")
    local steps=(--preset large-batch-steps --model cnn --chunk-size 256 --out "$RUNS/cnn-large-batch-steps")
    local headline="loss=clce,ce,supcon,ce+supcon batch-size=64,512"
    for seed in 0 1 2; do
        part "cnn large-batch seed $seed, batches 64 and 512" "${epochs[@]}" --only "seed=$seed $headline"
        part "cnn large-batch-steps seed $seed, batches 64 and 512" "${steps[@]}" --only "seed=$seed $headline"
        part "cnn large-batch seed $seed" "${epochs[@]}" --only "seed=$seed"
        part "cnn large-batch-steps seed $seed" "${steps[@]}" --only "seed=$seed"
    done
}
fewshot() {
    # Transfer to novel classes (the paper's few-shot claim): each loss trains the MLP on Fashion-MNIST's classes
    # 0-4 (T-shirt, trouser, pullover, dress, coat) for 15 epochs at batch 64 ("scratch"), and fine-tunes the CE run
    # of the same seed for 15 more epochs at a tenth of the learning rate ("finetune", the paper's setting at small
    # scale: a pretrained encoder, then each loss). Every run's frozen embeddings are scored on 3000 seeded 5-way 1-
    # and 5-shot episodes of the test images of classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), by the
    # prototype and the logistic-regression classifier; scripts/compare_fewshot.py pairs the losses by seed.
    local losses="loss=ce,clce,supcon,ce+supcon,clce-no-hnm" base=(--model mlp --batch-size 64 --classes 0,1,2,3,4)
    part "fewshot: training on classes 0-4" --grid "seed=0,1,2 $losses" "${base[@]}" --out "$RUNS/mlp-fewshot"
    local seed init
    for seed in 0 1 2; do
        init=$(ls -d "$RUNS/mlp-fewshot/runs/seed=${seed}_loss=ce_"*/checkpoint.safetensors 2>/dev/null | head -1)
        [ -n "$init" ] || { echo "studies.sh: fewshot: no CE run of seed $seed to fine-tune" >&2; continue; }
        part "fewshot: fine-tuning seed $seed's CE run" --grid "$losses" --seed "$seed" "${base[@]}" \
            --init "$init" --lr 0.0025 --warmup-epochs 0 --out "$RUNS/mlp-fewshot-finetune"
    done
    local dir run classifier
    for dir in "$RUNS/mlp-fewshot" "$RUNS/mlp-fewshot-finetune"; do
        for run in "$dir"/runs/*/; do
            [ -f "$run/checkpoint.safetensors" ] || continue
            for classifier in prototype logreg; do
                [ -s "$run/fewshot-$classifier.json" ] && continue
                "${launcher[@]}" "$DTRAIN" fewshot --checkpoint "$run" --classes 5,6,7,8,9 --ways 5 --shots 1,5 \
                    --episodes 3000 --classifier "$classifier" --seed 0 --json 2>/dev/null | tail -1 \
                    > "$run/fewshot-$classifier.json.tmp" \
                    && mv "$run/fewshot-$classifier.json.tmp" "$run/fewshot-$classifier.json"
            done
        done
        # The embedding space of the novel classes (isotropy, similarities) for every seed-0 run.
        for run in "$dir"/runs/*/; do
            [ -f "$run/checkpoint.safetensors" ] && [ ! -s "$run/analysis-novel.json" ] || continue
            grep -q '"seed" *: *0\b' "$run/config.json" 2>/dev/null || continue
            "${launcher[@]}" "$DTRAIN" analyze --checkpoint "$run" --classes 5,6,7,8,9 --out "$run/analysis-novel" \
                --force --json 2>/dev/null | tail -1 > "$run/analysis-novel.json.tmp" \
                && mv "$run/analysis-novel.json.tmp" "$run/analysis-novel.json"
        done
        python3 scripts/compare_fewshot.py "$dir" > "$dir/fewshot.md" && cat "$dir/fewshot.md"
    done
}
publish() {
    for name in mlp-grid mlp-lambda-sweep cnn-grid mlp-large-batch mlp-large-batch-steps cnn-large-batch \
        cnn-large-batch-steps mlp-fewshot mlp-fewshot-finetune; do
        local dir="$RUNS/$name"
        [ -f "$dir/results.csv" ] || { echo "studies.sh: $dir has no results yet; skipped"; continue; }
        cp "$dir/results.csv" "docs/results/$name.csv"
        cp "$dir/summary.md" "docs/results/$name-summary.md"
        python3 scripts/compare_losses.py "$dir" > "docs/results/$name-clce-vs-baselines.md" 2>/dev/null || true
        [ -s "docs/results/$name-clce-vs-baselines.md" ] || rm -f "docs/results/$name-clce-vs-baselines.md"
        case "$name" in *large-batch*)
            python3 scripts/compare_large_batch.py "$dir" > "docs/results/$name-small-vs-large.md" 2>/dev/null || true
            [ -s "docs/results/$name-small-vs-large.md" ] || rm -f "docs/results/$name-small-vs-large.md" ;;
        *fewshot*)
            python3 scripts/compare_fewshot.py "$dir" > "docs/results/$name-episodes.md" 2>/dev/null || true
            [ -s "docs/results/$name-episodes.md" ] || rm -f "docs/results/$name-episodes.md"
            # The novel classes' similarity histograms of the seed-0 runs, named by loss.
            local run loss
            for run in "$dir"/runs/*/; do
                [ -f "$run/analysis-novel/similarity.png" ] || continue
                loss=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["loss"])' "$run/config.json")
                cp "$run/analysis-novel/similarity.png" "docs/results/$name-novel-similarity-$loss.png"
            done ;;
        esac
        for png in "$dir"/*.png; do
            [ -f "$png" ] && cp "$png" "docs/results/$name-$(basename "$png")"
        done
        echo "studies.sh: published $dir to docs/results/$name*"
    done
}

[ $# -gt 0 ] || set -- all
for what in "$@"; do
    case "$what" in
        mlp-grid) mlp_grid ;;
        lambda) lambda ;;
        cnn) cnn ;;
        large-batch) large_batch ;;
        large-batch-cnn) large_batch_cnn ;;
        fewshot) fewshot ;;
        publish) publish ;;
        all) mlp_grid; lambda; cnn; large_batch; fewshot; publish ;;
        *) echo "studies.sh: unknown study '$what' (mlp-grid, lambda, cnn, large-batch, large-batch-cnn, fewshot, publish, all)" >&2; exit 2 ;;
    esac
done
if [ ${#failed_parts[@]} -gt 0 ]; then
    echo "studies.sh: runs failed in: ${failed_parts[*]}" >&2
    exit 1
fi
