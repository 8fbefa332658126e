"""The reference models drawn by name: behind ``tinygrad-cnn graph`` and ``scripts/make_graph_docs.py``.

Example::

    g = model_graph("lenet", view="backward", depth=1)   # a Graph (graphviz.Digraph)
    render(g, "lenet.svg")
"""
from __future__ import annotations

import argparse
import pathlib
import sys
from typing import Any

import numpy as np

from ..tensor import Tensor, randn
from .graph import FORMATS, Graph, GraphvizNotFoundError, draw_model, render

MODELS = ("simpleconvnet", "lenet", "alexnet")


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
    ``(model, input)`` from :func:`example_model` to reuse (AlexNet takes a second to build).
    Other keyword arguments go to :func:`~tinygrad_cnn.viz.to_dot`.
    """
    from ..nn import functional as F

    model, x = example if example is not None else example_model(name, batch, seed)
    batch = x.shape[0]
    labels = np.zeros(batch, dtype=np.int64)
    loss_fn = (lambda out: F.cross_entropy(out, labels)) if view == "backward" or show_values else None
    kwargs.setdefault("title", f"{type(model).__name__}: {view} view" + (f", depth {depth}" if depth is not None else ""))
    return draw_model(model, x, loss_fn=loss_fn, backward=show_values, view=view, depth=depth, show_values=show_values, **kwargs)


def add_graph_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``tinygrad-cnn graph``."""
    p.add_argument("model", choices=MODELS, help="the network to draw")
    p.add_argument("--view", choices=("forward", "backward"), default="forward", help="ops as written, or the gradient functions")
    p.add_argument("--depth", type=int, default=None, help="fold modules nested deeper than N into single nodes (0 = the whole model)")
    p.add_argument("--format", choices=FORMATS + ("dot",), default=None, help="svg, png, pdf or dot (DOT text); default: from -o, else svg")
    p.add_argument("-o", "--output", default=None, help="output file (default: <model>_<view>.<format>)")
    p.add_argument("--values", action="store_true", help="show min/max/mean of values and gradient norms")
    p.add_argument("--batch", type=int, default=1, help="batch size of the random example input (default 1)")


def graph_command(args: argparse.Namespace) -> int:
    """Run ``tinygrad-cnn graph``: draw the model and write the picture; prints the path."""
    out = pathlib.Path(args.output) if args.output else None
    fmt = args.format
    if fmt is None:
        suffix = out.suffix.lower().lstrip(".") if out is not None else ""
        fmt = suffix if suffix in FORMATS + ("dot",) else "svg"
    if out is None:
        out = pathlib.Path(f"{args.model}_{args.view}.{fmt}")
    if args.depth is not None and args.depth < 0:
        print(f"tinygrad-cnn graph: --depth must be >= 0, got {args.depth}.", file=sys.stderr)
        return 2
    g = model_graph(args.model, view=args.view, depth=args.depth, show_values=args.values, batch=args.batch)
    if fmt == "dot":
        if out.suffix.lower() != ".dot":
            out = out.with_name(out.name + ".dot")
        from .graph import _write_atomic

        _write_atomic(out, g.source.encode("utf-8"))
        print(out)
        return 0
    try:
        path = render(g, out, format=fmt)
    except GraphvizNotFoundError as e:
        print(f"tinygrad-cnn graph: {e} Or write the DOT source with --format dot.", file=sys.stderr)
        return 1
    print(path)
    return 0
