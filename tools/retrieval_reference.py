#!/usr/bin/env python3
"""Reference for finch's retrieval evaluation (eval/retrieval.c, tests/test_retrieval.c):
tests/fixtures/retrieval.safetensors holds random L2-normalised query and gallery features, their
identities (gallery junk -1, one identity missing from the gallery) and cameras, and Recall@1/5/10
and mAP computed here in NumPy (stored as float32), for five protocols: without and with Market-1501's
camera rule, each with the standard AP and Market's trapezoidal AP (layumi's evaluate code), and
the gallery-is-the-query-set protocol of Fashion-MNIST and CUB.

    pip install torch numpy
    python3 tools/retrieval_reference.py
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_writer  # noqa: E402


def evaluate(q, g, qid, gid, qcam=None, gcam=None, same_set=False, trapezoid=False):
    sim = q @ g.T
    hits, aps, skipped = np.zeros(3), [], 0
    for i in range(len(q)):
        keep = gid != -1
        if same_set:
            keep &= np.arange(len(g)) != i
        if qcam is not None:
            keep &= ~((gid == qid[i]) & (gcam == qcam[i]))
        idx = np.nonzero(keep)[0]
        order = idx[np.lexsort((idx, -sim[i, idx]))]          # most similar first, ties by gallery order
        match = gid[order] == qid[i]
        if not match.any():
            skipped += 1
            continue
        ranks = np.nonzero(match)[0]                           # 0-based ranks of the correct matches
        hits += [ranks[0] < k for k in (1, 5, 10)]
        k = np.arange(len(ranks))
        precision = (k + 1) / (ranks + 1)
        if trapezoid:
            old = np.where(ranks > 0, k / np.maximum(ranks, 1), 1.0)
            aps.append(np.sum((old + precision) / 2) / len(ranks))
        else:
            aps.append(precision.mean())
    n = len(aps)
    return [hits[0] / n, hits[1] / n, hits[2] / n, float(np.mean(aps)), n, skipped]


def main():
    rng = np.random.default_rng(7)
    nq, ng, dim = 40, 90, 6
    q = rng.normal(size=(nq, dim))
    g = rng.normal(size=(ng, dim))
    qid = rng.integers(0, 8, size=nq)
    gid = rng.integers(0, 8, size=ng)
    gid[gid == 7] = 3                                          # identity 7: queries only, skipped
    gid[rng.random(ng) < 0.1] = -1                             # junk
    qcam, gcam = rng.integers(1, 4, size=nq), rng.integers(1, 4, size=ng)
    q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float32)
    g = (g / np.linalg.norm(g, axis=1, keepdims=True)).astype(np.float32)
    qd, gd = q.astype(np.float64), g.astype(np.float64)
    expect = [evaluate(qd, gd, qid, gid),
              evaluate(qd, gd, qid, gid, trapezoid=True),
              evaluate(qd, gd, qid, gid, qcam, gcam),
              evaluate(qd, gd, qid, gid, qcam, gcam, trapezoid=True),
              evaluate(gd, gd, gid, gid, same_set=True)]
    for e in expect:
        print("R@1 %.4f R@5 %.4f R@10 %.4f mAP %.6f (%d scored, %d skipped)" % tuple(e))
    t = lambda a, dt: torch.tensor(np.asarray(a), dtype=dt)  # noqa: E731
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "retrieval.safetensors")
    st_writer.write(out, {"q": t(q, torch.float32), "g": t(g, torch.float32), "q_id": t(qid, torch.int32),
                          "g_id": t(gid, torch.int32), "q_cam": t(qcam, torch.int32), "g_cam": t(gcam, torch.int32),
                          "expect": t(expect, torch.float64)})
    print("wrote", os.path.normpath(out))


if __name__ == "__main__":
    main()
