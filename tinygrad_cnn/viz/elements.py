"""Stage 2 of drawing a graph: the picture as plain data.

One :class:`Elem` per op, per leaf tensor, per output (and per named intermediate tensor or
non-scalar constant input when known), each tagged with the module calls that recorded it, and
one :class:`Edge` per arrow. Labels are built here as text lines; turning them into DOT is
:mod:`tinygrad_cnn.viz.dot`'s job.
"""
from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd.function import Function, Node
from ..tensor import Tensor
from .walk import Names, module_calls, output_array, produced_tensors, saved_input_index

__all__ = ["BAD", "Edge", "Elem", "Picture", "shape_text"]

BAD = "#d00000"  # text and border colour of values with NaN/Inf


# ---------------------------------------------------------------------------------------------
# Small formatting helpers


@functools.lru_cache(maxsize=4096)
def shape_text(shape: tuple) -> str:
    """A shape in Python's own spelling: ``shape_text((2, 3))`` is ``'(2, 3)'``, ``shape_text(())`` is ``'()'``."""
    return str(tuple(int(d) for d in shape))


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
        return f"array{shape_text(v.shape)}" if v.size > 4 else np.array2string(v, separator=",")
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


_ARGNAMES: dict[type[Function], tuple[list[str], str | None]] = {}


def _arg_name(op: type[Function], i: int) -> str:
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
    return f"min {_num(np.min(a64))}  max {_num(np.max(a64))}  mean {_num(a64.mean())}", False


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
class Elem:
    """One box of the picture: an op, a tensor, an output, or (after folding) a whole module.

    ``kind`` is one of ``op``, ``param``, ``leaf``, ``input``, ``tensor``, ``output``, ``module``;
    ``scope`` the module calls (:class:`~tinygrad_cnn.viz.walk.Call`) it is drawn inside; ``order``
    its place in creation order; ``head``, ``attrs`` and ``lines`` its label; ``sig`` what two
    elements must share to be folded as repeats.

    Example::

        Elem(("n", id(node)), "op", (), 0.0, "Conv2d")
    """

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
class Edge:
    """An arrow between two element keys; ``shape`` is the shape of the tensor it carries."""

    src: Any
    dst: Any
    label: str
    shape: tuple | None


class Picture:
    """The elements and edges of one picture, built from the walked nodes by :meth:`build`.

    The folding stage (:mod:`tinygrad_cnn.viz.cluster`) rewrites ``elems`` and ``edges`` and
    fills ``repeats``; the DOT stage reads them.

    Example::

        nodes, outs = collect(flatten_outputs((loss,)))
        p = Picture(outs, "forward", False, Names(root_modules(nodes), None), set(), {})
        p.build(nodes)
        len(p.elems), len(p.edges)
    """

    def __init__(
        self,
        outputs: list[Tensor],
        view: str,
        show_values: bool,
        names: Names,
        hl: set[int],
        input_names: dict,
        as_input: set[int] | None = None,
    ) -> None:
        self.outputs = outputs
        self.view = view
        self.show_values = show_values
        self.names = names
        self.hl = hl
        self.input_names = input_names
        self.elems: dict[Any, Elem] = {}
        self.edges: list[Edge] = []
        self.as_input: set[int] = as_input or set()  # ids of tensors drawn as inputs of the computation
        self.calls: dict[Node, tuple] = {}
        self.repeats: dict[int, tuple[int, str, str]] = {}  # id(first call of a folded run) -> (count, first path, last path)

    # -- element helpers -----------------------------------------------------------------
    def _tensor_name(self, t: Tensor) -> str | None:
        return self.names.param.get(id(t)) or self.input_names.get(id(t)) or t.name

    def _tensor_elem(self, t: Tensor, kind: str, order: float, name: str | None = None) -> Elem:
        key = ("t", id(t))
        e = self.elems.get(key)
        if e is not None:
            e.order = min(e.order, order)
            return e
        given = name or self._tensor_name(t)
        e = Elem(key, kind, (), order, given or ("constant" if kind == "input" else ""), objs={id(t)})
        e.named = bool(given)
        e.owner = self.names.owner.get(id(t))
        e.attrs = f"{shape_text(t.shape)} {_dtype(t.dtype)}"
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
        """Add the elements and edges of ``nodes`` (in creation order) and of the outputs."""
        pos = {n: i for i, n in enumerate(nodes)}
        produced = produced_tensors(nodes) if self.show_values else {}
        self.calls = module_calls(nodes)
        for n in nodes:
            self._op_elem(n, pos[n], produced)
        if self.view == "forward":
            self._forward_edges(nodes, pos)
        else:
            self._backward_edges(nodes, pos)
        self._outputs(pos)

    def _op_elem(self, n: Node, i: int, produced: dict) -> None:
        head = n.name + ("Backward" if self.view == "backward" else "")
        e = Elem(("n", id(n)), "op", self.calls[n], float(i), head, objs={id(n)})
        consts = []
        if self.view == "forward":
            for j, edge in enumerate(n.next_edges):
                t = n.input_tensors[j] if n.input_tensors is not None and j < len(n.input_tensors) else None
                if edge is None and (t is None or (t.numel() == 1 and not self._tensor_name(t))):
                    consts.append(f"{_arg_name(n.op, j)}={_fmt_value(t.data.item())}" if t is not None else f"{_arg_name(n.op, j)}=const")
        e.attrs = "  ".join(consts + [f"{k}={_fmt_value(v)}" for k, v in _param_items(n)])
        # Integer outputs (argmax indices) carry no gradient: listed apart from the data outputs.
        meta = n.output_meta
        data = [shape_text(s) for s, d in meta if d.kind in "fc"]
        other = [f"{shape_text(s)} {_dtype(d)}" for s, d in meta if d.kind not in "fc"]
        e.lines.append((("\u2192 " if self.view == "forward" else "grad ") + ", ".join(data or ["-"]), None))
        if other and self.view == "forward":
            e.lines.append(("+ " + ", ".join(other) + " (no grad)", "#666666"))
        if self.view == "backward":
            e.lines.extend(self._saved_lines(n))
        if self.show_values:
            for k in range(len(meta)):
                arr = output_array(n, k, produced)
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

    def _saved_lines(self, n: Node) -> list:
        if n.released:
            return [("saved: freed by backward()", "#888888")]
        out = []
        taken: set[int] = set()  # x * x saves the same tensor twice: name it a, then b
        for kind, a, index in n.saved_values():
            if kind == "input":
                j = saved_input_index(n, a, taken)
                nm = self._tensor_name(a) or (_arg_name(n.op, j) if j is not None else "input")
                out.append(f"{nm} {shape_text(a.shape)}")
            elif kind == "output":
                out.append(f"result{'' if len(n.output_meta) == 1 else index} {shape_text(a.shape)}")
            elif isinstance(a, np.ndarray):
                out.append(f"const {shape_text(a.shape)} {a.dtype}")
            else:
                out.append(f"const {_fmt_value(a)}")
        if not out:
            return []
        return [("saved: " + ", ".join(out), "#555555")]

    def _edge(self, src: Any, dst: Any, label: str = "", shape: tuple | None = None) -> None:
        self.edges.append(Edge(src, dst, label, shape))

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
                    if t.numel() != 1 or self._tensor_name(t):
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
            el = Elem(("out", i), "output", (), last + 1 + i, name, objs={id(t)})
            el.attrs = f"{shape_text(t.shape)} {_dtype(t.dtype)}"
            if self.show_values:
                el.add_value_lines(t)
            el.highlighted = id(t) in self.hl
            self.elems[el.key] = el
            node_key = ("n", id(t.grad_fn))
            if self.view == "forward":
                self._edge(node_key, el.key, self._out_label(t.grad_fn, t.output_nr), tuple(t.shape))
            else:
                self._edge(el.key, node_key, self._out_label(t.grad_fn, t.output_nr), tuple(t.shape))
