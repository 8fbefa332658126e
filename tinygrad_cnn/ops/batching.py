"""The machinery under :func:`tinygrad_cnn.func.vmap`: batched Tensors and the dispatch of ops
to their batching rules.

A :class:`BatchedTensor` is what a function under ``vmap`` sees: a Tensor of the *per-example*
(logical) shape whose ``value`` is an ordinary Tensor holding the whole batch, batch dimension in
front. Each ``vmap`` call has a level (increasing, so an inner vmap's is larger); a nested vmap
gives a BatchedTensor whose value is itself batched at the outer level.

``Function.apply`` hands an op with a batched input to :func:`batched_apply`: it takes the
highest level among the inputs, unwraps those inputs, calls the op's ``vmap`` rule (or, without
one, loops over the batch with a one-time warning) and wraps the result. Rules compute with
ops on the unwrapped Tensors, so the batched computation is recorded in the ordinary graph and
gradients flow through it (``grad`` of a vmapped function), and ``grad`` inside ``vmap`` gives
per-example gradients (see :mod:`tinygrad_cnn.func`).

The ``data`` of a BatchedTensor is a :class:`Placeholder`: it knows the logical shape and dtype
but refuses to give values, so code that reads values (``.item()``, ``if x > 0``, numpy on
``.data``) fails with an error instead of silently using one example.
"""
from __future__ import annotations

import itertools
import math
import threading
import warnings
import weakref
from typing import Any

import numpy as np

from ..autograd import function as _function
from .elementwise import Where
from .movement import Concat
from .vmap_rules import BatchInfo, pad_batched, reshape

# tensor.py imports this module once it has bound the Tensor class (see docs/architecture.md);
# BatchedTensor subclasses it.
Tensor: Any = _function.Tensor

__all__ = ["BatchedTensor", "Placeholder", "batch_levels", "batched_apply", "is_batched", "physical"]

_levels = itertools.count(1)
_local = threading.local()
_warned: weakref.WeakSet = weakref.WeakSet()  # ops (classes, not names: two may share one) warned about looping


class _Level:
    """One running vmap call: its level, batch size, ``randomness``, the vmapped function's name
    (for error messages) and, for a chunked call with ``randomness='same'``, the states of the
    random generators before their first draw (so every chunk draws the same values)."""

    __slots__ = ("level", "size", "randomness", "name", "rng_states")

    def __init__(self, level: int, size: int, randomness: str, name: str | None, rng_states: dict | None) -> None:
        self.level, self.size, self.randomness, self.name, self.rng_states = level, size, randomness, name, rng_states


def _stack() -> list[_Level]:
    """The running vmap calls on this thread, outermost first."""
    s = getattr(_local, "stack", None)
    if s is None:
        s = _local.stack = []
    return s


def batch_levels() -> list[tuple[int, int, str]]:
    """The vmap calls running on this thread, outermost first, as (level, batch size, randomness)."""
    return [(e.level, e.size, e.randomness) for e in _stack()]


def new_level(size: int, randomness: str, name: str | None = None, rng_states: dict | None = None) -> int:
    """Enter a vmap call over ``size`` examples of function ``name``; ``rng_states`` (a dict, for
    a chunk of a chunked ``randomness='same'`` call) collects the generators its random ops use."""
    level = next(_levels)
    _stack().append(_Level(level, size, randomness, name, rng_states))
    _function.vmap_enter(1)
    return level


def end_level(level: int) -> None:
    s = _stack()
    if s and s[-1].level == level:
        s.pop()
    _function.vmap_enter(-1)


def restore_rng(rng_states: dict) -> None:
    """Put the generators recorded by :func:`random_values` back in their states before the first
    chunk's draws, so the next chunk of a ``randomness='same'`` call draws the same values."""
    for rng, state in rng_states.values():
        rng.bit_generator.state = state


def vmap_name(level: int | None = None) -> str:
    """``vmap(f)`` for the running vmap call of ``level`` (default: the innermost), naming the
    vmapped function in error messages; ``vmap`` when it has no name."""
    for e in reversed(_stack()):
        if level is None or e.level == level:
            return f"vmap({e.name})" if e.name else "vmap"
    return "vmap"


def _values_error(what: str, shape: tuple, level: int | None = None) -> RuntimeError:
    return RuntimeError(
        f"{vmap_name(level)}: {what} of a batched tensor (per-example shape {shape}). Inside vmap each example has its own "
        "values, so they cannot be read as one Python value or array: data-dependent Python control flow (if x > 0, .item(), "
        "float(x), numpy on .data) is not supported. Write it with tensor ops (e.g. where(cond, a, b) for a branch), or "
        "move it out of the vmapped function."
    )


class Placeholder:
    """The ``data`` of a BatchedTensor: shape and dtype of one example, and no values."""

    __slots__ = ("shape", "dtype")

    def __init__(self, shape: tuple, dtype: Any) -> None:
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def itemsize(self) -> int:
        return self.dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def base(self) -> None:
        return None

    def _shape_of(self, fn: Any) -> Placeholder:
        a = fn(np.broadcast_to(np.zeros((), self.dtype), self.shape))
        return Placeholder(a.shape, a.dtype)

    def __getitem__(self, index: Any) -> Placeholder:
        if isinstance(index, Placeholder) or (isinstance(index, tuple) and any(isinstance(i, Placeholder) for i in index)):
            raise _values_error("indexing with the values", self.shape)
        return self._shape_of(lambda a: a[index])

    def reshape(self, *shape: Any) -> Placeholder:
        return self._shape_of(lambda a: a.reshape(*shape))

    def astype(self, dtype: Any, copy: bool = True) -> Placeholder:
        return Placeholder(self.shape, dtype)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _values_error("converting to a numpy array the values", self.shape)

    def __getattr__(self, name: str) -> Any:
        raise _values_error(f"reading .data.{name}", self.shape)

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise _values_error("reading the values", self.shape)

    __bool__ = __float__ = __int__ = __index__ = __iter__ = __len__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __rtruediv__ = __neg__ = _refuse
    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Placeholder(shape={self.shape}, dtype={self.dtype})"


class BatchedTensor(Tensor):
    """A Tensor under ``vmap``: ``shape`` is one example's, ``value`` the whole batch (B in front),
    ``level`` the vmap call it belongs to."""

    __slots__ = ("value", "level")
    is_batched = True

    @property
    def requires_grad(self) -> bool:
        return self.value.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        raise RuntimeError("vmap: requires_grad cannot be set on a batched tensor; use grad/vjp inside vmap instead.")

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        raise RuntimeError("vmap: requires_grad_ on a batched tensor is not supported; use grad/vjp inside vmap instead.")

    @property
    def batch_size(self) -> int:
        return self.value.shape[0]

    def detach(self) -> Tensor:
        return wrap(self.value.detach(), self.level)

    def item(self) -> Any:
        raise _values_error(".item()", self.shape, self.level)

    def tolist(self) -> Any:
        raise _values_error(".tolist()", self.shape, self.level)

    def numpy(self) -> np.ndarray:
        raise _values_error(".numpy()", self.shape, self.level)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        raise _values_error("converting to a numpy array", self.shape, self.level)

    def __bool__(self) -> bool:
        raise _values_error("bool() (a Python if/while on a tensor)", self.shape, self.level)

    def __float__(self) -> float:
        raise _values_error("float()", self.shape, self.level)

    def __int__(self) -> int:
        raise _values_error("int()", self.shape, self.level)

    def __repr__(self) -> str:
        return f"BatchedTensor(level={self.level}, batch_size={self.batch_size}, shape={self.shape}, dtype={self.dtype})"

    def _inplace(self, op: str, fn: Any = None) -> Tensor:
        raise RuntimeError(
            f"{vmap_name(self.level)}: {op}: in-place updates of a batched tensor (per-example shape {self.shape}) are not "
            "supported inside vmap; use the out-of-place op (e.g. y = x * 2 instead of x.mul_(2))."
        )

    def _binary_(self, op: str, ufunc: Any, other: Any) -> Tensor:
        return self._inplace(op)

    def add_(self, other: Any, alpha: float = 1.0) -> Tensor:
        return self._inplace("add_")

    def sub_(self, other: Any, alpha: float = 1.0) -> Tensor:
        return self._inplace("sub_")

    def copy_(self, src: Any) -> Tensor:
        return self._inplace("copy_")

    def masked_fill_(self, mask: Any, value: Any) -> Tensor:
        return self._inplace("masked_fill_")

    def __setitem__(self, index: Any, value: Any) -> None:
        self._inplace("setitem")

    def _cmp(self, o: Any, fn: Any) -> Tensor:
        return compare(fn, self, o)

    def __eq__(self, o: Any) -> Tensor:
        return compare(np.equal, self, o)

    def __ne__(self, o: Any) -> Tensor:
        return compare(np.not_equal, self, o)

    __hash__ = object.__hash__


_new = object.__new__


def wrap(value: Tensor, level: int) -> BatchedTensor:
    """``value`` (B in front) as a BatchedTensor of ``level``."""
    t = object.__new__(BatchedTensor)
    t.value = value
    t.level = level
    d = _new(Placeholder)  # Placeholder(shape, dtype) without the conversions: this runs for every batched op
    d.shape = value.shape[1:]
    d.dtype = value.dtype
    t.data = d
    t.grad_fn = None
    t._output_nr = 0
    t._requires_grad = False
    return t


def is_batched(x: Any) -> bool:
    """Whether ``x`` is a BatchedTensor (an argument inside ``vmap``)."""
    return type(x) is BatchedTensor


def physical(x: Any) -> tuple[Any, list[int]]:
    """The ordinary Tensor under a (possibly nested) BatchedTensor and its levels, outermost
    first: its leading dims are the batch dims of those levels in that order."""
    levels = []
    while is_batched(x):
        levels.append(x.level)
        x = x.value
    return x, levels[::-1]


def rewrap(p: Any, levels: list[int]) -> Any:
    """Inverse of :func:`physical`: wrap ``p`` (batch dims of ``levels`` in front, outermost
    first) as nested BatchedTensors."""
    for lv in levels:
        p = wrap(p, lv)
    return p


def _unwrap_args(inputs: tuple) -> tuple[int, list, tuple, int]:
    level = 0
    for x in inputs:
        if type(x) is BatchedTensor and x.level > level:
            level = x.level
    args, flags, size = [], [], 0
    for x in inputs:
        if type(x) is BatchedTensor and x.level == level:
            v = x.value
            args.append(v)
            flags.append(True)
            size = v.shape[0]
        else:
            args.append(x)
            flags.append(False)
    return level, args, tuple(flags), size


def random_values(op: str, rng: Any, draw: Any, shape: tuple) -> Any:
    """Random values of per-example ``shape`` for op ``op`` inside vmap, as the running vmap
    calls' ``randomness`` say (as torch.func): a batch dim for each call with ``'different'``
    (independent draws per example), none for ``'same'`` (one draw shared by its examples), and
    an error if any call has ``'error'``. ``draw(shape)`` draws from generator ``rng``."""
    shape = tuple(shape)
    stack = _stack()
    for e in stack:
        if e.randomness == "error":
            raise RuntimeError(
                f"{vmap_name(e.level)}: {op} draws random numbers, and this vmap has randomness='error' (the default). Pass "
                "randomness='different' (independent draws per example) or 'same' (one draw shared by all examples) to it, "
                "or to the function that calls it (e.g. jacfwd or per_sample_grads)."
            )
        if e.rng_states is not None:
            e.rng_states.setdefault(id(rng), (rng, rng.bit_generator.state))
    diff = [e for e in stack if e.randomness == "different"]
    value = Tensor._make(np.asarray(draw(tuple(e.size for e in diff) + shape)), None, 0)
    return rewrap(value, [e.level for e in diff])


def batched_apply(cls: type, inputs: tuple, params: dict) -> Any:
    """Apply op ``cls`` to inputs of which at least one is batched, through its ``vmap`` rule."""
    level, args, flags, size = _unwrap_args(inputs)
    info = BatchInfo(flags, size, cls, level)
    rule = getattr(cls, "vmap", None)
    out = NotImplemented if rule is None else rule(info, *args, **params)
    if out is NotImplemented:
        out = _loop(info, args, params)
    if isinstance(out, tuple):
        return tuple(wrap(o, level) for o in out)
    return wrap(out, level)


def _loop(info: BatchInfo, args: list, params: dict) -> Any:
    """Without a rule: the op once per example, results stacked (correct, but slow)."""
    name = info.op.__name__
    if info.op not in _warned:
        _warned.add(info.op)
        warnings.warn(
            f"vmap: op {name} has no batching rule (a 'vmap' static method), so vmap runs it once per example in a Python "
            "loop. Declare vmap(info, *args, **params) on the Function to batch it.",
            RuntimeWarning,
            stacklevel=4,
        )
    outs = [info.op.apply(*[a[i] if b else a for a, b in zip(args, info.batched)], **params) for i in range(info.batch_size)]
    if isinstance(outs[0], tuple):
        return tuple(_stack_examples(name, [o[k] for o in outs]) for k in range(len(outs[0])))
    return _stack_examples(name, outs)


def _stack_examples(name: str, outs: list) -> Any:
    """The per-example results of the loop as one Tensor, batch in front."""
    for i, o in enumerate(outs):
        if o.shape != outs[0].shape:
            raise ValueError(
                f"vmap: op {name} (run once per example, having no batching rule) gave a result of shape {o.shape} for "
                f"example {i} but {outs[0].shape} for example 0; vmap needs the same shape for every example."
            )
    return Concat.apply(*[reshape(o, (1,) + tuple(o.shape)) for o in outs], axis=0)


def compare(fn: Any, a: Any, b: Any) -> Tensor:
    """A non-differentiable numpy ufunc of two operands (a comparison, mask logic) where either
    may be batched, at any nested levels: both as arrays with a batch dim for every level of
    either (size 1 where an operand is not batched at it) and their per-example dims right-aligned,
    so one call covers all examples; the result is batched at all those levels."""
    parts = []
    for x in (a, b):
        p, lv = physical(x) if is_batched(x) else (x, [])
        arr = np.asarray(p.data if isinstance(p, Tensor) else p)
        parts.append((arr, lv))
    levels = sorted({lv for _, lvs in parts for lv in lvs})
    sizes = {lv: arr.shape[i] for arr, lvs in parts for i, lv in enumerate(lvs)}
    r = max(arr.ndim - len(lvs) for arr, lvs in parts)
    raw = []
    for arr, lvs in parts:
        logical = arr.shape[len(lvs):]
        lead = tuple(sizes[lv] if lv in lvs else 1 for lv in levels)
        raw.append(arr.reshape(lead + (1,) * (r - len(logical)) + logical))
    return rewrap(Tensor._make(np.asarray(fn(raw[0], raw[1])), None, 0), levels)


def map_physical(x: Any, fn: Any) -> BatchedTensor:
    """A non-differentiable numpy computation on every example of ``x`` at once: ``fn(array, k)``
    gets the whole batch with its ``k`` batch dims in front and returns them in front too."""
    p, levels = physical(x)
    return rewrap(Tensor._make(np.asarray(fn(p.data, len(levels))), None, 0), levels)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """``where`` where the condition or an operand is batched: one vmap level at a time (the
    highest first), the inputs of that level unwrapped and padded to line up, the rest handed to
    the next level down, so condition and operands may be batched at different nested levels."""
    xs = (cond, a, b)
    level = max(x.level for x in xs if is_batched(x))
    vals, flags = [], []
    for x in xs:
        f = is_batched(x) and x.level == level
        vals.append(x.value if f else x)
        flags.append(f)
    r = max(int(np.ndim(v.data if isinstance(v, Tensor) else v)) - f for v, f in zip(vals, flags))
    vals = [pad_batched(v, r) if f else v for v, f in zip(vals, flags)]
    c = vals[0]
    if flags[0] and not is_batched(c):
        c = c.data  # a plain boolean array: Where's cond parameter
        if not (flags[1] or flags[2]) and not any(isinstance(v, Tensor) for v in vals[1:]):
            # batched through the condition alone, both operands numbers: Where needs a Tensor
            vals[1] = Tensor._make(np.asarray(vals[1], dtype=np.result_type(vals[1], np.float32)), None, 0)
    # A condition still batched (at a lower level) carries this level's B in its per-example
    # shape, so the recursive call broadcasts the result to it.
    if is_batched(c):
        return wrap(where(c, vals[1], vals[2]), level)
    return wrap(Where.apply(vals[1], vals[2], cond=np.asarray(c.data if isinstance(c, Tensor) else c)), level)


_function.batched_apply = batched_apply
