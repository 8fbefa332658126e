"""im2col / col2im as differentiable ops: turn sliding windows into matrix rows (and back). The
functions users call (argument checks) are :func:`tinygrad_cnn.im2col` and :func:`tinygrad_cnn.col2im`,
defined in :mod:`tinygrad_cnn.nn.functional.windows`.

The public orientation (the textbook's) is ``(N*OH*OW, C*KH*KW)``: one row per output pixel
(image-major, then output row, then column), entries ordered (c, i, j), so
``im2col(x) @ W.reshape(C_out, -1).T`` is the convolution as one GEMM. The kernels underneath
(:mod:`tinygrad_cnn.kernels.im2col`) build its transpose, ``(C*KH*KW, N*OH*OW)``, the layout the
conv kernels use; :func:`im2col` returns a transposed view of that buffer, so the two share memory.

Both keep the input dtype. col2im is the adjoint of im2col: it adds every column entry back to
the input element it came from, so overlapping windows accumulate.
"""
from __future__ import annotations

from ..autograd.function import Function
from ..kernels.im2col import col2im_array, im2col_array
from . import vmap_rules as R


class Im2Col(Function):
    """x (N, C, H, W) -> columns (N*OH*OW, C*KH*KW); backward is :class:`Col2Im`."""

    @staticmethod
    def forward(ctx, x, win):
        ctx.shape = x.shape
        return im2col_array(x, win).T  # a transposed view of the internal buffer, no copy

    @staticmethod
    def vmap(info, x, win):
        xf, lead = R.fold(x)
        cols = Im2Col.apply(xf, win=win)
        return cols.reshape((lead[0], cols.shape[0] // lead[0], cols.shape[1]))

    @staticmethod
    def backward(ctx, g):
        return Col2Im.apply(g, shape=ctx.shape, win=ctx.params["win"])


class Col2Im(Function):
    """columns (N*OH*OW, C*KH*KW) -> (N, C, H, W), overlaps accumulate; backward is :class:`Im2Col`."""

    @staticmethod
    def forward(ctx, cols, shape, win):
        return col2im_array(cols.T, shape, win)

    @staticmethod
    def vmap(info, cols, shape, win):
        n = info.batch_size
        flat = cols.reshape((n * cols.shape[1], cols.shape[2]))
        y = Col2Im.apply(flat, shape=(n * shape[0],) + tuple(shape[1:]), win=win)
        return y.reshape((n,) + tuple(shape))

    @staticmethod
    def backward(ctx, g):
        return Im2Col.apply(g, win=ctx.params["win"])
