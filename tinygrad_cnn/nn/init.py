"""Weight initialisation: PyTorch's ``torch.nn.init`` names, signatures, defaults and formulas.

Each function fills a Tensor in place (under ``no_grad``, bumping its version counter) and
returns it. The random ones take PyTorch's ``generator=`` (a :class:`tinygrad_cnn.Generator`, a
``numpy.random.Generator``, an int seed, or None for the global generator, see
``tinygrad_cnn.manual_seed``); ``seed=`` is accepted as the same thing.

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
    "dirac_",
    "eye_",
    "fan_in_and_fan_out",
    "glorot_normal_",
    "glorot_uniform_",
    "he_normal_",
    "he_uniform_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "orthogonal_",
    "trunc_normal_",
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
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if param is not None and (isinstance(param, bool) or not isinstance(param, (int, float))):
            raise ValueError(f"calculate_gain: negative_slope {param!r} is not a valid number.")
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


def _rng(op: str, generator: Any, seed: Any) -> Any:
    if generator is not None and seed is not None:
        raise TypeError(f"{op}: pass generator= or seed= (they are the same thing), not both.")
    return generator if generator is not None else seed


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


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0, generator: Any = None, *, seed: Any = None) -> Tensor:
    """Fill with U(a, b). Example: ``uniform_(w, -0.1, 0.1, seed=0)``."""
    _check(tensor, "uniform_")
    if not a <= b:
        raise ValueError(f"uniform_: need a <= b, got a={a}, b={b}.")
    return _draw(tensor, "uniform_", _rng("uniform_", generator, seed), False, b - a, a)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0, generator: Any = None, *, seed: Any = None) -> Tensor:
    """Fill with N(mean, std^2). Example: ``normal_(w, std=0.01, seed=0)`` (the chapter's init)."""
    _check(tensor, "normal_")
    if std < 0:
        raise ValueError(f"normal_: std must be >= 0, got {std}.")
    return _draw(tensor, "normal_", _rng("normal_", generator, seed), True, std, mean)


def trunc_normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0, generator: Any = None, *, seed: Any = None
) -> Tensor:
    """Fill with N(mean, std^2) truncated to [a, b] (``a``, ``b`` absolute bounds, as in PyTorch).

    Exact rejection sampling: normal draws outside [a, b] are drawn again. The interval must hold
    at least 0.1% of the distribution's mass (else a ValueError; PyTorch's approximation is
    inaccurate there too).

    Example: ``trunc_normal_(w, std=0.02)`` (ViT's init; every value within [-2, 2]).
    """
    _check(tensor, "trunc_normal_")
    if not std > 0 or not a < b:
        raise ValueError(f"trunc_normal_: need std > 0 and a < b, got std={std}, a={a}, b={b}.")
    lo, hi = (a - mean) / std, (b - mean) / std
    mass = 0.5 * (math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2)))
    if mass < 1e-3:
        raise ValueError(
            f"trunc_normal_: [a, b] = [{a}, {b}] holds only {mass:.2g} of N({mean}, {std}^2)'s mass; "
            "choose bounds closer to the mean (or a larger std)."
        )
    rng = get_rng(_rng("trunc_normal_", generator, seed))

    def fill(d: np.ndarray) -> None:
        z = rng.standard_normal(d.shape)
        bad = (z < lo) | (z > hi)
        while bad.any():
            z[bad] = rng.standard_normal(int(bad.sum()))
            bad = (z < lo) | (z > hi)
        d[...] = mean + std * z

    with no_grad():
        tensor._inplace("trunc_normal_", fill)
    return tensor


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fill with ``val``. Example: ``constant_(bn.weight, 0.5)``."""
    _check(tensor, "constant_")
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fill with 0 (e.g. biases)."""
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fill with 1 (e.g. BatchNorm's weight)."""
    return constant_(tensor, 1.0)


def eye_(tensor: Tensor) -> Tensor:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal of a non-square one too).
    Example: ``eye_(Parameter(np.empty((3, 5))))``."""
    _check(tensor, "eye_")
    if tensor.ndim != 2:
        raise ValueError(f"eye_: only 2-dimensional tensors are supported, got shape {tensor.shape}.")
    with no_grad():
        tensor._inplace("eye_", lambda d: d.__setitem__(Ellipsis, np.eye(*d.shape, dtype=d.dtype)))
    return tensor


def dirac_(tensor: Tensor, groups: int = 1) -> Tensor:
    """Fill a 3-, 4- or 5-D convolution weight ``(out, in, *kernel)`` with the Dirac delta: the
    convolution (with "same" padding) passes the first ``min(out, in)`` channels of each of
    ``groups`` groups through unchanged. Example: ``dirac_(conv.weight)`` on a Conv2d(8, 8, 3, padding=1)."""
    _check(tensor, "dirac_")
    if tensor.ndim not in (3, 4, 5):
        raise ValueError(f"dirac_: only 3, 4 or 5-dimensional tensors are supported, got shape {tensor.shape}.")
    if groups < 1 or tensor.shape[0] % groups:
        raise ValueError(f"dirac_: the {tensor.shape[0]} output channels do not divide into groups={groups}.")
    out_per = tensor.shape[0] // groups
    n = min(out_per, tensor.shape[1])

    def fill(d: np.ndarray) -> None:
        d[...] = 0
        centre = tuple(k // 2 for k in d.shape[2:])
        for g in range(groups):
            for i in range(n):
                d[(g * out_per + i, i) + centre] = 1

    with no_grad():
        tensor._inplace("dirac_", fill)
    return tensor


def orthogonal_(tensor: Tensor, gain: float = 1.0, generator: Any = None, *, seed: Any = None) -> Tensor:
    """Fill with a (semi-)orthogonal matrix times ``gain`` (Saxe et al. 2013), dimensions after the
    first flattened: the QR factor of a Gaussian matrix, signs fixed so it is uniformly distributed.
    Example: ``orthogonal_(lin.weight)`` gives ``W @ W.T == I`` for a wide weight."""
    _check(tensor, "orthogonal_")
    if tensor.ndim < 2:
        raise ValueError(f"orthogonal_: only tensors with 2 or more dimensions are supported, got shape {tensor.shape}.")
    rng = get_rng(_rng("orthogonal_", generator, seed))
    rows = tensor.shape[0]
    cols = math.prod(tensor.shape[1:])

    def fill(d: np.ndarray) -> None:
        flat = rng.standard_normal((rows, cols))
        if rows < cols:
            flat = flat.T
        q, r = np.linalg.qr(flat)
        q = q * np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        d[...] = (gain * q).reshape(d.shape)

    with no_grad():
        tensor._inplace("orthogonal_", fill)
    return tensor


def xavier_uniform_(tensor: Tensor, gain: float = 1.0, generator: Any = None, *, seed: Any = None) -> Tensor:
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fi, fo = _fans(tensor, "xavier_uniform_")
    a = gain * math.sqrt(6.0 / (fi + fo))
    return _draw(tensor, "xavier_uniform_", _rng("xavier_uniform_", generator, seed), False, 2 * a, -a)


def xavier_normal_(tensor: Tensor, gain: float = 1.0, generator: Any = None, *, seed: Any = None) -> Tensor:
    """Glorot & Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fi, fo = _fans(tensor, "xavier_normal_")
    std = gain * math.sqrt(2.0 / (fi + fo))
    return _draw(tensor, "xavier_normal_", _rng("xavier_normal_", generator, seed), True, std, 0.0)


def _kaiming_std(t: Tensor, a: float, mode: str, nonlinearity: str, op: str) -> float:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"{op}: mode must be 'fan_in' or 'fan_out', got {mode!r}.")
    fi, fo = _fans(t, op)
    fan = fi if mode == "fan_in" else fo
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Any = None, *, seed: Any = None
) -> Tensor:
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan), gain from ``nonlinearity``
    (negative slope ``a`` for leaky_relu). Example: ``kaiming_uniform_(w, nonlinearity='relu')``."""
    b = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_uniform_")
    return _draw(tensor, "kaiming_uniform_", _rng("kaiming_uniform_", generator, seed), False, 2 * b, -b)


def kaiming_normal_(
    tensor: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu", generator: Any = None, *, seed: Any = None
) -> Tensor:
    """He et al. (2015): N(0, std^2) with std = gain / sqrt(fan). With ``nonlinearity='relu'`` and
    fan_in this is the "He init" std = sqrt(2 / fan_in)."""
    std = _kaiming_std(tensor, a, mode, nonlinearity, "kaiming_normal_")
    return _draw(tensor, "kaiming_normal_", _rng("kaiming_normal_", generator, seed), True, std, 0.0)


# The other common names of the same initialisers.
glorot_uniform_ = xavier_uniform_
glorot_normal_ = xavier_normal_
he_uniform_ = kaiming_uniform_
he_normal_ = kaiming_normal_
