"""Loss functions with PyTorch's signatures and reductions, composed of differentiable Tensor ops,
and the target encoding :func:`one_hot`.

Class weights (``weight``, ``pos_weight``) are constants, as in PyTorch's classification
losses; inputs and (for the regression and binary losses) targets get gradients."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...autograd.grad_mode import function_scope
from ...ops import functions as OF
from ...ops.batching import physical
from ...tensor import Tensor, as_tensor
from .activation import log_softmax
from .validation import check_reduction

__all__ = [
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "cross_entropy",
    "l1_loss",
    "mse_loss",
    "nll_loss",
    "one_hot",
    "smooth_l1_loss",
]


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _array(t: Any) -> np.ndarray:
    if getattr(t, "is_batched", False):  # inside vmap: per-example targets stay a Tensor (see _pick_batched)
        return t
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def _class_weight(op: str, weight: Any, c: int, dtype: Any) -> np.ndarray | None:
    if weight is None:
        return None
    w = _array(weight)
    if w.shape != (c,):
        raise ValueError(f"{op}: weight must have one entry per class, shape ({c},), got {w.shape}.")
    return w.astype(dtype, copy=False)


def _classes_last(op: str, x: Tensor) -> tuple[Tensor, tuple[int, ...]]:
    """(N, C, d1, ...) -> (N*d1*..., C), (C,) -> (1, C); also the batch shape (N, d1, ...) or ()."""
    if x.ndim == 0:
        raise ValueError(f"{op}: input must be (C,), (N, C) or (N, C, d1, ...), got a scalar.")
    if x.ndim == 1:
        return OF.reshape(x, (1, x.shape[0])), ()
    if x.ndim == 2:
        return x, (x.shape[0],)
    batch = (x.shape[0],) + x.shape[2:]
    moved = OF.permute(x, (0,) + tuple(range(2, x.ndim)) + (1,))
    return OF.reshape(moved, (-1, x.shape[1])), batch


def _pick(op: str, logp: Tensor, target: np.ndarray, batch: tuple[int, ...], weight: Any, ignore_index: int) -> tuple[Tensor, Any]:
    """Per-sample ``-w[t] * logp[i, t]`` (flat, zero where t == ignore_index) and the weights w[t]
    (None when there are no weights and no sample is ignored)."""
    c = logp.shape[1]
    if getattr(target, "is_batched", False):
        return _pick_batched(op, logp, target, batch, weight, ignore_index)
    if target.shape != batch:
        raise ValueError(
            f"{op}: class-index target must have shape {batch} for input with classes on dim 1 (C = {c}), got {target.shape}. "
            "For class probabilities pass a float target of the input's shape."
        )
    t = target.reshape(-1).astype(np.int64)
    keep = t != ignore_index
    bad = t[keep & ((t < 0) | (t >= c))]
    if bad.size:
        raise ValueError(f"{op}: class indices must lie in [0, {c}) (or equal ignore_index={ignore_index}), got {bad[:5].tolist()}.")
    safe = np.where(keep, t, 0)
    w = _class_weight(op, weight, c, logp.dtype)
    picked = logp[np.arange(t.size), safe]
    if w is None and keep.all():  # the common case: no weights to apply, nothing to mask
        return -picked, None
    ws = ((w[safe] if w is not None else 1.0) * keep).astype(logp.dtype, copy=False)
    return -(picked * ws), ws


def _pick_batched(op: str, logp: Tensor, target: Any, batch: tuple[int, ...], weight: Any, ignore_index: int) -> tuple[Tensor, Any]:
    """``_pick`` inside vmap, where each example has its own class indices: ``logp`` is read at
    the target through a one-hot mask built by comparison, so no Python indexing on values."""
    c = logp.shape[1]
    if target.shape != batch:
        raise ValueError(f"{op}: class-index target must have shape {batch} for input with classes on dim 1 (C = {c}), got {target.shape}.")
    vals = physical(target)[0].data
    bad = vals[(vals != ignore_index) & ((vals < 0) | (vals >= c))]
    if bad.size:
        raise ValueError(f"{op}: class indices must lie in [0, {c}) (or equal ignore_index={ignore_index}), got {bad[:5].tolist()}.")
    t = target.reshape((-1, 1))
    onehot = (t == Tensor(np.arange(c, dtype=np.int64))).astype(logp.dtype)
    picked = (logp * onehot).sum(axis=1)
    w = _class_weight(op, weight, c, logp.dtype)
    if w is None and not (vals == ignore_index).any():
        return -picked, None
    ws = (t.reshape((-1,)) != ignore_index).astype(logp.dtype)
    if w is not None:
        ws = ws * (onehot * Tensor(w)).sum(axis=1)
    return -(picked * ws), ws


def _reduce_weighted(loss: Tensor, ws: Any, reduction: str, batch: tuple[int, ...]) -> Tensor:
    """PyTorch's reduction of class-index losses: 'mean' divides by the summed weights of the
    samples not ignored (NaN when there are none), not by the sample count."""
    if reduction == "none":
        return OF.reshape(loss, batch)
    if ws is None:  # every sample counts once
        return _reduce(loss, reduction)
    total = loss.sum()
    if reduction == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        if isinstance(ws, Tensor):  # per-example weights inside vmap
            return total / ws.sum()
        return total / np.asarray(ws.sum(), dtype=loss.dtype)


@function_scope("nll_loss")
def nll_loss(input: Any, target: Any, weight: Any = None, ignore_index: int = -100, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Negative log-likelihood of log-probabilities ``input`` (N, C), (N, C, d1, ...) or (C,) at the
    integer class indices ``target`` (N,), (N, d1, ...) or (): per sample ``-weight[t] * input[n, t]``,
    0 where ``t == ignore_index``. 'mean' divides by the sum of ``weight[t]`` over the samples kept.

    >>> nll_loss(tensor([[-1.0, -2.0], [-3.0, -4.0]]), np.array([0, 1])).item()
    2.5
    """
    check_reduction("nll_loss", reduction)
    x = as_tensor(input)
    t = _array(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"nll_loss: target must hold integer class indices (int64), got dtype {t.dtype}.")
    flat, batch = _classes_last("nll_loss", x)
    loss, ws = _pick("nll_loss", flat, t, batch, weight, ignore_index)
    return _reduce_weighted(loss, ws, reduction, batch)


@function_scope("cross_entropy")
def cross_entropy(
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy of logits ``input`` (N, C), (N, C, d1, ...) or (C,), as in PyTorch.

    ``target`` is integer class indices (N,) / (N, d1, ...) / () in [0, C) (or ``ignore_index``), or
    float class probabilities of the input's shape. ``weight`` (C,) weighs each class;
    ``label_smoothing`` in [0, 1] mixes the target with the uniform distribution. For class indices
    'mean' divides by the summed weights of the samples kept; for probabilities by the number of
    samples. Stable for logits of any magnitude (log_softmax).

    >>> logits = tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    >>> round(cross_entropy(logits, np.array([0, 2])).item(), 4)
    0.6691
    """
    check_reduction("cross_entropy", reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}.")
    x = as_tensor(input)
    if x.dtype.kind != "f":
        raise TypeError(f"cross_entropy: input (logits) must be floating point, got dtype {x.dtype}; convert with .float().")
    flat, batch = _classes_last("cross_entropy", x)
    c = flat.shape[1]
    logp = log_softmax(flat, dim=1)
    t = _array(target)
    w = _class_weight("cross_entropy", weight, c, x.dtype)
    if t.dtype.kind in "iu":
        loss, ws = _pick("cross_entropy", logp, t, batch, weight, ignore_index)
        if label_smoothing > 0.0:  # PyTorch: (1 - eps) * nll + eps / C * sum_c -w[c] * logp[c], ignored samples 0
            lw = logp * Tensor(w) if w is not None else logp
            kept = (t.reshape(-1) != ignore_index).astype(x.dtype)
            loss = loss * (1.0 - label_smoothing) + (-lw.sum(axis=1)) * (kept * (label_smoothing / c))
        return _reduce_weighted(loss, ws, reduction, batch)
    if t.shape != x.shape:
        raise ValueError(
            f"cross_entropy: probability targets must have the input's shape {x.shape}, got {t.shape}. "
            "For class indices pass an integer array."
        )
    tt = as_tensor(target, like=x)
    if tt.dtype != x.dtype:
        tt = tt.astype(x.dtype)
    tflat, _ = _classes_last("cross_entropy", tt)
    if label_smoothing > 0.0:
        tflat = tflat * (1.0 - label_smoothing) + label_smoothing / c
    prod = logp * tflat
    if w is not None:
        prod = prod * Tensor(w)
    loss = -prod.sum(axis=1)
    if reduction == "none":
        return OF.reshape(loss, batch)
    return loss.sum() if reduction == "sum" else loss.mean()


def _same_shape(op: str, input: Any, target: Any) -> tuple[Tensor, Tensor]:  # noqa: A002
    x = as_tensor(input)
    t = as_tensor(target, like=x)
    if x.shape != t.shape:
        raise ValueError(f"{op}: input shape {x.shape} and target shape {t.shape} differ; they must be the same.")
    return x, t


@function_scope("mse_loss")
def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Squared error ``(input - target)^2`` between same-shaped tensors, reduced by ``reduction``.

    >>> mse_loss(tensor([1.0, 3.0]), tensor([1.0, 1.0])).item()
    2.0
    """
    check_reduction("mse_loss", reduction)
    x, t = _same_shape("mse_loss", input, target)
    d = x - t
    return _reduce(d * d, reduction)


@function_scope("l1_loss")
def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Absolute error ``|input - target|`` between same-shaped tensors, reduced by ``reduction``.

    >>> l1_loss(tensor([1.0, 3.0]), tensor([2.0, 1.0])).item()
    1.5
    """
    check_reduction("l1_loss", reduction)
    x, t = _same_shape("l1_loss", input, target)
    return _reduce((x - t).abs(), reduction)


@function_scope("smooth_l1_loss")
def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:  # noqa: A002
    """Huber-like loss of ``d = input - target``: ``0.5 d^2 / beta`` where ``|d| < beta``, else
    ``|d| - 0.5 beta`` (``beta = 0`` is the L1 loss). Same-shaped tensors.

    >>> smooth_l1_loss(tensor([0.5, 3.0]), tensor([0.0, 0.0]), reduction="none").tolist()
    [0.125, 2.5]
    """
    check_reduction("smooth_l1_loss", reduction)
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}.")
    x, t = _same_shape("smooth_l1_loss", input, target)
    d = x - t
    a = d.abs()
    if beta == 0:
        return _reduce(a, reduction)
    return _reduce(OF.where(a < beta, d * d * (0.5 / beta), a - 0.5 * beta), reduction)


def _weighted(op: str, loss: Tensor, weight: Any) -> Tensor:
    if weight is None:
        return loss
    w = as_tensor(weight, like=loss)
    try:
        np.broadcast_shapes(w.shape, loss.shape)
    except ValueError:
        raise ValueError(f"{op}: weight of shape {w.shape} does not broadcast to the input's shape {loss.shape}.") from None
    return loss * Tensor(w.data.astype(loss.dtype, copy=False))


@function_scope("binary_cross_entropy")
def binary_cross_entropy(input: Any, target: Any, weight: Any = None, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Binary cross-entropy of probabilities ``input`` in [0, 1] against ``target`` of the same
    shape: ``-weight * (t log x + (1 - t) log(1 - x))``, each log clamped at -100 as in PyTorch.

    >>> round(binary_cross_entropy(tensor([0.5, 0.9]), tensor([1.0, 1.0])).item(), 4)
    0.3993
    """
    check_reduction("binary_cross_entropy", reduction)
    x, t = _same_shape("binary_cross_entropy", input, target)
    xd = physical(x)[0].data  # inside vmap: the whole batch's values, checked at once
    if xd.size and (np.nanmin(xd) < 0 or np.nanmax(xd) > 1):
        raise ValueError(
            "binary_cross_entropy: input must hold probabilities in [0, 1], got values in "
            f"[{np.nanmin(xd)}, {np.nanmax(xd)}]; for logits use binary_cross_entropy_with_logits."
        )
    with np.errstate(divide="ignore"):  # log(0) = -inf is clamped to -100 below
        log_x = OF.clip(x.log(), min=-100.0)
        log_1mx = OF.clip((1.0 - x).log(), min=-100.0)
    loss = -(t * log_x + (1.0 - t) * log_1mx)
    return _reduce(_weighted("binary_cross_entropy", loss, weight), reduction)


def _softplus(z: Tensor) -> Tensor:
    """log(1 + exp(z)) without overflow: max(z, 0) + log(1 + exp(-|z|)). ``maximum`` (not relu)
    splits the gradient at z = 0, so the derivative there is sigmoid(0) = 0.5."""
    return OF.maximum(z, 0.0) + ((-z.abs()).exp() + 1.0).log()


@function_scope("binary_cross_entropy_with_logits")
def binary_cross_entropy_with_logits(
    input: Any,  # noqa: A002
    target: Any,
    weight: Any = None,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """Binary cross-entropy of logits ``input`` (sigmoid applied inside, stably) against ``target``
    of the same shape: ``-weight * (pos_weight * t * log s(x) + (1 - t) * log(1 - s(x)))``.
    ``pos_weight`` broadcasts along the last dimension (one weight per class).

    >>> round(binary_cross_entropy_with_logits(tensor([0.0, 2.0]), tensor([1.0, 0.0])).item(), 4)
    1.41
    """
    check_reduction("binary_cross_entropy_with_logits", reduction)
    x, t = _same_shape("binary_cross_entropy_with_logits", input, target)
    pos = _softplus(-x)  # -log sigmoid(x)
    neg = _softplus(x)  # -log(1 - sigmoid(x))
    if pos_weight is None:
        loss = t * pos + (1.0 - t) * neg
    else:
        pw = _array(pos_weight)
        try:
            np.broadcast_shapes(pw.shape, x.shape)
        except ValueError:
            raise ValueError(
                f"binary_cross_entropy_with_logits: pos_weight of shape {pw.shape} does not broadcast to the input's shape {x.shape}."
            ) from None
        loss = t * pos * Tensor(pw.astype(x.dtype, copy=False)) + (1.0 - t) * neg
    return _reduce(_weighted("binary_cross_entropy_with_logits", loss, weight), reduction)


def one_hot(tensor: Any, num_classes: int = -1) -> Tensor:
    """Integer class indices of any shape (*) -> int64 one-hot encoding (*, num_classes);
    ``num_classes=-1`` takes one more than the largest index. Not differentiable (integer result).

    >>> one_hot(np.array([0, 2])).tolist()
    [[1, 0, 0], [0, 0, 1]]
    """
    batched = getattr(tensor, "is_batched", False)
    if batched and num_classes == -1:
        raise ValueError(
            "one_hot: num_classes=-1 (inferred from the largest index) is not supported inside vmap, where it would depend "
            "on the values of all examples; pass num_classes."
        )
    t = physical(tensor)[0].data if batched else tensor.data if isinstance(tensor, Tensor) else np.asarray(tensor)
    if t.dtype.kind not in "iu":
        raise TypeError(f"one_hot: input must hold integer class indices (int64), got dtype {t.dtype}.")
    if t.size and t.min() < 0:
        raise ValueError(f"one_hot: class indices must be non-negative, got {t[t < 0][:5].tolist()}.")
    if num_classes == -1:
        if not t.size:
            raise ValueError("one_hot: cannot infer num_classes from an empty tensor; pass num_classes.")
        num_classes = int(t.max()) + 1
    elif num_classes < 1 or (t.size and t.max() >= num_classes):
        largest = t.max() if t.size else "none"
        raise ValueError(f"one_hot: num_classes={num_classes} must be positive and greater than the largest index ({largest}).")
    if batched:  # the encoding of the whole batch at once (the checks above ran on all its values)
        from ...ops.batching import map_physical

        return map_physical(tensor, lambda a, k: _one_hot(a, int(num_classes)))
    return Tensor(_one_hot(t, int(num_classes)))


def _one_hot(t: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(t.shape + (n,), dtype=np.int64)
    np.put_along_axis(out, t[..., None].astype(np.int64), 1, axis=-1)
    return out
