#!/usr/bin/env python3
"""Writes tests/fixtures/torchvision_state_dicts.txt: every state_dict entry (name and shape) of
every full-size torchvision model finch builds, one line each: "ARCH NAME D0,D1,...".
tests/test_models.c checks finch's models against it. Random weights: nothing is downloaded."""
import sys

import torch
import torchvision.models as tvm

ARCHS = ["vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
         "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
         "densenet121", "densenet161", "densenet169", "densenet201"]

out = sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/torchvision_state_dicts.txt"
with open(out, "w") as f:
    f.write(f"# torchvision {__import__('torchvision').__version__}, torch {torch.__version__}; "
            "written by tools/torchvision_state_dicts.py\n")
    for arch in ARCHS:
        model = getattr(tvm, arch)(weights=None)
        for name, t in model.state_dict().items():
            f.write(f"{arch} {name} {','.join(str(d) for d in t.shape) or '-'}\n")
print(f"wrote {out}")
