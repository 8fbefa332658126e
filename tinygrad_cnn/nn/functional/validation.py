"""Argument checks shared by the functional modules: option strings, PyTorch's ``dim`` /
``keepdim`` with numpy's ``axis`` / ``keepdims`` as aliases, and one image (C, H, W) where a
batch (N, C, H, W) is expected."""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from ...tensor import as_tensor


def accepts_one_image(fn: Callable) -> Callable:
    """Let ``fn``, a function of images (N, C, H, W) as its first argument, also take one image
    (C, H, W), as PyTorch's convolutions and pools do: it runs on a batch of one, and the batch
    axis is dropped from its result (from each one when it returns several). Inside ``vmap``
    this is what makes a function of one example's image work unchanged.

    >>> import tinygrad_cnn as tg
    >>> from tinygrad_cnn.nn.functional import max_pool2d
    >>> max_pool2d(tg.ones(3, 4, 4), 2).shape
    (3, 2, 2)
    """

    @functools.wraps(fn)
    def one_or_many(input: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: A002
        x = as_tensor(input)
        if x.ndim != 3:
            return fn(x, *args, **kwargs)
        out = fn(x.unsqueeze(0), *args, **kwargs)
        return tuple(o.squeeze(0) for o in out) if isinstance(out, tuple) else out.squeeze(0)

    return one_or_many


def check_option(op: str, name: str, value: Any, allowed: tuple) -> Any:
    """Return ``value`` if it is one of ``allowed``, else raise a ValueError naming ``op``.

    >>> check_option("mse_loss", "reduction", "sum", ("mean", "sum", "none"))
    'sum'
    """
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed[:-1]) + f" or {allowed[-1]!r}" if len(allowed) > 1 else repr(allowed[0])
        raise ValueError(f"{op}: {name} must be {options}, got {value!r}.")
    return value


def check_reduction(op: str, reduction: Any) -> str:
    """``reduction`` if it is 'mean', 'sum' or 'none' (the losses' options), else a ValueError."""
    return check_option(op, "reduction", reduction, ("mean", "sum", "none"))


def resolve_dim(op: str, dim: Any, axis: Any, default: Any) -> Any:
    """PyTorch's ``dim`` with numpy's ``axis`` accepted as an alias; ``default`` when neither is given.

    >>> resolve_dim("softmax", None, 1, -1)
    1
    """
    if axis is not None:
        if dim is not None and dim != axis:
            raise ValueError(f"{op}: got dim={dim!r} and its alias axis={axis!r}; pass only dim.")
        return axis
    return default if dim is None else dim


def resolve_keepdim(op: str, keepdim: Any, keepdims: Any) -> bool:
    """PyTorch's ``keepdim`` with numpy's ``keepdims`` accepted as an alias (default False)."""
    if keepdims is not None:
        if keepdim is not None and bool(keepdim) != bool(keepdims):
            raise ValueError(f"{op}: got keepdim={keepdim!r} and its alias keepdims={keepdims!r}; pass only keepdim.")
        return bool(keepdims)
    return bool(keepdim)


def check_not_inplace(op: str, inplace: Any) -> None:
    """Results are always new tensors here; ``inplace=True`` is refused rather than ignored."""
    if inplace:
        raise ValueError(f"{op}: inplace=True is not supported (results are always new tensors); pass inplace=False.")
