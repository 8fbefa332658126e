"""Convolution primitives on im2col: ``Conv2d``, ``ConvTranspose2d`` and the weight-gradient op
``ConvWeightGrad``, plus the validated functions :func:`conv2d` and :func:`conv_transpose2d`.

The three ops are each other's backward, so every derivative is again an op of the graph:

- ``Conv2d(x, w)``: input grad = ``ConvTranspose2d(g, w)``, weight grad = ``ConvWeightGrad(x, g)``.
- ``ConvTranspose2d(x, w)``: input grad = ``Conv2d(g, w)``, weight grad = ``ConvWeightGrad(g, x)``.
- ``ConvWeightGrad(a, b)`` (bilinear: <gw, v> = <Conv2d(a, v), b>): grad a = ``ConvTranspose2d(b, v)``,
  grad b = ``Conv2d(a, v)``.

Two algorithms, chosen by the conv's geometry (:func:`by_rows`), the same for all three ops:

- **im2col** (most convs): columns (C*KH*KW, N*OH*OW) in image order, one GEMM per group and
  image, in chunks of images. With groups 1 the bias rides in the GEMMs as a row of ones under
  the columns: the forward GEMM adds it, and ``ConvWeightGrad(x, g, bias=True)`` sums the
  weight and bias gradients in one GEMM and returns both (an op with two outputs). The input
  gradient folds the column gradient back with col2im.
- **rows** (stride 1 along the width, short output rows, more column rows than output channels,
  groups 1, dilation 1 along the height: LeNet conv2): the input unfolded along the width only
  and one GEMM per output row, and an input gradient computed row by row without col2im
  (``ops/conv_rows.py``). ``ConvWeightGrad(x, g, bias=True)`` sums the bias gradient in the same
  chunks.

Otherwise the bias grad is ``g.sum((0, 2, 3))``. Memory: Conv2d keeps x (a reference, as the
graph input of the weight-grad op) and, only when the weight needs a gradient, its one unfolded
buffer (the columns, C*KH*KW (+1) x N*OH*OW, or the width-unfolded input, Hp*C*KW*OW*N), handed
to ``ConvWeightGrad`` so backward does not unfold x again; the buffer is freed with the node's
saved values after backward.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.function import Function
from .conv_rows import by_rows, conv_rows, input_grad_rows, weight_grad_rows
from .im2col import Window, col2im_array, conv_output_size, im2col_array, pair, view_as
from .parallel import parallel_chunks, plan


def _win(w_shape: tuple, stride, padding, dilation, out) -> Window:
    return Window(tuple(w_shape[2:]), stride, padding, dilation, tuple(out))


# Every conv runs as chunks on the thread pool (ops/parallel.py), each chunk unfolding,
# multiplying and reordering its own share while OpenBLAS is pinned to one thread: chunks of
# images (im2col: multiplied image by image straight into NCHW while the chunk's block of columns
# is still in cache; conv_rows: row by row). Why not one GEMM threaded by OpenBLAS: after each
# threaded GEMM OpenBLAS's worker spins for ~110 ms, taking the core from our chunks and from
# anyone else (PyTorch's conv forward, timed after it, ran 24 ms instead of 0.3 ms). In chunks,
# AlexNet conv1 forward+backward ran 0.80x the time of the one-GEMM version, AlexNet conv2 0.95x
# (docs/benchmarks.md, third session). The forward and weight-gradient GEMMs run one chunk per
# thread (fewer, longer numpy calls): SimpleConvNet conv forward+backward 0.875-1.03x the time of
# two chunks per thread over five runs (median 0.89), the training steps unchanged
# (docs/benchmarks.md, fifth session).


def _cols_gemm(a: np.ndarray, x: np.ndarray, groups: int) -> np.ndarray:
    """Per group and image, a (G*m, k) @ x[n] -> columns (G*m, N*L) in image order, x (N, G*k, ...)."""
    n, l = x.shape[0], x.shape[2] * x.shape[3]
    m = a.shape[0]
    cols = np.empty((groups, m // groups, n * l), x.dtype)
    ag = a.reshape(groups, -1, a.shape[1])
    np.matmul(ag, x.reshape(n, groups, -1, l), out=cols.reshape(groups, -1, n, l).transpose(2, 0, 1, 3))
    return cols.reshape(m, -1)


def _columns(x: np.ndarray, win: Window, rows: int, cached: np.ndarray | None) -> np.ndarray:
    """The (rows, N*OH*OW) column buffer of x: ``cached`` (from the forward conv, filled) or a new
    one for the caller to fill; ``rows`` one more than C*KH*KW adds a row of ones (fused bias)."""
    k = x.shape[1] * win.kernel[0] * win.kernel[1]
    if cached is not None:
        return cached[:rows]
    cols = np.empty((rows, x.shape[0] * win.out[0] * win.out[1]), x.dtype)
    if rows > k:
        cols[k] = 1
    return cols


class Conv2d(Function):
    """y = conv2d(x, w [, b]); params stride, padding, dilation (pairs), groups, out (OH, OW)."""

    @staticmethod
    def forward(ctx, x, w, *bias, stride, padding, dilation, groups, out):
        n, co = x.shape[0], w.shape[0]
        keep = bool(ctx.needs_input_grad) and ctx.needs_input_grad[1]  # unfolded x saved for the weight grad
        win = _win(w.shape, stride, padding, dilation, out)
        k, l = x.shape[1] * win.kernel[0] * win.kernel[1], out[0] * out[1]
        ctx.fused = bool(bias) and groups == 1  # the weight-grad op then returns the bias grad too
        if n == 0:  # an empty batch, as PyTorch allows: nothing to unfold
            ctx.save_for_backward(x, w, None)
            return np.zeros((0, co, *out), x.dtype)
        if by_rows(win, groups, co, k):  # width-unfolded input, one GEMM per output row (ops/conv_rows.py)
            y, xw, ctx.parts = conv_rows(x, w, bias[0] if bias else None, win)
            ctx.save_for_backward(x, w, xw if keep else None)
            return y
        # The bias rides in the GEMM as a row of ones under the columns (and the weight grad's
        # GEMM then yields the bias grad too): two passes over the output fewer.
        ctx.parts = None
        fuse = ctx.fused
        wg = np.concatenate((w.reshape(co, k), bias[0].reshape(co, 1)), axis=1)[None] if fuse else w.reshape(groups, co // groups, -1)
        cols = _columns(x, win, k + fuse, None)
        y = np.empty((n, co, *out), x.dtype)

        def chunk(a: int, b: int) -> None:  # images a..b: unfold, multiply (and add the bias)
            block = cols[:, a * l : b * l]
            im2col_array(x[a:b], win, out=block[:k])
            per_image = block.reshape(groups, -1, b - a, l).transpose(2, 0, 1, 3)
            np.matmul(wg, per_image, out=view_as(y[a:b], (b - a, groups, co // groups, l)))
            if bias and not fuse:
                y[a:b] += bias[0].reshape(1, -1, 1, 1)

        parallel_chunks(chunk, plan(n, 2.0 * co * k * l * n / groups, per_thread=1))
        ctx.save_for_backward(x, w, cols if keep else None)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w, cols = ctx.saved_tensors
        nx, nw, *nb = ctx.needs_input_grad
        p = {k: ctx.params[k] for k in ("stride", "padding", "dilation", "groups")}
        gx = ConvTranspose2d.apply(g, w, out=x.shape[2:], **p) if nx else None
        # the forward's unfolded x for the weight grad: the columns, or by rows (xw, its chunks)
        cache = [] if cols is None else [cols.data if ctx.parts is None else (cols.data, ctx.parts)]
        if nw and nb and nb[0] and ctx.fused:  # the weight-grad op returns the bias grad too
            gw, gb = ConvWeightGrad.apply(x, g, kernel=w.shape[2:], cache=cache, bias=True, **p)
            return gx, gw, gb
        gw = ConvWeightGrad.apply(x, g, kernel=w.shape[2:], cache=cache, **p) if nw else None
        gb = g.sum(axis=(0, 2, 3)) if nb and nb[0] else None
        return (gx, gw, gb) if nb else (gx, gw)


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, w [, b]), w (C_in, C_out/G, KH, KW); ``out`` is the (H_out, W_out) grid."""

    @staticmethod
    def forward(ctx, x, w, *bias, stride, padding, dilation, groups, out):
        n, c, h, wd = x.shape
        win = _win(w.shape, stride, padding, dilation, (h, wd))
        shape = (n, w.shape[1] * groups, *out)
        if n == 0:  # an empty batch
            ctx.save_for_backward(x, w)
            return np.zeros(shape, x.dtype)
        if by_rows(win, groups, c, w.shape[1] * win.kernel[0] * win.kernel[1]):  # row by row (ops/conv_rows.py)
            y = input_grad_rows(x, w, win, shape)
        else:  # x in channel-major layout is the GEMM operand: W^T @ x gives the columns, col2im folds them
            wt = w.reshape(groups, c // groups, -1).transpose(0, 2, 1).reshape(-1, c // groups)  # (C_out*KH*KW, C_in/G)

            def chunk(a: int, b: int) -> None:  # images a..b: multiply, fold into y[a:b]
                col2im_array(_cols_gemm(wt, x[a:b], groups), (b - a,) + shape[1:], win, out=y[a:b])

            y = np.empty(shape, x.dtype)
            parallel_chunks(chunk, plan(n, 2.0 * c * wt.shape[0] * h * wd * n / groups))
        ctx.save_for_backward(x, w)
        if bias:
            y += bias[0].reshape(1, -1, 1, 1)
        return y

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        nx, nw, *nb = ctx.needs_input_grad
        p = {k: ctx.params[k] for k in ("stride", "padding", "dilation", "groups")}
        gx = Conv2d.apply(g, w, out=x.shape[2:], **p) if nx else None
        gw = ConvWeightGrad.apply(g, x, kernel=w.shape[2:], **p) if nw else None
        gb = g.sum(axis=(0, 2, 3)) if nb and nb[0] else None
        return (gx, gw, gb) if nb else (gx, gw)


class ConvWeightGrad(Function):
    """Weight gradient of ``conv2d(a, w)`` for output gradient b: (C_b, C_a/G, KH, KW); with
    ``bias`` (groups 1 only) two outputs, the weight gradient and the bias gradient (C_b,), summed
    in the same GEMMs (a row of ones under the columns) or the same row chunks.

    ``cache`` is an optional one-element list holding the forward conv's unfolded a: im2col(a)
    (with the row of ones when the forward fused its bias) or, by rows, the (xw, chunks) pair of
    ``conv_rows``; the op empties it so the buffer is not kept by this node."""

    @staticmethod
    def forward(ctx, a, b, kernel, stride, padding, dilation, groups, cache=(), bias=False):
        win = Window(tuple(kernel), stride, padding, dilation, b.shape[2:])
        n, co, l, k = b.shape[0], b.shape[1], b.shape[2] * b.shape[3], a.shape[1] * kernel[0] * kernel[1]
        cached = cache.pop() if cache else None
        if n == 0:  # an empty batch: no term in the sum
            ctx.save_for_backward(a, b)
            gw = np.zeros((co, a.shape[1] // groups, *kernel), a.dtype)
            return (gw, np.zeros(co, a.dtype)) if bias else gw
        if by_rows(win, groups, co, k):  # the same choice as the forward conv that filled the cache
            ctx.save_for_backward(a, b)
            return weight_grad_rows(a, b, win, bias, unfolded=cached)
        cols = _columns(a, win, k + bias, cached)

        def chunk(i: int, j: int) -> np.ndarray:  # images i..j's share of sum_n cols[:, n] @ b[n]^T (no copy of b)
            block = cols[:, i * l : j * l]
            if cached is None:
                im2col_array(a[i:j], win, out=block[:k])
            per_image = block.reshape(groups, -1, j - i, l).transpose(2, 0, 1, 3)
            return np.matmul(per_image, b[i:j].reshape(j - i, groups, -1, l).transpose(0, 1, 3, 2)).sum(axis=0)

        gwt = sum(parallel_chunks(chunk, plan(n, 2.0 * co * k * l * n / groups, per_thread=1)))
        ctx.save_for_backward(a, b)
        # gwt (G, rows, C_out/G); with the bias, row k is the ones row's product: the bias grad
        gw = np.ascontiguousarray(gwt[:, :k].transpose(0, 2, 1)).reshape(co, a.shape[1] // groups, *kernel)
        return (gw, gwt[0, k].copy()) if bias else gw

    @staticmethod
    def backward(ctx, v, *vb):
        # With the bias output, its gradient vb reaches b as Conv2d's bias does.
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        p = {k: ctx.params[k] for k in ("stride", "padding", "dilation", "groups")}
        ga = ConvTranspose2d.apply(b, v, out=a.shape[2:], **p) if na else None
        gb = Conv2d.apply(a, v, *vb, out=b.shape[2:], **p) if nb else None
        return ga, gb


# ---- validated functions ----------------------------------------------------------------------
def _check_common(op: str, x: Any, weight: Any, bias: Any, groups: Any) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W), got shape {x.shape}; add a batch axis with x.unsqueeze(0).")
    if weight.ndim != 4:
        raise ValueError(f"{op}: weight must be 4-D, got shape {weight.shape}.")
    for name, t in (("input", x), ("weight", weight), ("bias", bias)):
        if t is not None and t.dtype.kind != "f":
            raise TypeError(f"{op}: {name} must be floating point, got dtype {t.dtype}; convert with .float().")
        if t is not None and t.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {t.dtype} but input has {x.dtype}; convert one (e.g. weight.float()).")
    if not isinstance(groups, (int, np.integer)) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}.")


def _check_positive(op: str, **pairs: tuple[int, int]) -> None:
    for name, v in pairs.items():
        lo = 0 if name in ("padding", "output_padding") else 1
        if min(v) < lo:
            raise ValueError(f"{op}: {name} must be {'non-negative' if lo == 0 else 'positive'}, got {v}.")


def conv2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    """2-D convolution (cross-correlation, as in PyTorch).

    x (N, C_in, H, W), weight (C_out, C_in/groups, KH, KW), bias (C_out,) or None ->
    (N, C_out, OH, OW) with ``OH = (H + 2*padding - dilation*(KH-1) - 1) // stride + 1``.
    ``stride``/``padding``/``dilation`` are ints or pairs; ``padding`` may also be ``'valid'`` (0) or
    ``'same'`` (output size = input size, stride 1 only; odd total padding puts the extra row/column
    at the bottom/right, as PyTorch does).

    Example::

        x = tinygrad_cnn.randn(100, 1, 28, 28)
        w = tinygrad_cnn.randn(30, 1, 5, 5, requires_grad=True)
        conv2d(x, w).shape          # (100, 30, 24, 24)
    """
    from ..tensor import as_tensor
    from .functions import pad as pad_fn

    x = as_tensor(x)
    weight = as_tensor(weight)
    bias = as_tensor(bias) if bias is not None else None
    _check_common("conv2d", x, weight, bias, groups)
    n, c, h, w = x.shape
    co, cg, kh, kw = weight.shape
    if c != cg * groups:
        raise ValueError(
            f"conv2d: input has {c} channels but weight expects {cg * groups} (weight shape {weight.shape}"
            f"{f', groups={groups}' if groups != 1 else ''}); weight must be (C_out, C_in/groups, KH, KW)."
        )
    if c % groups or co % groups:
        raise ValueError(f"conv2d: groups={groups} must divide both the input channels ({c}) and the output channels ({co}).")
    if bias is not None and bias.shape != (co,):
        raise ValueError(f"conv2d: bias must have shape ({co},) to match weight {weight.shape}, got {bias.shape}.")
    s, d = pair("conv2d", "stride", stride), pair("conv2d", "dilation", dilation)
    _check_positive("conv2d", stride=s, dilation=d)
    if isinstance(padding, str):
        if padding == "valid":
            p = (0, 0)
        elif padding == "same":
            if s != (1, 1):
                raise ValueError(f"conv2d: padding='same' needs stride 1, got stride {s}; pad explicitly instead.")
            total = (d[0] * (kh - 1), d[1] * (kw - 1))
            p = (total[0] // 2, total[1] // 2)
            extra = (total[0] % 2, total[1] % 2)
            if any(extra):  # PyTorch puts the odd row/column at the bottom/right.
                x = pad_fn(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
                h, w = x.shape[2:]
        else:
            raise ValueError(f"conv2d: padding must be an int, a pair, 'valid' or 'same', got {padding!r}.")
    else:
        p = pair("conv2d", "padding", padding)
        _check_positive("conv2d", padding=p)
    ext = (d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
    if ext[0] > h + 2 * p[0] or ext[1] > w + 2 * p[1]:
        raise ValueError(
            f"conv2d: kernel {(kh, kw)} (dilated extent {ext}) is larger than the padded input "
            f"{(h + 2 * p[0], w + 2 * p[1])} (input shape {x.shape}, padding {p}); use a smaller kernel or more padding."
        )
    out = (conv_output_size(h, kh, s[0], p[0], d[0]), conv_output_size(w, kw, s[1], p[1], d[1]))
    args = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d.apply(*args, stride=s, padding=p, dilation=d, groups=int(groups), out=out)


def conv_transpose2d(
    x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, output_padding: Any = 0, groups: int = 1, dilation: Any = 1
) -> Any:
    """Transposed convolution (the gradient of conv2d with respect to its input), as in PyTorch.

    x (N, C_in, H, W), weight (C_in, C_out/groups, KH, KW), bias (C_out,) or None ->
    (N, C_out, H_out, W_out) with ``H_out = (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1``.
    ``output_padding`` (smaller than stride or dilation) picks among the input sizes that a
    strided conv2d maps to the same output size.

    Example::

        x = tinygrad_cnn.randn(2, 16, 7, 7)
        w = tinygrad_cnn.randn(16, 8, 4, 4)
        conv_transpose2d(x, w, stride=2, padding=1).shape     # (2, 8, 14, 14)
    """
    from ..tensor import as_tensor

    x = as_tensor(x)
    weight = as_tensor(weight)
    bias = as_tensor(bias) if bias is not None else None
    _check_common("conv_transpose2d", x, weight, bias, groups)
    n, c, h, w = x.shape
    ci, og, kh, kw = weight.shape
    if c != ci:
        raise ValueError(
            f"conv_transpose2d: input has {c} channels but weight expects {ci} (weight shape {weight.shape}); "
            "weight must be (C_in, C_out/groups, KH, KW)."
        )
    if c % groups:
        raise ValueError(f"conv_transpose2d: groups={groups} must divide the input channels ({c}).")
    if bias is not None and bias.shape != (og * groups,):
        raise ValueError(f"conv_transpose2d: bias must have shape ({og * groups},) to match weight {weight.shape}, got {bias.shape}.")
    s, p = pair("conv_transpose2d", "stride", stride), pair("conv_transpose2d", "padding", padding)
    d, op = pair("conv_transpose2d", "dilation", dilation), pair("conv_transpose2d", "output_padding", output_padding)
    _check_positive("conv_transpose2d", stride=s, dilation=d, padding=p, output_padding=op)
    for a in range(2):
        if op[a] >= s[a] and op[a] >= d[a]:
            raise ValueError(f"conv_transpose2d: output_padding {op} must be smaller than either stride {s} or dilation {d}.")
    out = tuple((size - 1) * s[a] - 2 * p[a] + d[a] * (k - 1) + op[a] + 1 for a, (size, k) in enumerate(((h, kh), (w, kw))))
    if min(out) < 1:
        raise ValueError(
            f"conv_transpose2d: output size {out} is not positive for input {x.shape}, kernel {(kh, kw)}, "
            f"stride {s}, padding {p}; reduce the padding."
        )
    args = (x, weight) if bias is None else (x, weight, bias)
    return ConvTranspose2d.apply(*args, stride=s, padding=p, dilation=d, groups=int(groups), out=out)
