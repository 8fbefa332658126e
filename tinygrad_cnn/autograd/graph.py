"""Reading a recorded graph: the one walk that tools (the gradient checker, the graph renderer)
use to list the nodes behind some outputs. The engine does not use it: backward pops nodes from
a heap as their gradients arrive."""
from __future__ import annotations

from typing import Any

from .function import Node

__all__ = ["walk"]


def walk(roots: Any) -> list[Node]:
    """The nodes reachable from ``roots``, in creation order (``node.sequence_nr``), which puts
    every node before the nodes that consumed its outputs.

    ``roots`` is a Tensor, a Node, or an iterable of them; a Tensor without a ``grad_fn`` (a leaf,
    or a result computed under ``no_grad``) contributes nothing. The walk is iterative, so a
    graph of any depth works.

    Example::

        x = tensor([1.0, 2.0], requires_grad=True)
        [n.name for n in walk((x * 2).relu().sum())]        # ['Mul', 'ReLU', 'Sum']
    """
    items = [roots] if isinstance(roots, Node) or hasattr(roots, "grad_fn") else list(roots)
    start = [r if isinstance(r, Node) else getattr(r, "grad_fn", None) for r in items]
    seen: dict[int, Node] = {id(n): n for n in start if n is not None}
    stack = list(seen.values())
    while stack:
        n = stack.pop()
        for e in n.next_edges:
            if e is not None and type(e[0]) is Node and id(e[0]) not in seen:
                seen[id(e[0])] = e[0]
                stack.append(e[0])
    return sorted(seen.values(), key=lambda n: n.sequence_nr)
