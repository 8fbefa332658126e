"""im2col / col2im on ndarrays: sliding windows as matrix columns (and back), the core of the
conv kernels.

The layout here is the conv kernels' own: columns ``(C*KH*KW, N*OH*OW)``, stored channel-major.
Row ``c*KH*KW + i*KW + j`` holds, for every output pixel, the input element under kernel
position (i, j) of channel c. It is filled by one copy from a strided view of the input that
shows all windows at once (no Python loop, :func:`windows`), and a conv is then
``W.reshape(C_out, -1) @ cols`` (one GEMM per group). The public ``tinygrad_cnn.im2col`` returns
the transpose of this buffer, ``(N*OH*OW, C*KH*KW)``, as a view.

Both keep the input dtype. col2im is the adjoint of im2col: it adds every column entry back to
the input element it came from, so overlapping windows accumulate.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import settings
from .geometry import Window


def strided_view(a: np.ndarray, shape: tuple[int, ...], strides: tuple[int, ...]) -> np.ndarray:
    """A read-only view of ``a``'s memory, from its first element, with the given shape and byte
    strides, as ``numpy.lib.stride_tricks.as_strided(a, shape, strides, writeable=False)``.

    Why not as_strided itself: it costs several times as much Python, and the kernels make these
    views inside their chunks, where a thread holding the GIL makes the other thread sleep
    until it is woken again. For a C-contiguous ``a`` the view is made by the ndarray constructor
    over ``a``'s buffer, which also checks that the view stays inside it.

    >>> strided_view(np.arange(6.0), (2, 3), (8, 8)).tolist()     # overlapping rows
    [[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]
    """
    if not a.flags.c_contiguous:
        return as_strided(a, shape, strides, writeable=False)
    v: np.ndarray = np.ndarray(shape, a.dtype, a, 0, strides)
    v.flags.writeable = False
    return v


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
    """``a.reshape(shape)`` that must be a view (writes through it reach ``a``); ValueError if
    the strides do not allow one, where reshape silently copies."""
    v = a.reshape(shape)
    if v.size and not np.may_share_memory(v, a):
        raise ValueError(f"view_as: an array of shape {a.shape} and strides {a.strides} has no view of shape {tuple(shape)}.")
    return v


def windows(x: np.ndarray, win: Window) -> np.ndarray:
    """A read-only strided view of every window of x (N, C, H, W), zero padded: (C, KH, KW, N, OH, OW).
    Copying it into a (C*KH*KW, N*OH*OW) buffer is im2col; slicing it first unfolds a chunk."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = win.kernel, win.stride, win.dilation, win.out
    xp = pad_input(x, win)
    sn, sc, s_h, s_w = xp.strides
    return strided_view(xp, (x.shape[1], kh, kw, x.shape[0], oh, ow), (sc, dh * s_h, dw * s_w, sn, sh * s_h, sw * s_w))


# Output rows shorter than this are unfolded in two passes (:func:`im2col_array`); from this
# width on one copy is as fast (docs/benchmarks.md).
TWO_PASS_MAX_OW = 31


def two_pass(win: Window) -> bool:
    """Whether im2col for ``win`` goes through the width-unfolded input (:func:`unfold_width_cn`):
    possible at stride 1 along the height (so the rows under a kernel row are consecutive); chosen
    for short output rows, where copies cost by the run rather than by the number, or always or
    never as the ``unfold`` setting says (:func:`tinygrad_cnn.kernels.set_conv_algorithm`)."""
    if win.stride[0] != 1 or win.out[0] <= 1:
        return False
    mode = settings.current_unfold
    if mode == "auto":
        return win.out[1] <= TWO_PASS_MAX_OW
    return mode == "two-pass"


def width_windows(x: np.ndarray, win: Window) -> np.ndarray:
    """A read-only strided view of x (N, C, H, W), zero padded and cut along the width only:
    (N, C, Hp, KW, OW) with ``[n, c, h, j, ow] = xpad[n, c, h, ow*sw + j*dw]``. Copying a transpose
    of it unfolds x along the width, in the layout a kernel needs (:func:`unfold_width_cn`,
    :func:`tinygrad_cnn.kernels.conv_rows.unfold_width`)."""
    sw, dw = win.stride[1], win.dilation[1]
    xp = pad_input(x, win)
    s_n, s_c, s_h, s_w = xp.strides
    shape = (x.shape[0], x.shape[1], xp.shape[2], win.kernel[1], win.out[1])
    return strided_view(xp, shape, (s_n, s_c, s_h, dw * s_w, sw * s_w))


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
    runs = strided_view(xw, (c, kh, kw, n, oh * ow), (t[0], dh * t[3], t[1], t[2], t[4]))
    np.copyto(view_as(out, runs.shape), runs)
    return out


def im2col_array(x: np.ndarray, win: Window, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> columns (C*KH*KW, N*OH*OW), zero padding.

    One copy from :func:`windows` (no Python loop, and one GIL release instead of KH*KW). Where
    :func:`two_pass` holds, two copies instead: x unfolded along the width (:func:`unfold_width_cn`),
    then each column row of an image as one run of OH*OW numbers instead of OH runs of OW
    (:func:`columns_from_width`), because numpy's copies cost by the run at these sizes. With
    ``out``, a (C*KH*KW, N*OH*OW) view (a batch chunk's block of a bigger buffer, say), fills and
    returns it."""
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
    """Adjoint of :func:`im2col_array`: columns (C*KH*KW, N*OH*OW) -> (N, C, H, W), adding every
    entry into the input element it came from (overlaps accumulate). With ``out``, an
    (N, C, H, W) view, writes there."""
    n, c, h, w = shape
    (kh, kw), (oh, ow) = win.kernel, win.out
    hn, wn = win.padded_hw(h, w)
    cols = cols.reshape(c, kh * kw, n, oh, ow)
    xp = np.empty((n, c, hn, wn), cols.dtype) if out is None or (hn, wn) != (h, w) else out
    xt = xp.transpose(1, 0, 2, 3)
    # Positions whose slots no earlier one touches are assigned, with nothing cleared under
    # them: one pass fewer over most of the buffer (Window.first_writes).
    fresh, extent = win.first_writes()
    if extent is None:
        xt.fill(0)
    else:
        xt[:, :, extent[0] :].fill(0)
        xt[:, :, : extent[0], extent[1] :].fill(0)
    for k, (rows, cs) in win.positions():
        if k in fresh:
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
