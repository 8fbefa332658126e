"""Stage 1 of drawing a graph: collect what the picture shows.

Which nodes (the shared :func:`tinygrad_cnn.autograd.graph.walk`), which outputs, which tensors
to highlight, which module call recorded each node, what the modules and parameters are called,
and the values a node can still give. Everything here reads the graph through Node's public API
(``scope``, ``sequence_nr``, ``output(k)``, ``saved_values()``, ``next_edges``); nothing is drawn.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd.function import Node
from ..autograd.grad_mode import FunctionScope
from ..autograd.graph import walk
from ..tensor import Tensor

__all__ = [
    "Call",
    "Names",
    "collect",
    "flatten_outputs",
    "highlight_ids",
    "module_calls",
    "output_array",
    "produced_tensors",
    "root_modules",
    "saved_input_index",
]


def flatten_outputs(outputs: tuple) -> list:
    """The Tensors and Nodes in ``outputs`` (nested lists, tuples and dicts allowed), each once.

    Example::

        flatten_outputs((loss, {"logits": y}))      # [loss, y]
    """
    flat: list = []
    stack = list(reversed(outputs))
    while stack:
        o = stack.pop()
        if isinstance(o, (Tensor, Node)):
            flat.append(o)
        elif isinstance(o, dict):
            stack.extend(reversed(list(o.values())))
        elif isinstance(o, (list, tuple)):
            stack.extend(reversed(o))
        else:
            raise TypeError(
                f"to_dot: outputs must be Tensors or Nodes (or lists/tuples/dicts of them), got {type(o).__name__}. "
                "Pass the tensors whose graph you want drawn, e.g. to_dot(loss) or to_dot(model(x))."
            )
    if not flat:
        raise ValueError("to_dot: no outputs given; pass the tensor(s) whose graph you want drawn, e.g. to_dot(loss).")
    seen: set[int] = set()
    return [t for t in flat if not (id(t) in seen or seen.add(id(t)))]  # type: ignore[func-returns-value]


def collect(outputs: list) -> tuple[list[Node], list[Tensor]]:
    """The nodes behind ``outputs`` in creation order, and the outputs that get an output box.

    A Node among the outputs (e.g. a ``grad_fn`` from a gradient-check report) draws the graph
    below it without an output box, so only Tensors are returned as outputs.

    Example::

        nodes, outs = collect(flatten_outputs((loss,)))
    """
    return walk(outputs), [o for o in outputs if isinstance(o, Tensor)]


def root_modules(nodes: list[Node]) -> list:
    """The outermost modules whose forward recorded ``nodes``, in order of first appearance.

    Example::

        root_modules(walk(model(x)))                 # [model]
    """
    roots: list = []
    seen: set[int] = set()
    for n in nodes:
        # the first module on the scope: a function scope (cross_entropy, a user's own) may come first
        m = next((m for m in n.scope if not isinstance(m, FunctionScope)), None)
        if m is not None and id(m) not in seen:
            seen.add(id(m))
            roots.append(m)
    return roots


def highlight_ids(highlight: Any) -> set[int]:
    """The ids of the Tensors and Nodes to draw highlighted.

    ``highlight`` is a Tensor, a Node, an iterable of them, or an object with ``.failing_nodes``
    (a gradient-check result); a Tensor also highlights its ``grad_fn``.

    Example::

        highlight_ids(check_graph(loss))             # the failing nodes
    """
    out: set[int] = set()
    if highlight is None:
        return out
    stack = [highlight]
    while stack:
        h = stack.pop()
        if isinstance(h, Tensor):
            out.add(id(h))
            if h.grad_fn is not None:
                out.add(id(h.grad_fn))
        elif isinstance(h, Node):
            out.add(id(h))
        elif hasattr(h, "failing_nodes"):
            stack.append(list(h.failing_nodes or ()))
        elif isinstance(h, (list, tuple, set, frozenset)):
            stack.extend(h)
        elif isinstance(h, Iterable) and not isinstance(h, (str, bytes)):
            stack.extend(list(h))
        else:
            raise TypeError(
                f"to_dot: highlight must be Nodes, Tensors, an iterable of them, or an object with a "
                f".failing_nodes attribute (a gradient-check result); got {type(h).__name__}."
            )
    return out


class Call:
    """One call of a module's forward, or of a composite function (``module`` is then a
    :class:`~tinygrad_cnn.autograd.FunctionScope`): a module reused (``self.pool`` twice) gets one
    cluster per call."""

    __slots__ = ("module", "index", "ncalls")

    def __init__(self, module: Any, index: int) -> None:
        self.module = module
        self.index = index
        self.ncalls = 1

    @property
    def is_function(self) -> bool:
        """Whether this is a call of a composite function (``linear``, ``cross_entropy``) rather than a module."""
        return isinstance(self.module, FunctionScope)

    def suffix(self) -> str:
        """``' (call 2 of 3)'`` for a module called more than once, else ``''``."""
        return f" (call {self.index + 1} of {self.ncalls})" if self.ncalls > 1 else ""


def module_calls(nodes: list[Node]) -> dict[Node, tuple]:
    """Each node's scope as a tuple of :class:`Call`.

    Nodes are visited in creation order; a module's call goes on while consecutive nodes keep it
    on their scope. Two nodes recorded directly in the same call share one scope tuple object
    (module_scope makes one per call), which also separates back-to-back calls of a leaf module.

    Example::

        calls = module_calls(walk(model(x)))
        [c.module for c in calls[node]]              # [model, model.conv1]
    """
    out: dict[Node, tuple] = {}
    counts: dict[int, list] = {}
    prev: tuple = ()
    prev_scope: tuple | None = None
    for n in sorted(nodes, key=lambda n: n.sequence_nr):
        sc = n.scope
        chain: list[Call] = []
        for d, m in enumerate(sc):
            same = d < len(prev) and prev[d].module is m and (d == 0 or chain[d - 1] is prev[d - 1])
            if same and d == len(sc) - 1 and prev_scope is not None and len(prev_scope) == len(sc) and prev_scope is not sc:
                same = False
            if same:
                chain.append(prev[d])
            else:
                calls = counts.setdefault(id(m), [])
                c = Call(m, len(calls))
                calls.append(c)
                chain.append(c)
        out[n] = prev = tuple(chain)
        prev_scope = sc
    for calls in counts.values():
        for c in calls:
            c.ncalls = len(calls)
    return out


def _named(obj: Any, method: str) -> list:
    fn = getattr(obj, method, None)
    if fn is None:
        return []
    try:
        return list(fn())
    except TypeError:
        return []


class Names:
    """Module paths and parameter names, from the outermost modules seen in the node scopes.

    ``extra`` is the ``model`` argument of ``to_dot``: another Module whose names win, or a dict
    ``{name: tensor}``.

    Example::

        names = Names([model], None)
        names.param[id(model.conv1.weight)]          # 'conv1.weight'
    """

    def __init__(self, roots: list, extra: Any) -> None:
        self.param: dict[int, str] = {}
        self.owner: dict[int, Any] = {}  # id(param) -> module holding it
        self.path: dict[int, str] = {}
        self.nparams: dict[int, int] = {}
        mods = list(roots)
        if extra is not None and not isinstance(extra, dict):
            mods.insert(0, extra)
        prefix_needed = len({id(m) for m in mods}) > 1
        seen: set[int] = set()
        for m in mods:
            if id(m) in seen:
                continue
            seen.add(id(m))
            pre = type(m).__name__.lower() + "." if prefix_needed and m is not extra else ""
            by_path = {}
            for p, sub in _named(m, "named_modules"):
                self.path.setdefault(id(sub), pre + p if p else pre.rstrip("."))
                by_path[p] = sub
            self.path.setdefault(id(m), pre.rstrip("."))
            by_path.setdefault("", m)
            for name, t in _named(m, "named_parameters"):
                self.param.setdefault(id(t), pre + name)
                mod_path = name.rsplit(".", 1)[0] if "." in name else ""
                if mod_path in by_path:
                    self.owner.setdefault(id(t), by_path[mod_path])
        if isinstance(extra, dict):
            for name, t in extra.items():
                self.param[id(t)] = str(name)

    def module_params(self, m: Any) -> int:
        """How many parameter values module ``m`` holds (its submodules included); 0 for a function scope."""
        if isinstance(m, FunctionScope):
            return 0
        if id(m) not in self.nparams:
            self.nparams[id(m)] = int(sum(int(np.prod(t.shape)) for _, t in _named(m, "named_parameters")))
        return self.nparams[id(m)]

    def module_label(self, m: Any) -> tuple[str, str, int]:
        """``(path, class name, parameter count)`` of module ``m``, e.g. ``('conv1', 'Conv2d', 156)``;
        ``('', 'linear', 0)`` for a function scope."""
        if isinstance(m, FunctionScope):
            return "", m.name, 0
        return self.path.get(id(m), ""), type(m).__name__, self.module_params(m)


def produced_tensors(nodes: list[Node]) -> dict[tuple, Tensor]:
    """``(node, k) -> Tensor`` for the outputs that later nodes kept as inputs or saved.

    Outputs are held weakly by their node, so this finds the values of intermediates that are
    otherwise gone (see :func:`output_array`).

    Example::

        produced = produced_tensors(walk(loss))
    """
    produced: dict[tuple, Tensor] = {}
    for n in nodes:
        for t in (n.input_tensors or ()) + tuple(v.value for v in n.saved_values() if v.kind == "input"):
            if isinstance(t, Tensor) and t.grad_fn is not None:
                produced.setdefault((t.grad_fn, t.output_nr), t)
    return produced


def output_array(n: Node, k: int, produced: dict) -> np.ndarray | None:
    """The value of node ``n``'s output ``k``, or ``None`` when nothing holds it any more.

    Example::

        output_array(y.grad_fn, 0, {})               # y.data while y is alive
    """
    t = n.output(k)
    if t is not None:
        return t.data
    for v in n.saved_values():
        if v.kind == "output" and v.index == k:
            return v.value
    t = produced.get((n, k))
    return None if t is None else t.data


def _is_edge_of(e: tuple, t: Tensor) -> bool:
    return e[0] is t or (t.grad_fn is not None and e[0] is t.grad_fn and e[1] == t.output_nr)


def saved_input_index(n: Node, a: Tensor, taken: set[int]) -> int | None:
    """Which input of ``n`` the saved tensor ``a`` is, skipping the indices in ``taken``.

    ``x * x`` saves the same tensor twice; passing the indices already used names it ``a``, then ``b``.
    The found index is added to ``taken``.

    Example::

        saved_input_index(y.grad_fn, x, set())       # 0 for y = x * w
    """
    j = next((j for j, e in enumerate(n.next_edges) if j not in taken and e is not None and _is_edge_of(e, a)), None)
    if j is None and n.input_tensors is not None:
        j = next((j for j, t in enumerate(n.input_tensors) if j not in taken and t is a), None)
    if j is not None:
        taken.add(j)
    return j
