"""The reverse-mode engine: walks recorded nodes from the outputs back to the leaves.

The walk is iterative (a 100,000-op chain works): one pass counts, for every node reachable
from the outputs, how many edges lead into it; a node runs once all of them have delivered
their gradient, so each node's backward runs exactly once however often its outputs were used.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .function import Node
from .grad_mode import STATE, set_grad_enabled


def _seed_gradient(root: Any, gradient: Any) -> Any:
    from ..tensor import Tensor, as_tensor

    if gradient is None:
        if root.size != 1:
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
    from ..tensor import Tensor

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

    # Pass 1: count incoming edges of every reachable node (iteratively).
    deps: dict[Node, int] = {}
    start = [r.grad_fn for r, _ in seeds if r.grad_fn is not None]
    seen = set(start)
    stack = list(seen)
    while stack:
        n = stack.pop()
        for e in n.next_edges:
            if e is not None and isinstance(e[0], Node):
                m = e[0]
                deps[m] = deps.get(m, 0) + 1
                if m not in seen:
                    seen.add(m)
                    stack.append(m)

    buffers: dict[Node, list] = {}
    owned: set[int] = set()  # arrays already handed to a .grad: copy before sharing them again

    def deliver_leaf(t: Any, g: Any) -> None:
        if capture is not None:
            for i in capture.get(id(t), ()):
                captured[i] = g if captured[i] is None else captured[i] + g
            return
        if t.grad is None:
            if not create_graph:
                base = g.data if g.data.base is None else g.data.base
                if id(base) in owned:
                    g = Tensor._make(g.data.copy(), None, 0)
                else:
                    owned.add(id(base))
                    g = g.detach() if g.requires_grad else g
            t.grad = g
        else:
            t.grad = t.grad + g if create_graph else Tensor._make(t.grad.data + g.data, None, 0)

    for r, g in seeds:
        if r.grad_fn is None:
            deliver_leaf(r, g)
        else:
            buf = buffers.setdefault(r.grad_fn, [None] * len(r.grad_fn._out_meta))
            k = r._output_nr
            buf[k] = g if buf[k] is None else buf[k] + g

    ready = [n for n in seen if deps.get(n, 0) == 0]
    with set_grad_enabled(create_graph):
        while ready:
            node = ready.pop()
            buf = buffers.pop(node, None)
            if capture is not None and buf is not None:
                for k, g in enumerate(buf):
                    for i in capture.get((node, k), ()):
                        captured[i] = g
            grads_in: Any = None
            if buf is not None and any(g is not None for g in buf):
                grads_in = _call_backward(node, buf)
            elif node._released:
                node._check_saved()  # a second backward without retain_graph: say so
            if not retain_graph:
                node.release()
            for idx, e in enumerate(node.next_edges):
                if e is None:
                    continue
                m, k = e
                g = grads_in[idx] if grads_in is not None else None
                if isinstance(m, Node):
                    if g is not None:
                        g = _conform(node, idx, g, m._out_meta[k])
                        b = buffers.get(m)
                        if b is None:
                            b = buffers[m] = [None] * len(m._out_meta)
                        b[k] = g if b[k] is None else b[k] + g
                    deps[m] -= 1
                    if deps[m] == 0:
                        ready.append(m)
                elif g is not None:
                    deliver_leaf(m, _conform(node, idx, g, (m.shape, m.dtype)))

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
    from ..tensor import Tensor

    node._check_saved()
    grads_out = [
        g if g is not None else Tensor._make(np.zeros(s, dtype=d), None, 0)
        for g, (s, d) in zip(buf, node._out_meta)
    ]
    if STATE.anomaly:
        STATE.in_backward = True
        try:
            res = node._fn.backward(node, *grads_out)
        finally:
            STATE.in_backward = False
    else:
        res = node._fn.backward(node, *grads_out)
    if not isinstance(res, tuple):
        res = (res,)
    n_in = len(node.next_edges)
    if len(res) != n_in:
        raise RuntimeError(
            f"{node.name}.backward returned {len(res)} gradient(s) but the op has {n_in} input(s); "
            "return one gradient (or None) per positional input of forward."
        )
    if STATE.anomaly:
        from .anomaly import check_backward

        check_backward(node, res)
    return res


def _conform(node: Node, idx: int, g: Any, meta: tuple) -> Any:
    """Check a gradient against its input's shape; cast it to the input's dtype."""
    from ..tensor import Tensor, as_tensor

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
    from ..tensor import Tensor

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
