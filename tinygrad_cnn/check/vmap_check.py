"""``check_vmap``: a batching rule checked against the definition of vmap, a loop over the batch."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..func import match_in_dims, vmap
from ..pytree import tree_flatten
from ..tensor import Tensor

__all__ = ["check_vmap"]


def _slice(leaf: Any, d: int, i: int) -> Any:
    idx = (slice(None),) * (d % leaf.ndim) + (i,)
    return leaf[idx]


def _dims_per_leaf(in_dims: Any, args: tuple) -> list[list]:
    specs = list(in_dims) if isinstance(in_dims, (tuple, list)) else [in_dims] * len(args)
    return [match_in_dims(s, a, f"args[{i}]", "check_vmap") for i, (s, a) in enumerate(zip(specs, args))]


def _array(v: Any) -> np.ndarray:
    return v.numpy() if isinstance(v, Tensor) else np.asarray(v)


def check_vmap(fn: Callable, *args: Any, in_dims: Any = 0, out_dims: int = 0, atol: float = 1e-10, rtol: float = 1e-7,
               chunk_size: int | None = None, randomness: str = "error") -> Any:
    """Check ``vmap(fn, in_dims, out_dims)(*args)`` against its definition: ``fn`` called on
    each example in a Python loop, results stacked along ``out_dims``. Raises ``AssertionError``
    naming the output leaf and the first differing example; returns the vmapped result.

    Use it to test your own batching rules (a ``vmap`` static method on a ``Function``) or any
    function you mean to vmap.

    Example::

        check_vmap(lambda x, w: F.conv2d(x[None], w)[0], randn(4, 1, 5, 5).double(), randn(2, 1, 3, 3).double(),
                   in_dims=(0, None))
    """
    got = vmap(fn, in_dims=in_dims, out_dims=out_dims, chunk_size=chunk_size, randomness=randomness)(*args)
    dims = _dims_per_leaf(in_dims, args)
    flats = [tree_flatten(a) for a in args]
    sizes = {leaf.shape[d] for (leaves, _), ds in zip(flats, dims) for leaf, d in zip(leaves, ds) if d is not None}
    (n,) = sizes
    per = []
    for i in range(n):
        sub = [td.unflatten([leaf if d is None else _slice(leaf, d, i) for leaf, d in zip(leaves, ds)])
               for (leaves, td), ds in zip(flats, dims)]
        per.append(tree_flatten(fn(*sub))[0])
    got_leaves, _ = tree_flatten(got)
    if len(got_leaves) != len(per[0]):
        raise AssertionError(f"check_vmap: vmap returned {len(got_leaves)} output leaves, the loop {len(per[0])}.")
    for j, g in enumerate(got_leaves):
        want = np.stack([_array(p[j]) for p in per], axis=out_dims)
        have = _array(g)
        if have.shape != want.shape:
            raise AssertionError(f"check_vmap: output leaf {j} has shape {have.shape} under vmap but {want.shape} from the loop.")
        close = np.isclose(have, want, atol=atol, rtol=rtol, equal_nan=True)
        if not close.all():
            moved = np.moveaxis(close, out_dims, 0).reshape(n, -1).all(axis=1)
            i = int(np.argmin(moved))
            err = np.nanmax(np.abs(have.astype(np.float64) - want.astype(np.float64)))
            raise AssertionError(f"check_vmap: output leaf {j} differs from the loop at example {i} (max abs difference {err:.3g}).")
    return got
