#!/usr/bin/env python3
"""finch's `bench --attacks` side by side with torchattacks on the same CPU and thread count,
interleaved (finch, PyTorch, finch, ...) so that both see the same machine load; prints the
median of each and the ratio finch images/s / torchattacks images/s (above 1: finch is faster).

The demo CNN (width 16, random weights, eval mode), 100 random images labelled with the model's
own predictions (so APGD, which skips misclassified images, attacks all of them on both sides).
C&W-L2: torchattacks' CW has no binary search, so the full attack is 9 of its runs of 100
iterations, one per constant; its early stop (cost rising) is defeated by counting the iterations
it ran and timing per iteration, and finch runs with its early abort off, so both do 9 x 100
iterations. APGD-CE: L-inf eps 8/255, 100 steps, one restart.

    python3 tools/bench_attacks.py --finch build/finch --threads 2 --reps 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import SmallCNN  # noqa: E402

import torchattacks  # noqa: E402


class Counting(torch.nn.Module):
    """Counts forward calls: torchattacks' CW runs one per iteration."""

    def __init__(self, m):
        super().__init__()
        self.m, self.calls = m, 0

    def forward(self, x):
        self.calls += 1
        return self.m(x)


def torch_side(threads):
    """images/s of C&W (9 x 100 iterations) and APGD-CE (100 steps)"""
    torch.set_num_threads(threads)
    torch.manual_seed(5)
    m = Counting(SmallCNN().eval())
    x = torch.rand(100, 1, 28, 28)
    with torch.no_grad():
        y = m(x).argmax(1)
    total, iters = 0.0, 0
    for c in (1e-3, 1e-2, 1e-1, 1, 10, 100, 50, 25, 12):   # a binary search's constants, one run each
        atk = torchattacks.CW(m, c=c, kappa=0, steps=100, lr=0.01)
        m.calls = 0
        t0 = time.perf_counter()
        atk(x, y)
        total += time.perf_counter() - t0
        iters += m.calls - 1   # torchattacks evaluates the clean images once
    cw = 100 / (900 * total / iters)
    atk = torchattacks.APGD(m, norm="Linf", eps=8 / 255, steps=100, n_restarts=1, loss="ce")
    t0 = time.perf_counter()
    atk(x, y)
    return cw, 100 / (time.perf_counter() - t0)


def finch_side(finch, threads):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([finch, "bench", "--attacks", "--reps", "1", "--threads", str(threads), "--json", f.name],
                       check=True, stdout=subprocess.DEVNULL)
        rows = json.load(open(f.name))["rows"]
        return rows[0]["images_per_s"], rows[1]["images_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--finch", default="build/finch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    names = ["C&W-L2, 9 x 100 iterations", "APGD-CE, L-inf eps 8/255, 100 steps"]
    f, t = [[], []], [[], []]
    for r in range(a.reps):
        for k, v in enumerate(finch_side(a.finch, a.threads)):
            f[k].append(v)
        for k, v in enumerate(torch_side(a.threads)):
            t[k].append(v)
        print(f"run {r + 1}: finch {f[0][-1]:.2f} / {f[1][-1]:.2f} images/s, torchattacks {t[0][-1]:.2f} / {t[1][-1]:.2f}", flush=True)
    print(f"\n| attack (demo CNN, batch 100, {a.threads} threads) | finch images/s | torchattacks {torchattacks.__version__} "
          f"(torch {torch.__version__}) images/s | ratio |")
    print("|---|---|---|---|")
    for k in range(2):
        fm, tm = statistics.median(f[k]), statistics.median(t[k])
        print(f"| {names[k]} | {fm:.2f} ({min(f[k]):.2f}-{max(f[k]):.2f}) | {tm:.2f} ({min(t[k]):.2f}-{max(t[k]):.2f}) | {fm / tm:.2f} |")
    print(f"\nmedian (spread) of {a.reps} interleaved runs")


if __name__ == "__main__":
    main()
