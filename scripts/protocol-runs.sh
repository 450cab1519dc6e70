#!/usr/bin/env bash
# The reference protocol of issue 4 / docs/RESULTS.md: MLP on Fashion-MNIST, batch 64, 15 epochs, CE and CLCE,
# seeds 0-2, one rank each. Writes OUT/<loss>-seed<k>/{config.json,metrics.jsonl,summary.json}.
# Usage: scripts/protocol-runs.sh [OUT] [extra dtrain flags]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-runs/protocol}"; shift || true
BIN=${BIN:-.build/release/dtrain}
mkdir -p "$OUT"
for loss in ce clce; do
  for seed in 0 1 2; do
    dir="$OUT/$loss-seed$seed"
    [ -f "$dir/summary.json" ] && continue
    "$BIN" train --model mlp --loss "$loss" --batch-size 64 --epochs 15 --seed "$seed" --log-every 500 \
      --out "$dir" "$@" | tail -n 1 > "$dir.summary.tmp"
    mv "$dir.summary.tmp" "$dir/summary.json"
    echo "$loss seed $seed: $(cat "$dir/summary.json")"
  done
done
