"""The reverse-mode engine: runs the recorded nodes from the outputs back to the leaves.

Nodes run in decreasing creation order (``Node.sequence_nr``), popped from a heap: every
consumer of a node was created after it, so when a node is popped all gradient into it has
arrived, and its backward runs exactly once however often its outputs were used. There is no
recursion and no pass that counts dependencies first, so a graph of any depth works.
"""
from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any

import numpy as np

from .function import Node
from .grad_mode import run_ieee, set_grad_enabled, state
from .hooks import run_hooks

# Bound by tinygrad_cnn.tensor once the Tensor class exists (see function.py).
Tensor: Any = None
as_tensor: Any = None


def _seed_gradient(root: Any, gradient: Any) -> Any:

    if gradient is None:
        if root.numel() != 1:
            raise RuntimeError(
                f"backward: the output has shape {root.shape}, not a single element, so the gradient "
                "to start from is ambiguous. Pass gradient=<tensor of that shape> (e.g. "
                "ones_like(output)), or reduce the output first (output.sum().backward())."
            )
        return Tensor._make(np.ones(root.shape, dtype=root.dtype), None, 0)
    g = gradient if isinstance(gradient, Tensor) else as_tensor(gradient, like=root)
    if g.shape != root.shape:
        raise ValueError(
            f"backward: gradient has shape {g.shape} but the output has shape {root.shape}; they must match."
        )
    return g


def run_backward(
    roots: Sequence[Any],
    grad_roots: Sequence[Any],
    *,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Sequence[Any] | None = None,
    allow_unused: bool = False,
) -> list | None:
    """Back-propagate from ``roots``. With ``inputs`` given, return their gradients instead of
    accumulating into ``.grad`` (that is :func:`grad`)."""

    if retain_graph is None:
        retain_graph = create_graph
    seeds = []
    for r, g in zip(roots, grad_roots):
        if not r.requires_grad:
            raise RuntimeError(
                f"backward: the output (shape {r.shape}) does not require grad and has no grad_fn. "
                "Make sure some input was created with requires_grad=True and the forward did not "
                "run under no_grad()."
            )
        seeds.append((r, _seed_gradient(r, g)))

    # Capture targets for grad(): leaves by identity, non-leaves by (node, output index).
    capture: dict | None = None
    if inputs is not None:
        capture = {}
        for i, t in enumerate(inputs):
            key = (t.grad_fn, t._output_nr) if t.grad_fn is not None else id(t)
            capture.setdefault(key, []).append(i)
    captured: list = [None] * (len(inputs) if inputs is not None else 0)

    # A max-heap on node._seq (see the module docstring). Sequence numbers are unique, so the
    # heap never compares two nodes.
    buffers: dict[Node, list] = {}
    heap: list = []

    # Each leaf's gradients are summed first, then its hooks see the sum once (as PyTorch's
    # AccumulateGrad does) and it is accumulated into .grad or captured.
    leaves: dict[int, list] = {}
    taken: set[int] = set()  # the arrays some .grad took without a copy

    def to_leaf(t: Any, g: Any, new: bool) -> None:
        # ``new``: g's array is held by nothing else (see _is_new), so .grad may take it as it is.
        entry = leaves.get(id(t))
        if entry is None:
            leaves[id(t)] = [t, g, new]
        else:
            entry[1], entry[2] = entry[1] + g, True

    def deliver_leaf(t: Any, g: Any, new: bool) -> None:
        hooks = t.__dict__.get("_hooks")
        if hooks:
            g, new = run_hooks(hooks, g), False  # a hook may keep what it saw or return its own array
        if capture is not None:
            for i in capture.get(id(t), ()):
                captured[i] = g
            return
        if t.grad is None:
            # A .grad is modified in place by users and optimizers, so it gets memory of its own: a
            # backward may hand on a broadcast view, the seed gradient or an array another leaf got.
            if create_graph:
                t.grad = g.clone()
            elif new and id(g.data) not in taken:
                taken.add(id(g.data))
                t.grad = Tensor._make(g.data, None, 0)
            else:
                t.grad = Tensor._make(np.array(g.data, copy=True), None, 0)
        else:
            t.grad = t.grad + g if create_graph else Tensor._make(run_ieee(np.add, t.grad.data, g.data), None, 0)

    for r, g in seeds:
        node = r.grad_fn
        if node is None:
            to_leaf(r, g, False)  # the seed is the caller's array
            continue
        buf = buffers.get(node)
        if buf is None:
            buf = buffers[node] = [None] * len(node._out_meta)
            heappush(heap, (-node._seq, node))
        k = r._output_nr
        buf[k] = g if buf[k] is None else buf[k] + g

    anomaly_mode = state().anomaly
    with set_grad_enabled(create_graph):
        while heap:
            node = heappop(heap)[1]
            buf = buffers.pop(node)
            if node._released:
                _consumed(node)
            if node.hooks is not None:
                _run_tensor_hooks(node, buf)
            if capture is not None:
                for k, g in enumerate(buf):
                    for i in capture.get((node, k), ()):
                        captured[i] = g
            if len(buf) == 1 and not anomaly_mode:
                grads_in = node._fn.backward(node, buf[0])
                if type(grads_in) is not tuple:
                    grads_in = (grads_in,)
                if len(grads_in) != len(node.next_edges):
                    _wrong_count(node, grads_in)
            else:
                grads_in = _call_backward(node, buf)
            if not retain_graph:
                node._saved = None
                node._released = True
                if node._locked or node._on_release:
                    node.release()
            for idx, e in enumerate(node.next_edges):
                g = grads_in[idx]
                if e is None or g is None:
                    continue
                m, k = e
                if type(m) is Node:
                    meta = m._out_meta[k]
                    if type(g) is not Tensor or g.data.shape != meta[0] or g.data.dtype != meta[1]:
                        g = _conform(node, idx, g, meta)
                    b = buffers.get(m)
                    if b is None:
                        buffers[m] = b = [None] * len(m._out_meta)
                        heappush(heap, (-m._seq, m))
                        b[k] = g
                    else:
                        b[k] = g if b[k] is None else b[k] + g
                else:
                    gl = _conform(node, idx, g, (m.shape, m.dtype))
                    to_leaf(m, gl, _is_new(node, g, gl, buf))
        for t, g, new in leaves.values():
            deliver_leaf(t, g, new)

    if inputs is None:
        return None
    for i, t in enumerate(inputs):
        if captured[i] is None and not allow_unused:
            raise RuntimeError(
                f"grad: input {i} (shape {t.shape}) is not reachable from the outputs, so it has no "
                "gradient. Pass allow_unused=True to get None for it."
            )
    return captured


def _call_backward(node: Node, buf: list) -> tuple:
    # Modified saved values are reported by ctx.saved_tensors when backward reads them.
    if len(buf) == 1:
        res = node._fn.backward(node, buf[0]) if not state().anomaly else _backward_checked(node, buf)
    else:
        grads_out = [
            g if g is not None else Tensor._make(np.zeros(s, dtype=d), None, 0) for g, (s, d) in zip(buf, node._out_meta)
        ]
        res = node._fn.backward(node, *grads_out) if not state().anomaly else _backward_checked(node, grads_out)
    if type(res) is not tuple:
        res = (res,)
    if len(res) != len(node.next_edges):
        _wrong_count(node, res)
    return res


def _is_new(node: Node, g: Any, conformed: Any, buf: list) -> bool:
    """Whether ``conformed`` (``g`` from the backward of ``node``, cast to its input's dtype) is an
    array that nothing else holds: not a view, and either made by the cast or promised new by the
    op (``Function.new_gradients``) and none of the gradients that came in (which the caller or
    another path may hold)."""
    a = conformed.data
    if a.base is not None or not isinstance(g, Tensor):
        return False
    if a is not g.data:  # the cast made it
        return True
    return node._fn.new_gradients and all(b is None or b.data is not a for b in buf)


def _run_tensor_hooks(node: Node, buf: list) -> None:
    """The gradients of the node's outputs through their ``register_hook`` hooks, then ``retain_grad``."""
    for k, (hooks, keep) in (node.hooks or {}).items():
        g = buf[k]
        if g is None:
            continue
        if hooks:
            buf[k] = g = run_hooks(hooks, g)
        if keep is not None:
            keep(g)


def _consumed(node: Node) -> None:
    raise RuntimeError(
        f"{node.name}: trying to backward through the graph a second time: the first backward() "
        "consumed it (and freed its saved arrays). Pass retain_graph=True to the first backward() "
        "(or autograd.grad) if you need to backward twice."
    )


def _wrong_count(node: Node, res: tuple) -> None:
    raise RuntimeError(
        f"{node.name}.backward returned {len(res)} gradient(s) but the op has {len(node.next_edges)} input(s); "
        "return one gradient (or None) per positional input of forward."
    )


def _backward_checked(node: Node, grads_out: list) -> Any:
    from .anomaly import check_backward

    state().in_backward = True
    try:
        res = node._fn.backward(node, *grads_out)
    finally:
        state().in_backward = False
    check_backward(node, res if type(res) is tuple else (res,))
    return res


def _conform(node: Node, idx: int, g: Any, meta: tuple) -> Any:
    """Check a gradient against its input's shape; cast it to the input's dtype."""

    if not isinstance(g, Tensor):
        g = as_tensor(g)
    shape, dtype = meta
    if g.shape != shape:
        raise RuntimeError(
            f"{node.name}.backward returned a gradient of shape {g.shape} for input {idx}, whose "
            f"shape is {shape}. A gradient must have its input's shape (sum over broadcast axes)."
        )
    if g.dtype != dtype and np.issubdtype(dtype, np.floating):
        g = g.astype(dtype)
    return g


def grad(
    outputs: Any,
    inputs: Any,
    grad_outputs: Any = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """Gradients of ``outputs`` with respect to ``inputs``, returned (``.grad`` is left untouched).

    ``outputs`` and ``inputs`` are Tensors or sequences of Tensors; ``grad_outputs`` matches
    ``outputs`` (``None`` for single-element outputs). Example::

        x = tensor([1.0, 2.0], requires_grad=True)
        (g,) = grad((x ** 3).sum(), x, create_graph=True)   # 3 x^2, differentiable again
    """

    outs = [outputs] if isinstance(outputs, Tensor) else list(outputs)
    ins = [inputs] if isinstance(inputs, Tensor) else list(inputs)
    if grad_outputs is None:
        gos = [None] * len(outs)
    else:
        gos = [grad_outputs] if isinstance(grad_outputs, Tensor) or not isinstance(grad_outputs, (list, tuple)) else list(grad_outputs)
    for i, t in enumerate(ins):
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError(f"grad: input {i} does not require grad; create it with requires_grad=True.")
    res = run_backward(
        outs, gos, retain_graph=retain_graph, create_graph=create_graph, inputs=ins, allow_unused=allow_unused
    )
    return tuple(res)  # type: ignore[arg-type]
