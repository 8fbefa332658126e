"""Convolution and pooling speed: tinygrad_cnn vs PyTorch CPU, and vs numpy's bare GEMMs.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/conv.py [--pairs 15] [--settle-ms 150]

For each shape, forward and forward+backward of ours and of torch.nn.functional are timed
alternately in one process on the same float32 inputs (median ms, median of per-pair ratios
ours/torch). Each timed call follows --settle-ms of untimed calls of the same side, so neither
library's spinning worker threads (PyTorch's OpenMP pool spins ~13 ms after each parallel
region, numpy's OpenBLAS ~110 ms after each threaded GEMM) run into the other's timing
(_timing.settle); the forward+backward ratio timed back to
back, without settling, is printed too. For the convs it also times the bare numpy GEMMs on matrices of the im2col shapes
(forward W(C_out, C*KH*KW) @ cols(C*KH*KW, N*OH*OW); backward the weight-gradient GEMM and,
when the input needs a gradient, the column-gradient GEMM) and prints GFLOP/s of both: ours is
the GEMM flops divided by our forward+backward time. The first layer of a network (SimpleConvNet
conv, AlexNet conv1) gets no input gradient, as in training.
"""
from __future__ import annotations

import argparse
import os
import sys

if "--threads" in sys.argv:  # BLAS reads its thread count when numpy is imported, so set it first
    os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = sys.argv[sys.argv.index("--threads") + 1]

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _shapes import CONVS, POOLS  # noqa: E402
from _timing import SETTLE_MS, alternate  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn.nn import functional as F  # noqa: E402

try:
    import torch
except ImportError:  # the benchmark still runs ours and the GEMMs
    torch = None

def conv_cases(rng, pairs, settle_ms):
    rows = []
    for name, xs, ws, s, p, x_grad in CONVS:
        x = rng.standard_normal(xs).astype(np.float32)
        w = (rng.standard_normal(ws) * 0.1).astype(np.float32)
        b = np.zeros(ws[0], np.float32)
        oh = (xs[2] + 2 * p - ws[2]) // s + 1
        g = rng.standard_normal((xs[0], ws[0], oh, oh)).astype(np.float32)

        X, W, B = tg.Tensor(x, requires_grad=x_grad), tg.Tensor(w, requires_grad=True), tg.Tensor(b, requires_grad=True)
        G = tg.Tensor(g)

        def ours_f(X=X, W=W, B=B, s=s, p=p):
            with tg.no_grad():
                F.conv2d(X, W, B, stride=s, padding=p)

        def ours_fb(X=X, W=W, B=B, G=G, s=s, p=p):
            X.grad = W.grad = B.grad = None
            F.conv2d(X, W, B, stride=s, padding=p).backward(G)

        theirs_f = theirs_fb = None
        if torch is not None:
            tx, tw, tb = torch.tensor(x, requires_grad=x_grad), torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
            tgr = torch.tensor(g)

            def theirs_f(tx=tx, tw=tw, tb=tb, s=s, p=p):
                with torch.no_grad():
                    torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p)

            def theirs_fb(tx=tx, tw=tw, tb=tb, tgr=tgr, s=s, p=p):
                tx.grad = tw.grad = tb.grad = None
                torch.nn.functional.conv2d(tx, tw, tb, stride=s, padding=p).backward(tgr)

        # the same GEMMs on ready-made matrices of the im2col shapes
        m, k, n = ws[0], ws[1] * ws[2] * ws[3], xs[0] * oh * oh
        Wm = rng.standard_normal((m, k)).astype(np.float32)
        C = rng.standard_normal((k, n)).astype(np.float32)
        Gm = rng.standard_normal((m, n)).astype(np.float32)
        gemms = [lambda Wm=Wm, C=C: Wm @ C, lambda Gm=Gm, C=C: Gm @ C.T]
        if x_grad:
            gemms.append(lambda Wm=Wm, Gm=Gm: Wm.T @ Gm)

        def bare_fb(gemms=gemms):
            for fn in gemms:
                fn()

        flops_f = 2.0 * m * k * n
        flops_fb = flops_f * len(gemms)
        f = alternate(ours_f, theirs_f, pairs, settle_ms=settle_ms)
        fb = alternate(ours_fb, theirs_fb, pairs, settle_ms=settle_ms)
        b2b = alternate(ours_fb, theirs_fb, pairs)
        bare = alternate(ours_fb, bare_fb, pairs, settle_ms=settle_ms)
        rows.append((name, f, fb, b2b, bare, flops_fb))
    return rows


def pool_cases(rng, pairs, settle_ms):
    rows = []
    for name, xs, k, s in POOLS:
        x = rng.standard_normal(xs).astype(np.float32)
        X = tg.Tensor(x, requires_grad=True)
        oh = (xs[2] - k) // s + 1
        g = rng.standard_normal((xs[0], xs[1], oh, oh)).astype(np.float32)
        G = tg.Tensor(g)

        def ours_f(X=X, k=k, s=s):
            with tg.no_grad():
                F.max_pool2d(X, k, s)

        def ours_fb(X=X, G=G, k=k, s=s):
            X.grad = None
            F.max_pool2d(X, k, s).backward(G)

        theirs_f = theirs_fb = None
        if torch is not None:
            tx, tgr = torch.tensor(x, requires_grad=True), torch.tensor(g)

            def theirs_f(tx=tx, k=k, s=s):
                with torch.no_grad():
                    torch.nn.functional.max_pool2d(tx, k, s)

            def theirs_fb(tx=tx, tgr=tgr, k=k, s=s):
                tx.grad = None
                torch.nn.functional.max_pool2d(tx, k, s).backward(tgr)

        f = alternate(ours_f, theirs_f, pairs, settle_ms=settle_ms)
        fb = alternate(ours_fb, theirs_fb, pairs, settle_ms=settle_ms)
        rows.append((name, f, fb, alternate(ours_fb, theirs_fb, pairs)))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--settle-ms", type=float, default=SETTLE_MS,
                    help="untimed calls of the same side before each timed one (0: back to back)")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    ap.add_argument("--threads", type=int, default=0, help="limit BLAS (numpy) and torch to this many threads (0: their defaults)")
    args = ap.parse_args()
    if args.threads and torch is not None:
        torch.set_num_threads(args.threads)
    CONVS[:] = [c for c in CONVS if args.only in c[0]]
    POOLS[:] = [c for c in POOLS if args.only in c[0]]
    rng = np.random.default_rng(0)
    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset)')}, {os.cpu_count()} cpus, "
          f"threads {args.threads or 'default'}, {args.pairs} pairs, settle {args.settle_ms:g} ms, "
          f"load average {os.getloadavg()[0]:.1f}")
    print("\n| conv (float32) | fwd ours ms | fwd torch ms | fwd ratio | fwd+bwd ours ms | fwd+bwd torch ms | fwd+bwd ratio "
          "| fwd+bwd ratio back to back | ours GFLOP/s | bare GEMM GFLOP/s | ours / bare GEMM time |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, f, fb, b2b, bare, flops in conv_cases(rng, args.pairs, args.settle_ms):
        print(f"| {name} | {f.a_ms:.2f} | {f.b_ms:.2f} | {f.ratio:.2f} | {fb.a_ms:.2f} | {fb.b_ms:.2f} | {fb.ratio:.2f} "
              f"| {b2b.ratio:.2f} | {flops / bare.a_ms / 1e6:.1f} | {flops / bare.b_ms / 1e6:.1f} | {bare.ratio:.2f} |")
    print("\n| pool (float32) | fwd ours ms | fwd torch ms | fwd ratio | fwd+bwd ours ms | fwd+bwd torch ms | fwd+bwd ratio "
          "| fwd+bwd ratio back to back |")
    print("|---|---|---|---|---|---|---|---|")
    for name, f, fb, b2b in pool_cases(rng, args.pairs, args.settle_ms):
        print(f"| {name} | {f.a_ms:.2f} | {f.b_ms:.2f} | {f.ratio:.2f} | {fb.a_ms:.2f} | {fb.b_ms:.2f} | {fb.ratio:.2f} "
              f"| {b2b.ratio:.2f} |")


if __name__ == "__main__":
    main()
