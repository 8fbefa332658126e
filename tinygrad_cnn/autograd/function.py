"""``Function``: the base class of every primitive op, built-in or user-written.

A primitive op is one small class::

    class Exp(Function):
        @staticmethod
        def forward(ctx, x):                  # numpy arrays in, numpy array(s) out
            y = np.exp(x)
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):              # Tensors in, one Tensor (or None) per input out
            (y,) = ctx.saved_tensors
            return grad * y                   # written with Tensor ops: differentiable again

    y = Exp.apply(x)

``apply`` runs ``forward`` on the inputs' arrays and, when any input requires grad and grad
mode is on, records a :class:`Node` (``y.grad_fn``): the op, edges to its inputs' nodes, what
``forward`` saved, and weak references to the outputs. The backward engine
(:mod:`tinygrad_cnn.autograd.engine`) walks these nodes.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from . import anomaly
from .grad_mode import PER_THREAD, entered_twice, state

# Bound by tinygrad_cnn.tensor once the Tensor class exists (it imports this module first).
Tensor: Any = None
as_tensor: Any = None

_new_node = _new_tensor = object.__new__

# How many vmap calls are running (any thread). While 0, ``apply`` pays one global read for
# batching; otherwise inputs are checked for batched Tensors and those go to ``batched_apply``
# (bound by tinygrad_cnn.ops.batching when it is imported).
vmap_depth = 0
batched_apply: Any = None


def vmap_enter(delta: int) -> None:
    """Count a vmap call in (+1) or out (-1); only ``tinygrad_cnn.ops.batching`` calls this."""
    global vmap_depth
    vmap_depth += delta

# Creation order of recorded nodes: a node's consumers are always created after it, so the
# engine can run nodes in decreasing sequence number without counting dependencies first.
_sequence = itertools.count()

# Saved-value kinds. Inputs are kept as the Tensor itself (graph identity and version counter);
# outputs as their array plus index, rebuilt on demand so a node never holds its own outputs.
_INPUT, _OUTPUT, _CONST = 0, 1, 2


class SavedValue(NamedTuple):
    """One value an op saved for backward, as :meth:`Node.saved_values` reports it.

    ``kind`` is ``'input'`` (``value`` is the input Tensor), ``'output'`` (``value`` is the
    output's array, ``index`` which output) or ``'constant'`` (``value`` as saved).
    """

    kind: str
    value: Any
    index: int | None = None  # type: ignore[assignment]  # a field named like tuple.index: the public name


class OutputMeta(NamedTuple):
    """Shape and dtype of one output of a node, recorded when the op ran."""

    shape: tuple
    dtype: np.dtype


class Node:
    """The record of one op application (PyTorch's ``grad_fn``); also the ``ctx`` of forward/backward.

    Public attributes: ``needs_input_grad`` (one bool per input), ``saved_tensors``,
    ``saved_arrays``, ``next_functions``, ``name``; forward may set any other attribute to keep
    non-tensor parameters (``ctx.stride = 2``).

    Read-only views for tools (the gradient checker, the graph renderer): ``next_functions``,
    :meth:`saved_values`, ``output_meta`` (``output_shapes``, ``output_dtypes``),
    :meth:`output`, ``sequence_nr``, ``scope`` and ``released``. They are computed when read,
    so recording an op costs nothing extra.
    """

    # Defaults live on the class: most nodes never change them, and every op builds a node.
    _saved: list[Any] | None = None
    _seq = 0
    _released = False
    _on_release: tuple = ()
    _mark: tuple = ()
    _locked: tuple | list = ()
    _outputs: Sequence[weakref.ref] = ()
    _view_version = 0  # a saved output's version when saved: 0, or its base's for a view op
    _out_meta: Sequence[tuple[tuple[int, ...], np.dtype]] = ()
    needs_input_grad: tuple = ()
    next_edges: Sequence[Any] = ()
    creation_stack: str | None = None
    scope: tuple = ()  # the nn.Modules and FunctionScopes (composite functions) that recorded this node, outermost first
    input_tensors: tuple | None = None  # only under autograd.keep_inputs()
    # output index -> [{handle id: hook} from Tensor.register_hook, the retain_grad hook or None]
    hooks: dict | None = None

    def __init__(self, fn: type[Function], params: dict) -> None:
        self._fn = fn
        self.params = params

    if TYPE_CHECKING:  # forward and backward keep any non-tensor state as attributes (ctx.stride = 2)

        def __getattr__(self, name: str) -> Any: ...

        def __setattr__(self, name: str, value: Any) -> None: ...

    # ---- forward-side API -------------------------------------------------------------
    def save_for_backward(self, *values: Any) -> None:
        """Keep arrays for backward. Pass the forward's input/output arrays themselves (not copies)
        so backward gets them back as graph-connected Tensors; any other array is a constant."""
        self._saved = list(values)

    def on_release(self, fn: Any) -> None:
        """Call ``fn()`` once the saved values are freed (by backward without ``retain_graph``, or
        :meth:`release`), e.g. to return a buffer the forward kernel lent from its workspace. If
        backward never runs, ``fn`` is not called and the memory is freed with the node."""
        self._on_release = self._on_release + (fn,)

    def mark_non_differentiable(self, *outputs: Any) -> None:
        """Declare outputs (e.g. argmax indices) that carry no gradient."""
        self._mark = self._mark + tuple(id(o) for o in outputs)

    # ---- backward-side API ------------------------------------------------------------
    @property
    def name(self) -> str:
        """The op's name, e.g. ``'Mul'``."""
        return self._fn.__name__

    @property
    def op(self) -> type[Function]:
        """The Function class that produced this node."""
        return self._fn

    @property
    def saved_tensors(self) -> tuple:
        """The saved values as Tensors; inputs and outputs stay connected to the graph."""
        if self._released:
            self._check_saved()
        out = []
        for kind, a, b in self._saved or ():
            if kind == _INPUT:
                if (a if a._base is None else a._base)._version != b:
                    self._check_saved()
                out.append(a)
            elif kind == _OUTPUT:
                if self._output_version(a) != self._view_version:
                    self._check_saved()
                out.append(Tensor._make(b, self, a))
            else:
                out.append(Tensor._make(np.asarray(b), None, 0) if isinstance(b, (np.ndarray, np.generic)) else b)
        return tuple(out)

    @property
    def saved_arrays(self) -> tuple:
        """The saved values as numpy arrays (for ``@once_differentiable`` backwards)."""
        self._check_saved()
        return tuple(a.data if kind == _INPUT else b for kind, a, b in self._saved or ())

    @property
    def next_functions(self) -> tuple:
        """``(node_or_leaf_tensor, output_index)`` per input; ``(None, 0)`` where no grad flows."""
        return tuple(e if e is not None else (None, 0) for e in self.next_edges)

    @property
    def inputs(self) -> tuple:
        """The graph edges of the inputs (same as ``next_functions``)."""
        return self.next_functions

    @property
    def outputs(self) -> list:
        """The op's output Tensors that are still alive (held weakly)."""
        return [r() for r in self._outputs if r() is not None]

    @property
    def output_meta(self) -> tuple[OutputMeta, ...]:
        """Shape and dtype of each output, e.g. ``(OutputMeta(shape=(2, 3), dtype=dtype('float32')),)``."""
        return tuple(OutputMeta(s, d) for s, d in self._out_meta)

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        """The shape of each output."""
        return [s for s, _ in self._out_meta]

    @property
    def output_dtypes(self) -> list[np.dtype]:
        """The dtype of each output."""
        return [d for _, d in self._out_meta]

    def output(self, k: int = 0) -> Any:
        """Output ``k`` as a Tensor while it is alive, else ``None`` (outputs are held weakly)."""
        if k >= len(self._outputs):
            return None
        return self._outputs[k]()

    @property
    def sequence_nr(self) -> int:
        """Creation order of recorded nodes (PyTorch's ``_sequence_nr``): a node's consumers
        always have larger numbers, and backward runs nodes in decreasing order."""
        return self._seq

    @property
    def released(self) -> bool:
        """Whether backward (without ``retain_graph``) or :meth:`release` freed the saved values."""
        return self._released

    def saved_values(self) -> tuple[SavedValue, ...]:
        """What forward saved, one :class:`SavedValue` per ``save_for_backward`` argument (empty
        once released). Unlike ``saved_tensors`` this neither checks versions nor builds Tensors.

        Example: ``[(v.kind, v.index) for v in y.grad_fn.saved_values()]`` for ``y = x.exp()``
        is ``[('output', 0)]``.
        """
        out = []
        for kind, a, b in self._saved or ():
            if kind == _INPUT:
                out.append(SavedValue("input", a))
            elif kind == _OUTPUT:
                out.append(SavedValue("output", b, a))
            else:
                out.append(SavedValue("constant", b))
        return tuple(out)

    def _check_saved(self) -> None:
        if self._released:
            raise RuntimeError(
                f"{self.name}: trying to backward through the graph a second time, but its saved "
                "arrays were freed after the first backward. Pass retain_graph=True to the first "
                "backward() (or create_graph=True) if you need to backward twice."
            )
        for kind, t, version in self._saved or ():
            if kind == _OUTPUT and self._output_version(t) != self._view_version:
                raise RuntimeError(
                    f"{self.name}: output {t} of {self.name} (shape {version.shape}), which this op saved for "
                    f"backward, was modified in place (version {self._view_version} when saved, now "
                    f"{self._output_version(t)}), so its gradient would be wrong.{self._where()} Modify a clone "
                    "instead (y.detach().copy() or an out-of-place op), or run backward first."
                )
            if kind == _INPUT and _version_owner(t)._version != version:
                owner = _version_owner(t)
                label = f"'{owner.name}'" if owner.name else "a tensor"
                what = "" if owner is t else f" (through a view of shape {t.shape})"
                raise RuntimeError(
                    f"{self.name}: {label} of shape {owner.shape}{what} that this op saved for backward was "
                    f"modified in place (version {version} when saved, now {owner._version}), so its "
                    f"gradient would be wrong.{self._where()} Do not modify inputs in place between "
                    "forward and backward: use an out-of-place op, or run backward first."
                )

    def tensor_hooks(self, k: int) -> dict:
        """The hooks registered (``Tensor.register_hook``) on output k of this op; they run on its
        gradient before this op's backward."""
        return self._hook_entry(k)[0]

    def retain_hook(self, k: int, hook: Callable) -> None:
        """A hook on output k that runs after the ``register_hook`` ones (``Tensor.retain_grad``)."""
        self._hook_entry(k)[1] = hook

    def _hook_entry(self, k: int) -> list:
        if self.hooks is None:
            self.hooks = {}
        return self.hooks.setdefault(k, [{}, None])

    def _output_version(self, k: int) -> int:
        """The version of output k (its view base's for a view op); a dead output cannot have changed."""
        t = self._outputs[k]()
        return self._view_version if t is None else _version_owner(t)._version

    def _where(self) -> str:
        return f" The op was created at:\n{self.creation_stack}" if self.creation_stack else ""

    def release(self) -> None:
        """Free the saved arrays (backward without ``retain_graph`` does this)."""
        self._saved = None
        self._released = True
        self._unlock()
        calls, self._on_release = self._on_release, ()
        for fn in calls:
            fn()

    def _unlock(self) -> None:
        locked, self._locked = self._locked, ()
        _unlock_tensors(locked)

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


class Function:
    """Base class of primitive ops. Subclass it and write two static methods:

    - ``forward(ctx, *arrays, **params)``: numpy arrays in (one per positional input), a numpy
      array or a tuple of arrays out. Keyword arguments are non-tensor parameters.
    - ``backward(ctx, *grad_outputs)``: one Tensor per output in, one Tensor or ``None`` per
      positional input out. Written with Tensor ops it is itself differentiable. It reads the
      forward's parameters from ``ctx.params``, which holds those of the call and the defaults
      of ``forward`` for the ones the call left out.

    Call it with ``MyOp.apply(*inputs, **params)``. Inputs may be Tensors, arrays or scalars.

    Example::

        class Scale(Function):
            @staticmethod
            def forward(ctx, x, c=2.0):
                return x * c

            @staticmethod
            def backward(ctx, g):
                return g * ctx.params["c"]      # 2.0 when apply was called without c

        y = Scale.apply(tg.ones(3, requires_grad=True))   # y.grad_fn.params == {"c": 2.0}
    """

    # Binary elementwise ops set this so a shape error names both shapes and the rule.
    broadcasts = False
    # Ops whose output is a numpy view of their first input (reshape, permute, ...) set this: the
    # output then shares the input's version counter, so an in-place update of a parameter is
    # caught even when backward saved only a view of it (e.g. ``x @ w.T``).
    is_view = False
    # Ops whose backward returns, for each input, a new array made in that call (an op's output,
    # not a view, saved value or cached constant) or one of its incoming gradients unchanged set
    # this: the engine then stores such a new array as a leaf's .grad without copying it.
    new_gradients = False
    # ``forward``'s parameters that have defaults, as (name, position or -1 if keyword-only,
    # default); computed once per class so that ``ctx.params`` shows the defaults too.
    _forward_defaults: tuple = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._forward_defaults = _forward_defaults(cls.forward)

    @staticmethod
    def forward(ctx: Node, *args: Any, **params: Any) -> Any:
        """The op on numpy arrays: one array per positional input, keyword arguments for the
        non-tensor parameters; returns an array or a tuple of arrays. Subclasses define it."""
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Node, *grad_outputs: Any) -> Any:
        """The gradients of the inputs from those of the outputs: one Tensor per output in, one
        Tensor (or ``None``) per positional input out. Subclasses define it."""
        raise NotImplementedError

    @classmethod
    def apply(cls, *inputs: Any, **params: Any) -> Any:
        """Run ``forward`` on the inputs (Tensors, arrays or numbers) and, when an input requires
        grad and grad mode is on, record the node that ``backward`` will run. Returns a Tensor,
        or a tuple of Tensors for a forward that returns a tuple.

        Example: ``y = Exp.apply(x)``; ``Swish.apply(x, beta=1.5)``."""
        # The hot path of every op: kept lean (no imports, no wrappers for constants, a
        # single-output fast path). PyTorch does this part in C++; we count every attribute.
        if vmap_depth:
            for x in inputs:
                if getattr(x, "is_batched", False):
                    return batched_apply(cls, inputs, params)
        state = PER_THREAD.modes  # this thread's modes, each read once
        enabled, anomaly_mode = state.enabled, state.anomaly
        if not enabled and not anomaly_mode:
            return _apply_untracked(cls, inputs, params, state.ieee)
        tensors: Sequence[Any]
        arrays: Sequence[Any]
        edges: Sequence[Any]
        if len(inputs) == 1 and type(inputs[0]) is Tensor:  # most ops: one Tensor input, no lists to grow
            x = inputs[0]
            tensors, arrays = inputs, (x.data,)
            if x.grad_fn is not None:
                edges, needs, record = ((x.grad_fn, x._output_nr),), (True,), True
            elif x._requires_grad:
                edges, needs, record = ((x, 0),), (True,), True
            else:
                edges, needs, record = (None,), (False,), False
        else:
            tensors, arrays, edges, needs, record = _gather(inputs)
        if cls.broadcasts and arrays[0].dtype is not arrays[1].dtype and arrays[0].dtype != arrays[1].dtype:
            return _apply_promoted(cls, inputs, arrays, params)
        ctx = _new_node(Node)  # inline Node(cls, params): this runs for every op
        ctx._fn = cls
        ctx.params = _with_defaults(cls._forward_defaults, len(arrays), params) if cls._forward_defaults else params
        if record and enabled:
            ctx.needs_input_grad = needs
            ctx.next_edges = edges
            if anomaly_mode:
                ctx.creation_stack = anomaly.user_stack()
        else:
            record = False
        try:  # inline _forward: a call less per op
            out = state.ieee.run(cls.forward, ctx, *arrays, **params)
        except ValueError as e:
            _reraise_forward(cls, arrays, e)
        except RuntimeError as e:
            if not entered_twice(e):
                raise
            out = cls.forward(ctx, *arrays, **params)
        if type(out) is tuple:
            return _finish_multi(cls, ctx, record, tensors, arrays, out)
        raw = out
        if type(out) is not np.ndarray:
            out = np.asarray(out)  # numpy returns scalars for 0-d results
        dtype = out.dtype
        if record and (dtype.kind not in "fc" or ctx._mark):
            record = _differentiable(ctx, raw, out)
        result = _new_tensor(Tensor)  # inline Tensor._make
        result.data = out
        result._output_nr = 0
        if not record:
            result.grad_fn = None
            result._requires_grad = False
            if cls.is_view:
                _link_view(result, tensors[0], out)
        else:
            result.grad_fn = ctx
            result._requires_grad = True
            if cls.is_view:
                _link_view(result, tensors[0], out)
            ctx._seq = next(_sequence)
            ctx._outputs = (weakref.ref(result),)
            ctx._out_meta = ((out.shape, dtype),)
            if state.scope:
                ctx.scope = state.scope
            if state.keep_inputs:
                ctx.input_tensors = _input_tensors(tensors, arrays)
            if ctx._saved is not None:
                _resolve_saved(ctx, tensors, arrays, (out,), (raw,))
        if anomaly_mode:
            anomaly.check_forward(ctx, cls.__name__, [result])
        return result


def _forward_defaults(forward: Callable) -> tuple:
    """(name, position, default) of each parameter of ``forward(ctx, ...)`` that has a default;
    position is the index among the array inputs (after ``ctx``), -1 for a keyword-only one."""
    try:
        sig = inspect.signature(forward)
    except (TypeError, ValueError):  # not introspectable (a C function): nothing to fill in
        return ()
    out = []
    for i, p in enumerate(list(sig.parameters.values())[1:]):
        if p.default is p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out.append((p.name, -1 if p.kind is p.KEYWORD_ONLY else i, p.default))
    return tuple(out)


def _with_defaults(defaults: tuple, n_inputs: int, params: dict) -> dict:
    """``params`` plus the defaults of the forward parameters the call left out (those neither
    passed by keyword nor filled by a positional input), as ``forward`` sees them."""
    out = params  # copied only when a default is missing: built-in ops pass all their parameters
    for k, pos, v in defaults:
        if k not in params and not 0 <= pos < n_inputs:
            if out is params:
                out = dict(params)
            out[k] = v
    return out


def _reraise_forward(cls: type[Function], arrays: Sequence[Any], e: ValueError) -> None:
    """A broadcasting op's shape error, re-raised naming the op and both shapes."""
    if cls.broadcasts and len(arrays) == 2:
        _raise_broadcast(cls.__name__, arrays[0], arrays[1], e)
    raise e


def _gather(inputs: tuple) -> tuple:
    """(tensors, arrays, edges, needs_input_grad, record) of an op's inputs: Tensors give their
    array and graph edge; other inputs become constants (see _constant)."""
    tensors: list = []
    arrays: list = []
    edges: list = []
    needs: list = []
    record = False
    ref = None
    deferred = False
    for x in inputs:
        if type(x) is Tensor or isinstance(x, Tensor):
            tensors.append(x)
            arrays.append(x.data)
            if x.grad_fn is not None:
                edges.append((x.grad_fn, x._output_nr))
                needs.append(True)
                record = True
            elif x._requires_grad:
                edges.append((x, 0))
                needs.append(True)
                record = True
            else:
                edges.append(None)
                needs.append(False)
            if ref is None:
                ref = x
        else:
            tensors.append(None)
            edges.append(None)
            needs.append(False)
            if ref is None:
                arrays.append(x)
                deferred = True
            elif type(x) is float and ref.data.dtype.kind == "f":
                arrays.append(ref.data.dtype.type(x))
            else:
                arrays.append(_constant(x, ref))
    if deferred:  # a constant came before the first Tensor: convert it now that ref is known
        arrays = [_constant(a, ref) if t is None else a for t, a in zip(tensors, arrays)]
    return tensors, arrays, edges, tuple(needs), record


def _apply_untracked(cls: type[Function], inputs: tuple, params: dict, ieee: Any) -> Any:
    """``apply`` with grad mode off (backward passes, evaluation): nothing to record. ``ieee`` is
    the thread's context the forward runs in (grad_mode.ieee_context)."""
    if len(inputs) == 1 and type(inputs[0]) is Tensor:
        arrays: Any = (inputs[0].data,)
    else:
        arrays = []
        ref = None
        constants = False
        for x in inputs:
            if type(x) is Tensor or isinstance(x, Tensor):
                arrays.append(x.data)
                if ref is None:
                    ref = x
            else:
                arrays.append(x)
                constants = True
        if constants:
            arrays = [a if isinstance(x, Tensor) else _constant(a, ref) for x, a in zip(inputs, arrays)]
    if cls.broadcasts and arrays[0].dtype is not arrays[1].dtype and arrays[0].dtype != arrays[1].dtype:
        return _apply_promoted(cls, inputs, arrays, params)
    ctx = _new_node(Node)
    ctx._fn = cls
    ctx.params = _with_defaults(cls._forward_defaults, len(arrays), params) if cls._forward_defaults else params
    try:  # as in apply, inline
        out = ieee.run(cls.forward, ctx, *arrays, **params)
    except ValueError as e:
        _reraise_forward(cls, arrays, e)
    except RuntimeError as e:
        if not entered_twice(e):
            raise
        out = cls.forward(ctx, *arrays, **params)
    if type(out) is tuple:
        return tuple(Tensor._make(o if type(o) is np.ndarray else np.asarray(o), None, 0) for o in out)
    result = _new_tensor(Tensor)  # inline Tensor._make
    result.data = out if type(out) is np.ndarray else np.asarray(out)
    result.grad_fn = None
    result._output_nr = 0
    result._requires_grad = False
    if cls.is_view and isinstance(inputs[0], Tensor):
        _link_view(result, inputs[0], result.data)
    return result


def _finish_multi(cls: type[Function], ctx: Node, record: bool, tensors: Sequence[Any], arrays: Sequence[Any], out: tuple) -> tuple:
    outs = tuple(o if type(o) is np.ndarray else np.asarray(o) for o in out)
    if not record:
        results = [Tensor._make(o, None, i) for i, o in enumerate(outs)]
    else:
        marked = ctx._mark
        results = [
            Tensor._make(o, ctx if id(o) not in marked and id(r) not in marked and o.dtype.kind in "fc" else None, i)
            for i, (o, r) in enumerate(zip(outs, out))
        ]
        ctx._seq = next(_sequence)
        ctx._outputs = [weakref.ref(t) for t in results]
        ctx._out_meta = [(o.shape, o.dtype) for o in outs]
        modes = state()
        ctx.scope = modes.scope
        if modes.keep_inputs:
            ctx.input_tensors = _input_tensors(tensors, arrays)
        if ctx._saved is not None:
            _resolve_saved(ctx, tensors, arrays, outs, out)
    if state().anomaly:
        anomaly.check_forward(ctx, cls.__name__, results)
    return tuple(results)


def _differentiable(ctx: Node, raw: Any, out: np.ndarray) -> bool:
    """Whether a single output carries gradient: not when it is of an integer or bool dtype (as in
    PyTorch, only floating-point tensors require grad) or forward marked it non-differentiable."""
    return out.dtype.kind in "fc" and id(raw) not in ctx._mark and id(out) not in ctx._mark


# PyTorch's type categories: a higher category wins whatever the sizes (float32 * int64 -> float32).
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2, "c": 3}


def result_type(a: Any, b: Any) -> np.dtype:
    """The dtype of a binary elementwise op on arrays ``a`` and ``b`` by PyTorch's promotion rules:
    the higher category (bool < integer < floating < complex) wins; within a category sizes promote;
    a 0-d operand (a scalar) only decides the dtype when its category is higher than the other's.

    >>> result_type(np.zeros(2, np.float32), np.zeros(2, np.int64))
    dtype('float32')
    >>> result_type(np.zeros(2, np.float32), np.float64(1.0))
    dtype('float32')
    """
    ca, cb = _CATEGORY[a.dtype.kind], _CATEGORY[b.dtype.kind]
    if (a.ndim > 0) == (b.ndim > 0):
        return np.promote_types(a.dtype, b.dtype) if ca == cb else (a.dtype if ca > cb else b.dtype)
    dim, zero = (a, b) if a.ndim > 0 else (b, a)
    return zero.dtype if _CATEGORY[zero.dtype.kind] > _CATEGORY[dim.dtype.kind] else dim.dtype


def _apply_promoted(cls: type[Function], inputs: tuple, arrays: Sequence[Any], params: dict) -> Any:
    """A binary op on operands of different dtypes: cast each to the promoted dtype (a recorded,
    differentiable cast for a Tensor), then apply the op."""
    dtype = result_type(arrays[0], arrays[1])
    cast = [
        x if a.dtype == dtype else (x.astype(dtype) if isinstance(x, Tensor) else np.asarray(a, dtype=dtype))
        for x, a in zip(inputs, arrays)
    ]
    return cls.apply(*cast, **params)


def _link_view(result: Any, src: Any, out: np.ndarray) -> None:
    if src is not None and out.base is not None and np.may_share_memory(out, src.data):
        result._base = src if src._base is None else src._base


def _version_owner(t: Any) -> Any:
    return t if t._base is None else t._base


def _input_tensors(tensors: Sequence[Any], arrays: Sequence[Any]) -> tuple:
    return tuple(t if t is not None else Tensor._make(np.asarray(a), None, 0) for t, a in zip(tensors, arrays))


def _constant(x: Any, ref: Any) -> Any:
    """A non-Tensor input as an array. A Python number never widens a tensor's dtype: it takes the
    first Tensor input's dtype when that is floating (``float32_tensor * 2.0`` stays float32) or an
    integer type and the number an int; otherwise float32 for a float and int64 for an int, as PyTorch."""
    if type(x) is float or type(x) is int:
        if ref is not None:
            dt = ref.data.dtype
            if dt.kind in "fc" or (dt.kind in "iu" and type(x) is int):
                return dt.type(x)
            if dt.kind == "b" and type(x) is int:
                return np.int64(x)
        return np.float32(x)
    if isinstance(x, np.ndarray):
        return x
    return as_tensor(x).data


def _unlock_tensors(locked: Any) -> None:
    for t in locked:
        t._saved_count -= 1
        if t._saved_count == 0:
            try:
                t.data.flags.writeable = True
            except ValueError:  # a view of a read-only base: it was never ours to unlock
                pass
    if isinstance(locked, list):
        locked.clear()  # the finalizer below may run later: leave it nothing to do twice


def _resolve_saved(ctx: Node, tensors: Sequence[Any], arrays: Sequence[Any], outs: tuple, raw: tuple) -> None:
    """Classify each saved value as an input (kept as its Tensor), an output (array + index) or a
    constant. ``raw`` are the outputs as forward returned them (a numpy scalar for a 0-d result)."""
    saved: list[tuple[int, Any, Any]] = []
    for v in ctx._saved:  # type: ignore[union-attr]
        for i, a in enumerate(arrays):
            if v is a:
                t = tensors[i]
                if t is None:
                    saved.append((_CONST, None, v))
                    break
                owner = t if t._base is None else t._base
                saved.append((_INPUT, t, owner._version))
                if owner.grad_fn is None:
                    # A leaf (parameter, user input; or the leaf a saved view looks into) is
                    # read-only while saved: a raw ``t.data[...] = v`` fails at once instead of
                    # silently corrupting this op's gradient; in-place methods (optimizers) bump
                    # the version counter, checked in backward.
                    if owner._saved_count == 0:
                        owner.data.flags.writeable = False
                    owner._saved_count += 1
                    if not ctx._locked:
                        # Unlock when the node is released or, if backward never runs, freed.
                        # (A finalizer on these few nodes, not __del__ on every node.)
                        ctx._locked = []
                        weakref.finalize(ctx, _unlock_tensors, ctx._locked)
                    ctx._locked.append(owner)  # type: ignore[union-attr]
                break
        else:
            for j, o in enumerate(outs):
                if v is o or v is raw[j]:
                    saved.append((_OUTPUT, j, o))
                    ctx._view_version = ctx._output_version(j)
                    break
            else:
                saved.append((_CONST, None, v))
    ctx._saved = saved


def _raise_broadcast(op: str, a: np.ndarray, b: np.ndarray, err: Exception) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(
            f"{op.lower()}: shapes {a.shape} and {b.shape} cannot be broadcast together: "
            "aligned from the right, each pair of dimensions must be equal or one of them 1. "
            "Reshape or unsqueeze one operand."
        ) from None
    raise err


def once_differentiable(backward: Callable) -> Callable:
    """Decorate a ``backward`` written in raw numpy.

    It then receives numpy gradients (and should read ``ctx.saved_arrays``) and returns numpy
    arrays. Its results are wrapped in Tensors; differentiating through them again (a second
    order derivative) raises an error naming the op.

    Example::

        class Cube(Function):
            @staticmethod
            def forward(ctx, x):
                ctx.save_for_backward(x)
                return x ** 3

            @staticmethod
            @once_differentiable
            def backward(ctx, g):
                (x,) = ctx.saved_arrays
                return 3 * x ** 2 * g
    """

    @functools.wraps(backward)
    def wrapper(ctx: Node, *grads: Any) -> Any:
        # Everything the result depends on: a further derivative must reach the error node.
        sources = [g for g in grads if isinstance(g, Tensor) and g.requires_grad]
        if state().enabled:
            sources += [t for t in ctx.saved_tensors if isinstance(t, Tensor) and t.requires_grad]
        res = backward(ctx, *[g.data if isinstance(g, Tensor) else g for g in grads])
        single = not isinstance(res, tuple)
        wrapped = []
        for r in (res,) if single else res:
            t = None if r is None else Tensor._make(np.asarray(r), None, 0)
            if t is not None and sources:
                t = _OnceDifferentiableError.apply(t, *sources, op=ctx.name)
            wrapped.append(t)
        return wrapped[0] if single else tuple(wrapped)

    return wrapper


class _OnceDifferentiableError(Function):
    """Identity on its first input whose backward explains that the op's backward was numpy-only."""

    @staticmethod
    def forward(ctx: Node, x: np.ndarray, *sources: np.ndarray, op: str) -> np.ndarray:
        ctx.op_name = op
        return x

    @staticmethod
    def vmap(info: Any, x: Any, *sources: Any, op: str) -> Any:
        # The identity on the whole batch; an unbatched x is broadcast so the result carries B.
        if not info.batched[0]:
            x = x.reshape((1,) + tuple(x.shape)).expand((info.batch_size,) + tuple(x.shape))
        return _OnceDifferentiableError.apply(x, *sources, op=op)

    @staticmethod
    def backward(ctx: Node, grad: Any) -> Any:
        raise RuntimeError(
            f"{ctx.op_name}: its backward is decorated with @once_differentiable (written in raw "
            "numpy), so it cannot be differentiated a second time. Rewrite that backward with "
            "Tensor ops to get higher-order gradients."
        )
