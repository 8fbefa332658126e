"""PyTorch's :func:`pad`: ``pad`` lists (before, after) amounts from the last dimension backwards."""
from __future__ import annotations

from typing import Any

from ...ops import functions as OF
from ...tensor import Tensor, as_tensor
from .validation import check_option

__all__ = ["pad"]


def _pad_dim(x: Tensor, dim: int, before: int, after: int, mode: str) -> Tensor:
    """Pad one dimension by slicing and concatenating ``x`` itself (reflect, replicate, circular)."""
    n = x.shape[dim]

    def take(start: int, stop: int, step: int = 1) -> Tensor:
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, None if stop < 0 else stop, step)  # a negative stop would wrap around
        return x[tuple(index)]

    parts = []
    if mode == "reflect":  # mirror without repeating the edge: [2 1 | 0 1 2 3 | 2 1]
        if before:
            parts.append(take(before, 0, -1))
        parts.append(x)
        if after:
            parts.append(take(n - 2, n - 2 - after, -1))
    elif mode == "replicate":
        if before:
            parts.append(OF.broadcast_to(take(0, 1), x.shape[:dim] + (before,) + x.shape[dim + 1 :]))
        parts.append(x)
        if after:
            parts.append(OF.broadcast_to(take(n - 1, n), x.shape[:dim] + (after,) + x.shape[dim + 1 :]))
    else:  # circular: wrap around
        if before:
            parts.append(take(n - before, n))
        parts.append(x)
        if after:
            parts.append(take(0, after))
    return OF.cat(parts, axis=dim) if len(parts) > 1 else x


def pad(input: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:  # noqa: A002
    """Pad ``input`` as PyTorch does: ``pad = (left, right)`` pads the last dimension,
    ``(left, right, top, bottom)`` the last two, and so on, one pair per dimension from the last.

    ``mode``: 'constant' (``value``, default 0; negative amounts crop), 'reflect' (mirror without
    repeating the edge, amounts < the dimension's size), 'replicate' (repeat the edge) or 'circular'
    (wrap around, amounts <= the size). The non-constant modes pad at most the last 3 dimensions
    and leave the first unpadded (for (N, C, H, W): up to C, H and W).
    Shape: each padded dimension grows by before + after.

    >>> pad(ones(1, 2, 2), (1, 1)).shape            # last dimension only
    (1, 2, 4)
    >>> pad(tensor([[0.0, 1.0, 2.0]]), (2, 1), mode="reflect").tolist()
    [[2.0, 1.0, 0.0, 1.0, 2.0, 1.0]]
    """
    check_option("pad", "mode", mode, ("constant", "reflect", "replicate", "circular"))
    x = as_tensor(input)
    amounts = list(pad)
    if any(not isinstance(a, int) and not hasattr(a, "__index__") for a in amounts):
        raise TypeError(
            f"pad: pad must be a flat sequence of ints (left, right, top, bottom, ...) from the last dimension backwards, "
            f"as in PyTorch, got {pad!r}. For numpy's per-axis pad_width use tinygrad_cnn.ops.functions.pad."
        )
    amounts = [int(a) for a in amounts]
    if len(amounts) % 2:
        raise ValueError(
            f"pad: pad must have an even length, (before, after) pairs from the last dimension backwards, got {tuple(amounts)}."
        )
    pairs = [(amounts[i], amounts[i + 1]) for i in range(0, len(amounts), 2)]  # last dimension first
    if len(pairs) > x.ndim:
        raise ValueError(f"pad: {len(pairs)} (before, after) pairs given for an input with only {x.ndim} dimensions (shape {x.shape}).")
    if mode == "constant":
        if any(a < 0 for a in amounts):  # a negative amount crops, as in PyTorch
            index = [slice(None)] * x.ndim
            for k, (b, a) in enumerate(pairs):
                index[x.ndim - 1 - k] = slice(max(-b, 0), x.shape[x.ndim - 1 - k] - max(-a, 0))
            x = x[tuple(index)]
            pairs = [(max(b, 0), max(a, 0)) for b, a in pairs]
        width = [(0, 0)] * (x.ndim - len(pairs)) + pairs[::-1]
        return OF.pad(x, width, 0.0 if value is None else value) if any(b or a for b, a in pairs) else x
    if value not in (None, 0, 0.0):
        raise ValueError(f"pad: value is only used by mode='constant', got value={value!r} with mode={mode!r}.")
    if len(pairs) > 3 or len(pairs) >= x.ndim:
        raise ValueError(
            f"pad: mode={mode!r} pads at most the last 3 dimensions and needs a leading dimension left unpadded, got "
            f"{len(pairs)} pairs for input of shape {x.shape}; use mode='constant' or add a batch dimension."
        )
    for k, (b, a) in enumerate(pairs):
        dim = x.ndim - 1 - k
        n = x.shape[dim]
        limit = n - 1 if mode == "reflect" else n
        if min(b, a) < 0 or max(b, a) > limit or (mode == "replicate" and n == 0):
            raise ValueError(
                f"pad: mode={mode!r} needs amounts between 0 and {limit} for dimension {dim} of size {n} "
                f"({'smaller than' if mode == 'reflect' else 'at most'} the size), got ({b}, {a})."
            )
        x = _pad_dim(x, dim, b, a, mode)
    return x
