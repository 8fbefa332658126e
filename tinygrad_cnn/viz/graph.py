"""Draw the recorded computation graph with Graphviz: forward and backward views, module clusters,
folding, values and highlights.

``to_dot`` only builds DOT source (the ``graphviz`` Python package, no programs needed);
``render`` and displaying a graph in Jupyter run the Graphviz ``dot`` program.

How the picture is built (each step a plain pass over lists, never recursion, so a graph of any
depth works):

1. list the nodes reachable from the outputs in creation order
   (:func:`tinygrad_cnn.autograd.graph.walk`, shared with the gradient checker);
2. make one *element* per op, per leaf tensor, per output (and per named intermediate tensor or
   non-scalar constant input when known), each tagged with the modules whose forward recorded it;
3. fold modules deeper than ``depth`` into single elements, then fold runs of identical
   consecutive blocks into one drawn with a count;
4. emit DOT, nesting elements in one cluster per module.
"""
from __future__ import annotations

import functools
import html
import inspect
import os
import pathlib
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import graphviz
import numpy as np

from ..autograd.function import Node
from ..autograd.grad_mode import keep_inputs, no_grad
from ..autograd.graph import walk
from ..tensor import Tensor

__all__ = ["Graph", "GraphvizNotFoundError", "draw_model", "render", "to_dot"]

FONT = "Helvetica,Arial,sans-serif"
# kind -> (fill, border, legend text)
STYLE = {
    "op": ("#dbe8fb", "#4a6fa5", "op (forward) / gradient function (backward)"),
    "param": ("#d6f0d2", "#3f8f3f", "parameter (named by module path)"),
    "leaf": ("#cdecef", "#2f8590", "leaf tensor that requires grad"),
    "input": ("#fff3c4", "#b08f1e", "input / constant (no grad)"),
    "tensor": ("#f3f3f3", "#888888", "named intermediate tensor"),
    "output": ("#fde0c5", "#c0661a", "output"),
    "module": ("#eadcf8", "#7b4fb0", "folded module (in -> out shapes)"),
}
HIGHLIGHT = ("#ffd0d0", "#d00000")
BAD = "#d00000"
CLUSTER_FILLS = ("#f7f8fa", "#eef2f8", "#e4ebf5", "#dae4f2")
SIZE_SMALL = "9"


class GraphvizNotFoundError(RuntimeError):
    """The Graphviz ``dot`` program is not installed (DOT source still works without it)."""


INSTALL_HINT = (
    "The Graphviz program 'dot' was not found on PATH; it is needed to render graphs to SVG/PNG/PDF "
    "(to_dot() and Graph.source work without it). Install Graphviz: "
    "`apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS) or "
    "`conda install graphviz` (conda)."
)


class Graph(graphviz.Digraph):
    """A ``graphviz.Digraph`` with the picture's bookkeeping.

    ``node_id(obj)`` gives the DOT node name drawn for a Tensor or Node (or ``None`` when it was
    folded away). In Jupyter it displays as SVG; without the ``dot`` program it shows its DOT
    source and how to install Graphviz instead of raising.
    """

    ids: dict[int, str]

    def node_id(self, obj: Any) -> str | None:
        """The DOT name of the element drawn for ``obj`` (a Tensor, or a Node / ``grad_fn``)."""
        ids = getattr(self, "ids", {})
        if isinstance(obj, Tensor) and obj.grad_fn is not None and id(obj) not in ids:
            obj = obj.grad_fn
        return ids.get(id(obj))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict:
        if shutil.which("dot") is None:
            return {"text/plain": f"{INSTALL_HINT}\n\n{self.source}"}
        return super()._repr_mimebundle_(include, exclude, **kwargs)


# ---------------------------------------------------------------------------------------------
# Small formatting helpers


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


@functools.lru_cache(maxsize=4096)
def _shape(shape: tuple) -> str:
    return str(tuple(int(d) for d in shape))  # Python's own spelling: (), (3,), (2, 3)


@functools.lru_cache(maxsize=64)
def _dtype(d: np.dtype) -> str:
    return str(d)


def _num(v: float) -> str:
    return f"{v:.3g}"


def _fmt_value(v: Any) -> str:
    """Short text for an op parameter (``stride=(2, 2)`` -> ``2``)."""
    if isinstance(v, slice):
        parts = ["" if p is None else str(p) for p in (v.start, v.stop)]
        return ":".join(parts) + ("" if v.step is None else f":{v.step}")
    if v is Ellipsis:
        return "..."
    if isinstance(v, np.ndarray):
        return f"array{_shape(v.shape)}" if v.size > 4 else np.array2string(v, separator=",")
    if isinstance(v, np.dtype) or isinstance(v, type):
        return getattr(v, "__name__", str(v))
    if isinstance(v, (tuple, list)):
        if v and all(isinstance(x, (int, np.integer)) and not isinstance(x, bool) for x in v) and len(set(v)) == 1 and len(v) <= 3:
            return str(int(v[0]))
        items = [_fmt_value(x) for x in v[:6]]
        s = ", ".join(items) + (", ..." if len(v) > 6 else "")
        return f"[{s}]" if isinstance(v, list) else f"({s})"
    if isinstance(v, float):
        return _num(v)
    s = str(v)
    return s if len(s) <= 28 else s[:25] + "..."


def _param_items(n: Node) -> list[tuple[str, Any]]:
    """The op's keyword parameters worth showing: None/False (axis=None, keepdims=False) are left
    out, NamedTuples (a pooling window) show their fields, and an ``out`` grid equal to the output's
    spatial shape (shown anyway) is dropped."""
    if not n.params:
        return []
    items: list[tuple[str, Any]] = []
    for k, v in n.params.items():
        if v is None or v is False or (isinstance(v, np.ndarray) and v.size > 4):  # big arrays: internal state
            continue
        if isinstance(v, tuple) and hasattr(v, "_fields"):
            items.extend((f, getattr(v, f)) for f in v._fields)
        else:
            items.append((k, v))
    hw = tuple(n.output_shapes[0][-2:]) if n.output_shapes else None

    def is_out_grid(k: str, v: Any) -> bool:
        try:
            return k == "out" and tuple(int(x) for x in v) == hw
        except (TypeError, ValueError):
            return False

    return [(k, v) for k, v in items if not is_out_grid(k, v)]


_ARGNAMES: dict[type, tuple[list[str], str | None]] = {}


def _arg_name(op: type, i: int) -> str:
    """The name of forward's i-th positional input (``x``, ``weight``, ``xs[2]``)."""
    if op not in _ARGNAMES:
        names: list[str] = []
        star = None
        try:
            ps = list(inspect.signature(op.forward).parameters.values())[1:]
            for p in ps:
                if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
                    names.append(p.name)
                elif p.kind == p.VAR_POSITIONAL:
                    star = p.name
        except (TypeError, ValueError):
            pass
        _ARGNAMES[op] = (names, star)
    names, star = _ARGNAMES[op]
    if i < len(names):
        return names[i]
    return f"{star}[{i - len(names)}]" if star else f"input{i}"


def _stats(data: np.ndarray) -> tuple[str, bool]:
    """``'min .. max .. mean ..'`` and whether NaN/Inf are present."""
    a = np.asarray(data)
    if a.size == 0:
        return "empty", False
    if a.dtype.kind not in "fciub":
        return str(a.dtype), False
    if a.dtype.kind in "fc":
        finite = np.isfinite(a)
        n_bad = int(a.size - np.count_nonzero(finite))
        if n_bad:
            n_nan = int(np.count_nonzero(np.isnan(a)))
            good = a[finite]
            parts = []
            if n_nan:
                parts.append(f"NaN x{n_nan}")
            if n_bad - n_nan:
                parts.append(f"Inf x{n_bad - n_nan}")
            rng = f"  min {_num(good.min())} max {_num(good.max())}" if good.size else ""
            return " ".join(parts) + rng, True
        a64 = a.real.astype(np.float64, copy=False)
    else:
        a64 = a.astype(np.float64)
    return f"min {_num(a64.min())}  max {_num(a64.max())}  mean {_num(a64.mean())}", False


def _grad_line(t: Tensor) -> tuple[str, bool] | None:
    g = getattr(t, "grad", None)
    if g is None:
        return None
    a = np.asarray(g.data)
    bad = a.dtype.kind in "fc" and not bool(np.isfinite(a).all())
    norm = float(np.sqrt(np.sum(np.abs(a.astype(np.float64)) ** 2)))
    return f"|grad| {_num(norm)}" + ("  (NaN/Inf!)" if bad else ""), bad


# ---------------------------------------------------------------------------------------------
# The intermediate picture


@dataclass(eq=False)
class _Elem:
    key: Any
    kind: str
    scope: tuple
    order: float
    head: str
    attrs: str = ""
    lines: list = field(default_factory=list)  # (text, colour or None)
    objs: set = field(default_factory=set)  # ids of Tensors/Nodes drawn by this element
    bad: bool = False
    highlighted: bool = False
    sig: tuple = ()
    dot: str = ""
    members: list = field(default_factory=list)  # folded module: the elements it replaced
    count: int = 1  # folded run of identical blocks: how many
    named: bool = True  # tensors: has a user-visible name (else a placeholder such as 'constant')
    owner: Any = None  # parameters: the module holding them
    module: Any = None  # folded module: the module, its call, class name and parameter count
    call: Any = None
    cls: str = ""
    npar: int = 0
    dtypes: set = field(default_factory=set)  # ops: dtypes of the differentiable outputs

    def add_value_lines(self, t: Tensor) -> None:
        """The tensor's value statistics and, when it has one, its gradient's; NaN/Inf in either
        mark the element bad."""
        for line in (_stats(t.data), _grad_line(t)):
            if line is not None:
                self.lines.append((line[0], BAD if line[1] else None))
                self.bad |= line[1]


@dataclass(eq=False)
class _Edge:
    src: Any
    dst: Any
    label: str
    shape: tuple | None


def _flatten_outputs(outputs: tuple) -> list:
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


class _Call:
    """One call of a module's forward: a module reused (``self.pool`` twice) gets one cluster per call."""

    __slots__ = ("module", "index", "ncalls")

    def __init__(self, module: Any, index: int) -> None:
        self.module = module
        self.index = index
        self.ncalls = 1


def _module_calls(nodes: list[Node]) -> dict[Node, tuple]:
    """Each node's scope as a tuple of :class:`_Call`.

    Nodes are visited in creation order; a module's call goes on while consecutive nodes keep it
    on their scope. Two nodes recorded directly in the same call share one scope tuple object
    (module_scope makes one per call), which also separates back-to-back calls of a leaf module.
    """
    out: dict[Node, tuple] = {}
    counts: dict[int, list] = {}
    prev: tuple = ()
    prev_scope: tuple | None = None
    for n in sorted(nodes, key=lambda n: n.sequence_nr):
        sc = n.scope
        chain: list[_Call] = []
        for d, m in enumerate(sc):
            same = d < len(prev) and prev[d].module is m and (d == 0 or chain[d - 1] is prev[d - 1])
            if same and d == len(sc) - 1 and prev_scope is not None and len(prev_scope) == len(sc) and prev_scope is not sc:
                same = False
            if same:
                chain.append(prev[d])
            else:
                calls = counts.setdefault(id(m), [])
                c = _Call(m, len(calls))
                calls.append(c)
                chain.append(c)
        out[n] = prev = tuple(chain)
        prev_scope = sc
    for calls in counts.values():
        for c in calls:
            c.ncalls = len(calls)
    return out


def _call_suffix(c: _Call) -> str:
    return f" (call {c.index + 1} of {c.ncalls})" if c.ncalls > 1 else ""


def _named(obj: Any, method: str) -> list:
    fn = getattr(obj, method, None)
    if fn is None:
        return []
    try:
        return list(fn())
    except TypeError:
        return []


class _Names:
    """Module paths and parameter names, from the outermost modules seen in the node scopes."""

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
        if id(m) not in self.nparams:
            self.nparams[id(m)] = int(sum(int(np.prod(t.shape)) for _, t in _named(m, "named_parameters")))
        return self.nparams[id(m)]

    def module_label(self, m: Any) -> tuple[str, str, int]:
        return self.path.get(id(m), ""), type(m).__name__, self.module_params(m)


def _highlight_ids(highlight: Any) -> set[int]:
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


def _is_edge_of(e: tuple, t: Tensor) -> bool:
    return e[0] is t or (t.grad_fn is not None and e[0] is t.grad_fn and e[1] == t._output_nr)


class _Builder:
    def __init__(self, outputs: list[Tensor], view: str, show_values: bool, names: _Names, hl: set[int], input_names: dict) -> None:
        self.outputs = outputs
        self.view = view
        self.show_values = show_values
        self.names = names
        self.hl = hl
        self.input_names = input_names
        self.elems: dict[Any, _Elem] = {}
        self.edges: list[_Edge] = []
        self.as_input: set[int] = set()
        self.calls: dict[Node, tuple] = {}
        self.repeats: dict[int, tuple[int, str, str]] = {}  # id(first call of a folded run) -> (count, first path, last path)

    # -- element helpers -----------------------------------------------------------------
    def _tensor_name(self, t: Tensor) -> str | None:
        return self.names.param.get(id(t)) or self.input_names.get(id(t)) or t.name

    def _tensor_elem(self, t: Tensor, kind: str, order: float, name: str | None = None) -> _Elem:
        key = ("t", id(t))
        e = self.elems.get(key)
        if e is not None:
            e.order = min(e.order, order)
            return e
        given = name or self._tensor_name(t)
        e = _Elem(key, kind, (), order, given or ("constant" if kind == "input" else ""), objs={id(t)})
        e.named = bool(given)
        e.owner = self.names.owner.get(id(t))
        e.attrs = f"{_shape(t.shape)} {_dtype(t.dtype)}"
        e.sig = (kind, tuple(t.shape), str(t.dtype))
        if self.show_values:
            e.add_value_lines(t)
        e.highlighted = id(t) in self.hl
        self.elems[key] = e
        return e

    def _leaf_kind(self, t: Tensor) -> str:
        if id(t) in self.names.param:
            return "param"
        if id(t) in self.as_input:
            return "input"
        return "leaf" if t.requires_grad else "input"

    def build(self, nodes: list[Node]) -> None:
        pos = {n: i for i, n in enumerate(nodes)}
        produced: dict[tuple, Any] = {}  # (node, k) -> Tensor, for values of dead intermediates
        if self.show_values:
            for n in nodes:
                for t in (n.input_tensors or ()) + tuple(v.value for v in n.saved_values() if v.kind == "input"):
                    if isinstance(t, Tensor) and t.grad_fn is not None:
                        produced.setdefault((t.grad_fn, t._output_nr), t)
        self.calls = _module_calls(nodes)
        for n in nodes:
            self._op_elem(n, pos[n], produced)
        if self.view == "forward":
            self._forward_edges(nodes, pos)
        else:
            self._backward_edges(nodes, pos)
        self._outputs(pos)

    def _op_elem(self, n: Node, i: int, produced: dict) -> None:
        head = n.name + ("Backward" if self.view == "backward" else "")
        e = _Elem(("n", id(n)), "op", self.calls[n], float(i), head, objs={id(n)})
        consts = []
        if self.view == "forward":
            for j, edge in enumerate(n.next_edges):
                t = n.input_tensors[j] if n.input_tensors is not None and j < len(n.input_tensors) else None
                if edge is None and (t is None or (t.size == 1 and not self._tensor_name(t))):
                    consts.append(f"{_arg_name(n.op, j)}={_fmt_value(t.data.item())}" if t is not None else f"{_arg_name(n.op, j)}=const")
        e.attrs = "  ".join(consts + [f"{k}={_fmt_value(v)}" for k, v in _param_items(n)])
        # Integer outputs (argmax indices) carry no gradient: listed apart from the data outputs.
        meta = n.output_meta
        data = [_shape(s) for s, d in meta if d.kind in "fc"]
        other = [f"{_shape(s)} {_dtype(d)}" for s, d in meta if d.kind not in "fc"]
        e.lines.append((("\u2192 " if self.view == "forward" else "grad ") + ", ".join(data or ["-"]), None))
        if other and self.view == "forward":
            e.lines.append(("+ " + ", ".join(other) + " (no grad)", "#666666"))
        if self.view == "backward":
            e.lines.extend(self._saved_lines(n))
        if self.show_values:
            for k in range(len(meta)):
                arr = self._output_array(n, k, produced)
                if arr is None:
                    # Intermediates are held weakly: draw under keep_inputs() (draw_model does) to see them.
                    e.lines.append(("value not kept", "#888888"))
                else:
                    s, bad = _stats(arr)
                    e.lines.append(((f"out{k}: " if len(meta) > 1 else "") + s, BAD if bad else None))
                    e.bad |= bad
        e.sig = ("op", n.name, e.attrs, tuple(tuple(s) for s, _ in meta))
        e.highlighted = id(n) in self.hl
        e.dtypes = {_dtype(d) for _, d in meta if d.kind in "fc"}
        self.elems[e.key] = e

    def _output_array(self, n: Node, k: int, produced: dict) -> np.ndarray | None:
        t = n.output(k)
        if t is not None:
            return t.data
        for v in n.saved_values():
            if v.kind == "output" and v.index == k:
                return v.value
        t = produced.get((n, k))
        return None if t is None else t.data

    def _saved_lines(self, n: Node) -> list:
        if n.released:
            return [("saved: freed by backward()", "#888888")]
        out = []
        taken: set[int] = set()  # x * x saves the same tensor twice: name it a, then b
        for kind, a, index in n.saved_values():
            if kind == "input":
                j = next((j for j, e in enumerate(n.next_edges) if j not in taken and e is not None and _is_edge_of(e, a)), None)
                if j is None and n.input_tensors is not None:
                    j = next((j for j, t in enumerate(n.input_tensors) if j not in taken and t is a), None)
                if j is not None:
                    taken.add(j)
                nm = self._tensor_name(a) or (_arg_name(n.op, j) if j is not None else "input")
                out.append(f"{nm} {_shape(a.shape)}")
            elif kind == "output":
                out.append(f"result{'' if len(n.output_meta) == 1 else index} {_shape(a.shape)}")
            elif isinstance(a, np.ndarray):
                out.append(f"const {_shape(a.shape)} {a.dtype}")
            else:
                out.append(f"const {_fmt_value(a)}")
        if not out:
            return []
        return [("saved: " + ", ".join(out), "#555555")]

    def _edge(self, src: Any, dst: Any, label: str = "", shape: tuple | None = None) -> None:
        self.edges.append(_Edge(src, dst, label, shape))

    def _forward_edges(self, nodes: list[Node], pos: dict) -> None:
        named_out: dict[tuple, Any] = {}  # (node, k) -> key of a named intermediate tensor element
        for n in nodes:
            for k in range(len(n.output_meta)):
                t = n.output(k)
                if t is not None and t.name and not any(t is o for o in self.outputs):
                    el = self._tensor_elem(t, "tensor", pos[n] + 0.5)
                    el.scope = self.calls[n]
                    self._edge(("n", id(n)), el.key, self._out_label(n, k), n.output_shapes[k])
                    named_out[(n, k)] = el.key
        for n in nodes:
            dst = ("n", id(n))
            for j, edge in enumerate(n.next_edges):
                if edge is not None:
                    m, k = edge
                    if isinstance(m, Node):
                        src = named_out.get((m, k), ("n", id(m)))
                        label = self._out_label(m, k) if src[0] == "n" else ""
                        self._edge(src, dst, label, m.output_shapes[k])
                    else:
                        el = self._tensor_elem(m, self._leaf_kind(m), pos[n] - 0.5)
                        self._edge(el.key, dst, "", tuple(m.shape))
                elif n.input_tensors is not None and j < len(n.input_tensors):
                    t = n.input_tensors[j]
                    if t.size != 1 or self._tensor_name(t):
                        el = self._tensor_elem(t, "input", pos[n] - 0.5)
                        self._edge(el.key, dst, "", tuple(t.shape))

    def _backward_edges(self, nodes: list[Node], pos: dict) -> None:
        for n in nodes:
            src = ("n", id(n))
            for edge in n.next_edges:
                if edge is None:
                    continue
                m, k = edge
                if isinstance(m, Node):
                    self._edge(src, ("n", id(m)), self._out_label(m, k), m.output_shapes[k])
                else:
                    el = self._tensor_elem(m, self._leaf_kind(m), pos[n] + 0.5)
                    self._edge(src, el.key, "", tuple(m.shape))

    @staticmethod
    def _out_label(n: Node, k: int) -> str:
        # Only worth a label when several outputs carry gradients (not max_pool's indices).
        return f"out{k}" if sum(d.kind in "fc" for d in n.output_dtypes) > 1 else ""

    def _outputs(self, pos: dict) -> None:
        many = len(self.outputs) > 1
        last = float(len(pos))
        for i, t in enumerate(self.outputs):
            name = self._tensor_name(t) or (f"output {i}" if many else "output")
            if t.grad_fn is None:
                el = self._tensor_elem(t, self._leaf_kind(t), last + i, name)
                el.kind = "output" if el.kind == "input" else el.kind
                continue
            el = _Elem(("out", i), "output", (), last + 1 + i, name, objs={id(t)})
            el.attrs = f"{_shape(t.shape)} {_dtype(t.dtype)}"
            if self.show_values:
                el.add_value_lines(t)
            el.highlighted = id(t) in self.hl
            self.elems[el.key] = el
            node_key = ("n", id(t.grad_fn))
            if self.view == "forward":
                self._edge(node_key, el.key, self._out_label(t.grad_fn, t._output_nr), tuple(t.shape))
            else:
                self._edge(el.key, node_key, self._out_label(t.grad_fn, t._output_nr), tuple(t.shape))


# ---------------------------------------------------------------------------------------------
# Folding


def _place_tensors(b: _Builder) -> None:
    """Parameters go in their module's cluster; other tensors next to their only neighbour."""
    tensors = {k for k, e in b.elems.items() if e.kind != "op" and k[0] != "out"}
    if not tensors:
        return
    neighbours: dict[Any, set] = {}
    for ed in b.edges:
        if ed.src in tensors:
            neighbours.setdefault(ed.src, set()).add(ed.dst)
        if ed.dst in tensors:
            neighbours.setdefault(ed.dst, set()).add(ed.src)
    for e in b.elems.values():
        if e.kind == "op" or e.key[0] == "out":
            continue
        owner = e.owner
        if e.kind == "param" and owner is not None:
            scopes = [b.elems[k].scope for k in neighbours.get(e.key, ()) if k in b.elems and b.elems[k].kind == "op"]
            for s in scopes:
                for d, c in enumerate(s):
                    if c.module is owner:
                        e.scope = s[: d + 1]
                        break
                if e.scope:
                    break
        elif e.kind != "tensor" and not e.named:  # named inputs (the model's input) stay outside
            ns = [b.elems[k] for k in neighbours.get(e.key, ()) if k in b.elems]
            if len(ns) == 1 and ns[0].kind == "op":
                e.scope = ns[0].scope


def _fold_depth(b: _Builder, depth: int, names: _Names) -> None:
    remap: dict[Any, Any] = {}
    groups: dict[Any, _Elem] = {}
    for e in list(b.elems.values()):
        if len(e.scope) <= depth or e.key[0] == "out":
            continue
        c = e.scope[depth]
        gk = ("m", id(c))
        g = groups.get(gk)
        if g is None:
            path, cls, npar = names.module_label(c.module)
            g = _Elem(gk, "module", e.scope[:depth], e.order, path or cls)
            g.module = c.module
            g.call = c
            g.cls = cls
            g.npar = npar
            groups[gk] = g
        g.order = min(g.order, e.order)
        g.objs |= e.objs
        g.bad |= e.bad
        g.highlighted |= e.highlighted
        g.members.append(e)
        remap[e.key] = gk
        del b.elems[e.key]
    if not groups:
        return
    b.elems.update(groups)
    ins: dict[Any, list] = {k: [] for k in groups}
    outs: dict[Any, list] = {k: [] for k in groups}
    new_edges: list[_Edge] = []
    seen: set = set()
    for ed in b.edges:
        s, d = remap.get(ed.src, ed.src), remap.get(ed.dst, ed.dst)
        if s == d:
            continue
        # The tensor an edge carries: its producer's output (the edge's tail in the forward view,
        # its head in the backward view); a tensor used twice counts once.
        tensor = (ed.src, ed.label) if b.view == "forward" else (ed.dst, ed.label)
        if d in groups and ed.shape is not None and tensor not in [x[0] for x in ins[d]]:
            ins[d].append((tensor, ed.shape))
        if s in groups and ed.shape is not None and tensor not in [x[0] for x in outs[s]]:
            outs[s].append((tensor, ed.shape))
        if (s, d, ed.label if s not in groups else "") in seen:
            continue
        seen.add((s, d, ed.label if s not in groups else ""))
        new_edges.append(_Edge(s, d, ed.label if s not in groups else "", ed.shape))
    b.edges = new_edges
    fwd = b.view == "forward"
    for gk, g in groups.items():
        i_sh = ", ".join(_shape(s) for _, s in ins[gk]) or "-"
        o_sh = ", ".join(_shape(s) for _, s in outs[gk]) or "-"
        if not fwd:  # gradients flow the other way
            i_sh, o_sh = o_sh, i_sh
        g.attrs = f"{g.cls}  {g.npar:,} params" if g.npar else g.cls
        g.lines.insert(0, (f"in {i_sh}  \u2192  out {o_sh}", None))
        ops = [m for m in g.members if m.kind == "op"]
        if len(ops) == 1 and ops[0].attrs:  # a one-op layer: its attributes (conv stride, pool kernel) say what it does
            g.lines.append((ops[0].attrs, "#444444"))
        g.lines.append((f"{len(ops)} op{'s' if len(ops) != 1 else ''} folded", "#666666"))
        member_sigs = tuple(m.sig for m in sorted(g.members, key=lambda m: m.order))
        g.sig = ("module", g.cls, member_sigs)


def _module_members(b: _Builder) -> dict[int, list[_Elem]]:
    """id(module call) -> elements drawn inside it (at any depth)."""
    out: dict[int, list[_Elem]] = {}
    for e in b.elems.values():
        for c in e.scope:
            out.setdefault(id(c), []).append(e)
        if e.kind == "module":
            out.setdefault(id(e.call), []).append(e)
    return out


def _fold_repeats(b: _Builder, names: _Names) -> None:
    """Fold runs of >= 2 identical consecutive sibling modules connected as a chain into one."""
    if not any(e.scope or e.kind == "module" for e in b.elems.values()):
        return
    members = _module_members(b)
    mods: dict[int, Any] = {}
    parent: dict[int, Any] = {}
    for e in b.elems.values():
        chain = list(e.scope) + ([e.call] if e.kind == "module" else [])
        for d, m in enumerate(chain):
            mods[id(m)] = m
            parent.setdefault(id(m), id(chain[d - 1]) if d else None)
    siblings: dict[Any, list[int]] = {}
    for mid, pid in parent.items():
        siblings.setdefault(pid, []).append(mid)
    in_edges: dict[Any, list[_Edge]] = {}
    out_edges: dict[Any, list[_Edge]] = {}
    for ed in b.edges:
        out_edges.setdefault(ed.src, []).append(ed)
        in_edges.setdefault(ed.dst, []).append(ed)

    def sig(mid: int) -> tuple:
        els = sorted(members[mid], key=lambda e: e.order)
        return (type(mods[mid].module).__name__, tuple(e.sig for e in els))

    def feeds_only(a: int, c: int) -> bool:
        ka = {e.key for e in members[a]}
        kc = {e.key for e in members[c]}
        outside_a = [ed for k in ka for ed in out_edges.get(k, ()) if ed.dst not in ka]
        into_c = [ed for k in kc for ed in in_edges.get(k, ()) if ed.src not in kc]
        return bool(outside_a) and all(ed.dst in kc for ed in outside_a) and all(ed.src in ka for ed in into_c)

    for _pid, kids in siblings.items():
        kids = [k for k in kids if members.get(k)]
        kids.sort(key=lambda k: min(e.order for e in members[k]))
        i = 0
        while i < len(kids):
            j = i
            s0 = sig(kids[i])
            while j + 1 < len(kids) and sig(kids[j + 1]) == s0 and (
                feeds_only(kids[j], kids[j + 1]) if b.view == "forward" else feeds_only(kids[j + 1], kids[j])
            ):
                j += 1
            if j > i:
                _fold_run(b, [kids[x] for x in range(i, j + 1)], members, mods, names)
            i = j + 1


def _fold_run(b: _Builder, run: list[int], members: dict, mods: dict, names: _Names) -> None:
    first = sorted(members[run[0]], key=lambda e: e.order)
    last = sorted(members[run[-1]], key=lambda e: e.order)
    first_keys = [e.key for e in first]
    to_first = {e.key: first_keys[i] for i, e in enumerate(last)}
    drop = {e.key for mid in run[1:] for e in members[mid]}
    inner = drop | set(first_keys)
    new_edges = []
    for ed in b.edges:
        if ed.src in drop and ed.dst not in inner:
            ed = _Edge(to_first[ed.src], ed.dst, ed.label, ed.shape)
        elif ed.dst in drop and ed.src not in inner:
            ed = _Edge(ed.src, to_first[ed.dst], ed.label, ed.shape)
        elif ed.src in drop or ed.dst in drop:
            continue
        elif ed.src in first_keys and ed.dst not in inner and b.view == "forward":
            continue  # the first block's own output now leaves from the run's end (same element)
        elif ed.dst in first_keys and ed.src not in inner and b.view == "backward":
            continue
        new_edges.append(ed)
    b.edges = new_edges
    for mid in run[1:]:
        for e in members[mid]:
            first_el = b.elems[to_first.get(e.key, e.key)] if e.key in to_first else None
            if first_el is not None:
                first_el.objs |= e.objs
                first_el.bad |= e.bad
                first_el.highlighted |= e.highlighted
            b.elems.pop(e.key, None)
    p0 = names.module_label(mods[run[0]].module)[0]
    p1 = names.module_label(mods[run[-1]].module)[0]
    b.repeats[run[0]] = (len(run), p0, p1)
    for e in first:
        if e.kind == "module" and e.call is mods[run[0]]:
            e.count = len(run)


# ---------------------------------------------------------------------------------------------
# DOT emission


def _label(e: _Elem, names: _Names, repeats: dict) -> str:
    if e.kind == "module":
        path, cls, _ = names.module_label(e.module)
        title = f"<B>{_esc(path or cls)}</B>{_esc(_call_suffix(e.call))}"
        if e.count > 1:
            _, p0, p1 = repeats[id(e.call)]
            title = f"<B>{_esc(p0)} .. {_esc(p1)}</B>  <B>x{e.count}</B>"
    elif e.kind == "op":
        title = f"<B>{_esc(e.head)}</B>"
    else:
        title = f"<B>{_esc(e.head)}</B>" if e.head else ""
    rows = [title] if title else []
    if e.attrs:
        rows.append(f'<FONT POINT-SIZE="{SIZE_SMALL}" COLOR="#444444">{_esc(e.attrs)}</FONT>')
    for text, colour in e.lines:
        c = f' COLOR="{colour}"' if colour else ""
        rows.append(f'<FONT POINT-SIZE="{SIZE_SMALL}"{c}>{_esc(text)}</FONT>')
    return "<" + "<BR/>".join(rows) + ">"


def _node_attrs(e: _Elem) -> dict[str, str]:
    fill, border, _ = STYLE[e.kind]
    a = {"fillcolor": fill, "color": border}
    if e.kind in ("op", "module", "output", "tensor") or (e.kind == "input" and e.named):
        a["group"] = "main"  # dot keeps edges within a group straight: the data path reads top-down
    if e.kind == "module":
        a["shape"] = "box3d"
        a["style"] = "filled"
        if e.count > 1:
            a["peripheries"] = "2"
    elif e.kind == "op":
        a["style"] = "rounded,filled"
    else:
        a["style"] = "filled"
        a["shape"] = "box" if e.kind in ("param", "leaf") else "oval" if e.kind in ("input", "output") else "note"
    if e.bad:
        a["color"] = BAD
        a["penwidth"] = "2"
    if e.highlighted:
        a["fillcolor"], a["color"] = HIGHLIGHT
        a["penwidth"] = "3"
    return a


_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_KEYWORDS = {"node", "edge", "graph", "digraph", "subgraph", "strict"}


@functools.lru_cache(maxsize=8192)
def _q(s: str) -> str:
    """Quote a DOT id or attribute value (HTML labels ``<...>`` stay as they are).

    Written here because graphviz's own quoting costs more than the rest of a 100,000-op picture."""
    if (_ID.match(s) and s.lower() not in _KEYWORDS) or (s.startswith("<") and s.endswith(">")):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attr_list(attrs: dict[str, str]) -> str:
    return " [" + " ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "]" if attrs else ""


def _node_line(name: str, label: str, attrs: dict[str, str]) -> str:
    rest = "".join(f" {k}={_q(v)}" for k, v in attrs.items())
    return f"\t{_q(name)} [label={label}{rest}]\n"


def _dot_ids(b: _Builder, names: _Names) -> None:
    """Readable, unique DOT names (they become the SVG <title>s): Conv2d_1, conv1.weight, input."""
    used: set[str] = set()
    counters: dict[str, int] = {}
    for e in sorted(b.elems.values(), key=lambda e: e.order):
        if e.kind == "op":
            base = e.head
        elif e.kind == "module":
            path, cls, _ = names.module_label(e.module)
            base = path or cls
        else:
            base = e.head or e.kind
        base = re.sub(r"\s+", "_", base)
        name = base if e.kind != "op" and base not in used else None
        while name is None or name in used:
            counters[base] = counters.get(base, 0) + 1
            name = f"{base}_{counters[base]}"
        used.add(name)
        e.dot = name


def _legend(kinds: set, hl: bool, bad: bool, clusters: bool, backward: bool, dtype: str | None) -> str:
    rows = []
    for k in ("op", "param", "leaf", "input", "tensor", "output", "module"):
        if k in kinds:
            fill, border, text = STYLE[k]
            if k == "op":
                text = "gradient function (Backward) + what it saved" if backward else "op + its attributes, \u2192 output shape"
            rows.append((fill, border, text))
    if hl:
        rows.append((HIGHLIGHT[0], HIGHLIGHT[1], "highlighted (e.g. failing gradient check)"))
    if bad:
        rows.append(("#ffffff", BAD, "red border/text: NaN or Inf in values"))
    small = f'<FONT POINT-SIZE="{SIZE_SMALL}">'
    cells = "".join(
        f'<TR><TD BGCOLOR="{f}" COLOR="{c}" BORDER="1" WIDTH="18"> </TD><TD ALIGN="LEFT">{small}{_esc(t)}</FONT></TD></TR>'
        for f, c, t in rows
    )
    notes = ["shapes are (batch, channels, height, width) for images"]
    if dtype:
        notes.append(f"dtype {dtype} unless shown")
    if clusters:
        notes.append("boxes around ops: module path: class, parameter count")
    if backward:
        notes.append("arrows follow the gradient, output to leaves")
    grey = f'<FONT POINT-SIZE="{SIZE_SMALL}" COLOR="#555555">'
    cells += "".join(f'<TR><TD COLSPAN="2" ALIGN="LEFT">{grey}{_esc(n)}</FONT></TD></TR>' for n in notes)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2"><TR><TD COLSPAN="2"><B>Legend</B></TD></TR>{cells}</TABLE>>'


def _emit(b: _Builder, names: _Names, rankdir: str, legend: bool, title: str | None, graph_attr: dict | None) -> Graph:
    _dot_ids(b, names)
    repeats = b.repeats
    common_dtype = None
    dts: dict[str, int] = {}
    for e in b.elems.values():
        for d in e.dtypes:
            dts[d] = dts.get(d, 0) + 1
    if dts:
        common_dtype = max(dts, key=lambda d: dts[d])
        for e in b.elems.values():
            ds = e.dtypes
            if e.kind == "op" and ds and ds != {common_dtype} and e.lines:
                text, colour = e.lines[0]
                e.lines[0] = (f"{text} {'/'.join(sorted(ds))}", colour)

    g = Graph(name="tinygrad_cnn", format="svg")
    ga = {
        "rankdir": rankdir,
        "fontname": FONT,
        "fontsize": "10",
        "nodesep": "0.25",
        "ranksep": "0.3",
        "newrank": "true",
        "bgcolor": "white",
    }
    if title:
        ga.update(label=f"<<B>{_esc(title)}</B>>", labelloc="t", fontsize="14")
    ga.update(graph_attr or {})
    g.graph_attr.update(ga)
    g.node_attr.update(shape="box", fontname=FONT, fontsize="11", margin="0.1,0.04", height="0.3", penwidth="1.2")
    g.edge_attr.update(fontname=FONT, fontsize=SIZE_SMALL, arrowsize="0.6", color="#555555", penwidth="1.1")
    g.ids = {}

    # cluster tree: id(module) -> (module, parent id, depth)
    clusters: dict[int, tuple[Any, int | None, int]] = {}
    for e in b.elems.values():
        for d, m in enumerate(e.scope):
            if id(m) not in clusters:
                clusters[id(m)] = (m, id(e.scope[d - 1]) if d else None, d)
    sub: dict[int | None, Graph] = {None: g}
    for mid, (m, _p, d) in clusters.items():
        c = Graph(name=f"cluster_{len(sub)}")
        path, cls, npar = names.module_label(m.module)
        rep = repeats.get(mid)
        if rep:
            head = f"<B>{_esc(rep[1])} .. {_esc(rep[2])}</B>: {_esc(cls)} <B>x{rep[0]}</B>"
        else:
            head = f"<B>{_esc(path)}</B>: {_esc(cls)}" if path else f"<B>{_esc(cls)}</B>"
            head += _esc(_call_suffix(m))
        par = f"  ({npar:,} params{' each' if rep else ''})" if npar else ""
        c.graph_attr.update(
            label=f"<{head}{_esc(par)}>",
            labeljust="l",
            style="rounded,filled" if not rep else "rounded,filled,bold",
            fillcolor=CLUSTER_FILLS[min(d, len(CLUSTER_FILLS) - 1)],
            color="#7b4fb0" if rep else "#9aa7bb",
            fontsize="10",
            penwidth="2" if rep else "1",
        )
        if rep:
            c.graph_attr["peripheries"] = "1"
        sub[mid] = c
    for e in sorted(b.elems.values(), key=lambda e: e.order):
        target = sub[id(e.scope[-1])] if e.scope else g
        target.body.append(_node_line(e.dot, _label(e, names, repeats), _node_attrs(e)))
        for o in e.objs:
            g.ids[o] = e.dot
    # A parameter used by one op sits beside it on the same rank, so the data path stays one
    # straight column instead of drifting sideways under a stack of weights.
    consumers: dict[Any, list] = {}
    for ed in b.edges:
        leaf, op = (ed.src, ed.dst) if b.view == "forward" else (ed.dst, ed.src)
        if leaf in b.elems and b.elems[leaf].kind in ("param", "leaf") and op in b.elems:
            consumers.setdefault(leaf, []).append(b.elems[op])
    beside: set[tuple] = set()  # (param, op, on the left?) for parameters drawn on their op's rank
    sides: dict[Any, int] = {}
    for key, ops in consumers.items():
        e = b.elems[key]
        if len(ops) == 1 and ops[0].kind == "op" and ops[0].scope == e.scope:
            # alternate sides (weight left, bias right) so no edge has to loop around another
            n_side = sides[ops[0].key] = sides.get(ops[0].key, 0) + 1
            beside.add((key, ops[0].key, n_side % 2 == 1))
            target = sub[id(e.scope[-1])] if e.scope else g
            target.body.append(f"\t{{rank=same; {_q(e.dot)}; {_q(ops[0].dot)}}}\n")
    # nest clusters deepest first (Digraph.subgraph copies the body at call time)
    for mid, (_m, p, _d) in sorted(clusters.items(), key=lambda kv: -kv[1][2]):
        sub[p].subgraph(sub[mid])
    main = ("op", "module", "output", "tensor")
    for ed in b.edges:
        if ed.src in b.elems and ed.dst in b.elems:
            s, d = b.elems[ed.src], b.elems[ed.dst]
            attrs = {"label": ed.label} if ed.label else {}
            if s.kind in main and d.kind in main:
                attrs["weight"] = "8"  # keep the data path straight; parameters hang off it
            elif (s.key, d.key, False) in beside or (d.key, s.key, True) in beside:
                # A flat edge runs left to right, so it is declared in the direction that puts the
                # parameter on its side, and drawn backwards (dir=back) when that is against the flow.
                attrs["dir"] = "back"
                s, d = d, s
            g.body.append(f"\t{_q(s.dot)} -> {_q(d.dot)}{_attr_list(attrs)}\n")
    if legend:
        kinds = {e.kind for e in b.elems.values()}
        hl = any(e.highlighted for e in b.elems.values())
        bad = any(e.bad for e in b.elems.values())
        g.node("legend", _legend(kinds, hl, bad, bool(clusters), b.view == "backward", common_dtype), shape="plaintext", style="")
    return g


# ---------------------------------------------------------------------------------------------
# Public API

VIEWS = ("forward", "backward")
RANKDIRS = ("TB", "LR", "BT", "RL")


def to_dot(
    *outputs: Any,
    view: str = "forward",
    depth: int | None = None,
    show_values: bool = False,
    highlight: Any = None,
    rankdir: str = "TB",
    model: Any = None,
    fold_repeats: bool = True,
    legend: bool = True,
    title: str | None = None,
    names: dict[str, Tensor] | None = None,
    inputs: dict[str, Tensor] | None = None,
    graph_attr: dict | None = None,
) -> Graph:
    """The graph that produced ``outputs`` as a ``graphviz.Digraph`` (DOT source; no Graphviz program needed).

    - ``view='forward'``: tensors and ops as written (op nodes show attributes and output shape);
      ``view='backward'``: the gradient functions backward runs, each with what it saved.
    - ``depth=N``: modules nested deeper than N levels (the outermost module is level 0) are
      folded into single nodes showing input/output shapes; ``fold_repeats`` draws runs of identical
      consecutive blocks once with a count.
    - ``show_values``: min/max/mean of values and gradient norms; NaN/Inf flagged red.
    - ``highlight``: Tensors, Nodes, or an object with ``.failing_nodes``; drawn in red.
    - ``model``: a Module (or dict name -> Tensor) naming parameters; found automatically from
      the modules whose forward recorded the ops.
    - ``names``: ``{name: tensor}`` labels for other tensors (targets, intermediates);
      ``inputs``: ``{name: tensor}`` tensors drawn (and named) as the inputs of the computation.

    Example::

        x = tg.randn(2, 3, requires_grad=True, name="x")
        g = to_dot((x * 2).relu().sum())
        print(g.source)            # DOT text; g.render(...) / display(g) need Graphviz's dot
    """
    if view not in VIEWS:
        raise ValueError(f"to_dot: view must be one of {VIEWS}, got {view!r}.")
    if rankdir not in RANKDIRS:
        raise ValueError(f"to_dot: rankdir must be one of {RANKDIRS}, got {rankdir!r}.")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, (int, np.integer)) or depth < 0):
        raise ValueError(f"to_dot: depth must be None or an integer >= 0 (0 folds the whole model), got {depth!r}.")
    outs = _flatten_outputs(outputs)
    hl = _highlight_ids(highlight)
    # A Node (e.g. a grad_fn from a gradient-check report) draws the graph below it, without an output box.
    nodes = walk(outs)
    outs = [o for o in outs if isinstance(o, Tensor)]
    roots: list = []
    seen_roots: set[int] = set()
    for n in nodes:
        if n.scope and id(n.scope[0]) not in seen_roots:
            seen_roots.add(id(n.scope[0]))
            roots.append(n.scope[0])
    labels = {}
    for what, mapping in (("names", names), ("inputs", inputs)):
        for k, t in (mapping or {}).items():
            if not isinstance(t, Tensor):
                raise TypeError(f"to_dot: {what} must map a name to a Tensor, got {k!r}: {type(t).__name__}.")
            labels[id(t)] = str(k)
    nm = _Names(roots, model)
    b = _Builder(outs, view, show_values, nm, hl, labels)
    b.as_input = {id(t) for t in (inputs or {}).values()}
    b.build(nodes)
    _place_tensors(b)
    if depth is not None:
        _fold_depth(b, int(depth), nm)
    if fold_repeats:
        _fold_repeats(b, nm)
    return _emit(b, nm, rankdir, legend, title, graph_attr)


FORMATS = ("svg", "png", "pdf")


def _dot_program() -> str:
    exe = shutil.which("dot")
    if exe is None:
        raise GraphvizNotFoundError(INSTALL_HINT)
    return exe


def render(outputs: Any, path: str | os.PathLike, format: str | None = None, **kwargs: Any) -> pathlib.Path:  # noqa: A002
    """Draw ``outputs`` (a Tensor, a list of Tensors, or a graph from ``to_dot``) to ``path``
    with Graphviz's ``dot``; returns the written path.

    ``format`` is ``'svg'``, ``'png'`` or ``'pdf'`` (default: from ``path``'s suffix, else svg; a
    missing suffix is added). Other keyword arguments go to :func:`to_dot`. The file is written
    atomically. Raises :class:`GraphvizNotFoundError` (saying how to install it) without ``dot``.

    Example::

        render(loss, "loss.svg", view="backward")
    """
    p = pathlib.Path(path)
    suffix = p.suffix.lower().lstrip(".")
    if format is None:
        format = suffix if suffix in FORMATS else "svg"  # noqa: A001
    if format not in FORMATS:
        raise ValueError(f"render: format must be one of {FORMATS}, got {format!r}.")
    if suffix != format:
        p = p.with_name(p.name + "." + format)
    graph = outputs if isinstance(outputs, graphviz.Digraph) else to_dot(outputs, **kwargs)
    if isinstance(outputs, graphviz.Digraph) and kwargs:
        raise TypeError(f"render: options {sorted(kwargs)} apply to tensors; this graph was already built by to_dot().")
    exe = _dot_program()
    proc = subprocess.run([exe, f"-T{format}"], input=graph.source.encode("utf-8"), capture_output=True)
    if proc.returncode != 0:
        raise RuntimeError(f"render: dot failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    _write_atomic(p, proc.stdout)
    return p


def _write_atomic(p: pathlib.Path, data: bytes) -> None:
    """Temporary file in the same folder, then ``os.replace``: never a half-written picture."""
    from ..atomic import atomic_write_bytes

    atomic_write_bytes(p, data)


def draw_model(
    model: Any,
    example_input: Any,
    *,
    loss_fn: Any = None,
    backward: bool = False,
    view: str = "forward",
    path: str | os.PathLike | None = None,
    format: str | None = None,  # noqa: A002
    **kwargs: Any,
) -> Graph:
    """Run ``model(example_input)`` and draw its graph; parameters get their module paths.

    ``example_input``: a Tensor or array (e.g. shape ``(1, 1, 28, 28)``); drawn as ``input``.
    ``loss_fn(output) -> scalar`` adds the loss to the picture; ``backward=True`` then runs
    ``backward`` (accumulating into the parameters' ``.grad``) so ``show_values`` shows
    gradient norms. With ``path`` the picture is also rendered there. Other keyword arguments go
    to :func:`to_dot` (``depth``, ``show_values``, ``highlight``, ``rankdir``, ...).

    Example::

        g = draw_model(model, tg.randn(1, 1, 28, 28), depth=1)
    """
    if not callable(model):
        raise TypeError(f"draw_model: model must be a callable Module, got {type(model).__name__}.")
    x = example_input if isinstance(example_input, Tensor) else Tensor(np.asarray(example_input))
    name = x.name or "input"
    if x.grad_fn is None and not x.requires_grad and x.dtype.kind == "f":
        # A requires-grad copy puts the input itself in the graph (else the graph would start at
        # whatever first op meets a parameter, e.g. a transposed copy of the input).
        x = Tensor(x.data, requires_grad=True, name=x.name)
    # Keep the ops' inputs so constants and non-float inputs appear in the picture.
    with keep_inputs():
        out = model(x)
        if loss_fn is not None:
            out = loss_fn(out)
    outs = _flatten_outputs((out,))
    if not any(t.requires_grad for t in outs):
        raise ValueError(
            "draw_model: the model's output does not require grad, so no graph was recorded. Does the "
            "model have parameters with requires_grad=True, and is it not run under no_grad()?"
        )
    if backward:
        t = outs[0]
        t.backward(None if t.size == 1 else np.ones(t.shape, dtype=t.dtype), retain_graph=True)
    labels = dict(kwargs.pop("names", None) or {})
    if loss_fn is not None and outs[0].name is None and len(outs) == 1:
        labels.setdefault("loss", outs[0])
    kwargs.setdefault("model", model)
    inputs = {name: x, **(kwargs.pop("inputs", None) or {})}
    with no_grad():
        g = to_dot(*outs, view=view, names=labels, inputs=inputs, **kwargs)
    if path is not None:
        render(g, path, format=format)
    return g
