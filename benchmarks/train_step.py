"""Training throughput: one Adam training step (forward, cross-entropy, backward, update) on a
batch of 100 float32 images, for SimpleConvNet (1x28x28) and LeNet-5 (relu, max; 1x32x32),
ours against the same network in PyTorch CPU, timed alternately in one process.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/train_step.py [--threads N] [--pairs P] [--settle-ms 150]

Prints ms per batch and images/second for each side and the median of the per-pair ratios
ours/torch (lower is better; < 1 means ours is faster). ``--threads N`` sets both NumPy's BLAS
threads and PyTorch's intra-op threads (default: each library's own default). Each timed step
follows ``--settle-ms`` of untimed steps of the same side, so neither library's spinning worker
threads run into the other's timing (see _timing.settle); 0 times them back to back.
"""
from __future__ import annotations

import argparse
import os
import sys


def _args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=None, help="BLAS/intra-op threads for both sides")
    p.add_argument("--pairs", type=int, default=15)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--settle-ms", type=float, default=150.0, help="untimed steps of the same side before each timed one")
    return p.parse_args()


ARGS = _args()
if ARGS.threads is not None:  # must happen before numpy loads OpenBLAS
    os.environ["OPENBLAS_NUM_THREADS"] = str(ARGS.threads)
    os.environ["OMP_NUM_THREADS"] = str(ARGS.threads)

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _steps import build, training_step  # noqa: E402
from _timing import alternate  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402


def torch_nets(torch):
    nn = torch.nn

    def simple():
        return nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                             nn.Linear(4320, 100), nn.ReLU(), nn.Linear(100, 10))

    def lenet():
        return nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    return simple, lenet


def copy_weights(ours, theirs, torch) -> None:
    """Same network, same starting weights: parameters in definition order."""
    mine = [p.data for p in ours.parameters()]
    other = list(theirs.parameters())
    assert [m.shape for m in mine] == [tuple(o.shape) for o in other], "architectures differ"
    with torch.no_grad():
        for m, o in zip(mine, other):
            o.copy_(torch.from_numpy(m.copy()))


def torch_step(net, x: np.ndarray, y: np.ndarray, torch):
    opt = torch.optim.Adam(net.parameters(), lr=0.001)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()

    def step() -> None:
        loss = loss_fn(net(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def main() -> None:
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None and ARGS.threads is not None:
        torch.set_num_threads(ARGS.threads)
    rng = np.random.default_rng(0)
    b = ARGS.batch
    y = rng.integers(0, 10, b).astype(np.int64)
    cases = [
        ("SimpleConvNet", build(tg, "SimpleConvNet"), rng.random((b, 1, 28, 28), dtype=np.float32), 0),
        ("LeNet (relu, max)", build(tg, "LeNet"), rng.random((b, 1, 32, 32), dtype=np.float32), 1),
    ]
    threads = ARGS.threads if ARGS.threads is not None else "library default"
    print(f"batch {b}, float32, Adam; threads: {threads}; {ARGS.pairs} alternating pairs, settle {ARGS.settle_ms:g} ms"
          + ("" if torch else "; PyTorch not installed"))
    for name, model, x, k in cases:
        ours = training_step(tg, model, x, y)
        theirs = None
        if torch is not None:
            net = torch_nets(torch)[k]()
            copy_weights(model, net, torch)
            with tg.no_grad(), torch.no_grad():  # same network: same logits before any step
                diff = np.abs(model(tg.Tensor(x)).data - net(torch.from_numpy(x)).numpy()).max()
            assert diff < 1e-4, f"{name}: ours and torch disagree by {diff} before training"
            theirs = torch_step(net, x, y, torch)
        r = alternate(ours, theirs, pairs=ARGS.pairs, settle_ms=ARGS.settle_ms)
        line = f"{name:18s} ours {r.a_ms:7.1f} ms/batch ({b / r.a_ms * 1e3:6.0f} img/s)"
        if theirs is not None:
            line += f" | torch {r.b_ms:7.1f} ms/batch ({b / r.b_ms * 1e3:6.0f} img/s) | ratio ours/torch {r.ratio:.2f}"
        print(line)


if __name__ == "__main__":
    main()
