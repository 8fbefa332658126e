"""Activations, PyTorch's signatures; the softmax family (``softmax``, ``log_softmax``,
``logsumexp``) is :mod:`tinygrad_cnn.ops.functions`', re-exported here. Each is composed of
differentiable Tensor ops, so higher-order gradients work; exact GELU uses the one primitive it
needs, ``Erf``."""
from __future__ import annotations

import math
from typing import Any

from ...autograd.grad_mode import function_scope
from ...ops import functions as OF
from ...ops.elementwise import Erf
from ...ops.functions import float_input, log_softmax, logsumexp, softmax  # noqa: F401  (re-exported: one implementation, in ops)
from ...tensor import Tensor
from .validation import check_not_inplace, check_option

__all__ = ["elu", "gelu", "hardtanh", "leaky_relu", "log_softmax", "logsumexp", "relu", "silu", "softmax"]


def relu(input: Any, inplace: bool = False) -> Tensor:  # noqa: A002
    """max(x, 0) elementwise, shape unchanged; the gradient at 0 is 0 (as in PyTorch).

    >>> relu(tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    check_not_inplace("relu", inplace)
    return OF.relu(input)


@function_scope("gelu")
def gelu(input: Any, approximate: str = "none") -> Tensor:  # noqa: A002
    """Gaussian error linear unit, shape unchanged: ``x * Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))``
    (``approximate='none'``) or ``0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`` ('tanh').

    >>> [round(v, 4) for v in gelu(tensor([-1.0, 0.0, 1.0])).tolist()]
    [-0.1587, 0.0, 0.8413]
    """
    check_option("gelu", "approximate", approximate, ("none", "tanh"))
    x = float_input("gelu", input)
    if approximate == "tanh":
        return x * 0.5 * (((x + x * x * x * 0.044715) * math.sqrt(2.0 / math.pi)).tanh() + 1.0)
    return x * 0.5 * (Erf.apply(x * (1.0 / math.sqrt(2.0))) + 1.0)


@function_scope("silu")
def silu(input: Any, inplace: bool = False) -> Tensor:  # noqa: A002
    """x * sigmoid(x) elementwise (also called swish), shape unchanged.

    >>> round(silu(tensor([1.0])).item(), 4)
    0.7311
    """
    check_not_inplace("silu", inplace)
    x = float_input("silu", input)
    return x * x.sigmoid()


@function_scope("leaky_relu")
def leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else ``negative_slope * x``; shape unchanged. The gradient at 0 is
    ``negative_slope`` (as in PyTorch).

    >>> leaky_relu(tensor([-2.0, 3.0]), 0.5).tolist()
    [-1.0, 3.0]
    """
    check_not_inplace("leaky_relu", inplace)
    x = float_input("leaky_relu", input)
    return OF.where(x > 0, x, x * float(negative_slope))  # a Tensor condition: per example under vmap


@function_scope("elu")
def elu(input: Any, alpha: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """x where x > 0, else ``alpha * (exp(x) - 1)``; shape unchanged.

    >>> [round(v, 4) for v in elu(tensor([-1.0, 2.0])).tolist()]
    [-0.6321, 2.0]
    """
    check_not_inplace("elu", inplace)
    x = float_input("elu", input)
    pos = x > 0
    # exp only of the non-positive side: exp of a large positive x would overflow to inf, and
    # the inf would turn the zero gradient of the unused branch into NaN.
    neg = (OF.where(pos, 0.0, x).exp() - 1.0) * float(alpha)
    return OF.where(pos, x, neg)


@function_scope("hardtanh")
def hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> Tensor:  # noqa: A002
    """Clamp to [min_val, max_val], shape unchanged; the gradient passes only strictly inside
    (as in PyTorch).

    >>> hardtanh(tensor([-2.0, 0.5, 2.0])).tolist()
    [-1.0, 0.5, 1.0]
    """
    check_not_inplace("hardtanh", inplace)
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val}).")
    x = float_input("hardtanh", input)
    # A Tensor condition (not x.data), so it batches under vmap; the clipped constant outside.
    inside = (x > min_val) & (x < max_val)
    return OF.where(inside, x, OF.clip(x.detach(), min_val, max_val))
