"""Activations and the softmax family, PyTorch's signatures (``dim``/``keepdim``, with numpy's
``axis``/``keepdims`` accepted as aliases). Each is composed of differentiable Tensor ops, so
higher-order gradients work; exact GELU uses the one primitive it needs, ``Erf``."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...ops import functions as OF
from ...ops.elementwise import Erf
from ...tensor import Tensor, as_tensor
from .validation import check_not_inplace, check_option, resolve_dim, resolve_keepdim

__all__ = ["elu", "gelu", "hardtanh", "leaky_relu", "log_softmax", "logsumexp", "relu", "silu", "softmax"]


def _detached_max(x: Tensor, axis: int) -> Tensor:
    """The max of ``x`` along ``axis`` (kept as size 1), as a constant: the softmax family is
    shift-invariant, so the shift needs no gradient of its own."""
    return OF.detached_max(x, (axis,))


def _float_input(op: str, input: Any, dtype: Any = None) -> Tensor:  # noqa: A002
    x = as_tensor(input)
    if dtype is not None:
        x = x.astype(dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}; convert with .float() or pass dtype=.")
    return x


def _check_dim(op: str, x: Tensor, dim: Any) -> int:
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, bool) or not -max(x.ndim, 1) <= dim < max(x.ndim, 1):
        raise ValueError(f"{op}: dim must be an int in [{-max(x.ndim, 1)}, {max(x.ndim, 1)}) for input of shape {x.shape}, got {dim!r}.")
    return int(dim) if x.ndim else 0


def relu(input: Any, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(x, 0) elementwise, shape unchanged; the gradient at 0 is 0 (as in PyTorch).

    >>> relu(tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    check_not_inplace("relu", inplace)
    return OF.relu(input)


def logsumexp(input: Any, dim: Any = None, keepdim: Any = None, *, axis: Any = None, keepdims: Any = None) -> Tensor:  # noqa: A002
    """log(sum(exp(x))) over ``dim`` (default -1), stable for large inputs: ``log(sum(exp(x - m))) + m``
    with ``m`` the detached max, taken as 0 where it is infinite (as PyTorch does, so a row of -inf
    gives -inf and a row holding +inf gives inf). Shape: ``x`` with ``dim`` dropped, or kept as size
    1 with ``keepdim``. ``axis``/``keepdims`` are aliases.

    >>> round(logsumexp(tensor(np.array([[1000.0, 1000.0]])), dim=1).item(), 4)
    1000.6931
    """
    x = _float_input("logsumexp", input)
    d = _check_dim("logsumexp", x, resolve_dim("logsumexp", dim, axis, -1))
    keep = resolve_keepdim("logsumexp", keepdim, keepdims)
    m = OF.detached_max(x, (d,), finite=True)
    out = ((x - m).exp().sum(axis=d, keepdims=True)).log() + m
    return out if keep else OF.squeeze(out, d)


def log_softmax(input: Any, dim: Any = None, dtype: Any = None, *, axis: Any = None) -> Tensor:  # noqa: A002
    """log(softmax(x)) along ``dim`` (default -1), shape unchanged: ``s - log(sum(exp(s)))`` with
    ``s = x - max(x)``. Computing ``s`` once keeps the result as exact as PyTorch's in float32
    (``x - (m + log(sum))`` rounds ``m + log(sum)`` to the spacing of floats near ``m``). A row of
    -inf, or holding +inf or NaN, gives NaN. ``dtype`` casts the input first; ``axis`` is an alias.

    >>> log_softmax(tensor([0.0, 0.0])).exp().tolist()
    [0.5, 0.5]
    >>> log_softmax(tensor([-1e4, -1e4, -1e4])).tolist()  # -log(3) in float32
    [-1.0986123085021973, -1.0986123085021973, -1.0986123085021973]
    """
    x = _float_input("log_softmax", input, dtype)
    d = _check_dim("log_softmax", x, resolve_dim("log_softmax", dim, axis, -1))
    s = x - _detached_max(x, d)
    return s - s.exp().sum(axis=d, keepdims=True).log()


def softmax(input: Any, dim: Any = None, dtype: Any = None, *, axis: Any = None) -> Tensor:  # noqa: A002
    """exp(x) / sum(exp(x)) along ``dim`` (default -1), computed as ``exp(s) / sum(exp(s))`` with
    ``s = x - max(x)``: stable for logits of any size. Shape unchanged. A row of -inf, or holding
    +inf or NaN, gives NaN (as in PyTorch). ``dtype`` casts the input first; ``axis`` is an alias.

    >>> softmax(tensor([[1e4, 0.0]]), dim=1).tolist()
    [[1.0, 0.0]]
    """
    x = _float_input("softmax", input, dtype)
    d = _check_dim("softmax", x, resolve_dim("softmax", dim, axis, -1))
    e = (x - _detached_max(x, d)).exp()
    return e / e.sum(axis=d, keepdims=True)


def gelu(input: Any, approximate: str = "none") -> Tensor:  # noqa: A002
    """Gaussian error linear unit, shape unchanged: ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``
    (``approximate='none'``) or ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` ('tanh').

    >>> [round(v, 4) for v in gelu(tensor([-1.0, 0.0, 1.0])).tolist()]
    [-0.1587, 0.0, 0.8413]
    """
    check_option("gelu", "approximate", approximate, ("none", "tanh"))
    x = _float_input("gelu", input)
    if approximate == "tanh":
        return x * 0.5 * (((x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)).tanh() + 1.0)
    return x * 0.5 * (Erf.apply(x * (1.0 / math.sqrt(2.0))) + 1.0)


def silu(input: Any, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * sigmoid(x) elementwise (also called swish), shape unchanged.

    >>> round(silu(tensor([1.0])).item(), 4)
    0.7311
    """
    check_not_inplace("silu", inplace)
    x = _float_input("silu", input)
    return x * x.sigmoid()


def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else ``negative_slope * x``; shape unchanged. The gradient at 0 is
    ``negative_slope`` (as in PyTorch).

    >>> leaky_relu(tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    check_not_inplace("leaky_relu", inplace)
    x = _float_input("leaky_relu", input)
    return OF.where(x > 0, x, x * float(negative_slope))  # a Tensor condition: per example under vmap


def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else ``alpha * (exp(x) - 1)``; shape unchanged.

    >>> [round(v, 4) for v in elu(tensor([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    check_not_inplace("elu", inplace)
    x = _float_input("elu", input)
    pos = x > 0
    # exp only of the non-positive side: exp of a large positive x would overflow to inf, and
    # the inf would turn the zero gradient of the unused branch into NaN.
    neg = (OF.where(pos, 0.0, x).exp() - 1.0) * float(alpha)
    return OF.where(pos, x, neg)


def hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """Clamp to [min_val, max_val], shape unchanged; the gradient passes only strictly inside
    (as in PyTorch).

    >>> hardtanh(tensor([-2.0, 0.5, 2.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    check_not_inplace("hardtanh", inplace)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val}).")
    x = _float_input("hardtanh", input)
    inside = (x.data > min_val) & (x.data < max_val)
    return OF.where(inside, x, Tensor(np.clip(x.data, min_val, max_val)))
