"""Convolution by output rows over a width-unfolded input: the kernels the conv ops use where
im2col's columns would be many times bigger than the input (LeNet conv2: short rows, few channels).

The input is unfolded along the width only, batch last: ``xw`` (Hp, C, KW, OW, N) with
``xw[h, c, j, ow, n] = xpad[n, c, h, ow*sw + j*dw]`` (KW copies of the input instead of im2col's
KH*KW). The KH padded rows under output row ``oh`` are then one contiguous block of it, a
(KH*C*KW, OW*N) matrix: the im2col columns of that output row, without copying them. So

- forward: ``Y[oh] = Wr @ xw[oh*sh : oh*sh + KH]``, one GEMM per output row, ``Wr`` the weight
  ordered (C_out, KH*C*KW);
- weight gradient: ``dWr^T = sum_oh xw[oh*sh : oh*sh + KH] @ G[oh]^T``;
- input gradient, per padded input row h: ``dxw[h] = sum_{i, oh: oh*sh + i = h} W_i^T @ G[oh]``,
  one GEMM over the valid kernel rows i (consecutive output rows of G, so again one block);
  then one batched GEMM with a 0/1 matrix folds ``dxw`` back along the width. No column
  buffer, no col2im over KH*KW positions, and every row of the input gradient is written by one
  chunk only, so the whole input gradient (fold included) runs in chunks of rows on the threads.

``G[oh]`` is the output gradient of row oh, (C_out, OW*N). Needs dilation 1 along the height (so
a block of kernel rows is a block of input rows) and groups 1: :func:`rows_apply`.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .im2col import Window, pooled_empty, view_as
from .parallel import parallel_chunks, plan


def rows_apply(win: Window, groups: int) -> bool:
    """Whether the kernels here can compute a conv at all: groups 1 (the unfolded rows mix all
    channels) and dilation 1 along the height (so a block of kernel rows is a block of input rows)."""
    return groups == 1 and win.dilation[0] == 1


def by_rows(win: Window, groups: int, c_out: int, rows: int) -> bool:
    """Whether a conv (and its transposed conv and weight gradient) runs by rows here instead of
    on im2col columns: where :func:`rows_apply` holds, with stride 1 along the width, output rows
    shorter than 16 and more column rows (``rows`` = C*KH*KW) than output channels.

    Why those: the unfolded input is KW copies of x instead of KH*KW, and its copies run over
    OW*N contiguous numbers (at stride 1) instead of OW; the input gradient needs no col2im.
    Forward+backward by rows against im2col (``benchmarks/conv_algorithms.py``): LeNet conv2
    0.59x, LeNet conv3 (1x1 outputs: im2col's per-image GEMMs are matrix-vector products) 0.10x,
    3x3 convs on 8x8 to 7x7 maps 0.89-1.05x; where it does not pick rows, SimpleConvNet's conv
    (OW = 24, output bigger than input) 2.07x, AlexNet conv2 (OW = 27) 1.01x."""
    return rows_apply(win, groups) and win.stride[1] == 1 and win.out[1] < 16 and rows > c_out


def unfold_width(x: np.ndarray, win: Window) -> np.ndarray:
    """x (N, C, H, W) -> xw (Hp, C, KW, OW, N), zero padded: ``xw[h, c, j, ow, n] = xpad[n, c, h, ow*sw + j*dw]``.

    Two copies: x transposed to (Hp, C, Wp, N) (padding included), then the KW shifted windows
    of each row, whose runs are OW*N contiguous numbers at stride 1."""
    n, c, h, w = x.shape
    (ph, pw), (sw, dw), (kw, ow) = win.padding, (win.stride[1], win.dilation[1]), (win.kernel[1], win.out[1])
    hp, wp = win.padded_hw(h, w)
    xt = pooled_empty((hp, c, wp, n), x.dtype)
    # Zero only the padding (rows above and below, columns left and right; ceil-mode or an
    # explicit output grid may pad more on the far sides), not the whole buffer.
    xt[:ph] = 0
    xt[ph + h :] = 0
    xt[ph : ph + h, :, :pw] = 0
    xt[ph : ph + h, :, pw + w :] = 0
    np.copyto(xt[ph : ph + h, :, pw : pw + w], x.transpose(2, 1, 3, 0))
    th, tc, tw, tn = xt.strides
    xw = pooled_empty((hp, c, kw, ow, n), x.dtype)
    np.copyto(xw, as_strided(xt, xw.shape, (th, tc, dw * tw, sw * tw, tn), writeable=False))
    return xw


def _row_blocks(xw: np.ndarray, win: Window) -> np.ndarray:
    """(OH, KH*C*KW, OW*N) read-only view: block oh is xw[oh*sh : oh*sh + KH], the columns of output row oh."""
    hp, c, kw, ow, n = xw.shape
    rs, item = xw.strides[0], xw.itemsize
    return as_strided(xw, (win.out[0], win.kernel[0] * c * kw, ow * n), (win.stride[0] * rs, ow * n * item, item), writeable=False)


def _rows_of(g: np.ndarray, a: int, b: int) -> np.ndarray:
    """Output gradient rows a..b of g (N, C_out, OH, OW), reordered to (b-a, C_out, OW*N)."""
    n, co, _, ow = g.shape
    gr = pooled_empty((b - a, co, ow, n), g.dtype)
    np.copyto(gr, g[:, :, a:b].transpose(2, 1, 3, 0))
    return gr.reshape(b - a, co, ow * n)


def conv_rows(xw: np.ndarray, w: np.ndarray, bias: np.ndarray | None, win: Window) -> np.ndarray:
    """Forward: xw (Hp, C, KW, OW, N) from :func:`unfold_width`, w (C_out, C, KH, KW) -> y (N, C_out, OH, OW)."""
    co, n, (oh, ow) = w.shape[0], xw.shape[4], win.out
    wr = np.ascontiguousarray(w.transpose(0, 2, 1, 3)).reshape(co, -1)  # (C_out, KH*C*KW)
    blocks = _row_blocks(xw, win)
    t = pooled_empty((oh, co, ow * n), xw.dtype)
    y = pooled_empty((n, co, oh, ow), xw.dtype)

    def rows(a: int, b: int) -> None:  # output rows a..b: multiply, add the bias, reorder into NCHW
        np.matmul(wr, blocks[a:b], out=t[a:b])
        if bias is not None:
            t[a:b] += bias[:, None]
        np.copyto(y[:, :, a:b], t[a:b].reshape(b - a, co, ow, n).transpose(3, 1, 0, 2))

    parallel_chunks(rows, plan(oh, 2.0 * wr.size * ow * n * oh, per_thread=1))
    return y


def weight_grad_rows(xw: np.ndarray, g: np.ndarray, win: Window, bias: bool = False) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Weight gradient: xw (Hp, C, KW, OW, N), output gradient g (N, C_out, OH, OW) -> (C_out, C, KH, KW),
    or with ``bias`` the pair (weight gradient, bias gradient (C_out,))."""
    co, oh = g.shape[1], g.shape[2]
    _, c, kw, ow, n = xw.shape
    kh = win.kernel[0]
    blocks = _row_blocks(xw, win)

    def rows(a: int, b: int) -> tuple[np.ndarray, np.ndarray | None]:  # output rows a..b's share of the sums
        gr = _rows_of(g, a, b)
        # block @ G^T, (KH*C*KW, C_out): 1.8x faster here than G @ block^T (OpenBLAS on M = C_out = 16)
        return np.matmul(blocks[a:b], gr.transpose(0, 2, 1)).sum(axis=0), gr.sum(axis=(0, 2)) if bias else None

    parts = parallel_chunks(rows, plan(oh, 2.0 * co * blocks.shape[1] * ow * n * oh, per_thread=1))
    gw = sum(p[0] for p in parts).reshape(kh, c, kw, co).transpose(3, 1, 0, 2).reshape(co, c, kh, kw)
    return (gw, sum(p[1] for p in parts)) if bias else gw


def input_grad_rows(g: np.ndarray, w: np.ndarray, win: Window, shape: tuple[int, ...]) -> np.ndarray:
    """Input gradient (the transposed conv): g (N, C_out, OH, OW), w (C_out, C, KH, KW) -> dx of
    ``shape`` (N, C, H, W); rows and columns no window reads get zeros."""
    n, co, oh, ow = g.shape
    c, h, wd = shape[1:]
    (kh, kw), (sh, sw), (ph, pw), dw = win.kernel, win.stride, win.padding, win.dilation[1]
    # Padded row hp gets kernel rows i = r, r + sh, ... (r = hp mod sh) from output rows
    # (hp - i) / sh: with i descending those are consecutive, so the kernel rows for one residue
    # r, stacked in that order, make one (C*KW, rows*C_out) operand whose valid part is a slice.
    wt = w.transpose(1, 3, 2, 0)  # (C, KW, KH, C_out)
    kernel_rows = [list(range(r, kh, sh))[::-1] for r in range(sh)]
    stacked = [np.ascontiguousarray(wt[:, :, ks]).reshape(c * kw, -1) for ks in kernel_rows]
    # The fold along the width as a 0/1 matrix, (W, KW*OW): entry (w, j*OW + o) is 1 where kernel
    # column j of output column o reads input column w = o*sw + j*dw - pw (padding cropped). One
    # batched GEMM per chunk instead of KW strided adds: 0.89-0.94x the input gradient's time
    # alone, 0.98x the whole LeNet conv2 (31 pairs).
    fold = np.zeros((wd, kw, ow), g.dtype)
    kj, ko = np.meshgrid(np.arange(kw), np.arange(ow), indexing="ij")
    col = ko * sw + kj * dw - pw
    inside = (col >= 0) & (col < wd)
    fold[col[inside], kj[inside], ko[inside]] = 1
    fold = fold.reshape(wd, kw * ow)
    dx = pooled_empty(shape, g.dtype)

    def rows(a: int, b: int) -> None:  # input rows a..b: multiply row by row, fold along the width
        lo, hi = max(0, -(-(a + ph - kh + 1) // sh)), min(oh, (b - 1 + ph) // sh + 1)  # output rows they get
        gr = _rows_of(g, lo, max(lo, hi)).reshape(-1, ow * n)
        dxw = pooled_empty((b - a, c, kw, ow, n), g.dtype)
        for r in range(a, b):
            hp = r + ph
            ks = kernel_rows[hp % sh]
            src = [(j, (hp - i) // sh) for j, i in enumerate(ks) if lo <= (hp - i) // sh < hi]
            if not src:  # no window reads this row
                dxw[r - a] = 0
                continue
            (j0, o0), j1 = src[0], src[-1][0] + 1
            g_rows = gr[(o0 - lo) * co : (o0 - lo + j1 - j0) * co]  # output rows o0.. stacked, (rows*C_out, OW*N)
            np.matmul(stacked[hp % sh][:, j0 * co : j1 * co], g_rows, out=view_as(dxw[r - a], (c * kw, ow * n)))
        folded = pooled_empty((b - a, c, wd, n), g.dtype)
        np.matmul(fold, dxw.reshape(-1, kw * ow, n), out=folded.reshape(-1, wd, n))
        np.copyto(dx[:, :, a:b], folded.transpose(3, 1, 0, 2))

    parallel_chunks(rows, plan(h, 2.0 * co * c * kh * kw * ow * n * oh, per_thread=1))
    return dx
