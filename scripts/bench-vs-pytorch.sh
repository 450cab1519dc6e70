#!/usr/bin/env bash
# Side-by-side throughput of dtrain and the PyTorch peer (torch_peer.py) on the same machine, same workload
# (Fashion-MNIST, two views per image, CLCE, one thread / one rank), run back to back, repeated and interleaved
# (the machine may be shared), and the ratio of the medians printed.
#
# Usage: scripts/bench-vs-pytorch.sh [--model mlp|cnn] [--batch-size 256] [--steps 20] [--repeats 3]
#        [--install-torch]
# Environment:
#   DTRAIN      dtrain binary (default .build/release/dtrain; built with `swift build -c release` if missing)
#   TORCH_PEER  path to torch_peer.py (default ../shared/peer/torch_peer.py next to the repository)
#   PYTHON      interpreter that can `import torch` (default .venv-torch/bin/python if present, else python3)
#   DATA_DIR    Fashion-MNIST folder (default /usr/share/datasets/fashion-mnist; the synthetic set if missing)
# --install-torch makes .venv-torch and installs torch from PyPI there. PyPI's Linux torch wheel depends on the
# CUDA runtime wheels (about 4 GB in all), which `import torch` needs even on the CPU, so this installs the full
# wheel. If torch is not usable, the script says so and prints the dtrain side alone.
set -euo pipefail
cd "$(dirname "$0")/.."

model=mlp batch=256 steps=20 repeats=3 install=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) model="$2"; shift 2 ;;
        --batch-size) batch="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --install-torch) install=1; shift ;;
        -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done

DTRAIN="${DTRAIN:-.build/release/dtrain}"
TORCH_PEER="${TORCH_PEER:-../shared/peer/torch_peer.py}"
DATA_DIR="${DATA_DIR:-/usr/share/datasets/fashion-mnist}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv-torch/bin/python ]]; then PYTHON=.venv-torch/bin/python; else PYTHON=python3; fi
fi

if [[ $install == 1 ]]; then
    [[ -x .venv-torch/bin/python ]] || python3 -m venv .venv-torch
    # The full wheel: without its CUDA dependency wheels `import torch` fails even on the CPU.
    .venv-torch/bin/pip install --quiet torch numpy
    PYTHON=.venv-torch/bin/python
fi

[[ -x "$DTRAIN" ]] || swift build -c release
if [[ -f "$DATA_DIR/train-images-idx3-ubyte.gz" || -f "$DATA_DIR/train-images-idx3-ubyte" ]]; then
    dataset=(--dataset fashion-mnist --data-dir "$DATA_DIR")
else
    echo "note: no Fashion-MNIST in $DATA_DIR; dtrain uses its synthetic set" >&2
    dataset=(--dataset synthetic)
fi

have_torch=0
if [[ -f "$TORCH_PEER" ]] && "$PYTHON" -c 'import torch; torch.zeros(2) @ torch.zeros(2)' 2>/dev/null; then
    have_torch=1
else
    echo "note: PyTorch not usable (TORCH_PEER=$TORCH_PEER, PYTHON=$PYTHON): dtrain side only." >&2
    echo "      Try --install-torch, or PYTHON=/path/to/python-with-torch." >&2
fi

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
field() { "$PYTHON" -c "import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])['$1'])"; }
ours=() theirs=()
for ((r = 1; r <= repeats; r++)); do
    json=$("$DTRAIN" bench --model "$model" --loss clce --batch-size "$batch" --steps "$steps" "${dataset[@]}" \
           --json 2>/dev/null)
    ours+=("$(field imagesPerS <<<"$json")")
    if [[ $have_torch == 1 ]]; then
        json=$("$PYTHON" "$TORCH_PEER" --model "$model" --loss clce --batch "$batch" --threads 1 \
               --steps "$steps" --data "$DATA_DIR")
        theirs+=("$(field images_per_s <<<"$json")")
    fi
    echo "run $r: dtrain ${ours[-1]} img/s${theirs:+, pytorch ${theirs[-1]} img/s}" >&2
done

median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
m_ours=$(median "${ours[@]}")
printf 'model %s, batch %d, CLCE, 1 rank / 1 thread, median of %d: dtrain %.0f images/s' \
    "$model" "$batch" "$repeats" "$m_ours"
if [[ $have_torch == 1 ]]; then
    m_theirs=$(median "${theirs[@]}")
    version=$("$PYTHON" -c 'import torch; print(torch.__version__)')
    awk -v a="$m_ours" -v b="$m_theirs" -v v="$version" \
        'BEGIN { printf ", PyTorch %s %.0f images/s, ratio %.2fx\n", v, b, a / b }'
else
    echo ", PyTorch not run"
fi
