"""Tensor-level functions: validate arguments, then apply primitives (or compose them).

These back the Tensor methods and are re-exported by ``tinygrad_cnn.nn.functional``.
"""
from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import elementwise as E
from .linalg import MatMul
from .movement import Concat, Expand, GetItem, Pad, Permute, Reshape, normalize_index
from .reduce import Max, Min, Sum, normalize_axis


def _t(x: Any, like: Any = None) -> Any:
    from ..tensor import as_tensor

    return as_tensor(x, like=like)


# ---- elementwise ---------------------------------------------------------------------------
def add(a: Any, b: Any) -> Any:
    """a + b with broadcasting; shapes follow numpy (e.g. (N, C) + (C,) -> (N, C)).

    >>> add(tensor([1.0, 2.0]), 1.0).tolist()
    [2.0, 3.0]
    """
    return E.Add.apply(a, b)


def sub(a: Any, b: Any) -> Any:
    """a - b with broadcasting.

    >>> sub(tensor([1.0, 2.0]), tensor([[1.0], [2.0]])).shape
    (2, 2)
    """
    return E.Sub.apply(a, b)


def mul(a: Any, b: Any) -> Any:
    """a * b with broadcasting.

    >>> mul(tensor([1.0, 2.0]), 3.0).tolist()
    [3.0, 6.0]
    """
    return E.Mul.apply(a, b)


def div(a: Any, b: Any) -> Any:
    """a / b with broadcasting.

    >>> div(tensor([1.0, 2.0]), 4.0).tolist()
    [0.25, 0.5]
    """
    return E.Div.apply(a, b)


def neg(x: Any) -> Any:
    """-x, same shape.

    >>> neg(tensor([1.0, -2.0])).tolist()
    [-1.0, 2.0]
    """
    return E.Neg.apply(x)


def pow(x: Any, exponent: Any) -> Any:  # noqa: A001
    """x ** exponent; a Python-number exponent is a constant, a Tensor exponent is differentiated
    too (d/db a**b = a**b log a, taken as 0 where a <= 0). Same broadcasting as ``mul``.

    >>> pow(tensor([2.0, 3.0]), 2).tolist()
    [4.0, 9.0]
    """
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
        return E.PowScalar.apply(x, exponent=exponent)
    return E.Pow.apply(x, exponent)


def exp(x: Any) -> Any:
    """e ** x elementwise, same shape.

    >>> round(exp(tensor([1.0])).item(), 4)
    2.7183
    """
    return E.Exp.apply(x)


def log(x: Any) -> Any:
    """Natural logarithm elementwise, same shape.

    >>> log(tensor([1.0])).item()
    0.0
    """
    return E.Log.apply(x)


def sqrt(x: Any) -> Any:
    """Square root elementwise, same shape.

    >>> sqrt(tensor([4.0, 9.0])).tolist()
    [2.0, 3.0]
    """
    return E.Sqrt.apply(x)


def abs(x: Any) -> Any:  # noqa: A001
    """|x| elementwise; gradient 0 at x == 0 (as in PyTorch).

    >>> abs(tensor([-1.5, 2.0])).tolist()
    [1.5, 2.0]
    """
    return E.Abs.apply(x)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent elementwise, same shape.

    >>> tanh(tensor([0.0])).item()
    0.0
    """
    return E.Tanh.apply(x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + e ** -x) elementwise, computed without overflow for large |x|.

    >>> sigmoid(tensor([0.0, 1000.0])).tolist()
    [0.5, 1.0]
    """
    return E.Sigmoid.apply(x)


def relu(x: Any) -> Any:
    """max(x, 0) elementwise; gradient 0 at x == 0.

    >>> relu(tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return E.ReLU.apply(x)


def maximum(a: Any, b: Any) -> Any:
    """Elementwise maximum with broadcasting; ties split the gradient equally (0.5 each).

    >>> maximum(tensor([1.0, 5.0]), 3.0).tolist()
    [3.0, 5.0]
    """
    return E.Maximum.apply(a, b)


def minimum(a: Any, b: Any) -> Any:
    """Elementwise minimum with broadcasting; ties split the gradient equally (0.5 each).

    >>> minimum(tensor([1.0, 5.0]), 3.0).tolist()
    [1.0, 3.0]
    """
    return E.Minimum.apply(a, b)


def where(cond: Any, a: Any, b: Any) -> Any:
    """Elementwise ``cond ? a : b`` with broadcasting; ``cond`` (a boolean Tensor or array) is not
    differentiated.

    >>> where(tensor([1.0, -1.0]) > 0, 1.0, tensor([0.0, 0.0])).tolist()
    [1.0, 0.0]
    """
    c = cond.data if hasattr(cond, "data") and not isinstance(cond, np.ndarray) else np.asarray(cond)
    if c.dtype != bool:
        raise TypeError(f"where: cond must be boolean, got dtype {c.dtype}; compare first, e.g. where(x > 0, a, b).")
    return E.Where.apply(a, b, cond=c)


def clip(x: Any, min: float | None = None, max: float | None = None) -> Any:  # noqa: A002
    """Clamp to [min, max] (either may be None), same shape; the gradient passes where
    min <= x <= max.

    >>> clip(tensor([-2.0, 0.5, 2.0]), -1.0, 1.0).tolist()
    [-1.0, 0.5, 1.0]
    """
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max.")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) is greater than max ({max}).")
    return E.Clip.apply(x, lo=min, hi=max)


# ---- reductions ---------------------------------------------------------------------------
def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Sum over ``axis`` (None: all; an int or a tuple), dropping those axes unless ``keepdims``.

    >>> sum(ones(2, 3, 4), axis=(0, 2), keepdims=True).shape
    (1, 3, 1)
    """
    x = _t(x)
    return Sum.apply(x, axis=normalize_axis("sum", axis, x.ndim), keepdims=keepdims)


def _count(x: Any, axes: tuple[int, ...] | None) -> int:
    return x.size if axes is None else math.prod(x.shape[a] for a in axes)


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Any:
    """Mean over ``axis`` (None: all), dropping those axes unless ``keepdims``.

    >>> mean(tensor([[1.0, 3.0]]), axis=1).tolist()
    [2.0]
    """
    x = _t(x)
    axes = normalize_axis("mean", axis, x.ndim)
    n = _count(x, axes)
    if n == 0:
        raise ValueError(f"mean: reducing over zero elements (shape {x.shape}, axis {axis}).")
    return Sum.apply(x, axis=axes, keepdims=keepdims) * (1.0 / n)


def var(x: Any, axis: Any = None, keepdims: bool = False, ddof: int = 0) -> Any:
    """Variance over ``axis`` with ``ddof`` delta degrees of freedom (0: population variance).

    >>> var(tensor([1.0, 3.0])).item()
    1.0
    """
    x = _t(x)
    axes = normalize_axis("var", axis, x.ndim)
    n = _count(x, axes)
    if n - ddof <= 0:
        raise ValueError(f"var: {n} element(s) with ddof={ddof} leaves no degrees of freedom.")
    d = x - mean(x, axes, keepdims=True)
    return Sum.apply(d * d, axis=axes, keepdims=keepdims) * (1.0 / (n - ddof))


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Maximum over ``axis`` (None: all); tied maxima share the gradient equally (1/k each).

    >>> max(tensor([[1.0, 4.0], [3.0, 2.0]]), axis=0).tolist()
    [3.0, 4.0]
    """
    x = _t(x)
    return Max.apply(x, axis=normalize_axis("max", axis, x.ndim), keepdims=keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Any:  # noqa: A001
    """Minimum over ``axis`` (None: all); tied minima share the gradient equally (1/k each).

    >>> min(tensor([[1.0, 4.0], [3.0, 2.0]]), axis=1).tolist()
    [1.0, 2.0]
    """
    x = _t(x)
    return Min.apply(x, axis=normalize_axis("min", axis, x.ndim), keepdims=keepdims)


# ---- shapes ---------------------------------------------------------------------------------
def reshape(x: Any, shape: Sequence[int]) -> Any:
    """Reshape to ``shape`` with the same number of elements (one dimension may be -1).

    >>> reshape(ones(2, 6), (3, -1)).shape
    (3, 4)
    """
    x = _t(x)
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:
        return x
    known = math.prod(s for s in shape if s != -1)
    unknown = shape.count(-1)
    ok = unknown <= 1 and all(s >= -1 for s in shape)
    if ok and unknown == 1:
        ok = known > 0 and x.size % known == 0
        if ok:
            shape = tuple(x.size // known if s == -1 else s for s in shape)
    elif ok:
        ok = known == x.size
    if not ok:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} elements) into {shape}; "
            "the number of elements must stay the same (at most one -1)."
        )
    return Reshape.apply(x, shape=shape)


def permute(x: Any, axes: Sequence[int]) -> Any:
    """Reorder axes: output axis i is input axis ``axes[i]``.

    >>> permute(ones(8, 3, 5, 7), (0, 2, 3, 1)).shape  # NCHW -> NHWC
    (8, 5, 7, 3)
    """
    x = _t(x)
    axes = tuple(int(a) for a in axes)
    if sorted(a % builtins.max(x.ndim, 1) for a in axes) != list(range(x.ndim)) or len(axes) != x.ndim:
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of a tensor of shape {x.shape}.")
    axes = tuple(a % x.ndim for a in axes)
    if axes == tuple(range(x.ndim)):
        return x
    return Permute.apply(x, axes=axes)


def transpose(x: Any, dim0: int = -2, dim1: int = -1) -> Any:
    """Swap two axes (default: the last two).

    >>> transpose(ones(2, 3, 4), 0, 2).shape
    (4, 3, 2)
    """
    x = _t(x)
    if x.ndim < 2:
        raise ValueError(f"transpose: needs at least 2 dimensions, got shape {x.shape}.")
    axes = list(range(x.ndim))
    d0, d1 = normalize_axis("transpose", dim0, x.ndim)[0], normalize_axis("transpose", dim1, x.ndim)[0]  # type: ignore[index]
    axes[d0], axes[d1] = axes[d1], axes[d0]
    return permute(x, axes)


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    """Merge dimensions start_dim..end_dim into one.

    >>> flatten(ones(10, 3, 4, 4), 1).shape  # (N, C, H, W) -> (N, C*H*W)
    (10, 48)
    """
    x = _t(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_axis("flatten", start_dim, x.ndim)[0]  # type: ignore[index]
    e = normalize_axis("flatten", end_dim, x.ndim)[0]  # type: ignore[index]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}.")
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def squeeze(x: Any, axis: Any = None) -> Any:
    """Drop size-1 axes (all of them, or those in ``axis``).

    >>> squeeze(ones(1, 3, 1)).shape
    (3,)
    """
    x = _t(x)
    if axis is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    axes = normalize_axis("squeeze", axis, x.ndim) or ()
    for a in axes:
        if x.shape[a] != 1:
            raise ValueError(f"squeeze: axis {a} has size {x.shape[a]}, not 1 (shape {x.shape}).")
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Any, axis: int) -> Any:
    """Insert a size-1 axis at ``axis`` (negative counts from the end of the result).

    >>> unsqueeze(ones(3), 0).shape
    (1, 3)
    """
    x = _t(x)
    n = x.ndim + 1
    if not -n <= axis < n:
        raise ValueError(f"unsqueeze: axis {axis} out of range for a result with {n} dimensions.")
    a = axis % n
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    """Broadcast to ``shape`` (numpy rules); the gradient is summed back to the input shape.

    >>> broadcast_to(ones(3, 1), (2, 3, 4)).shape
    (2, 3, 4)
    """
    x = _t(x)
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:
        return x
    try:
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"broadcast_to: cannot broadcast shape {x.shape} to {shape}: aligned from the right, each "
            "dimension must equal the target's or be 1."
        ) from None
    return Expand.apply(x, shape=shape)


expand = broadcast_to


def getitem(x: Any, index: Any) -> Any:
    """``x[index]``: ints, slices, None, Ellipsis, integer arrays (repeated indices accumulate
    in the gradient) and boolean masks; the result shape follows numpy.

    >>> getitem(arange(6.0).reshape(2, 3), (slice(None), 1)).tolist()
    [1.0, 4.0]
    """
    x = _t(x)
    index = normalize_index(index)
    try:
        x.data[index]
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape {x.shape}: {e}") from None
    return GetItem.apply(x, index=index)


def cat(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Concatenate along an existing axis; other dimensions must match.

    >>> cat([ones(2, 3), ones(2, 1)], axis=1).shape
    (2, 4)
    """
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ValueError("cat: needs at least one tensor.")
    nd = ts[0].ndim
    a = normalize_axis("cat", axis, nd)[0]  # type: ignore[index]
    for i, t in enumerate(ts):
        if t.ndim != nd or t.shape[:a] + t.shape[a + 1 :] != ts[0].shape[:a] + ts[0].shape[a + 1 :]:
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape} but tensor 0 has shape {ts[0].shape}; all shapes "
                f"must match except along axis {a}."
            )
    return Concat.apply(*ts, axis=a)


concatenate = cat


def stack(tensors: Sequence[Any], axis: int = 0) -> Any:
    """Stack equal-shaped tensors along a new axis.

    >>> stack([ones(3), zeros(3)]).shape
    (2, 3)
    """
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ValueError("stack: needs at least one tensor.")
    for i, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has shape {ts[0].shape}; they must match.")
    return cat([unsqueeze(t, axis) for t in ts], axis=axis)


def pad(x: Any, pad_width: Any, value: float = 0.0) -> Any:
    """Constant padding with numpy's ``pad_width``: an int, a (before, after) pair, or one pair per
    axis.

    >>> pad(ones(1, 2, 2), ((0, 0), (1, 1), (1, 1))).shape
    (1, 4, 4)
    """
    x = _t(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2)) if np.ndim(pad_width) < 2 else np.asarray(pad_width, dtype=int)
    if pw.shape != (x.ndim, 2) or (pw < 0).any():
        raise ValueError(f"pad: pad_width {pad_width!r} must give non-negative (before, after) pairs for each of the {x.ndim} axes.")
    return Pad.apply(x, pad_width=tuple(map(tuple, pw.tolist())), value=value)


# ---- linear algebra -------------------------------------------------------------------------
def matmul(a: Any, b: Any) -> Any:
    """Matrix product with numpy's rules: 1-D operands are promoted (and the added axis removed);
    leading dimensions broadcast, e.g. (B, n, k) @ (k, m) -> (B, n, m).

    >>> matmul(ones(5, 2, 3), ones(3, 4)).shape
    (5, 2, 4)
    """
    from ..tensor import Tensor

    a = _t(a, b if isinstance(b, Tensor) else None)
    b = _t(b, a)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need at least 1 dimension; use * for scalars.")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions {ka} and {kb} differ.")
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} do not broadcast.") from None
    if a.ndim >= 2 and b.ndim >= 2:
        return MatMul.apply(a, b)
    a2 = reshape(a, (1, ka)) if a.ndim == 1 else a
    b2 = reshape(b, (kb, 1)) if b.ndim == 1 else b
    y = MatMul.apply(a2, b2)
    if b.ndim == 1:
        y = squeeze(y, -1)
    if a.ndim == 1:
        y = squeeze(y, -2 if b.ndim > 1 else -1) if y.ndim else y
    return y
