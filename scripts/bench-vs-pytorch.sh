#!/usr/bin/env bash
# Side-by-side throughput and memory of dtrain and the PyTorch peer (torch_peer.py) on the same machine, same
# workload (Fashion-MNIST, two views per image, CLCE, one thread / one rank), for one encoder or all four, run back
# to back, repeated and interleaved (repeat r runs every model, dtrain then PyTorch, before repeat r + 1: the
# machine may be shared), with a final table of medians.
#
# Usage: scripts/bench-vs-pytorch.sh [--model mlp|cnn|resnet20|vit-tiny|all|a,b,...] [--batch-size 256]
#        [--steps N] [--warmup N] [--repeats 3] [--out DIR] [--install-torch]
# --steps / --warmup override every model's default (timed / untimed steps; mlp 20/3, cnn 10/2, resnet20 and
# vit-tiny 5/1: a resnet20 or vit-tiny step takes 1–2 s on one core). --out keeps every run's JSON there.
# Table columns: median images/s of both and their ratio; dtrain's achieved GFLOP/s (FLOPs as performed, see
# docs/PERFORMANCE.md) and its percentage of the sgemm rate measured in the same run (medians); peak resident
# memory of each process in MiB (dtrain: VmHWM, PyTorch: ru_maxrss; both include the dataset, PyTorch's also the
# torch libraries) and the sum of dtrain's arenas.
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

models=mlp batch=256 steps="" warmup="" repeats=3 install=0 out=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --model) models="$2"; shift 2 ;;
        --batch-size) batch="$2"; shift 2 ;;
        --steps) steps="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --repeats) repeats="$2"; shift 2 ;;
        --out) out="$2"; shift 2 ;;
        --install-torch) install=1; shift ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
done
[[ $models == all ]] && models=mlp,cnn,resnet20,vit-tiny
IFS=, read -r -a model_list <<<"$models"
default_steps() { case "$1" in mlp) echo 20 ;; cnn) echo 10 ;; *) echo 5 ;; esac; }
default_warmup() { case "$1" in mlp) echo 3 ;; cnn) echo 2 ;; *) echo 1 ;; esac; }
for m in "${model_list[@]}"; do
    case "$m" in mlp|cnn|resnet20|vit-tiny) ;; *) echo "unknown model $m (mlp, cnn, resnet20, vit-tiny, all)" >&2; exit 2 ;; esac
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
if [[ -z $out ]]; then out=$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-pytorch.XXXXXX"); fi
mkdir -p "$out"

# The peer run inside a wrapper that prints its peak resident size (ru_maxrss, kB on Linux) as a last JSON line.
peer() {
    "$PYTHON" -W ignore::UserWarning -c '
import json, resource, runpy, sys
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
print(json.dumps({"ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))' "$TORCH_PEER" "$@"
}

export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
for ((r = 1; r <= repeats; r++)); do
    for m in "${model_list[@]}"; do
        s=${steps:-$(default_steps "$m")} w=${warmup:-$(default_warmup "$m")}
        "$DTRAIN" bench --model "$m" --loss clce --batch-size "$batch" --steps "$s" --warmup-steps "$w" \
            "${dataset[@]}" --json 2>/dev/null | tail -n 1 >"$out/dtrain-$m-$r.json"
        if [[ $have_torch == 1 ]]; then
            peer --model "$m" --loss clce --batch "$batch" --threads 1 --steps "$s" --warmup "$w" \
                --data "$DATA_DIR" >"$out/pytorch-$m-$r.json"
        fi
        "$PYTHON" - "$out" "$m" "$r" <<'PY' >&2
import json, os, sys
out, m, r = sys.argv[1:]
d = json.loads(open(f"{out}/dtrain-{m}-{r}.json").read().strip().splitlines()[-1])
line = f"run {r} {m}: dtrain {d['imagesPerS']:.0f} img/s"
p = f"{out}/pytorch-{m}-{r}.json"
if os.path.exists(p):
    lines = [json.loads(l) for l in open(p).read().strip().splitlines() if l.startswith("{")]
    line += f", pytorch {next(l for l in lines if 'images_per_s' in l)['images_per_s']:.0f} img/s"
print(line)
PY
    done
done

version=$([[ $have_torch == 1 ]] && "$PYTHON" -c 'import torch; print(torch.__version__)' || echo "")
"$PYTHON" - "$out" "$batch" "$repeats" "$version" "${model_list[@]}" <<'PY'
import json, os, statistics, sys
out, batch, repeats, version, *models = sys.argv[1:]
repeats = int(repeats)
def last_json(path, key):
    for line in reversed(open(path).read().strip().splitlines()):
        if line.startswith("{") and key in line:
            return json.loads(line)
    raise SystemExit(f"{path}: no JSON line with {key}")
mib = lambda b: b / 1048576
print(f"batch {batch}, CLCE, 1 rank / 1 thread, median of {repeats} interleaved runs"
      + (f"; PyTorch {version}" if version else "; PyTorch not run") + f"; runs in {out}")
head = ["model", "dtrain img/s", "PyTorch img/s", "ratio", "dtrain GFLOP/s", "% sgemm", "dtrain MFLOP/img",
        "dtrain peak RSS MiB", "dtrain arenas MiB", "PyTorch peak RSS MiB"]
rows = []
for m in models:
    ours = [last_json(f"{out}/dtrain-{m}-{r}.json", "imagesPerS") for r in range(1, repeats + 1)]
    ips = statistics.median(d["imagesPerS"] for d in ours)
    gf = statistics.median(d["achievedGFLOPs"] for d in ours)
    pct = statistics.median(100 * d["achievedGFLOPs"] / d["sgemmGFLOPs"] for d in ours)
    peak = [d["perRank"][0].get("peakResidentBytes") for d in ours]
    peak = statistics.median(peak) if all(p is not None for p in peak) else None
    arenas = sum(a["bytes"] for a in ours[-1]["perRank"][0]["arenas"])
    theirs = [f"{out}/pytorch-{m}-{r}.json" for r in range(1, repeats + 1)]
    if all(os.path.exists(p) for p in theirs):
        t = statistics.median(last_json(p, "images_per_s")["images_per_s"] for p in theirs)
        trss = statistics.median(last_json(p, "ru_maxrss_kb")["ru_maxrss_kb"] for p in theirs) / 1024
        tcols = [f"{t:.0f}", f"{ips / t:.2f}x"]
        tr = f"{trss:.0f}"
    else:
        tcols, tr = ["-", "-"], "-"
    rows.append([m, f"{ips:.0f}", *tcols, f"{gf:.1f}", f"{pct:.0f}%", f"{ours[-1]['trainFlopsPerImage'] / 1e6:.2f}",
                 f"{mib(peak):.0f}" if peak is not None else "n/a", f"{mib(arenas):.0f}", tr])
widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
print("| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |")
print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
for row in rows:
    print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
PY
