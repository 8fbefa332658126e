"""Image transforms on numpy arrays: scale to [0, 1], normalize, pad, resize.

Every transform works on one image ``(C, H, W)`` or a whole batch ``(N, C, H, W)`` (it only
touches the trailing axes), so a dataset can transform a batch in one vectorized call.

Example::

    tf = Compose([ToFloat(), Normalize(0.2860, 0.3530), Pad(2)])
    x = tf(np.zeros((100, 1, 28, 28), np.uint8))      # (100, 1, 32, 32) float32
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def _check_image(op: str, x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: expected a numpy array of shape (C, H, W) or (N, C, H, W), got {type(x).__name__}.")
    if x.ndim not in (3, 4):
        raise ValueError(
            f"{op}: expected an image (C, H, W) or a batch (N, C, H, W), got shape {x.shape}. "
            "Add the channel axis first (e.g. x[:, None] for grey images)."
        )


class Compose:
    """Apply transforms in order: ``Compose([ToFloat(), Normalize(0.5, 0.5)])(x)``."""

    def __init__(self, transforms: Sequence[Callable[[np.ndarray], np.ndarray]]) -> None:
        self.transforms = list(transforms)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            x = t(x)
        return x

    def __repr__(self) -> str:
        return f"Compose([{', '.join(map(repr, self.transforms))}])"


class ToFloat:
    """Integer pixels to float32 in [0, 1]: ``x / scale`` (``scale=255`` for uint8 images).

    Shape unchanged. Example: ``ToFloat()(np.array([[[0, 255]]], np.uint8))`` -> ``[[[0., 1.]]]``.
    """

    def __init__(self, scale: float = 255.0, dtype: Any = np.float32) -> None:
        if not scale > 0:
            raise ValueError(f"ToFloat: scale must be positive, got {scale}.")
        self.scale = float(scale)
        self.dtype = np.dtype(dtype)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_image("ToFloat", x)
        out = x.astype(self.dtype)
        out *= self.dtype.type(1.0 / self.scale)
        return out

    def __repr__(self) -> str:
        return f"ToFloat(scale={self.scale:g})"


class Normalize:
    """``(x - mean) / std`` per channel; ``mean``/``std`` are numbers or one value per channel.

    Shape unchanged, (C, H, W) or (N, C, H, W) float input. Example: ``Normalize(0.5, 0.5)``
    maps [0, 1] to [-1, 1].
    """

    def __init__(self, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        self.mean = np.atleast_1d(np.asarray(mean, dtype=np.float64))
        self.std = np.atleast_1d(np.asarray(std, dtype=np.float64))
        if self.mean.ndim != 1 or self.std.ndim != 1:
            raise ValueError(f"Normalize: mean and std must be numbers or flat sequences, got {mean!r} and {std!r}.")
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {std!r} (dividing by it would give inf/nan).")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_image("Normalize", x)
        if x.dtype.kind != "f":
            raise TypeError(f"Normalize: expected float pixels, got dtype {x.dtype}. Put ToFloat() before Normalize.")
        c = x.shape[-3]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, c):
                raise ValueError(f"Normalize: {name} has {v.size} values but the image has {c} channel(s) (shape {x.shape}).")
        mean = self.mean.astype(x.dtype).reshape(-1, 1, 1)
        inv = (1.0 / self.std).astype(x.dtype).reshape(-1, 1, 1)
        return (x - mean) * inv

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class Pad:
    """Pad height and width with a constant: ``Pad(2)`` turns 28x28 into LeNet's 32x32.

    ``padding`` is one int (all sides), ``(left/right, top/bottom)`` or ``(left, top, right,
    bottom)`` as in torchvision. (…, H, W) -> (…, H + top + bottom, W + left + right).
    """

    def __init__(self, padding: int | Sequence[int], fill: float = 0) -> None:
        p = (padding,) if isinstance(padding, (int, np.integer)) else tuple(padding)
        if len(p) not in (1, 2, 4) or not all(isinstance(v, (int, np.integer)) and v >= 0 for v in p):
            raise ValueError(
                f"Pad: padding must be a non-negative int, (left/right, top/bottom) or (left, top, right, bottom), got {padding!r}."
            )
        if len(p) == 1:
            p = p * 4
        elif len(p) == 2:
            p = (p[0], p[1], p[0], p[1])
        self.left, self.top, self.right, self.bottom = (int(v) for v in p)
        self.fill = fill

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_image("Pad", x)
        width = [(0, 0)] * (x.ndim - 2) + [(self.top, self.bottom), (self.left, self.right)]
        return np.pad(x, width, mode="constant", constant_values=self.fill)

    def __repr__(self) -> str:
        return f"Pad(({self.left}, {self.top}, {self.right}, {self.bottom}), fill={self.fill})"


def _bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) interpolation weights, half-pixel centres (align_corners=False)."""
    src = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    i0 = np.floor(src).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = src - i0
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.arange(n_out), i0), 1 - w1)
    np.add.at(m, (np.arange(n_out), i1), w1)
    return m


class Resize:
    """Bilinear resize of height and width to ``size`` (an int for square, or (H, W)).

    Half-pixel centres, no antialiasing: the same numbers as PyTorch's
    ``F.interpolate(x, size, mode="bilinear", align_corners=False)``. Float input (put ToFloat
    first); (…, H, W) -> (…, size_h, size_w). Used to feed 28x28 images to AlexNet (227x227).
    """

    def __init__(self, size: int | Sequence[int]) -> None:
        s = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
        if len(s) != 2 or not all(isinstance(v, (int, np.integer)) and v >= 1 for v in s):
            raise ValueError(f"Resize: size must be a positive int or (height, width), got {size!r}.")
        self.size = (int(s[0]), int(s[1]))
        self._cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        _check_image("Resize", x)
        if x.dtype.kind != "f":
            raise TypeError(f"Resize: expected float pixels, got dtype {x.dtype}. Put ToFloat() before Resize.")
        h, w = x.shape[-2:]
        if (h, w) not in self._cache:
            self._cache[(h, w)] = (_bilinear_matrix(h, self.size[0]), _bilinear_matrix(w, self.size[1]))
        rh, rw = (m.astype(x.dtype) for m in self._cache[(h, w)])
        return rh @ x @ rw.T

    def __repr__(self) -> str:
        return f"Resize({self.size})"
