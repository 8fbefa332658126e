"""The reference models drawn by name: behind ``tinygrad-cnn graph`` (its options are parsed in
:mod:`tinygrad_cnn.cli`) and ``scripts/make_graph_docs.py``.

Example::

    g = model_graph("lenet", view="backward", depth=1)   # a Graph (graphviz.Digraph)
    render(g, "lenet.svg")
    write_model_graph("lenet", "lenet.dot")              # the same as `tinygrad-cnn graph lenet -o lenet.dot`
"""
from __future__ import annotations

import os
import pathlib
from typing import Any

import numpy as np

from ..atomic import atomic_write_bytes
from ..tensor import Tensor, randn
from ..train.registry import MODEL_NAMES as MODELS
from .graph import FORMATS, Graph, draw_model, render


def example_model(name: str, batch: int = 1, seed: int = 0) -> tuple[Any, Tensor]:
    """``(model, example_input)`` for a reference model: SimpleConvNet and LeNet take
    (batch, 1, 28, 28), AlexNet (batch, 3, 227, 227). Seeded, so pictures are reproducible."""
    from ..models import AlexNet, LeNet, SimpleConvNet

    if name not in MODELS:
        raise ValueError(f"model_graph: unknown model {name!r}; choose one of {list(MODELS)}.")
    if batch < 1:
        raise ValueError(f"model_graph: batch must be >= 1, got {batch}.")
    if name == "simpleconvnet":
        return SimpleConvNet(seed=seed), randn(batch, 1, 28, 28, seed=seed)
    if name == "lenet":
        return LeNet(seed=seed), randn(batch, 1, 28, 28, seed=seed)
    return AlexNet(seed=seed), randn(batch, 3, 227, 227, seed=seed)


def model_graph(
    name: str,
    *,
    view: str = "forward",
    depth: int | None = None,
    show_values: bool = False,
    batch: int = 1,
    seed: int = 0,
    example: tuple[Any, Tensor] | None = None,
    **kwargs: Any,
) -> Graph:
    """Draw a reference model (``'simpleconvnet'``, ``'lenet'`` or ``'alexnet'``) on a random batch.

    The backward view starts from a cross-entropy loss (labels 0), as in training; with
    ``show_values`` backward is also run so gradient norms appear. ``example``: a
    ``(model, input)`` from :func:`example_model` to reuse (building AlexNet is slow).
    Other keyword arguments go to :func:`~tinygrad_cnn.viz.to_dot`.
    """
    from ..nn import functional as F

    model, x = example if example is not None else example_model(name, batch, seed)
    batch = x.shape[0]
    labels = np.zeros(batch, dtype=np.int64)
    loss_fn = (lambda out: F.cross_entropy(out, labels)) if view == "backward" or show_values else None
    kwargs.setdefault("title", f"{type(model).__name__}: {view} view" + (f", depth {depth}" if depth is not None else ""))
    return draw_model(model, x, loss_fn=loss_fn, backward=show_values, view=view, depth=depth, show_values=show_values, **kwargs)


def write_model_graph(
    name: str,
    output: str | os.PathLike | None = None,
    format: str | None = None,
    *,
    view: str = "forward",
    depth: int | None = None,
    show_values: bool = False,
    batch: int = 1,
) -> pathlib.Path:
    """Draw a reference model (see :func:`model_graph`) and write the picture; returns its path.

    ``format`` is ``'svg'``, ``'png'``, ``'pdf'`` or ``'dot'`` (the DOT text, no Graphviz needed);
    by default the suffix of ``output``, else svg. ``output`` defaults to ``<name>_<view>.<format>``;
    a DOT file always ends in ``.dot``. Raises :class:`~tinygrad_cnn.viz.GraphvizNotFoundError` when a picture is
    asked for and Graphviz's ``dot`` is missing.

    Example::

        write_model_graph("lenet", "lenet.dot", view="backward", depth=1)
    """
    out = pathlib.Path(output) if output is not None else None
    if format is None:
        suffix = out.suffix.lower().lstrip(".") if out is not None else ""
        format = suffix if suffix in FORMATS + ("dot",) else "svg"
    if out is None:
        out = pathlib.Path(f"{name}_{view}.{format}")
    g = model_graph(name, view=view, depth=depth, show_values=show_values, batch=batch)
    if format == "dot":
        if out.suffix.lower() != ".dot":
            out = out.with_name(out.name + ".dot")
        atomic_write_bytes(out, g.source.encode("utf-8"))
        return out
    return render(g, out, format=format)
