"""Pictures of the computation graph (Graphviz): ``to_dot``, ``render``, ``draw_model``.

Matplotlib pictures of training live in :mod:`tinygrad_cnn.viz.plots`.
"""
from .graph import Graph, GraphvizNotFoundError, draw_model, render, to_dot

__all__ = ["Graph", "GraphvizNotFoundError", "draw_model", "render", "to_dot"]
