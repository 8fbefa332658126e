"""Tensor-level functions: validate arguments, then apply primitives (or compose them).

These back the Tensor methods and are re-exported by ``tinygrad_cnn.nn.functional``.
"""
from __future__ import annotations

import builtins
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from ..autograd import function as _graph
from ..autograd.grad_mode import function_scope
from . import elementwise as E
from .linalg import MatMul
from .movement import Concat, Expand, GetItem, IndexAdd, Pad, Permute, Reshape, along, normalize_index
from .reduce import CumSum, Max, Min, Prod, Sum, normalize_axis


def _t(x: Any, like: Any = None) -> Any:
    # tensor.py binds as_tensor into autograd.function once the Tensor class exists.
    return _graph.as_tensor(x, like=like)


def _dim(op: str, dim: Any, axis: Any) -> Any:
    """``dim``, or numpy's spelling ``axis`` when that is the one given."""
    if axis is None:
        return dim
    if dim is not None:
        raise TypeError(f"{op}: got both dim={dim!r} and its numpy alias axis={axis!r}; pass only dim.")
    return axis


def _keep(keepdim: bool, keepdims: bool | None) -> bool:
    return bool(keepdim if keepdims is None else keepdims)


class ValuesIndices(NamedTuple):
    """The ``(values, indices)`` pair returned by ``max(dim)``, ``min(dim)``, ``sort`` and ``topk``."""

    values: Any
    indices: Any


# ---- elementwise ---------------------------------------------------------------------------
def add(a: Any, b: Any) -> Any:
    """a + b with broadcasting; shapes follow numpy (e.g. (N, C) + (C,) -> (N, C)).

    >>> add(tensor([1.0, 2.0]), 1.0).tolist()
    [2.0, 3.0]
    """
    return E.Add.apply(a, b)


def sub(a: Any, b: Any) -> Any:
    """a - b with broadcasting.

    >>> sub(tensor([1.0, 2.0]), tensor([[1.0], [2.0]])).shape
    (2, 2)
    """
    return E.Sub.apply(a, b)


def mul(a: Any, b: Any) -> Any:
    """a * b with broadcasting.

    >>> mul(tensor([1.0, 2.0]), 3.0).tolist()
    [3.0, 6.0]
    """
    return E.Mul.apply(a, b)


def div(a: Any, b: Any) -> Any:
    """a / b with broadcasting.

    >>> div(tensor([1.0, 2.0]), 4.0).tolist()
    [0.25, 0.5]
    """
    return E.Div.apply(a, b)


def neg(x: Any) -> Any:
    """-x, same shape.

    >>> neg(tensor([1.0, -2.0])).tolist()
    [-1.0, 2.0]
    """
    return E.Neg.apply(x)


def pow(x: Any, exponent: Any) -> Any:  # noqa: A001
    """x ** exponent; a Python-number exponent is a constant, a Tensor exponent is differentiated
    too (d/db a**b = a**b log a, taken as 0 where a <= 0). Same broadcasting as ``mul``.

    >>> pow(tensor([2.0, 3.0]), 2).tolist()
    [4.0, 9.0]
    """
    if isinstance(exponent, (int, float)) and not isinstance(exponent, bool):
        return E.PowScalar.apply(x, exponent=exponent)
    return E.Pow.apply(x, exponent)


def exp(x: Any) -> Any:
    """e ** x elementwise, same shape.

    >>> round(exp(tensor([1.0])).item(), 4)
    2.7183
    """
    return E.Exp.apply(x)


def log(x: Any) -> Any:
    """Natural logarithm elementwise, same shape.

    >>> log(tensor([1.0])).item()
    0.0
    """
    return E.Log.apply(x)


def sqrt(x: Any) -> Any:
    """Square root elementwise, same shape.

    >>> sqrt(tensor([4.0, 9.0])).tolist()
    [2.0, 3.0]
    """
    return E.Sqrt.apply(x)


def abs(x: Any) -> Any:  # noqa: A001
    """|x| elementwise; gradient 0 at x == 0 (as in PyTorch).

    >>> abs(tensor([-1.5, 2.0])).tolist()
    [1.5, 2.0]
    """
    return E.Abs.apply(x)


def tanh(x: Any) -> Any:
    """Hyperbolic tangent elementwise, same shape.

    >>> tanh(tensor([0.0])).item()
    0.0
    """
    return E.Tanh.apply(x)


def sigmoid(x: Any) -> Any:
    """1 / (1 + e ** -x) elementwise, computed without overflow for large |x|.

    >>> sigmoid(tensor([0.0, 1000.0])).tolist()
    [0.5, 1.0]
    """
    return E.Sigmoid.apply(x)


def relu(x: Any) -> Any:
    """max(x, 0) elementwise; gradient 0 at x == 0.

    >>> relu(tensor([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """
    return E.ReLU.apply(x)


def maximum(a: Any, b: Any) -> Any:
    """Elementwise maximum with broadcasting; ties split the gradient equally (0.5 each).

    >>> maximum(tensor([1.0, 5.0]), 3.0).tolist()
    [3.0, 5.0]
    """
    return E.Maximum.apply(a, b)


def minimum(a: Any, b: Any) -> Any:
    """Elementwise minimum with broadcasting; ties split the gradient equally (0.5 each).

    >>> minimum(tensor([1.0, 5.0]), 3.0).tolist()
    [1.0, 3.0]
    """
    return E.Minimum.apply(a, b)


def where(cond: Any, a: Any, b: Any) -> Any:
    """Elementwise ``cond ? a : b`` with broadcasting; ``cond`` (a boolean Tensor or array) is not
    differentiated.

    >>> where(tensor([1.0, -1.0]) > 0, 1.0, tensor([0.0, 0.0])).tolist()
    [1.0, 0.0]
    """
    batched = getattr(cond, "is_batched", False)  # a per-example condition inside vmap
    c = cond if batched else np.asarray(cond.data if isinstance(cond, _graph.Tensor) else cond)
    if c.dtype != bool:
        raise TypeError(f"where: cond must be boolean, got dtype {c.dtype}; compare first, e.g. where(x > 0, a, b).")
    if batched:
        from .batching import where as batched_where

        return batched_where(cond, a, b)
    return E.Where.apply(a, b, cond=c)


def clip(x: Any, min: float | None = None, max: float | None = None) -> Any:  # noqa: A002
    """Clamp to [min, max] (either may be None), same shape; the gradient passes where
    min <= x <= max.

    >>> clip(tensor([-2.0, 0.5, 2.0]), -1.0, 1.0).tolist()
    [-1.0, 0.5, 1.0]
    """
    if min is None and max is None:
        raise ValueError("clip: give at least one of min and max.")
    if min is not None and max is not None and min > max:
        raise ValueError(f"clip: min ({min}) is greater than max ({max}).")
    return E.Clip.apply(x, lo=min, hi=max)


# ---- reductions ---------------------------------------------------------------------------
# PyTorch's spelling (dim, keepdim) is primary; numpy's axis/keepdims are accepted as aliases.
def sum(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None, keepdims: bool | None = None) -> Any:  # noqa: A001
    """Sum over ``dim`` (None: all; an int or a tuple), dropping those dims unless ``keepdim``;
    ``dtype`` casts the input first.

    >>> sum(ones(2, 3, 4), dim=(0, 2), keepdim=True).shape
    (1, 3, 1)
    """
    x = _t(x)
    if dtype is not None:
        x = x.to(dtype)
    return Sum.apply(x, axis=normalize_axis("sum", _dim("sum", dim, axis), x.ndim), keepdims=_keep(keepdim, keepdims))


def _count(x: Any, axes: tuple[int, ...] | None) -> int:
    return x.data.size if axes is None else math.prod(x.shape[a] for a in axes)


def mean(x: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None, keepdims: bool | None = None) -> Any:
    """Mean over ``dim`` (None: all), dropping those dims unless ``keepdim``.

    >>> mean(tensor([[1.0, 3.0]]), dim=1).tolist()
    [2.0]
    """
    x = _t(x)
    if dtype is not None:
        x = x.to(dtype)
    dim = _dim("mean", dim, axis)
    axes = normalize_axis("mean", dim, x.ndim)
    n = _count(x, axes)
    if n == 0:
        raise ValueError(f"mean: reducing over zero elements (shape {x.shape}, dim {dim}).")
    return Sum.apply(x, axis=axes, keepdims=_keep(keepdim, keepdims)) * (1.0 / n)


def _correction(op: str, unbiased: Any, correction: Any, ddof: Any) -> int:
    given = [v for v in (unbiased, correction, ddof) if v is not None]
    if len(given) > 1:
        raise TypeError(f"{op}: give only one of unbiased={unbiased!r}, correction={correction!r}, ddof={ddof!r}.")
    if unbiased is not None:
        return 1 if unbiased else 0
    if correction is not None:
        return int(correction)
    if ddof is not None:
        return int(ddof)
    return 1


def var(x: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: int | None = None,
        axis: Any = None, keepdims: bool | None = None, ddof: int | None = None) -> Any:
    """Variance over ``dim`` with ``correction`` (default 1, Bessel's correction, as in PyTorch,
    also when spelled with numpy's ``axis``; ``unbiased=False``, ``correction=0`` or ``ddof=0``
    gives the population variance, numpy's default). Shape as for :func:`sum`.

    >>> var(tensor([1.0, 3.0])).item()
    2.0
    >>> var(tensor([1.0, 3.0]), correction=0).item()
    1.0
    """
    x = _t(x)
    c = _correction("var", unbiased, correction, ddof)
    dim = _dim("var", dim, axis)
    axes = normalize_axis("var", dim, x.ndim)
    n = _count(x, axes)
    if n - c <= 0:
        raise ValueError(f"var: {n} element(s) with correction={c} leaves no degrees of freedom; use correction=0.")
    d = x - mean(x, axes, keepdim=True)
    return Sum.apply(d * d, axis=axes, keepdims=_keep(keepdim, keepdims)) * (1.0 / (n - c))


def std(x: Any, dim: Any = None, unbiased: bool | None = None, keepdim: bool = False, *, correction: int | None = None,
        axis: Any = None, keepdims: bool | None = None, ddof: int | None = None) -> Any:
    """Standard deviation, ``sqrt(var(...))`` with :func:`var`'s arguments and defaults.

    >>> std(tensor([1.0, 3.0]), correction=0).item()
    1.0
    """
    return var(x, dim, unbiased, keepdim, correction=correction, axis=axis, keepdims=keepdims, ddof=ddof).sqrt()


def prod(x: Any, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None, axis: Any = None,
         keepdims: bool | None = None) -> Any:
    """Product over ``dim`` (None: all elements); differentiable also where elements are 0.

    >>> prod(tensor([[1.0, 2.0], [3.0, 4.0]]), 1).tolist()
    [2.0, 12.0]
    """
    x = _t(x)
    if dtype is not None:
        x = x.to(dtype)
    return Prod.apply(x, axis=normalize_axis("prod", _dim("prod", dim, axis), x.ndim), keepdims=_keep(keepdim, keepdims))


def amax(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
    """Maximum over ``dim`` (None: all; an int or a tuple); tied maxima share the gradient
    equally (1/k each), as in PyTorch.

    >>> amax(tensor([[1.0, 4.0], [3.0, 2.0]]), 0).tolist()
    [3.0, 4.0]
    """
    x = _t(x)
    return Max.apply(x, axis=normalize_axis("amax", _dim("amax", dim, axis), x.ndim), keepdims=_keep(keepdim, keepdims))


def amin(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
    """Minimum over ``dim`` (None: all); tied minima share the gradient equally.

    >>> amin(tensor([[1.0, 4.0], [3.0, 2.0]]), 1).tolist()
    [1.0, 2.0]
    """
    x = _t(x)
    return Min.apply(x, axis=normalize_axis("amin", _dim("amin", dim, axis), x.ndim), keepdims=_keep(keepdim, keepdims))


def _arg(op: str, x: Any, dim: Any, keepdim: bool, fn: Any) -> Any:
    x = _t(x)
    if getattr(x, "is_batched", False):  # inside vmap: on the whole batch, the batch dims in front
        from .batching import map_physical

        return map_physical(x, lambda a, k: _arg_batched(op, a, k, dim, keepdim, fn))
    if x.data.size == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor of shape {x.shape}.")
    if dim is None:
        r = np.asarray(fn(x.data.reshape(-1)), dtype=np.int64)
        return _const(r.reshape((1,) * x.ndim) if keepdim else r)
    (d,) = normalize_axis(op, int(dim), x.ndim) or (0,)
    return _const(np.asarray(fn(x.data, axis=d, keepdims=keepdim), dtype=np.int64))


def _arg_batched(op: str, a: np.ndarray, k: int, dim: Any, keepdim: bool, fn: Any) -> np.ndarray:
    """``_arg`` of each example of ``a``, whose first ``k`` dims are batch dims."""
    nd = a.ndim - k
    if a.size == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor of shape {a.shape[k:]}.")
    if dim is None:
        r = np.asarray(fn(a.reshape(a.shape[:k] + (-1,)), axis=-1), dtype=np.int64)
        return r.reshape(r.shape + (1,) * nd) if keepdim else r
    (d,) = normalize_axis(op, int(dim), nd) or (0,)
    return np.asarray(fn(a, axis=d + k, keepdims=keepdim), dtype=np.int64)


def argmax(x: Any, dim: int | None = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
    """Index of the (first) maximum over ``dim`` (None: of the flattened tensor); int64, not
    differentiable.

    >>> argmax(tensor([[1.0, 4.0], [3.0, 2.0]]), dim=1).tolist()
    [1, 0]
    """
    return _arg("argmax", x, _dim("argmax", dim, axis), _keep(keepdim, keepdims), np.argmax)


def argmin(x: Any, dim: int | None = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
    """Index of the (first) minimum over ``dim`` (None: of the flattened tensor); int64.

    >>> argmin(tensor([[1.0, 4.0], [3.0, 2.0]]), dim=1).tolist()
    [0, 1]
    """
    return _arg("argmin", x, _dim("argmin", dim, axis), _keep(keepdim, keepdims), np.argmin)


def _extremum(op: str, x: Any, dim: Any, keepdim: bool, axis: Any, keepdims: bool | None, whole: Any, arg: Any) -> Any:
    if dim is not None and not isinstance(dim, (int, np.integer, tuple, list)):  # torch.max(a, b): elementwise
        return (maximum if op == "max" else minimum)(x, dim)
    x = _t(x)
    dim = _dim(op, dim, axis)
    if dim is None:
        return whole(x)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(
            f"{op}: dim must be one int (it returns the values and indices along it), got {dim!r}; "
            f"for the {op} over several dims use a{op}(x, dim={tuple(dim)!r})."
        )
    dim = int(dim)
    keep = _keep(keepdim, keepdims)
    idx = arg(x, dim, keepdim=True)
    if getattr(x, "is_batched", False):
        # Inside vmap the index differs per example: select it through a one-hot mask (where, not a
        # multiply, so an inf elsewhere in the row stays out), which routes the gradient to the
        # indexed element as the gather below does.
        d = dim % x.ndim
        positions = _const(np.arange(x.shape[d]).reshape(tuple(-1 if i == d else 1 for i in range(x.ndim))))
        values = sum(where(idx == positions, x, _const(np.zeros((), x.dtype))), d, keepdim=True)
    else:
        # Gathering at the index routes the whole gradient to that element, as PyTorch's max(dim) does.
        values = gather(x, dim, idx)
    return ValuesIndices(values if keep else squeeze(values, dim), idx if keep else squeeze(idx, dim))


def max(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:  # noqa: A001
    """PyTorch's ``max``: with no ``dim`` the maximum of all elements (ties share the gradient);
    with an int ``dim`` a ``(values, indices)`` named tuple, the gradient going to the indexed
    element (numpy's ``axis`` is an alias of ``dim``); with a Tensor as second argument the
    elementwise :func:`maximum`. :func:`amax` gives the values alone, over any dims.

    >>> max(tensor([[1.0, 4.0], [3.0, 2.0]]), 0).indices.tolist()
    [1, 0]
    """
    return _extremum("max", x, dim, keepdim, axis, keepdims, amax, argmax)


def min(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:  # noqa: A001
    """PyTorch's ``min``; see :func:`max`.

    >>> min(tensor([[1.0, 4.0], [3.0, 2.0]]), 1).values.tolist()
    [1.0, 2.0]
    """
    return _extremum("min", x, dim, keepdim, axis, keepdims, amin, argmin)


def float_input(op: str, x: Any, dtype: Any = None) -> Any:
    """``x`` as a floating Tensor (cast to ``dtype`` first when given), or a TypeError naming
    ``op`` for an integer or bool input: the check of every op defined only on floats.

    >>> float_input("softmax", [1, 2], dtype=float64).dtype
    dtype('float64')
    """
    x = _t(x)
    if dtype is not None:
        x = x.astype(dtype)
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {x.dtype}; convert with .float() or pass dtype=.")
    return x


def _softmax_dim(op: str, x: Any, dim: Any, axis: Any) -> int:
    """The one dim the softmax family normalizes over: ``dim`` (or its alias ``axis``), the last
    dim when neither is given."""
    dim = _dim(op, dim, axis)
    if dim is None and x.ndim > 2 and op != "logsumexp":
        # PyTorch's implicit dim is 0 for 3-D and 1 for 4-D inputs (deprecated there): rather
        # than normalize over a different dim than the ported script did, ask for it.
        raise TypeError(f"{op}: give dim for a {x.ndim}-D input (of shape {x.shape}), e.g. {op}(x, dim=1) for class scores on dim 1.")
    dim = -1 if dim is None else dim
    n = builtins.max(x.ndim, 1)
    if not isinstance(dim, (int, np.integer)) or isinstance(dim, (bool, np.bool_)) or not -n <= dim < n:
        raise ValueError(f"{op}: dim must be an int in [{-n}, {n}) for input of shape {x.shape}, got {dim!r}.")
    return int(dim) % n if x.ndim else 0


def _axes(x: Any, d: int) -> tuple[int, ...] | None:
    return (d,) if x.ndim else None  # a 0-d tensor is its own one-element row


def _detached_max(x: Any, d: int) -> Any:
    # The softmax family is shift-invariant, so the shift needs no gradient of its own.
    return detached_max(x, _axes(x, d))


def detached_max(x: Any, axes: tuple[int, ...] | None, finite: bool = False) -> Any:
    """The max of ``x`` over ``axes`` (kept as size 1) as a constant, the shift of the softmax
    family (shift-invariant, so it needs no gradient); with ``finite``, 0 where the max is
    infinite. Inside vmap it is computed per example by the ``Max`` op on ``x.detach()``.

    >>> detached_max(tensor([[1.0, 3.0]]), (1,)).tolist()
    [[3.0]]
    """
    if not getattr(x, "is_batched", False):
        m = np.max(x.data, axis=axes, keepdims=True) if x.data.size else np.zeros((1,) * x.ndim, x.dtype)
        return _const(np.where(np.isfinite(m), m, 0).astype(x.dtype) if finite else m)
    m = Max.apply(x.detach(), axis=axes, keepdims=True)
    return where(m.abs() < np.inf, m, 0.0) if finite else m


@function_scope("logsumexp")
def logsumexp(x: Any, dim: Any = None, keepdim: bool = False, *, axis: Any = None, keepdims: bool | None = None) -> Any:
    """log(sum(exp(x))) over ``dim`` (default -1), stable for large inputs: ``log(sum(exp(x - m))) + m``
    with ``m`` the detached max, taken as 0 where it is infinite (as PyTorch does, so a row of -inf
    gives -inf and a row holding +inf gives inf). Shape: ``x`` with ``dim`` dropped, or kept as size
    1 with ``keepdim``. ``axis``/``keepdims`` are aliases.

    >>> round(logsumexp(tensor([[1000.0, 1000.0]]), dim=1).item(), 2)
    1000.69
    """
    x = float_input("logsumexp", x)
    d = _softmax_dim("logsumexp", x, dim, axis)
    m = detached_max(x, _axes(x, d), finite=True)
    out = Sum.apply((x - m).exp(), axis=_axes(x, d), keepdims=True).log() + m
    return out if _keep(keepdim, keepdims) or x.ndim == 0 else squeeze(out, d)


@function_scope("softmax")
def softmax(x: Any, dim: Any = None, dtype: Any = None, *, axis: Any = None) -> Any:
    """exp(x) / sum(exp(x)) along ``dim`` (default -1 for 1-D and 2-D inputs, PyTorch's implicit
    choice there; required for more dims), computed as ``exp(s) / sum(exp(s))`` with
    ``s = x - max(x)``: stable for logits of any size. Shape unchanged. A row of -inf, or holding
    +inf or NaN, gives NaN (as in PyTorch). ``dtype`` casts the input first; ``axis`` is an alias.

    >>> softmax(tensor([[1e4, 0.0]]), dim=1).tolist()
    [[1.0, 0.0]]
    """
    x = float_input("softmax", x, dtype)
    d = _softmax_dim("softmax", x, dim, axis)
    e = (x - _detached_max(x, d)).exp()
    return e / Sum.apply(e, axis=_axes(x, d), keepdims=True)


@function_scope("log_softmax")
def log_softmax(x: Any, dim: Any = None, dtype: Any = None, *, axis: Any = None) -> Any:
    """log(softmax(x)) along ``dim`` (default -1 for 1-D and 2-D inputs; required for more dims),
    shape unchanged: ``s - log(sum(exp(s)))`` with ``s = x - max(x)``. Computing ``s`` once keeps
    the result as exact as PyTorch's in float32 (``x - (m + log(sum))`` rounds ``m + log(sum)`` to
    the spacing of floats near ``m``). A row of -inf, or holding +inf or NaN, gives NaN. ``dtype``
    casts the input first; ``axis`` is an alias.

    >>> log_softmax(tensor([0.0, 0.0]), dim=0).exp().tolist()
    [0.5, 0.5]
    >>> log_softmax(tensor([-1e4, -1e4, -1e4])).tolist()  # -log(3) in float32
    [-1.0986123085021973, -1.0986123085021973, -1.0986123085021973]
    """
    x = float_input("log_softmax", x, dtype)
    d = _softmax_dim("log_softmax", x, dim, axis)
    s = x - _detached_max(x, d)
    return s - Sum.apply(s.exp(), axis=_axes(x, d), keepdims=True).log()


def cumsum(x: Any, dim: int, *, dtype: Any = None, axis: Any = None) -> Any:
    """Cumulative sum along ``dim``, same shape.

    >>> cumsum(tensor([1.0, 2.0, 3.0]), 0).tolist()
    [1.0, 3.0, 6.0]
    """
    x = _t(x)
    if dtype is not None:
        x = x.to(dtype)
    d = normalize_axis("cumsum", _dim("cumsum", dim, axis), x.ndim)
    return CumSum.apply(x, axis=d[0] if d else 0)


def norm(x: Any, p: Any = 2, dim: Any = None, keepdim: bool = False) -> Any:
    """The vector ``p``-norm over ``dim`` (None: all elements): ``sum(|x|**p)**(1/p)``; ``p`` may
    be ``inf``, ``-inf``, 0 (count of non-zeros) or ``'fro'`` (= 2). The gradient of the 2-norm
    at the zero vector is 0, as in PyTorch.

    >>> norm(tensor([3.0, 4.0])).item()
    5.0
    """
    x = _t(x)
    if p == "fro":
        p = 2
    if not isinstance(p, (int, float)) or isinstance(p, bool):
        raise ValueError(f"norm: p must be a number, inf, -inf or 'fro', got {p!r}.")
    axes = normalize_axis("norm", dim, x.ndim)
    a = x.abs()
    if p == math.inf:
        return amax(a, axes, keepdim)
    if p == -math.inf:
        return amin(a, axes, keepdim)
    if p == 0:
        return sum(ne(x, 0).to(x.dtype), axes, keepdim)
    if p == 1:
        return sum(a, axes, keepdim)
    s = sum(a**p if p != 2 else x * x, axes, keepdim)
    if getattr(s, "is_batched", False):  # inside vmap: the same, with a per-example condition
        pos_t = s > 0
        return where(pos_t, where(pos_t, s, 1.0) ** (1.0 / p), 0.0)
    pos = s.data > 0
    # Where the sum is 0, root a constant instead: the root's infinite slope times 0 would be NaN.
    return where(pos, E.Where.apply(s, 1.0, cond=pos) ** (1.0 / p), 0.0)


def any(x: Any, dim: int | None = None, keepdim: bool = False) -> Any:  # noqa: A001
    """Whether any element is non-zero, over ``dim`` (None: all); a bool tensor.

    >>> any(tensor([0.0, 1.0])).item()
    True
    """
    return _truth_reduce("any", np.any, x, dim, keepdim)


def all(x: Any, dim: int | None = None, keepdim: bool = False) -> Any:  # noqa: A001
    """Whether every element is non-zero, over ``dim`` (None: all); a bool tensor.

    >>> all(tensor([0.0, 1.0])).item()
    False
    """
    return _truth_reduce("all", np.all, x, dim, keepdim)


def _truth_reduce(op: str, reduce: Callable[..., Any], x: Any, dim: int | None, keepdim: bool) -> Any:
    """``any`` or ``all`` (``reduce`` is ``np.any`` or ``np.all``): a constant bool tensor.

    ``reduce`` is a plain callable because numpy 2.5's stubs accept only a literal ``keepdims``.
    """
    x = _t(x)
    axis = normalize_axis(op, dim, x.ndim)
    if _is_batched(x):  # inside vmap: over the whole batch, the axes shifted past the batch dims
        from .batching import map_physical

        return map_physical(x, lambda a, k: reduce(a, axis=_past_batch(axis, k, a.ndim), keepdims=keepdim))
    return _const(reduce(x.data, axis=axis, keepdims=keepdim))


def _past_batch(axis: Any, k: int, ndim: int) -> tuple:
    """Normalized logical ``axis`` (None: all) as the axes of an array with ``k`` batch dims in front."""
    return tuple(range(k, ndim)) if axis is None else tuple(a + k for a in axis)


# ---- shapes ---------------------------------------------------------------------------------
def reshape(x: Any, shape: Sequence[int]) -> Any:
    """Reshape to ``shape`` with the same number of elements (one dimension may be -1).

    >>> reshape(ones(2, 6), (3, -1)).shape
    (3, 4)
    """
    x = _t(x)
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:
        return x
    known = math.prod(s for s in shape if s != -1)
    unknown = shape.count(-1)
    ok = unknown <= 1 and builtins.all(s >= -1 for s in shape)
    if ok and unknown == 1:
        ok = known > 0 and x.data.size % known == 0
        if ok:
            shape = tuple(x.data.size // known if s == -1 else s for s in shape)
    elif ok:
        ok = known == x.data.size
    if not ok:
        raise ValueError(
            f"reshape: cannot reshape a tensor of shape {x.shape} ({x.data.size} elements) into {shape}; "
            "the number of elements must stay the same (at most one -1)."
        )
    return Reshape.apply(x, shape=shape)


def permute(x: Any, axes: Sequence[int]) -> Any:
    """Reorder axes: output axis i is input axis ``axes[i]``.

    >>> permute(ones(8, 3, 5, 7), (0, 2, 3, 1)).shape  # NCHW -> NHWC
    (8, 5, 7, 3)
    """
    x = _t(x)
    axes = tuple(int(a) for a in axes)
    if sorted(a % builtins.max(x.ndim, 1) for a in axes) != list(range(x.ndim)) or len(axes) != x.ndim:
        raise ValueError(f"permute: {axes} is not a permutation of the {x.ndim} axes of a tensor of shape {x.shape}.")
    axes = tuple(a % x.ndim for a in axes)
    if axes == tuple(range(x.ndim)):
        return x
    return Permute.apply(x, axes=axes)


def transpose(x: Any, dim0: int = -2, dim1: int = -1) -> Any:
    """Swap two axes (default: the last two).

    >>> transpose(ones(2, 3, 4), 0, 2).shape
    (4, 3, 2)
    """
    x = _t(x)
    n = x.ndim
    if n < 2:
        raise ValueError(f"transpose: needs at least 2 dimensions, got shape {x.shape}.")
    d0, d1 = normalize_axis("transpose", dim0, n)[0], normalize_axis("transpose", dim1, n)[0]  # type: ignore[index]
    if d0 == d1:
        return x
    axes = list(range(n))
    axes[d0], axes[d1] = d1, d0
    return Permute.apply(x, axes=tuple(axes))  # a valid permutation by construction: no check


def flatten(x: Any, start_dim: int = 0, end_dim: int = -1) -> Any:
    """Merge dimensions start_dim..end_dim into one.

    >>> flatten(ones(10, 3, 4, 4), 1).shape  # (N, C, H, W) -> (N, C*H*W)
    (10, 48)
    """
    x = _t(x)
    if x.ndim == 0:
        return reshape(x, (1,))
    s = normalize_axis("flatten", start_dim, x.ndim)[0]  # type: ignore[index]
    e = normalize_axis("flatten", end_dim, x.ndim)[0]  # type: ignore[index]
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}.")
    return reshape(x, x.shape[:s] + (math.prod(x.shape[s : e + 1]),) + x.shape[e + 1 :])


def squeeze(x: Any, dim: Any = None, *, axis: Any = None) -> Any:
    """Drop size-1 dims (all of them, or those of ``dim``, an int or a tuple); as in PyTorch a
    named dim whose size is not 1 is left in place.

    >>> squeeze(ones(1, 3, 1)).shape
    (3,)
    >>> squeeze(ones(2, 1), 0).shape
    (2, 1)
    """
    x = _t(x)
    dim = _dim("squeeze", dim, axis)
    if dim is None:
        return reshape(x, tuple(s for s in x.shape if s != 1))
    axes = [a for a in normalize_axis("squeeze", dim, x.ndim) or () if x.ndim and x.shape[a] == 1]
    return reshape(x, tuple(s for i, s in enumerate(x.shape) if i not in axes))


def unsqueeze(x: Any, dim: int | None = None, *, axis: Any = None) -> Any:
    """Insert a size-1 dim at ``dim`` (negative counts from the end of the result).

    >>> unsqueeze(ones(3), 0).shape
    (1, 3)
    """
    x = _t(x)
    axis = _dim("unsqueeze", dim, axis)
    if axis is None:
        raise TypeError("unsqueeze: give the position of the new dimension, e.g. unsqueeze(x, 0).")
    n = x.ndim + 1
    if not -n <= axis < n:
        raise ValueError(f"unsqueeze: axis {axis} out of range for a result with {n} dimensions.")
    a = axis % n
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


def broadcast_to(x: Any, shape: Sequence[int]) -> Any:
    """Broadcast to ``shape`` (numpy rules); the gradient is summed back to the input shape.

    >>> broadcast_to(ones(3, 1), (2, 3, 4)).shape
    (2, 3, 4)
    """
    x = _t(x)
    shape = tuple(int(s) for s in shape)
    if shape == x.shape:
        return x
    try:
        if np.broadcast_shapes(x.shape, shape) != shape:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"broadcast_to: cannot broadcast shape {x.shape} to {shape}: aligned from the right, each "
            "dimension must equal the target's or be 1."
        ) from None
    return Expand.apply(x, shape=shape)


expand = broadcast_to


def getitem(x: Any, index: Any) -> Any:
    """``x[index]``: ints, slices, None, Ellipsis, integer arrays (repeated indices accumulate
    in the gradient) and boolean masks; the result shape follows numpy.

    >>> getitem(arange(6.0).reshape(2, 3), (slice(None), 1)).tolist()
    [1.0, 4.0]
    """
    x = _t(x)
    parts = index if isinstance(index, tuple) else (index,)
    if builtins.any(_is_batched(p) for p in parts):  # inside vmap: a per-example index tensor
        return _getitem_batched_index(x, parts)
    index = normalize_index(index)
    try:
        x.data[index]
    except IndexError as e:
        raise IndexError(f"getitem: index {index!r} is invalid for a tensor of shape {x.shape}: {e}") from None
    return GetItem.apply(x, index=index)


def _getitem_batched_index(x: Any, parts: tuple) -> Any:
    """``x[..., i, ...]`` with one per-example integer index tensor ``i`` among slices: the slices,
    then an index_select along i's dim with i flattened, reshaped to numpy's result shape."""
    dots = [d for d, p in enumerate(parts) if p is Ellipsis]  # identity: == on a batched tensor is elementwise
    if len(dots) == 1:
        at = dots[0]
        parts = parts[:at] + (slice(None),) * (x.ndim - len(parts) + 1) + parts[at + 1 :]
    tensors = [d for d, p in enumerate(parts) if isinstance(p, _graph.Tensor)]
    if len(tensors) != 1 or not builtins.all(isinstance(p, slice) for d, p in enumerate(parts) if d != tensors[0]) or len(parts) > x.ndim:
        raise NotImplementedError(
            f"getitem: inside vmap, indexing with a per-example (batched) tensor is supported as one integer index tensor "
            f"among slices (x[i], x[:, i]); got index {parts!r} for per-example shape {x.shape}. Use gather or "
            "index_select for other patterns."
        )
    (d,) = tensors
    i = parts[d]
    if i.dtype == bool:
        raise NotImplementedError(
            "getitem: inside vmap, a per-example boolean mask would give each example a different result shape; use "
            "where(mask, x, 0) or masked_fill instead."
        )
    if i.dtype.kind not in "iu":
        raise TypeError(f"getitem: index tensors must be integer or bool, got dtype {i.dtype}.")
    if builtins.any(p != slice(None) for p in parts[:d] + parts[d + 1 :]):
        x = getitem(x, parts[:d] + (slice(None),) + parts[d + 1 :])
    out = index_select(x, d, i.reshape((-1,)))
    return out.reshape(tuple(x.shape[:d]) + tuple(i.shape) + tuple(x.shape[d + 1 :]))


def cat(tensors: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Any:
    """Concatenate along an existing dim; other dimensions must match.

    >>> cat([ones(2, 3), ones(2, 1)], dim=1).shape
    (2, 4)
    """
    axis = dim if axis is None else axis
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ValueError("cat: needs at least one tensor.")
    nd = ts[0].ndim
    a = normalize_axis("cat", axis, nd)[0]  # type: ignore[index]
    for i, t in enumerate(ts):
        if t.ndim != nd or t.shape[:a] + t.shape[a + 1 :] != ts[0].shape[:a] + ts[0].shape[a + 1 :]:
            raise ValueError(
                f"cat: tensor {i} has shape {t.shape} but tensor 0 has shape {ts[0].shape}; all shapes "
                f"must match except along axis {a}."
            )
    return Concat.apply(*ts, axis=a)


concatenate = concat = cat


def stack(tensors: Sequence[Any], dim: int = 0, *, axis: int | None = None) -> Any:
    """Stack equal-shaped tensors along a new dim.

    >>> stack([ones(3), zeros(3)]).shape
    (2, 3)
    """
    ts = [_t(t) for t in tensors]
    if not ts:
        raise ValueError("stack: needs at least one tensor.")
    for i, t in enumerate(ts):
        if t.shape != ts[0].shape:
            raise ValueError(f"stack: tensor {i} has shape {t.shape} but tensor 0 has shape {ts[0].shape}; they must match.")
    axis = dim if axis is None else axis
    return cat([unsqueeze(t, axis) for t in ts], axis)


def pad(x: Any, pad_width: Any, value: float = 0.0) -> Any:
    """Constant padding with numpy's ``pad_width``: an int, a (before, after) pair, or one pair per
    axis.

    >>> pad(ones(1, 2, 2), ((0, 0), (1, 1), (1, 1))).shape
    (1, 4, 4)
    """
    x = _t(x)
    pw = np.broadcast_to(np.asarray(pad_width, dtype=int), (x.ndim, 2)) if np.ndim(pad_width) < 2 else np.asarray(pad_width, dtype=int)
    if pw.shape != (x.ndim, 2) or (pw < 0).any():
        raise ValueError(f"pad: pad_width {pad_width!r} must give non-negative (before, after) pairs for each of the {x.ndim} axes.")
    return Pad.apply(x, pad_width=tuple(map(tuple, pw.tolist())), value=value)


# ---- linear algebra -------------------------------------------------------------------------
def matmul(a: Any, b: Any) -> Any:
    """Matrix product with numpy's rules: 1-D operands are promoted (and the added axis removed);
    leading dimensions broadcast, e.g. (B, n, k) @ (k, m) -> (B, n, m).

    >>> matmul(ones(5, 2, 3), ones(3, 4)).shape
    (5, 2, 4)
    """
    a = _t(a, b if isinstance(b, _graph.Tensor) else None)
    b = _t(b, a)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: both operands need at least 1 dimension; use * for scalars.")
    ka = a.shape[-1]
    kb = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if ka != kb:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: inner dimensions {ka} and {kb} differ.")
    try:
        if a.ndim > 2 and b.ndim > 2:  # else one side has no batch dimensions to disagree
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(f"matmul: {a.shape} @ {b.shape}: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} do not broadcast.") from None
    return MatMul.apply(a, b)


def _const(a: Any) -> Any:
    """A graph constant (no gradient) holding the array ``a``."""
    return _graph.Tensor._make(np.asarray(a), None, 0)


def _int_index(op: str, index: Any) -> np.ndarray:
    idx = np.asarray(index.data if isinstance(index, _graph.Tensor) else index)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {idx.dtype}; convert with index.long().")
    return idx


# ---- more elementwise -----------------------------------------------------------------------
def log1p(x: Any) -> Any:
    """log(1 + x) elementwise, accurate for small x.

    >>> log1p(tensor([0.0])).item()
    0.0
    """
    return E.Log1p.apply(x)


def expm1(x: Any) -> Any:
    """exp(x) - 1 elementwise, accurate for small x.

    >>> expm1(tensor([0.0])).item()
    0.0
    """
    return E.Expm1.apply(x)


def sin(x: Any) -> Any:
    """Sine elementwise.

    >>> sin(tensor([0.0])).item()
    0.0
    """
    return E.Sin.apply(x)


def cos(x: Any) -> Any:
    """Cosine elementwise.

    >>> cos(tensor([0.0])).item()
    1.0
    """
    return E.Cos.apply(x)


def rsqrt(x: Any) -> Any:
    """1 / sqrt(x) elementwise.

    >>> rsqrt(tensor([4.0])).item()
    0.5
    """
    return E.PowScalar.apply(x, exponent=-0.5)


def sign(x: Any) -> Any:
    """-1, 0 or 1 elementwise; the gradient is 0.

    >>> sign(tensor([-2.0, 0.0, 3.0])).tolist()
    [-1.0, 0.0, 1.0]
    """
    return E.Sign.apply(x)


def clamp(x: Any, min: Any = None, max: Any = None) -> Any:  # noqa: A002
    """Clamp to [min, max]; either bound may be None, a number or a Tensor (broadcast). The
    gradient passes where min <= x <= max.

    >>> clamp(tensor([-2.0, 0.5, 2.0]), min=-1.0, max=1.0).tolist()
    [-1.0, 0.5, 1.0]
    """
    if isinstance(min, _graph.Tensor) or isinstance(max, _graph.Tensor):
        x = _t(x)
        # Tensor comparisons (not .data), so per-example bounds or inputs batch under vmap.
        if min is not None:
            x = where(lt(x, min), _t(min, x), x)
        if max is not None:
            x = where(gt(x, max), _t(max, x), x)
        return x
    return clip(x, min, max)


def _np(x: Any) -> Any:
    return x.data if isinstance(x, _graph.Tensor) else x


# ---- comparisons (not differentiable; boolean results) ----------------------------------------
def _compare(fn: Any, a: Any, b: Any) -> Any:
    if _is_batched(a) or _is_batched(b):  # inside vmap: per-example operands
        from .batching import compare

        return compare(fn, a, b)
    return _const(fn(_np(a), _np(b)))


def eq(a: Any, b: Any) -> Any:
    """a == b elementwise (broadcasting), a bool tensor.

    >>> eq(tensor([1.0, 2.0]), 2.0).tolist()
    [False, True]
    """
    return _compare(np.equal, a, b)


def ne(a: Any, b: Any) -> Any:
    """a != b elementwise, a bool tensor.

    >>> ne(tensor([1.0, 2.0]), 2.0).tolist()
    [True, False]
    """
    return _compare(np.not_equal, a, b)


def lt(a: Any, b: Any) -> Any:
    """a < b elementwise, a bool tensor.

    >>> lt(tensor([1.0, 2.0]), 2.0).tolist()
    [True, False]
    """
    return _compare(np.less, a, b)


def le(a: Any, b: Any) -> Any:
    """a <= b elementwise, a bool tensor.

    >>> le(tensor([1.0, 3.0]), 2.0).tolist()
    [True, False]
    """
    return _compare(np.less_equal, a, b)


def gt(a: Any, b: Any) -> Any:
    """a > b elementwise, a bool tensor.

    >>> gt(tensor([1.0, 3.0]), 2.0).tolist()
    [False, True]
    """
    return _compare(np.greater, a, b)


def ge(a: Any, b: Any) -> Any:
    """a >= b elementwise, a bool tensor.

    >>> ge(tensor([1.0, 2.0]), 2.0).tolist()
    [False, True]
    """
    return _compare(np.greater_equal, a, b)


def isnan(x: Any) -> Any:
    """Where x is NaN, a bool tensor of x's shape.

    >>> isnan(tensor([1.0, float("nan")])).tolist()
    [False, True]
    """
    x = _t(x)
    if _is_batched(x):  # inside vmap: elementwise over the whole batch
        from .batching import map_physical

        return map_physical(x, lambda a, k: np.isnan(a))
    return _const(np.isnan(_np(x)))


def isfinite(x: Any) -> Any:
    """Where x is neither infinite nor NaN, a bool tensor.

    >>> isfinite(tensor([1.0, float("inf")])).tolist()
    [True, False]
    """
    x = _t(x)
    if _is_batched(x):  # inside vmap: elementwise over the whole batch
        from .batching import map_physical

        return map_physical(x, lambda a, k: np.isfinite(a))
    return _const(np.isfinite(_np(x)))


def allclose(a: Any, b: Any, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> bool:
    """Whether ``|a - b| <= atol + rtol * |b|`` everywhere (a Python bool), as ``torch.allclose``.

    >>> allclose(tensor([1.0]), tensor([1.0 + 1e-7]))
    True
    """
    return builtins.bool(np.allclose(_np(_t(a)), _np(_t(b)), rtol=rtol, atol=atol, equal_nan=equal_nan))


# ---- indexing ---------------------------------------------------------------------------------
def gather(x: Any, dim: int, index: Any) -> Any:
    """``out[i][j][k] = x[index[i][j][k]][j][k]`` for dim 0 (likewise for other dims): ``index``
    has x's number of dims, its size along other dims at most x's; the result has ``index``'s
    shape. The gradient scatter-adds back (repeated indices accumulate).

    >>> gather(tensor([[1.0, 2.0], [3.0, 4.0]]), 1, tensor([[1], [0]])).tolist()
    [[2.0], [3.0]]
    """
    x = _t(x)
    if _is_batched(index):  # inside vmap, per-example indices: one gather over the batch
        d = normalize_axis("gather", dim, x.ndim)[0]  # type: ignore[index]
        _check_batched_index("gather", index, x, d)
        return _per_level(lambda dd, xv, iv: gather(xv, dd, iv), d, x, index)
    idx = _int_index("gather", index)
    d = normalize_axis("gather", dim, x.ndim)[0]  # type: ignore[index]
    ok = idx.ndim == x.ndim and builtins.all(i <= s for a, (i, s) in enumerate(zip(idx.shape, x.shape)) if a != d)
    if not ok:
        raise ValueError(
            f"gather: index of shape {idx.shape} does not fit input of shape {x.shape} along dim {dim}: it needs "
            f"{x.ndim} dims, each (except dim {d}) no larger than the input's."
        )
    if idx.size and (idx.min() < -x.shape[d] or idx.max() >= x.shape[d]):
        raise IndexError(
            f"gather: index values must lie in [0, {x.shape[d]}) for dim {d} of shape {x.shape}, got {idx.min()}..{idx.max()}."
        )
    return GetItem.apply(x, index=along(idx % builtins.max(x.shape[d], 1), d))


def scatter_add(x: Any, dim: int, index: Any, src: Any) -> Any:
    """A copy of ``x`` with ``src[i][j][k]`` added at ``[index[i][j][k]][j][k]`` (dim 0; likewise
    for others), repeated indices accumulating; the part of ``src`` outside ``index``'s shape is
    unused. Differentiable in ``x`` (identity) and ``src`` (a gather).

    >>> scatter_add(zeros(3), 0, tensor([0, 0, 2]), tensor([1.0, 2.0, 3.0])).tolist()
    [3.0, 0.0, 3.0]
    """
    x, src = _t(x), _t(src)
    if _is_batched(index):  # inside vmap, per-example indices: one scatter over the batch
        d = normalize_axis("scatter_add", dim, x.ndim)[0]  # type: ignore[index]
        _check_batched_index("scatter_add", index, src, None)
        return _per_level(lambda dd, xv, iv, sv: scatter_add(xv, dd, iv, sv), d, x, index, src)
    idx = _int_index("scatter_add", index)
    d = normalize_axis("scatter_add", dim, x.ndim)[0]  # type: ignore[index]
    fits = idx.ndim == x.ndim == src.ndim and builtins.all(
        i <= s and (a == d or i <= t) for a, (i, s, t) in enumerate(zip(idx.shape, src.shape, x.shape))
    )
    if not fits:
        raise ValueError(
            f"scatter_add: index of shape {idx.shape} must have the dims of input {x.shape} and src {src.shape}, "
            f"no larger than src's, nor than the input's except along dim {d}."
        )
    if idx.size and (idx.min() < -x.shape[d] or idx.max() >= x.shape[d]):
        raise IndexError(
            f"scatter_add: index values must lie in [0, {x.shape[d]}) for dim {d} of shape {x.shape}, got {idx.min()}..{idx.max()}."
        )
    if src.shape != idx.shape:
        src = getitem(src, tuple(slice(0, n) for n in idx.shape))
    if src.dtype != x.dtype:
        src = src.to(x.dtype)
    return x + IndexAdd.apply(src, index=along(idx % builtins.max(x.shape[d], 1), d), shape=x.shape)


def index_select(x: Any, dim: int, index: Any) -> Any:
    """The entries of ``x`` at the 1-D integer ``index`` along ``dim``; that dim's size becomes
    ``len(index)``. Differentiable (repeats accumulate).

    >>> index_select(tensor([[1.0, 2.0], [3.0, 4.0]]), 0, tensor([1, 1])).tolist()
    [[3.0, 4.0], [3.0, 4.0]]
    """
    x = _t(x)
    if _is_batched(index):  # inside vmap, a per-example index: a gather with it broadcast over the other dims
        if index.ndim > 1:
            raise ValueError(f"index_select: index must be 1-D, got shape {index.shape}.")
        _check_batched_index("index_select", index, None, None)
        d = normalize_axis("index_select", dim, x.ndim)[0]  # type: ignore[index]
        n = index.shape[0] if index.ndim else 1
        full = index.reshape(tuple(n if a == d else 1 for a in range(x.ndim)))
        return gather(x, d, full.expand(tuple(n if a == d else s for a, s in enumerate(x.shape))))
    idx = _int_index("index_select", index)
    if idx.ndim > 1:
        raise ValueError(f"index_select: index must be 1-D, got shape {idx.shape}.")
    d = normalize_axis("index_select", dim, x.ndim)[0]  # type: ignore[index]
    return getitem(x, (slice(None),) * d + (idx.reshape(-1),))


def masked_fill(x: Any, mask: Any, value: Any) -> Any:
    """``x`` with ``value`` wherever the bool ``mask`` (broadcast to x's shape) is True; the
    gradient reaches ``x`` where the mask is False.

    >>> masked_fill(tensor([1.0, 2.0]), tensor([True, False]), 0.0).tolist()
    [0.0, 2.0]
    """
    x = _t(x)
    if getattr(mask, "is_batched", False):  # inside vmap: a per-example mask
        if mask.dtype != bool:
            raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {mask.dtype}; compare first, e.g. x > 0.")
        return where(mask, value, x)
    m = np.asarray(_np(mask))
    if m.dtype != bool:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {m.dtype}; compare first, e.g. x > 0.")
    if np.broadcast_shapes(m.shape, x.shape) != x.shape:
        raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast to the input's shape {x.shape}.")
    v = value.item() if isinstance(value, _graph.Tensor) and value.ndim == 0 and not value.requires_grad else value
    return where(np.broadcast_to(m, x.shape), v, x)


def sort(x: Any, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
    """Sort along ``dim``: a ``(values, indices)`` named tuple; ties keep their order. The values
    are gathered from ``x``, so the gradient flows back to where each value came from.

    >>> sort(tensor([3.0, 1.0, 2.0])).indices.tolist()
    [1, 2, 0]
    """
    x = _t(x)
    d = normalize_axis("sort", dim, x.ndim)[0] if x.ndim else 0  # type: ignore[index]
    if _is_batched(x):  # inside vmap: argsort of the whole batch along the shifted dim, then a batched gather
        from .batching import map_physical

        bidx = map_physical(x, lambda a, k: _argsort(a.reshape(a.shape[:k] + (1,)), k, descending).reshape(a.shape)
                            if x.ndim == 0 else _argsort(a, d + k, descending))
        return ValuesIndices(gather(x, d, bidx) if x.ndim else x, bidx)
    a = x.data.reshape(1) if x.ndim == 0 else x.data
    idx = _argsort(a, d, descending).reshape(x.shape)
    return ValuesIndices(gather(x, d, idx) if x.ndim else x, _const(idx))


def _argsort(a: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable int64 argsort along ``axis``; descending keeps ties in their order for numbers."""
    idx = np.argsort(-a if descending and a.dtype.kind in "fi" else a, axis=axis, kind="stable")
    if descending and a.dtype.kind not in "fi":
        idx = np.flip(idx, axis=axis)
    return idx.astype(np.int64)


def _is_batched(x: Any) -> bool:
    return builtins.bool(getattr(x, "is_batched", False))


def _check_batched_index(op: str, index: Any, other: Any, d: Any) -> None:
    """The checks on a per-example (batched) index that need no values: its dtype and, for
    gather, its per-example shape against the input's; values are checked over the whole batch."""
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer tensor, got dtype {index.dtype}; convert with index.long().")
    too_big = other is not None and builtins.any(i > s for a, (i, s) in enumerate(zip(index.shape, other.shape)) if a != d)
    if d is not None and (index.ndim != other.ndim or too_big):
        raise ValueError(
            f"{op}: index of shape {index.shape} does not fit input of shape {other.shape} along dim {d}: it needs "
            f"{other.ndim} dims, each (except dim {d}) no larger than the input's."
        )


def _per_level(fn: Any, d: int, *ts: Any) -> Any:
    """An indexing op ``fn(dim, *ts)`` where some of ``ts`` are batched: at the highest vmap level
    among them, those of it unwrapped (batch dim in front) and the others broadcast to it, then
    ``fn`` once along ``dim + 1``; lower levels are handled the same way by the call inside."""
    from .batching import is_batched, wrap
    from .vmap_rules import expand_batch

    level = builtins.max(t.level for t in ts if is_batched(t))
    size = next(t.batch_size for t in ts if is_batched(t) and t.level == level)
    vals = [t.value if is_batched(t) and t.level == level else expand_batch(_t(t), size) for t in ts]
    return wrap(fn(d + 1, *vals), level)


def topk(x: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:  # noqa: A002
    """The ``k`` largest (or smallest) entries along ``dim`` as a ``(values, indices)`` named
    tuple, in sorted order; differentiable through the values.

    >>> topk(tensor([1.0, 3.0, 2.0]), 2).values.tolist()
    [3.0, 2.0]
    """
    x = _t(x)
    d = normalize_axis("topk", dim, x.ndim)[0] if x.ndim else 0  # type: ignore[index]
    n = x.shape[d] if x.ndim else 1
    if not 0 <= k <= n:
        raise ValueError(f"topk: k={k} is out of range for dim {dim} of size {n} (shape {x.shape}).")
    _, idx = sort(x, d, descending=largest)
    first_k = (slice(None),) * d + (slice(0, k),)
    idx = getitem(idx, first_k) if _is_batched(idx) else _const(idx.data[first_k])
    return ValuesIndices(gather(x, d, idx) if x.ndim else x, idx)


# ---- more shapes ----------------------------------------------------------------------------------
def split(x: Any, split_size_or_sections: Any, dim: int = 0) -> tuple:
    """Split along ``dim`` into pieces of ``split_size_or_sections`` (an int: equal pieces, the
    last possibly smaller) or of the listed sizes (which must add up to the dim's size).

    >>> [t.shape for t in split(ones(5, 2), 2)]
    [(2, 2), (2, 2), (1, 2)]
    """
    x = _t(x)
    d = normalize_axis("split", dim, x.ndim)[0]  # type: ignore[index]
    n = x.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        step = int(split_size_or_sections)
        if step <= 0:
            raise ValueError(f"split: split_size must be positive, got {step}.")
        sizes = [builtins.min(step, n - i) for i in range(0, n, step)] or [0]
    else:
        sizes = [int(s) for s in split_size_or_sections]
        if builtins.sum(sizes) != n or builtins.any(s < 0 for s in sizes):
            raise ValueError(f"split: sizes {sizes} must be non-negative and add up to {n}, the size of dim {d} of shape {x.shape}.")
    out, start = [], 0
    for s in sizes:
        out.append(getitem(x, (slice(None),) * d + (slice(start, start + s),)))
        start += s
    return tuple(out)


def chunk(x: Any, chunks: int, dim: int = 0) -> tuple:
    """Split along ``dim`` into ``chunks`` pieces of ``ceil(size / chunks)`` (fewer pieces when
    that already covers the dim), as ``torch.chunk``.

    >>> [t.shape for t in chunk(ones(5), 3)]
    [(2,), (2,), (1,)]
    """
    x = _t(x)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}.")
    n = x.shape[normalize_axis("chunk", dim, x.ndim)[0]]  # type: ignore[index]
    return split(x, builtins.max(-(-n // chunks), 1), dim)


def repeat(x: Any, *sizes: Any) -> Any:
    """Tile ``x``: ``sizes`` (at least x.ndim of them; extra ones add leading dims) says how often
    to repeat along each dim, as ``torch.Tensor.repeat`` (numpy's ``tile``).

    >>> repeat(tensor([1.0, 2.0]), 2, 2).tolist()
    [[1.0, 2.0, 1.0, 2.0], [1.0, 2.0, 1.0, 2.0]]
    """
    x = _t(x)
    reps = tuple(int(r) for r in (sizes[0] if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)) else sizes))
    if len(reps) < x.ndim or builtins.any(r < 0 for r in reps):
        raise ValueError(f"repeat: needs at least {x.ndim} non-negative repeat counts for shape {x.shape}, got {reps}.")
    shape = (1,) * (len(reps) - x.ndim) + x.shape
    inter = tuple(v for s in shape for v in (1, s))
    big = tuple(v for r, s in zip(reps, shape) for v in (r, s))
    return reshape(broadcast_to(reshape(x, inter), big), tuple(r * s for r, s in zip(reps, shape)))


def unflatten(x: Any, dim: int, sizes: Sequence[int]) -> Any:
    """Split dim ``dim`` into ``sizes`` (one may be -1), the inverse of :func:`flatten`.

    >>> unflatten(ones(2, 12), 1, (3, -1)).shape
    (2, 3, 4)
    """
    x = _t(x)
    d = normalize_axis("unflatten", dim, x.ndim)[0]  # type: ignore[index]
    sizes = tuple(int(s) for s in sizes)
    known = math.prod(s for s in sizes if s != -1)
    if sizes.count(-1) == 1 and known:
        sizes = tuple(x.shape[d] // known if s == -1 else s for s in sizes)
    if math.prod(sizes) != x.shape[d]:
        raise ValueError(f"unflatten: sizes {sizes} do not multiply to {x.shape[d]}, the size of dim {d} of shape {x.shape}.")
    return reshape(x, x.shape[:d] + sizes + x.shape[d + 1 :])


# ---- einsum -----------------------------------------------------------------------------------------
def einsum(equation: str, *operands: Any) -> Any:
    """Einstein summation, as ``torch.einsum``: e.g. ``'ij,jk->ik'`` (matmul), ``'bij,bjk->bik'``
    (batched), ``'bi,bi->b'`` (row dots), ``'nchw->nhwc'`` (permute), ``'ii->'`` (trace), or an
    implicit output (``'ij,jk'``: the labels used once, sorted). Composed of diagonal picks,
    sums, permutes, reshapes and matmuls, so it is differentiable; operands are combined left to
    right. Ellipsis (``...``) is not supported.

    >>> einsum('ij,jk->ik', ones(2, 3), ones(3, 4)).shape
    (2, 4)
    """
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    eq = equation.replace(" ", "")
    if "." in eq:
        raise NotImplementedError(f"einsum: '...' (ellipsis) is not supported in {equation!r}; name every dimension.")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: {equation!r} names {len(terms)} operand(s), got {len(operands)}.")
    if not arrow:
        counts = {c: lhs.count(c) for c in lhs if c != ","}
        out = "".join(sorted(c for c, n in counts.items() if n == 1))
    xs = [_t(o) for o in operands]
    sizes: dict = {}
    for term, x in zip(terms, xs):
        if len(term) != x.ndim or not term.isalpha():
            raise ValueError(f"einsum: term {term!r} of {equation!r} must give one letter per dim of an operand of shape {x.shape}.")
        for c, n in zip(term, x.shape):
            if sizes.setdefault(c, n) != n:
                raise ValueError(f"einsum: label {c!r} has size {sizes[c]} and {n} in {equation!r}.")
    if builtins.any(c not in sizes for c in out) or len(set(out)) != len(out):
        raise ValueError(f"einsum: output {out!r} of {equation!r} must use each input label at most once.")
    x, term = _einsum_single(xs[0], terms[0], _needed(terms[1:], out))
    for i in range(1, len(xs)):
        y, yterm = _einsum_single(xs[i], terms[i], _needed(terms[i + 1 :], out) | set(term))
        x, term = _einsum_pair(x, term, y, yterm, _needed(terms[i + 1 :], out))
    return _einsum_single(x, term, set(out), order=out)[0]


def _needed(later: Sequence[str], out: str) -> set:
    return set("".join(later)) | set(out)


def _einsum_single(x: Any, term: str, keep: set, order: str | None = None) -> tuple:
    """Take repeated labels' diagonals, sum out labels not in ``keep``, permute to ``order``."""
    while len(set(term)) != len(term):
        c = next(c for c in term if term.count(c) > 1)
        i, j = term.index(c), term.index(c, term.index(c) + 1)
        ar = np.arange(x.shape[i])
        index: list = [slice(None)] * x.ndim
        index[i], index[j] = ar, ar
        x = getitem(x, tuple(index))
        # numpy puts the combined axis first when the two advanced indices are not adjacent
        rest = term[:i] + term[i + 1 : j] + term[j + 1 :]
        term = c + rest if j != i + 1 else term[:i] + c + term[j + 1 :]
    drop = tuple(k for k, c in enumerate(term) if c not in keep)
    if drop:
        x = sum(x, drop)
        term = "".join(c for c in term if c in keep)
    if order is not None and term != order:
        x = permute(x, [term.index(c) for c in order])
        term = order
    return x, term


def _einsum_pair(a: Any, ta: str, b: Any, tb: str, keep: set) -> tuple:
    """Contract two operands with one batched matmul: (batch, left, k) @ (batch, k, right)."""
    batch = [c for c in ta if c in tb and c in keep]
    con = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    size = dict(zip(ta, a.shape)) | dict(zip(tb, b.shape))
    nb, nl, nk, nr = (math.prod(size[c] for c in g) for g in (batch, left, con, right))
    a3 = reshape(permute(a, [ta.index(c) for c in batch + left + con]), (nb, nl, nk))
    b3 = reshape(permute(b, [tb.index(c) for c in batch + con + right]), (nb, nk, nr))
    y = reshape(matmul(a3, b3), tuple(size[c] for c in batch + left + right))
    return y, "".join(batch + left + right)
