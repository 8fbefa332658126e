"""Per-op overhead: a chain of 1,000 `x = x * 1.0001 + 0.5` on a 4-element tensor, forward and
backward, timed for tinygrad_cnn and (when installed) PyTorch CPU, alternately in one process.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/overhead.py [--rev REV] [--pairs N]
Prints microseconds per op (2,000 ops per chain: 1,000 mul + 1,000 add) and the median of the
per-pair ratios ours/torch; with ``--rev``, also the working tree against that git revision of
the package (ab_revision.load_old), timed alternately in the same process.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

import tinygrad_cnn as tg

N_OPS = 1000
PAIRS = 15


def chain(lib) -> None:
    x0 = lib.tensor(np.ones(4, dtype=np.float32), requires_grad=True)
    x = x0
    for _ in range(N_OPS):
        x = x * 1.0001 + 0.5
    x.sum().backward()


def ours() -> None:
    chain(tg)


def make_torch():
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(1)

    def run() -> None:
        x0 = torch.ones(4, requires_grad=True)
        x = x0
        for _ in range(N_OPS):
            x = x * 1.0001 + 0.5
        x.sum().backward()

    return run


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def against_revision(rev: str, pairs: int) -> None:
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _timing import alternate
    from ab_revision import load_old

    with tempfile.TemporaryDirectory() as tmp:
        old = load_old(rev, tmp)
        r = alternate(ours, lambda: chain(old), pairs=pairs)
    per_op = 1e3 / (2 * N_OPS)
    print(f"working tree {r.a_ms * per_op:6.2f} us/op, {rev} {r.b_ms * per_op:6.2f} us/op, "
          f"ratio new/old (median of {pairs} per-pair ratios): {r.ratio:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", help="also time the working tree against this git revision")
    ap.add_argument("--pairs", type=int, default=PAIRS)
    args = ap.parse_args()
    if args.rev:
        against_revision(args.rev, args.pairs)
    theirs = make_torch()
    for _ in range(3):  # warm up both
        ours()
        if theirs:
            theirs()
    us_ours, us_torch, ratios = [], [], []
    for _ in range(args.pairs):
        a = timed(ours)
        us_ours.append(a / (2 * N_OPS) * 1e6)
        if theirs:
            b = timed(theirs)
            us_torch.append(b / (2 * N_OPS) * 1e6)
            ratios.append(a / b)
    print(f"tinygrad_cnn: {statistics.median(us_ours):6.2f} us/op (forward+backward, median of {args.pairs})")
    if theirs:
        print(f"PyTorch CPU : {statistics.median(us_torch):6.2f} us/op")
        print(f"ratio ours/torch (median of per-pair ratios): {statistics.median(ratios):.2f}")
    else:
        print("PyTorch not installed: no ratio (pip install torch==2.13.0 to compare)")


if __name__ == "__main__":
    main()
