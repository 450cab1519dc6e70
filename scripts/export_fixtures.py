#!/usr/bin/env python3
"""Writes the PyTorch parity fixtures that dtrain's Swift tests compare against (issue 12).

Usage (needs torch, torchvision, safetensors, numpy; the product and its tests never do):

    /work/V/bin/python scripts/export_fixtures.py

Deterministic on CPU (torch.manual_seed(0), one thread). Writes:

  Tests/ModelTests/Fixtures/resnet20.weights.safetensors   ResNet-20 encoder + Linear(64, 10) head, trained-looking BN
  Tests/ModelTests/Fixtures/resnet20.io.safetensors        inputs, eval embeddings/logits, one train-mode forward
  Tests/ModelTests/Fixtures/resnet18.io.safetensors        torchvision resnet18(num_classes=7), formula weights
  Tests/ModelTests/Fixtures/resnet18_f16_probe.safetensors F32 tensors and their F16 / BF16 roundings
  Tests/CheckpointTests/Fixtures/resnet18_f16_probe.safetensors   (a copy: a test target sees only its own resources)
  Tests/DataTests/Fixtures/resize.json                     F.interpolate(bilinear, align_corners=False) cases

Every file is documented in the README.md next to it; the weight formula of resnet18 is in
Tests/ModelTests/Fixtures/README.md, and `formula_tensor` below is its reference implementation.
"""
import copy
import json
import os
import shutil

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_FIXTURES = os.path.join(ROOT, "Tests", "ModelTests", "Fixtures")
CHECKPOINT_FIXTURES = os.path.join(ROOT, "Tests", "CheckpointTests", "Fixtures")
DATA_FIXTURES = os.path.join(ROOT, "Tests", "DataTests", "Fixtures")
# One key only: safetensors writes __metadata__ in hash-map order, so several keys would make the bytes vary by run.
METADATA = {"generator": f"scripts/export_fixtures.py (torch {torch.__version__}, "
                         f"torchvision {torchvision.__version__})"}


# MARK: - ResNet-20 (copied from /work/shared/peer/torch_peer.py, the peer anchor)

class ResNet20(nn.Module):
    """CIFAR ResNet-20 (He et al. 2016, sec. 4.2): 3x3 stem, 3 stages of 3 BasicBlocks (16/32/64 channels),
    projection (1x1 conv + BN) shortcuts where the shape changes, global average pool -> 64-d embedding.
    Parameter names follow torchvision (conv1, bn1, layerN.i.conv1/bn1/conv2/bn2/downsample.0/.1)."""

    def __init__(self, in_chans=1):
        super().__init__()
        from torchvision.models.resnet import BasicBlock
        self.inplanes = 16
        self.conv1 = nn.Conv2d(in_chans, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU(inplace=True)
        layers = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            down = None
            if stride != 1 or self.inplanes != planes:
                down = nn.Sequential(nn.Conv2d(self.inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            blocks = [BasicBlock(self.inplanes, planes, stride, down)] + [BasicBlock(planes, planes) for _ in range(2)]
            self.inplanes = planes
            layers.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = layers
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.embed_dim = 64
        for m in self.modules():  # torchvision's ResNet initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1); nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        return torch.flatten(self.avgpool(self.layer3(self.layer2(self.layer1(x)))), 1)


def contiguous(tensors):
    return {name: t.detach().contiguous().clone() for name, t in tensors.items()}


def export_resnet20():
    encoder = ResNet20(in_chans=1)
    head = nn.Linear(64, 10)
    # Non-trivial BatchNorm state: 5 train-mode passes move running_mean/var (and num_batches_tracked to 5),
    # then the affine parameters are spread around their init values 1 and 0.
    encoder.train()
    with torch.no_grad():
        for _ in range(5):
            encoder(torch.randn(16, 1, 28, 28))
        for m in encoder.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * (2 * torch.rand(m.weight.shape) - 1))
                m.bias.copy_(0.1 * (2 * torch.rand(m.bias.shape) - 1))
    encoder.eval()
    head.eval()

    weights = {"encoder." + k: v for k, v in encoder.state_dict().items()}
    weights.update({"head." + k: v for k, v in head.state_dict().items()})
    save_file(contiguous(weights), os.path.join(MODEL_FIXTURES, "resnet20.weights.safetensors"), metadata=METADATA)

    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad():
        embedding = encoder(x)
        logits = head(embedding)
        trained = copy.deepcopy(encoder).train()
        train_embedding = trained(x)
    io = {"input": x, "embedding": embedding, "logits": logits, "train_embedding": train_embedding,
          "train_bn1_running_mean": trained.bn1.running_mean, "train_bn1_running_var": trained.bn1.running_var}
    save_file(contiguous(io), os.path.join(MODEL_FIXTURES, "resnet20.io.safetensors"), metadata=METADATA)
    return io


# MARK: - resnet18 with formula weights

MASK64 = (1 << 64) - 1


def fnv1a32(text):
    h = 2166136261
    for b in text.encode("utf-8"):
        h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def formula_r(name, count):
    """r in [-1, 1) for elements 0..<count of the tensor `name`: splitmix64 of (fnv1a32(name) << 32) ^ i."""
    i = np.arange(count, dtype=np.uint64)
    x = (np.uint64(fnv1a32(name)) << np.uint64(32)) ^ i
    # numpy wraps uint64 array arithmetic modulo 2^64, as the formula requires.
    x = x + np.uint64(0x9E3779B97F4A7C15)
    z = x
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(11)).astype(np.float64) / float(2 ** 53)
    return 2.0 * u - 1.0


def formula_tensor(name, shape, dtype):
    """The value the README formula assigns to the state-dict entry `name` of `shape`."""
    if name.endswith("num_batches_tracked"):
        return torch.full(shape, 1000, dtype=torch.int64)
    count = int(np.prod(shape)) if len(shape) > 0 else 1
    r = formula_r(name, count)
    if len(shape) >= 2:
        fan_in = int(np.prod(shape[1:]))
        values = r * np.sqrt(3.0) * np.sqrt(1.0 / fan_in)
    elif name.endswith("running_mean"):
        values = 0.1 * r
    elif name.endswith("running_var"):
        values = 1.0 + 0.5 * r
    elif name.endswith(".weight"):
        values = 1.0 + 0.2 * r
    else:
        values = 0.1 * r
    assert dtype == torch.float32, (name, dtype)
    return torch.from_numpy(values.astype(np.float32).reshape(shape))


def load_formula(model):
    state = model.state_dict()
    model.load_state_dict({k: formula_tensor(k, tuple(v.shape), v.dtype) for k, v in state.items()})
    return model


def export_resnet18():
    model = load_formula(torchvision.models.resnet18(num_classes=7)).eval()
    x = torch.randn(2, 3, 32, 32)
    fc = model.fc
    with torch.no_grad():
        model.fc = nn.Identity()
        embedding = model(x)
        model.fc = fc
        logits = model(x)
        assert torch.allclose(fc(embedding), logits, atol=1e-5)

        cifar = copy.deepcopy(model)
        cifar.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        cifar.conv1.weight.copy_(formula_tensor("conv1.weight", (64, 3, 3, 3), torch.float32))
        cifar.maxpool = nn.Identity()
        cifar.eval()
        cifar.fc = nn.Identity()
        cifar_embedding = cifar(x)
        cifar.fc = fc
        cifar_logits = cifar(x)
    io = {"input": x, "embedding": embedding, "logits": logits,
          "cifar_embedding": cifar_embedding, "cifar_logits": cifar_logits}
    save_file(contiguous(io), os.path.join(MODEL_FIXTURES, "resnet18.io.safetensors"), metadata=METADATA)

    # F16 / BF16 probe: the first 3 formula tensors, plus special values, each as F32, F16, BF16 and the exact
    # F32 widening of the F16 / BF16 roundings (what a reader must produce).
    probe = {}
    first3 = list(model.state_dict().items())[:3]
    specials = torch.tensor([0.0, -0.0, 1.0, -2.5, 65504.0, 6.103515625e-05, 5.960464477539063e-08,
                             -3.0e-06, 1.0e-40, 3.0e38, float("inf"), float("-inf"), float("nan"), 1.0 / 3.0],
                            dtype=torch.float32)
    for name, t in first3 + [("specials", specials)]:
        t = t.detach().float().contiguous()
        probe[name + ".f32"] = t
        probe[name + ".f16"] = t.half()
        probe[name + ".bf16"] = t.bfloat16()
        probe[name + ".f16_as_f32"] = t.half().float()
        probe[name + ".bf16_as_f32"] = t.bfloat16().float()
    probe_path = os.path.join(MODEL_FIXTURES, "resnet18_f16_probe.safetensors")
    save_file(contiguous(probe), probe_path, metadata=METADATA)
    shutil.copyfile(probe_path, os.path.join(CHECKPOINT_FIXTURES, "resnet18_f16_probe.safetensors"))
    return io, [name for name, _ in first3]


# MARK: - Bilinear resize

def export_resize():
    def case(name, x, size):
        y = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=False)
        entry = {"name": name, "shape": list(x.shape), "size": list(size),
                 "input": x.flatten().tolist(), "output": y.flatten().tolist()}
        if bool((x == x.round()).all()) and float(x.min()) >= 0 and float(x.max()) <= 255:
            # What torchvision's Resize does to a uint8 tensor: interpolate in float, round half to even, clamp.
            entry["output_uint8"] = y.round().clamp(0, 255).to(torch.uint8).flatten().tolist()
        return entry

    pixels = torch.randint(0, 256, (1, 1, 28, 28)).float()
    cases = [case("28to32", pixels, (32, 32)), case("28to64", pixels, (64, 64)), case("28to20", pixels, (20, 20)),
             case("3ch_5x7to9x4", torch.randn(2, 3, 5, 7), (9, 4))]
    with open(os.path.join(DATA_FIXTURES, "resize.json"), "w") as f:
        json.dump({"generator": "scripts/export_fixtures.py", "torch": torch.__version__,
                   "call": "F.interpolate(x, size, mode='bilinear', align_corners=False, antialias=False)",
                   "cases": cases}, f, separators=(",", ":"))
        f.write("\n")


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    for folder in (MODEL_FIXTURES, CHECKPOINT_FIXTURES, DATA_FIXTURES):
        os.makedirs(folder, exist_ok=True)
    r20 = export_resnet20()
    r18, first3 = export_resnet18()
    export_resize()
    print("resnet20 embedding[0,:4]", r20["embedding"][0, :4].tolist(), "logits[0,:3]", r20["logits"][0, :3].tolist())
    print("resnet18 embedding |mean|", r18["embedding"].abs().mean().item(), "logits[0]", r18["logits"][0].tolist())
    print("resnet18 cifar logits[0]", r18["cifar_logits"][0].tolist())
    print("probe tensors", first3)
    print("formula check: conv1.weight[0,0,0,:3] =", formula_tensor("conv1.weight", (64, 3, 7, 7),
                                                                   torch.float32)[0, 0, 0, :3].tolist())


if __name__ == "__main__":
    main()
