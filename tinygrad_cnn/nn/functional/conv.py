"""Convolutions as users call them: :func:`conv2d` and :func:`conv_transpose2d` check their
arguments, work out the output size and apply the primitives of :mod:`tinygrad_cnn.ops.conv`."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...kernels.geometry import conv_output_size, pair
from ...ops import functions as OF
from ...ops.conv import Conv2d, ConvTranspose2d
from ...tensor import as_tensor
from .validation import accepts_one_image

__all__ = ["conv2d", "conv_transpose2d"]


def _check_common(op: str, x: Any, weight: Any, bias: Any, groups: Any) -> None:
    if x.ndim != 4:
        raise ValueError(f"{op}: input must be 4-D (N, C, H, W) or 3-D (C, H, W), got shape {x.shape}.")
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


@accepts_one_image
def conv2d(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0, dilation: Any = 1, groups: int = 1) -> Any:
    """2-D convolution (cross-correlation, as in PyTorch).

    input (N, C_in, H, W) (or one image (C_in, H, W)), weight (C_out, C_in/groups, KH, KW), bias
    (C_out,) or None -> (N, C_out, OH, OW) (or (C_out, OH, OW)) with ``OH = (H + 2*padding - dilation*(KH-1) - 1) // stride + 1``.
    ``stride``/``padding``/``dilation`` are ints or pairs; ``padding`` may also be ``'valid'`` (0) or
    ``'same'`` (output size = input size, stride 1 only; odd total padding puts the extra row/column
    at the bottom/right, as PyTorch does).

    Example::

        x = tinygrad_cnn.randn(100, 1, 28, 28)
        w = tinygrad_cnn.randn(30, 1, 5, 5, requires_grad=True)
        conv2d(x, w).shape          # (100, 30, 24, 24)
    """
    x = as_tensor(input)
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
                x = OF.pad(x, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
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


@accepts_one_image
def conv_transpose2d(
    input: Any,  # noqa: A002
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    groups: int = 1,
    dilation: Any = 1,
) -> Any:
    """Transposed convolution (the gradient of conv2d with respect to its input), as in PyTorch.

    input (N, C_in, H, W) (or one image (C_in, H, W): the result then has no batch axis either),
    weight (C_in, C_out/groups, KH, KW), bias (C_out,) or None ->
    (N, C_out, H_out, W_out) with ``H_out = (H-1)*stride - 2*padding + dilation*(KH-1) + output_padding + 1``.
    ``output_padding`` (smaller than stride or dilation) picks among the input sizes that a
    strided conv2d maps to the same output size.

    Example::

        x = tinygrad_cnn.randn(2, 16, 7, 7)
        w = tinygrad_cnn.randn(16, 8, 4, 4)
        conv_transpose2d(x, w, stride=2, padding=1).shape     # (2, 8, 14, 14)
    """
    x = as_tensor(input)
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
