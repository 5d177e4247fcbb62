"""A minimal safetensors writer for finch's tools (no numpy, no safetensors package needed):
float32 and float64 tensors are written as F32, int32 as I32, int64 as I64."""
import json
import struct

import torch

FORMATS = {torch.float32: ("F32", "f"), torch.int32: ("I32", "i"), torch.int64: ("I64", "q")}


def write(path, tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = {k: str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        if t.dtype == torch.float64:
            t = t.float()
        code, fmt = FORMATS[t.dtype]
        data = struct.pack(f"<{t.numel()}{fmt}", *t.flatten().tolist())
        header[name] = {"dtype": code, "shape": list(t.shape), "data_offsets": [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    import os
    os.replace(tmp, path)
    return 8 + len(h) + off
