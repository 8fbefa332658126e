"""LeNet-5 written as a plain function ``lenet(params, x)`` and trained functionally.

No Module and no object optimizer: the parameters are a dict (a pytree), the gradient comes from
``tinygrad_cnn.func.value_and_grad`` and the update from ``tinygrad_cnn.optim.functional``::

    python examples/functional_model.py          # trains on synthetic digits-like data, prints the losses

The architecture is LeNet-5 (LeCun et al. 1998) as in ``tinygrad_cnn.models.LeNet``: C1 6@5x5
(padding 2 for a 28x28 input), S2 2x2 subsampling, C3 16@5x5, S4, C5 120@5x5, F6 84, output 10,
with the same parameter names, so ``lenet(get_params(LeNet()), x)`` equals ``LeNet()(x)``.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from typing import Any

import numpy as np

from tinygrad_cnn import Tensor
from tinygrad_cnn.func import value_and_grad
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.optim import functional as optim

# Names and shapes of the parameters, in the order of the Module version's state_dict().
PARAM_SHAPES: list[tuple[str, tuple[int, ...]]] = [
    ("c1.weight", (6, 1, 5, 5)),
    ("c1.bias", (6,)),
    ("c3.weight", (16, 6, 5, 5)),
    ("c3.bias", (16,)),
    ("c5.weight", (120, 16, 5, 5)),
    ("c5.bias", (120,)),
    ("f6.weight", (84, 120)),
    ("f6.bias", (84,)),
    ("output.weight", (10, 84)),
    ("output.bias", (10,)),
]

_ACT = {"tanh": F.tanh, "sigmoid": F.sigmoid, "relu": F.relu}
_POOL = {"avg": F.avg_pool2d, "max": F.max_pool2d}


def init_lenet(seed: int = 0, dtype: Any = np.float32) -> dict[str, Tensor]:
    """Fresh LeNet parameters, PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    Example: ``params = init_lenet(seed=0)``; ``params['c1.weight'].shape == (6, 1, 5, 5)``.
    """
    rng = np.random.default_rng(seed)
    params: dict[str, Tensor] = {}
    fan_in = 1
    for name, shape in PARAM_SHAPES:
        if name.endswith("weight"):
            fan_in = int(np.prod(shape[1:]))
        bound = 1.0 / math.sqrt(fan_in)
        params[name] = Tensor(rng.uniform(-bound, bound, size=shape).astype(dtype))
    return params


def lenet(params: dict[str, Any], x: Any, activation: str = "sigmoid", pooling: str = "avg") -> Tensor:
    """LeNet-5 forward pass: x (N, 1, 28, 28) or (N, 1, 32, 32) -> logits (N, 10).

    ``params`` maps the names of :data:`PARAM_SHAPES` (those of ``models.LeNet().state_dict()``, so
    ``get_params(LeNet())`` fits) to Tensors or arrays. The defaults are the classic network's.
    Example: ``lenet(init_lenet(), np.zeros((2, 1, 28, 28), np.float32)).shape == (2, 10)``.
    """
    act, pool = _ACT[activation], _POOL[pooling]
    p = params
    pad = 2 if x.shape[-1] == 28 else 0
    h = pool(act(F.conv2d(x, p["c1.weight"], p["c1.bias"], padding=pad)), 2)
    h = pool(act(F.conv2d(h, p["c3.weight"], p["c3.bias"])), 2)
    h = act(F.conv2d(h, p["c5.weight"], p["c5.bias"])).flatten(1)
    h = act(F.linear(h, p["f6.weight"], p["f6.bias"]))
    return F.linear(h, p["output.weight"], p["output.bias"])


def loss_fn(params: dict[str, Any], x: Any, y: Any, **kw: Any) -> Tensor:
    """Mean softmax cross-entropy of ``lenet(params, x)`` against integer labels ``y`` (N,)."""
    return F.cross_entropy(lenet(params, x, **kw), y)


def train(
    params: dict[str, Any], batches: Iterable[tuple[Any, Any]], opt: optim.GradientTransformation, **kw: Any
) -> tuple[dict[str, Any], list[float]]:
    """Train with ``value_and_grad(loss_fn)`` and the functional optimizer ``opt``; returns the final
    parameters and the loss of each batch (computed before that batch's update)."""
    step = value_and_grad(loss_fn)
    state = opt.init(params)
    losses = []
    for x, y in batches:
        loss, grads = step(params, x, y, **kw)
        params, state = opt.update(grads, state, params)
        losses.append(loss.item())
    return params, losses


def synthetic_batches(n_batches: int, batch_size: int = 16, seed: int = 0, dtype: Any = np.float32) -> list[tuple[np.ndarray, np.ndarray]]:
    """Ten noisy 28x28 templates, one per class: a quick stand-in for MNIST that a LeNet can learn."""
    rng = np.random.default_rng(seed)
    templates = rng.standard_normal((10, 1, 28, 28))
    out = []
    for _ in range(n_batches):
        y = rng.integers(0, 10, batch_size)
        x = templates[y] + 0.5 * rng.standard_normal((batch_size, 1, 28, 28))
        out.append((x.astype(dtype), y))
    return out


def main(argv: list[str] | None = None) -> int:
    steps = int((argv or sys.argv[1:] or ["30"])[0])
    params, losses = train(init_lenet(seed=0), synthetic_batches(steps), optim.adam(lr=1e-3), activation="relu", pooling="max")
    for i, loss in enumerate(losses):
        print(f"step {i:3d}  loss {loss:.4f}")
    print(f"first {losses[0]:.4f} -> last {losses[-1]:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
