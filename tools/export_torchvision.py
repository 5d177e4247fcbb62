#!/usr/bin/env python3
"""Turns a torchvision model into a .safetensors file finch loads (finch train --init FILE).

    python3 tools/export_torchvision.py resnet50 --weights IMAGENET1K_V1 --out resnet50.safetensors
    python3 tools/export_torchvision.py vgg16 --pth my_vgg16.pth --out vgg16.safetensors

--weights uses torchvision's own weights (downloaded by torchvision on a machine that can reach
them, or found in its cache); --pth loads a state_dict the user has (a full checkpoint dict with
a "state_dict" or "model" entry works too). The names are torchvision's, which are finch's."""
import argparse
import os
import sys

import torch
import torchvision.models as tvm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("arch", help="torchvision model name, e.g. resnet50, vgg16_bn, densenet121")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--weights", help="torchvision weights enum name, e.g. IMAGENET1K_V1 or DEFAULT")
    src.add_argument("--pth", help="a .pth state_dict file")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not hasattr(tvm, a.arch):
        sys.exit(f"export_torchvision: torchvision has no model '{a.arch}'")
    if a.weights:
        model = getattr(tvm, a.arch)(weights=a.weights)
        state = model.state_dict()
    else:
        state = torch.load(a.pth, map_location="cpu", weights_only=True)
        for key in ("state_dict", "model"):
            if isinstance(state, dict) and key in state and isinstance(state[key], dict):
                state = state[key]
        state = {k.removeprefix("module."): v for k, v in state.items()}
        getattr(tvm, a.arch)(weights=None).load_state_dict(state)   # the names and shapes must be torchvision's
    size = st_writer.write(a.out, state, {"format": "pt", "arch": a.arch, "source": a.weights or os.path.basename(a.pth)})
    print(f"wrote {a.out}: {len(state)} tensors, {size / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
