"""The pooling kernels on ndarrays: max and average pooling and their backward scatters.

Pooling never builds an im2col matrix: it takes one strided view of the padded input per kernel
position (KH*KW views, no Python loop over the batch or output pixels) and reduces them with
``np.maximum`` / ``+``, over blocks of channel planes on the thread pool, each block staying in
cache through all KH*KW passes.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

from .geometry import Window
from .im2col import pad_input, unpad
from .parallel import blocks, parallel_chunks


def _planes(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*C, H, W): the passes run over blocks of planes (see parallel.blocks)."""
    return a.reshape((-1,) + a.shape[2:])


def _over_planes(fn: Callable[[int, int], None], a: np.ndarray, win: Window) -> None:
    """fn(p0, p1) for blocks of the N*C planes of ``a`` (the largest array the passes read), on the
    thread pool; each block stays in cache through all KH*KW passes (no BLAS in them)."""
    parallel_chunks(fn, blocks(a.shape[0] * a.shape[1], a.size, win.kernel[0] * win.kernel[1], a.itemsize), blas=False)


def _all_finite(a: np.ndarray) -> bool:
    """Whether ``a`` holds no inf or NaN, by one summing pass over a block that is in cache: the
    sum is inf or NaN whenever an entry is. (Finite entries whose sum overflows also answer False;
    callers then take their exact path, which is right for every input.)"""
    return bool(np.isfinite(a.sum()))


def _fold_windows(shape: tuple, win: Window, dtype: Any, values: Callable[[int, int], Iterable[np.ndarray]]) -> np.ndarray:
    """The (N, C, H, W) array that is zero but for, at each kernel position k in turn, the k-th
    array of ``values(p0, p1)`` (planes p0..p1, (p1-p0, OH, OW)) added into the window slots
    (assigned when windows do not overlap). The backward of the pools."""
    gp = np.empty(shape[:2] + win.padded_hw(*shape[2:]), dtype=dtype)
    gp3 = _planes(gp)
    assign = win.disjoint
    covered = assign and win.tiles(*shape[2:])  # every element gets assigned exactly once: no clearing

    def block(p0: int, p1: int) -> None:
        if not covered:
            gp3[p0:p1].fill(0)
        for (_, (r, c)), v in zip(win.positions(), values(p0, p1)):
            if assign:
                gp3[p0:p1, r, c] = v
            else:
                gp3[p0:p1, r, c] += v

    _over_planes(block, gp, win)
    return unpad(gp, win, *shape[2:])


def max_pool2d(x: np.ndarray, win: Window, argmax: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Max pooling of x (N, C, H, W), padding acting as -inf -> (out (N, C, OH, OW), the kernel
    position k = i*KW + j of each maximum, or None without ``argmax``). The first maximum in
    row-major window order wins ties; a NaN wins its window (the last NaN in window order)."""
    xp = _planes(pad_input(x, win, -np.inf))
    out = np.empty(x.shape[:2] + win.out, dtype=x.dtype)
    idx = np.empty(out.shape, dtype=np.min_scalar_type(win.kernel[0] * win.kernel[1] - 1)) if argmax else None

    def block(p0: int, p1: int) -> None:
        views = [xp[p0:p1, r, c] for _, (r, c) in win.positions()]
        o = _planes(out)[p0:p1]
        if idx is None:  # inference: no argmax needed, and the first two positions in one pass
            np.maximum(views[0], views[-1], out=o)
            for v in views[1:-1]:
                np.maximum(o, v, out=o)
            return
        np.copyto(o, views[0])
        ix = _planes(idx)[p0:p1]
        ix.fill(0)
        for k, v in enumerate(views[1:], 1):
            m = v > o  # strict: an equal later value does not take over, so the first maximum wins
            np.maximum(o, v, out=o)
            ix += m * (k - ix)  # ix = k where m; unsigned wrap-around makes this exact, and cheaper than np.where
        nan = np.isnan(o)  # np.maximum propagated a NaN: like PyTorch, point at it (the last NaN in the window)
        if nan.any():
            for k, v in enumerate(views):
                ix[nan & np.isnan(v)] = k

    _over_planes(block, xp.reshape(x.shape[:2] + xp.shape[1:]), win)
    return out, idx


def max_pool_scatter(g: np.ndarray, idx: np.ndarray, shape: tuple, win: Window) -> np.ndarray:
    """zeros(shape) with g[n, c, oh, ow] added at the argmax ``idx`` of window (oh, ow)."""
    g3, idx3 = _planes(g), _planes(idx)

    def at_argmax(p0: int, p1: int) -> Iterator[np.ndarray]:  # g where the argmax is k, else 0
        part = np.empty_like(g3[p0:p1])
        finite = _all_finite(g3[p0:p1])
        for k in range(win.kernel[0] * win.kernel[1]):
            if finite:
                yield np.multiply(g3[p0:p1], idx3[p0:p1] == k, out=part)  # a masked multiply is cheaper than np.copyto(where=)
            else:  # inf or NaN times the mask's zeros is NaN: copy instead, so only the argmax gets it (as in PyTorch)
                part.fill(0)
                np.copyto(part, g3[p0:p1], where=idx3[p0:p1] == k)
                yield part

    return _fold_windows(shape, win, g.dtype, at_argmax)


def max_pool_gather(x: np.ndarray, idx: np.ndarray, win: Window) -> np.ndarray:
    """x (N, C, H, W) read at each window's argmax ``idx`` -> (N, C, OH, OW)."""
    xp = _planes(pad_input(x, win))
    out = np.empty(idx.shape, dtype=x.dtype)
    idx3, out3 = _planes(idx), _planes(out)

    def block(p0: int, p1: int) -> None:
        o = out3[p0:p1]
        o.fill(0)
        finite = _all_finite(xp[p0:p1])
        for k, (r, c) in win.positions():
            if finite:
                o += xp[p0:p1, r, c] * (idx3[p0:p1] == k)
            else:  # the masked multiply would read inf * 0 = NaN from positions other than the argmax
                np.copyto(o, xp[p0:p1, r, c], where=idx3[p0:p1] == k)

    _over_planes(block, xp.reshape(x.shape[:2] + xp.shape[1:]), win)
    return out


def avg_divisor(shape: tuple, win: Window, count_include_pad: bool, dtype: Any) -> np.ndarray:
    """1/divisor per output pixel (OH, OW), PyTorch's rule: windows are clipped to the padded input
    (ceil_mode may overhang it), and with count_include_pad=False also to the input itself."""
    counts = []
    for size, k, s, p, o in zip(shape[2:], win.kernel, win.stride, win.padding, win.out):
        start = np.arange(o) * s - p
        end = np.minimum(start + k, size + p)
        if not count_include_pad:
            start, end = np.maximum(start, 0), np.minimum(end, size)
        counts.append(end - start)
    return (1.0 / np.outer(*counts)).astype(dtype)


def avg_pool2d(x: np.ndarray, win: Window, inv: np.ndarray) -> np.ndarray:
    """Average pooling of x (N, C, H, W) (zero padding), ``inv`` the 1/divisor per output pixel."""
    xp = _planes(pad_input(x, win))
    out = np.empty(x.shape[:2] + win.out, dtype=x.dtype)

    def block(p0: int, p1: int) -> None:
        o = _planes(out)[p0:p1]
        views = [xp[p0:p1, r, c] for _, (r, c) in win.positions()]
        np.copyto(o, views[0])
        for v in views[1:]:
            o += v
        o *= inv

    _over_planes(block, xp.reshape(x.shape[:2] + xp.shape[1:]), win)
    return out


def avg_pool_spread(g: np.ndarray, shape: tuple, win: Window, inv: np.ndarray) -> np.ndarray:
    """g (N, C, OH, OW) spread evenly (g * inv) over each window -> (N, C, H, W)."""
    g3 = _planes(g)
    return _fold_windows(shape, win, g.dtype, lambda p0, p1: itertools.repeat(g3[p0:p1] * inv))
