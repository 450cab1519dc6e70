#!/usr/bin/env python3
"""Compare the tensors of two dtrain checkpoints (safetensors), without numpy or the safetensors package.

Usage: scripts/checkpoint_diff.py A.safetensors B.safetensors [--prefix param/] [--rtol 0]

Prints the number of tensors compared and the worst relative difference (|a-b| / max|a| over each tensor);
exits 0 when every tensor named in either file (with the prefix) is in both, with the same dtype and shape, and
the worst difference is <= rtol (rtol 0: bit-identical bytes). Metadata (config, paths, metrics length) is ignored.
"""
import argparse
import json
import struct
import sys


def load(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    data = raw[8 + n:]
    return {name: (e["dtype"], e["shape"], data[e["data_offsets"][0]:e["data_offsets"][1]])
            for name, e in header.items()}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--prefix", default="param/")
    p.add_argument("--rtol", type=float, default=0.0)
    args = p.parse_args()
    a, b = load(args.a), load(args.b)
    names_a = {k for k in a if k.startswith(args.prefix)}
    names_b = {k for k in b if k.startswith(args.prefix)}
    if names_a != names_b or not names_a:
        print(f"tensor names differ: only in A {sorted(names_a - names_b)}, only in B {sorted(names_b - names_a)}")
        return 1
    worst = 0.0
    for name in sorted(names_a):
        (da, sa, ba), (db, sb, bb) = a[name], b[name]
        if (da, sa) != (db, sb):
            print(f"{name}: {da} {sa} vs {db} {sb}")
            return 1
        if ba == bb:
            continue
        if da != "F32":
            print(f"{name}: {da} bytes differ")
            return 1
        xa = struct.unpack(f"<{len(ba) // 4}f", ba)
        xb = struct.unpack(f"<{len(bb) // 4}f", bb)
        scale = max(max(abs(v) for v in xa), 1e-30)
        worst = max(worst, max(abs(u - v) for u, v in zip(xa, xb)) / scale)
    print(f"{len(names_a)} tensors, worst relative difference {worst:.3g}")
    return 0 if worst <= args.rtol else 1


if __name__ == "__main__":
    sys.exit(main())
