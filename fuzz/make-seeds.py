#!/usr/bin/env python3
"""Writes small valid inputs (plus a few near misses) as seed corpora for the fuzz harnesses: fuzz/seeds/<name>/."""
import gzip, json, os, struct, sys, zlib

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "seeds")


def put(harness, name, data):
    os.makedirs(os.path.join(root, harness), exist_ok=True)
    with open(os.path.join(root, harness, name), "wb") as f:
        f.write(data)


def idx(dims, data, dtype=8):
    return bytes([0, 0, dtype, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + bytes(data)


images = idx([2, 3, 3], range(18))
labels = idx([2], [1, 9])
put("idx", "images", images)
put("idx", "labels", labels)
put("idx", "images.gz", gzip.compress(images, mtime=0))
put("idx", "labels.gz", gzip.compress(labels, compresslevel=1, mtime=0))
put("idx", "two-members.gz", gzip.compress(labels[:5], mtime=0) + gzip.compress(labels[5:], mtime=0))
put("idx", "float", idx([1], [0, 0, 0, 0], dtype=0x0D))

pixels = bytes((i * 7) % 256 for i in range(3072))
put("cifar", "cifar10-1", bytes([3]) + pixels)
put("cifar", "cifar100-1", bytes([19, 99]) + pixels)
put("cifar", "cifar10-short", bytes([3]) + pixels[:100])


def safetensors(tensors, metadata, dtrain_checksum):
    """tensors: list of (name, dtype, shape, raw bytes). Mirrors the dtrain checksum of Sources/Checkpoint."""
    header, offset, data = {}, 0, b""
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        data += raw
    meta = dict(metadata)
    if dtrain_checksum:
        u64 = lambda v: struct.pack("<Q", v)
        s = lambda t: u64(len(t.encode())) + t.encode()
        canon = b"".join(s(k) + s(meta[k]) for k in sorted(meta))
        for name in sorted(header):
            e = header[name]
            canon += s(name) + s(e["dtype"]) + u64(len(e["shape"])) + b"".join(u64(d) for d in e["shape"])
            canon += u64(e["data_offsets"][0]) + u64(e["data_offsets"][1])
        meta["dtrain.crc32"] = "%08x" % zlib.crc32(canon + data)
    text = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


weights = struct.pack("<4f", 1.0, -2.0, 0.5, 3.0)
step = struct.pack("<q", 7)
put("safetensors", "dtrain", safetensors([("step", "I64", [1], step), ("param/w", "F32", [2, 2], weights)],
                                         {"format": "dtrain-checkpoint", "step": "7", "config": "{\"tau\": 0.5}"},
                                         True))
put("safetensors", "plain", safetensors([("w", "F32", [2, 2], weights), ("m", "U8", [3], b"\x01\x02\x03")],
                                        {"epoch": "2"}, False))
put("safetensors", "empty", safetensors([], {}, False))
put("safetensors", "scalar", safetensors([("s", "F64", [], struct.pack("<d", 1.5)), ("z", "I32", [0, 4], b"")],
                                         {}, True))

put("config", "empty", b"{}")
put("config", "typical", json.dumps({"dataset": "fashion-mnist", "model": "cnn", "loss": "clce", "lambda": 0.9,
                                     "tau": 0.5, "batch-size": 256, "epochs": 15, "lr": 0.05, "seed": 3,
                                     "eval": ["head", "knn"], "max-steps": 100, "out": "runs/a"}, indent=2).encode())
put("config", "bad-key", b'{"batchsize": 12}')
put("config", "bad-type", b'{"epochs": "15", "weight-decay": 1e-4}')
