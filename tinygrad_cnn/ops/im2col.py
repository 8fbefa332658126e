"""im2col / col2im as differentiable ops: turn sliding windows into matrix rows (and back).

The public orientation (the textbook's) is ``(N*OH*OW, C*KH*KW)``: one row per output pixel
(image-major, then output row, then column), entries ordered (c, i, j), so
``im2col(x) @ W.reshape(C_out, -1).T`` is the convolution as one GEMM. The kernels underneath
(:mod:`tinygrad_cnn.kernels.im2col`) build its transpose, ``(C*KH*KW, N*OH*OW)``, the layout the
conv kernels use; :func:`im2col` returns a transposed view of that buffer, so the two share memory.

Both keep the input dtype. col2im is the adjoint of im2col: it adds every column entry back to
the input element it came from, so overlapping windows accumulate.
"""
from __future__ import annotations

from typing import Any

from ..autograd import function as _graph
from ..autograd.function import Function
from ..kernels.geometry import Window, conv_output_size, pair
from ..kernels.im2col import col2im_array, im2col_array


class Im2Col(Function):
    """x (N, C, H, W) -> columns (N*OH*OW, C*KH*KW); backward is :class:`Col2Im`."""

    @staticmethod
    def forward(ctx, x, win):
        ctx.shape = x.shape
        return im2col_array(x, win).T  # a transposed view of the internal buffer, no copy

    @staticmethod
    def backward(ctx, g):
        return Col2Im.apply(g, shape=ctx.shape, win=ctx.params["win"])


class Col2Im(Function):
    """columns (N*OH*OW, C*KH*KW) -> (N, C, H, W), overlaps accumulate; backward is :class:`Im2Col`."""

    @staticmethod
    def forward(ctx, cols, shape, win):
        return col2im_array(cols.T, shape, win)

    @staticmethod
    def backward(ctx, g):
        return Im2Col.apply(g, win=ctx.params["win"])


def _window(op: str, shape: tuple[int, ...], kernel_size: Any, stride: Any, padding: Any, dilation: Any) -> Window:
    named = (("kernel_size", kernel_size), ("stride", stride), ("padding", padding), ("dilation", dilation))
    k, s, p, d = (pair(op, n, v) for n, v in named)
    for name, v, lo in (("kernel_size", k, 1), ("stride", s, 1), ("dilation", d, 1), ("padding", p, 0)):
        if min(v) < lo:
            raise ValueError(f"{op}: {name} must be {'positive' if lo else 'non-negative'}, got {v}.")
    h, w = shape[-2:]
    out = (conv_output_size(h, k[0], s[0], p[0], d[0]), conv_output_size(w, k[1], s[1], p[1], d[1]))
    if min(out) < 1:
        raise ValueError(
            f"{op}: the kernel {k} (dilation {d}, extent {tuple(dd * (kk - 1) + 1 for dd, kk in zip(d, k))}) is larger "
            f"than the padded input {(h + 2 * p[0], w + 2 * p[1])} (input {(h, w)}, padding {p}); use a smaller "
            "kernel or more padding."
        )
    return Window(k, s, p, d, out)


def im2col(x: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Any:
    """Unfold sliding windows of ``x`` (N, C, H, W) into columns (N*OH*OW, C*KH*KW), one row per
    output pixel (image-major, then row, then column), entries ordered (c, i, j). Differentiable
    (its backward is :func:`col2im`); keeps the dtype.

    Example::

        x = tinygrad_cnn.randn(1, 3, 7, 7)
        im2col(x, 5).shape            # (9, 75): 3x3 output pixels, 3*5*5 entries each
    """
    x = _graph.as_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"im2col: input must be 4-D (N, C, H, W), got shape {x.shape}.")
    return Im2Col.apply(x, win=_window("im2col", x.shape, kernel_size, stride, padding, dilation))


def col2im(cols: Any, input_shape: Any, kernel_size: Any, stride: Any = 1, padding: Any = 0, dilation: Any = 1) -> Any:
    """Fold columns (N*OH*OW, C*KH*KW) back into an (N, C, H, W) = ``input_shape`` tensor, adding
    entries of overlapping windows. The adjoint of :func:`im2col` (not its inverse: an element
    covered by k windows comes back k times). Differentiable; keeps the dtype.

    Example::

        x = tinygrad_cnn.ones(1, 1, 3, 3)
        col2im(im2col(x, 2), (1, 1, 3, 3), 2).numpy()[0, 0]   # [[1,2,1],[2,4,2],[1,2,1]]
    """
    cols = _graph.as_tensor(cols)
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 4:
        raise ValueError(f"col2im: input_shape must be (N, C, H, W), got {input_shape!r}.")
    win = _window("col2im", shape, kernel_size, stride, padding, dilation)
    rows = shape[0] * win.out[0] * win.out[1]
    width = shape[1] * win.kernel[0] * win.kernel[1]
    if cols.shape != (rows, width):
        raise ValueError(
            f"col2im: for input_shape {shape} and kernel {win.kernel} (output grid {win.out}) the columns must have shape "
            f"(N*OH*OW, C*KH*KW) = {(rows, width)}, got {cols.shape}. Pass the input_shape and window arguments used for im2col."
        )
    return Col2Im.apply(cols, shape=shape, win=win)
