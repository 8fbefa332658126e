"""Weight initialisation (PyTorch's ``torch.nn.init`` names and formulas), all seedable.

Each function fills a Tensor in place (under ``no_grad``, bumping its version counter) and
returns it. ``seed`` is an int, a ``numpy.random.Generator`` or None (the global generator, see
``tinygrad_cnn.manual_seed``).

Example::

    w = Parameter(np.empty((30, 1, 5, 5), dtype=np.float32))
    kaiming_normal_(w, nonlinearity='relu', seed=0)      # std = sqrt(2 / fan_in) = sqrt(2 / 25)
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, get_rng

__all__ = [
    "calculate_gain",
    "constant_",
    "fan_in_and_fan_out",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_normal_",
    "xavier_uniform_",
    "zeros_",
]


def fan_in_and_fan_out(shape: tuple[int, ...]) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight shape as PyTorch computes them: Linear ``(out, in)`` gives
    ``(in, out)``; Conv ``(out, in/groups, kh, kw)`` gives ``(in/groups*kh*kw, out*kh*kw)``."""
    shape = tuple(shape)
    if len(shape) < 2:
        raise ValueError(f"fan_in_and_fan_out: needs a weight with at least 2 dimensions, got shape {shape}.")
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity: linear/conv/sigmoid 1, tanh 5/3, relu sqrt(2),
    leaky_relu sqrt(2 / (1 + slope^2)) (slope ``param``, default 0.01), selu 3/4."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(
        f"calculate_gain: unknown nonlinearity {nonlinearity!r}; use one of 'linear', 'conv2d', 'sigmoid', "
        "'tanh', 'relu', 'leaky_relu', 'selu'."
    )


def _check(t: Any, op: str) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor (e.g. a Parameter), got {type(t).__name__}.")
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: the tensor must be floating point, got dtype {t.dtype}.")


def _draw(t: Tensor, op: str, seed: Any, normal: bool, scale: float, shift: float) -> Tensor:
    """Fill ``t`` in place with ``shift + scale * z``, z standard normal or uniform on [0, 1)."""
    rng = get_rng(seed)
    draw = rng.standard_normal if normal else rng.random

    def fill(d: np.ndarray) -> None:
        # Generate straight into the parameter's memory: AlexNet's fc6 alone is 37.7M floats.
        if d.dtype in (np.float32, np.float64) and d.flags.c_contiguous:
            draw(dtype=d.dtype, out=d)
        else:
            d[...] = draw(d.shape)
        d *= scale
        d += shift

    with no_grad():
        t._inplace(op, fill)
    return t


def _fans(t: Tensor, op: str) -> tuple[int, int]:
    _check(t, op)
    if t.ndim < 2:
        raise ValueError(f"{op}: fan in/out need a weight with at least 2 dimensions, got shape {t.shape}.")
    return fan_in_and_fan_out(t.shape)


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0, seed: Any = None) -> Tensor:
    """Fill with U(a, b). Example: ``uniform_(w, -0.1, 0.1, seed=0)``."""
    _check(t, "uniform_")
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}.")
    return _draw(t, "uniform_", seed, False, b - a, a)


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0, seed: Any = None) -> Tensor:
    """Fill with N(mean, std^2). Example: ``normal_(w, std=0.01, seed=0)`` (the chapter's init)."""
    _check(t, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}.")
    return _draw(t, "normal_", seed, True, std, mean)


def constant_(t: Tensor, value: float) -> Tensor:
    """Fill with ``value``."""
    _check(t, "constant_")
    with no_grad():
        t.fill_(value)
    return t


def zeros_(t: Tensor) -> Tensor:
    """Fill with 0 (e.g. biases)."""
    return constant_(t, 0.0)


def ones_(t: Tensor) -> Tensor:
    """Fill with 1 (e.g. BatchNorm's weight)."""
    return constant_(t, 1.0)


def xavier_uniform_(t: Tensor, gain: float = 1.0, seed: Any = None) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fi, fo = _fans(t, "xavier_uniform_")
    a = gain * math.sqrt(6.0 / (fi + fo))
    return _draw(t, "xavier_uniform_", seed, False, 2 * a, -a)


def xavier_normal_(t: Tensor, gain: float = 1.0, seed: Any = None) -> Tensor:
    """Glorot & Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fi, fo = _fans(t, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fi + fo))
    return _draw(t, "xavier_normal_", seed, True, std, 0.0)


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str, op: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}.")
    fi, fo = _fans(t, op)
    fan = fi if mode == "fan_in" else fo
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", seed: Any = None) -> Tensor:
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan), gain from ``nonlinearity``
    (negative slope ``a`` for leaky_relu). Example: ``kaiming_uniform_(w, nonlinearity='relu')``."""
    b = math.sqrt(3.0) * _kaiming_std(t, a, mode, nonlinearity, "kaiming_uniform_")
    return _draw(t, "kaiming_uniform_", seed, False, 2 * b, -b)


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", seed: Any = None) -> Tensor:
    """He et al. (2015): N(0, std^2) with std = gain / sqrt(fan). With ``nonlinearity='relu'`` and
    fan_in this is the "He init" std = sqrt(2 / fan_in)."""
    std = _kaiming_std(t, a, mode, nonlinearity, "kaiming_normal_")
    return _draw(t, "kaiming_normal_", seed, True, std, 0.0)


# The other common names of the same initialisers.
glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
