"""Stage 4 of drawing a graph: emit the picture as DOT.

Styles, labels and the legend, readable DOT names, one nested cluster per module call, and the
:class:`Graph` that holds the result (a ``graphviz.Digraph`` that displays as SVG in Jupyter).
DOT lines are written here directly rather than through graphviz's ``node()``/``edge()``, whose
quoting costs more than the rest of a very large picture.
"""
from __future__ import annotations

import functools
import html
import re
import shutil
from typing import Any

import graphviz

from ..tensor import Tensor
from .elements import BAD, Elem, Picture
from .walk import Names

__all__ = ["CLUSTER_FILLS", "FONT", "HIGHLIGHT", "INSTALL_HINT", "SIZE_SMALL", "STYLE", "Graph", "GraphvizNotFoundError", "emit"]

# Graphviz sizes every box by measuring its text in this font, so the font viewers show must be
# the same one: DejaVu Sans is what Graphviz finds on a Linux system and what most viewers have; the
# fallbacks are narrower, so text measured in DejaVu still fits when a viewer lacks it.
FONT = "DejaVu Sans,Arial,Helvetica,sans-serif"
# kind -> (fill, border, legend text)
STYLE = {
    "op": ("#dbe8fb", "#4a6fa5", "op (forward) / gradient function (backward)"),
    "param": ("#d6f0d2", "#3f8f3f", "parameter (named by module path)"),
    "leaf": ("#cdecef", "#2f8590", "leaf tensor that requires grad"),
    "input": ("#fff3c4", "#b08f1e", "input / constant (no grad)"),
    "tensor": ("#f3f3f3", "#888888", "named intermediate tensor"),
    "output": ("#fde0c5", "#c0661a", "output"),
    "module": ("#eadcf8", "#7b4fb0", "folded module (in -> out shapes)"),
    "function": ("#e3ecfb", "#4a6fa5", "folded function call, e.g. linear (in -> out shapes)"),
}
HIGHLIGHT = ("#ffd0d0", "#d00000")
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

    Example::

        g = to_dot(loss)
        g.node_id(loss)             # 'output'
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


def _esc(s: Any) -> str:
    return html.escape(str(s), quote=True)


def _label(e: Elem, names: Names, repeats: dict) -> str:
    if e.kind == "module":
        path, cls, _ = names.module_label(e.module)
        title = f"<B>{_esc(path or cls)}</B>{_esc(e.call.suffix())}"
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


def _is_function(e: Elem) -> bool:
    return e.kind == "module" and e.call is not None and e.call.is_function


def _node_attrs(e: Elem) -> dict[str, str]:
    fill, border, _ = STYLE["function" if _is_function(e) else e.kind]
    a = {"fillcolor": fill, "color": border}
    if e.kind in ("op", "module", "output", "tensor") or (e.kind == "input" and e.named):
        a["group"] = "main"  # dot keeps edges within a group straight: the data path reads top-down
    if _is_function(e):  # a composite op: drawn like an op, with a double border for what is folded inside
        a["style"] = "rounded,filled"
        a["peripheries"] = "2"
    elif e.kind == "module":
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

    Written here because graphviz's own quoting costs more than the rest of a very large picture."""
    if (_ID.match(s) and s.lower() not in _KEYWORDS) or (s.startswith("<") and s.endswith(">")):
        return s
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _attr_list(attrs: dict[str, str]) -> str:
    return " [" + " ".join(f"{k}={_q(v)}" for k, v in attrs.items()) + "]" if attrs else ""


def _node_line(name: str, label: str, attrs: dict[str, str]) -> str:
    rest = "".join(f" {k}={_q(v)}" for k, v in attrs.items())
    return f"\t{_q(name)} [label={label}{rest}]\n"


def _dot_ids(b: Picture, names: Names) -> None:
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


def _legend(kinds: set, hl: bool, bad: bool, clusters: bool, backward: bool, dtype: str | None, functions: bool = False) -> str:
    rows = []
    for k in ("op", "param", "leaf", "input", "tensor", "output", "module", "function"):
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
    if functions:
        notes.append("dashed boxes: calls of composite functions (linear, cross_entropy, ...)")
    if backward:
        notes.append("arrows follow the gradient, output to leaves")
    grey = f'<FONT POINT-SIZE="{SIZE_SMALL}" COLOR="#555555">'
    cells += "".join(f'<TR><TD COLSPAN="2" ALIGN="LEFT">{grey}{_esc(n)}</FONT></TD></TR>' for n in notes)
    return f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2" CELLPADDING="2"><TR><TD COLSPAN="2"><B>Legend</B></TD></TR>{cells}</TABLE>>'


def emit(b: Picture, names: Names, rankdir: str, legend: bool, title: str | None, graph_attr: dict | None) -> Graph:
    """The DOT of picture ``b``: one node per element, one cluster per module call (nested as the
    calls are), parameters beside the op that uses them, and a legend.

    ``rankdir``, ``legend``, ``title`` and ``graph_attr`` are :func:`~tinygrad_cnn.viz.graph.to_dot`'s.

    Example::

        g = emit(p, names, "TB", True, None, None)
        print(g.source)
    """
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
        if m.is_function:
            c.graph_attr.update(
                label=f"<<B>{_esc(m.module.name)}</B>>",
                labeljust="l",
                style="rounded,filled,dashed",
                fillcolor=CLUSTER_FILLS[min(d, len(CLUSTER_FILLS) - 1)],
                color="#4a6fa5",
                fontname=FONT,
                fontsize="10",
            )
            sub[mid] = c
            continue
        path, cls, npar = names.module_label(m.module)
        rep = repeats.get(mid)
        if rep:
            head = f"<B>{_esc(rep[1])} .. {_esc(rep[2])}: </B>{_esc(cls)} <B>x{rep[0]}</B>"
        else:
            # The colon and space go with the bold path: Graphviz places the class name after the space,
            # and a viewer's rounding of the bold width eats into that space (a leading space of the
            # class name's text would be dropped by SVG viewers).
            head = f"<B>{_esc(path)}: </B>{_esc(cls)}" if path else f"<B>{_esc(cls)}</B>"
            head += _esc(m.suffix())
        par = f"  ({npar:,} params{' each' if rep else ''})" if npar else ""
        c.graph_attr.update(
            label=f"<{head}{_esc(par)}>",
            labeljust="l",
            style="rounded,filled" if not rep else "rounded,filled,bold",
            fillcolor=CLUSTER_FILLS[min(d, len(CLUSTER_FILLS) - 1)],
            color="#7b4fb0" if rep else "#9aa7bb",
            fontname=FONT,
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
        kinds = {"function" if _is_function(e) else e.kind for e in b.elems.values()}
        functions = any(m.is_function for m, _p, _d in clusters.values())
        hl = any(e.highlighted for e in b.elems.values())
        bad = any(e.bad for e in b.elems.values())
        modules = any(not m.is_function for m, _p, _d in clusters.values())
        g.node("legend", _legend(kinds, hl, bad, modules, b.view == "backward", common_dtype, functions), shape="plaintext", style="")
    return g
