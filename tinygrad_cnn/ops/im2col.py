"""im2col / col2im: turn sliding windows into matrix columns (and back), the core of conv and pool.

Two orientations of the same matrix:

- **public** (:func:`im2col` / :func:`col2im`, the textbook's orientation): ``(N*OH*OW, C*KH*KW)``,
  one row per output pixel (image-major, then output row, then column), entries ordered
  (c, i, j), so ``im2col(x) @ W.reshape(C_out, -1).T`` is the convolution as one GEMM.
- **internal** (used by the conv ops): its transpose, ``(C*KH*KW, N*OH*OW)``, stored
  channel-major. Row ``c*KH*KW + i*KW + j`` holds, for every output pixel, the input element
  under kernel position (i, j) of channel c. It is filled by one copy from a strided view of
  the input that shows all windows at once (no Python loop, :func:`windows`), and the conv is then
  ``W.reshape(C_out, -1) @ cols`` (one GEMM per group), run by the conv ops in chunks of images.
  :func:`im2col` returns a transposed view of this buffer, so the two share memory. (Convs whose
  columns would dwarf their input unfold it along the width only: ``ops/conv_rows.py``.)

Both keep the input dtype (float32 in, float32 out). col2im is the adjoint of im2col: it adds
every column entry back to the input element it came from, so overlapping windows accumulate.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..autograd.function import Function


def pair(op: str, name: str, v: Any) -> tuple[int, int]:
    """``v`` (an int or a pair of ints) as a pair; TypeError naming ``op`` otherwise."""
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in v):
        return int(v[0]), int(v[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}.")


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis: ``(size + 2p - d*(k-1) - 1) // s + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


class Window(NamedTuple):
    """Sliding-window geometry over the last two axes: kernel, stride, padding, dilation and the
    output grid ``out`` = (OH, OW). Window (oh, ow) covers padded rows ``oh*sh + i*dh``."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out: tuple[int, int]

    def padded_hw(self, h: int, w: int) -> tuple[int, int]:
        # ceil_mode (pooling) or an explicit out grid (conv_transpose) may reach past H + 2p.
        need = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(self.out, self.stride, self.dilation, self.kernel)]
        return max(h + 2 * self.padding[0], need[0]), max(w + 2 * self.padding[1], need[1])

    def positions(self) -> Iterator[tuple[int, tuple[slice, slice]]]:
        """(kernel position k = i*KW + j, (row slice, column slice) of the padded input)."""
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = self.kernel, self.stride, self.dilation, self.out
        for i in range(kh):
            rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
            for j in range(kw):
                yield i * kw + j, (rows, slice(j * dw, j * dw + (ow - 1) * sw + 1, sw))

    @property
    def disjoint(self) -> bool:
        """True when no input element lies in two windows (then col2im may assign, not add)."""
        return all(s >= d * (k - 1) + 1 for s, d, k in zip(self.stride, self.dilation, self.kernel))


def pad_input(x: np.ndarray, win: Window, value: float = 0.0) -> np.ndarray:
    """``x`` (N, C, H, W) padded for ``win`` with ``value``; ``x`` itself when no padding is needed."""
    h, w = x.shape[-2:]
    hn, wn = win.padded_hw(h, w)
    if (hn, wn) == (h, w):
        return x
    ph, pw = win.padding
    xp = np.full(x.shape[:-2] + (hn, wn), value, dtype=x.dtype)
    xp[..., ph : ph + h, pw : pw + w] = x
    return xp


def unpad(xp: np.ndarray, win: Window, h: int, w: int) -> np.ndarray:
    """Crop a padded (.., Hn, Wn) array back to (.., h, w) (a copy, so the big buffer is freed)."""
    ph, pw = win.padding
    if xp.shape[-2:] == (h, w):
        return xp
    return np.ascontiguousarray(xp[..., ph : ph + h, pw : pw + w])


def view_as(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a.reshape(shape)`` that must be a view (writes through it reach ``a``); AttributeError if
    the strides do not allow one, where reshape would silently copy."""
    v = a.view()
    v.shape = shape
    return v


def windows(x: np.ndarray, win: Window) -> np.ndarray:
    """A read-only strided view of every window of x (N, C, H, W), zero padded: (C, KH, KW, N, OH, OW).
    Copying it into a (C*KH*KW, N*OH*OW) buffer is im2col; slicing it first unfolds a chunk."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = win.kernel, win.stride, win.dilation, win.out
    xp = pad_input(x, win)
    sn, sc, s_h, s_w = xp.strides
    return as_strided(xp, (x.shape[1], kh, kw, x.shape[0], oh, ow), (sc, dh * s_h, dw * s_w, sn, sh * s_h, sw * s_w), writeable=False)


# Output rows shorter than this are unfolded in two passes (:func:`im2col_array`); from 32 on the
# one copy was as fast or faster (measured on 3x3 and 5x5 convs, 1-19 MB of columns).
TWO_PASS_MAX_OW = 31


def two_pass(win: Window) -> bool:
    """Whether im2col for ``win`` goes through the width-unfolded input (:func:`unfold_width_cn`):
    stride 1 along the height (so the rows under a kernel row are consecutive) and output rows
    shorter than 32 (where copies cost by the run, not by the number)."""
    return win.stride[0] == 1 and win.out[0] > 1 and win.out[1] <= TWO_PASS_MAX_OW


def width_windows(x: np.ndarray, win: Window) -> np.ndarray:
    """A read-only strided view of x (N, C, H, W), zero padded and cut along the width only:
    (N, C, Hp, KW, OW) with ``[n, c, h, j, ow] = xpad[n, c, h, ow*sw + j*dw]``. Copying a transpose
    of it unfolds x along the width, in the layout a kernel needs (:func:`unfold_width_cn`,
    ``conv_rows.unfold_width``)."""
    sw, dw = win.stride[1], win.dilation[1]
    xp = pad_input(x, win)
    s_n, s_c, s_h, s_w = xp.strides
    shape = (x.shape[0], x.shape[1], xp.shape[2], win.kernel[1], win.out[1])
    return as_strided(xp, shape, (s_n, s_c, s_h, dw * s_w, sw * s_w), writeable=False)


def unfold_width_cn(x: np.ndarray, win: Window, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> xw (C, KW, N, Hp, OW), zero padded: ``xw[c, j, n, h, ow] = xpad[n, c, h, ow*sw + j*dw]``.
    KW copies of the input, its rows cut to the OW positions each kernel column sees. With ``out``
    (a chunk's share of a bigger one, say), fills and returns it."""
    v = width_windows(x, win).transpose(1, 3, 0, 2, 4)
    if out is None:
        out = np.empty(v.shape, x.dtype)
    np.copyto(out, v)
    return out


def columns_from_width(xw: np.ndarray, win: Window, out: np.ndarray) -> np.ndarray:
    """Columns (C*KH*KW, N*OH*OW) from xw (C, KW, N, Hp, OW) (:func:`unfold_width_cn`), into ``out``.
    At stride 1 the OH rows under kernel row i are consecutive rows of xw, so every column row of
    an image is one copy of OH*OW contiguous numbers."""
    c, kw, n = xw.shape[:3]
    (kh, dh), (oh, ow) = (win.kernel[0], win.dilation[0]), win.out
    t = xw.strides
    runs = as_strided(xw, (c, kh, kw, n, oh * ow), (t[0], dh * t[3], t[1], t[2], t[4]), writeable=False)
    np.copyto(view_as(out, runs.shape), runs)
    return out


def im2col_array(x: np.ndarray, win: Window, out: np.ndarray | None = None) -> np.ndarray:
    """Internal layout: x (N, C, H, W) -> columns (C*KH*KW, N*OH*OW), zero padding.

    One copy from :func:`windows` (no Python loop at all: 12-15% faster than one slice copy per
    kernel position, and one GIL release instead of KH*KW). Where :func:`two_pass` holds, two
    copies instead: x unfolded along the width (:func:`unfold_width_cn`), then each column row of
    an image as one run of OH*OW numbers instead of OH runs of OW (:func:`columns_from_width`).
    The copies' cost is per run, not per number, at these sizes: the SimpleConvNet conv's columns
    took 0.69x the time, 3x3 convs on 8x8-16x16 maps 0.70-0.72x. With ``out``, a
    (C*KH*KW, N*OH*OW) view (a batch chunk's block of a bigger buffer, say), fills and returns it."""
    (kh, kw), (oh, ow) = win.kernel, win.out
    n, c = x.shape[:2]
    if out is None:
        out = np.empty((c * kh * kw, n * oh * ow), x.dtype)
    if two_pass(win):
        return columns_from_width(unfold_width_cn(x, win), win, out)
    v = windows(x, win)
    np.copyto(view_as(out, v.shape), v)
    return out


def col2im_array(cols: np.ndarray, shape: tuple[int, ...], win: Window, out: np.ndarray | None = None) -> np.ndarray:
    """Internal layout adjoint of :func:`im2col_array`: columns (C*KH*KW, N*OH*OW) -> (N, C, H, W),
    adding every entry into the input element it came from (overlaps accumulate). With ``out``, an
    (N, C, H, W) view, writes there."""
    n, c, h, w = shape
    (kh, kw), (oh, ow) = win.kernel, win.out
    hn, wn = win.padded_hw(h, w)
    cols = cols.reshape(c, kh * kw, n, oh, ow)
    xp = np.empty((n, c, hn, wn), cols.dtype) if out is None or (hn, wn) != (h, w) else out
    xt = xp.transpose(1, 0, 2, 3)
    xt.fill(0)
    assign = win.disjoint
    for k, (rows, cs) in win.positions():
        if assign:
            xt[:, :, rows, cs] = cols[:, k]
        else:
            xt[:, :, rows, cs] += cols[:, k]
    if xp is out:
        return out
    if out is None:
        return unpad(xp, win, h, w)
    ph, pw = win.padding
    np.copyto(out, xp[:, :, ph : ph + h, pw : pw + w])
    return out


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
    from ..tensor import as_tensor

    x = as_tensor(x)
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
    from ..tensor import as_tensor

    cols = as_tensor(cols)
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
