"""Fast-mode gradcheck of an AlexNet conv1-sized layer (float64), ours vs PyTorch's, alternating.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/gradcheck_fast.py [--pairs 3] [--batch 8]
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import tinygrad_cnn as tg
from tinygrad_cnn.nn import functional as F


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((args.batch, 3, 227, 227))
    wa = rng.standard_normal((96, 3, 11, 11)) * 0.05
    ba = rng.standard_normal(96)
    x, w, b = (tg.Tensor(a, requires_grad=True) for a in (xa, wa, ba))

    def ours() -> float:
        t = time.perf_counter()
        res = tg.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=4), (x, w, b), fast_mode=True, seed=0, raise_exception=False)
        assert res.passed, str(res)
        return time.perf_counter() - t

    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (xa, wa, ba))

        def theirs() -> float:
            t = time.perf_counter()
            ok = torch.autograd.gradcheck(lambda x, w, b: torch.nn.functional.conv2d(x, w, b, stride=4), (tx, tw, tb), fast_mode=True)
            assert ok
            return time.perf_counter() - t

    ratios, ts = [], []
    for _ in range(args.pairs):
        a = ours()
        ts.append(a)
        if torch is not None:
            c = theirs()
            ratios.append(a / c)
            print(f"ours {a:.2f}s  torch {c:.2f}s  ratio {a / c:.2f}")
        else:
            print(f"ours {a:.2f}s")
    print(f"median ours {statistics.median(ts):.2f}s" + (f", median ratio ours/torch {statistics.median(ratios):.2f}" if ratios else ""))


if __name__ == "__main__":
    main()
