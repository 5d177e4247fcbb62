"""Writes tests/fixtures/resize.safetensors: PIL's bilinear resizes (what torchvision's Resize
does to PIL images, so what ProtoPNet trains on) of a patterned 61x47 RGB image, which
tests/test_augment.c rebuilds and compares with finch's resize_bilinear_pil bit for bit.

    python3 tools/make_resize_fixture.py      (needs torch and pillow)
"""
import numpy as np
import torch
from PIL import Image

import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import st_writer  # noqa: E402

W, H = 61, 47
# (name, output size, box x y w h or None for the whole image)
CASES = [("whole_down", 24, None), ("box_down", 24, (3.5, 2.25, 40.0, 30.5)),
         ("whole_up", 80, None), ("box_int", 16, (10, 5, 20, 15))]


def pattern():
    y, x = np.mgrid[0:H, 0:W]
    return np.stack([(x * 7 + y * 13 + c * 50 + (x * y) % 17) % 256 for c in range(3)], axis=-1).astype(np.uint8)


def main():
    img = Image.fromarray(pattern(), "RGB")
    out = {}
    for name, size, box in CASES:
        pil_box = None if box is None else (box[0], box[1], box[0] + box[2], box[1] + box[3])
        r = np.asarray(img.resize((size, size), Image.BILINEAR, box=pil_box))
        out[name] = torch.from_numpy(r.transpose(2, 0, 1).astype(np.int32).copy())
    st_writer.write(os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "resize.safetensors"), out, {"source": "PIL " + Image.__version__})


if __name__ == "__main__":
    main()
