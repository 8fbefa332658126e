"""Dropout (regularization by noise): elementwise (:func:`dropout`) and channel-wise (:func:`dropout2d`), inverted so that
evaluation (``training=False``) is the identity."""
from __future__ import annotations

from typing import Any

import numpy as np

from ...ops.batching import batch_levels, random_values
from ...tensor import Tensor, as_tensor, get_rng
from .validation import check_not_inplace

__all__ = ["dropout", "dropout2d"]


def _check_p(op: str, p: float) -> float:
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"{op}: dropout probability p must be in [0, 1], got {p}.")
    return float(p)


def _drop(x: Tensor, mask_shape: tuple[int, ...], p: float, seed: Any) -> Tensor:
    if p == 1.0:  # everything dropped: the scale 1/(1-p) would be inf
        return x * np.zeros(mask_shape, dtype=x.dtype)
    rng = get_rng(seed)
    scale = np.asarray(1.0 - p, dtype=x.dtype)
    if x.is_batched or batch_levels():  # inside vmap (even on an unbatched x): as the randomness settings say
        mask = random_values("dropout", rng, lambda shape: (np.asarray(rng.random(shape) >= p).astype(x.dtype) / scale), mask_shape)
        return x * mask
    keep = rng.random(mask_shape) >= p
    return x * (keep.astype(x.dtype) / scale)


def dropout(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *, seed: Any = None) -> Tensor:  # noqa: A002
    """Zero each element with probability ``p`` and scale the rest by 1/(1-p); the identity when
    not ``training``. Shape unchanged; ``seed`` (int or Generator) makes it repeatable, otherwise
    the global generator is used (``tinygrad_cnn.manual_seed``).

    >>> sorted(set(dropout(ones(1000), p=0.5, seed=0).tolist()))
    [0.0, 2.0]
    """
    check_not_inplace("dropout", inplace)
    p = _check_p("dropout", p)
    x = as_tensor(input)
    if not training or p == 0.0:
        return x
    return _drop(x, x.shape, p, seed)


def dropout2d(input: Any, p: float = 0.5, training: bool = True, inplace: bool = False, *, seed: Any = None) -> Tensor:  # noqa: A002
    """Zero whole channels of ``input`` (N, C, H, W) with probability ``p`` and scale the rest by
    1/(1-p); the identity when not ``training``. Shape unchanged; ``seed`` as in :func:`dropout`.

    >>> y = dropout2d(ones(2, 8, 3, 3), p=0.5, seed=0)
    >>> sorted(set(y.numpy().reshape(16, 9).std(axis=1).tolist()))  # each channel all 0 or all 2
    [0.0]
    """
    check_not_inplace("dropout2d", inplace)
    p = _check_p("dropout2d", p)
    x = as_tensor(input)
    if x.ndim != 4:
        raise ValueError(
            f"dropout2d: input must be 4-D (N, C, H, W), got shape {x.shape}; add a batch axis with x.unsqueeze(0), "
            "or use dropout for elementwise dropout."
        )
    if not training or p == 0.0:
        return x
    return _drop(x, x.shape[:2] + (1, 1), p, seed)
