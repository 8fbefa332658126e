"""The functional API: every op as a function of Tensors (PyTorch's ``torch.nn.functional``).

Elementwise, reduction, shape and matmul functions come from :mod:`tinygrad_cnn.ops.functions`;
the neural-network functions (softmax family, losses, dropout, linear) are composed here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.grad_mode import STATE
from ..ops.functions import (  # noqa: F401  (re-exported)
    abs,
    add,
    broadcast_to,
    cat,
    clip,
    concatenate,
    div,
    exp,
    expand,
    flatten,
    getitem,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    permute,
    pow,
    relu,
    reshape,
    sigmoid,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from ..tensor import Tensor, as_tensor, get_rng


def logsumexp(x: Any, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis``, stable for large inputs (shifts by the detached max)."""
    x = as_tensor(x)
    m = Tensor._make(np.max(x.data, axis=axis, keepdims=True), None, 0)
    m.data = np.where(np.isfinite(m.data), m.data, 0).astype(x.dtype)
    out = ((x - m).exp().sum(axis=axis, keepdims=True)).log() + m
    return out if keepdims else squeeze(out, axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed stably. Shape unchanged."""
    x = as_tensor(x)
    return x - logsumexp(x, axis=axis, keepdims=True)


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, stable for logits of any size. Shape unchanged."""
    x = as_tensor(x)
    m = Tensor._make(np.max(x.data, axis=axis, keepdims=True), None, 0)
    e = (x - m).exp()
    return e / e.sum(axis=axis, keepdims=True)


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}.")


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of ``logits`` (N, C).

    ``target`` is either integer class labels (N,) in [0, C), or class probabilities / one-hot
    (N, C). Stable for logits of any magnitude (uses log_softmax).

    Example::

        loss = cross_entropy(model(x), labels)        # labels: int array of shape (N,)
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must have shape (N, C), got {logits.shape}.")
    n, c = logits.shape
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    logp = log_softmax(logits, axis=1)
    if t.dtype.kind in "iu":
        if t.shape != (n,):
            raise ValueError(
                f"cross_entropy: integer labels must have shape (N,) = ({n},), got {t.shape}. "
                "For one-hot targets pass a float array of shape (N, C)."
            )
        if t.size and (t.min() < 0 or t.max() >= c):
            bad = t[(t < 0) | (t >= c)]
            raise ValueError(f"cross_entropy: labels must lie in [0, {c}), got {bad[:5].tolist()}.")
        loss = -logp[np.arange(n), t]
    else:
        if t.shape != (n, c):
            raise ValueError(
                f"cross_entropy: probability targets must have the logits' shape {(n, c)}, got {t.shape}."
            )
        loss = -(logp * as_tensor(target, like=logits)).sum(axis=1)
    return _reduce(loss, reduction, "cross_entropy")


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Mean squared error between same-shaped tensors."""
    input = as_tensor(input)
    target = as_tensor(target, like=input)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ.")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def dropout(x: Any, p: float = 0.5, training: bool = True, seed: Any = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p),
    so evaluation (``training=False``) is the identity."""
    x = as_tensor(x)
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}.")
    if not training or p == 0.0:
        return x
    keep = get_rng(seed).random(x.shape) >= p
    return x * (keep.astype(x.dtype) / np.asarray(1.0 - p, dtype=x.dtype))


def linear(x: Any, weight: Any, bias: Any = None) -> Tensor:
    """x @ weight.T + bias with weight (out_features, in_features), as in PyTorch."""
    x = as_tensor(x)
    if x.shape[-1] != weight.shape[-1]:
        raise ValueError(
            f"linear: input has {x.shape[-1]} features (shape {x.shape}) but weight expects "
            f"{weight.shape[-1]} (weight shape {weight.shape})."
        )
    y = x @ weight.mT
    return y + bias if bias is not None else y


def is_grad_enabled() -> bool:
    return STATE.enabled
