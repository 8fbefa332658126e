"""The function under check as a *flat problem*: a function of a list of leaf Tensors that
returns a list of floating output Tensors, with the leaves to check and labels for reports.

:class:`Setup` turns the user's ``fn`` and pytree of inputs into one (inputs promoted to
float64); :func:`second_order` builds the problem whose first derivatives are the second
derivatives of another (``gradgradcheck``). The checker only ever sees :class:`FlatProblem`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from ..autograd.engine import grad as autograd_grad
from ..autograd.function import Function
from ..autograd.grad_mode import enable_grad, no_grad
from ..pytree import keystr, tree_flatten_with_path
from ..tensor import Tensor, get_rng

__all__ = ["FlatProblem", "Setup", "second_order"]


class FlatProblem:
    """``fn(leaves) -> list of output Tensors`` with the leaves to check and their labels.

    Example: ``FlatProblem(lambda xs: [xs[0].exp()], [x], [0], ["x"], ["output"], needs_grad=False).evaluate()``.
    """

    def __init__(
        self,
        fn: Callable[[list], list],
        leaves: list,
        checked: list[int],
        in_labels: list[str],
        out_labels: list[str],
        needs_grad: bool,
        skip_outputs: frozenset = frozenset(),
    ) -> None:
        self.fn = fn
        self.leaves = leaves
        self.checked = checked
        self.in_labels = in_labels
        self.out_labels = out_labels
        self.needs_grad = needs_grad  # fn differentiates internally: perturbed leaves must require grad
        self.skip_outputs = skip_outputs
        self.single_node = False  # set by check_graph: the graph is one op, so say "input i" not "node #0"

    def outputs(self, leaves: list, grad: bool) -> list:
        with enable_grad() if grad or self.needs_grad else no_grad():
            outs = self.fn(leaves)
        return [o for j, o in enumerate(outs) if j not in self.skip_outputs and isinstance(o, Tensor)]

    def evaluate(self, i: int | None = None, array: np.ndarray | None = None) -> np.ndarray:
        """All outputs, flattened and concatenated (a fresh float64 vector)."""
        leaves = self.leaves
        if i is not None:
            leaves = list(leaves)
            leaves[i] = Tensor(array, requires_grad=self.needs_grad)
        outs = self.outputs(leaves, grad=False)
        if not outs:
            return np.zeros(0)
        return np.concatenate([np.asarray(o.data, dtype=np.float64).reshape(-1) for o in outs])

    def graph(self) -> list:
        return self.outputs(self.leaves, grad=True)


def _promote(x: Any) -> Any:
    if isinstance(x, Tensor) and x.dtype.kind == "f":
        return Tensor(np.array(x.data, dtype=np.float64), requires_grad=x.requires_grad, name=x.name)
    return x


def _flatten_outputs(out: Any) -> tuple[list, list[str]]:
    pairs, _ = tree_flatten_with_path(out)
    tensors, labels = [], []
    for path, leaf in pairs:
        if isinstance(leaf, Tensor) and leaf.dtype.kind == "f":
            tensors.append(leaf)
            labels.append(keystr(path, "output"))
    return tensors, labels


def _arg_names(fn: Callable, n: int) -> list[str]:
    names: list[str] = []
    owner = getattr(fn, "__self__", None)
    if isinstance(owner, type) and issubclass(owner, Function) and getattr(fn, "__name__", "") == "apply":
        fn = owner.forward  # MyOp.apply: name the inputs after forward(ctx, x, w, ...)
        skip = 1
    else:
        skip = 0
    try:
        params = list(inspect.signature(fn).parameters.values())[skip:]
    except (TypeError, ValueError):
        params = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}[{j}]" for j in range(n - len(names))]
            break
    names = names[:n]
    return names + [f"inputs[{j}]" for j in range(len(names), n)]


class Setup:
    """The user's ``fn`` and pytree ``inputs`` as a flat problem, promoted to float64.

    Example: ``Setup(lambda x, w: x @ w, (x, w), "gradcheck").problem("gradcheck")``.
    """

    def __init__(self, fn: Callable, inputs: Any, op: str) -> None:
        if not callable(fn):
            raise TypeError(f"{op}: fn must be callable, got {type(fn).__name__}.")
        self.positional = isinstance(inputs, (tuple, list))
        args = tuple(inputs) if self.positional else (inputs,)
        names = _arg_names(fn, len(args))
        pairs, self.treedef = tree_flatten_with_path(args)
        self.fn = fn
        self.leaves: list = []
        self.labels: list[str] = []
        self.checked: list[int] = []
        self.orig_dtypes: list[Any] = []
        for path, leaf in pairs:
            root = names[path[0].idx]
            top = isinstance(leaf, Tensor) and len(path) == 1 and leaf.name
            label = leaf.name if top else keystr(path[1:], root)
            if isinstance(leaf, Tensor) and leaf.requires_grad and leaf.dtype.kind == "f":
                self.checked.append(len(self.leaves))
            self.orig_dtypes.append(leaf.dtype if isinstance(leaf, Tensor) else None)
            self.leaves.append(_promote(leaf))
            self.labels.append(label)
        if len(set(self.labels)) != len(self.labels):  # e.g. two tensors with the same name
            self.labels = [f"{lab} (#{i})" if self.labels.count(lab) > 1 else lab for i, lab in enumerate(self.labels)]
        self.warnings: list[str] = []
        for i in self.checked:
            dt = self.orig_dtypes[i]
            if dt != np.float64:
                self.warnings.append(
                    f"input '{self.labels[i]}' is {dt}; it is checked as a float64 copy (finite differences in {dt} are too "
                    "coarse to tell a wrong gradient from rounding). The result is valid; pass float64 inputs to silence this."
                )
        self.out_labels: list[str] = []

    def call(self, leaves: list) -> Any:
        args = self.treedef.unflatten(leaves)
        return self.fn(*args) if self.positional else self.fn(args[0])

    def flat(self, leaves: list) -> list:
        outs, _ = _flatten_outputs(self.call(leaves))
        return outs

    def problem(self, op: str) -> FlatProblem:
        with enable_grad():
            out = self.call(self.leaves)
        outs, self.out_labels = _flatten_outputs(out)
        if not self.checked:
            raise ValueError(
                f"{op}: no input to check: pass at least one floating-point Tensor with requires_grad=True "
                "(e.g. tensor(..., dtype=np.float64, requires_grad=True))."
            )
        if not outs:
            raise ValueError(f"{op}: fn returned no floating-point Tensor (got {type(out).__name__}); there is nothing to differentiate.")
        for lab, o in zip(self.out_labels, outs):
            if o.dtype != np.float64:
                self.warnings.append(
                    f"{lab} is {o.dtype} although the inputs were promoted to float64: fn casts or creates {o.dtype} tensors, "
                    "so the numerical derivative is only as precise as that dtype."
                )
        return FlatProblem(self.flat, self.leaves, list(self.checked), self.labels, self.out_labels, needs_grad=False)


def second_order(
    flat: Callable[[list], list],
    leaves: list,
    checked: list[int],
    labels: list[str],
    seed: Any,
    skip: frozenset,
    grad_outputs: list | None = None,
) -> FlatProblem:
    """The problem ``(leaves, v) -> vjp(flat, leaves)(v)`` whose gradcheck checks second derivatives.

    Example: ``second_order(setup.flat, setup.leaves, setup.checked, setup.labels, seed=0, skip=frozenset())``.
    """
    with enable_grad():
        outs0 = [o for j, o in enumerate(flat(leaves)) if j not in skip]
    if grad_outputs is None:
        rng = get_rng(seed)
        gos = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs0]
    else:
        if len(grad_outputs) != len(outs0):
            raise ValueError(f"gradgradcheck: got {len(grad_outputs)} grad_outputs for {len(outs0)} floating outputs; pass one per output.")
        gos = []
        for g, o in zip(grad_outputs, outs0):
            a = np.array(g.data if isinstance(g, Tensor) else g, dtype=np.float64)
            if a.shape != o.shape:
                raise ValueError(f"gradgradcheck: a grad_output has shape {a.shape} but its output has shape {o.shape}.")
            gos.append(Tensor(a, requires_grad=True))
    n = len(leaves)

    def first_derivative(xs_vs: list) -> list:
        xs, vs = xs_vs[:n], xs_vs[n:]
        outs = [o for j, o in enumerate(flat(xs)) if j not in skip]
        pairs = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
        wrt = [xs[i] for i in checked]
        gs = (
            autograd_grad([o for o, _ in pairs], wrt, [v for _, v in pairs], create_graph=True, allow_unused=True)
            if pairs
            else [None] * len(wrt)
        )
        return [g if g is not None else Tensor(np.zeros(x.shape)) for g, x in zip(gs, wrt)]

    go_labels = [f"grad_outputs[{j}]" if len(gos) > 1 else "grad_output" for j in range(len(gos))]
    return FlatProblem(
        first_derivative,
        list(leaves) + gos,
        list(checked) + list(range(n, n + len(gos))),
        list(labels) + go_labels,
        [f"grad {labels[i]}" for i in checked],
        needs_grad=True,
    )
