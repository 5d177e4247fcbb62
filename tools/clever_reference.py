#!/usr/bin/env python3
"""References for finch's CLEVER (attack/clever.c, tests/test_clever.c).

  1. scipy.stats.kstwo.sf at the (n, d) pairs the test checks.
  2. clever.py's reverse Weibull fit (huanzhang12/CLEVER: weibull_min.fit with scipy's fmin, its
     regulariser 0.01 theta[2]^2, 7 starting shapes, the best KS p-value), written here from its
     description, on maxima L - W with W ~ Weibull(3, 0.4) at its quantiles, L = 2.5; and the
     same objective minimised to 1e-10, the optimum finch's tighter simplex reaches.
  3. tests/fixtures/clever.safetensors: PyTorch's gradient norms of g = Z_c - Z_j (c the predicted
     class, j the runner-up) for finch's attack fixture model (tests/fixtures/attack_model.safetensors,
     a small_cnn of width 4) at 16 samples per norm around the first fixture image, drawn as the
     reference draws them (2 batches of 8), and the batch maxima.

    pip install torch scipy numpy
    python3 tools/clever_reference.py
"""
import json
import os
import struct
import sys

import numpy as np
import scipy.optimize
import scipy.special
import scipy.stats as st
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402
from bench_torch import SmallCNN  # noqa: E402

FIX = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")


def read_st(path):
    with open(path, "rb") as f:
        data = f.read()
    n, = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    header.pop("__metadata__", None)
    out = {}
    for name, e in header.items():
        a, b = e["data_offsets"]
        fmt = {"F32": np.float32, "I32": np.int32}[e["dtype"]]
        out[name] = torch.from_numpy(np.frombuffer(data[8 + n + a:8 + n + b], dtype=fmt).reshape(e["shape"]).copy())
    return out


def ks_values():
    for n, d in [(20, 0.25), (100, 0.1), (500, 0.05), (500, 0.08), (500, 0.03), (1000, 0.02)]:
        print(f"kstwo.sf({d}, {n}) = {st.kstwo.sf(d, n)!r}")


def weibull_reference():
    n = 500
    u = (np.arange(n) + 0.5) / n
    sample = 2.5 - 0.4 * (-np.log1p(-u)) ** (1 / 3)
    hi, rg = sample.max(), sample.max() - sample.min()

    def fmin_with_reg(func, x0, args=(), xtol=1e-4, ftol=1e-4, maxiter=None, maxfun=None, full_output=0, disp=1,
                      retall=0, callback=None, initial_simplex=None):
        # theta = (c, loc, scale): clever.py calls theta[2] "shape", but it is weibull_min's scale
        return scipy.optimize.fmin(lambda t, x: func(t, x) + 0.01 * t[2] ** 2, x0, args, xtol, ftol, maxiter, maxfun,
                                   full_output, disp, retall, callback, initial_simplex)

    best = None
    for c0 in [0.1, 1, 5, 10, 20, 50, 100]:
        c, loc, scale = st.weibull_min.fit(-(sample - hi) / rg, c0, optimizer=fmin_with_reg)
        loc, scale = -hi + loc * rg, scale * rg
        ks, p = st.kstest(-sample, "weibull_min", args=(c, loc, scale))
        if best is None or p > best[4]:
            best = (c, loc, scale, ks, p)
    print("clever.py's fit: L %.16g shape %.12g scale %.12g ks %.6g p %.6g" % (-best[1], best[0], best[2], best[3], best[4]))
    x = (hi - sample) / rg
    r = scipy.optimize.minimize(lambda t: st.weibull_min.nnlf(t, x) + 0.01 * t[2] ** 2,
                                [best[0], (best[1] + hi) / rg, best[2] / rg], method="Nelder-Mead",
                                options=dict(xatol=1e-10, fatol=1e-12, maxiter=20000))
    print("the optimum: L %.12g shape %.10g scale %.10g" % (hi - r.x[1] * rg, r.x[0], r.x[2] * rg))


def samples(norm, x0, count, radius, rng):
    """The reference's samplers (randsphere.py), clipped to [0, 1]."""
    n = x0.size
    if norm == "inf":
        d = rng.uniform(-radius, radius, (count, n))
    elif norm == "2":
        g = rng.standard_normal((count, n))
        s2 = (g * g).sum(1)
        d = g * (scipy.special.gammainc(n / 2, s2 / 2) ** (1 / n) / np.sqrt(s2) * rng.uniform(0, radius, count))[:, None]
    else:
        e = rng.exponential(size=(count, n))
        d = e / e.sum(1, keepdims=True) * np.where(rng.random((count, n)) < 0.5, -1, 1)
        d *= rng.uniform(0, radius, count)[:, None]
    return np.clip(x0.reshape(1, -1) + d, 0, 1).astype(np.float32)


def fixture():
    m = SmallCNN(4)
    m.load_state_dict(read_st(os.path.join(FIX, "attack_model.safetensors")), strict=False)
    m.eval()
    x0 = read_st(os.path.join(FIX, "attacks.safetensors"))["x"][:1]
    with torch.no_grad():
        z = m(x0)[0]
    c, j = [int(v) for v in z.argsort(descending=True)[:2]]
    out = {"x0": x0, "classes": torch.tensor([c, j], dtype=torch.int32), "g0": (z[c] - z[j]).reshape(1)}
    rng = np.random.default_rng(5)
    for norm, radius, q in [("2", 3.0, 2), ("inf", 0.1, 1), ("1", 30.0, float("inf"))]:
        x = torch.from_numpy(samples(norm, x0.numpy(), 16, radius, rng)).view(16, 1, 28, 28).requires_grad_()
        zz = m(x)
        (zz[:, c] - zz[:, j]).sum().backward()
        norms = x.grad.flatten(1).norm(p=q, dim=1)
        out[f"samples_{norm}"] = x.detach()
        out[f"norms_{norm}"] = norms
        out[f"maxima_{norm}"] = norms.view(2, 8).max(1).values
    st_writer.write(os.path.join(FIX, "clever.safetensors"), out, {"made_by": "tools/clever_reference.py"})
    print(f"wrote tests/fixtures/clever.safetensors: classes {c} and {j}, g0 {float(out['g0']):.6g}")


if __name__ == "__main__":
    ks_values()
    weibull_reference()
    fixture()
