"""The ``tinygrad-cnn`` command line (also ``python -m tinygrad_cnn``)."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np


def _demo(args: argparse.Namespace) -> int:
    """A small end-to-end run: a two-layer network learns XOR-like blobs with our autograd."""
    import tinygrad_cnn as tg
    from tinygrad_cnn.nn import functional as F

    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((512, 2)).astype(np.float32)
    y = ((x[:, 0] > 0) ^ (x[:, 1] > 0)).astype(np.int64)
    w1 = tg.randn(2, 32, seed=rng, requires_grad=True)
    b1 = tg.zeros(32, requires_grad=True)
    w2 = tg.Tensor(rng.standard_normal((32, 2)).astype(np.float32) * 0.1, requires_grad=True)
    b2 = tg.zeros(2, requires_grad=True)
    params = [w1, b1, w2, b2]
    for step in range(301):
        logits = (tg.Tensor(x) @ w1 + b1).relu() @ w2 + b2
        loss = F.cross_entropy(logits, y)
        for p in params:
            p.grad = None
        loss.backward()
        with tg.no_grad():
            for p in params:
                p.sub_(0.5 * p.grad.data)
        if step % 100 == 0:
            acc = (logits.data.argmax(1) == y).mean()
            print(f"step {step:3d}  loss {loss.item():.4f}  accuracy {acc:.3f}")
    ok = tg.gradcheck(lambda a, b: F.cross_entropy((tg.Tensor(x[:8].astype(np.float64)) @ a).relu() @ b, y[:8]),
                      (w1.double().detach().requires_grad_(), w2.double().detach().requires_grad_()))
    print(f"gradcheck of the network's loss: {'passed' if ok else 'FAILED'}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the README's main job")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)


# Each command registers itself here: one `_add_<command>(sub)` function per command.
COMMANDS = [_add_demo]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tinygrad-cnn", description="tinygrad_cnn command line")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
