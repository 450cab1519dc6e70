#!/usr/bin/env python3
"""Writes the timm Vision Transformer parity fixtures that dtrain's Swift tests compare against (issue 13).

Usage (needs torch, timm, safetensors; the product and its tests never do):

    /work/V/bin/python scripts/export_vit_fixtures.py

Deterministic on CPU (torch.manual_seed(0), one thread). Writes, in Tests/ModelTests/Fixtures/:

  vit.weights.safetensors   a bare timm state dict (no prefix) of a small VisionTransformer with random weights
  vit.io.safetensors        its input, eval-mode embedding (final-norm class token) and logits
  vit_posembed.safetensors  timm's resample_abs_pos_embed (bicubic, antialias) of a 4x4-grid pos_embed to 3 grids

Every file is documented in Tests/ModelTests/Fixtures/README.md.
"""
import os

import timm
import torch
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed
from timm.models.vision_transformer import VisionTransformer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL_FIXTURES = os.path.join(ROOT, "Tests", "ModelTests", "Fixtures")
METADATA = {"generator": f"scripts/export_vit_fixtures.py (torch {torch.__version__}, timm {timm.__version__})"}

# The small ViT: 3x12x16 images (a non-square 3x4 grid of 4-pixel patches, 13 tokens), D = 24, 2 blocks, 3 heads
# (head size 8), MLP ratio 2.5 (hidden 60), 5 classes. Everything else is timm's default: class token, learned
# pos_embed, pre-norm blocks, LayerNorm eps 1e-6, exact GELU, qkv bias, global_pool="token".
CONFIG = dict(img_size=(12, 16), patch_size=4, in_chans=3, num_classes=5, embed_dim=24, depth=2, num_heads=3,
              mlp_ratio=2.5)


def contiguous(tensors):
    return {name: t.detach().contiguous().clone() for name, t in tensors.items()}


def export_vit():
    model = VisionTransformer(**CONFIG)
    # timm's own init makes near-trivial outputs (Linear std 0.02, cls_token 1e-6): replace every tensor by
    # random values of a working scale, so each layer visibly acts.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2 and name not in ("pos_embed", "cls_token"):
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape) / fan_in ** 0.5)
            elif "norm" in name and name.endswith(".weight"):
                p.copy_(1 + 0.2 * (2 * torch.rand(p.shape) - 1))
            else:  # biases, pos_embed, cls_token
                p.copy_(0.3 * torch.randn(p.shape))
    model.eval()
    save_file(contiguous(model.state_dict()), os.path.join(MODEL_FIXTURES, "vit.weights.safetensors"),
              metadata=METADATA)

    x = torch.randn(2, 3, 12, 16)
    with torch.no_grad():
        features = model.forward_features(x)
        embedding = model.forward_head(features, pre_logits=True)
        logits = model(x)
        assert torch.allclose(model.head(embedding), logits, atol=1e-6)
    io = {"input": x, "embedding": embedding, "logits": logits}
    save_file(contiguous(io), os.path.join(MODEL_FIXTURES, "vit.io.safetensors"), metadata=METADATA)
    return io


def export_pos_embed():
    pos = torch.randn(1, 1 + 4 * 4, 8)
    out = {"pos_embed": pos}
    for rows, cols in ((3, 5), (7, 7), (2, 2)):
        out[f"to_{rows}x{cols}"] = resample_abs_pos_embed(pos, new_size=[rows, cols], num_prefix_tokens=1,
                                                          interpolation="bicubic", antialias=True)
    save_file(contiguous(out), os.path.join(MODEL_FIXTURES, "vit_posembed.safetensors"), metadata=METADATA)


def main():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    os.makedirs(MODEL_FIXTURES, exist_ok=True)
    io = export_vit()
    export_pos_embed()
    print("vit embedding[0,:4]", io["embedding"][0, :4].tolist(), "logits[0]", io["logits"][0].tolist())


if __name__ == "__main__":
    main()
