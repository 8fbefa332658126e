"""Reductions: sum, max, min, prod, cumsum. Mean, var, norm, logsumexp are composed from these in
``ops.functions``."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.function import Function
from . import vmap_rules as R
from .elementwise import Where


def normalize_axis(op: str, axis: Any, ndim: int) -> tuple[int, ...] | None:
    """Turn ``axis`` (None, int or tuple) into a sorted tuple of non-negative axes, or raise."""
    if axis is None:
        return None
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < max(ndim, 1) or (ndim == 0 and a not in (0, -1)):
            raise ValueError(
                f"{op}: axis {a} is out of range for a tensor with {ndim} dimension(s); "
                f"use an axis in [{-ndim}, {ndim - 1}]."
            )
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: axis {axis} repeats a dimension.")
    return tuple(sorted(out))


def _keep_shape(shape: tuple, axes: tuple[int, ...] | None) -> tuple:
    if axes is None:
        return (1,) * len(shape)
    return tuple(1 if i in axes else s for i, s in enumerate(shape))


class Sum(Function):
    vmap = staticmethod(R.reduction)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.in_shape = x.shape
        ctx.keep = _keep_shape(x.shape, axis)
        return np.sum(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.keep).expand(ctx.in_shape)


class _Extremum(Function):
    """Shared by Max and Min: ties share the gradient evenly (each of k tied elements gets 1/k)."""

    @classmethod
    def _forward(cls, ctx, x, axis, keepdims, fn):
        if x.size == 0:
            raise ValueError(f"{cls.__name__.lower()}: cannot reduce an empty tensor of shape {x.shape}.")
        y = fn(x, axis=axis, keepdims=True)
        mask = x == y
        # A NaN maximum equals nothing: 0/0 makes that slice's gradient NaN, as PyTorch's amax does.
        ctx.weights = (mask / mask.sum(axis=axis, keepdims=True)).astype(x.dtype if x.dtype.kind == "f" else np.float32)
        ctx.in_shape = x.shape
        ctx.keep = y.shape
        return y if keepdims else y.reshape(tuple(s for i, s in enumerate(x.shape) if axis is not None and i not in axis))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.keep).expand(ctx.in_shape) * ctx.weights


class Max(_Extremum):
    vmap = staticmethod(R.reduction)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Max._forward(ctx, x, axis, keepdims, np.max)


class Min(_Extremum):
    vmap = staticmethod(R.reduction)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        return Min._forward(ctx, x, axis, keepdims, np.min)


class Prod(Function):
    """Product over ``axis``. The gradient of each element is the product of the others, computed
    directly (not as prod / x) so zeros are handled; that product is itself a Prod, over a copy
    of the reduced elements with the diagonal set to 1, so higher orders follow."""

    vmap = staticmethod(R.reduction)

    @staticmethod
    def forward(ctx, x, axis=None, keepdims=False):
        ctx.in_shape = x.shape
        ctx.axis = axis
        ctx.save_for_backward(x)
        return np.prod(x, axis=axis, keepdims=keepdims)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        axes = tuple(range(x.ndim)) if ctx.axis is None else ctx.axis
        rest = tuple(i for i in range(x.ndim) if i not in axes)
        order = rest + axes
        xt = x.permute(order) if order != tuple(range(x.ndim)) else x
        m = int(np.prod([x.shape[a] for a in rest]))
        n = int(np.prod([x.shape[a] for a in axes]))
        rows = xt.reshape((m, 1, n)).expand((m, n, n))
        others = Prod.apply(Where.apply(1.0, rows, cond=np.eye(n, dtype=bool)), axis=(2,))  # (m, n)
        shaped = others.reshape(tuple(x.shape[a] for a in order))
        inverse = tuple(np.argsort(order))
        back = shaped.permute(inverse) if order != tuple(range(x.ndim)) else shaped
        return back * g.reshape(_keep_shape(ctx.in_shape, ctx.axis)).expand(ctx.in_shape)


class CumSum(Function):
    """Cumulative sum along ``axis``; the gradient is the reversed cumulative sum of ``g``."""

    @staticmethod
    def forward(ctx, x, axis):
        ctx.axis = axis
        return np.cumsum(x, axis=axis)

    @staticmethod
    def vmap(info, x, axis):
        return CumSum.apply(x, axis=int(axis) % (x.ndim - 1) + 1)

    @staticmethod
    def backward(ctx, g):
        flip = (slice(None),) * ctx.axis + (slice(None, None, -1),)
        return CumSum.apply(g[flip], axis=ctx.axis)[flip]
