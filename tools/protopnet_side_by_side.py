#!/usr/bin/env python3
"""finch's ProtoPNet beside the authors' code (cfchen-duke/ProtoPNet), from the same weights and
the same batches, stage by stage, on Fashion-MNIST with finch's small CNN trunk.

    git clone https://github.com/cfchen-duke/ProtoPNet /tmp/ProtoPNet      (never copied into finch)
    pip install torch opencv-python-headless matplotlib
    python3 tools/protopnet_side_by_side.py --authors /tmp/ProtoPNet --trunk runs/robustness/trunk/model.safetensors

What it does:
  1. builds the authors' PPNet (model.py, 'regular' add-on layers, log activation) over a PyTorch copy
     of finch's small CNN trunk, loads the trunk's weights, lets PPNet initialise the rest, and
     writes that network with finch's tensor names: both sides start from these weights;
  2. runs `finch train --init` on it with the schedule given (default: tools/robustness_study.sh's
     old one: 1 warm-up epoch, 5 joint, a push, 5 last-layer passes, 20,000 images, batch 64, the
     robust recipe's rates, ProtoPNet's coefficients; no validation split, so both train and push
     on the first --limit training images), and once more for the warm-up alone;
  3. runs the authors' train_and_test.py and push.py on finch's batch order (finch's loader:
     Philox4x32-10 shuffles, reimplemented here and checked against values from core/philox.h),
     their optimizers as their main.py builds them;
  4. prints, after warm-up, joint, push and last layer, each side's test accuracy in eval mode
     (running statistics) and with batch statistics, the training cluster and separation costs,
     and how many prototypes each push put on the same image; writes side_by_side.json.
finch's saved models are also evaluated by the PyTorch network (its weights loaded): the two
forwards must agree, which checks the comparison itself.

The authors' code calls .cuda() throughout; it is patched to a no-op from outside, and the
trunk gets the conv_info() their receptive-field code asks for. Their code runs from --authors;
nothing of it is copied here.
"""
import argparse
import copy
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402

M32 = 0xFFFFFFFF


def philox4x32(counter, seed):
    """core/philox.h, word for word."""
    c0, c1, c2, c3 = counter & M32, (counter >> 32) & M32, 0, 0
    k0, k1 = seed & M32, (seed >> 32) & M32
    for _ in range(10):
        p0, p1 = 0xD2511F53 * c0, 0xCD9E8D57 * c2
        n0, n2 = ((p1 >> 32) ^ c1 ^ k0) & M32, ((p0 >> 32) ^ c3 ^ k1) & M32
        c1, c3, c0, c2 = p1 & M32, p0 & M32, n0, n2
        k0, k1 = (k0 + 0x9E3779B9) & M32, (k1 + 0xBB67AE85) & M32
    return c0, c1, c2, c3


def finch_order(n, seed, epoch):
    """data/loader.c: identity over the subset, then rng_shuffle with rng_new(seed * 1000003 + epoch)."""
    key = (seed * 1000003 + epoch) & 0xFFFFFFFFFFFFFFFF
    a, counter = list(range(n)), 0
    for i in range(n - 1, 0, -1):
        o = philox4x32(counter, key)
        counter += 1
        u = ((o[0] << 21) ^ (o[1] >> 11)) * (1.0 / 9007199254740992.0)
        j = int(u * (i + 1))
        a[i], a[j] = a[j], a[i]
    return a


def check_philox():
    """Values printed by a C program over core/philox.h and core/rng.c (rng_shuffle)."""
    assert philox4x32(0, 0) == (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8), "Philox differs from core/philox.h"
    assert philox4x32(5, 1000003) == (0x6707E6EA, 0xCAAE5ED1, 0x25CCA6C5, 0xCAACACDF), "Philox differs from core/philox.h"
    assert finch_order(20, 1, 600000) == [18, 9, 2, 19, 12, 0, 13, 16, 3, 1, 11, 7, 17, 14, 5, 15, 8, 6, 4, 10], \
        "the shuffle differs from data/loader.c"


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        blob = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        dt = {"F32": np.float32, "I32": np.int32, "I64": np.int64}[v["dtype"]]
        out[k] = torch.from_numpy(np.frombuffer(blob[a:b], dt).reshape(v["shape"]).copy())
    return out


class SmallCNNTrunk(nn.Module):
    """finch's models/small_cnn.c up to its 7x7 map: normalise, 2 x (conv 3x3, BN, ReLU, max-pool 2)."""

    def __init__(self, w=16):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(1, w, 3, padding=1, bias=False), nn.BatchNorm2d(w)
        self.conv2, self.bn2 = nn.Conv2d(w, 2 * w, 3, padding=1, bias=False), nn.BatchNorm2d(2 * w)

    def forward(self, x):
        x = (x - 0.2860) / 0.3530
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        return F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)

    def conv_info(self):   # what the authors' receptive-field code asks of a trunk
        return [3, 2, 3, 2], [1, 2, 1, 2], [1, 0, 1, 0]

    def __repr__(self):    # PPNet picks its add-on input width by the trunk's name (VGG / RES / DENSE)
        return "VGG-like small CNN (finch's small_cnn trunk)"


def finch_names(ppnet):
    sd = {}
    for k, v in ppnet.state_dict().items():
        if k.endswith("num_batches_tracked") or k == "ones":
            continue
        sd[k] = v
    return sd


class Batches:
    """An iterable of (x, y) over the images idx[order] in batches (drop_last), with .batch_size."""

    def __init__(self, x, y, order, batch, drop_last=True):
        self.x, self.y, self.order, self.batch_size, self.drop_last = x, y, order, batch, drop_last

    def __iter__(self):
        n = len(self.order)
        stop = n - n % self.batch_size if self.drop_last else n
        for s in range(0, stop, self.batch_size):
            idx = self.order[s:s + self.batch_size]
            yield self.x[idx], self.y[idx]


def accuracy(model, x, y, batch_stats=False, bs=500):
    m = copy.deepcopy(model)
    m.train(batch_stats)
    correct = 0
    with torch.no_grad():
        for s in range(0, len(y), bs):
            logits, _ = m(x[s:s + bs])
            correct += (logits.argmax(1) == y[s:s + bs]).sum().item()
    return 100.0 * correct / len(y)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--authors", required=True, help="a checkout of cfchen-duke/ProtoPNet")
    ap.add_argument("--trunk", required=True, help="a finch small_cnn model.safetensors (finch train --model small_cnn)")
    ap.add_argument("--finch", default="build/finch")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    ap.add_argument("--out", default="runs/side-by-side")
    ap.add_argument("--limit", type=int, default=20000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--warm", type=int, default=1)
    ap.add_argument("--last-iters", type=int, default=5)
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frozen-bn", default="batch", help="finch's --frozen-bn (batch: the authors' behaviour)")
    ap.add_argument("--threads", type=int, default=0)
    a = ap.parse_args()
    check_philox()
    if a.threads:
        torch.set_num_threads(a.threads)
    os.makedirs(a.out, exist_ok=True)
    torch.Tensor.cuda = lambda self, *args, **kw: self
    nn.Module.cuda = lambda self, *args, **kw: self
    sys.path.insert(0, os.path.abspath(a.authors))
    from model import PPNet
    import push as authors_push
    import train_and_test as tnt
    from receptive_field import compute_proto_layer_rf_info_v2

    xtr = torch.from_numpy(read_idx(f"{a.data_dir}/train-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    ytr = torch.from_numpy(read_idx(f"{a.data_dir}/train-labels-idx1-ubyte.gz").astype(np.int64))
    xte = torch.from_numpy(read_idx(f"{a.data_dir}/t10k-images-idx3-ubyte.gz").astype(np.float32) / 255).unsqueeze(1)
    yte = torch.from_numpy(read_idx(f"{a.data_dir}/t10k-labels-idx1-ubyte.gz").astype(np.int64))
    xtr, ytr = xtr[:a.limit], ytr[:a.limit]   # finch with --val-fraction 0 --limit N: the first N, in order

    # 1. the shared start
    torch.manual_seed(a.seed)
    trunk = SmallCNNTrunk()
    tw = read_safetensors(a.trunk)
    trunk.load_state_dict({k: tw[k] for k in trunk.state_dict() if k in tw}, strict=False)
    M = 10 * a.per_class
    rf = compute_proto_layer_rf_info_v2(28, *trunk.conv_info(), prototype_kernel_size=1)
    ppnet = PPNet(trunk, 28, (M, 128, 1, 1), rf, 10, init_weights=True, prototype_activation_function="log",
                  add_on_layers_type="regular")
    init = os.path.join(a.out, "init.safetensors")
    st_writer.write(init, finch_names(ppnet))

    # 2. finch
    common = ["--model", "protopnet-small_cnn", "--init", init, "--recipe", "robust", "--limit", str(a.limit), "--batch",
              str(a.batch), "--val-fraction", "0", "--seed", str(a.seed), "--frozen-bn", a.frozen_bn,
              "--prototypes-per-class", str(a.per_class), "--quiet"]
    if a.threads:
        common += ["--threads", str(a.threads)]
    fdir, wdir = os.path.join(a.out, "finch"), os.path.join(a.out, "finch-warm")
    E = a.epochs
    for args in ([*common, "--epochs", str(E), "--warm-epochs", str(a.warm), "--push-start", str(E - 1), "--push-every",
                  str(E - 1), "--last-iters", str(a.last_iters), "--out", fdir],
                 [*common, "--epochs", str(a.warm), "--warm-epochs", str(a.warm), "--push-start", str(a.warm - 1),
                  "--push-every", "1", "--last-iters", "0", "--out", wdir]):
        print("finch", " ".join(args), flush=True)
        subprocess.run([a.finch, "train", *args], check=True)
    finch_models = {"warm-up": f"{wdir}/epoch-{a.warm}-nopush.safetensors", "joint": f"{fdir}/epoch-{E}-nopush.safetensors",
                    "push": f"{fdir}/epoch-{E}-push.safetensors", "last layer": f"{fdir}/epoch-{E}-last.safetensors"}
    finch_log = json.load(open(f"{fdir}/train.json"))

    # 3. the authors' code, on finch's batches
    model = torch.nn.DataParallel(ppnet)
    coefs = {"crs_ent": 1, "clst": 0.8, "sep": -0.08, "l1": 1e-4}
    warm_opt = torch.optim.Adam([{"params": ppnet.add_on_layers.parameters(), "lr": 3e-3, "weight_decay": 1e-3},
                                 {"params": ppnet.prototype_vectors, "lr": 3e-3}])
    joint_opt = torch.optim.Adam([{"params": ppnet.features.parameters(), "lr": 1e-4, "weight_decay": 1e-3},
                                  {"params": ppnet.add_on_layers.parameters(), "lr": 3e-3, "weight_decay": 1e-3},
                                  {"params": ppnet.prototype_vectors, "lr": 3e-3}])
    last_opt = torch.optim.Adam([{"params": ppnet.last_layer.parameters(), "lr": 1e-4}])
    sched = torch.optim.lr_scheduler.StepLR(joint_opt, step_size=10, gamma=0.1)
    costs = {}

    def logger(stage):
        def log(s):
            s = s.strip()
            for key in ("cluster", "separation"):
                if s.startswith(key + ":"):
                    costs.setdefault(stage, {}).setdefault(key, []).append(float(s.split(":", 1)[1]))
        return log

    authors, stages = {}, []
    for e in range(E):
        loader = Batches(xtr, ytr, finch_order(a.limit, a.seed, e), a.batch)
        if e < a.warm:
            tnt.warm_only(model=model, log=lambda s: None)
            tnt.train(model=model, dataloader=loader, optimizer=warm_opt, class_specific=True, coefs=coefs, log=logger("warm-up"))
            if e == a.warm - 1:
                authors["warm-up"] = copy.deepcopy(ppnet.state_dict())
        else:
            tnt.joint(model=model, log=lambda s: None)
            sched.step()
            tnt.train(model=model, dataloader=loader, optimizer=joint_opt, class_specific=True, coefs=coefs, log=logger("joint"))
    authors["joint"] = copy.deepcopy(ppnet.state_dict())
    bbdir = tempfile.mkdtemp()
    authors_push.push_prototypes(Batches(xtr, ytr, list(range(a.limit)), a.batch, drop_last=False), model, class_specific=True,
                                 preprocess_input_function=None, prototype_layer_stride=1, root_dir_for_saving_prototypes=bbdir,
                                 epoch_number=E, prototype_img_filename_prefix=None, prototype_self_act_filename_prefix=None,
                                 proto_bound_boxes_filename_prefix="bb", save_prototype_class_identity=True,
                                 log=lambda s: None)
    authors["push"] = copy.deepcopy(ppnet.state_dict())
    tnt.last_only(model=model, log=lambda s: None)
    for i in range(a.last_iters):
        loader = Batches(xtr, ytr, finch_order(a.limit, a.seed, 100000 * E + i), a.batch)
        tnt.train(model=model, dataloader=loader, optimizer=last_opt, class_specific=True, coefs=coefs, log=logger("last layer"))
    authors["last layer"] = copy.deepcopy(ppnet.state_dict())

    # 4. the table
    probe = copy.deepcopy(ppnet)
    rows = []
    for stage in ("warm-up", "joint", "push", "last layer"):
        probe.load_state_dict(authors[stage], strict=False)
        ours = {"eval": accuracy(probe, xte, yte), "batch": accuracy(probe, xte, yte, True)}
        fw = read_safetensors(finch_models[stage])
        probe.load_state_dict({k: v for k, v in fw.items() if k in probe.state_dict()}, strict=False)
        theirs_eval = accuracy(probe, xte, yte)
        out = subprocess.run([a.finch, "eval", "--model-file", finch_models[stage]], capture_output=True, text=True, check=True)
        finch_eval = float(out.stdout.split("accuracy ")[1].split("%")[0])
        rows.append({"stage": stage, "authors_eval": ours["eval"], "authors_batch": ours["batch"], "finch_eval": finch_eval,
                     "finch_batch": accuracy(probe, xte, yte, True), "finch_weights_in_pytorch_eval": theirs_eval})
    fr = json.load(open(f"{fdir}/push-epoch-{E}/prototypes.json"))
    finch_img = [p["image"] for p in fr["prototypes"]]
    auth_img = np.load(os.path.join(bbdir, f"epoch-{E}", f"bb{E}.npy"))[:, 0].tolist()
    same = sum(int(f == t) for f, t in zip(finch_img, auth_img))
    fcost = {}
    for r in finch_log["epochs"]:
        st = r.get("stage", "")
        for k in ("cluster", "separation"):
            if k in r:
                fcost.setdefault(st, {}).setdefault(k, []).append(r[k])
    print(f"\nProtoPNet, finch vs the authors' code: same start, same batches (seed {a.seed}); test accuracy on {len(yte)} images")
    print(f"{'after':<12} {'authors eval':>12} {'authors batch':>14} {'finch eval':>11} {'finch batch':>12} {'finch in torch':>15}")
    for r in rows:
        print(f"{r['stage']:<12} {r['authors_eval']:>12.2f} {r['authors_batch']:>14.2f} {r['finch_eval']:>11.2f} "
              f"{r['finch_batch']:>12.2f} {r['finch_weights_in_pytorch_eval']:>15.2f}")
    print(f"push: {same} of {M} prototypes on the same image")
    print("training costs (mean per epoch), authors / finch:")
    for st, fst in (("warm-up", "warm"), ("joint", "joint"), ("last layer", "last layer")):
        for k in ("cluster", "separation"):
            au = costs.get(st, {}).get(k, [])
            fi = fcost.get(fst, {}).get(k, [])
            print(f"  {st:<10} {k:<10} authors {' '.join(f'{v:.4f}' for v in au)}   finch {' '.join(f'{v:.4f}' for v in fi)}")
    result = {"seed": a.seed, "limit": a.limit, "batch": a.batch, "epochs": E, "warm": a.warm, "last_iters": a.last_iters,
              "finch_frozen_bn": a.frozen_bn, "rows": rows, "push_same_image": same, "prototypes": M,
              "authors_costs": costs, "finch_costs": fcost}
    with open(os.path.join(a.out, "side_by_side.json"), "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
