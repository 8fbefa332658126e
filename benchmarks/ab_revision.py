"""Our code against an earlier revision of itself, in one process: conv forward+backward and
forward alone (no_grad), pool forward+backward, and the SimpleConvNet / LeNet training steps,
timed alternately (median of per-pair ratios new/old; below 1 the working tree is faster).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_revision.py [--rev HEAD] [--only LeNet] [--pairs 21] [--threads 1]

The old revision's package is taken with ``git archive REV tinygrad_cnn`` into a temporary
directory and imported as ``tg_old`` (its imports are relative), so both run side by side
under the same machine drift; each timed call follows ``--settle-ms`` of untimed calls of the
same side (see _timing.settle).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _steps import INPUTS, build, training_step  # noqa: E402
from _timing import SETTLE_MS, alternate  # noqa: E402
from conv import CONVS, POOLS  # noqa: E402  (the shapes of benchmarks/conv.py)

import tinygrad_cnn as new  # noqa: E402
import tinygrad_cnn.models  # noqa: E402, F401
import tinygrad_cnn.nn.functional  # noqa: E402, F401
import tinygrad_cnn.optim  # noqa: E402, F401


def extract_package(rev: str, into: str) -> str:
    """``git archive`` of the package (``tinygrad_cnn/``) at revision or tag ``rev``, unpacked in
    ``into``; returns ``into``, the folder to put on the import path."""
    root = os.path.dirname(HERE)
    archive = subprocess.run(["git", "-C", root, "archive", rev, "tinygrad_cnn"], check=True, capture_output=True).stdout
    path = os.path.join(into, "old.tar")
    with open(path, "wb") as f:
        f.write(archive)
    with tarfile.open(path) as t:
        # Our own git archive; the "data" filter where this Python has it (3.11.4+, 3.12+; Debian
        # 12's 3.11.2 has not).
        t.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return into


def load_old(rev: str, into: str):
    """The package at git revision ``rev``, imported as ``tg_old``."""
    extract_package(rev, into)
    os.rename(os.path.join(into, "tinygrad_cnn"), os.path.join(into, "tg_old"))
    sys.path.insert(0, into)
    import tg_old
    import tg_old.models  # noqa: F401
    import tg_old.nn.functional  # noqa: F401
    import tg_old.optim  # noqa: F401

    return tg_old


def conv_step(tg, x, w, g, s, p, x_grad):
    X, W, G = tg.Tensor(x, requires_grad=x_grad), tg.Tensor(w, requires_grad=True), tg.Tensor(g)
    B = tg.Tensor(np.zeros(w.shape[0], np.float32), requires_grad=True)

    def step():
        X.grad = W.grad = B.grad = None
        tg.nn.functional.conv2d(X, W, B, stride=s, padding=p).backward(G)

    return step


def conv_forward(tg, x, w, s, p):
    X, W, B = tg.Tensor(x), tg.Tensor(w), tg.Tensor(np.zeros(w.shape[0], np.float32))

    def step():
        with tg.no_grad():
            tg.nn.functional.conv2d(X, W, B, stride=s, padding=p)

    return step


def pool_step(tg, x, g, k, s):
    X, G = tg.Tensor(x, requires_grad=True), tg.Tensor(g)

    def step():
        X.grad = None
        tg.nn.functional.max_pool2d(X, k, s).backward(G)

    return step


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="the git revision to compare the working tree with")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    ap.add_argument("--pairs", type=int, default=21)
    ap.add_argument("--settle-ms", type=float, default=SETTLE_MS)
    ap.add_argument("--threads", type=int, default=0, help="set_num_threads on both sides (0: their defaults)")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        old = load_old(args.rev, tmp)
        if args.threads:
            new.set_num_threads(args.threads)
            old.set_num_threads(args.threads)
        threads = args.threads or "default"
        print(f"working tree against {args.rev}: {args.pairs} pairs, threads {threads}, settle {args.settle_ms:g} ms, "
              f"load average {os.getloadavg()[0]:.1f}")
        cases = []
        for name, xs, ws, s, p, x_grad in CONVS:
            x, w = rng.standard_normal(xs).astype(np.float32), (rng.standard_normal(ws) * 0.1).astype(np.float32)
            oh = (xs[2] + 2 * p - ws[2]) // s + 1
            g = rng.standard_normal((xs[0], ws[0], oh, oh)).astype(np.float32)
            cases.append((name, *(conv_step(tg, x, w, g, s, p, x_grad) for tg in (new, old))))
            cases.append((f"{name} forward", *(conv_forward(tg, x, w, s, p) for tg in (new, old))))
        for name, xs, k, s in POOLS:
            x = rng.standard_normal(xs).astype(np.float32)
            oh = (xs[2] - k) // s + 1
            g = rng.standard_normal((xs[0], xs[1], oh, oh)).astype(np.float32)
            cases.append((name, *(pool_step(tg, x, g, k, s) for tg in (new, old))))
        y = rng.integers(0, 10, 100).astype(np.int64)
        for name, hw in INPUTS.items():
            x = rng.random((100, 1, hw, hw), dtype=np.float32)
            cases.append((f"{name} training step", *(training_step(tg, build(tg, name), x, y) for tg in (new, old))))
        for name, ours, theirs in cases:
            if args.only in name:
                r = alternate(ours, theirs, args.pairs, settle_ms=args.settle_ms)
                print(f"{name:22s} new {r.a_ms:8.2f} ms  old {r.b_ms:8.2f} ms  new/old {r.ratio:.3f}")


if __name__ == "__main__":
    main()
