"""Structural checks of a graph: call each node's backward alone and check what it returns
(an exception, the wrong number of gradients, a gradient of the wrong shape or dtype). The engine
casts dtypes silently and a wrong shape may broadcast away later, so each node is looked at on
its own; this also pins an exception during backward to the node that raised it."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.function import Node
from ..autograd.grad_mode import keep_inputs, no_grad
from ..autograd.graph import walk
from ..tensor import Tensor
from .problem import FlatProblem

__all__ = ["leaf_labels", "locate_exception", "structural_problems", "structural_walk"]


def leaf_labels(leaves: list, labels: list[str]) -> dict:
    """``id(leaf tensor) -> label`` for naming graph inputs in reports.

    Example: ``leaf_labels([x, w], ["x", "w"])[id(w)]`` is ``'w'``.
    """
    return {id(t): lab for t, lab in zip(leaves, labels)}


def _input_meta(node: Node, idx: int) -> tuple[tuple, np.dtype] | None:
    """Shape and dtype of input ``idx`` of ``node`` (``None`` for a constant input)."""
    if node.input_tensors is not None:
        t = node.input_tensors[idx]
        return t.shape, t.dtype
    e = node.next_edges[idx]
    if e is None:
        return None
    m, k = e
    return m.output_meta[k] if type(m) is Node else (m.shape, m.dtype)


def structural_problems(node: Node) -> list[tuple[str, int | None, str]]:
    """Call ``node``'s backward alone (on ones) and check what it returns.

    Returns ``(kind, input index or None, message)`` tuples; kind is ``'exception'``, ``'count'``
    (wrong number of gradients), ``'shape'``, ``'dtype'`` or ``'none'`` (None for an input that
    requires grad: treated as zero, reported for information). The node must not be released.
    """
    grads = [Tensor._make(np.ones(s, dtype=d if np.dtype(d).kind == "f" else np.float64), None, 0) for s, d in node.output_meta]
    try:
        with no_grad():
            res = node.op.backward(node, *grads)
    except Exception as e:  # noqa: BLE001 - the point is to report it
        return [("exception", None, f"backward raised {type(e).__name__}: {e}")]
    res = res if isinstance(res, tuple) else (res,)
    if len(res) != len(node.next_edges):
        return [("count", None, f"backward returned {len(res)} gradient(s) for {len(node.next_edges)} input(s)")]
    found: list[tuple[str, int | None, str]] = []
    for idx, (edge, g) in enumerate(zip(node.next_edges, res)):
        meta = _input_meta(node, idx)
        if edge is None or meta is None:
            continue
        shape, dtype = meta
        if g is None:
            found.append(("none", idx, "backward returned None for an input that requires grad (treated as zero)"))
            continue
        a = g.data if isinstance(g, Tensor) else np.asarray(g)
        if a.shape != tuple(shape):
            found.append(
                (
                    "shape",
                    idx,
                    f"backward returned a gradient of shape {a.shape} for an input of shape {tuple(shape)}; "
                    "a gradient must have its input's shape (sum over broadcast axes)",
                )
            )
        elif np.dtype(dtype).kind == "f" and a.dtype != dtype:
            found.append(
                (
                    "dtype",
                    idx,
                    f"backward returned a {a.dtype} gradient for a {np.dtype(dtype)} input (compute gradients in the input's dtype)",
                )
            )
    return found


def _edge_key(node: Node, idx: int) -> Any:
    e = node.next_edges[idx] if idx < len(node.next_edges) else None
    if e is None:
        return None
    return (id(e[0]), e[1]) if type(e[0]) is Node else id(e[0])


def _edge_label(node: Node, idx: int, labels: dict, nodes: list) -> str:
    e = node.next_edges[idx] if idx < len(node.next_edges) else None
    if e is None:
        return "a constant"
    m = e[0]
    if type(m) is Node:
        pos = next((k for k, n in enumerate(nodes) if n is m), None)
        return f"node #{pos} {m.name}" + (f" output {e[1]}" if len(m.output_meta) > 1 else "")
    lab = labels.get(id(m))
    return f"input '{lab}'" if lab else f"a leaf of shape {m.shape}"


def structural_walk(p: FlatProblem, skip: tuple = (), stop_at: tuple = ()) -> list[tuple[str, str | None, str]]:
    """``(kind, input label, message)`` for every node of ``p``'s graph whose backward, called
    alone, raises or returns a gradient of the wrong count/shape/dtype; kinds in ``skip`` are
    ignored, and the walk stops at the first problem of a kind in ``stop_at``.

    Example: ``structural_walk(Setup(fn, (x,), "gradcheck").problem("gradcheck"), skip=("none",))``.
    """
    with keep_inputs():
        outs = p.graph()
    labels = leaf_labels(p.leaves, p.in_labels)
    nodes = walk(outs)
    found = []
    for pos, node in enumerate(nodes):
        for kind, idx, msg in structural_problems(node):
            if kind in skip:
                continue
            label = labels.get(_edge_key(node, idx)) if idx is not None else None
            if p.single_node:
                where = (f"input {idx} ({label or _edge_label(node, idx, labels, nodes)}): " if idx is not None else "") + msg
            else:
                src = f" (input {idx} <- {_edge_label(node, idx, labels, nodes)})" if idx is not None else ""
                where = f"node #{pos} {node.name}{src}: {msg}"
            found.append((kind, label, where))
            if kind in stop_at:
                return found
    return found


def locate_exception(p: FlatProblem) -> tuple[str, str | None] | None:
    """Find the node whose backward raises (or returns a wrong shape) by calling each backward
    alone: ``(where, input label or None)``, or ``None`` if no single node fails.

    Example: ``locate_exception(prob)`` -> ``('node #1 Broken: backward raised ValueError: ...', None)``.
    """
    try:
        for _kind, label, where in structural_walk(p, skip=("none", "dtype"), stop_at=("exception", "shape", "count")):
            return where, label
    except Exception:  # locating is best effort; the original error is reported regardless
        return None
    return None
