"""Two costs owned by nn/optim: (1) F.linear's layout, (weight @ x^T)^T, which makes MatMul save
the weight itself (so optimizer steps trip live graphs), against the plain x @ weight^T; (2) one
optimizer step (Adam, SGD+momentum) over SimpleConvNet's parameters, ours against torch.optim.
All forward+backward / step timings alternate A B A B in one process; ratios are medians of
per-pair ratios (lower is better).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/linear_optim.py
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _timing import alternate  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import optim  # noqa: E402
from tinygrad_cnn.models import SimpleConvNet  # noqa: E402
from tinygrad_cnn.nn import functional as F  # noqa: E402


def linear_layouts() -> None:
    print("F.linear forward+backward: (W @ x^T)^T (ours) vs x @ W^T (plain)")
    for n, k, m in [(100, 4320, 100), (100, 100, 10), (2, 9216, 4096), (64, 9216, 4096)]:
        rng = np.random.default_rng(0)
        x = tg.Tensor(rng.standard_normal((n, k)).astype(np.float32), requires_grad=True)
        w = tg.Tensor(rng.standard_normal((m, k)).astype(np.float32) * 0.01, requires_grad=True)
        b = tg.Tensor(np.zeros(m, np.float32), requires_grad=True)
        g = tg.Tensor(np.ones((n, m), np.float32))

        def ours(x=x, w=w, b=b, g=g) -> None:
            F.linear(x, w, b).backward(g)

        def plain(x=x, w=w, b=b, g=g) -> None:
            (x @ w.mT + b).backward(g)

        r = alternate(ours, plain, pairs=15)
        print(f"  x ({n}, {k}) W ({m}, {k}): {r.a_ms:8.2f} ms vs {r.b_ms:8.2f} ms, ratio {r.ratio:.2f}")


def optimizer_steps() -> None:
    try:
        import torch
    except ImportError:
        print("torch not installed: optimizer comparison skipped")
        return
    print("one optimizer step over SimpleConvNet's parameters (433,890 floats), ours vs torch.optim")
    net = SimpleConvNet(seed=0)
    params = list(net.parameters())
    tparams = [torch.nn.Parameter(torch.tensor(p.numpy().copy())) for p in params]
    rng = np.random.default_rng(0)
    for p, tp in zip(params, tparams):
        gr = rng.standard_normal(p.shape).astype(np.float32)
        p.grad = tg.Tensor(gr)
        tp.grad = torch.tensor(gr)
    for name, ours_cls, theirs_cls, hp in [
        ("SGD momentum", optim.SGD, torch.optim.SGD, {"lr": 0.01, "momentum": 0.9}),
        ("Adam", optim.Adam, torch.optim.Adam, {"lr": 1e-3}),
    ]:
        o = ours_cls(params, **hp)
        # foreach=False: torch's per-parameter loop, the same structure as ours.
        t = theirs_cls(tparams, foreach=False, **hp)
        r = alternate(o.step, t.step, pairs=25)
        print(f"  {name:13s}: {r.a_ms:6.2f} ms vs {r.b_ms:6.2f} ms, ratio {r.ratio:.2f}")


if __name__ == "__main__":
    linear_layouts()
    optimizer_steps()
