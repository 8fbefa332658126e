"""The functional API: every op as a function of Tensors (PyTorch's ``torch.nn.functional``).

Elementwise, reduction, shape and matmul functions come from :mod:`tinygrad_cnn.ops.functions`;
the neural-network functions (softmax family, losses, dropout, linear) are composed here.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..ops.conv import conv2d, conv_transpose2d  # noqa: F401  (re-exported)
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
from ..ops.pool import adaptive_avg_pool2d, avg_pool2d, max_pool2d  # noqa: F401  (re-exported)
from ..tensor import Tensor, as_tensor, get_rng


def _detached_max(x: Tensor, axis: int) -> Tensor:
    """The max of ``x`` along ``axis`` (kept as size 1), as a constant: the softmax family is
    shift-invariant, so the shift needs no gradient of its own."""
    return Tensor._make(np.max(x.data, axis=axis, keepdims=True), None, 0)


def logsumexp(x: Any, axis: int = -1, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over ``axis``, stable for large inputs: ``log(sum(exp(x - m))) + m`` with
    ``m`` the detached max, taken as 0 where it is infinite (as PyTorch does, so a row of -inf
    gives -inf and a row holding +inf gives inf). Shape: ``x`` with ``axis`` dropped, or kept as
    size 1 with ``keepdims``.

    >>> round(logsumexp(tensor(np.array([[1000.0, 1000.0]])), axis=1).item(), 4)
    1000.6931
    """
    x = as_tensor(x)
    m = _detached_max(x, axis)
    m.data = np.where(np.isfinite(m.data), m.data, 0).astype(x.dtype)
    out = ((x - m).exp().sum(axis=axis, keepdims=True)).log() + m
    return out if keepdims else squeeze(out, axis)


def log_softmax(x: Any, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, shape unchanged: ``s - log(sum(exp(s)))`` with
    ``s = x - max(x)``. Computing ``s`` once keeps the result as exact as PyTorch's in float32
    (``x - (m + log(sum))`` rounds ``m + log(sum)`` to the spacing of floats near ``m``: for
    logits near -1e4 that is about 1e-3). A row of -inf, or holding +inf or NaN, gives NaN.

    >>> log_softmax(tensor([0.0, 0.0])).exp().tolist()
    [0.5, 0.5]
    >>> log_softmax(tensor([-1e4, -1e4, -1e4])).tolist()  # -log(3) in float32
    [-1.0986123085021973, -1.0986123085021973, -1.0986123085021973]
    """
    x = as_tensor(x)
    s = x - _detached_max(x, axis)
    return s - s.exp().sum(axis=axis, keepdims=True).log()


def softmax(x: Any, axis: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``axis``, computed as ``exp(s) / sum(exp(s))`` with
    ``s = x - max(x)``: stable for logits of any size. Shape unchanged. A row of -inf, or
    holding +inf or NaN, gives NaN (as in PyTorch).

    >>> softmax(tensor([[1e4, 0.0]]), axis=1).tolist()
    [[1.0, 0.0]]
    """
    x = as_tensor(x)
    e = (x - _detached_max(x, axis)).exp()
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

    >>> logits = tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> round(cross_entropy(logits, np.array([0, 2])).item(), 4)
    0.6691
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
    """Mean (or sum/none) squared error between same-shaped tensors.

    >>> mse_loss(tensor([1.0, 3.0]), tensor([1.0, 1.0])).item()
    2.0
    """
    input = as_tensor(input)
    target = as_tensor(target, like=input)
    if input.shape != target.shape:
        raise ValueError(f"mse_loss: input shape {input.shape} and target shape {target.shape} differ.")
    d = input - target
    return _reduce(d * d, reduction, "mse_loss")


def dropout(x: Any, p: float = 0.5, training: bool = True, seed: Any = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p),
    so evaluation (``training=False``) is the identity. Shape unchanged; ``seed`` makes it
    repeatable.

    >>> sorted(set(dropout(ones(1000), p=0.5, seed=0).tolist()))
    [0.0, 2.0]
    """
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
    # weight.T is a view sharing the weight's version counter: an optimizer step between forward and
    # backward is still caught by the saved-array check.
    y = matmul(x, transpose(weight, -1, -2))
    return y + bias if bias is not None else y


def batch_norm(
    x: Any,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization over every axis but 1 (channels), PyTorch's formula.

    ``x`` (N, C, ...); ``running_mean``/``running_var``/``weight``/``bias`` (C,). Training: normalize
    with the batch mean and biased variance, and (if given) update the running statistics in place,
    ``r = (1 - momentum) * r + momentum * s`` with the *unbiased* batch variance. Evaluation:
    normalize with the running statistics. ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    Example::

        y = batch_norm(x, rm, rv, gamma, beta, training=True)   # x (8, 3, 5, 5), rm/rv/gamma/beta (3,)
    """
    x = as_tensor(x)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {x.shape}.")
    c = x.shape[1]
    for label, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {label} must have shape ({c},) for input {x.shape} with {c} channels, got {tuple(t.shape)}.")
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.size // c if c else 0
        if n <= 1:
            raise ValueError(
                f"batch_norm: training needs more than 1 value per channel to compute a variance, got input of "
                f"shape {x.shape}. Use a larger batch or eval mode."
            )
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        if running_mean is not None or running_var is not None:
            from ..autograd.grad_mode import no_grad

            with no_grad():
                if running_mean is not None:
                    running_mean.mul_(1.0 - momentum).add_(mean.data.reshape(c), alpha=momentum)
                if running_var is not None:
                    running_var.mul_(1.0 - momentum).add_(var.data.reshape(c) * (n / (n - 1)), alpha=momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var.")
        mean = reshape(as_tensor(running_mean).astype(x.dtype), bshape)
        var = reshape(as_tensor(running_var).astype(x.dtype), bshape)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * reshape(as_tensor(weight), bshape)
    if bias is not None:
        y = y + reshape(as_tensor(bias), bshape)
    return y


def local_response_norm(x: Any, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:
    """Local response normalization across channels (AlexNet), PyTorch's formula:
    ``y_c = x_c / (k + alpha / size * sum_{c'} x_{c'}^2) ** beta``, the sum over channels
    ``c - size//2 .. c + (size-1)//2`` (zero beyond the edges).

    ``x`` (N, C, ...) -> same shape. Example: ``local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0)``.
    """
    x = as_tensor(x)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: input must be (N, C, ...) with at least 3 dimensions, got shape {x.shape}.")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}.")
    c = x.shape[1]
    sq = pad(x * x, [(0, 0), (size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    # A window sum as `size` shifted slices: size is small (5 in AlexNet), so this is cheap.
    s = sq[:, 0:c]
    for i in range(1, size):
        s = s + sq[:, i : i + c]
    return x / (s * (alpha / size) + k) ** beta
