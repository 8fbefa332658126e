"""Per-example gradients and batched Jacobians, timed alternately in one process (median of
per-pair ratios):

1. per-example gradients of SimpleConvNet (batch 100, float32, 28x28), ``vmap(grad(loss))``,
   against one ordinary batch gradient of the same model and batch (target: at most 3x);
2. the same per-example gradients against ``torch.func.vmap(torch.func.grad(...))`` of the same
   network with the same weights, when PyTorch is installed (reported);
3. ``jacobian`` of a function R^100 -> R^10 (a tanh MLP with a hidden layer of 50, then 1000)
   against the row loop of a git revision that still had it (``--rev``, default the revision baseline-row-loop-jacobian, the
   last one with the row loop; target: at least 5x faster), timed one call at a time and as runs
   of ten calls (a single call of a fraction of a millisecond also pays for the caches the
   other side left cold).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/per_example.py [--pairs 15] [--rev baseline-row-loop-jacobian]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))

from _timing import SETTLE_MS, alternate  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn.func import functional_call, get_params, grad, jacobian, vmap  # noqa: E402
from tinygrad_cnn.models import SimpleConvNet  # noqa: E402
from tinygrad_cnn.nn import functional as F  # noqa: E402

BATCH = 100


def data(batch: int = BATCH) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.random((batch, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, batch)


def ours(model: SimpleConvNet, x: np.ndarray, y: np.ndarray) -> tuple:
    params = get_params(model)
    xt, yt = tg.Tensor(x), tg.Tensor(y)

    def one(p, xi, yi):
        return F.cross_entropy(functional_call(model, p, xi.unsqueeze(0)), yi.unsqueeze(0))

    def batch_loss(p, xb, yb):
        return F.cross_entropy(functional_call(model, p, xb), yb)

    per_example = vmap(grad(one), in_dims=(None, 0, 0))
    batch = grad(batch_loss)
    return (lambda: per_example(params, xt, yt)), (lambda: batch(params, xt, yt))


def theirs(model: SimpleConvNet, x: np.ndarray, y: np.ndarray):
    try:
        import torch
    except ImportError:
        return None
    net = torch.nn.Sequential(
        torch.nn.Conv2d(1, 30, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(4320, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10),
    )
    ours_params = list(get_params(model).values())
    params = {k: torch.tensor(v.numpy().copy()) for (k, _), v in zip(net.named_parameters(), ours_params)}
    xt, yt = torch.tensor(x), torch.tensor(y)

    def one(p, xi, yi):
        out = torch.func.functional_call(net, p, (xi.unsqueeze(0),))
        return torch.nn.functional.cross_entropy(out, yi.unsqueeze(0))

    per_example = torch.func.vmap(torch.func.grad(one), in_dims=(None, 0, 0))
    return lambda: per_example(params, xt, yt)


def jacobians(old, hidden: int):
    rng = np.random.default_rng(1)
    w1, w2 = rng.standard_normal((100, hidden)).astype(np.float32), rng.standard_normal((hidden, 10)).astype(np.float32)
    x = rng.standard_normal(100).astype(np.float32)
    new_args = tg.Tensor(w1), tg.Tensor(w2), tg.Tensor(x)
    old_args = old.Tensor(w1), old.Tensor(w2), old.Tensor(x)
    old_jac = __import__(f"{old.__name__}.func", fromlist=["jacobian"]).jacobian

    def new():
        a, b, v = new_args
        return jacobian(lambda t: (t @ a).tanh() @ b)(v)

    def previous():
        a, b, v = old_args
        return old_jac(lambda t: (t @ a).tanh() @ b)(v)

    np.testing.assert_allclose(new().numpy(), previous().numpy(), rtol=1e-5, atol=1e-5)
    return new, previous


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=15)
    ap.add_argument("--rev", default="baseline-row-loop-jacobian", help="a revision with the row-loop jacobian ('' to skip that part)")
    ap.add_argument("--batch", type=int, default=BATCH)
    args = ap.parse_args()
    model = SimpleConvNet(seed=0)
    x, y = data(args.batch)
    per_example, batch = ours(model, x, y)
    r = alternate(per_example, batch, pairs=args.pairs)
    print(f"SimpleConvNet batch {args.batch} float32: per-example grads {r.a_ms:7.1f} ms, one batch gradient {r.b_ms:6.1f} ms, "
          f"ratio {r.ratio:.2f} (median of {args.pairs} pairs)")
    t = theirs(model, x, y)
    if t is None:
        print("PyTorch not installed: no torch.func comparison")
    else:
        r = alternate(per_example, t, pairs=args.pairs, settle_ms=SETTLE_MS)
        print(f"per-example grads: ours {r.a_ms:7.1f} ms, torch.func.vmap(grad) {r.b_ms:6.1f} ms, ratio ours/torch {r.ratio:.2f}")
    if not args.rev:
        return
    from ab_revision import load_old

    with tempfile.TemporaryDirectory() as tmp:
        old = load_old(args.rev, tmp)
        for hidden in (50, 1000):
            new, previous = jacobians(old, hidden)
            for number in (1, 10):
                r = alternate(previous, new, pairs=args.pairs, number=number)
                print(f"jacobian R^100 -> R^10 (tanh MLP, hidden {hidden}), {number:2d} call(s) per timing: row loop ({args.rev}) "
                      f"{r.a_ms * 1e3:5.0f} us, batched {r.b_ms * 1e3:4.0f} us, speed-up {r.ratio:.2f}x")


if __name__ == "__main__":
    main()
