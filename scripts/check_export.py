#!/usr/bin/env python3
"""Checks a `dtrain export --names torchvision` file from Python: torchvision ResNet names, shapes and dtypes.

Usage: scripts/check_export.py FILE.safetensors --model resnet18 [--classes 10] [--channels 3] [--stem imagenet]

Reads FILE with safetensors.numpy.load_file and compares it with the state dict torchvision's ResNet of that shape
has (resnet20: the CIFAR ResNet-20 with torchvision's naming and 1x1-conv downsampling): every tensor present and
nothing else, float32 weights and buffers of the right shapes, int64 scalar num_batches_tracked. With --stem cifar
conv1 is 3x3 (and there is no max-pool, which has no weights). If torch and torchvision are importable and the model
is a torchvision one, also loads the file with torchvision.models.<model>(num_classes=K).load_state_dict(...,
strict=True) (conv1 replaced by a C-channel one for --channels other than 3, and by the 3x3 stride-1 conv with no
max-pool for --stem cifar).
Prints OK (exit 0) or the problems (exit 1); exit 2 when safetensors or numpy is missing.
"""
import argparse
import sys

try:
    import numpy as np
    from safetensors.numpy import load_file
except ImportError as e:  # pragma: no cover
    print(f"check_export: needs the safetensors and numpy packages ({e})")
    sys.exit(2)

SPECS = {  # model: (block, blocks per stage, stage widths, stem width)
    "resnet18": ("basic", [2, 2, 2, 2], [64, 128, 256, 512], 64),
    "resnet34": ("basic", [3, 4, 6, 3], [64, 128, 256, 512], 64),
    "resnet50": ("bottleneck", [3, 4, 6, 3], [64, 128, 256, 512], 64),
    "resnet101": ("bottleneck", [3, 4, 23, 3], [64, 128, 256, 512], 64),
    "resnet20": ("basic", [3, 3, 3], [16, 32, 64], 16),
}


def expected(model, classes, channels, stem):
    """{name: (dtype, shape)} of the torchvision-named state dict."""
    block, counts, widths, stem_width = SPECS[model]
    out = {}

    def bn(prefix, c):
        for k in ("weight", "bias", "running_mean", "running_var"):
            out[f"{prefix}.{k}"] = ("float32", (c,))
        out[f"{prefix}.num_batches_tracked"] = ("int64", ())

    k = 3 if (stem == "cifar" or model == "resnet20") else 7
    out["conv1.weight"] = ("float32", (stem_width, channels, k, k))
    bn("bn1", stem_width)
    expansion = 4 if block == "bottleneck" else 1
    inplanes = stem_width
    for s, (n, w) in enumerate(zip(counts, widths)):
        for i in range(n):
            p = f"layer{s + 1}.{i}"
            stride = 2 if (i == 0 and s > 0) else 1
            if block == "basic":
                out[f"{p}.conv1.weight"] = ("float32", (w, inplanes, 3, 3)); bn(f"{p}.bn1", w)
                out[f"{p}.conv2.weight"] = ("float32", (w, w, 3, 3)); bn(f"{p}.bn2", w)
            else:
                out[f"{p}.conv1.weight"] = ("float32", (w, inplanes, 1, 1)); bn(f"{p}.bn1", w)
                out[f"{p}.conv2.weight"] = ("float32", (w, w, 3, 3)); bn(f"{p}.bn2", w)
                out[f"{p}.conv3.weight"] = ("float32", (w * 4, w, 1, 1)); bn(f"{p}.bn3", w * 4)
            if i == 0 and (stride != 1 or inplanes != w * expansion):
                out[f"{p}.downsample.0.weight"] = ("float32", (w * expansion, inplanes, 1, 1))
                bn(f"{p}.downsample.1", w * expansion)
            inplanes = w * expansion
    out["fc.weight"] = ("float32", (classes, inplanes))
    out["fc.bias"] = ("float32", (classes,))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--model", default="resnet18", choices=sorted(SPECS))
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--channels", type=int, default=3)
    ap.add_argument("--stem", default="imagenet", choices=["imagenet", "cifar"])
    a = ap.parse_args()

    tensors = load_file(a.file)
    want = expected(a.model, a.classes, a.channels, a.stem)
    problems = []
    for name, (dtype, shape) in want.items():
        if name not in tensors:
            problems.append(f"missing {name} {dtype} {shape}")
            continue
        t = tensors[name]
        if str(t.dtype) != dtype or tuple(t.shape) != shape:
            problems.append(f"{name}: file {t.dtype} {tuple(t.shape)}, expected {dtype} {shape}")
        elif dtype == "float32" and not np.isfinite(t).all():
            problems.append(f"{name}: not finite")
    for name in sorted(set(tensors) - set(want)):
        problems.append(f"unexpected {name} {tensors[name].dtype} {tuple(tensors[name].shape)}")

    torch_note = "torch/torchvision not importable: strict load not tried"
    if not problems and a.model != "resnet20":
        try:
            import torch
            import torchvision
        except ImportError:
            pass
        else:
            net = getattr(torchvision.models, a.model)(num_classes=a.classes)
            if a.stem == "cifar":  # dtrain's CIFAR stem: 3x3 stride-1 conv1, no max-pool
                net.conv1 = torch.nn.Conv2d(a.channels, 64, 3, 1, 1, bias=False)
                net.maxpool = torch.nn.Identity()
            elif a.channels != 3:
                net.conv1 = torch.nn.Conv2d(a.channels, 64, 7, 2, 3, bias=False)
            try:
                net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()}, strict=True)
                torch_note = (f"torchvision.models.{a.model}(num_classes={a.classes})"
                              + (" with conv1 for this stem/channels" if a.stem == "cifar" or a.channels != 3 else "")
                              + ".load_state_dict(strict=True) ok")
            except RuntimeError as e:
                problems.append(f"torchvision strict load failed: {e}")
    elif a.model == "resnet20":
        torch_note = "resnet20 is not a torchvision model: strict load not tried"

    if problems:
        print(f"check_export: {a.file}: {len(problems)} problem(s)")
        for p in problems:
            print("  " + p)
        return 1
    print(f"OK {a.file}: {len(tensors)} tensors match torchvision {a.model} "
          f"({a.channels} channels, {a.classes} classes, {a.stem} stem); {torch_note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
