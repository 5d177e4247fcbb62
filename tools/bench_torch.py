#!/usr/bin/env python3
"""The PyTorch side of tools/bench_gpu.sh: the networks of `finch bench --models`, built the same
way, timed the same way (median of --reps steps after 10 warm-up steps; CUDA events), in fp32 and
with TF32. With --finch/--finch-tf32 (finch's JSON) it prints the comparison as a Markdown table
with the ratio finch time / PyTorch time (below 1: finch is faster)."""
import argparse
import json
import os
import statistics

import torch
import torch.nn as nn
import torch.nn.functional as F


class SmallCNN(nn.Module):
    """finch's models/small_cnn.c"""

    def __init__(self, w=16, k=10):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, w, 3, padding=1, bias=False), nn.BatchNorm2d(w)
        self.conv2, self.bn2 = nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w)
        self.fc1, self.fc2 = nn.Linear(2 * w * 49, 128), nn.Linear(128, k)
        self.register_buffer("mean", torch.tensor([0.2860]).view(1, 1, 1, 1))
        self.register_buffer("std", torch.tensor([0.3530]).view(1, 1, 1, 1))

    def forward(self, x):
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = F.dropout(F.relu(self.fc1(x.flatten(1))), 0.25, self.training)
        return self.fc2(x)


class ConvStack(nn.Module):
    """finch's models/conv_stack.c"""

    def __init__(self, k=10):
        super().__init__()
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Conv2d(64, 64, 3, padding=1, bias=False), nn.BatchNorm2d(64),
                                                    nn.ReLU()) for _ in range(4)])
        self.fc = nn.Linear(64, k)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.blocks(x), 1).flatten(1))


def median_ms(step, reps):
    for _ in range(10):
        step()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        step()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def rows(reps):
    dev = "cuda"
    out = []
    for name, model, shape in [("train step, demo CNN, batch 256", SmallCNN(), (256, 1, 28, 28)),
                               ("train step, conv stack 4x(3x3 64->64 + BN + ReLU) at 56x56, batch 64", ConvStack(),
                                (64, 64, 56, 56))]:
        model = model.to(dev).train()
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        x, y = torch.rand(shape, device=dev), torch.randint(0, 10, (shape[0],), device=dev)

        def step():
            opt.zero_grad(set_to_none=False)
            F.cross_entropy(model(x), y).backward()
            opt.step()

        ms = median_ms(step, reps)
        out.append({"name": name, "ms": ms, "images_per_s": shape[0] / ms * 1e3})

    model = SmallCNN().to(dev).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    x, y = torch.rand(256, 1, 28, 28, device=dev), torch.randint(0, 10, (256,), device=dev)
    eps, alpha = 0.1, 0.01

    def pgd():
        xa = (x + torch.empty_like(x).uniform_(-eps, eps)).clamp(0, 1)
        for _ in range(10):
            xa.requires_grad_(True)
            g, = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
            xa = torch.min(torch.max(xa.detach() + alpha * g.sign(), x - eps), x + eps).clamp(0, 1)

    ms = median_ms(pgd, reps)
    out.append({"name": "PGD-10 on the demo CNN, batch 256", "ms": ms, "images_per_s": 256 / ms * 1e3})
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--finch", help="finch bench --models --json output, fp32")
    ap.add_argument("--finch-tf32", help="the same with --tf32")
    ap.add_argument("--json", help="write PyTorch's rows here")
    ap.add_argument("--markdown", help="write the comparison table here")
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    result = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    for mode, tf32 in (("fp32", False), ("tf32", True)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        result[mode] = rows(a.reps)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(result, f, indent=2)
    lines = [f"Device: {result['device']}, PyTorch {result['torch']} (eager, cudnn.benchmark on).", "",
             "| network | mode | finch ms | PyTorch ms | finch / PyTorch |", "|---|---|---|---|---|"]
    for mode, path in (("fp32", a.finch), ("tf32", a.finch_tf32)):
        finch = {r["name"]: r for r in json.load(open(path))["rows"]} if path and os.path.exists(path) else {}
        for r in result[mode]:
            f = finch.get(r["name"])
            ratio = f"{f['ms'] / r['ms']:.2f}" if f else "n/a"
            lines.append(f"| {r['name']} | {mode} | {f['ms']:.3f} | {r['ms']:.3f} | {ratio} |" if f else
                         f"| {r['name']} | {mode} | n/a | {r['ms']:.3f} | n/a |")
    table = "\n".join(lines)
    print(table)
    if a.markdown:
        with open(a.markdown, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
