"""Draw the recorded computation graph with Graphviz: forward and backward views, module clusters,
folding, values and highlights.

``to_dot`` only builds DOT source (the ``graphviz`` Python package, no programs needed);
``render`` and displaying a graph in Jupyter run the Graphviz ``dot`` program.

This module is the public entry point; ``to_dot`` runs four stages, one module each (each a
plain pass over lists, never recursion, so a graph of any depth works):

1. :mod:`~tinygrad_cnn.viz.walk`: list the nodes reachable from the outputs in creation order
   (:func:`tinygrad_cnn.autograd.graph.walk`, shared with the gradient checker), the module call
   that recorded each, and the names of modules and parameters;
2. :mod:`~tinygrad_cnn.viz.elements`: make one *element* per op, per leaf tensor, per output (and
   per named intermediate tensor or non-scalar constant input when known), plus the edges;
3. :mod:`~tinygrad_cnn.viz.cluster`: put parameters in their modules, fold modules deeper than
   ``depth`` into single elements, then fold runs of identical consecutive blocks into one drawn
   with a count;
4. :mod:`~tinygrad_cnn.viz.dot`: emit DOT, nesting elements in one cluster per module call.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from typing import Any

import graphviz
import numpy as np

from ..autograd.grad_mode import keep_inputs, no_grad
from ..tensor import Tensor
from .cluster import fold_depth, fold_repeated_blocks, place_tensors
from .dot import HIGHLIGHT, INSTALL_HINT, STYLE, Graph, GraphvizNotFoundError, emit
from .elements import BAD, Picture
from .walk import Names, collect, flatten_outputs, highlight_ids, root_modules

__all__ = [
    "BAD",
    "FORMATS",
    "HIGHLIGHT",
    "RANKDIRS",
    "STYLE",
    "VIEWS",
    "Graph",
    "GraphvizNotFoundError",
    "draw_model",
    "render",
    "to_dot",
]

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
    outs = flatten_outputs(outputs)
    hl = highlight_ids(highlight)
    nodes, outs = collect(outs)
    labels = {}
    for what, mapping in (("names", names), ("inputs", inputs)):
        for k, t in (mapping or {}).items():
            if not isinstance(t, Tensor):
                raise TypeError(f"to_dot: {what} must map a name to a Tensor, got {k!r}: {type(t).__name__}.")
            labels[id(t)] = str(k)
    nm = Names(root_modules(nodes), model)
    p = Picture(outs, view, show_values, nm, hl, labels, as_input={id(t) for t in (inputs or {}).values()})
    p.build(nodes)
    place_tensors(p)
    if depth is not None:
        fold_depth(p, int(depth), nm)
    if fold_repeats:
        fold_repeated_blocks(p, nm)
    return emit(p, nm, rankdir, legend, title, graph_attr)


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
    outs = flatten_outputs((out,))
    if not any(t.requires_grad for t in outs):
        raise ValueError(
            "draw_model: the model's output does not require grad, so no graph was recorded. Does the "
            "model have parameters with requires_grad=True, and is it not run under no_grad()?"
        )
    if backward:
        t = outs[0]
        t.backward(None if t.numel() == 1 else np.ones(t.shape, dtype=t.dtype), retain_graph=True)
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
