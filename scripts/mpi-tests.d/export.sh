# Sourced by scripts/mpi-tests.sh: `dtrain export` read back from Python, `dtrain embed` under mpirun.
# Synthetic data has one channel, so a tiny CIFAR-10-format folder of random images (8 per file) stands in for the
# 3-channel data torchvision's resnet18 takes. PYTHON (default python3) needs the safetensors and numpy packages
# (.ci/run installs them); without them the Python checks print SKIPPED.
echo "== export: torchvision names read back with safetensors/numpy; embed under mpirun"
PY="${PYTHON:-python3}"
"$PY" - "$WORK/fake-cifar" <<'PY'
import os, random, sys
d = os.path.join(sys.argv[1], "cifar-10-batches-bin"); os.makedirs(d, exist_ok=True)
r = random.Random(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(d, name), "wb") as f:
        for k in range(8):
            f.write(bytes([k % 10]) + bytes(r.getrandbits(8) for _ in range(3072)))
PY
have_py=no
if "$PY" -c 'import safetensors, numpy' 2>/dev/null; then have_py=yes; fi
for stem in cifar imagenet; do
    run="$WORK/export-r18-$stem"
    if ! timeout 300 "$BIN" train --model resnet18 --stem "$stem" --dataset cifar10 --data-dir "$WORK/fake-cifar" \
        --train-limit 32 --test-limit 8 --batch-size 8 --max-steps 2 --quiet --eval head --no-epoch-eval \
        --out "$run" >"$run.out" 2>&1; then fail "train resnet18 --stem $stem for export"; tail "$run.out"; continue; fi
    if ! timeout 120 "$BIN" export --checkpoint "$run" --names torchvision --out "$run.safetensors" 2>"$run.err"; then
        fail "export --names torchvision ($stem stem)"; cat "$run.err"; continue
    fi
    if [ "$have_py" = no ]; then
        echo "  SKIPPED: resnet18 $stem-stem export check: $PY cannot import safetensors and numpy (pip install safetensors numpy)"
    elif out=$("$PY" scripts/check_export.py "$run.safetensors" --model resnet18 --stem "$stem" --channels 3 --classes 10); then
        ok "export resnet18 --stem $stem --names torchvision: $out"
    else fail "export resnet18 --stem $stem: check_export.py"; echo "$out"; fi
done
run="$WORK/export-r18-imagenet"
if timeout 120 "$BIN" export --checkpoint "$run" --out "$run.safetensors" >/dev/null 2>"$WORK/exists.err"; then
    fail "export over an existing file without --force"
elif grep -q -- "--force" "$WORK/exists.err"; then ok "export refuses an existing file without --force"
else fail "export existing-file message"; cat "$WORK/exists.err"; fi

timeout 120 "$BIN" train --model mlp --dataset synthetic --train-limit 64 --test-limit 16 --batch-size 16 --max-steps 1 \
    --quiet --eval head --no-epoch-eval --out "$WORK/export-mlp" >/dev/null 2>&1 || fail "train mlp for export"
if timeout 60 "$BIN" export --checkpoint "$WORK/export-mlp" --names torchvision --out "$WORK/mlp.safetensors" \
    >/dev/null 2>"$WORK/mlp.err"; then fail "export --names torchvision accepted for mlp"
elif grep -q "not a torchvision ResNet" "$WORK/mlp.err" && [ ! -e "$WORK/mlp.safetensors" ]; then
    ok "export --names torchvision refused for mlp"
else fail "export mlp refusal message"; cat "$WORK/mlp.err"; fi

for n in 1 2; do
    timeout 120 $MPIRUN -n "$n" "$BIN" embed --checkpoint "$run" --out "$WORK/emb$n.npy" --logits "$WORK/logits$n.npy" \
        >/dev/null 2>"$WORK/embed$n.err" || { fail "embed -n $n"; cat "$WORK/embed$n.err"; }
done
if cmp -s "$WORK/emb1.npy" "$WORK/emb2.npy" && cmp -s "$WORK/logits1.npy" "$WORK/logits2.npy"; then
    ok "embed under mpirun -n 2 writes the same files as -n 1"
else fail "embed -n 2 differs from -n 1"; fi
# An existing output is kept unless --force: refused by every rank with exit 64, the message printed once, the file
# untouched; with --force it is replaced.
cp "$WORK/emb1.npy" "$WORK/emb1.kept"
timeout 120 $MPIRUN -n 2 "$BIN" embed --checkpoint "$run" --out "$WORK/emb1.npy" >/dev/null 2>"$WORK/embed-exists.err"
rc=$?
if [ "$rc" -eq 64 ] && [ "$(grep -c -- "exists; give --force" "$WORK/embed-exists.err")" -eq 1 ] \
   && cmp -s "$WORK/emb1.npy" "$WORK/emb1.kept"; then
    ok "embed -n 2 onto an existing file: exit 64, one message, file kept"
else fail "embed onto an existing file: exit $rc"; cat "$WORK/embed-exists.err"; fi
if timeout 120 $MPIRUN -n 2 "$BIN" embed --checkpoint "$run" --out "$WORK/emb1.npy" --force >/dev/null 2>&1 \
   && cmp -s "$WORK/emb1.npy" "$WORK/emb1.kept"; then
    ok "embed --force replaces the file (with the same embeddings)"
else fail "embed --force"; fi
if [ "$have_py" = no ]; then
    echo "  SKIPPED: embed .npy check: $PY cannot import numpy"
elif "$PY" -c 'import numpy as np, sys; e = np.load(sys.argv[1]); l = np.load(sys.argv[2]); sys.exit(0 if e.shape == (8, 512) and l.shape == (8, 10) and e.dtype == np.float32 and np.isfinite(e).all() else 1)' \
    "$WORK/emb1.npy" "$WORK/logits1.npy"; then ok "embed .npy files load in numpy: (8, 512) and (8, 10) float32"
else fail "embed .npy files"; fi
