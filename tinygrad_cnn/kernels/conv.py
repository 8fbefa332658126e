"""The conv kernels on ndarrays: forward, transposed conv (the input gradient) and weight
gradient, each by im2col columns or by output rows (:mod:`.conv_rows`), chosen per conv by
:func:`use_rows` (its geometry and the algorithm setting, :mod:`.settings`).

- **im2col**: columns (C*KH*KW, N*OH*OW) in image order, one GEMM per group and image, in
  chunks of images. With groups 1 and a bias, the bias rides in the GEMMs as a row of ones
  under the columns: the forward GEMM adds it, and the weight gradient's GEMM sums the bias
  gradient along with the weight gradient. The input gradient folds the column gradient back
  with col2im.
- **rows**: the input unfolded along the width only and one GEMM per output row, and an input
  gradient computed row by row without col2im.

Every kernel runs in chunks of images on the thread pool (:mod:`.parallel`), each chunk
unfolding, multiplying and reordering its own share while the BLAS runs on one thread: the
chunk's block of columns is multiplied while it is still in cache, and no BLAS worker is left
spinning after a threaded GEMM. The forward and weight-gradient GEMMs run one chunk per thread
(fewer, longer numpy calls).

The forward returns, when asked, an :class:`Unfolded` input that the weight gradient takes
instead of unfolding the input again; what it holds (and the chunk plan it was made in) is the
kernels' own business.
"""
from __future__ import annotations

import numpy as np

from . import settings
from .conv_rows import by_rows, conv_rows, input_grad_rows, rows_apply, weight_grad_rows
from .geometry import Window
from .im2col import col2im_array, im2col_array, view_as
from .parallel import parallel_chunks, plan
from .workspace import Lease


def use_rows(win: Window, groups: int, c_out: int, rows: int) -> bool:
    """Whether a conv with window ``win`` (``rows`` = C*KH*KW column rows, ``c_out`` output
    channels) runs by rows: as the algorithm setting says, ``"auto"`` by :func:`.conv_rows.by_rows`."""
    mode = settings.current_algorithm
    if mode == "auto":
        return by_rows(win, groups, c_out, rows)
    return mode == "rows" and rows_apply(win, groups)


class Unfolded:
    """The forward conv's unfolded input, kept for the weight gradient: im2col columns (with the
    row of ones when the forward fused its bias) or, by rows, the chunk-major width-unfolded input
    and the chunks it was written in. Opaque to the ops, which call :meth:`release` once no
    weight gradient will need it (a large buffer then goes back to the :mod:`.workspace`);
    ``shape``, ``dtype`` and ``nbytes`` describe the buffer it holds, also after release."""

    __slots__ = ("lease", "parts", "shape", "dtype", "nbytes")

    def __init__(self, lease: Lease, parts: list[tuple[int, int]] | None = None) -> None:
        self.lease = lease
        self.parts = parts  # by rows: the chunks of images xw was written in; None for columns
        a = lease.array
        self.shape, self.dtype, self.nbytes = a.shape, a.dtype, a.nbytes  # type: ignore[union-attr]

    @property
    def array(self) -> np.ndarray:
        if self.lease.array is None:
            raise RuntimeError("Unfolded: the unfolded input was released (the graph's saved values were freed).")
        return self.lease.array

    def release(self) -> None:
        """Return the buffer; the weight-gradient kernel must not be given this object again."""
        self.lease.release()

    def __repr__(self) -> str:
        kind = "columns" if self.parts is None else "rows"
        return f"Unfolded({kind}, shape={self.shape}, dtype={self.dtype})"


def _cols_gemm(a: np.ndarray, x: np.ndarray, groups: int) -> np.ndarray:
    """Per group and image, a (G*m, k) @ x[n] -> columns (G*m, N*L) in image order, x (N, G*k, ...)."""
    n, l = x.shape[0], x.shape[2] * x.shape[3]
    m = a.shape[0]
    cols = np.empty((groups, m // groups, n * l), x.dtype)
    ag = a.reshape(groups, -1, a.shape[1])
    np.matmul(ag, x.reshape(n, groups, -1, l), out=cols.reshape(groups, -1, n, l).transpose(2, 0, 1, 3))
    return cols.reshape(m, -1)


def _columns(x: np.ndarray, win: Window, rows: int) -> Lease:
    """A lease on a (rows, N*OH*OW) column buffer of x for the caller to fill; ``rows`` one more
    than C*KH*KW adds a row of ones (fused bias)."""
    k = x.shape[1] * win.kernel[0] * win.kernel[1]
    lease = Lease((rows, x.shape[0] * win.out[0] * win.out[1]), x.dtype)
    if rows > k:
        lease.array[k] = 1  # type: ignore[index]
    return lease


def conv2d(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, win: Window, groups: int, keep: bool = False
) -> tuple[np.ndarray, Unfolded | None]:
    """x (N, C, H, W), w (C_out, C/G, KH, KW), bias (C_out,) or None -> (y (N, C_out, OH, OW),
    the :class:`Unfolded` input for :func:`conv_weight_grad` when ``keep``, else None). With
    groups 1 the bias rides in the GEMMs (the unfolded input then has its row of ones)."""
    n, co, out = x.shape[0], w.shape[0], win.out
    k, l = x.shape[1] * win.kernel[0] * win.kernel[1], out[0] * out[1]
    if n == 0:  # an empty batch, as PyTorch allows: nothing to unfold
        return np.zeros((0, co, *out), x.dtype), None
    if use_rows(win, groups, co, k):
        y, xw, parts = conv_rows(x, w, bias, win)
        return y, (Unfolded(Lease.of(xw), parts) if keep else None)
    # The bias rides in the GEMM as a row of ones under the columns (and the weight grad's GEMM
    # then yields the bias grad too): two passes over the output fewer.
    fuse = bias is not None and groups == 1
    if bias is not None and fuse:
        wg = np.concatenate((w.reshape(co, k), bias.reshape(co, 1)), axis=1)[None]
    else:
        wg = w.reshape(groups, co // groups, -1)
    lease = _columns(x, win, k + fuse)
    cols = lease.array
    assert cols is not None  # a lease holds its array until released
    y = np.empty((n, co, *out), x.dtype)

    def chunk(a: int, b: int) -> None:  # images a..b: unfold, multiply (and add the bias)
        block = cols[:, a * l : b * l]
        im2col_array(x[a:b], win, out=block[:k])
        per_image = block.reshape(groups, -1, b - a, l).transpose(2, 0, 1, 3)
        np.matmul(wg, per_image, out=view_as(y[a:b], (b - a, groups, co // groups, l)))
        if bias is not None and not fuse:
            y[a:b] += bias.reshape(1, -1, 1, 1)

    try:
        parallel_chunks(chunk, plan(n, 2.0 * co * k * l * n / groups, per_thread=1))
    finally:
        if not keep:  # y is the GEMMs' own output: nothing here views the columns
            lease.release()
    return y, (Unfolded(lease) if keep else None)


def conv_transpose2d(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, win: Window, groups: int, shape: tuple[int, ...]) -> np.ndarray:
    """x (N, C_in, H, W), w (C_in, C_out/G, KH, KW) -> y of ``shape`` (N, C_out, H_out, W_out),
    ``win`` the window of the conv whose input gradient this is (its ``out`` = (H, W))."""
    n, c, h, wd = x.shape
    if n == 0:  # an empty batch
        return np.zeros(shape, x.dtype)
    if use_rows(win, groups, c, w.shape[1] * win.kernel[0] * win.kernel[1]):
        y = input_grad_rows(x, w, win, shape)
    else:  # x in channel-major layout is the GEMM operand: W^T @ x gives the columns, col2im folds them
        wt = w.reshape(groups, c // groups, -1).transpose(0, 2, 1).reshape(-1, c // groups)  # (C_out*KH*KW, C_in/G)

        def chunk(a: int, b: int) -> None:  # images a..b: multiply, fold into y[a:b]
            col2im_array(_cols_gemm(wt, x[a:b], groups), (b - a,) + shape[1:], win, out=y[a:b])

        y = np.empty(shape, x.dtype)
        parallel_chunks(chunk, plan(n, 2.0 * c * wt.shape[0] * h * wd * n / groups))
    if bias is not None:
        y += bias.reshape(1, -1, 1, 1)
    return y


def conv_weight_grad(
    a: np.ndarray, b: np.ndarray, win: Window, groups: int, bias: bool = False, unfolded: Unfolded | None = None
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Weight gradient of ``conv2d(a, w)`` for output gradient b: (C_b, C_a/G, KH, KW); with
    ``bias`` (groups 1 only) the pair (weight gradient, bias gradient (C_b,)), summed in the same
    GEMMs or row chunks. ``unfolded``: :func:`conv2d`'s unfolded ``a``, used instead of unfolding
    it again (made with the bias's row of ones when ``bias`` is asked for by columns)."""
    kernel = win.kernel
    n, co, l, k = b.shape[0], b.shape[1], b.shape[2] * b.shape[3], a.shape[1] * kernel[0] * kernel[1]
    if n == 0:  # an empty batch: no term in the sum
        gw = np.zeros((co, a.shape[1] // groups, *kernel), a.dtype)
        return (gw, np.zeros(co, a.dtype)) if bias else gw
    if unfolded is not None and unfolded.parts is not None:  # the forward went by rows
        return weight_grad_rows(a, b, win, bias, unfolded=(unfolded.array, unfolded.parts))
    if unfolded is None and use_rows(win, groups, co, k):
        return weight_grad_rows(a, b, win, bias)
    kept = unfolded is not None and unfolded.shape[0] >= k + bias  # else (no ones row) unfold again
    lease = None if kept else _columns(a, win, k + bias)
    # kept: unfolded is set; a lease holds its array until released
    cols = (unfolded.array if kept else lease.array)[: k + bias]  # type: ignore[union-attr, index]

    def chunk(i: int, j: int) -> np.ndarray:  # images i..j's share of sum_n cols[:, n] @ b[n]^T (no copy of b)
        block = cols[:, i * l : j * l]
        if not kept:
            im2col_array(a[i:j], win, out=block[:k])
        per_image = block.reshape(groups, -1, j - i, l).transpose(2, 0, 1, 3)
        return np.matmul(per_image, b[i:j].reshape(j - i, groups, -1, l).transpose(0, 1, 3, 2)).sum(axis=0)

    try:
        gwt = sum(parallel_chunks(chunk, plan(n, 2.0 * co * k * l * n / groups, per_thread=1)))
    finally:
        if lease is not None:  # the sums are new arrays: nothing views the columns
            lease.release()
    # gwt (G, rows, C_out/G); with the bias, row k is the ones row's product: the bias grad
    gw = np.ascontiguousarray(gwt[:, :k].transpose(0, 2, 1)).reshape(co, a.shape[1] // groups, *kernel)
    return (gw, gwt[0, k].copy()) if bias else gw
