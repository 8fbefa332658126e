"""Shape and indexing primitives: reshape, permute, expand, getitem (and its adjoint), concat, pad."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import function as _graph
from ..autograd.function import Function
from . import vmap_rules as R
from .elementwise import sum_to


class Reshape(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def vmap(info, x, shape):
        return Reshape.apply(x, shape=(x.shape[0],) + tuple(shape))

    @staticmethod
    def backward(ctx, g):
        return g.reshape(ctx.in_shape)


class Permute(Function):
    is_view = True

    @staticmethod
    def forward(ctx, x, axes):
        return np.transpose(x, axes)

    @staticmethod
    def vmap(info, x, axes):
        n = x.ndim - 1
        return Permute.apply(x, axes=(0,) + tuple(int(a) % n + 1 for a in axes))

    @staticmethod
    def backward(ctx, g):
        axes = ctx.params["axes"]
        return g.permute(tuple(axes.index(i) for i in range(len(axes))))


class Expand(Function):
    is_view = True
    """Broadcast to a larger shape (a read-only view); backward sums over the broadcast axes."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.in_shape = x.shape
        return np.broadcast_to(x, shape)

    @staticmethod
    def vmap(info, x, shape):
        return Expand.apply(R.pad_batched(x, len(shape)), shape=(x.shape[0],) + tuple(shape))

    @staticmethod
    def backward(ctx, g):
        return sum_to(g, ctx.in_shape)


def is_basic_index(index: tuple) -> bool:
    """Basic (slice/int/None/Ellipsis) indices select each element at most once."""
    return all(isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis))) for i in index)


class GetItem(Function):
    """``x[index]``; backward scatters (accumulating repeated integer indices) via ``IndexAdd``."""

    is_view = True  # basic indexing gives a view; advanced indexing a copy (apply checks which)

    @staticmethod
    def forward(ctx, x, index):
        ctx.index = index
        ctx.in_shape = x.shape
        return x[index]

    @staticmethod
    def vmap(info, x, index):
        idx = batched_index(index)
        if idx is None:
            return NotImplemented
        return GetItem.apply(x, index=idx)

    @staticmethod
    def backward(ctx, g):
        return IndexAdd.apply(g, index=ctx.index, shape=ctx.in_shape)


class IndexAdd(Function):
    """``zeros(shape)`` with ``g`` added at ``index`` (repeats accumulate); backward gathers."""

    @staticmethod
    def forward(ctx, g, index, shape):
        ctx.index = index
        out = np.zeros(shape, dtype=g.dtype)
        if is_basic_index(index if isinstance(index, tuple) else (index,)):
            out[index] = g
        else:
            np.add.at(out, index, g)
        return out

    @staticmethod
    def vmap(info, g, index, shape):
        idx = batched_index(index)
        if idx is None:
            return NotImplemented
        return IndexAdd.apply(g, index=idx, shape=(g.shape[0],) + tuple(shape))

    @staticmethod
    def backward(ctx, gg):
        return GetItem.apply(gg, index=ctx.index)


class Concat(Function):
    @staticmethod
    def forward(ctx, *xs, axis):
        ctx.axis = axis
        ctx.sizes = [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def vmap(info, *xs, axis):
        b = info.batch_size
        parts = [x if f else R.expand_batch(x, b) for x, f in zip(xs, info.batched)]
        return Concat.apply(*parts, axis=int(axis) % (parts[0].ndim - 1) + 1)

    @staticmethod
    def backward(ctx, g):
        out, start = [], 0
        lead = (slice(None),) * (ctx.axis % g.ndim)
        for n, need in zip(ctx.sizes, ctx.needs_input_grad):
            out.append(g[lead + (slice(start, start + n),)] if need else None)
            start += n
        return tuple(out)


class Pad(Function):
    """Constant padding; ``pad_width`` is numpy's ((before, after), ...) per axis."""

    @staticmethod
    def forward(ctx, x, pad_width, value=0.0):
        ctx.index = tuple(slice(b, b + s) for (b, _), s in zip(pad_width, x.shape))
        return np.pad(x, pad_width, constant_values=value)

    @staticmethod
    def vmap(info, x, pad_width, value=0.0):
        return Pad.apply(x, pad_width=((0, 0),) + tuple(tuple(p) for p in pad_width), value=value)

    @staticmethod
    def backward(ctx, g):
        return g[ctx.index]


R.Reshape, R.Expand, R.Permute = Reshape, Expand, Permute


def batched_index(index: Any) -> tuple | None:
    """``index`` for an array with a batch dimension in front, or None where prepending a full
    slice would move the batch dimension (advanced indices split by a slice go first in numpy)."""
    idx = index if isinstance(index, tuple) else (index,)
    adv = [k for k, i in enumerate(idx) if not isinstance(i, (int, np.integer, slice, type(None), type(Ellipsis)))]
    if len(adv) > 1 and adv[-1] - adv[0] + 1 != len(adv):
        return None
    if any(isinstance(i, np.ndarray) and i.dtype == bool for i in idx) and len(adv) > 1:
        return None
    return (slice(None),) + idx


def along(index: np.ndarray, dim: int) -> tuple:
    """The advanced index that picks ``x[i0, .., index[i0, .., ik], .., ik]`` at each position of
    ``index`` (``gather``'s pattern): ``index`` itself along ``dim``, the position elsewhere.
    With it, :class:`GetItem` gathers and :class:`IndexAdd` scatter-adds."""
    grids: list[np.ndarray] = list(np.indices(index.shape, sparse=True))
    grids[dim] = index
    return tuple(grids)


def normalize_index(index: Any) -> Any:
    """Replace Tensors inside an index by their arrays."""
    Tensor = _graph.Tensor  # bound by tensor.py once the class exists

    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return np.asarray(index)
    return index
