"""Helpers for the batching rules that ops declare beside forward/backward (``vmap`` static methods).

A rule is ``vmap(info, *args, **params)``: ``args`` are the op's inputs, each batched one as a
Tensor with its batch dimension moved to the front (``info.batched[i]`` says which), and it
returns the op's output(s) with the batch dimension in front, computed with ops (so the result
is differentiable). ``info.batch_size`` is B and ``info.op`` the Function class.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

# The movement ops, bound by ops.movement (which imports this module): rules reshape with the
# ops themselves, skipping the user-facing functions' argument checks.
Reshape: Any = None
Expand: Any = None
Permute: Any = None


def reshape(a: Any, shape: tuple) -> Any:
    return a if tuple(a.shape) == tuple(shape) else Reshape.apply(a, shape=tuple(shape))


class BatchInfo(NamedTuple):
    """What a batching rule is told: which inputs carry the batch dimension (in front), its size,
    the op, and the vmap level (which vmap call this is)."""

    batched: tuple
    batch_size: int
    op: Any  # the Function subclass
    level: int = 0


def logical_ndim(a: Any, batched: bool) -> int:
    return int(np.ndim(a.data if hasattr(a, "data") else a)) - (1 if batched else 0)


def pad_batched(a: Any, ndim: int) -> Any:
    """A batched ``a`` (B, *s) as (B, 1, ..., 1, *s) with ``ndim`` dims after B, so it broadcasts
    against unbatched operands of ``ndim`` dims aligned from the right."""
    extra = ndim - (a.ndim - 1)
    return a if extra <= 0 else reshape(a, (a.shape[0],) + (1,) * extra + tuple(a.shape[1:]))


def elementwise(info: BatchInfo, *args: Any, **params: Any) -> Any:
    """The rule of a broadcasting elementwise op: pad batched operands to the largest logical rank
    so numpy's right-aligned broadcasting keeps B in front, then apply the op once."""
    if len(args) == 1:
        return info.op.apply(*args, **params)
    r = max(logical_ndim(a, b) for a, b in zip(args, info.batched))
    new = [pad_batched(a, r) if b else a for a, b in zip(args, info.batched)]
    r_out = max(r, *(np.ndim(v) for v in params.values() if isinstance(v, np.ndarray))) if params else r
    if r_out > r:  # an array parameter (Where's condition) of higher rank: pad to it too
        new = [pad_batched(a, r_out) if b else a for a, b in zip(new, info.batched)]
    return info.op.apply(*new, **params)


def shift_axis(axis: Any, ndim: int) -> Any:
    """Logical reduction axes (None for all of ``ndim`` dims) as physical axes after B."""
    if axis is None:
        return tuple(range(1, ndim + 1))
    if isinstance(axis, (int, np.integer)):
        return int(axis) % max(ndim, 1) + 1
    return tuple(int(a) % max(ndim, 1) + 1 for a in axis)


def reduction(info: BatchInfo, x: Any, axis: Any = None, keepdims: bool = False, **params: Any) -> Any:
    """The rule of a reduction over ``axis``: the same reduction over the axes shifted past B."""
    ax = shift_axis(axis, x.ndim - 1)
    if x.ndim == 1:  # a batch of scalars: nothing to reduce per example
        return info.op.apply(reshape(x, (x.shape[0], 1)), axis=(1,), keepdims=False, **params)
    return info.op.apply(x, axis=ax, keepdims=keepdims, **params)


def fold(x: Any) -> tuple[Any, tuple]:
    """(B, N, ...) -> (B*N, ...), and the (B, N) to unfold with."""
    return reshape(x, (x.shape[0] * x.shape[1],) + tuple(x.shape[2:])), tuple(x.shape[:2])


def unfold(y: Any, lead: tuple) -> Any:
    """(B*N, ...) -> (B, N, ...)."""
    return reshape(y, tuple(lead) + tuple(y.shape[1:]))


def expand_batch(a: Any, b: int) -> Any:
    """An unbatched Tensor as a batched one: (B, *shape), a broadcast view."""
    return Expand.apply(reshape(a, (1,) + tuple(a.shape)), shape=(b,) + tuple(a.shape))


def batched_to_groups(x: Any) -> Any:
    """(B, N, C, H, W) -> (N, B*C, H, W): a batch of images per example as one grouped input."""
    b, n, c = x.shape[:3]
    return reshape(Permute.apply(x, axes=(1, 0, 2, 3, 4)), (n, b * c) + tuple(x.shape[3:]))


def groups_to_batched(y: Any, b: int) -> Any:
    """(N, B*C, H, W) -> (B, N, C, H, W)."""
    n, bc = y.shape[:2]
    return Permute.apply(reshape(y, (n, b, bc // b) + tuple(y.shape[2:])), axes=(1, 0, 2, 3, 4))
