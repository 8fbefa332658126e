"""Per-example gradients of a Module, their norms, and the pieces of DP-SGD, built on
:func:`tinygrad_cnn.func.vmap` of :func:`~tinygrad_cnn.func.grad`.

- :func:`per_sample_grads`: ``{name: (N, *param.shape)}``, the gradient of each example's loss;
- :func:`per_sample_grad_norms`: their L2 norms per layer and in total, ``{layer: (N,)}``;
- :func:`clip_and_noise`: DP-SGD's privatized gradient (clip each example to norm C, sum, add
  Gaussian noise of std ``noise_multiplier * C``, divide by the expected batch size);
- :func:`dp_epsilon`: the (epsilon, delta) guarantee of the sampled Gaussian mechanism after a
  number of steps, by the Renyi-DP accountant (Mironov, Talwar, Zhang 2019, integer orders).

Example::

    model = SimpleConvNet(seed=0)
    g = per_sample_grads(model, x, y)            # g['conv1.weight'].shape == (N, 30, 1, 5, 5)
    norms = per_sample_grad_norms(model, x, y)   # norms['total'].shape == (N,)
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from .func import functional_call, get_params, grad, vmap
from .nn import functional as F
from .tensor import Tensor, as_tensor

__all__ = ["clip_and_noise", "dp_epsilon", "per_sample_grad_norms", "per_sample_grads", "rdp_sampled_gaussian"]


def per_sample_grads(
    model: Any,
    x: Any,
    y: Any,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    params: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    randomness: str = "error",
) -> dict[str, Tensor]:
    """The gradient of ``loss_fn(model(x[i:i+1]), y[i:i+1])`` with respect to every parameter,
    for each example ``i``, in one vmapped pass: ``{name: Tensor (N, *param.shape)}``.

    ``params`` (default: a copy of the model's own, :func:`~tinygrad_cnn.func.get_params`) are
    the values to differentiate at. The model runs in its current mode (use ``model.eval()`` for
    BatchNorm: batch statistics of a single example mean nothing). ``chunk_size`` bounds memory.
    ``randomness`` is passed to :func:`~tinygrad_cnn.func.vmap`: with Dropout in training mode,
    ``'different'`` gives each example its own mask (as a loop over the examples would),
    ``'same'`` one mask for all; the default ``'error'`` refuses random ops.

    Example::

        g = per_sample_grads(SimpleConvNet(seed=0), x, y)    # x (N, 1, 28, 28), y (N,)
        g = per_sample_grads(model.train(), x, y, randomness="different")   # a model with Dropout
    """
    if params is None:
        params = get_params(model)
    x, y = as_tensor(x), as_tensor(y)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"per_sample_grads: x has {x.shape[0]} examples but y has {y.shape[0]}; they must match.")

    def one_example_loss(p: Any, xi: Tensor, yi: Tensor) -> Tensor:
        return loss_fn(functional_call(model, p, xi.unsqueeze(0)), yi.unsqueeze(0))

    return vmap(grad(one_example_loss), in_dims=(None, 0, 0), randomness=randomness, chunk_size=chunk_size)(dict(params), x, y)


def _layer(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def per_sample_grad_norms(
    model: Any,
    x: Any,
    y: Any,
    loss_fn: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
    grads: Mapping[str, Any] | None = None,
    chunk_size: int | None = None,
    randomness: str = "error",
) -> dict[str, np.ndarray]:
    """The L2 norm of each example's gradient, per layer (the parameters sharing a module name,
    e.g. ``conv1`` for ``conv1.weight`` and ``conv1.bias``) and over all parameters (``'total'``):
    ``{layer: array (N,)}``, float64. Pass ``grads`` (from :func:`per_sample_grads`) to reuse them;
    otherwise ``chunk_size`` and ``randomness`` are passed to it.

    Example::

        norms = per_sample_grad_norms(model, x, y)
        worst = np.argsort(norms['total'])[-5:]      # the examples pulling hardest on the weights
    """
    if grads is None:
        grads = per_sample_grads(model, x, y, loss_fn, chunk_size=chunk_size, randomness=randomness)
    squares: dict[str, np.ndarray] = {}
    for name, g in grads.items():
        a = g.numpy() if isinstance(g, Tensor) else np.asarray(g)
        sq = _squares(a)
        key = _layer(name)
        squares[key] = squares.get(key, 0.0) + sq
    out = {k: np.sqrt(v) for k, v in squares.items()}
    out["total"] = np.sqrt(sum(squares.values()))
    return out


def _squares(a: np.ndarray) -> np.ndarray:
    """Sum of squares of each example's entries (N,), float64, read in place whatever the strides."""
    rest = "abcdefghjklm"[: a.ndim - 1]
    return np.einsum(f"i{rest},i{rest}->i", a, a, dtype=np.float64)


def clip_and_noise(
    grads: Mapping[str, Any], max_norm: float, noise_multiplier: float, expected_batch_size: float, rng: Any = None
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """DP-SGD's gradient from per-example gradients ``{name: (N, *shape)}``: each example's whole
    gradient clipped to L2 norm ``max_norm``, summed, plus N(0, (noise_multiplier * max_norm)^2)
    noise per coordinate, divided by ``expected_batch_size`` (the sampling rate times the data set
    size, fixed so the noise scale does not depend on the drawn batch). Returns the gradients
    ``{name: array shape}`` and the per-example norms before clipping.

    Example::

        g, norms = clip_and_noise(per_sample_grads(model, x, y), 1.0, 1.1, 256, rng=np.random.default_rng(0))
    """
    if max_norm <= 0:
        raise ValueError(f"clip_and_noise: max_norm must be positive, got {max_norm}.")
    if noise_multiplier < 0:
        raise ValueError(f"clip_and_noise: noise_multiplier must be >= 0, got {noise_multiplier}.")
    rng = np.random.default_rng() if rng is None else rng
    arrays = {k: (g.numpy() if isinstance(g, Tensor) else np.asarray(g)) for k, g in grads.items()}
    n = next(iter(arrays.values())).shape[0]
    sq = np.zeros(n)
    for a in arrays.values():
        sq += _squares(a)
    norms = np.sqrt(sq)
    scale = np.minimum(1.0, max_norm / np.maximum(norms, 1e-12))
    out = {}
    for k, a in arrays.items():
        summed = np.einsum("i,i...->...", scale.astype(a.dtype), a)  # strided: no copy of the (often transposed) gradients
        noise = rng.normal(0.0, noise_multiplier * max_norm, size=summed.shape).astype(a.dtype)
        out[k] = (summed + noise) / np.asarray(expected_batch_size, dtype=a.dtype)
    return out, norms


def _log_add(a: float, b: float) -> float:
    m = max(a, b)
    return m if m == -math.inf else m + math.log(math.exp(a - m) + math.exp(b - m))


def rdp_sampled_gaussian(q: float, noise_multiplier: float, order: int) -> float:
    """The Renyi-DP of one step of the sampled Gaussian mechanism (Poisson sampling rate ``q``,
    noise std ``noise_multiplier`` times the sensitivity) at integer ``order`` alpha >= 2:
    ``log(sum_k C(alpha, k) (1-q)^(alpha-k) q^k exp((k^2 - k) / (2 sigma^2))) / (alpha - 1)``
    (Mironov, Talwar, Zhang 2019, Sec. 3.3), summed in log space.

    >>> round(rdp_sampled_gaussian(1.0, 1.0, 2), 6)   # no sampling: alpha / (2 sigma^2)
    1.0
    """
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"rdp_sampled_gaussian: sampling rate q must be in [0, 1], got {q}.")
    if noise_multiplier <= 0:
        return math.inf
    if q == 0.0:
        return 0.0
    if q == 1.0:
        return order / (2 * noise_multiplier**2)
    log_a = -math.inf
    for k in range(order + 1):
        term = (math.lgamma(order + 1) - math.lgamma(k + 1) - math.lgamma(order - k + 1)
                + k * math.log(q) + (order - k) * math.log1p(-q) + (k * k - k) / (2 * noise_multiplier**2))
        log_a = _log_add(log_a, term)
    return log_a / (order - 1)


def dp_epsilon(q: float, noise_multiplier: float, steps: int, delta: float, orders: Any = None) -> tuple[float, int]:
    """The epsilon of (epsilon, ``delta``)-DP after ``steps`` steps of DP-SGD with Poisson sampling
    rate ``q`` and ``noise_multiplier``: RDP composes by adding, and converts by
    ``epsilon = min_alpha steps * rdp(alpha) + log(1/delta) / (alpha - 1)``. Returns
    (epsilon, the best order).

    >>> eps, order = dp_epsilon(q=256 / 60000, noise_multiplier=1.1, steps=60 * 234, delta=1e-5)
    >>> 2.0 < eps < 4.0
    True
    """
    if not 0 < delta < 1:
        raise ValueError(f"dp_epsilon: delta must be in (0, 1), got {delta}.")
    orders = range(2, 257) if orders is None else orders
    best = (math.inf, 0)
    for a in orders:
        eps = steps * rdp_sampled_gaussian(q, noise_multiplier, int(a)) + math.log(1 / delta) / (a - 1)
        best = min(best, (eps, int(a)))
    return best
