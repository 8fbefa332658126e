"""Pooling as users call it: :func:`max_pool2d`, :func:`avg_pool2d` and
:func:`adaptive_avg_pool2d` check their arguments, work out the window and output size and apply
the primitives of :mod:`tinygrad_cnn.ops.pool`.

``adaptive_avg_pool2d`` is two matrix products with constant averaging matrices (or an
``avg_pool2d`` when the sizes divide evenly), differentiable through matmul.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ...kernels.geometry import Window, pair, pool_output_size
from ...kernels.pool import avg_divisor
from ...ops import functions as OF
from ...ops.batching import map_physical, physical
from ...ops.pool import AvgPool2d, MaxPool2d
from ...tensor import Tensor, as_tensor
from .validation import accepts_one_image

__all__ = ["adaptive_avg_pool2d", "avg_pool2d", "max_pool2d"]


def _pool_window(op: str, x: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any, ceil_mode: bool) -> Window:
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}.")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}; convert with .float().")
    k = pair(op, "kernel_size", kernel_size)
    s = k if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) else pair(op, "stride", stride)
    p, d = pair(op, "padding", padding), pair(op, "dilation", dilation)
    for name, v, lo in (("kernel_size", k, 1), ("stride", s, 1), ("dilation", d, 1), ("padding", p, 0)):
        if min(v) < lo:
            raise ValueError(f"{op}: {name} must be {'positive' if lo else 'non-negative'}, got {v}.")
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise ValueError(f"{op}: padding {p} must be at most half the kernel size {k} (padding <= kernel_size // 2).")
    h, w = x.shape[2:]
    out = (pool_output_size(h, k[0], s[0], p[0], d[0], ceil_mode), pool_output_size(w, k[1], s[1], p[1], d[1], ceil_mode))
    if min(out) < 1:
        raise ValueError(
            f"{op}: output size {out} is not positive: kernel {k} (dilation {d}) does not fit the input {(h, w)} with "
            f"padding {p} (input shape {x.shape}); use a smaller kernel or more padding."
        )
    return Window(k, s, p, d, out)


@accepts_one_image
def max_pool2d(
    input: Any,  # noqa: A002
    kernel_size: Any,
    stride: Any = None,
    padding: Any = 0,
    dilation: Any = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Max pooling over (N, C, H, W) -> (N, C, OH, OW) (or (C, H, W) -> (C, OH, OW)), as in PyTorch.

    ``stride`` defaults to ``kernel_size``; padding acts as -inf and may be at most half the
    kernel; ``OH = (H + 2p - d*(k-1) - 1) // s + 1`` (rounded up with ``ceil_mode``, dropping a
    last window that would start in the bottom/right padding). Ties: the first maximum in
    row-major window order gets the gradient. With ``return_indices`` also returns int64
    indices (N, C, OH, OW) of the maxima, flat into each channel's H*W plane.

    Example::

        x = tinygrad_cnn.randn(100, 30, 24, 24)
        max_pool2d(x, 2).shape            # (100, 30, 12, 12)
    """
    x = as_tensor(input)
    win = _pool_window("max_pool2d", x, kernel_size, stride, padding, dilation, ceil_mode)
    if not return_indices:
        return MaxPool2d.apply(x, win=win)
    out, idx = MaxPool2d.apply(x, win=win, return_indices=True)
    (kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow) = win
    width = x.shape[3]

    def flat(k: np.ndarray) -> np.ndarray:  # window offsets -> flat positions in the (H, W) plane
        k = k.astype(np.int64)
        rows = (np.arange(oh) * sh - ph)[:, None] + (k // kw) * dh
        cols = (np.arange(ow) * sw - pw)[None, :] + (k % kw) * dw
        return rows * width + cols

    if getattr(idx, "is_batched", False):  # inside vmap: the whole batch's offsets at once
        return out, map_physical(idx, lambda a, _: flat(a))
    return out, Tensor(flat(idx.data))


@accepts_one_image
def avg_pool2d(
    input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False, count_include_pad: bool = True
) -> Any:
    """Average pooling over (N, C, H, W) -> (N, C, OH, OW) (or (C, H, W) -> (C, OH, OW)), as in PyTorch.

    ``stride`` defaults to ``kernel_size``; zero padding of at most half the kernel, counted in
    the divisor when ``count_include_pad`` (windows that ceil_mode lets overhang the padded
    input divide by the part inside it).

    Example::

        x = tinygrad_cnn.ones(1, 1, 4, 4)
        avg_pool2d(x, 2).shape            # (1, 1, 2, 2)
    """
    x = as_tensor(input)
    win = _pool_window("avg_pool2d", x, kernel_size, stride, padding, 1, ceil_mode)
    return AvgPool2d.apply(x, win=win, inv=avg_divisor(x.shape, win, count_include_pad, x.dtype))


def _adaptive_bounds(size: int, out: int) -> list[tuple[int, int]]:
    """The input range [floor(i*size/out), ceil((i+1)*size/out)) that output i averages, per i."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _adaptive_matrix(size: int, out: int, dtype: Any) -> np.ndarray:
    """(out, size) averaging matrix: row i averages the range ``_adaptive_bounds`` gives it."""
    m = np.zeros((out, size), dtype=dtype)
    for i, (a, b) in enumerate(_adaptive_bounds(size, out)):  # output rows only (a few), not pixels
        m[i, a:b] = 1.0 / (b - a)
    return m


def _adaptive_by_slices(x: Any, oh: int, ow: int) -> Any:
    """adaptive_avg_pool2d as a mean over each window's rows, then over its columns (one slice per
    output row and column), so an inf or NaN reaches only the windows that hold it."""
    h, w = x.shape[2:]
    rows = OF.cat([x[:, :, a:b].mean(axis=2, keepdims=True) for a, b in _adaptive_bounds(h, oh)], axis=2)
    return OF.cat([rows[:, :, :, a:b].mean(axis=3, keepdims=True) for a, b in _adaptive_bounds(w, ow)], axis=3)


@accepts_one_image
def adaptive_avg_pool2d(input: Any, output_size: Any) -> Any:
    """Average pooling to a fixed output size (OH, OW) whatever the input size, as in PyTorch:
    (N, C, H, W) -> (N, C, OH, OW), or (C, H, W) -> (C, OH, OW).

    Output pixel (i, j) averages input rows ``floor(i*H/OH) .. ceil((i+1)*H/OH) - 1`` (likewise
    columns). ``output_size`` is an int or a pair; ``None`` in a pair keeps that input size.

    Example::

        x = tinygrad_cnn.randn(2, 256, 13, 13)
        adaptive_avg_pool2d(x, (6, 6)).shape      # (2, 256, 6, 6)
    """
    x = as_tensor(input)
    if x.ndim != 4:
        raise ValueError(f"adaptive_avg_pool2d: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}.")
    if x.dtype.kind != "f":
        raise TypeError(f"adaptive_avg_pool2d: input must be floating point, got dtype {x.dtype}.")
    h, w = x.shape[2:]
    if isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        output_size = tuple(size if o is None else o for o, size in zip(output_size, (h, w)))
    oh, ow = pair("adaptive_avg_pool2d", "output_size", output_size)
    if oh < 1 or ow < 1:
        raise ValueError(f"adaptive_avg_pool2d: output_size must be positive, got {(oh, ow)}.")
    if h % oh == 0 and w % ow == 0:
        return avg_pool2d(x, (h // oh, w // ow))
    if not np.isfinite(physical(x)[0].data).all():  # inside vmap: the whole batch's values
        # The averaging matrices' zeros times an inf are NaN: every output would become NaN.
        return _adaptive_by_slices(x, oh, ow)
    mh, mw = _adaptive_matrix(h, oh, x.dtype), _adaptive_matrix(w, ow, x.dtype)
    return as_tensor(mh) @ x @ as_tensor(np.ascontiguousarray(mw.T))
