"""Resampling of (N, C, H, W) images: :func:`interpolate` ('nearest' and 'bilinear'), composed of
indexing and weighted sums, so it is differentiable to any order."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ...tensor import Tensor, as_tensor
from .validation import check_option

__all__ = ["interpolate"]


def _source_scale(n_in: int, n_out: int, scale: float | None, align_corners: bool) -> float:
    """Input pixels per output pixel, as PyTorch's ``area_pixel_compute_scale``."""
    if align_corners:
        return (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    return 1.0 / scale if scale is not None and scale > 0 else n_in / n_out


def _take(x: Tensor, index: np.ndarray, dim: int) -> Tensor:
    return x[:, :, index] if dim == 2 else x[:, :, :, index]


def _nearest(x: Tensor, dim: int, n_out: int, scale: float | None) -> Tensor:
    n_in = x.shape[dim]
    s = _source_scale(n_in, n_out, scale, False)
    src = np.minimum(np.floor(np.arange(n_out) * s).astype(np.int64), n_in - 1)
    return _take(x, src, dim)


def _linear(x: Tensor, dim: int, n_out: int, scale: float | None, align_corners: bool) -> Tensor:
    n_in = x.shape[dim]
    s = _source_scale(n_in, n_out, scale, align_corners)
    dst = np.arange(n_out, dtype=np.float64)
    src = dst * s if align_corners else np.maximum((dst + 0.5) * s - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    lam = (src - i0).astype(x.dtype)
    shape = (n_out, 1) if dim == 2 else (n_out,)
    return _take(x, i0, dim) * (1.0 - lam).reshape(shape) + _take(x, i1, dim) * lam.reshape(shape)


def interpolate(
    input: Any,  # noqa: A002
    size: Any = None,
    scale_factor: Any = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resize images ``input`` (N, C, H, W) -> (N, C, OH, OW), as PyTorch does.

    Give either ``size`` (an int or (OH, OW)) or ``scale_factor`` (a number or a pair; the output
    is ``floor(H * scale)``). ``mode``: 'nearest' (source pixel ``floor(i * H / OH)``, or
    ``floor(i / scale)`` when ``scale_factor`` is given and not ``recompute_scale_factor``) or
    'bilinear' (``align_corners=False``, the default, maps pixel centres; ``True`` maps the corner
    pixels onto each other).

    >>> interpolate(ones(1, 1, 2, 3), scale_factor=2).shape
    (1, 1, 4, 6)
    >>> interpolate(tensor([[[[0.0, 1.0]]]]), size=(1, 4), mode="bilinear").tolist()
    [[[[0.0, 0.25, 0.75, 1.0]]]]
    """
    check_option("interpolate", "mode", mode, ("nearest", "bilinear"))
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported; pass antialias=False.")
    if mode == "nearest" and align_corners is not None:
        raise ValueError("interpolate: align_corners can only be set with mode='bilinear', got mode='nearest'.")
    x = as_tensor(input)
    if x.ndim != 4:
        raise ValueError(f"interpolate: input must be 4-D (N, C, H, W), got shape {x.shape}.")
    if x.dtype.kind != "f":
        raise TypeError(f"interpolate: input must be floating point, got dtype {x.dtype}; convert with .float().")
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor.")
    h, w = x.shape[2:]
    if size is not None:
        out = (int(size), int(size)) if np.ndim(size) == 0 else tuple(int(s) for s in size)
        if len(out) != 2:
            raise ValueError(f"interpolate: size must be an int or a pair (OH, OW) for 4-D input, got {size!r}.")
        scales: tuple = (None, None)
    else:
        sf = (float(scale_factor),) * 2 if np.ndim(scale_factor) == 0 else tuple(float(s) for s in scale_factor)
        if len(sf) != 2 or min(sf) <= 0:
            raise ValueError(f"interpolate: scale_factor must be a positive number or a pair of them, got {scale_factor!r}.")
        out = (math.floor(h * sf[0]), math.floor(w * sf[1]))
        scales = (None, None) if recompute_scale_factor else sf
    if min(out) < 1:
        raise ValueError(f"interpolate: output size {out} must be positive (input {(h, w)}).")
    for dim, n, scale in ((2, out[0], scales[0]), (3, out[1], scales[1])):
        if n == x.shape[dim] and (scale is None or scale == 1.0):
            continue  # the identity along this dimension in both modes
        x = _nearest(x, dim, n, scale) if mode == "nearest" else _linear(x, dim, n, scale, bool(align_corners))
    return x
