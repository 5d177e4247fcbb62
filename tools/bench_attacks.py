#!/usr/bin/env python3
"""finch's `bench --attacks` side by side with torchattacks on the same CPU and thread count,
interleaved (finch, PyTorch, finch, ...) so that both see the same machine load; prints the
median of each and the ratio finch images/s / torchattacks images/s (above 1: finch is faster).

C&W-L2: the demo CNN (width 16, random weights, eval mode), 100 random images. torchattacks' CW
has no binary search, so the full attack is 9 of its runs of 100 iterations, one per constant;
its early stop (cost rising) is defeated by counting the iterations it ran and timing per
iteration, and finch runs with its early abort off, so both do 9 x 100 iterations.

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


def torch_cw(threads):
    torch.set_num_threads(threads)
    torch.manual_seed(5)
    m = Counting(SmallCNN().eval())
    x, y = torch.rand(100, 1, 28, 28), torch.randint(0, 10, (100,))
    total, iters = 0.0, 0
    for c in (1e-3, 1e-2, 1e-1, 1, 10, 100, 50, 25, 12):   # a binary search's constants, one run each
        atk = torchattacks.CW(m, c=c, kappa=0, steps=100, lr=0.01)
        m.calls = 0
        t0 = time.perf_counter()
        atk(x, y)
        total += time.perf_counter() - t0
        iters += m.calls - 1   # torchattacks evaluates the clean images once
    per_iter = total / iters
    return 100 / (900 * per_iter)


def finch_cw(finch, threads):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([finch, "bench", "--attacks", "--reps", "1", "--threads", str(threads), "--json", f.name],
                       check=True, stdout=subprocess.DEVNULL)
        return json.load(open(f.name))["rows"][0]["images_per_s"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--finch", default="build/finch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    a = ap.parse_args()
    f, t = [], []
    for r in range(a.reps):
        f.append(finch_cw(a.finch, a.threads))
        t.append(torch_cw(a.threads))
        print(f"run {r + 1}: finch {f[-1]:.2f} images/s, torchattacks {t[-1]:.2f} images/s", flush=True)
    fm, tm = statistics.median(f), statistics.median(t)
    print(f"\n| attack | finch images/s | torchattacks {torchattacks.__version__} (torch {torch.__version__}) images/s | ratio |")
    print("|---|---|---|---|")
    print(f"| C&W-L2, 9 x 100 iterations, demo CNN, batch 100, {a.threads} threads | {fm:.2f} | {tm:.2f} | {fm / tm:.2f} |")
    print(f"\nmedian of {a.reps} interleaved runs; finch spread {min(f):.2f}-{max(f):.2f}, torchattacks {min(t):.2f}-{max(t):.2f}")


if __name__ == "__main__":
    main()
