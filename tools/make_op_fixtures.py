#!/usr/bin/env python3
"""Writes tests/fixtures/ops.safetensors: PyTorch's outputs and gradients for finch's ops.

For each case: the inputs, a random projection R, the output y = op(inputs) and the gradient of
sum(y * R) with respect to every float input. tests/test_parity.c runs finch's op on the same
inputs and compares. Run wherever PyTorch is installed:  python3 tools/make_op_fixtures.py
Needs only torch (no numpy, no safetensors package)."""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402

torch.manual_seed(0)
tensors = {}


def rand(*shape, lo=-1.0, hi=1.0):
    return (torch.rand(tuple(shape), dtype=torch.float64) * (hi - lo) + lo).float()


def case(name, fn, inputs, grad_inputs=None):
    """inputs: dict of name -> tensor; grad_inputs: names to differentiate (default: all float)."""
    grad_inputs = list(inputs) if grad_inputs is None else grad_inputs
    leaves = {}
    for k, v in inputs.items():
        t = v.clone()
        if k in grad_inputs:
            t.requires_grad_(True)
        leaves[k] = t
        tensors[f"{name}.{k}"] = v
    y = fn(**leaves)
    R = rand(*y.shape)
    (y * R).sum().backward()
    tensors[f"{name}.R"] = R
    tensors[f"{name}.y"] = y.detach()
    for k in grad_inputs:
        tensors[f"{name}.d{k}"] = leaves[k].grad


case("conv2d_s2p1", lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
     {"x": rand(2, 3, 9, 8), "w": rand(5, 3, 3, 3), "b": rand(5)})
case("conv2d_dil2", lambda x, w: F.conv2d(x, w, None, stride=1, padding=2, dilation=2),
     {"x": rand(1, 4, 7, 7), "w": rand(3, 4, 3, 3)})
case("linear", lambda x, w, b: F.linear(x, w, b), {"x": rand(4, 6), "w": rand(3, 6), "b": rand(3)})
case("matmul_batched", lambda a, b: torch.matmul(a, b), {"a": rand(2, 3, 4), "b": rand(2, 4, 5)})
case("max_pool_k3s2p1", lambda x: F.max_pool2d(x, 3, 2, 1), {"x": rand(2, 3, 9, 7)})
case("avg_pool_incl", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=True), {"x": rand(1, 2, 7, 6)})
case("avg_pool_excl", lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False), {"x": rand(1, 2, 7, 6)})
case("adaptive_avg", lambda x: F.adaptive_avg_pool2d(x, (3, 4)), {"x": rand(2, 2, 5, 7)})


def bn_train(x, w, b, rm, rv):
    y = F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)
    return y


rm, rv = rand(4) * 0.1, rand(4, lo=0.5, hi=1.5)
x_bn = rand(3, 4, 5, 5) * 2 + 0.5
case("bn_train", bn_train, {"x": x_bn, "w": rand(4), "b": rand(4), "rm": rm.clone(), "rv": rv.clone()},
     ["x", "w", "b"])
# the running statistics after one training step (momentum 0.1, unbiased variance)
rm2, rv2 = rm.clone(), rv.clone()
F.batch_norm(x_bn, rm2, rv2, None, None, training=True, momentum=0.1, eps=1e-5)
tensors["bn_train.rm_after"], tensors["bn_train.rv_after"] = rm2, rv2
case("bn_eval", lambda x, w, b, rm, rv: F.batch_norm(x, rm, rv, w, b, training=False, eps=1e-5),
     {"x": rand(2, 4, 3, 3), "w": rand(4), "b": rand(4), "rm": rand(4) * 0.1, "rv": rand(4, lo=0.5, hi=1.5)},
     ["x", "w", "b"])
case("upsample", lambda x: F.interpolate(x, size=(7, 5), mode="bilinear", align_corners=False), {"x": rand(1, 2, 3, 4)})
case("upsample_align", lambda x: F.interpolate(x, size=(6, 8), mode="bilinear", align_corners=True), {"x": rand(2, 1, 4, 3)})
case("upsample_down", lambda x: F.interpolate(x, size=(3, 2), mode="bilinear", align_corners=False), {"x": rand(1, 1, 7, 7)})
case("softmax", lambda x: F.softmax(x, dim=1), {"x": rand(2, 4, 3) * 3})
case("log_softmax", lambda x: F.log_softmax(x, dim=-1), {"x": rand(3, 6) * 3})
labels = torch.tensor([1, 0, 4, 6, 2], dtype=torch.int32)
tensors["cross_entropy.labels"] = labels
case("cross_entropy", lambda x: F.cross_entropy(x, labels.long()), {"x": rand(5, 7) * 3})
case("pad2d", lambda x: F.pad(x, (1, 2, 0, 3), value=0.25), {"x": rand(2, 2, 3, 4)})
case("sigmoid_tanh", lambda x: torch.sigmoid(x * 4) * torch.tanh(x * 2), {"x": rand(3, 5)})

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/ops.safetensors"
size = st_writer.write(out, tensors, {"generator": "tools/make_op_fixtures.py", "torch": torch.__version__})
print(f"wrote {out}: {len(tensors)} tensors, {size} bytes")
