"""``check_graph``: check every op of a recorded graph on its own inputs, in float64.

A gradcheck of a whole model says *that* a gradient is wrong; ``check_graph`` says *which op*.
It walks the nodes of a forward pass and, for each one, re-runs that op (``node.op.apply`` with
``node.params``) on float64 copies of the very tensors it received, and gradchecks it there. A
wrong backward rule deep inside a model is reported as "node #7 Conv2d (in module conv2)".

Where the inputs come from:

- ``check_graph(fn, inputs)`` runs ``fn(*inputs)`` itself under ``autograd.keep_inputs()``, in
  float64 (inputs are promoted as in :func:`~tinygrad_cnn.check.gradcheck.gradcheck`), so every node keeps its input tensors.
- ``check_graph(output)`` checks a graph you already built. Nodes only keep their inputs when
  the forward ran under ``with tinygrad_cnn.autograd.keep_inputs():`` (off by default: it keeps
  every activation alive); otherwise ``check_graph`` raises ``ValueError`` saying so. The nodes
  are still checked in float64: each op is re-run on float64 copies of its recorded inputs.

The result's ``failing_nodes`` are the :class:`~tinygrad_cnn.autograd.Node` objects whose
backward is wrong (the graph renderer draws them red).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..autograd.function import Node
from ..autograd.grad_mode import FunctionScope, enable_grad, keep_inputs
from ..autograd.graph import walk
from ..pytree import tree_leaves
from ..tensor import Tensor
from .checker import run
from .problem import FlatProblem, Setup, second_order
from .report import GradcheckResult
from .structural import leaf_labels

__all__ = ["FULL_BUDGET", "GraphCheckResult", "NodeCheck", "check_graph"]

# check_graph's fast_mode=None picks full mode for a node when 2*numel(inputs) + numel(outputs)
# (forward + backward passes of a full check) stays under this.
FULL_BUDGET = 1200


@dataclass
class NodeCheck:
    """The check of one node: ``position`` in forward order, where each input comes from,
    the module scope, and the :class:`GradcheckResult` of its first (and with ``gradgrad=True``
    second) derivatives. ``skipped`` says why a node was not checked."""

    node: Node
    position: int
    inputs: list[str]
    scope: str
    result: GradcheckResult | None = None
    second: GradcheckResult | None = None
    skipped: str = ""

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def passed(self) -> bool:
        return (self.result is None or self.result.passed) and (self.second is None or self.second.passed)

    def title(self) -> str:
        """One line naming the op: ``#position Name in scope (inputs: ...)``."""
        where = f" in {self.scope}" if self.scope else ""
        return f"#{self.position} {self.name}{where} (inputs: {', '.join(self.inputs) or 'none'})"

    def __str__(self) -> str:
        if self.skipped:
            return f"{self.title()}: skipped ({self.skipped})"
        if self.passed:
            return f"{self.title()}: ok"
        parts = [f"{self.title()}: FAILED"]
        for r in (self.result, self.second):
            if r is not None and not r.passed:
                parts += ["    " + line for line in str(r).splitlines()]
        return "\n".join(parts)


class GraphCheckResult:
    """Per-node results of :func:`check_graph`; ``bool(result)`` is ``result.passed``.

    ``nodes`` lists a :class:`NodeCheck` per node in forward order, ``failures`` the failing
    ones, ``failing_nodes`` their Node objects; ``result[node]`` looks one up.
    """

    def __init__(self, nodes: list[NodeCheck]) -> None:
        self.nodes = nodes
        self._by_id = {id(c.node): c for c in nodes}

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.nodes)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[NodeCheck]:
        return [c for c in self.nodes if not c.passed]

    @property
    def failing_nodes(self) -> list[Node]:
        return [c.node for c in self.failures]

    def __getitem__(self, node: Node) -> NodeCheck:
        try:
            return self._by_id[id(node)]
        except KeyError:
            raise KeyError(f"GraphCheckResult: node {node!r} is not part of the checked graph.") from None

    def __len__(self) -> int:
        return len(self.nodes)

    def __str__(self) -> str:
        bad = self.failures
        skipped = [c for c in self.nodes if c.skipped]
        head = f"check_graph: {len(self.nodes)} node(s) checked, " + (f"{len(bad)} FAILED" if bad else "all passed")
        if skipped:
            head += f", {len(skipped)} skipped"
        lines = [head]
        lines += ["  " + s for c in bad for s in str(c).splitlines()]
        lines += ["  " + str(c) for c in skipped]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<GraphCheckResult {len(self.nodes)} nodes, {len(self.failures)} failing>"


def _promote_param(v: Any) -> Any:
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.floating)):
        return np.dtype(np.float64) if np.dtype(v).kind == "f" else v
    if isinstance(v, np.ndarray) and v.dtype.kind == "f":
        return v.astype(np.float64)
    return v


def _module_names(nodes: list[Node]) -> dict:
    """``id(module) -> dotted name`` and ``id(parameter) -> dotted name`` from the root modules."""
    names: dict = {}
    for n in nodes:
        root = next((m for m in n.scope if not isinstance(m, FunctionScope)), None)
        if root is None or id(root) in names:
            continue
        names[id(root)] = type(root).__name__
        if hasattr(root, "named_modules"):
            for name, m in root.named_modules():
                if name:
                    names.setdefault(id(m), name)
        if hasattr(root, "named_parameters"):
            for name, p in root.named_parameters():
                names.setdefault(id(p), name)
    return names


def _describe_inputs(node: Node, pos_of: dict, labels: dict) -> list[str]:
    """A short name per input: a leaf's name, ``#3 ReLU`` for another node's output, or ``constant``."""
    out = []
    for idx, e in enumerate(node.next_edges or [None] * len(node.input_tensors or ())):
        t = node.input_tensors[idx] if node.input_tensors is not None else None
        if e is None:
            out.append("constant")
        elif type(e[0]) is Node:
            m = e[0]
            out.append(f"#{pos_of.get(id(m), '?')} {m.name}" + (f"[{e[1]}]" if len(m.output_meta) > 1 else ""))
        else:
            lab = labels.get(id(e[0])) or (t.name if t is not None else None) or e[0].name
            out.append(lab if lab else f"leaf {tuple(e[0].shape)}")
    # The same tensor used twice (x * x) still needs two distinct labels.
    return [f"{s} (input {i})" if out.count(s) > 1 else s for i, s in enumerate(out)]


def _check_node(node: Node, pos: int, inputs: list[str], scope: str, opts: dict) -> NodeCheck:
    check = NodeCheck(node, pos, inputs, scope)
    params = {k: _promote_param(v) for k, v in node.params.items()}
    leaves, checked = [], []
    tensors = node.input_tensors
    assert tensors is not None  # check_graph refuses a graph recorded without its inputs
    for idx, t in enumerate(tensors):
        a = t.data
        need = bool(node.needs_input_grad[idx]) and a.dtype.kind == "f"
        leaves.append(Tensor(np.array(a, dtype=np.float64) if a.dtype.kind == "f" else a, requires_grad=need))
        if need:
            checked.append(idx)
    if not checked:
        check.skipped = "no floating input requires grad"
        return check
    op = node.op

    def fn(xs: list) -> list:
        out = op.apply(*xs, **params)
        return list(out) if isinstance(out, tuple) else [out]

    try:
        with enable_grad():
            outs0 = fn(leaves)
    except Exception as e:  # noqa: BLE001
        check.skipped = f"re-running the op in float64 raised {type(e).__name__}: {e}"
        return check
    skip = frozenset(j for j, o in enumerate(outs0) if not (isinstance(o, Tensor) and o.requires_grad and o.dtype.kind == "f"))
    in_labels = list(inputs)
    out_labels = [f"output[{j}]" if len(outs0) > 1 else "output" for j in range(len(outs0)) if j not in skip]
    prob = FlatProblem(fn, leaves, checked, in_labels, out_labels, needs_grad=False, skip_outputs=skip)
    prob.single_node = True
    n_in = sum(leaves[i].numel() for i in checked)
    n_out = sum(o.numel() for j, o in enumerate(outs0) if j not in skip)
    fast = opts["fast_mode"] if opts["fast_mode"] is not None else 2 * n_in + n_out > FULL_BUDGET
    run_opts = {k: opts[k] for k in ("eps", "atol", "rtol", "nondet_tol", "fail_on_kinks", "seed")}
    check.result = GradcheckResult(order=1, mode="fast" if fast else "full", eps=opts["eps"], atol=opts["atol"], rtol=opts["rtol"])
    check.result.inputs = [(in_labels[i], leaves[i].shape, tensors[i].dtype) for i in checked]
    run(prob, check.result, fast_mode=fast, **run_opts)
    if opts["gradgrad"]:
        prob2 = second_order(fn, leaves, checked, in_labels, opts["seed"], skip)
        prob2.single_node = True
        check.second = GradcheckResult(order=2, mode="fast" if fast else "full", eps=opts["eps"], atol=opts["atol"], rtol=opts["rtol"])
        check.second.inputs = [(prob2.in_labels[i], prob2.leaves[i].shape, np.dtype(np.float64)) for i in prob2.checked]
        run(prob2, check.second, fast_mode=fast, **run_opts)
    return check


def check_graph(
    output_or_fn: Any,
    inputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool | None = None,
    gradgrad: bool = False,
    fail_on_kinks: bool = False,
    nondet_tol: float = 0.0,
    seed: int | np.random.Generator | None = None,
) -> GraphCheckResult:
    """Gradcheck every node of a graph on its own inputs, in float64; pin wrong backwards to ops.

    ``check_graph(fn, inputs)`` runs ``fn`` (inputs as in :func:`~tinygrad_cnn.check.gradcheck.gradcheck`) under
    ``keep_inputs()``; ``check_graph(output)`` takes Tensors whose forward ran under
    ``with autograd.keep_inputs():``. ``fast_mode=None`` uses full mode for small nodes and
    random projections for large ones; ``gradgrad=True`` also checks each node's second
    derivatives. Returns a :class:`GraphCheckResult` (never raises for a wrong gradient).

    Example::

        res = check_graph(lambda x, w: (x @ w).relu().sum(), (x, w))
        res.passed, res.failing_nodes            # (True, [])
        print(res)                               # one line per failing node, with its report
    """
    labels: dict = {}
    if callable(output_or_fn) and not isinstance(output_or_fn, Tensor):
        if inputs is None:
            raise TypeError("check_graph(fn, inputs): pass the inputs to call fn with, e.g. check_graph(fn, (x, w)).")
        setup = Setup(output_or_fn, inputs, "check_graph")
        with keep_inputs(), enable_grad():
            outs = setup.flat(setup.leaves)
        labels = leaf_labels(setup.leaves, setup.labels)
    else:
        if inputs is not None:
            raise TypeError("check_graph(output): inputs are only for check_graph(fn, inputs); the output's graph already has them.")
        outs = [t for t in tree_leaves(output_or_fn) if isinstance(t, Tensor)]
        if not outs:
            raise TypeError(f"check_graph: expected a Tensor (or pytree of Tensors) or a function, got {type(output_or_fn).__name__}.")
    nodes = walk(outs)
    if not nodes:
        raise ValueError("check_graph: the output has no recorded graph (no input required grad, or it ran under no_grad()).")
    missing = [n for n in nodes if n.input_tensors is None]
    if missing:
        raise ValueError(
            f"check_graph(output): node {missing[0].name} (and {len(missing) - 1} other(s)) was recorded without its input tensors, "
            "so its op cannot be re-run. Run the forward under `with tinygrad_cnn.autograd.keep_inputs():` before calling "
            "check_graph(output), or call check_graph(fn, inputs), which does that for you."
        )
    names = _module_names(nodes)
    for n in nodes:  # parameters named by their module path, e.g. 'conv1.weight'
        for t in n.input_tensors or ():  # all set: checked above
            if id(t) in names and id(t) not in labels:
                labels[id(t)] = names[id(t)]
    pos_of = {id(n): i for i, n in enumerate(nodes)}
    opts = {
        "eps": eps,
        "atol": atol,
        "rtol": rtol,
        "fast_mode": fast_mode,
        "gradgrad": gradgrad,
        "fail_on_kinks": fail_on_kinks,
        "nondet_tol": nondet_tol,
        "seed": seed,
    }
    checks = []
    for pos, node in enumerate(nodes):
        mods = [m for m in node.scope if not isinstance(m, FunctionScope)]  # where, by module; functions are not places
        scope = " > ".join(names.get(id(m), type(m).__name__) for m in mods[1:])
        if mods and not scope:
            scope = names.get(id(mods[0]), type(mods[0]).__name__)
        checks.append(_check_node(node, pos, _describe_inputs(node, pos_of, labels), scope, opts))
    return GraphCheckResult(checks)
