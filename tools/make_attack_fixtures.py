#!/usr/bin/env python3
"""Writes the attack fixtures that tests/test_attack_ref.c checks finch's attacks against:

  tests/fixtures/attack_model.safetensors  finch's small_cnn at width 4, trained here in PyTorch for
                                           one epoch on 20,000 Fashion-MNIST images (a finch model file)
  tests/fixtures/attacks.safetensors       16 test images (scaled into [0.02, 0.98], plus noise under
                                           a grey level), their labels,
                                           the least likely classes, and each reference's result

References:
  - C&W-L2 written here from the paper (Carlini & Wagner 2017) and the authors' code's conventions:
    tanh space with the 1 - 1e-6 box scaling, f = max(Z_y - max_{i != y} Z_i, -kappa), torch.optim.Adam.
    (torchattacks' CW has no box scaling and no binary search.) Two runs: one constant c = 0.5 and
    kappa 100 for 20 steps in float64 (the loss at every step and the last iterate), and a full
    binary search in float32.
  - torchattacks' EADEN and EADL1, BIM (targeted at the least likely class) and PGDL2 (no random start);
    APGD-CE and APGD-T on 64 other test images (robust or not, and the checkpoint iterations), APGD-CE
    under L2 (eps 1), and
    Square (L-inf, eps 0.05, 300 queries) on them.

    pip install torch torchattacks scipy requests tqdm    # torchattacks imports the last three
    python3 tools/make_attack_fixtures.py
"""
import copy
import gzip
import os
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402
from bench_torch import SmallCNN  # noqa: E402  (models/small_cnn.c)

import torchattacks  # noqa: E402

FMNIST = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures")
N = 16


def idx(name):
    with gzip.open(os.path.join(FMNIST, name)) as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    dims = struct.unpack(f">{magic & 0xff}I", data[4:4 + 4 * (magic & 0xff)])
    return torch.frombuffer(bytearray(data[4 + 4 * len(dims):]), dtype=torch.uint8).view(*dims)


def train():
    torch.manual_seed(0)
    x = idx("train-images-idx3-ubyte.gz")[:20000].float().div(255).unsqueeze(1)
    y = idx("train-labels-idx1-ubyte.gz")[:20000].long()
    m = SmallCNN(4)
    opt = torch.optim.Adam(m.parameters(), 2e-3)
    for i in torch.randperm(len(x)).split(128):
        opt.zero_grad()
        F.cross_entropy(m(x[i]), y[i]).backward()
        opt.step()
    return m.eval()


def margin(z, cls, targeted, kappa):
    """C&W's f per example; the other logit is a true maximum over the other classes."""
    own = z.gather(1, cls[:, None])[:, 0]
    other = z.masked_fill(F.one_hot(cls, z.shape[1]).bool(), -1e30).amax(1)
    return torch.clamp(other - own if targeted else own - other, min=-kappa)


def cw_run(m, x0, cls, c, steps, lr, kappa=0.0, targeted=False, abort=False, trace=None):
    """One run of C&W at constants c: returns the per-step best (l2, x) of successful iterates."""
    w = torch.atanh((2 * x0 - 1) * (1 - 1e-6)).clone().requires_grad_(True)
    opt = torch.optim.Adam([w], lr)
    n = len(x0)
    best_l2, best_x = torch.full((n,), float("inf"), dtype=x0.dtype), x0.clone()
    prev = 1e6
    for it in range(steps):
        xa = (torch.tanh(w) + 1) / 2
        z = m(xa)
        l2 = ((xa - x0) ** 2).flatten(1).sum(1)
        loss = l2.sum() + (c * margin(z, cls, targeted, kappa)).sum()
        if trace is not None:
            trace.append(loss.item())
        if abort and it % max(steps // 10, 1) == 0:
            if loss.item() > prev * 0.9999:
                break
            prev = loss.item()
        with torch.no_grad():
            zz = z.clone()
            zz[torch.arange(n), cls] += -kappa if targeted else kappa
            ok = (zz.argmax(1) == cls) if targeted else (zz.argmax(1) != cls)
            better = ok & (l2 < best_l2)
            best_l2[better] = l2[better]
            best_x[better] = xa[better]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return best_l2, best_x, w


def cw_search(m, x0, cls, c0, search_steps, steps, lr):
    n = len(x0)
    c, lo, hi = torch.full((n,), c0, dtype=torch.float64), torch.zeros(n, dtype=torch.float64), torch.full((n,), 1e10, dtype=torch.float64)
    best_l2, best_x = torch.full((n,), float("inf")), x0.clone()
    for _ in range(search_steps):
        l2, xa, _ = cw_run(m, x0, cls, c.float(), steps, lr, abort=True)
        found = torch.isfinite(l2)
        better = l2 < best_l2
        best_l2[better], best_x[better] = l2[better], xa[better]
        hi = torch.where(found, torch.minimum(hi, c), hi)
        lo = torch.where(found, lo, torch.maximum(lo, c))
        c = torch.where(hi < 1e9, (lo + hi) / 2, c * 10)
    return best_l2, best_x


def main():
    torch.set_num_threads(2)
    m = train()
    for p in m.parameters():
        p.requires_grad_(False)
    # into [0.02, 0.98] plus noise under a grey level: no pixel at a box edge (torchattacks), and no
    # flat background whose equal activations would leave max-pooling ties to float rounding
    xt = idx("t10k-images-idx3-ubyte.gz")[:N].float().div(255).unsqueeze(1) * 0.96 + 0.02
    xt = xt + torch.rand(xt.shape, generator=torch.Generator().manual_seed(1)) * 2e-3 - 1e-3
    yt = idx("t10k-labels-idx1-ubyte.gz")[:N].long()
    with torch.no_grad():
        z = m(xt)
        acc = (m(idx("t10k-images-idx3-ubyte.gz").float().div(255).unsqueeze(1)).argmax(1)
               == idx("t10k-labels-idx1-ubyte.gz").long()).float().mean().item()
    least = z.argmin(1)
    print(f"model: test accuracy {100 * acc:.2f}%; {int((z.argmax(1) == yt).sum())} of {N} fixture images right")

    sd = {"conv1.weight": m.conv1.weight, "conv2.weight": m.conv2.weight, "fc1.weight": m.fc1.weight,
          "fc1.bias": m.fc1.bias, "fc2.weight": m.fc2.weight, "fc2.bias": m.fc2.bias}
    for b in ("bn1", "bn2"):
        bn = getattr(m, b)
        sd.update({f"{b}.weight": bn.weight, f"{b}.bias": bn.bias, f"{b}.running_mean": bn.running_mean,
                   f"{b}.running_var": bn.running_var})
    st_writer.write(os.path.join(OUT, "attack_model.safetensors"), sd,
                    {"format": "finch", "arch": "small_cnn", "num_classes": 10, "width": 4})

    ref = {"x": xt, "y": yt.int(), "least_likely": least.int(), "logits": z}
    trace = []
    # kappa 100 keeps the margin term on for all 20 steps: with kappa 0, an example that crosses the
    # decision boundary switches it off at a step that float rounding decides, on either side
    # In float64: Adam's first steps are sign steps, so in float32 a pixel whose gradient cancels to
    # rounding noise moves by +-lr on a sign that the summation order decides
    m64 = copy.deepcopy(m).double()
    _, _, w = cw_run(m64, xt.double(), yt, torch.full((N,), 0.5, dtype=torch.float64), 20, 1e-2, kappa=100.0, trace=trace)
    ref["cw_trace_loss"] = torch.tensor(trace, dtype=torch.float64)
    ref["cw_trace_last"] = ((torch.tanh(w) + 1) / 2).detach()
    l2, _ = cw_search(m, xt, yt, 0.1, 4, 100, 1e-2)
    ref["cw_search_l2"] = l2

    for name, cls in (("eaden", torchattacks.EADEN), ("eadl1", torchattacks.EADL1)):
        atk = cls(m, kappa=0, lr=0.01, binary_search_steps=4, max_iterations=100, initial_const=0.1, beta=1e-3)
        xa = atk(xt, yt)
        with torch.no_grad():
            ref[f"{name}_success"] = (m(xa).argmax(1) != yt).int()
        ref[f"{name}_l1"] = (xa - xt).abs().flatten(1).sum(1)
        ref[f"{name}_l2"] = (xa - xt).flatten(1).norm(dim=1)

    bim = torchattacks.BIM(m, eps=0.1, alpha=0.01, steps=10)
    bim.set_mode_targeted_by_function(lambda images, labels: least)
    ref["bim_targeted"] = bim(xt, yt)
    pgd2 = torchattacks.PGDL2(m, eps=1.0, alpha=0.2, steps=10, random_start=False)
    ref["pgdl2"] = pgd2(xt, yt)
    # APGD-CE and APGD-T (L-inf, eps 0.03, 50 steps) on 64 test images: who survives, and the
    # iterations of the checkpoints (recorded from torchattacks' own oscillation check)
    xa64 = idx("t10k-images-idx3-ubyte.gz")[:64].float().div(255).unsqueeze(1)
    ya64 = idx("t10k-labels-idx1-ubyte.gz")[:64].long()
    ref["apgd_x"], ref["apgd_y"] = xa64, ya64.int()
    for name, cls in (("apgd_ce", torchattacks.APGD), ("apgd_t", torchattacks.APGDT)):
        checks = []
        orig = cls.check_oscillation

        def record(self, x, j, k, y5, k3=0.75, orig=orig, checks=checks):
            if not checks or j > checks[-1]:
                checks.append(j)
            return orig(self, x, j, k, y5, k3)
        cls.check_oscillation = record
        atk = cls(m, norm="Linf", eps=0.03, steps=50, n_restarts=1, seed=0, **({"loss": "ce"} if name == "apgd_ce" else {}))
        xa = atk(xa64, ya64)
        cls.check_oscillation = orig
        with torch.no_grad():
            ref[f"{name}_robust"] = (m(xa).argmax(1) == ya64).int()
        ref[f"{name}_checkpoints"] = torch.tensor(checks, dtype=torch.int32)
    l2 = torchattacks.APGD(m, norm="L2", eps=1.0, steps=50, n_restarts=1, seed=0, loss="ce")
    with torch.no_grad():
        ref["apgd_l2_robust"] = (m(l2(xa64, ya64)).argmax(1) == ya64).int()
    sq = torchattacks.Square(m, norm="Linf", eps=0.05, n_queries=300, n_restarts=1, p_init=0.8, loss="margin", seed=0)
    with torch.no_grad():
        ref["square_robust"] = (m(sq(xa64, ya64)).argmax(1) == ya64).int()
    st_writer.write(os.path.join(OUT, "attacks.safetensors"), ref,
                    {"torch": torch.__version__, "torchattacks": torchattacks.__version__})
    for k, v in ref.items():
        print(k, tuple(v.shape))


if __name__ == "__main__":
    main()
