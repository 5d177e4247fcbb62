#!/usr/bin/env python3
"""The PyTorch side of `finch bench --models`: the same networks, built the same way, timed the same way.

GPU (tools/bench_gpu.sh): median of --reps steps after 10 warm-up steps (CUDA events), in fp32 and
with TF32; with --finch/--finch-tf32 (finch's JSON) the comparison as a Markdown table with the
ratio finch time / PyTorch time (below 1: finch is faster).

CPU (issue 21): --cpu times the rows on the CPU (--row: only those whose name contains the text),
with each row's peak memory (the process's high-water mark less its size before the model was
built). --compare FINCH runs finch and PyTorch side by side, each row in a fresh process of each,
alternating, --rounds times (default 5), on --threads threads, and prints the medians, finch's
speed relative to PyTorch's (above 1: finch is faster) and both peaks:

    python3 tools/bench_torch.py --compare build/finch --threads 2 --markdown cpu.md"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

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

    def trunk(self, x):
        x = (x - self.mean) / self.std
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        return F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)

    def forward(self, x):
        x = F.dropout(F.relu(self.fc1(self.trunk(x).flatten(1))), 0.25, self.training)
        return self.fc2(x)


class SmallCNNTrunk(SmallCNN):
    """the demo CNN's convolutional trunk, [N, 32, 7, 7] (finch's protopnet-small_cnn)"""

    def forward(self, x):
        return self.trunk(x)


def resnet18_reduced_trunk():
    """torchvision's ResNet-18 with one basic block a stage, up to its last stage (finch's
    protopnet-resnet18 with --blocks 1,1,1,1)"""
    m = tv().resnet.ResNet(tv().resnet.BasicBlock, [1, 1, 1, 1])
    return nn.Sequential(*list(m.children())[:-2])


class PPNet(nn.Module):
    """ProtoPNet's head over a trunk (MISSION.md section 1, as finch's models/protonet.c builds it):
    add-on 1x1 convs to 128 (ReLU, Sigmoid), 10 prototypes a class, squared L2 distances as
    |z|^2 - 2 z.p + |p|^2 by convolutions, min-pooled, the log similarity, a bias-free last layer."""

    def __init__(self, trunk, c, k=10, per_class=10, depth=128):
        super().__init__()
        self.trunk = trunk
        self.add_on = nn.Sequential(nn.Conv2d(c, depth, 1), nn.ReLU(), nn.Conv2d(depth, depth, 1), nn.Sigmoid())
        self.prototypes = nn.Parameter(torch.rand(k * per_class, depth, 1, 1))
        self.last = nn.Linear(k * per_class, k, bias=False)
        self.register_buffer("cls", torch.arange(k * per_class) // per_class)

    def distances(self, z):
        z2 = F.conv2d(z * z, torch.ones_like(self.prototypes))
        p2 = (self.prototypes ** 2).sum((1, 2, 3)).view(1, -1, 1, 1)
        return F.relu(z2 - 2 * F.conv2d(z, self.prototypes) + p2)

    def loss(self, x, y):
        """the joint stage's: CE + 0.8 cluster - 0.08 separation + 1e-4 L1 of the off-class weights"""
        d = self.distances(self.add_on(self.trunk(x)))
        dmin = -F.max_pool2d(-d, d.shape[-2:]).flatten(1)
        logits = self.last(torch.log((dmin + 1) / (dmin + 1e-4)))
        own = (self.cls.view(1, -1) == y.view(-1, 1)).float()
        clst = (dmin + (1 - own) * 1e30).min(1)[0].mean()
        sep = (dmin + own * 1e30).min(1)[0].mean()
        off = (self.cls.view(1, -1) != torch.arange(self.last.out_features).view(-1, 1)).float()
        return F.cross_entropy(logits, y) + 0.8 * clst - 0.08 * sep + 1e-4 * (self.last.weight * off).abs().sum()

    @torch.no_grad()
    def push(self, images, labels, batch):
        """every prototype onto its nearest latent patch among the images of its class"""
        m, depth = self.prototypes.shape[:2]
        best, vec = torch.full((m,), float("inf")), torch.zeros(m, depth)
        for b in range(0, len(images), batch):
            z = self.add_on(self.trunk(images[b:b + batch].float() / 255))
            d = self.distances(z) + (labels[b:b + batch].view(-1, 1, 1, 1) != self.cls.view(1, -1, 1, 1)) * 1e30
            v, i = d.transpose(0, 1).reshape(m, -1).min(1)
            cand = z.permute(0, 2, 3, 1).reshape(-1, depth)[i]   # (image, cell) flattened as in d
            better = v < best
            vec[better], best = cand[better], torch.where(better, v, best)
        self.prototypes.copy_(vec.view(m, depth, 1, 1))


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


def memory_mib():
    """(VmRSS, VmHWM) of this process in MiB."""
    v = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                v[k] = int(rest.split()[0]) / 1024
    return v["VmRSS"], v["VmHWM"]


CPU_ROWS = [  # finch's names (tools/bench_models.c), the network, the input; "pgd" and "push" rows build their own
    ("train step, demo CNN, batch 256", lambda: SmallCNN(), (256, 1, 28, 28)),
    ("train step, conv stack 4x(3x3 64->64 + BN + ReLU) at 56x56, batch 64", lambda: ConvStack(), (64, 64, 56, 56)),
    ("PGD-10 on the demo CNN, batch 256", "pgd", (256, 1, 28, 28)),
    ("train step, ResNet-18 at 224x224, batch 16", lambda: tv().resnet18(num_classes=10), (16, 3, 224, 224)),
    ("train step, DenseNet-121 at 224x224, batch 16", lambda: tv().densenet121(num_classes=10), (16, 3, 224, 224)),
    ("train step, VGG11-BN at 224x224, batch 16", lambda: tv().vgg11_bn(num_classes=10), (16, 3, 224, 224)),
    ("ProtoPNet joint step, demo CNN trunk, batch 64", lambda: PPNet(SmallCNNTrunk(), 32), (64, 1, 28, 28)),
    ("ProtoPNet joint step, ResNet-18 (1 block a stage) at 112x112, batch 16",
     lambda: PPNet(resnet18_reduced_trunk(), 512), (16, 3, 112, 112)),
    ("ProtoPNet push, 2000 prototypes over 6,000 images, demo CNN trunk", "push", (6000, 1, 28, 28)),
]


def tv():
    import torchvision.models
    return torchvision.models


def cpu_rows(reps, only):
    out = []
    for name, make, shape in CPU_ROWS:
        if only and only not in name:
            continue
        base, _ = memory_mib()
        torch.manual_seed(1)
        x, y = (None, None) if make == "push" else (torch.rand(shape), torch.randint(0, 10, (shape[0],)))
        if make == "push":   # as tools/bench_push.c: 200 classes, labels i % 200, batches of 100
            model = PPNet(SmallCNNTrunk(), 32, k=200).eval()
            images = torch.randint(0, 256, shape, dtype=torch.uint8)
            labels = torch.arange(shape[0]) % 200

            def step():
                model.push(images, labels, 100)
        elif make == "pgd":   # PGD-10, eval mode, frozen parameters
            model = SmallCNN().eval()
            for p in model.parameters():
                p.requires_grad_(False)

            def step():
                xa = (x + torch.empty_like(x).uniform_(-0.1, 0.1)).clamp(0, 1)
                for _ in range(10):
                    xa.requires_grad_(True)
                    g, = torch.autograd.grad(F.cross_entropy(model(xa), y), xa)
                    xa = torch.min(torch.max(xa.detach() + 0.01 * g.sign(), x - 0.1), x + 0.1).clamp(0, 1)
        else:
            model = make().train()
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
            loss = model.loss if isinstance(model, PPNet) else lambda x, y: F.cross_entropy(model(x), y)

            def step():
                opt.zero_grad(set_to_none=False)
                loss(x, y).backward()
                opt.step()
        for _ in range(1 if make == "push" else 2 if shape[-1] >= 112 else 10):
            step()
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            step()
            times.append(time.perf_counter() - t0)
        _, hwm = memory_mib()
        ms = statistics.median(times) * 1e3
        out.append({"name": name, "ms": ms, "images_per_s": shape[0] / ms * 1e3, "peak_mib": hwm - base})
    return out


def compare(a):
    """finch and PyTorch alternating, one fresh process per row and framework, a.rounds times."""
    names = [n for n, _, _ in CPU_ROWS if not a.row or a.row in n]
    got = {(n, fw): [] for n in names for fw in ("finch", "torch")}
    env = dict(os.environ, OMP_NUM_THREADS=str(a.threads), OMP_WAIT_POLICY="PASSIVE")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "row.json")
        for r in range(a.rounds):
            for n in names:
                for fw in ("finch", "torch"):
                    cmd = ([a.compare, "bench", "--models", "--row", n, "--reps", str(a.reps), "--threads", str(a.threads),
                            "--json", out] if fw == "finch" else
                           [sys.executable, __file__, "--cpu", "--row", n, "--reps", str(a.reps), "--threads",
                            str(a.threads), "--json", out])
                    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
                    with open(out) as f:
                        row = next(x for x in json.load(f)["rows"] if x["name"] == n)
                    got[(n, fw)].append(row)
                    print(f"round {r + 1}/{a.rounds} {fw:5s} {n}: {row['ms']:.1f} ms, peak {row['peak_mib']:.0f} MiB",
                          file=sys.stderr)
    lines = [f"CPU: {a.threads} threads, PyTorch {torch.__version__} eager, median of {a.rounds} rounds (each the median of "
             f"{a.reps} steps), finch and PyTorch alternating, every row in a fresh process.", "",
             "| network | finch ms | PyTorch ms | finch speed / PyTorch | finch peak MiB | PyTorch peak MiB |",
             "|---|---|---|---|---|---|"]
    for n in names:
        fm = statistics.median(x["ms"] for x in got[(n, "finch")])
        tm = statistics.median(x["ms"] for x in got[(n, "torch")])
        fp = statistics.median(x["peak_mib"] for x in got[(n, "finch")])
        tp = statistics.median(x["peak_mib"] for x in got[(n, "torch")])
        spread = lambda fw: "-".join(f"{v:.0f}" for v in (min(x["ms"] for x in got[(n, fw)]), max(x["ms"] for x in got[(n, fw)])))
        lines.append(f"| {n} | {fm:.1f} ({spread('finch')}) | {tm:.1f} ({spread('torch')}) | {tm / fm:.2f} | {fp:.0f} | {tp:.0f} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--finch", help="finch bench --models --json output, fp32")
    ap.add_argument("--finch-tf32", help="the same with --tf32")
    ap.add_argument("--json", help="write PyTorch's rows here")
    ap.add_argument("--markdown", help="write the comparison table here")
    ap.add_argument("--cpu", action="store_true", help="time the rows on the CPU (with --row, --threads, --json)")
    ap.add_argument("--compare", metavar="FINCH", help="finch and PyTorch side by side on the CPU (finch's binary)")
    ap.add_argument("--row", help="only the rows whose name contains this text")
    ap.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads (--cpu, --compare)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds for --compare")
    a = ap.parse_args()
    try:   # the ResNet and DenseNet rows build torchvision's models: say so now, not halfway through a table
        import torchvision  # noqa: F401
    except ImportError:
        sys.exit("bench_torch.py: torchvision is not installed (pip install torchvision); the ResNet, DenseNet and VGG rows need it")
    if a.cpu or a.compare:
        torch.set_num_threads(a.threads)
        if a.compare:
            table = compare(a)
            print(table)
            if a.markdown:
                with open(a.markdown, "w") as f:
                    f.write(table + "\n")
            return
        result = {"framework": "torch", "torch": torch.__version__, "threads": a.threads, "rows": cpu_rows(a.reps, a.row)}
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=2)
        for r in result["rows"]:
            print(f"{r['name']:72s} {r['ms']:10.3f} {r['images_per_s']:12.0f} {r['peak_mib']:10.1f}")
        return
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
