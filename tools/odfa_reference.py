#!/usr/bin/env python3
"""Reference for finch's ODFA (attack/feature.c, tests/test_feature_attack.c): U-turn's
opposite-direction feature loss written here in PyTorch from the paper's description, on finch's
attack fixture model (tests/fixtures/attack_model.safetensors, a small_cnn of width 4; its "pooled"
feature is ReLU(fc1)) and the first 8 fixture images. The loss and its gradient are compared at a
point 8/255 of seeded noise away from the clean images, single-scale and multi-scale (copies
resized with F.interpolate(size=floor(28 s)), then back up to 28 x 28): at the clean images
themselves the gradient is zero up to rounding, so whole attacks cannot be compared sign for sign.
Writes tests/fixtures/odfa.safetensors; also prints what 10 steps at eps 8/255 do here.

    pip install torch numpy
    python3 tools/odfa_reference.py
"""
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402
from bench_torch import SmallCNN  # noqa: E402
from clever_reference import FIX, read_st  # noqa: E402


def pooled(m, x):
    x = (x - m.mean) / m.std
    x = F.max_pool2d(F.relu(m.bn1(m.conv1(x))), 2)
    x = F.max_pool2d(F.relu(m.bn2(m.conv2(x))), 2)
    return F.relu(m.fc1(x.flatten(1)))


def loss_and_grad(m, target, x, scales):
    """U-turn's loss at x, averaged over the scales, and its gradient."""
    x = x.detach().clone().requires_grad_(True)
    loss = 0
    for s in scales:
        xi = x
        if s != 1:
            k = int(math.floor(28 * s))
            xi = F.interpolate(F.interpolate(x, size=(k, k), mode="bilinear", align_corners=False), size=(28, 28),
                               mode="bilinear", align_corners=False)
        loss = loss + ((F.normalize(pooled(m, xi), dim=1) - target) ** 2).sum()
    loss = loss / len(scales)
    g, = torch.autograd.grad(loss, x)
    return float(loss.detach()), g


def odfa(m, x0, eps, alpha, steps, scales):
    target = -F.normalize(pooled(m, x0), dim=1).detach()
    xa = x0.clone()
    for _ in range(steps):
        _, g = loss_and_grad(m, target, xa, scales)
        xa = torch.min(torch.max(xa - alpha * g.sign(), x0 - eps), x0 + eps).clamp(0, 1)
    return xa


def loss_at(m, x0, xp, scales):
    loss, g = loss_and_grad(m, -F.normalize(pooled(m, x0), dim=1).detach(), xp, scales)
    return torch.tensor([loss], dtype=torch.float64), g


def main():
    m = SmallCNN(4)
    m.load_state_dict(read_st(os.path.join(FIX, "attack_model.safetensors")), strict=False)
    m.eval()
    x0 = read_st(os.path.join(FIX, "attacks.safetensors"))["x"][:8]
    gen = torch.Generator().manual_seed(11)
    xp = (x0 + (torch.rand(x0.shape, generator=gen) * 2 - 1) * 8 / 255).clamp(0, 1)
    out = {"x0": x0, "xp": xp}
    for name, scales in [("single", [1]), ("multi", [1, 1 / math.sqrt(2), 0.5])]:
        out[f"loss_{name}"], out[f"grad_{name}"] = loss_at(m, x0, xp, scales)
        xa = odfa(m, x0, 8 / 255, 1 / 255, 10, scales)
        with torch.no_grad():
            cos = (F.normalize(pooled(m, xa), dim=1) * F.normalize(pooled(m, x0), dim=1)).sum(1)
        print(f"{name}-scale: loss at the noisy point {float(out['loss_' + name]):.6f}; after 10 steps the cosine to the "
              f"clean feature is {cos.mean():.4f} (min {cos.min():.4f})")
    st_writer.write(os.path.join(FIX, "odfa.safetensors"), out, {"made_by": "tools/odfa_reference.py"})
    print("wrote tests/fixtures/odfa.safetensors")


if __name__ == "__main__":
    main()
