# Sourced by scripts/mpi-tests.sh: `--dataset folder` and `--dataset npy` end to end under mpirun: PNG files and
# numpy arrays this test writes (Python's zlib and struct, no imaging library), training on 2 ranks, the recorded
# normalisation, the decoded-image cache on a second run, and clear errors for a corrupt image and an empty class.
echo "== data: image folders and npy arrays under mpirun"
DT="$WORK/data"
python3 - "$DT" <<'PY'
import os, random, struct, sys, zlib
root = sys.argv[1]
def png(path, w, h, rows, color):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    body = struct.pack(">IIBBBBB", w, h, 8, 2 if color else 0, 0, 0, 0)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", body) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
rng = random.Random(0)
# 3 classes of 12x12 RGB images: a bright square in a class-specific corner, plus noise.
for split, n in (("train", 60), ("test", 15)):
    for i in range(n):
        k = i % 3
        rows = []
        for y in range(12):
            row = []
            for x in range(12):
                on = (y < 6) == (k != 1) and (x < 6) == (k != 2)
                row += [min(255, (200 if on else 30) + rng.randrange(40)) for _ in range(3)]
            rows.append(row)
        png(f"{root}/folder/{split}/class{k}/{i:03d}.png", 12, 12, rows, True)
# npy: the same kind of data as uint8 (N, 12, 12) arrays with int64 labels.
def npy(path, descr, shape, data):
    header = "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }" % (descr, "".join(f"{d}, " for d in shape).rstrip(" "))
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode() + data)
for split, n in (("train", 60), ("test", 15)):
    labels = [i % 3 for i in range(n)]
    pixels = bytes(min(255, (200 if (y < 6) == (l == 0) else 30) + rng.randrange(40))
                   for l in labels for y in range(12) for x in range(12))
    npy(f"{root}/npy/{split}/images.npy", "|u1", (n, 12, 12), pixels)
    npy(f"{root}/npy/{split}/labels.npy", "<i8", (n,), struct.pack(f"<{n}q", *labels))
# A corrupt image and an empty class.
os.makedirs(f"{root}/corrupt/train/a", exist_ok=True); os.makedirs(f"{root}/corrupt/test/a", exist_ok=True)
png(f"{root}/corrupt/train/a/good.png", 4, 4, [[0] * 4] * 4, False)
with open(f"{root}/corrupt/train/a/bad.png", "wb") as f: f.write(b"\x89PNG\r\n\x1a\n" + os.urandom(60))
os.makedirs(f"{root}/empty/train/a", exist_ok=True); os.makedirs(f"{root}/empty/train/b", exist_ok=True)
png(f"{root}/empty/train/a/x.png", 4, 4, [[0] * 4] * 4, False)
PY
DATA_ARGS=(--model mlp --loss clce --batch-size 20 --epochs 3 --warmup-epochs 0 --lr 0.1)   # not --quiet: the progress lines are checked
if timeout 240 $MPIRUN -n 2 "$BIN" train --dataset folder --data-dir "$DT/folder" --image-size 14 "${DATA_ARGS[@]}" \
        --out "$DT/run1" >"$DT/run1.out" 2>"$DT/run1.err" \
   && python3 - "$DT/run1" <<'PY'
import json, sys
c = json.load(open(sys.argv[1] + "/config.json"))
assert c["dataset"] == "folder" and len(c["mean"]) == 3 and len(c["std"]) == 3, c
PY
then
    acc=$(tail -1 "$DT/run1.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["test_accuracy"])')
    ok "train --dataset folder (60 PNGs, 3 classes, RGB, resized 12->14) on 2 ranks: test accuracy $acc; mean/std recorded in config.json"
    grep -q "decoded 60/60" "$DT/run1.err" && ls "$DT/folder/.dtrain-cache/"folder-train-*.bin >/dev/null 2>&1 \
        && ok "decoding progress line and cache file beside the data" || fail "no progress line or cache file"
    if timeout 240 $MPIRUN -n 2 "$BIN" train --dataset folder --data-dir "$DT/folder" --image-size 14 "${DATA_ARGS[@]}" \
            --max-steps 2 >/dev/null 2>"$DT/run2.err" && grep -q "train: 60 images from the cache" "$DT/run2.err"; then
        ok "second run reads the decoded images from the cache"
    else fail "second run did not use the cache"; tail -3 "$DT/run2.err"; fi
else fail "train --dataset folder"; tail -5 "$DT/run1.err"; fi
if timeout 240 $MPIRUN -n 2 "$BIN" train --dataset npy --data-dir "$DT/npy" "${DATA_ARGS[@]}" >"$DT/npy.out" 2>"$DT/npy.err"; then
    ok "train --dataset npy (uint8 (60, 12, 12), int64 labels) on 2 ranks: $(tail -1 "$DT/npy.out" | cut -c1-60)…"
else fail "train --dataset npy"; tail -5 "$DT/npy.err"; fi
for case in "corrupt:bad.png: not a readable PNG" "empty:class folder has no .png"; do
    name=${case%%:*}; pattern=${case#*:}
    timeout 60 $MPIRUN -n 2 "$BIN" train --dataset folder --data-dir "$DT/$name" --max-steps 1 >/dev/null \
        2>"$DT/$name.err"; rc=$?
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && grep -q -- "$pattern" "$DT/$name.err"; then
        ok "$name image folder: exit $rc, \"$(grep -o -- "[^/]*$pattern[^;]*" "$DT/$name.err" | head -1 | cut -c1-80)\""
    else fail "$name image folder (exit $rc)"; tail -3 "$DT/$name.err"; fi
done
