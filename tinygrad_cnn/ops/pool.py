"""Pooling primitives; the functions users call (argument checks, output sizes) are
:func:`tinygrad_cnn.nn.functional.max_pool2d`, ``avg_pool2d`` and ``adaptive_avg_pool2d``.
The arithmetic is in :mod:`tinygrad_cnn.kernels.pool`; the ops here wire it into the graph.

Backward rules, each an op of the graph with its own backward:

- ``MaxPool2d`` saves, per output, the kernel position k = i*KW + j of its maximum (the first
  maximum in row-major window order wins ties, as in PyTorch's CPU kernel). Its backward is
  ``MaxPoolScatter`` (add each output gradient into the input element at its argmax;
  overlapping windows accumulate), whose backward is ``MaxPoolGather`` (read the gradient at
  the argmax), whose backward is ``MaxPoolScatter`` again.
- ``AvgPool2d``'s backward is ``AvgPoolSpread`` (each output gradient spread evenly, g/divisor,
  over its window), whose backward is ``AvgPool2d``.
"""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..kernels import pool as K
from . import vmap_rules as R


class MaxPool2d(Function):
    """Max pooling, padding acting as -inf; with ``return_indices`` also the argmax kernel positions."""

    new_gradients = True

    @staticmethod
    def forward(ctx, x, win, return_indices=False):
        out, idx = K.max_pool2d(x, win, argmax=bool(ctx.needs_input_grad) or return_indices)
        if idx is None:
            return out
        ctx.idx, ctx.shape = idx, x.shape
        if not return_indices:
            return out
        ctx.mark_non_differentiable(idx)
        return out, idx

    @staticmethod
    def vmap(info, x, win, return_indices=False):
        xf, lead = R.fold(x)
        y = MaxPool2d.apply(xf, win=win, return_indices=return_indices)
        if isinstance(y, tuple):
            return tuple(R.unfold(t, lead) for t in y)
        return R.unfold(y, lead)

    @staticmethod
    def backward(ctx, g, *_):
        return MaxPoolScatter.apply(g, idx=ctx.idx, shape=ctx.shape, win=ctx.params["win"])


class MaxPoolScatter(Function):
    """zeros(shape) with g[n, c, oh, ow] added at the argmax of window (oh, ow); backward gathers."""

    new_gradients = True

    @staticmethod
    def forward(ctx, g, idx, shape, win):
        return K.max_pool_scatter(g, idx, shape, win)

    @staticmethod
    def vmap(info, g, idx, shape, win):
        gf, lead = R.fold(g)
        tiled = np.broadcast_to(idx, (lead[0],) + idx.shape).reshape((-1,) + idx.shape[1:])
        return R.unfold(MaxPoolScatter.apply(gf, idx=tiled, shape=(gf.shape[0],) + tuple(shape[1:]), win=win), lead)

    @staticmethod
    def backward(ctx, gg):
        return MaxPoolGather.apply(gg, idx=ctx.params["idx"], win=ctx.params["win"])


class MaxPoolGather(Function):
    """x (N, C, H, W) read at each window's saved argmax -> (N, C, OH, OW); backward scatters."""

    new_gradients = True

    @staticmethod
    def forward(ctx, x, idx, win):
        ctx.shape = x.shape
        return K.max_pool_gather(x, idx, win)

    @staticmethod
    def vmap(info, x, idx, win):
        xf, lead = R.fold(x)
        tiled = np.broadcast_to(idx, (lead[0],) + idx.shape).reshape((-1,) + idx.shape[1:])
        return R.unfold(MaxPoolGather.apply(xf, idx=tiled, win=win), lead)

    @staticmethod
    def backward(ctx, g):
        return MaxPoolScatter.apply(g, idx=ctx.params["idx"], shape=ctx.shape, win=ctx.params["win"])


class AvgPool2d(Function):
    """Average pooling (zero padding); ``inv`` is 1/divisor per output pixel (OH, OW)."""

    new_gradients = True

    @staticmethod
    def forward(ctx, x, win, inv):
        ctx.shape = x.shape
        return K.avg_pool2d(x, win, inv)

    @staticmethod
    def vmap(info, x, win, inv):
        xf, lead = R.fold(x)
        return R.unfold(AvgPool2d.apply(xf, win=win, inv=inv), lead)

    @staticmethod
    def backward(ctx, g):
        return AvgPoolSpread.apply(g, shape=ctx.shape, win=ctx.params["win"], inv=ctx.params["inv"])


class AvgPoolSpread(Function):
    """g (N, C, OH, OW) spread evenly (g * inv) over each window -> (N, C, H, W); backward is AvgPool2d."""

    new_gradients = True

    @staticmethod
    def forward(ctx, g, shape, win, inv):
        return K.avg_pool_spread(g, shape, win, inv)

    @staticmethod
    def vmap(info, g, shape, win, inv):
        gf, lead = R.fold(g)
        return R.unfold(AvgPoolSpread.apply(gf, shape=(gf.shape[0],) + tuple(shape[1:]), win=win, inv=inv), lead)

    @staticmethod
    def backward(ctx, gg):
        return AvgPool2d.apply(gg, win=ctx.params["win"], inv=ctx.params["inv"])
