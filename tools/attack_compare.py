#!/usr/bin/env python3
"""finch's attacks and torchattacks' on the same small CNN (a finch model.safetensors of
small_cnn; its tensor names are PyTorch's) and the same first N Fashion-MNIST test images:
robust accuracy, success rate and mean distortion of the successful examples, side by side, as
a Markdown table for docs/ROBUSTNESS.md.

Where the attacks differ in design, both sides run the common ground: C&W at one constant
(torchattacks' CW has no binary search), so finch runs --search-steps 1 --c C; finch's default
C&W (9 search steps) is reported on its own row.

    python3 tools/attack_compare.py --model runs/demo/model.safetensors --n 200 --threads 2
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_torch import SmallCNN  # noqa: E402
from make_attack_fixtures import idx  # noqa: E402
import st_writer  # noqa: E402,F401  (the same folder)

import torchattacks  # noqa: E402


def load_finch(path):
    import json as js
    import struct
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = js.loads(f.read(n))
        data = f.read()
    meta = head.pop("__metadata__", {})
    assert meta.get("arch") == "small_cnn", f"{path}: not a small_cnn ({meta.get('arch')})"
    w = int(meta.get("width", "0")) or 16
    m = SmallCNN(w, int(meta["num_classes"]))
    sd = {k: torch.frombuffer(bytearray(data[v["data_offsets"][0]:v["data_offsets"][1]]), dtype=torch.float32).view(*v["shape"])
          for k, v in head.items()}
    missing, unexpected = m.load_state_dict(sd, strict=False)
    assert not unexpected and set(missing) <= {"mean", "std", "bn1.num_batches_tracked", "bn2.num_batches_tracked"}, (missing, unexpected)
    return m.eval()


def stats(m, x, y, xa, targeted=None):
    with torch.no_grad():
        pred = m(xa).argmax(1)
        clean = m(x).argmax(1)
    ok = (pred == targeted) if targeted is not None else (pred != y)
    needed = (clean != targeted) if targeted is not None else (clean == y)
    d = (xa - x).flatten(1)
    sel = ok & needed
    return {"robust": (pred == y).float().mean().item(), "success": ok.float().mean().item(),
            "l2": d.norm(dim=1)[sel].mean().item() if sel.any() else float("nan"),
            "l1": d.abs().sum(1)[sel].mean().item() if sel.any() else float("nan"),
            "linf": d.abs().amax(1)[sel].mean().item() if sel.any() else float("nan")}


def finch(binary, model, n, threads, args):
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        subprocess.run([binary, "attack", "--model-file", model, "--limit", str(n), "--batch", str(n), "--threads", str(threads),
                        "--out", out, "--quiet"] + args, check=True, stdout=subprocess.DEVNULL)
        secs = time.perf_counter() - t0
        j = json.load(open(os.path.join(out, "attack.json")))
    d = j["distortion"]
    get = (lambda k: d[k]["mean"] if d[k] else float("nan"))
    return {"robust": j["robust_acc"], "success": j["success_rate"], "l2": get("l2"), "l1": get("l1"), "linf": get("linf"),
            "seconds": secs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--finch", default="build/finch")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--no-default-cw", action="store_true", help="skip finch's default C&W row (9 x up to 1,000 steps: slow)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    m = load_finch(a.model)
    x = idx("t10k-images-idx3-ubyte.gz")[:a.n].float().div(255).unsqueeze(1)
    y = idx("t10k-labels-idx1-ubyte.gz")[:a.n].long()
    e = a.eps
    rows = [
        ("PGD-20, L-inf eps %g, step %g" % (e, e / 10), ["--attack", "pgd", "--eps", str(e), "--alpha", str(e / 10), "--steps", "20"],
         lambda: torchattacks.PGD(m, eps=e, alpha=e / 10, steps=20)),
        ("APGD-CE, L-inf eps %g, 100 steps" % e, ["--attack", "apgd-ce", "--eps", str(e)],
         lambda: torchattacks.APGD(m, norm="Linf", eps=e, steps=100, loss="ce")),
        ("APGD-T, L-inf eps %g, 100 steps, 9 targets" % e, ["--attack", "apgd-t", "--eps", str(e)],
         lambda: torchattacks.APGDT(m, norm="Linf", eps=e, steps=100, n_classes=10)),
        ("C&W-L2, c 1, 200 steps (no search)", ["--attack", "cw", "--c", "1", "--search-steps", "1", "--steps", "200"],
         lambda: torchattacks.CW(m, c=1, kappa=0, steps=200, lr=0.01)),
        ("EAD-EN, beta 1e-3, 5 x 200 steps, c from 0.1", ["--attack", "ead", "--c", "0.1", "--search-steps", "5", "--steps", "200"],
         lambda: torchattacks.EADEN(m, kappa=0, lr=0.01, binary_search_steps=5, max_iterations=200, initial_const=0.1)),
        ("EAD-L1, beta 1e-3, 5 x 200 steps, c from 0.1", ["--attack", "ead", "--rule", "l1", "--c", "0.1", "--search-steps", "5", "--steps", "200"],
         lambda: torchattacks.EADL1(m, kappa=0, lr=0.01, binary_search_steps=5, max_iterations=200, initial_const=0.1)),
        ("C&W-L2, finch's default: 9 search steps x up to 1,000, c from 1e-3", ["--attack", "cw"], None),
    ]
    print(f"model {a.model}; first {a.n} Fashion-MNIST test images; {a.threads} threads; "
          f"torch {torch.__version__}, torchattacks {torchattacks.__version__}\n")
    print("| attack | side | robust acc | success | mean L2 | mean L1 | mean L-inf | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, fargs, make in rows:
        if make is None and a.no_default_cw:
            continue
        f = finch(a.finch, a.model, a.n, a.threads, fargs)
        print(f"| {name} | finch | {100 * f['robust']:.1f} | {100 * f['success']:.1f} | {f['l2']:.3f} | {f['l1']:.2f} | "
              f"{f['linf']:.3f} | {f['seconds']:.0f} |", flush=True)
        if make is None:
            continue
        t0 = time.perf_counter()
        xa = make()(x, y)
        secs = time.perf_counter() - t0
        s = stats(m, x, y, xa)
        print(f"| | torchattacks | {100 * s['robust']:.1f} | {100 * s['success']:.1f} | {s['l2']:.3f} | {s['l1']:.2f} | "
              f"{s['linf']:.3f} | {secs:.0f} |", flush=True)


if __name__ == "__main__":
    main()
