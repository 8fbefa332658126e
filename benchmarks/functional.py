"""The cost of the functional API: LeNet-5 (examples/functional_model.py), batch 64, float32.

1. ``value_and_grad(loss_fn)(params, x, y)`` against the same function run on Tensors that
   require grad followed by ``loss.backward()``: the transform's own overhead (wrapping leaves,
   the graph-reach check, result conversion).
2. ``value_and_grad`` against PyTorch's ``torch.func.grad_and_value`` on the same function
   written with ``torch.nn.functional`` (skipped without torch).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/functional.py
"""
from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _timing import alternate  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn.func import value_and_grad  # noqa: E402

_EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "functional_model.py"
_spec = importlib.util.spec_from_file_location("functional_model", _EXAMPLE)
fm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fm)

PAIRS = 21
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
y = rng.integers(0, 10, 64)
params = fm.init_lenet(seed=0)
step = value_and_grad(fm.loss_fn)
leaves = {k: tg.tensor(v.data, requires_grad=True) for k, v in params.items()}


def functional() -> None:
    step(params, x, y)


def plain_backward() -> None:
    for t in leaves.values():
        t.grad = None
    fm.loss_fn(leaves, x, y).backward()


def make_torch():
    try:
        import torch
        import torch.nn.functional as TF
        from torch.func import grad_and_value
    except ImportError:
        return None
    tp = {k: torch.tensor(v.data) for k, v in params.items()}
    tx, ty = torch.tensor(x), torch.tensor(y)

    def loss(p, x, y):
        h = TF.avg_pool2d(torch.sigmoid(TF.conv2d(x, p["c1.weight"], p["c1.bias"], padding=2)), 2)
        h = TF.avg_pool2d(torch.sigmoid(TF.conv2d(h, p["c3.weight"], p["c3.bias"])), 2)
        h = torch.sigmoid(TF.conv2d(h, p["c5.weight"], p["c5.bias"])).flatten(1)
        h = torch.sigmoid(TF.linear(h, p["f6.weight"], p["f6.bias"]))
        return TF.cross_entropy(TF.linear(h, p["output.weight"], p["output.bias"]), ty)

    g = grad_and_value(loss)
    # Same numbers first: a benchmark of different computations would mean nothing.
    (tgrads, tl), (ol, ograds) = g(tp, tx, ty), step(params, x, y)
    assert abs(tl.item() - ol.item()) < 1e-4, (tl.item(), ol.item())
    for k in ograds:
        np.testing.assert_allclose(ograds[k].data, tgrads[k].numpy(), rtol=1e-3, atol=1e-5)
    return lambda: g(tp, tx, ty)


def main() -> None:
    r = alternate(functional, plain_backward, pairs=PAIRS)
    print(f"value_and_grad {r.a_ms:.2f} ms vs loss.backward() {r.b_ms:.2f} ms: ratio {r.ratio:.3f}")
    t = make_torch()
    if t is not None:
        r2 = alternate(functional, t, pairs=PAIRS)
        print(f"value_and_grad {r2.a_ms:.2f} ms vs torch.func.grad_and_value {r2.b_ms:.2f} ms: ratio {r2.ratio:.2f}")


if __name__ == "__main__":
    main()
