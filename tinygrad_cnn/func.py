"""Function transforms in the style of JAX and ``torch.func``: ``grad``, ``value_and_grad``,
``vjp``, ``jvp``, ``jacobian`` (``jacrev``), ``jacfwd``, ``hessian``, ``vmap`` (vectorizing map,
see :mod:`tinygrad_cnn.ops.batching`), and ``functional_call`` for Modules.

A transform takes a Python function of Tensors (or pytrees of them, see
:mod:`tinygrad_cnn.pytree`) and returns a new function::

    def loss(params, x, y):
        return F.cross_entropy(F.linear(x, params["w"], params["b"]), y)

    grads = grad(loss)(params, x, y)           # same structure as params
    (l, grads) = value_and_grad(loss)(params, x, y)
    per_example = vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)   # a batch dim in front of each

How it works: the leaves of the differentiated arguments are wrapped in fresh Tensors that
require grad, ``f`` runs on them, and :func:`tinygrad_cnn.autograd.grad` computes the gradients.
So transforms are *pure*: they never read or write any input's ``.grad`` and leave no global
state behind. They *nest*: when the result depends on Tensors from outside the call that
require grad (an enclosing transform's inputs, or your own leaves), the backward pass is
recorded (``create_graph=True``) so the result can be differentiated again; otherwise it is not,
and the result is detached.

Result types follow the differentiated inputs: a Tensor leaf gets a Tensor gradient, a numpy
array an array, a Python float a float (computed in float64). Inside another transform, where a
result must stay differentiable, every result leaf is a Tensor. Only floating-point leaves can
be differentiated; keyword arguments never are.
"""
from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import numpy as np

from .autograd.engine import grad as _autograd_grad
from .autograd.function import Function, Node
from .autograd.grad_mode import enable_grad, state
from .ops import batching as B
from .pytree import PyTreeDef, describe, keystr, tree_flatten, tree_flatten_with_path, tree_map
from .tensor import Tensor, as_tensor

__all__ = [
    "functional_call", "get_params", "grad", "hessian", "jacfwd", "jacobian", "jacrev", "jvp", "match_in_dims", "value_and_grad", "vjp",
    "vmap",
]

# How an input leaf was given, so its gradient is returned the same way.
_TENSOR, _ARRAY, _NPSCALAR, _FLOAT = range(4)


class _Input(Function):
    """Identity that gives a transform its own handle on an input that already requires grad:
    the inner gradient is taken with respect to this node, and an outer transform still sees
    through it to the original Tensor."""

    @staticmethod
    def forward(ctx: Node, x: np.ndarray) -> np.ndarray:
        return x.view()

    @staticmethod
    def vmap(info: Any, x: Tensor) -> Tensor:
        return _Input.apply(x)  # the identity on the whole batch

    @staticmethod
    def backward(ctx: Node, g: Tensor) -> Tensor:
        return g


class _Leaf(Tensor):
    """The fresh Tensors a transform differentiates with respect to. A distinct class so a walk of
    the graph can tell them from the user's Tensors: once their transform has finished, nobody
    differentiates with respect to them again, so reaching one needs no recorded backward."""

    __slots__ = ()


# The leaves of the transforms whose ``f`` is running on this thread, innermost last. Reaching
# one of these from an inner transform means the enclosing transform will differentiate the
# result, so the inner backward must be recorded. Empty whenever no transform is running.
_ACTIVE = threading.local()


def _active() -> list[set[int]]:
    stack = getattr(_ACTIVE, "stack", None)
    if stack is None:
        stack = _ACTIVE.stack = []
    return stack


# ---- argument handling -------------------------------------------------------------------
def _normalize_argnums(argnums: Any, op: str) -> tuple[tuple[int, ...], bool]:
    if isinstance(argnums, (int, np.integer)) and not isinstance(argnums, bool):
        return (int(argnums),), True
    ints = isinstance(argnums, (tuple, list)) and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in argnums)
    if ints and argnums:
        nums = tuple(int(a) for a in argnums)
        if len(set(nums)) != len(nums):
            raise ValueError(f"{op}: argnums={argnums!r} lists an argument twice; list each differentiated argument once.")
        return nums, False
    raise TypeError(f"{op}: argnums must be an int or a non-empty tuple of ints (positions of f's arguments), got {argnums!r}.")


def _resolve_argnums(nums: tuple[int, ...], nargs: int, op: str, argnums: Any) -> tuple[int, ...]:
    out = []
    for a in nums:
        if not -nargs <= a < nargs:
            raise ValueError(
                f"{op}: argnums={argnums!r} refers to positional argument {a}, but f was called with {nargs} positional "
                f"argument(s). Pass the differentiated arguments positionally (keyword arguments are never differentiated) "
                f"or change argnums."
            )
        out.append(a % nargs)
    if len(set(out)) != len(out):
        raise ValueError(f"{op}: argnums={argnums!r} names the same argument twice for a call with {nargs} argument(s).")
    return tuple(out)


def _arg_name(f: Callable, i: int) -> str:
    try:
        params = list(inspect.signature(f).parameters.values())
    except (TypeError, ValueError):
        return f"args[{i}]"
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return positional[i].name if i < len(positional) else f"args[{i}]"


def _leaf_path(tree: Any, j: int, root: str) -> str:
    pairs, _ = tree_flatten_with_path(tree)
    return keystr(pairs[j][0], root)


def _not_float(op: str, where: str, leaf: Any) -> TypeError:
    return TypeError(
        f"{op}: cannot differentiate with respect to {where}: it is {describe(leaf)}, not a floating-point value. "
        "Convert it (e.g. np.asarray(x, dtype=np.float64) or tensor.double()), or keep it out of the differentiated "
        "arguments (argnums)."
    )


class _Args:
    """The differentiated arguments of one call: their structures, how each leaf was given, and
    the fresh Tensors standing in for them."""

    def __init__(self, f: Callable, args: tuple, nums: tuple[int, ...], op: str) -> None:
        self.nums = nums
        self.defs: list[PyTreeDef] = []
        self.kinds: list[list[int]] = []
        self.fresh: list[list[Tensor]] = []
        self.input_ids: set[int] = set()  # arrays the caller owns: a result must never alias them
        new_args = list(args)
        for i in nums:
            leaves, treedef = tree_flatten(args[i])
            kinds, fresh = [], []
            for j, leaf in enumerate(leaves):
                try:
                    kind, t = self._wrap(leaf)
                except TypeError:
                    raise _not_float(op, _leaf_path(args[i], j, _arg_name(f, i)), leaf) from None
                kinds.append(kind)
                fresh.append(t)
                self.input_ids.add(id(t.data if t.data.base is None else t.data.base))
            self.defs.append(treedef)
            self.kinds.append(kinds)
            self.fresh.append(fresh)
            new_args[i] = treedef.unflatten(fresh)
        self.args = tuple(new_args)
        self.flat = [t for ts in self.fresh for t in ts]

    @staticmethod
    def _wrap(leaf: Any) -> tuple[int, Tensor]:
        levels = B.batch_levels()
        if levels:  # inside vmap: differentiate per example (see _batched_leaf)
            return _TENSOR, _batched_leaf(leaf, levels)
        if isinstance(leaf, Tensor):
            if leaf.dtype.kind != "f":
                raise TypeError
            if leaf.requires_grad and state().enabled:  # under no_grad nobody differentiates further
                return _TENSOR, _Input.apply(leaf)
            return _TENSOR, _Leaf._make(leaf.data, None, 0).requires_grad_(True)
        if isinstance(leaf, np.ndarray):
            if leaf.dtype.kind != "f":
                raise TypeError
            return _ARRAY, _Leaf._make(leaf, None, 0).requires_grad_(True)
        if isinstance(leaf, np.floating):
            return _NPSCALAR, _Leaf._make(np.asarray(leaf), None, 0).requires_grad_(True)
        if isinstance(leaf, float):
            return _FLOAT, _Leaf._make(np.asarray(leaf, dtype=np.float64), None, 0).requires_grad_(True)
        raise TypeError

    def ours(self) -> set[int]:
        return {id(B.physical(t)[0]) for t in self.flat}


def _batched_leaf(leaf: Any, levels: list) -> Tensor:
    """A differentiated input inside vmap: its values with a batch dimension for *every* running
    vmap level (broadcast where the input is not batched at that level), as a fresh leaf (or an
    _Input handle when it already requires grad), wrapped back into BatchedTensors. Each example
    then has its own copy of every input, so the gradient of the summed batch of outputs with
    respect to the copies is the batch of per-example gradients."""
    if not isinstance(leaf, Tensor):
        if not isinstance(leaf, (np.ndarray, np.floating, float)):
            raise TypeError
        leaf = as_tensor(np.asarray(leaf, dtype=np.float64) if isinstance(leaf, float) else np.asarray(leaf))
    if leaf.dtype.kind != "f":
        raise TypeError
    p, have = B.physical(leaf)
    want = [lv for lv, _, _ in levels]
    sizes = {lv: n for lv, n, _ in levels}
    if have != want[: len(have)] or any(lv not in sizes for lv in have):
        have_set = set(have)
        # Insert a broadcast batch dim for each missing level, keeping level order.
        shape, k = [], 0
        for lv in want:
            if lv in have_set:
                shape.append(p.shape[k])
                k += 1
            else:
                shape.append(1)
        rest = tuple(p.shape[len(have):])
        p = p.reshape(tuple(shape) + rest)
        p = p.expand(tuple(sizes[lv] for lv in want) + rest)
    elif len(have) < len(want):
        rest = tuple(p.shape[len(have):])
        p = p.reshape(tuple(p.shape[: len(have)]) + (1,) * (len(want) - len(have)) + rest)
        p = p.expand(tuple(sizes[lv] for lv in want) + rest)
    if p.requires_grad and state().enabled:
        fresh = _Input.apply(p)
    else:
        fresh = _Leaf._make(p.data, None, 0).requires_grad_(True)
    return B.rewrap(fresh, want)


def _live(t: Tensor, ours: set[int]) -> bool:
    if id(t) in ours:
        return False
    if not isinstance(t, _Leaf):
        return True  # the user's: they may call backward() on the result
    return any(id(t) in s for s in _active())


def _reaches_foreign(outs: list[Tensor], ours: set[int]) -> bool:
    """Whether the graph of ``outs`` reaches a leaf requiring grad that someone else may still
    differentiate with respect to: the user's Tensors, or an enclosing running transform's leaves.

    If so the result must stay differentiable, so the backward is recorded. Iterative; stops at
    the first find."""
    stack: list = []
    seen: set = set()
    for t in outs:
        t = B.physical(t)[0]
        if t.grad_fn is None:
            if t.requires_grad and _live(t, ours):
                return True
        elif t.grad_fn not in seen:
            seen.add(t.grad_fn)
            stack.append(t.grad_fn)
    while stack:
        n = stack.pop()
        for e in n.next_edges:
            if e is None:
                continue
            m = e[0]
            if isinstance(m, Node):
                if m not in seen:
                    seen.add(m)
                    stack.append(m)
            elif _live(m, ours):
                return True
    return False


def _split_aux(raw: Any, has_aux: bool, op: str) -> tuple[Any, Any]:
    if not has_aux:
        return raw, None
    if not (isinstance(raw, (tuple, list)) and len(raw) == 2):
        raise TypeError(f"{op}: has_aux=True, so f must return a pair (output, aux), got {describe(raw)}.")
    return raw[0], raw[1]


def _detach_tree(tree: Any) -> Any:
    return tree_map(lambda v: v.detach() if isinstance(v, Tensor) and v.requires_grad else v, tree)


class _Results:
    """Turns raw engine gradients into the caller's types without aliasing."""

    def __init__(self, input_ids: set[int]) -> None:
        self.owned = set(input_ids)

    def convert(self, g: Tensor, kind: int, connected: bool) -> Any:
        if connected:
            return g
        if B.is_batched(g):  # inside vmap: a batch of gradients, owned by this call
            return g
        a = g.data
        base = a if a.base is None else a.base
        # Gradients may be read-only broadcast views, or one array handed to several inputs
        # (an Add passes its gradient to both sides): copy so each result is independently writable.
        if not a.flags.writeable or id(base) in self.owned:
            a = a.copy()
        else:
            self.owned.add(id(base))
        if kind == _TENSOR:
            return Tensor._make(a, None, 0)
        if kind == _ARRAY:
            return a
        if kind == _NPSCALAR:
            return a[()]
        return float(a) if a.ndim == 0 else a


def _bases(ts: list[Tensor]) -> set[int]:
    # A cotangent can come back unchanged (f(x) = x + 0): never hand the caller's array back as a result.
    return {id(t.data if t.data.base is None else t.data.base) for t in ts}


def _zeros(t: Tensor) -> Tensor:
    return Tensor._make(np.zeros(t.shape, dtype=t.dtype), None, 0)


def _engine_grads(outs: list[Tensor], cots: list | None, inputs: list[Tensor], create: bool, retain: bool) -> list[Tensor]:
    """d(outs)/d(inputs), zeros where an input is unused. ``outs`` may be empty (a constant f)."""
    if any(B.is_batched(t) for t in inputs) or any(B.is_batched(o) for o in outs):
        return _batched_engine_grads(outs, cots, inputs, create, retain)
    live = [(o, c) for o, c in zip(outs, cots if cots is not None else [None] * len(outs)) if o.requires_grad]
    if not live or not inputs:
        return [_zeros(t) for t in inputs]
    res = _autograd_grad(
        [o for o, _ in live],
        inputs,
        grad_outputs=None if cots is None else [c for _, c in live],
        retain_graph=retain,
        create_graph=create,
        allow_unused=True,
    )
    return [g if g is not None else _zeros(t) for g, t in zip(res, inputs)]


def _batched_engine_grads(outs: list, cots: list | None, inputs: list, create: bool, retain: bool) -> list:
    """``_engine_grads`` inside vmap, on the whole batch: each input leaf holds one copy per
    example (see _batched_leaf), so differentiating the batch of outputs, seeded with ones (or
    the cotangents, broadcast to the outputs' batch), gives the per-example gradients.

    A cotangent may also be batched at inner vmap levels the outputs are not (a vjp taken inside
    one vmap and called inside another, as ``vmap(jacobian(f))`` does): it is then passed as a
    batched Tensor of those levels, so the backward runs through the batching rules, and the
    results are batched at those levels too."""
    p_in = [B.physical(t) for t in inputs]
    p_outs, p_cots = [], []
    extra: list = []
    for j, o in enumerate(outs):
        po, lv = B.physical(o)
        if not po.requires_grad:
            continue
        if cots is None:
            c = Tensor._make(np.ones(po.shape, dtype=po.dtype), None, 0)
        else:
            c, clv = B.physical(cots[j])
            more = [x for x in clv if x not in lv]
            if more and (extra and more != extra or (lv and min(more) < max(lv))):
                raise NotImplementedError(
                    "vjp inside vmap: a cotangent batched at an outer vmap level that the output is not batched at is not supported."
                )
            extra = more or extra
            want = sorted(set(lv) | set(more))
            if clv != want:  # broadcast the cotangent over the batch dims it lacks
                sizes = dict(zip(lv, po.shape))
                sizes.update(zip(clv, c.shape))
                shape = [c.shape[clv.index(x)] if x in clv else 1 for x in want]
                c = c.reshape(tuple(shape) + tuple(c.shape[len(clv):])).expand(tuple(sizes[x] for x in want) + tuple(c.shape[len(clv):]))
            if more:  # the inner levels' dims go in front, wrapped: a batch of cotangents for po
                k, m = len(lv), len(more)
                c = c.permute(tuple(range(k, k + m)) + tuple(range(k)) + tuple(range(k + m, c.ndim)))
                c = B.rewrap(c, more)
        p_outs.append(po)
        p_cots.append(c)
    if not p_outs:
        return [B.rewrap(Tensor._make(np.zeros(p.shape, dtype=p.dtype), None, 0), lv) for p, lv in p_in]
    res = _autograd_grad(p_outs, [p for p, _ in p_in], grad_outputs=p_cots, retain_graph=retain, create_graph=create, allow_unused=True)
    out = []
    for g, (p, lv) in zip(res, p_in):
        if g is None:
            out.append(B.rewrap(Tensor._make(np.zeros(p.shape, dtype=p.dtype), None, 0), lv))
            continue
        pg, glv = B.physical(g)
        if glv:  # batched at the inner levels: (inner..., p's levels..., *shape) -> level order
            m, k = len(glv), len(lv)
            pg = pg.permute(tuple(range(m, m + k)) + tuple(range(m)) + tuple(range(m + k, pg.ndim)))
        out.append(B.rewrap(pg, lv + glv))
    return out


def _check_cotangents(out_def: PyTreeDef, out_leaves: list[Tensor], cot: Any, name: str, op: str) -> list[Tensor]:
    leaves = out_def.flatten_up_to(cot, name=name, op=op)
    res = []
    for j, (c, o) in enumerate(zip(leaves, out_leaves)):
        where = None
        if isinstance(c, (int, float, np.number)) and not isinstance(c, bool):
            c = np.asarray(c, dtype=o.dtype)
        if not isinstance(c, (Tensor, np.ndarray)) or c.dtype.kind != "f":
            where = f"is {describe(c)}, not a floating-point array"
        elif tuple(c.shape) != o.shape:
            where = f"has shape {tuple(c.shape)} but the output there has shape {o.shape}"
        if where is not None:
            pairs, _ = tree_flatten_with_path(cot)
            raise ValueError(f"{op}: {keystr(pairs[j][0], name)} {where}; each {name} leaf must match its output's shape.")
        res.append(c if isinstance(c, Tensor) else Tensor._make(c, None, 0))
    return res


def _out_leaves(out: Any, op: str) -> tuple[list[Tensor], PyTreeDef]:
    leaves, treedef = tree_flatten(out)
    res = []
    for j, v in enumerate(leaves):
        if isinstance(v, Tensor):
            res.append(v)
        elif isinstance(v, (np.ndarray, float, np.floating)):
            res.append(as_tensor(np.asarray(v)))  # a constant output: zero derivative
        else:
            pairs, _ = tree_flatten_with_path(out)
            where = keystr(pairs[j][0], "output")
            raise TypeError(f"{op}: f returned {describe(v)} at {where}; outputs must be Tensors (or pytrees of them).")
    return res, treedef


def _call(f: Callable, a: _Args, kwargs: dict) -> Any:
    stack = _active()
    stack.append(a.ours())
    try:
        with enable_grad():
            return f(*a.args, **kwargs)
    finally:
        stack.pop()


# ---- grad / value_and_grad ------------------------------------------------------------------
def _value_and_grad(f: Callable, argnums: Any, has_aux: bool, op: str, args: tuple, kwargs: dict) -> tuple[Any, Any, Any]:
    nums, single = _normalize_argnums(argnums, op)
    nums = _resolve_argnums(nums, len(args), op, argnums)
    outer = state().enabled
    a = _Args(f, args, nums, op)
    out, aux = _split_aux(_call(f, a, kwargs), has_aux, op)
    if not isinstance(out, Tensor):
        hint = " If f returns (loss, aux), pass has_aux=True." if isinstance(out, (tuple, list)) else ""
        raise TypeError(f"{op}: f must return a scalar Tensor, got {describe(out)}.{hint}")
    if out.numel() != 1:
        raise ValueError(
            f"{op}: f must return a scalar (single-element) Tensor, got shape {out.shape}. For a non-scalar output use "
            "vjp(f, x) and call the returned function with a cotangent of that shape, or jacobian(f)."
        )
    if out.dtype.kind != "f":
        raise TypeError(f"{op}: f returned a Tensor of dtype {out.dtype}; gradients need a floating-point output.")
    create = outer and _reaches_foreign([out], a.ours())
    gs = _engine_grads([out], None, a.flat, create, create)
    conv = _Results(a.input_ids)
    trees, k = [], 0
    for treedef, kinds in zip(a.defs, a.kinds):
        leaves = [conv.convert(gs[k + j], kind, create) for j, kind in enumerate(kinds)]
        k += len(kinds)
        trees.append(treedef.unflatten(leaves))
    grads = trees[0] if single else tuple(trees)
    if not create:
        out = out.detach()
        aux = _detach_tree(aux) if has_aux else aux
    return out, grads, aux


def value_and_grad(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """``f``'s value and its gradient with respect to the arguments at ``argnums``.

    ``f`` must return a single-element Tensor (or ``(output, aux)`` with ``has_aux=True``). The
    new function returns ``(value, grads)`` (``((value, aux), grads)`` with ``has_aux``); ``grads``
    mirrors the structure of argument ``argnums`` (a tuple of those for a tuple ``argnums``).

    Example::

        loss, grads = value_and_grad(lambda w, x: ((x @ w) ** 2).sum())(w, x)   # grads.shape == w.shape
    """
    _normalize_argnums(argnums, "value_and_grad")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        out, grads, aux = _value_and_grad(f, argnums, has_aux, "value_and_grad", args, kwargs)
        return ((out, aux), grads) if has_aux else (out, grads)

    return wrapped


def grad(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The gradient of scalar-valued ``f`` with respect to the arguments at ``argnums``.

    The result mirrors the structure of the differentiated argument (dicts, lists, tuples,
    namedtuples, None); with a tuple ``argnums`` it is a tuple of those. With ``has_aux=True``,
    ``f`` returns ``(output, aux)`` and the new function returns ``(grads, aux)``.
    Transforms compose: ``grad(grad(f))`` is the second derivative.

    Example::

        df = grad(lambda x: (x ** 3).sum())
        df(tensor([1.0, 2.0]))                      # Tensor([3., 12.])
        grad(grad(lambda x: (x ** 3).sum()))(tensor(2.0))   # Tensor(12.)
    """
    _normalize_argnums(argnums, "grad")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        _, grads, aux = _value_and_grad(f, argnums, has_aux, "grad", args, kwargs)
        return (grads, aux) if has_aux else grads

    return wrapped


# ---- vjp / jvp -----------------------------------------------------------------------------
def _vjp(f: Callable, primals: tuple, kwargs: dict, has_aux: bool, op: str, cot_name: str, want_out: bool = True) -> tuple:
    """``f``'s output (None unless ``want_out``), its vjp function, aux, output leaves and treedef."""
    outer = state().enabled
    a = _Args(f, primals, tuple(range(len(primals))), op)
    out, aux = _split_aux(_call(f, a, kwargs), has_aux, op)
    out_leaves, out_def = _out_leaves(out, op)
    foreign = outer and _reaches_foreign([o for o in out_leaves if o.requires_grad], a.ours())

    def vjp_fn(cotangent: Any) -> tuple:
        cots = _check_cotangents(out_def, out_leaves, cotangent, cot_name, op)
        create = state().enabled and (foreign or any(c.requires_grad for c in cots))
        gs = _engine_grads(out_leaves, cots, a.flat, create, True)
        conv = _Results(a.input_ids | _bases(cots))
        trees, k = [], 0
        for treedef, kinds in zip(a.defs, a.kinds):
            trees.append(treedef.unflatten([conv.convert(gs[k + j], kind, create) for j, kind in enumerate(kinds)]))
            k += len(kinds)
        return tuple(trees)

    ret_out = None if not want_out else out if foreign else _detach_tree(out)
    ret_aux = aux if foreign or not has_aux else _detach_tree(aux)
    return ret_out, vjp_fn, ret_aux, out_leaves, out_def


def vjp(f: Callable, *primals: Any, has_aux: bool = False) -> tuple:
    """Evaluate ``f(*primals)`` and return ``(output, vjp_fn)`` (``(output, vjp_fn, aux)`` with ``has_aux``).

    ``vjp_fn(cotangent)``, with ``cotangent`` shaped like the output (a pytree of arrays or
    Tensors), returns a tuple with one cotangent per primal: ``sum(cotangent * d output / d primal)``.
    It may be called many times.

    Example::

        y, vjp_fn = vjp(lambda x: x * x, tensor([1.0, 2.0]))
        (gx,) = vjp_fn(np.ones(2, dtype=np.float32))   # Tensor([2., 4.])
    """
    out, vjp_fn, aux, _, _ = _vjp(f, primals, {}, has_aux, "vjp", "cotangent")
    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)


def jvp(f: Callable, primals: tuple | list, tangents: tuple | list, has_aux: bool = False) -> tuple:
    """Forward-mode product: ``(f(*primals), J @ tangents)`` (plus ``aux`` with ``has_aux``).

    ``tangents`` has one entry per primal with the same structure and shapes. Exact: computed by
    the double-vjp trick (``u -> J^T u`` is linear; its vjp with the tangents is ``J @ tangents``),
    so it costs about three reverse passes.

    Example::

        y, t = jvp(lambda x: x ** 2, (tensor([1.0, 3.0]),), (tensor([1.0, 0.0]),))   # t: Tensor([2., 0.])
    """
    return _jvp(f, primals, tangents, has_aux, "jvp")


def _jvp(f: Callable, primals: tuple | list, tangents: tuple | list, has_aux: bool, op: str) -> tuple:
    """:func:`jvp`, naming ``op`` in error messages."""
    if not isinstance(primals, (tuple, list)) or not isinstance(tangents, (tuple, list)):
        raise TypeError(
            f"{op}: primals and tangents must be tuples of arguments, e.g. jvp(f, (x,), (v,)); "
            f"got {describe(primals)} and {describe(tangents)}."
        )
    if len(primals) != len(tangents):
        raise ValueError(f"{op}: got {len(primals)} primal(s) but {len(tangents)} tangent(s); pass one tangent per primal.")
    outer = state().enabled
    a = _Args(f, tuple(primals), tuple(range(len(primals))), op)
    tans: list[Tensor] = []
    for i, (treedef, fresh) in enumerate(zip(a.defs, a.fresh)):
        tans += _check_cotangents(treedef, fresh, tangents[i], f"tangents[{i}]", op)
    out, aux = _split_aux(_call(f, a, {}), has_aux, op)
    out_leaves, out_def = _out_leaves(out, op)
    ours = a.ours()
    foreign = outer and _reaches_foreign([o for o in out_leaves if o.requires_grad], ours)
    # u -> J^T u, recorded so it can be differentiated with respect to the dummy cotangent u.
    levels = B.batch_levels()
    zs = [np.zeros(o.shape, dtype=o.dtype) for o in out_leaves]
    us = [_batched_leaf(z, levels) if levels else _Leaf._make(z, None, 0).requires_grad_(True) for z in zs]
    ours |= {id(B.physical(u)[0]) for u in us}
    gs = _engine_grads(out_leaves, us, a.flat, True, True)
    create = outer and (foreign or any(t.requires_grad for t in tans))
    live = [(g, t) for g, t in zip(gs, tans) if g.requires_grad]
    touts = _engine_grads([g for g, _ in live], [t for _, t in live], us, create, create)
    conv = _Results(a.input_ids | _bases(tans))
    tangent_out = out_def.unflatten([conv.convert(t, _TENSOR, create) for t in touts])
    if not create:
        out = _detach_tree(out)
        aux = _detach_tree(aux) if has_aux else aux
    return (out, tangent_out, aux) if has_aux else (out, tangent_out)


# ---- jacobian / hessian --------------------------------------------------------------------
class _Partial:
    """``f`` as a function of the arguments at ``nums`` only, the others fixed to ``args``. Its
    signature holds ``f``'s names for those arguments, for error messages; it is worked out only
    when one is written (``inspect.signature`` costs more than a small Jacobian)."""

    def __init__(self, f: Callable, args: tuple, kwargs: dict, nums: tuple) -> None:
        self.f, self.args, self.kwargs, self.nums = f, args, kwargs, nums

    def __call__(self, *diff: Any) -> Any:
        full = list(self.args)
        for i, d in zip(self.nums, diff):
            full[i] = d
        return self.f(*full, **self.kwargs)

    @property
    def __signature__(self) -> inspect.Signature | None:
        return _sub_signature(self.f, self.nums)


def jacobian(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The Jacobian of ``f`` with respect to the arguments at ``argnums``, by reverse mode:
    one batched backward pass per output leaf (``vmap`` of the vjp over the identity's rows).
    ``jacrev`` is the same function.

    For an output leaf of shape ``O`` and an input leaf of shape ``I`` the entry has shape
    ``O + I``. The result has the output's structure; each output leaf holds the input's
    structure (a tuple of those for a tuple ``argnums``). With ``has_aux`` returns ``(jac, aux)``.

    Example::

        J = jacobian(lambda x: x ** 2)(tensor([1.0, 2.0]))    # Tensor([[2., 0.], [0., 4.]])
    """
    op = "jacobian"
    _normalize_argnums(argnums, op)

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nums, single = _normalize_argnums(argnums, op)
        nums = _resolve_argnums(nums, len(args), op, argnums)

        g = _Partial(f, args, kwargs, nums)
        _, vjp_fn, aux, out_leaves, out_def = _vjp(g, tuple(args[i] for i in nums), {}, has_aux, op, "cotangent", want_out=False)
        flat_args = [tree_flatten(args[i]) for i in nums]
        per_out = []
        for j, o in enumerate(out_leaves):
            m = o.numel()
            # All rows of this output's Jacobian in one batched reverse pass: vmap over a batch of
            # one-hot cotangents (the identity), zeros for the other outputs.
            rows: list = []
            if m:
                eye = Tensor._make(np.eye(m, dtype=o.dtype).reshape((m,) + o.shape), None, 0)
                level = B.new_level(m, "error")
                try:
                    cots: list = [Tensor._make(np.zeros(o2.shape, dtype=o2.dtype), None, 0) for o2 in out_leaves]
                    cots[j] = B.wrap(eye, level)
                    got = vjp_fn(out_def.unflatten(cots))
                finally:
                    B.end_level(level)
                rows = [_unbatch(r, m, level) for r in tree_flatten(got)[0]]
            per_arg, k = [], 0
            for leaves_in, treedef in flat_args:
                part = rows[k : k + len(leaves_in)] if rows else [None] * len(leaves_in)
                k += len(leaves_in)
                per_arg.append(treedef.unflatten([_jac_entry(r, o.shape, leaf) for r, leaf in zip(part, leaves_in)]))
            per_out.append(per_arg[0] if single else tuple(per_arg))
        jac = out_def.unflatten(per_out)
        return (jac, aux) if has_aux else jac

    return wrapped


def _sub_signature(f: Callable, nums: tuple[int, ...]) -> inspect.Signature | None:
    try:
        params = [p for p in inspect.signature(f).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return None
    if any(i >= len(params) for i in nums):
        return None
    return inspect.Signature([params[i].replace(kind=inspect.Parameter.POSITIONAL_ONLY, default=inspect.Parameter.empty) for i in nums])


jacrev = jacobian


def jacfwd(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False, *, randomness: str = "error") -> Callable:
    """The Jacobian of ``f`` by forward mode, as ``torch.func.jacfwd``: one ``jvp`` batched
    (``vmap``) over the standard basis of the differentiated inputs' tangent space. Same result
    and layout as :func:`jacobian` (``jacrev``); cheaper when inputs are few and outputs many.

    ``randomness`` is passed to that vmap, so a random op in ``f`` (dropout) needs ``'same'``
    (one draw for the whole Jacobian, and for ``aux``) or ``'different'`` (a draw per basis
    vector, i.e. per column); the default ``'error'`` refuses it. With ``has_aux``, ``f`` returns
    ``(output, aux)`` and the result is ``(jac, aux)``, aux from the first basis vector's call.

    Example::

        J = jacfwd(lambda x: x.sin())(tensor([0.0, 1.0]))   # diag(cos(x))
        J = jacfwd(lambda x: F.dropout(x, 0.5) * x, randomness="same")(ones(4))   # diag(2 * mask), one mask
    """
    op = "jacfwd"
    _normalize_argnums(argnums, op)
    if randomness not in _RANDOMNESS:
        raise ValueError(f"{op}: randomness must be one of {_RANDOMNESS}, got {randomness!r}.")

    @functools.wraps(f)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        nums, single = _normalize_argnums(argnums, op)
        nums = _resolve_argnums(nums, len(args), op, argnums)

        g = _Partial(f, args, kwargs, nums)
        primals = tuple(args[i] for i in nums)
        flats = [tree_flatten(p) for p in primals]
        leaves = [leaf for lv, _ in flats for leaf in lv]
        arrs = []
        for n, (lv, _) in enumerate(flats):
            for k, leaf in enumerate(lv):
                arr = leaf.data if isinstance(leaf, Tensor) else np.asarray(leaf)
                if arr.dtype.kind != "f":
                    raise _not_float(op, _leaf_path(primals[n], k, _arg_name(f, nums[n])), leaf)
                arrs.append(arr)
        offsets = [0]  # leaf i's tangents are rows offsets[i]:offsets[i+1] of the basis
        for a in arrs:
            offsets.append(offsets[-1] + a.size)
        total = offsets[-1]
        if total == 0:  # nothing to push forward: every entry is empty
            out, aux = _split_aux(g(*primals), has_aux, op)
            out_leaves, out_def = _out_leaves(out, op)
            cols: list = [None] * len(out_leaves)
            out_shapes = [o.shape for o in out_leaves]
        else:
            # One vmap over the basis of all the inputs together (as torch.func.jacfwd), so that
            # under randomness='same' the whole Jacobian comes from one draw.
            bases = []
            for a, lo in zip(arrs, offsets):
                b = np.zeros((total, a.size), dtype=a.dtype)
                b[lo : lo + a.size] = np.eye(a.size, dtype=a.dtype)
                bases.append(Tensor._make(b.reshape((total,) + a.shape), None, 0))
            auxes: list = []

            def push(*ts: Tensor) -> Any:
                it = iter(ts)
                tans = tuple(td.unflatten([next(it) for _ in lv]) for lv, td in flats)
                res = _jvp(g, primals, tans, has_aux, op)
                if has_aux:  # aux may hold non-tensors, which vmap cannot return: pass it out here
                    auxes.append((res[2], B.batch_levels()[-1][0]))
                return res[1]

            push.__name__ = f"jacfwd({getattr(f, '__name__', 'f')})"
            cols, out_def = tree_flatten(vmap(push, randomness=randomness)(*bases))
            out_shapes = [tuple(c.shape[1:]) for c in cols]
            if has_aux:
                aux, level = auxes[0]
                aux = tree_map(lambda v: v.value[0] if B.is_batched(v) and v.level == level else v, aux)
        per_out = []
        for c, o_shape in zip(cols, out_shapes):
            entries = []
            for i, leaf in enumerate(leaves):
                if c is None:
                    entries.append(_jac_entry(None, o_shape, leaf))
                    continue
                # (in size, *out shape) -> out shape + in shape
                block = c[offsets[i] : offsets[i + 1]]
                moved = block.permute(tuple(range(1, block.ndim)) + (0,)) if block.ndim > 1 else block
                entries.append(_jac_entry(moved, o_shape, leaf))
            per_arg, k = [], 0
            for lv, td in flats:
                per_arg.append(td.unflatten(entries[k : k + len(lv)]))
                k += len(lv)
            per_out.append(per_arg[0] if single else tuple(per_arg))
        jac = out_def.unflatten(per_out)
        return (jac, _detach_tree(aux)) if has_aux else jac

    return wrapped


def _unbatch(r: Any, m: int, level: int) -> Any:
    """A result of a function run under vmap level ``level`` as an ordinary Tensor, batch in front
    (broadcast when the result does not depend on the batch)."""
    if B.is_batched(r) and r.level == level:
        return r.value
    if not isinstance(r, Tensor):
        r = as_tensor(np.asarray(r))
    return r.reshape((1,) + tuple(r.shape)).expand((m,) + tuple(r.shape))


def _jac_entry(rows: Any, out_shape: tuple, leaf: Any) -> Any:
    """One Jacobian block from the batched vjp (rows: (O.size,) + I), shaped O + I and of the
    input leaf's kind (a Tensor, an array, a float)."""
    in_shape = tuple(np.shape(leaf.data if isinstance(leaf, Tensor) else leaf))
    shape = tuple(out_shape) + in_shape
    if rows is None:  # an empty output
        arr = np.zeros(shape, dtype=leaf.dtype if isinstance(leaf, (Tensor, np.ndarray, np.floating)) else np.float64)
        return Tensor._make(arr, None, 0) if isinstance(leaf, Tensor) else arr
    r = rows.reshape(shape)
    if r.requires_grad or isinstance(leaf, Tensor):
        return r
    arr = r.numpy()
    if isinstance(leaf, np.floating):
        return arr if arr.ndim else arr[()]
    if isinstance(leaf, float):
        return float(arr) if arr.ndim == 0 else arr
    return arr


def hessian(f: Callable, argnums: int | tuple[int, ...] = 0, has_aux: bool = False) -> Callable:
    """The Hessian of ``f``: ``jacrev(jacrev(f))``. For scalar ``f`` an input leaf of shape ``I``
    gives entries of shape ``I + I`` (``I + J`` between leaves of shapes ``I`` and ``J``); an
    output of shape ``O`` puts ``O`` in front, as ``torch.func.hessian``. Reverse over reverse
    rather than torch's forward over reverse: the values are the same, and here, where forward
    mode is built from reverse passes, one batched reverse pass of the gradient is cheaper. So
    ``f`` runs once, outside any vmap, and a random op in it (dropout) draws once.

    Example::

        H = hessian(lambda x: (x ** 3).sum())(tensor([1.0, 2.0]))   # Tensor([[6., 0.], [0., 12.]])
    """
    return jacrev(jacrev(f, argnums, has_aux), argnums, has_aux)


# ---- modules -------------------------------------------------------------------------------
def get_params(module: Any, buffers: bool = False) -> dict[str, Tensor]:
    """A model's parameters as a pytree ``{'conv1.weight': Tensor, ...}`` to start from:
    detached *copies* (so functional updates and the module never affect each other), in
    ``state_dict()`` order. With ``buffers=True`` the buffers are included too.

    Example::

        params = get_params(model)
        out = functional_call(model, params, x)
    """
    named = list(module.named_parameters())
    if buffers:
        named += list(module.named_buffers())
    order = {k: i for i, k in enumerate(module.state_dict())}
    named.sort(key=lambda kv: order.get(kv[0], len(order)))
    return {k: Tensor._make(v.data.copy(), None, 0) for k, v in named}


def _resolve_slot(module: Any, name: str) -> tuple[dict, str]:
    """The registry (a module's parameters or buffers) holding dotted ``name``, and the key."""
    *path, attr = name.split(".")
    mod = module
    for p in path:
        subs = mod._modules
        if p not in subs or subs[p] is None:
            raise KeyError(name)
        mod = subs[p]
    if attr in mod._parameters:
        return mod._parameters, attr
    if attr in mod._buffers:
        return mod._buffers, attr
    raise KeyError(name)


@contextmanager
def _swapped(module: Any, params: Mapping[str, Any]) -> Iterator[None]:
    # Check everything before changing anything, so a bad entry leaves the module untouched.
    slots: dict[tuple[int, str], tuple[dict, str, Any]] = {}
    by_id: dict[int, Any] = {}
    unknown = []
    for name, value in params.items():
        try:
            reg, attr = _resolve_slot(module, name)
        except KeyError:
            unknown.append(name)
            continue
        old = reg[attr]
        if value is not None and not isinstance(value, Tensor):
            value = as_tensor(value)
        if value is not None and old is not None and value.shape != old.shape:
            raise ValueError(f"functional_call: params[{name!r}] has shape {value.shape} but the module's {name} has shape {old.shape}.")
        slots[(id(reg), attr)] = (reg, attr, value)
        if old is not None:
            by_id[id(old)] = value
    if unknown:
        known = [k for k, _ in module.named_parameters()] + [k for k, _ in module.named_buffers()]
        raise ValueError(
            f"functional_call: {type(module).__name__} has no parameter or buffer named {unknown}; its names are {known}. "
            "Use the state_dict() names (e.g. get_params(model))."
        )
    # A parameter shared by several modules is listed once (named_parameters); replace every use.
    mods = [m for _, m in module.named_modules()]
    for m in mods:
        for reg in (m._parameters, m._buffers):
            for attr, old in reg.items():
                if old is not None and id(old) in by_id and (id(reg), attr) not in slots:
                    slots[(id(reg), attr)] = (reg, attr, by_id[id(old)])
    # The forward may update buffers in place (BatchNorm's running statistics in training mode):
    # the module's own buffers that params does not replace are lent out as copies, so the module
    # itself never changes.
    for m in mods:
        for attr, old in m._buffers.items():
            if old is not None and (id(m._buffers), attr) not in slots:
                slots[(id(m._buffers), attr)] = (m._buffers, attr, Tensor._make(old.data.copy(), None, 0))
    saved = [(reg, attr, reg[attr]) for reg, attr, _ in slots.values()]
    shapes = [(m, m.__dict__.get("_output_shape")) for m in mods]
    try:
        for reg, attr, value in slots.values():
            reg[attr] = value
        yield
    finally:
        for reg, attr, old in saved:
            reg[attr] = old
        for m, shape in shapes:
            m.__dict__["_output_shape"] = shape


def functional_call(module: Any, params: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
    """Run ``module(*args, **kwargs)`` with the Tensors in ``params`` (``state_dict()`` names
    such as ``'conv1.weight'``) in place of its own parameters/buffers, without changing it.

    Names not in ``params`` keep the module's own values; a parameter shared by several
    submodules is replaced everywhere it is used. The module is restored exactly, also when the
    forward raises. A forward that updates buffers in place (BatchNorm in training mode) updates
    the buffers given in ``params`` (``get_params(model, buffers=True)``) and otherwise throwaway
    copies: the module itself never changes. ``params`` is a flat dict like :func:`get_params` returns and can be
    differentiated through, so ``grad(lambda p: loss(functional_call(model, p, x)))(params)``
    works. Not thread-safe: the swap is visible to other threads using the same module meanwhile.

    Example::

        out = functional_call(model, get_params(model), x)
    """
    if not isinstance(params, Mapping):
        raise TypeError(f"functional_call: params must be a dict name -> Tensor (the state_dict() structure), got {describe(params)}.")
    with _swapped(module, params):
        return module(*args, **kwargs)


# ---- vmap ----------------------------------------------------------------------------------
_RANDOMNESS = ("error", "different", "same")


def match_in_dims(spec: Any, tree: Any, where: str = "argument", op: str = "vmap", what: str = "in_dims") -> list:
    """Match the ``in_dims`` prefix ``spec`` against argument ``tree``: one dim (int or None) per
    leaf of ``tree``, in ``tree_flatten`` order. Example: ``match_in_dims({'a': 0, 'b': None},
    {'a': x, 'b': y}) == [0, None]``. ``what`` names the spec in errors (``'out_dims'`` for outputs)."""
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        return [spec] * len(tree_flatten(tree)[0])
    if isinstance(spec, dict) and isinstance(tree, Mapping):
        if set(spec) != set(tree):
            raise ValueError(f"{op}: {what} for {where} is a dict with keys {sorted(spec)} but {where} has keys {sorted(tree)}.")
        out: list = []
        for k in tree:  # the argument's key order is its flattening order
            out += match_in_dims(spec[k], tree[k], f"{where}[{k!r}]", op, what)
        return out
    if isinstance(spec, (tuple, list)) and isinstance(tree, (tuple, list)) and len(spec) == len(tree):
        out = []
        for i, (s_, t_) in enumerate(zip(spec, tree)):
            out += match_in_dims(s_, t_, f"{where}[{i}]", op, what)
        return out
    if what == "out_dims":
        fix = "Give one out_dims entry per output: an int (where its batch dim goes), None (not batched) or a matching container."
    else:
        fix = "Give one in_dims entry per argument: an int (batch dim), None (not batched) or a matching container."
    raise ValueError(
        f"{op}: {what} for {where} is {spec!r}, which is neither an int, None, nor a prefix of its structure ({describe(tree)}). {fix}"
    )


def _outmatch_in_dims(spec: Any, tree: Any, op: str) -> list:
    if spec is None or (isinstance(spec, (int, np.integer)) and not isinstance(spec, bool)):
        return [spec] * len(tree_flatten(tree)[0])
    return match_in_dims(spec, tree, "output", op, "out_dims")


def vmap(
    func: Callable, in_dims: Any = 0, out_dims: Any = 0, randomness: str = "error", *, chunk_size: int | None = None
) -> Callable:
    """Vectorizing map, as ``torch.func.vmap`` / ``jax.vmap``: ``vmap(f)(xs)`` is
    ``stack([f(x) for x in xs])``, computed in one batched pass.

    ``in_dims`` gives, per positional argument, the dimension to map over: an int, ``None`` (the
    argument is shared by all examples) or a pytree prefix of the argument (a dict/tuple of
    those); a single int or None applies to every argument. ``out_dims`` says where the batch
    dimension goes in each output (an output that does not depend on the batch is broadcast),
    or ``None`` for an output returned as it is, which must not be batched (a pytree prefix of
    the outputs, like ``in_dims``). Inside, ``f`` sees one example: shapes without the batch
    dimension. Every op runs once for the whole batch through its batching rule (an op without
    one loops, with a warning). ``randomness`` is what random ops (dropout) do: ``'error'``
    refuses them, ``'different'`` draws per example, ``'same'`` shares one draw among the
    examples (also across chunks); in nested vmaps each applies to its own batch dimension and an
    ``'error'`` at any level refuses. ``chunk_size`` maps over chunks of that many examples at a
    time (less memory): each chunk is one call of ``f``, so a random op with a fixed ``seed``
    repeats its draws in every chunk. Keyword arguments are passed through unbatched.

    Composes with the other transforms: ``vmap(grad(loss), in_dims=(None, 0, 0))(params, x, y)``
    gives per-example gradients, ``vmap(vmap(f))`` maps over two dims.

    Example::

        x = randn(8, 3)
        vmap(lambda v: (v * v).sum())(x)          # shape (8,): each row's squared norm
        vmap(lambda a, b: a @ b, in_dims=(0, None))(randn(8, 2, 3), randn(3, 4)).shape   # (8, 2, 4)
        vmap(lambda v: (v.sum(), v.new_ones(2)), out_dims=(0, None))(x)   # ((8,), a (2,) unbatched)
    """
    op = "vmap"
    if randomness not in _RANDOMNESS:
        raise ValueError(f"{op}: randomness must be one of {_RANDOMNESS}, got {randomness!r}.")
    if chunk_size is not None and (not isinstance(chunk_size, int) or isinstance(chunk_size, bool) or chunk_size < 1):
        raise ValueError(f"{op}: chunk_size must be a positive int or None, got {chunk_size!r}.")
    name = getattr(func, "__name__", repr(func))

    @functools.wraps(func)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if isinstance(in_dims, (tuple, list)):
            if len(in_dims) != len(args):
                raise ValueError(
                    f"{op}({name}): in_dims has {len(in_dims)} entries but the function was called with {len(args)} positional "
                    "argument(s); give one entry per positional argument (None for a shared one)."
                )
            specs = list(in_dims)
        elif in_dims is None or (isinstance(in_dims, (int, np.integer)) and not isinstance(in_dims, bool)):
            specs = [in_dims] * len(args)
        else:
            raise ValueError(f"{op}({name}): in_dims must be an int, None, or a tuple with one entry per argument, got {in_dims!r}.")
        flat, defs, dims = [], [], []
        sizes: list = []  # (arg index, leaf index, size): names are only built for an error message
        for i, (a, spec) in enumerate(zip(args, specs)):
            leaves, treedef = tree_flatten(a)
            if spec is None or type(spec) is int:
                ds = [spec] * len(leaves)
            else:
                ds = match_in_dims(spec, a, _arg_name(func, i), f"{op}({name})")
            for j, (leaf, d) in enumerate(zip(leaves, ds)):
                if d is None:
                    continue
                if not isinstance(leaf, (Tensor, np.ndarray)):
                    where = _where(a, j, func, i)
                    raise ValueError(f"{op}({name}): in_dims={d} for {where}, but it is {describe(leaf)}, not a tensor; use None for it.")
                nd = leaf.ndim
                if not -nd <= d < nd:
                    raise ValueError(
                        f"{op}({name}): in_dims={d} for {_where(a, j, func, i)}, which has shape {tuple(leaf.shape)} ({nd} dims): the "
                        f"batch dim must be in [{-nd}, {nd}). Use None for an argument without a batch dim."
                    )
                sizes.append((i, j, leaf.shape[d]))
            flat.append(leaves)
            defs.append(treedef)
            dims.append(ds)
        if not sizes:
            raise ValueError(f"{op}({name}): no argument is batched (in_dims={in_dims!r}); at least one must have a batch dim.")
        if len({n for _, _, n in sizes}) > 1:
            listing = ", ".join(f"{_where(args[i], j, func, i)}: {n}" for i, j, n in sizes)
            raise ValueError(f"{op}({name}): the batched arguments have different batch sizes ({listing}); they must all be equal.")
        n = sizes[0][2]
        if chunk_size is None or chunk_size >= n:
            return wrapped_one(flat, defs, dims, kwargs, n, True, None)
        # 'same' means one draw for all examples: each chunk replays the first one's generators.
        rng_states: dict | None = {} if randomness == "same" else None
        parts = []
        for a in range(0, n, chunk_size):
            b = min(a + chunk_size, n)
            sub = [[leaf if d is None else _take(leaf, d, a, b) for leaf, d in zip(leaves, ds)] for leaves, ds in zip(flat, dims)]
            if rng_states:
                B.restore_rng(rng_states)
            parts.append(wrapped_one(sub, defs, dims, kwargs, b - a, False, rng_states))
        leaves0, out_def = tree_flatten(parts[0])
        cols = [tree_flatten(p)[0] for p in parts]
        ods = _outmatch_in_dims(out_dims, parts[0], f"{op}({name})")
        # An out_dims=None output is not batched, so every chunk returned the same one.
        joined = [leaves0[j] if d is None else _place(_cat([c[j] for c in cols]), d, f"{op}({name})") for j, d in enumerate(ods)]
        return out_def.unflatten(joined)

    def wrapped_one(flat: list, defs: list, dims: list, kwargs: dict, n: int, move: bool, rng_states: dict | None) -> Any:
        level = B.new_level(n, randomness, name, rng_states)
        try:
            new_args = []
            for leaves, treedef, ds in zip(flat, defs, dims):
                vals = []
                for leaf, d in zip(leaves, ds):
                    if d is None:
                        vals.append(leaf)
                        continue
                    t = as_tensor(leaf)
                    d = d % t.ndim
                    if d != 0:
                        t = t.permute((d,) + tuple(k for k in range(t.ndim) if k != d))
                    vals.append(B.wrap(t, level))
                new_args.append(treedef.unflatten(vals))
            out = func(*new_args, **kwargs)
        finally:
            B.end_level(level)
        leaves, out_def = tree_flatten(out)
        ods = _outmatch_in_dims(out_dims, out, f"{op}({name})")
        res = []
        for j, (v, d) in enumerate(zip(leaves, ods)):
            batched = B.is_batched(v) and v.level == level
            if d is None:
                if batched:
                    raise ValueError(
                        f"{op}({name}): out_dims=None for {_out_name(out, j)}, but it is batched (per-example shape {tuple(v.shape)}): "
                        "it depends on the mapped inputs. Give it an int out_dims (where its batch dim goes), or return "
                        "something that does not depend on the batch."
                    )
                res.append(v)
                continue
            if batched:
                p = v.value
            elif isinstance(v, Tensor):
                p = v.reshape((1,) + tuple(v.shape)).expand((n,) + tuple(v.shape))
            else:
                raise TypeError(
                    f"{op}({name}): the function returned {describe(v)} at {_out_name(out, j)}; vmap outputs must be tensors, "
                    "or have out_dims=None to be returned as they are."
                )
            res.append(_place(p, d, f"{op}({name})") if move else p)
        return out_def.unflatten(res)

    return wrapped


def _where(arg: Any, j: int, func: Callable, i: int) -> str:
    """The name of leaf ``j`` of argument ``i`` for an error message, e.g. ``params['w']``."""
    return keystr(tree_flatten_with_path(arg)[0][j][0], _arg_name(func, i))


def _out_name(out: Any, j: int) -> str:
    """The name of output leaf ``j`` for an error message, e.g. ``output[1]``."""
    return keystr(tree_flatten_with_path(out)[0][j][0], "output")


def _place(p: Tensor, d: int, op: str) -> Tensor:
    """Move the batch dim of ``p`` from the front to ``out_dims`` entry ``d``."""
    nd = p.ndim
    if not -nd <= d < nd:
        raise ValueError(f"{op}: out_dims={d} is out of range for an output with {nd} dims (batch included).")
    d = d % nd
    if d == 0:
        return p
    order = list(range(1, nd))
    order.insert(d, 0)
    return p.permute(tuple(order))


def _cat(parts: list) -> Tensor:
    from .ops.functions import cat

    return cat(parts, 0)


def _take(leaf: Any, d: int, a: int, b: int) -> Any:
    idx = (slice(None),) * (d % leaf.ndim) + (slice(a, b),)
    return leaf[idx]
