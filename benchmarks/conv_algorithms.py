"""Our two conv algorithms against each other: rows (kernels/conv_rows.py) and im2col, forced in turn
on the same inputs (``tinygrad_cnn.kernels.conv_algorithm``), forward+backward (input and weight
gradients), alternating in one process. Checks the rule ``kernels.conv_rows.by_rows`` that picks
one of them under the default setting "auto".

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv_algorithms.py [--pairs 15]

Prints, per shape, the median time of each and the median of per-pair ratios rows/im2col
(below 1: rows is faster), next to the algorithm by_rows picks.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _timing import alternate  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn.kernels import conv_algorithm  # noqa: E402
from tinygrad_cnn.kernels.conv_rows import by_rows  # noqa: E402
from tinygrad_cnn.kernels.geometry import Window, conv_output_size  # noqa: E402
from tinygrad_cnn.nn import functional as F  # noqa: E402

# name, x shape, w shape, stride, padding
SHAPES = [
    ("LeNet conv2", (100, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    ("LeNet conv2, batch 8", (8, 6, 14, 14), (16, 6, 5, 5), 1, 0),
    ("LeNet conv3", (100, 16, 5, 5), (120, 16, 5, 5), 1, 0),
    ("3x3, 32 -> 64 on 8x8", (64, 32, 8, 8), (64, 32, 3, 3), 1, 1),
    ("3x3, 64 -> 128 on 12x12", (32, 64, 12, 12), (128, 64, 3, 3), 1, 1),
    ("3x3, 256 -> 256 on 7x7", (8, 256, 7, 7), (256, 256, 3, 3), 1, 1),
    ("SimpleConvNet conv", (100, 1, 28, 28), (30, 1, 5, 5), 1, 0),
    ("AlexNet conv2", (8, 96, 27, 27), (256, 96, 5, 5), 1, 2),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--settle-ms", type=float, default=100.0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, {args.pairs} pairs, settle {args.settle_ms:g} ms, load average {os.getloadavg()[0]:.1f}\n")
    print("| shape (x; w) | rows ms | im2col ms | rows / im2col | by_rows picks |")
    print("|---|---|---|---|---|")
    for name, xs, ws, s, p in SHAPES:
        x, w = rng.standard_normal(xs).astype(np.float32), (rng.standard_normal(ws) * 0.1).astype(np.float32)
        out = tuple(conv_output_size(xs[2 + a], ws[2 + a], s, p, 1) for a in range(2))
        g = rng.standard_normal((xs[0], ws[0], *out)).astype(np.float32)
        X, W, G = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True), tg.Tensor(g)

        def step(rows: bool, X=X, W=W, G=G, s=s, p=p):
            def run() -> None:
                with conv_algorithm("rows" if rows else "im2col"):
                    X.grad = W.grad = None
                    F.conv2d(X, W, stride=s, padding=p).backward(G)

            return run

        r = alternate(step(True), step(False), args.pairs, settle_ms=args.settle_ms)
        picks = by_rows(Window(ws[2:], (s, s), (p, p), (1, 1), out), 1, ws[0], xs[1] * ws[2] * ws[3])
        print(f"| {name}: {xs}; {ws} | {r.a_ms:.2f} | {r.b_ms:.2f} | {r.ratio:.2f} | {'rows' if picks else 'im2col'} |", flush=True)


if __name__ == "__main__":
    main()
