"""Normalization functions with PyTorch's signatures: batch_norm, layer_norm, local_response_norm."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd.grad_mode import function_scope, no_grad
from ...ops import functions as OF
from ...tensor import Tensor, as_tensor

__all__ = ["batch_norm", "layer_norm", "local_response_norm"]


@function_scope("batch_norm")
def batch_norm(
    input: Any,  # noqa: A002
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Any = None,
    bias: Any = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Batch normalization over every axis but 1 (channels), PyTorch's formula.

    ``input`` (N, C, ...); ``running_mean``/``running_var``/``weight``/``bias`` (C,). Training: normalize
    with the batch mean and biased variance, and (if given) update the running statistics in place,
    ``r = (1 - momentum) * r + momentum * s`` with the *unbiased* batch variance. Evaluation:
    normalize with the running statistics. ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    Example::

        y = batch_norm(x, rm, rv, gamma, beta, training=True)   # x (8, 3, 5, 5), rm/rv/gamma/beta (3,)
    """
    x = as_tensor(input)
    if x.ndim < 2:
        raise ValueError(f"batch_norm: input must be (N, C, ...), got shape {x.shape}.")
    c = x.shape[1]
    for label, t in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != (c,):
            raise ValueError(f"batch_norm: {label} must have shape ({c},) for input {x.shape} with {c} channels, got {tuple(t.shape)}.")
    axes = (0,) + tuple(range(2, x.ndim))
    bshape = (1, c) + (1,) * (x.ndim - 2)
    if training:
        n = x.numel() // c if c else 0
        if n <= 1:
            raise ValueError(
                f"batch_norm: training needs more than 1 value per channel to compute a variance, got input of "
                f"shape {x.shape}. Use a larger batch or eval mode."
            )
        if getattr(x, "is_batched", False) and (running_mean is not None or running_var is not None):
            # As torch.func: the running statistics would be updated once per example in place.
            raise RuntimeError(
                "batch_norm: in training mode under vmap the running_mean and running_var would be updated "
                "in place by every example. Call model.eval() to use the running statistics (per-example "
                "gradients usually want this), or build the layer with track_running_stats=False."
            )
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axes, keepdim=True, correction=0)
        if running_mean is not None or running_var is not None:
            with no_grad():
                if running_mean is not None:
                    running_mean.mul_(1.0 - momentum).add_(mean.data.reshape(c), alpha=momentum)
                if running_var is not None:
                    running_var.mul_(1.0 - momentum).add_(var.data.reshape(c) * (n / (n - 1)), alpha=momentum)
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch_norm: evaluation (training=False) needs running_mean and running_var.")
        mean = OF.reshape(as_tensor(running_mean).astype(x.dtype), bshape)
        var = OF.reshape(as_tensor(running_var).astype(x.dtype), bshape)
    y = (x - mean) / (var + eps).sqrt()
    if weight is not None:
        y = y * OF.reshape(as_tensor(weight), bshape)
    if bias is not None:
        y = y + OF.reshape(as_tensor(bias), bshape)
    return y


@function_scope("layer_norm")
def layer_norm(input: Any, normalized_shape: Any, weight: Any = None, bias: Any = None, eps: float = 1e-5) -> Tensor:  # noqa: A002
    """Layer normalization over the last ``len(normalized_shape)`` dimensions, PyTorch's formula:
    ``y = (x - mean) / sqrt(var + eps) * weight + bias`` with the biased variance; ``weight`` and
    ``bias`` have shape ``normalized_shape``. ``input`` (*, *normalized_shape) -> same shape.

    >>> [round(v, 4) for v in layer_norm(tensor([[1.0, 3.0]]), (2,)).tolist()[0]]
    [-1.0, 1.0]
    """
    x = as_tensor(input)
    shape = (int(normalized_shape),) if isinstance(normalized_shape, (int, np.integer)) else tuple(int(s) for s in normalized_shape)
    k = len(shape)
    if k == 0 or x.ndim < k or x.shape[x.ndim - k :] != shape:
        raise ValueError(
            f"layer_norm: normalized_shape {shape} must be the last dimensions of the input, got input of shape {x.shape}."
        )
    for label, t in (("weight", weight), ("bias", bias)):
        if t is not None and tuple(t.shape) != shape:
            raise ValueError(f"layer_norm: {label} must have shape normalized_shape = {shape}, got {tuple(t.shape)}.")
    axes = tuple(range(x.ndim - k, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    d = x - mean
    var = (d * d).mean(axis=axes, keepdims=True)
    y = d / (var + eps).sqrt()
    if weight is not None:
        y = y * as_tensor(weight)
    if bias is not None:
        y = y + as_tensor(bias)
    return y


@function_scope("local_response_norm")
def local_response_norm(input: Any, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> Tensor:  # noqa: A002
    """Local response normalization across channels (AlexNet), PyTorch's formula:
    ``y_c = x_c / (k + alpha / size * sum_{c'} x_{c'}^2) ** beta``, the sum over channels
    ``c - size//2 .. c + (size-1)//2`` (zero beyond the edges).

    ``input`` (N, C, ...) -> same shape. Example: ``local_response_norm(x, size=5, alpha=1e-4, beta=0.75, k=2.0)``.
    """
    x = as_tensor(input)
    if x.ndim < 3:
        raise ValueError(f"local_response_norm: input must be (N, C, ...) with at least 3 dimensions, got shape {x.shape}.")
    if not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"local_response_norm: size must be a positive integer, got {size!r}.")
    c = x.shape[1]
    sq = OF.pad(x * x, [(0, 0), (size // 2, (size - 1) // 2)] + [(0, 0)] * (x.ndim - 2))
    # A window sum as `size` shifted slices: size is small (5 in AlexNet), so this is cheap.
    s = sq[:, 0:c]
    for i in range(1, size):
        s = s + sq[:, i : i + c]
    return x / (s * (alpha / size) + k) ** beta
