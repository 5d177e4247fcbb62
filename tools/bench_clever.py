#!/usr/bin/env python3
"""CLEVER's speed, finch against PyTorch on this CPU: one image, one target (the runner-up class),
N_b batches of N_s samples (the reference's 500 x 1,024 by default) of a finch small_cnn model
file, L2 sampling as the reference draws it, gradient norms through each framework's batched
backward, then the reverse Weibull fit (finch's own; PyTorch's side uses SciPy as clever.py does).

    pip install torch scipy numpy
    python3 tools/bench_clever.py --model runs/demo/plain/model.safetensors --threads 2

Both sides take Fashion-MNIST's test image 0. Prints both times, the ratio and both Lipschitz
estimates (they differ by sampling noise: the two sides draw different random samples).
"""
import argparse
import gzip
import os
import subprocess
import sys
import tempfile
import time
import json

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats as st
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import SmallCNN  # noqa: E402
from clever_reference import read_st  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def fit(maxima):
    """clever.py's fit: weibull_min on the rescaled negated maxima, fmin with its regulariser."""
    hi, rg = maxima.max(), maxima.max() - maxima.min()

    def fmin_reg(func, x0, args=(), disp=0, **kw):
        return scipy.optimize.fmin(lambda t, x: func(t, x) + 0.01 * t[2] ** 2, x0, args, disp=disp)

    best = None
    for c0 in [0.1, 1, 5, 10, 20, 50, 100]:
        c, loc, scale = st.weibull_min.fit(-(maxima - hi) / rg, c0, optimizer=fmin_reg)
        loc, scale = -hi + loc * rg, scale * rg
        p = st.kstest(-maxima, "weibull_min", args=(c, loc, scale)).pvalue
        if best is None or p > best[1]:
            best = (-loc, p)
    return best[0] if best[1] >= 0.001 else hi


def torch_side(path, batches, samples, radius, threads):
    torch.set_num_threads(threads)
    sd = read_st(path)
    m = SmallCNN(sd["conv1.weight"].shape[0])
    m.load_state_dict(sd, strict=False)
    m.eval()
    for p in m.parameters():
        p.requires_grad_(False)
    with gzip.open("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz") as f:
        x0 = torch.from_numpy(np.frombuffer(f.read()[16:16 + 784], dtype=np.uint8).astype(np.float32) / 255).view(1, 1, 28, 28)
    with torch.no_grad():
        z = m(x0)[0]
    c, j = [int(v) for v in z.argsort(descending=True)[:2]]
    rng = np.random.default_rng(1)
    n = x0.numel()
    t0 = time.perf_counter()
    maxima = np.empty(batches)
    for b in range(batches):
        g = rng.standard_normal((samples, n))
        s2 = (g * g).sum(1)
        d = g * (scipy.special.gammainc(n / 2, s2 / 2) ** (1 / n) / np.sqrt(s2) * rng.uniform(0, radius, samples))[:, None]
        x = torch.from_numpy(np.clip(x0.numpy().reshape(1, -1) + d, 0, 1).astype(np.float32)).view(samples, 1, 28, 28)
        x.requires_grad_()
        out = m(x)
        (out[:, c] - out[:, j]).sum().backward()
        maxima[b] = x.grad.flatten(1).norm(dim=1).max().item()
    L = fit(maxima)
    return time.perf_counter() - t0, L, c, j


def finch_side(path, batches, samples, threads, finch):
    with tempfile.TemporaryDirectory() as out:
        cmd = [finch, "clever", "--model-file", path, "--limit", "1", "--target", "top-2", "--batches", str(batches),
               "--samples", str(samples), "--chunk", str(samples), "--threads", str(threads), "--out", out, "--quiet"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        took = time.perf_counter() - t0
        with open(os.path.join(out, "clever.json")) as f:
            doc = json.load(f)
    return took, doc["images"][0]["targets"][0]["lipschitz"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a finch small_cnn model file")
    ap.add_argument("--batches", type=int, default=500)
    ap.add_argument("--samples", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--finch", default=os.path.join(ROOT, "build", "finch"))
    a = ap.parse_args()
    tf, Lf = finch_side(a.model, a.batches, a.samples, a.threads, a.finch)
    tt, Lt, c, j = torch_side(a.model, a.batches, a.samples, 3.0, a.threads)
    print(f"CLEVER, one image, classes {c} against {j}, {a.batches} x {a.samples} L2 samples, {a.threads} threads")
    print(f"  finch:   {tf:8.1f} s   L {Lf:.4g}")
    print(f"  PyTorch: {tt:8.1f} s   L {Lt:.4g}   (torch {torch.__version__})")
    print(f"  finch / PyTorch speed: {tt / tf:.2f}")


if __name__ == "__main__":
    main()
