#!/usr/bin/env python3
"""Writes tests/fixtures/models.safetensors: reduced-width torchvision backbones with random
weights, a small input batch, and PyTorch's logits, loss and gradients (every parameter and the
input), in eval mode and then in train mode (batch statistics; the running statistics after the
step are stored too). Dropout is off in both (its random masks cannot match across frameworks).
tests/test_model_parity.c rebuilds each model in finch at the same width and compares.

The reference is computed in float64 and stored as float32 (the weights are float32 values, so
both sides start from the same numbers). Train-mode gradients of narrow networks are badly
conditioned (batch norm's backward subtracts means and projections layer after layer): PyTorch's
own float32 result differs from its float64 one by up to 1e-1 on these models, so a float32
reference would measure rounding, not correctness.

Reduced widths: VGG 64 -> 2 channels (hidden 4096 -> 128), ResNet18 stem 64 -> 8, ResNet50
stem 64 -> 4, DenseNet121 growth 32 -> 4 (stem 8). The modules are torchvision's own; only the
channel counts are smaller, so every name is torchvision's."""
import os
import sys

import torch

import torch.nn as nn
import torch.nn.functional as F
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402

torch.manual_seed(0)
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def vgg(cfg_name, bn, w):
    cfg = [c if c == "M" else c * w // 64 for c in tvm.vgg.cfgs[cfg_name]]
    m = tvm.vgg.VGG(tvm.vgg.make_layers(cfg, batch_norm=bn), num_classes=10)
    hidden, last = 4096 * w // 64, cfg[-2]
    m.classifier[0], m.classifier[3], m.classifier[6] = nn.Linear(last * 49, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, 10)
    return m


class SmallResNet(tvm.resnet.ResNet):
    """torchvision's ResNet with the stem's 64 channels (and every width after it) scaled to w."""

    def __init__(self, block, layers, w):
        nn.Module.__init__(self)
        self._norm_layer, self.inplanes, self.dilation, self.groups, self.base_width = nn.BatchNorm2d, w, 1, 1, 64
        self.conv1 = nn.Conv2d(3, w, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1, self.relu, self.maxpool = nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        self.layer1 = self._make_layer(block, w, layers[0])
        self.layer2 = self._make_layer(block, 2 * w, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 4 * w, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 8 * w, layers[3], stride=2)
        self.avgpool, self.fc = nn.AdaptiveAvgPool2d((1, 1)), nn.Linear(8 * w * block.expansion, 10)


CASES = [  # fixture name, finch arch, width, model
    ("vgg11", "vgg11", 2, lambda: vgg("A", False, 2)),
    ("vgg11_bn", "vgg11_bn", 2, lambda: vgg("A", True, 2)),
    ("resnet18", "resnet18", 8, lambda: SmallResNet(tvm.resnet.BasicBlock, [2, 2, 2, 2], 8)),
    ("resnet50", "resnet50", 4, lambda: SmallResNet(tvm.resnet.Bottleneck, [3, 4, 6, 3], 4)),
    ("densenet121", "densenet121", 4, lambda: tvm.DenseNet(4, (6, 12, 24, 16), 8, num_classes=10)),
]

tensors = {}


def randomise_bn(m):
    """non-trivial affine parameters and running statistics, so eval mode tests something"""
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            with torch.no_grad():
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.5, 0.5)
                mod.running_mean.uniform_(-0.2, 0.2)
                mod.running_var.uniform_(0.5, 1.5)


def run(name, model, x, y, mode):
    model = model.double()
    x = x.double()
    model.train(mode == "train")
    for mod in model.modules():
        if isinstance(mod, nn.Dropout):
            mod.eval()
    xi = x.clone().requires_grad_(True)
    model.zero_grad()
    logits = model((xi - MEAN.double()) / STD.double())
    loss = F.cross_entropy(logits, y)
    loss.backward()
    tensors[f"{name}.{mode}.logits"] = logits.detach()
    tensors[f"{name}.{mode}.loss"] = loss.detach().reshape(1)
    tensors[f"{name}.{mode}.grad.input"] = xi.grad
    for pname, p in model.named_parameters():
        tensors[f"{name}.{mode}.grad.{pname}"] = p.grad.clone()
    if mode == "train":
        for bname, b in model.named_buffers():
            if "running" in bname:
                tensors[f"{name}.train.after.{bname}"] = b.clone()


for name, arch, width, make in CASES:
    model = make()
    randomise_bn(model)
    for k, v in model.state_dict().items():
        if "num_batches_tracked" not in k:
            tensors[f"{name}.weights.{k}"] = v.clone()
    # 64x64 and batch 4: the last stage's batch norm sees 16 values per channel, not 2 (with 2,
    # 1/sqrt(eps) amplifies float32 rounding into 1e-4-level differences between any two frameworks)
    x = torch.rand(4, 3, 64, 64)
    y = torch.tensor([1, 7, 3, 0])
    tensors[f"{name}.input"] = x
    tensors[f"{name}.labels"] = y.to(torch.int32)
    run(name, model, x, y, "eval")
    run(name, model, x, y, "train")

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/models.safetensors"
size = st_writer.write(out, tensors, {"generator": "tools/make_model_fixtures.py", "torch": torch.__version__,
                                      "cases": ",".join(f"{n}:{a}:{w}" for n, a, w, _ in CASES)})
print(f"wrote {out}: {len(tensors)} tensors, {size / 1e6:.1f} MB")
