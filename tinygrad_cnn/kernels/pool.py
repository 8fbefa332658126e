"""The pooling kernels on ndarrays: max and average pooling and their backward scatters.

Pooling never builds an im2col matrix: it takes one strided view of the padded input per kernel
position (KH*KW views, no Python loop over the batch or output pixels) and reduces them with
``np.maximum`` / ``+``, over blocks of channel planes on the thread pool, each block staying in
cache through all KH*KW passes.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .geometry import Window
from .im2col import pad_input, unpad
from .parallel import blocks, parallel_chunks

# put(k, out): the k-th values of a block of planes, written into out or, for None, returned in
# an array of the callee's own (see _fold_windows).
Put = Callable[[int, "np.ndarray | None"], np.ndarray]


def _planes(a: np.ndarray) -> np.ndarray:
    """(N, C, H, W) -> (N*C, H, W): the passes run over blocks of planes (see parallel.blocks)."""
    return a.reshape((-1,) + a.shape[2:])


def _over_planes(fn: Callable[[int, int], None], a: np.ndarray, win: Window) -> None:
    """fn(p0, p1) for blocks of the N*C planes of ``a`` (the largest array the passes read), on the
    thread pool; each block stays in cache through all KH*KW passes (no BLAS in them)."""
    parallel_chunks(fn, blocks(a.shape[0] * a.shape[1], a.size, win.kernel[0] * win.kernel[1], a.itemsize), blas=False)


def _all_finite(a: np.ndarray) -> bool:
    """Whether ``a`` (a block that is in cache) holds no inf or NaN."""
    return bool(np.isfinite(a).all())


def _fold_windows(shape: tuple, win: Window, dtype: Any, values: Callable[[int, int], Put]) -> np.ndarray:
    """The (N, C, H, W) array that is zero but for, at each kernel position k in turn, the k-th
    values of ``values(p0, p1)`` (planes p0..p1, (p1-p0, OH, OW)) added into the window slots.
    The backward of the pools.

    ``values(p0, p1)`` returns ``put(k, out)``, which writes the k-th values into ``out`` (a
    strided view of the buffer) or, for ``out=None``, returns them in an array of its own. A
    position whose slots no earlier position touches (``Window.first_writes``) has its values
    written straight into the buffer, with no temporary and no add pass, and only the slots no
    such position reaches are cleared."""
    gp = np.empty(shape[:2] + win.padded_hw(*shape[2:]), dtype=dtype)
    gp3 = _planes(gp)
    fresh, extent = win.first_writes()

    def block(p0: int, p1: int) -> None:
        b = gp3[p0:p1]
        if extent is None:
            b.fill(0)
        else:
            b[:, extent[0] :].fill(0)
            b[:, : extent[0], extent[1] :].fill(0)
        put = values(p0, p1)
        for k, (r, c) in win.positions():
            if k in fresh:
                put(k, b[:, r, c])
            else:
                b[:, r, c] += put(k, None)

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

    def at_argmax(p0: int, p1: int) -> Put:  # put(k, out): g where the argmax is k, else 0
        gb, ib = g3[p0:p1], idx3[p0:p1]
        own = np.empty_like(gb)
        finite = _all_finite(gb)

        def put(k: int, out: np.ndarray | None) -> np.ndarray:
            out = own if out is None else out
            if finite:
                return np.multiply(gb, ib == k, out=out)  # a masked multiply is cheaper than np.copyto(where=)
            # inf or NaN times the mask's zeros is NaN: copy instead, so only the argmax gets it (as in PyTorch)
            out.fill(0)
            np.copyto(out, gb, where=ib == k)
            return out

        return put

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

    def spread(p0: int, p1: int) -> Put:
        share = g3[p0:p1] * inv

        def put(k: int, out: np.ndarray | None) -> np.ndarray:
            if out is None:
                return share
            np.copyto(out, share)
            return out

        return put

    return _fold_windows(shape, win, g.dtype, spread)
