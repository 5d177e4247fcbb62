#!/usr/bin/env python3
"""Reference for finch's L-BFGS-B binding (attack/lbfgsb.c, tests/test_lbfgsb.c): SciPy's
L-BFGS-B on small strictly convex box-constrained quadratics f(x) = 0.5 x'Ax - b'x, A symmetric
positive definite, with two-sided, one-sided and no bounds mixed; memory 5, factr 10, pgtol 1e-10
(so that both sides reach the unique optimum). Writes tests/fixtures/lbfgsb.safetensors: each
problem's A, b, bounds (infinite where there is none), start, SciPy's solution, value and iteration
count, as float32 (the problems are rounded to float32 before SciPy solves them).

    pip install torch scipy numpy
    python3 tools/lbfgsb_reference.py
"""
import os
import sys

import numpy as np
import scipy.optimize as so
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402


def problem(rng, n):
    q = rng.normal(size=(n, n))
    a = q @ q.T / n + 0.1 * np.eye(n)
    b = rng.normal(size=n) * 2
    lo = np.where(rng.random(n) < 0.7, -0.5, -np.inf)
    hi = np.where(rng.random(n) < 0.7, 0.4, np.inf)
    x0 = rng.uniform(-0.3, 0.3, size=n)
    f32 = lambda v: v.astype(np.float32).astype(np.float64)  # noqa: E731  (the fixture stores float32: solve what it holds)
    a = f32(a)
    return f32((a + a.T) / 2), f32(b), lo, hi, f32(x0)


def main():
    rng = np.random.default_rng(3)
    out = {}
    for k, n in enumerate([3, 12, 40]):
        a, b, lo, hi, x0 = problem(rng, n)
        r = so.minimize(lambda x: 0.5 * x @ a @ x - b @ x, x0, jac=lambda x: a @ x - b, method="L-BFGS-B",
                        bounds=list(zip(lo, hi)), options={"maxcor": 5, "ftol": 10 * np.finfo(float).eps, "gtol": 1e-10,
                                                          "maxiter": 1000})
        print(f"n {n}: f {r.fun:.12g}, {r.nit} iterations, {r.nfev} evaluations, {r.message}")
        t = lambda v: torch.tensor(np.asarray(v, dtype=np.float64))  # noqa: E731
        for name, v in [("a", a), ("b", b), ("lo", lo), ("hi", hi),
                        ("x0", x0), ("x", r.x), ("f", [r.fun]), ("nit", [r.nit])]:
            out[f"p{k}_{name}"] = t(v)
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "lbfgsb.safetensors")
    st_writer.write(path, out, {"made_by": "tools/lbfgsb_reference.py"})
    print("wrote", os.path.normpath(path))


if __name__ == "__main__":
    main()
