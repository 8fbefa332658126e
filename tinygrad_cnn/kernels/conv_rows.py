"""Convolution by output rows over a width-unfolded input: the kernels the conv ops use where
im2col's columns would be many times bigger than the input (LeNet conv2: short rows, few channels).

The input is unfolded along the width only: ``xw`` (Hp, C, KW, N, OW) with
``xw[h, c, j, n, ow] = xpad[n, c, h, ow*sw + j*dw]`` (KW copies of the input instead of im2col's
KH*KW). The KH padded rows under output row ``oh`` are then one block of it, a (KH*C*KW, N*OW)
matrix with contiguous (n, ow) columns: the im2col columns of that output row, without copying
them; the same holds for the images a..b of a slice. So

- forward: ``Y[oh] = Wr @ xw[oh*sh : oh*sh + KH]``, one GEMM per output row, ``Wr`` the weight
  ordered (C_out, KH*C*KW);
- weight gradient: ``dWr^T = sum_oh xw[oh*sh : oh*sh + KH] @ G[oh]^T``;
- input gradient, per padded input row h: ``dxw[h] = sum_{i, oh: oh*sh + i = h} W_i^T @ G[oh]``,
  one GEMM over the valid kernel rows i (consecutive output rows of G, so again one block);
  then one batched GEMM with a 0/1 matrix folds ``dxw`` back along the width. No column
  buffer, no col2im over KH*KW positions.

All three run in chunks of images on the threads, each chunk unfolding, multiplying and writing
only its own images (and the forward's unfolded input in its own piece, :func:`conv_rows`).
``G[oh]`` is the output gradient of row oh, (C_out, N*OW) or (C_out, OW*N). Needs dilation 1 along the height (so
a block of kernel rows is a block of input rows) and groups 1: :func:`rows_apply`.
"""
from __future__ import annotations

import math

import numpy as np

from .geometry import Window
from .im2col import strided_view, width_windows
from .parallel import parallel_chunks, plan


def rows_apply(win: Window, groups: int) -> bool:
    """Whether the kernels here can compute a conv at all: groups 1 (the unfolded rows mix all
    channels) and dilation 1 along the height (so a block of kernel rows is a block of input rows)."""
    return groups == 1 and win.dilation[0] == 1


def by_rows(win: Window, groups: int, c_out: int, rows: int) -> bool:
    """Whether a conv (and its transposed conv and weight gradient) runs by rows here instead of
    on im2col columns when the algorithm setting is ``"auto"``: where :func:`rows_apply` holds,
    with stride 1 along the width, output rows shorter than 16 and more column rows (``rows`` =
    C*KH*KW) than output channels.

    Why those: the unfolded input is KW copies of x instead of KH*KW, and the input gradient
    needs no col2im; with wide output rows or few column rows im2col's bigger GEMMs win
    (``benchmarks/conv_algorithms.py``, figures in docs/benchmarks.md)."""
    return rows_apply(win, groups) and win.stride[1] == 1 and win.out[1] < 16 and rows > c_out


def unfold_width(x: np.ndarray, win: Window, out: np.ndarray | None = None) -> np.ndarray:
    """x (N, C, H, W) -> xw (Hp, C, KW, N, OW), zero padded: ``xw[h, c, j, n, ow] = xpad[n, c, h, ow*sw + j*dw]``.

    One copy (its runs are OW numbers). With ``out`` (a chunk's own piece of a bigger buffer,
    :func:`_images`), fills and returns it."""
    v = width_windows(x, win).transpose(2, 1, 3, 0, 4)
    if out is None:
        out = np.empty(v.shape, x.dtype)
    np.copyto(out, v)
    return out


def _row_blocks(xw: np.ndarray, win: Window) -> np.ndarray:
    """(OH, KH*C*KW, M*OW) read-only view of xw (Hp, C, KW, M, OW), or of a slice of its images
    whose (M, OW) part is contiguous: block oh is xw[oh*sh : oh*sh + KH], the columns of output row oh."""
    hp, c, kw, m, ow = xw.shape
    s_h, _, s_j, _, s_w = xw.strides
    return strided_view(xw, (win.out[0], win.kernel[0] * c * kw, m * ow), (win.stride[0] * s_h, s_j, s_w))


def _rows_of(g: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """g (M, C_out, OH, OW) reordered to (OH, C_out, M*OW) (``order`` (2, 1, 0, 3): columns (n, ow))
    or (OH, C_out, OW*M) (``order`` (2, 1, 3, 0): columns (ow, n))."""
    gr = np.empty(tuple(g.shape[i] for i in order), g.dtype)
    np.copyto(gr, g.transpose(order))
    return gr.reshape(g.shape[2], g.shape[1], -1)


def _images(xw: np.ndarray, per_image: tuple[int, int, int, int], a: int, b: int) -> np.ndarray:
    """Images a..b of a chunk-major unfolded input (:func:`conv_rows`): ``xw[a*S : b*S]`` as
    (Hp, C, KW, b-a, OW), ``per_image`` = (Hp, C, KW, OW) and S its product."""
    hp, c, kw, ow = per_image
    size = hp * c * kw * ow
    return xw[a * size : b * size].reshape(hp, c, kw, b - a, ow)


def conv_rows(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, win: Window) -> tuple[np.ndarray, np.ndarray, list]:
    """Forward: x (N, C, H, W), w (C_out, C, KH, KW) -> (y (N, C_out, OH, OW), xw, parts), the
    width-unfolded input kept for the weight gradient: the images a..b of each chunk in ``parts``
    unfold into their own contiguous piece of the 1-D ``xw`` (:func:`_images`).

    Why chunk-major: each thread then writes only its own memory. Image slices of one
    (Hp, C, KW, N, OW) buffer would interleave the threads' writes every few KB, and cache lines
    bouncing between cores slowed the forward several times over (docs/benchmarks.md)."""
    n, co, (oh, ow) = x.shape[0], w.shape[0], win.out
    wr = np.ascontiguousarray(w.transpose(0, 2, 1, 3)).reshape(co, -1)  # (C_out, KH*C*KW)
    per_image = (win.padded_hw(*x.shape[2:])[0], x.shape[1], win.kernel[1], ow)
    xw = np.empty((n * math.prod(per_image),), x.dtype)
    y = np.empty((n, co, oh, ow), x.dtype)

    def images(a: int, b: int) -> None:  # unfold, multiply row by row, add the bias, reorder into NCHW
        part = unfold_width(x[a:b], win, out=_images(xw, per_image, a, b))
        t = np.empty((oh, co, (b - a) * ow), x.dtype)
        np.matmul(wr, _row_blocks(part, win), out=t)
        if bias is not None:
            t += bias[:, None]
        np.copyto(y[a:b], t.reshape(oh, co, b - a, ow).transpose(2, 1, 0, 3))

    parts = plan(n, 2.0 * wr.size * ow * n * oh, per_thread=1)
    parallel_chunks(images, parts)
    return y, xw, parts


def weight_grad_rows(
    x: np.ndarray, g: np.ndarray, win: Window, bias: bool = False, unfolded: tuple[np.ndarray, list] | None = None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Weight gradient: x (N, C, H, W), output gradient g (N, C_out, OH, OW) -> (C_out, C, KH, KW),
    or with ``bias`` the pair (weight gradient, bias gradient (C_out,)). ``unfolded``: the
    (xw, parts) of :func:`conv_rows` (its chunks are taken again), else each chunk unfolds its images."""
    n, c = x.shape[:2]
    co, oh, ow = g.shape[1:]
    kh, kw = win.kernel
    per_image = (win.padded_hw(*x.shape[2:])[0], c, kw, ow)

    def images(a: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:  # images a..b's share of the sums
        part = unfold_width(x[a:b], win) if unfolded is None else _images(unfolded[0], per_image, a, b)
        gr = _rows_of(g[a:b], (2, 1, 0, 3))
        # block @ G^T, (KH*C*KW, C_out): OpenBLAS runs this orientation faster than G @ block^T
        # when C_out is small
        return np.matmul(_row_blocks(part, win), gr.transpose(0, 2, 1)).sum(axis=0), gr.sum(axis=(0, 2)) if bias else None

    parts = plan(n, 2.0 * co * c * kh * kw * ow * n * oh, per_thread=1) if unfolded is None else unfolded[1]
    sums = parallel_chunks(images, parts)
    gw = sum(p[0] for p in sums).reshape(kh, c, kw, co).transpose(3, 1, 0, 2).reshape(co, c, kh, kw)
    return (gw, sum(p[1] for p in sums)) if bias else gw


def _fold_by_adding(dxw: np.ndarray, win: Window, out: np.ndarray) -> None:
    """Fold dxw (H, C, KW, OW, M) along the width into ``out`` (H, C, W, M) by adds alone, so
    infinities and NaN reach only the columns they belong to (as col2im's adds)."""
    kw, ow, wd = dxw.shape[2], dxw.shape[3], out.shape[2]
    sw, pw, dw = win.stride[1], win.padding[1], win.dilation[1]
    out.fill(0)
    for j in range(kw):
        # output column o reads input column o*sw + j*dw - pw: the valid o are one range
        first = max(0, -(-(pw - j * dw) // sw))
        last = min(ow, (wd - 1 + pw - j * dw) // sw + 1)
        if first < last:
            start = first * sw + j * dw - pw
            out[:, :, start : start + (last - first - 1) * sw + 1 : sw] += dxw[:, :, j, first:last]


def input_grad_rows(g: np.ndarray, w: np.ndarray, win: Window, shape: tuple[int, ...]) -> np.ndarray:
    """Input gradient (the transposed conv): g (N, C_out, OH, OW), w (C_out, C, KH, KW) -> dx of
    ``shape`` (N, C, H, W); rows and columns no window reads get zeros. Infinities and NaN in g or
    w give the values of col2im's adds."""
    n, co, oh, ow = g.shape
    c, h, wd = shape[1:]
    (kh, kw), (sh, sw), (ph, pw), dw = win.kernel, win.stride, win.padding, win.dilation[1]
    # Padded row hp gets kernel rows i = r, r + sh, ... (r = hp mod sh) from output rows
    # (hp - i) / sh: with i descending those are consecutive, so the kernel rows for one residue
    # r, stacked in that order, make one (C*KW, rows*C_out) operand whose valid part is a slice.
    wt = w.transpose(1, 3, 2, 0)  # (C, KW, KH, C_out)
    kernel_rows = [list(range(r, kh, sh))[::-1] for r in range(sh)]
    stacked = [np.ascontiguousarray(wt[:, :, ks]).reshape(c * kw, -1) for ks in kernel_rows]
    # Per input row: the slice of the stacked kernel rows that reaches it and the range of stacked
    # output rows it multiplies, or None where no window reads the row. Made once, here, so that
    # the threads run little Python between their GEMMs: each return from numpy takes the GIL
    # back, and a thread that finds the other one holding it sleeps until woken.
    products: list[tuple[np.ndarray, int, int] | None] = []
    for r in range(h):
        hp = r + ph
        src = [(j, (hp - i) // sh) for j, i in enumerate(kernel_rows[hp % sh]) if 0 <= (hp - i) // sh < oh]
        if src:
            j0, j1, o0 = src[0][0], src[-1][0] + 1, src[0][1]
            products.append((stacked[hp % sh][:, j0 * co : j1 * co], o0 * co, (o0 + j1 - j0) * co))
        else:
            products.append(None)
    # The fold along the width as a 0/1 matrix, (W, KW*OW): entry (w, j*OW + o) is 1 where kernel
    # column j of output column o reads input column w = o*sw + j*dw - pw (padding cropped). One
    # batched GEMM per chunk instead of KW strided adds, which cost more numpy calls.
    fold = np.zeros((wd, kw, ow), g.dtype)
    kj, ko = np.meshgrid(np.arange(kw), np.arange(ow), indexing="ij")
    col = ko * sw + kj * dw - pw
    inside = (col >= 0) & (col < wd)
    fold[col[inside], kj[inside], ko[inside]] = 1
    fold = fold.reshape(wd, kw * ow)
    dx = np.empty(shape, g.dtype)

    def images(a: int, b: int) -> None:  # images a..b: multiply row by row, fold along the width
        m = b - a
        gr = _rows_of(g[a:b], (2, 1, 3, 0)).reshape(-1, ow * m)  # output rows stacked, (OH*C_out, OW*M)
        dxw = np.empty((h, c, kw, ow, m), g.dtype)
        rows = dxw.reshape(h, c * kw, ow * m)
        for r, product in enumerate(products):
            if product is None:  # no window reads this row
                rows[r] = 0
            else:
                np.matmul(product[0], gr[product[1] : product[2]], out=rows[r])
        folded = np.empty((h, c, wd, m), g.dtype)
        np.matmul(fold, dxw.reshape(-1, kw * ow, m), out=folded.reshape(-1, wd, m))
        # A non-finite entry of dxw makes its whole row of the product non-finite (0 * inf is
        # NaN), so a finite result proves the 0/1 product exact; otherwise fold by adding only.
        if not np.isfinite(folded).all():
            _fold_by_adding(dxw, win, folded)
        np.copyto(dx[a:b], folded.transpose(3, 1, 0, 2))

    parallel_chunks(images, plan(n, 2.0 * co * c * kh * kw * ow * n * oh, per_thread=1))
    return dx
