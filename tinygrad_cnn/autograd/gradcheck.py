"""Finite-difference gradient checks that explain themselves: ``gradcheck`` and ``gradgradcheck``.

Both compare the gradients computed by backward (the *analytical* Jacobian) with central
differences (the *numerical* Jacobian) in float64, and describe what they found in a
:class:`GradcheckResult`: for each input (named by its argument name or pytree path) and each
output, how many elements are wrong, where the worst one is in the input's own shape, both
values and the errors, and for 4-D inputs the largest error per channel.

- **Full mode** (default) builds both Jacobians: ``2 * numel(input)`` forward passes and one
  backward per output element.
- **Fast mode** compares random projections ``v^T J u`` (u, v standard normal): four forward
  passes per input (steps eps and 2 eps; their difference measures the numerical noise, which
  sets the tolerance) and one backward per output, so large layers are checked in seconds. An
  input whose projection disagrees is re-checked element by element to locate the wrong elements
  (inputs above 50,000 elements are reported without locating).
- **Kinks**: at a non-differentiable point (relu or abs at 0, a tie in max) a central
  difference averages two different one-sided derivatives. When an element fails, the checker
  compares the one-sided differences; if they disagree and backward's value lies between them
  (a valid one-sided derivative/subgradient), the element is reported as non-differentiable at
  that point instead of as a gradient error (``fail_on_kinks=True`` makes these fail).
- Also checked: every backward in the graph returns gradients of its input's shape and dtype
  (:func:`tinygrad_cnn.autograd.graph_check.structural_problems`), repeated backward passes agree
  within ``nondet_tol``, backward is linear in the incoming gradient, and an input that requires
  grad but gets ``None`` while its numerical gradient is nonzero is reported.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .engine import grad as autograd_grad
from .grad_mode import enable_grad, keep_inputs, no_grad

__all__ = [
    "ElementError",
    "GradcheckError",
    "GradcheckResult",
    "GradcheckWarning",
    "Kink",
    "PairReport",
    "Problem",
    "gradcheck",
    "gradgradcheck",
]

# Above this many output elements, an input that failed in fast mode is located against one
# random projection of the outputs (one scalar) instead of against every output element.
_LOCATE_FULL_OUTPUTS = 256
# Above this many elements a failing input is located by bisection, not element by element.
_LOCATE_MAX_ELEMENTS = 50_000
# Bisection, for larger inputs, reports at most this many wrong elements.
_BISECT_MAX_FOUND = 8
_MAX_KINKS_LISTED = 5


class GradcheckWarning(UserWarning):
    """Emitted when a check is less precise than it could be (e.g. a float32 input or output)."""


class GradcheckError(AssertionError):
    """A gradient check failed. ``str(err)`` is the readable summary; ``err.result`` is the full
    :class:`GradcheckResult` (``None`` if raised with a plain message)."""

    def __init__(self, result: GradcheckResult | str) -> None:
        self.result = result if isinstance(result, GradcheckResult) else None
        super().__init__(str(result))


# ---- the report --------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _idx(label: str, index: tuple[int, ...] | None) -> str:
    if index is None:
        return label
    return f"{label}[{', '.join(str(i) for i in index)}]" if index else label


@dataclass
class ElementError:
    """The worst wrong element of one (input, output) pair: ``index`` is in the input's shape,
    ``output_index`` in the output's shape (``None`` when located against a projection)."""

    index: tuple[int, ...]
    output_index: tuple[int, ...] | None
    numerical: float
    analytical: float

    @property
    def abs_error(self) -> float:
        return abs(self.analytical - self.numerical)

    @property
    def rel_error(self) -> float:
        return self.abs_error / abs(self.numerical) if self.numerical != 0 else math.inf


@dataclass
class Kink:
    """An element where the function is not differentiable: the one-sided differences ``left``
    and ``right`` disagree and backward's ``analytical`` value lies between them (``kind='kink'``),
    or the function jumps there (``kind='jump'``; ``left``/``right`` are then the central
    differences at eps and eps/2, which double as eps halves)."""

    index: tuple[int, ...]
    output_index: tuple[int, ...] | None
    left: float
    right: float
    analytical: float
    kind: str = "kink"  # or "jump": the function is discontinuous here (difference quotients grow like 1/eps)

    def describe(self, label: str) -> str:
        if self.kind == "jump":
            return (
                f"{label}: the function jumps here (central differences {_fmt(self.left)} at eps and {_fmt(self.right)} at eps/2 "
                f"grow like 1/eps); backward gave {_fmt(self.analytical)}"
            )
        return (
            f"{label}: one-sided derivatives {_fmt(self.left)} (left) and {_fmt(self.right)} (right); backward gave {_fmt(self.analytical)}"
        )


@dataclass
class PairReport:
    """What the check found for one input and one output.

    ``mismatches`` counts the input's elements with a wrong gradient (``entries`` the wrong
    Jacobian entries); ``wrong`` is a boolean mask in the input's shape, ``kink_mask`` marks the
    non-differentiable elements. ``mode`` is ``'full'``, ``'fast'`` (a passing projection) or
    ``'located'`` (fast mode failed and the input was re-checked element by element).
    """

    input: str
    output: str
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    mode: str
    ok: bool = True
    mismatches: int = 0
    entries: int = 0
    worst: ElementError | None = None
    kinks: list[Kink] = field(default_factory=list)
    n_kinks: int = 0
    channel_max_error: np.ndarray | None = None
    wrong: np.ndarray | None = None
    kink_mask: np.ndarray | None = None
    projection: tuple[float, float] | None = None
    note: str = ""

    def summary(self) -> list[str]:
        head = f"{self.input} {self.input_shape} -> {self.output} {self.output_shape}"
        if self.ok:
            extra = f" ({self.n_kinks} entries at non-differentiable points, see below)" if self.n_kinks else ""
            return [f"{head}: ok{extra}"]
        n = int(np.prod(self.input_shape))
        lines = [f"{head}: {self.mismatches} of {n} element(s) wrong" + (f" ({self.entries} Jacobian entries)" if self.entries else "")]
        if self.projection is not None and self.worst is None:
            num, ana = self.projection
            lines[0] = f"{head}: random projection v^T J u differs: numerical {_fmt(num)}, analytical {_fmt(ana)}"
        elif self.mismatches < 0:
            lines[0] = f"{head}: the random projection v^T J u differs (not located)"
        if self.note:
            lines.append(f"    note: {self.note}")
        w = self.worst
        if w is not None:
            via = "" if w.output_index is None else f" via {_idx(self.output, w.output_index)}"
            rel = "inf" if math.isinf(w.rel_error) else _fmt(w.rel_error)
            lines.append(
                f"    worst: {_idx(self.input, w.index)}{via}: numerical {_fmt(w.numerical)}, analytical {_fmt(w.analytical)}"
                f" (abs err {_fmt(w.abs_error)}, rel err {rel})"
            )
        if self.channel_max_error is not None and self.mismatches:
            ce = self.channel_max_error
            order = np.argsort(-ce)[:8]
            cells = "  ".join(f"c{int(c)}: {_fmt(float(ce[c]))}" for c in sorted(order) if ce[c] > 0)
            more = f"  (+{int((ce > 0).sum()) - min(8, int((ce > 0).sum()))} more channels)" if (ce > 0).sum() > 8 else ""
            lines.append(f"    largest error per channel: {cells}{more}")
        return lines


@dataclass
class Problem:
    """A failure that is not one wrong Jacobian entry. ``kind`` is one of ``'exception'``
    (backward raised), ``'shape'``, ``'dtype'`` (a backward returned a gradient of the wrong
    shape/dtype), ``'none_grad'``, ``'disconnected'``, ``'nondeterministic'``, ``'nonlinear'``."""

    kind: str
    input: str | None
    message: str

    def __str__(self) -> str:
        return self.message


class GradcheckResult:
    """Everything a gradient check found; ``bool(result)`` is ``result.passed``.

    Attributes: ``passed``, ``order`` (1 for gradcheck, 2 for gradgradcheck), ``mode``
    (``'full'`` or ``'fast'``), ``pairs`` (one :class:`PairReport` per checked input and output),
    ``problems`` (:class:`Problem` list), ``notes`` and ``warnings`` (strings), ``inputs``
    (label, shape, original dtype of each checked input). ``str(result)`` is a short summary.
    """

    def __init__(self, *, order: int, mode: str, eps: float, atol: float, rtol: float) -> None:
        self.order = order
        self.mode = mode
        self.eps, self.atol, self.rtol = eps, atol, rtol
        self.pairs: list[PairReport] = []
        self.problems: list[Problem] = []
        self.notes: list[str] = []
        self.warnings: list[str] = []
        self.inputs: list[tuple[str, tuple[int, ...], np.dtype]] = []

    @property
    def passed(self) -> bool:
        return not self.problems and all(p.ok for p in self.pairs)

    def __bool__(self) -> bool:
        return self.passed

    @property
    def failures(self) -> list[PairReport]:
        """The (input, output) pairs with wrong gradients."""
        return [p for p in self.pairs if not p.ok]

    @property
    def kinks(self) -> list[Kink]:
        return [k for p in self.pairs for k in p.kinks]

    def pair(self, input: str, output: str | None = None) -> PairReport:  # noqa: A002
        """The report of ``input`` (and ``output``; the first failing one, else the first, if omitted)."""
        cands = [p for p in self.pairs if p.input == input and (output is None or p.output == output)]
        if not cands:
            have = sorted({(p.input, p.output) for p in self.pairs})
            raise KeyError(f"GradcheckResult.pair: no report for input {input!r} output {output!r}; have {have}.")
        bad = [p for p in cands if not p.ok]
        return bad[0] if bad else cands[0]

    def wrong_inputs(self) -> list[str]:
        """Labels of inputs with a wrong gradient or a problem, in input order."""
        names = {p.input for p in self.failures} | {q.input for q in self.problems if q.input}
        return [lab for lab, _, _ in self.inputs if lab in names] + sorted(n for n in names if n not in {lab for lab, _, _ in self.inputs})

    def __str__(self) -> str:
        what = "gradgradcheck" if self.order == 2 else "gradcheck"
        status = "passed" if self.passed else "FAILED"
        lines = [f"{what} {status} ({self.mode} mode, float64, eps={self.eps:g}, atol={self.atol:g}, rtol={self.rtol:g})"]
        for p in self.pairs:
            lines += ["  " + s for s in p.summary()]
        kinks = [(p, k) for p in self.pairs for k in p.kinks]
        if kinks:
            total = sum(p.n_kinks for p in self.pairs)
            how = "counted as errors (fail_on_kinks=True)" if self._fail_kinks else "not counted as errors"
            lines.append(f"  non-differentiable points ({total} Jacobian entries; {how}):")
            for p, k in kinks[:_MAX_KINKS_LISTED]:
                via = "" if k.output_index is None else f" of {_idx(p.output, k.output_index)}"
                lines.append("    " + k.describe(f"{_idx(p.input, k.index)}{via}"))
            if total > _MAX_KINKS_LISTED:
                lines.append(f"    ... and {total - _MAX_KINKS_LISTED} more")
        if self.problems:
            lines.append("  problems:")
            lines += [f"    - {q.message}" for q in self.problems]
        for n in self.notes:
            lines.append(f"  note: {n}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    _fail_kinks = False

    def __repr__(self) -> str:
        status = "passed" if self.passed else "FAILED"
        return f"<GradcheckResult {status}: {len(self.failures)} failing pair(s), {len(self.problems)} problem(s)>"


# ---- flat problem: a function of a list of leaves returning a list of float Tensors -------------
class _Problem:
    """``fn(leaves) -> list of output Tensors`` with the leaves to check and their labels."""

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
        from ..tensor import Tensor

        with enable_grad() if grad or self.needs_grad else no_grad():
            outs = self.fn(leaves)
        return [o for j, o in enumerate(outs) if j not in self.skip_outputs and isinstance(o, Tensor)]

    def evaluate(self, i: int | None = None, array: np.ndarray | None = None) -> np.ndarray:
        """All outputs, flattened and concatenated (a fresh float64 vector)."""
        from ..tensor import Tensor

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
    from ..tensor import Tensor

    if isinstance(x, Tensor) and x.dtype.kind == "f":
        return Tensor(np.array(x.data, dtype=np.float64), requires_grad=x.requires_grad, name=x.name)
    return x


def _flatten_outputs(out: Any) -> tuple[list, list[str]]:
    from ..pytree import keystr, tree_flatten_with_path
    from ..tensor import Tensor

    pairs, _ = tree_flatten_with_path(out)
    tensors, labels = [], []
    for path, leaf in pairs:
        if isinstance(leaf, Tensor) and leaf.dtype.kind == "f":
            tensors.append(leaf)
            labels.append(keystr(path, "output"))
    return tensors, labels


def _arg_names(fn: Callable, n: int) -> list[str]:
    from .function import Function

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


class _Setup:
    """The user's ``fn`` and pytree ``inputs`` as a flat problem, promoted to float64."""

    def __init__(self, fn: Callable, inputs: Any, op: str) -> None:
        from ..pytree import keystr, tree_flatten_with_path
        from ..tensor import Tensor

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

    def problem(self, op: str) -> _Problem:
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
        return _Problem(self.flat, self.leaves, list(self.checked), self.labels, self.out_labels, needs_grad=False)


# ---- comparing Jacobian blocks -----------------------------------------------------------------
def _compare(
    num: np.ndarray,
    ana: np.ndarray,
    fwd: np.ndarray,
    bwd: np.ndarray,
    in_label: str,
    out_label: str,
    in_shape: tuple,
    out_shape: tuple | None,
    atol: float,
    rtol: float,
    fail_on_kinks: bool,
    mode: str,
    half: np.ndarray | None = None,
    eps: float = 1e-6,
) -> PairReport:
    """Compare one (n_out, n_in) block; classify failing entries as errors or kinks.

    ``half`` (central differences with eps/2, where computed, NaN elsewhere) reveals jumps: there
    the difference quotient doubles when eps halves, while a derivative would stay put."""
    err = np.abs(ana - num)
    tol = atol + rtol * np.abs(num)
    bad = ~(err <= tol)  # NaN anywhere counts as bad
    kink = np.zeros_like(bad)
    jump = np.zeros_like(bad)
    if bad.any():
        lo, hi = np.minimum(fwd, bwd), np.maximum(fwd, bwd)
        ktol = atol + rtol * np.maximum(np.abs(fwd), np.abs(bwd))
        kink = bad & (hi - lo > ktol) & (ana >= lo - ktol) & (ana <= hi + ktol)
        if half is not None:
            a, h = np.abs(num), np.abs(half)
            with np.errstate(invalid="ignore"):
                jump = bad & ~kink & (h > 1.5 * a) & (h < 2.5 * a) & (a * eps > atol)
            kink = kink | jump
    errors = bad if fail_on_kinks else bad & ~kink
    n_in = int(np.prod(in_shape))
    rep = PairReport(in_label, out_label, tuple(in_shape), tuple(out_shape or ()), mode)
    rep.wrong = errors.any(axis=0).reshape(in_shape)
    rep.kink_mask = kink.any(axis=0).reshape(in_shape)
    rep.mismatches = int(rep.wrong.sum())
    rep.entries = int(errors.sum())
    rep.ok = rep.mismatches == 0
    rep.n_kinks = int(kink.sum())
    for r, c in np.argwhere(kink)[:_MAX_KINKS_LISTED]:
        is_jump = bool(jump[r, c])
        rep.kinks.append(
            Kink(
                _unravel(c, in_shape),
                _unravel(r, out_shape) if out_shape is not None else None,
                float(num[r, c] if is_jump else bwd[r, c]),
                float(half[r, c] if is_jump else fwd[r, c]),  # type: ignore[index]
                float(ana[r, c]),
                "jump" if is_jump else "kink",
            )
        )
    if rep.entries:
        with np.errstate(invalid="ignore", divide="ignore"):
            score = np.where(errors, np.nan_to_num(err / tol, nan=np.inf, posinf=np.inf), -1.0)
        r, c = np.unravel_index(int(np.argmax(score)), score.shape)
        rep.worst = ElementError(
            _unravel(c, in_shape), _unravel(r, out_shape) if out_shape is not None else None, float(num[r, c]), float(ana[r, c])
        )
        if len(in_shape) == 4 and n_in:
            per_elem = np.where(errors, np.nan_to_num(err, nan=np.inf), 0.0).max(axis=0).reshape(in_shape)
            rep.channel_max_error = per_elem.max(axis=(0, 2, 3))
    return rep


def _unravel(k: Any, shape: tuple | None) -> tuple[int, ...]:
    if not shape:
        return ()
    return tuple(int(v) for v in np.unravel_index(int(k), shape))


# ---- the check itself ---------------------------------------------------------------------------
class _Checker:
    def __init__(
        self,
        prob: _Problem,
        result: GradcheckResult,
        eps: float,
        atol: float,
        rtol: float,
        nondet_tol: float,
        fail_on_kinks: bool,
        rng: np.random.Generator,
    ) -> None:
        self.p = prob
        self.r = result
        self.eps, self.atol, self.rtol = eps, atol, rtol
        self.nondet_tol = nondet_tol
        self.fail_on_kinks = fail_on_kinks
        self.rng = rng

    # -- analytical side
    def _vjp(self, outs: list, ins: list, vs: list) -> list:
        from ..tensor import Tensor

        pairs = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
        if not pairs:
            return [None] * len(ins)
        return list(
            autograd_grad([o for o, _ in pairs], ins, [Tensor(np.array(v)) for _, v in pairs], retain_graph=True, allow_unused=True)
        )

    def _backward_failed(self, e: Exception) -> None:
        where = _locate_exception(self.p)
        located = f"\n      located: {where[0]}" if where and not self.p.single_node else ""
        self.r.problems.append(Problem("exception", where[1] if where else None, f"backward raised {type(e).__name__}: {e}{located}"))

    def structural(self) -> None:
        """Shape/dtype of every backward in the graph (the engine casts dtypes silently, so look at each node)."""
        for kind, label, where in _structural_walk(self.p, skip=("none",)):
            self.r.problems.append(Problem(kind, label, where))

    def analytical_full(self, idxs: list[int]) -> list[list[np.ndarray]] | None:
        """J[o][j]: (numel(out o), numel(input idxs[j])) from one-hot vector-Jacobian products."""
        p = self.p
        outs = p.graph()
        ins = [p.leaves[i] for i in idxs]
        J = [[np.zeros((o.size, ins[j].size)) for j in range(len(idxs))] for o in outs]
        got = [False] * len(idxs)
        try:
            for oi, o in enumerate(outs):
                if not o.requires_grad:
                    continue
                go = np.zeros(o.shape)
                flat = go.reshape(-1)
                for k in range(o.size):
                    flat[k] = 1.0
                    gs = self._vjp([o], ins, [go])
                    flat[k] = 0.0
                    for j, g in enumerate(gs):
                        if g is not None:
                            got[j] = True
                            J[oi][j][k] = np.asarray(g.data, dtype=np.float64).reshape(-1)
            self._repeat_and_linearity(outs, ins, idxs, J)
        except Exception as e:  # a wrong backward must become a report, not a crash
            self._backward_failed(e)
            return None
        self._none_and_disconnected(outs, idxs, got)
        return J

    def _none_and_disconnected(self, outs: list, idxs: list[int], got: list[bool]) -> None:
        # With every output disconnected, "None" is a consequence of that, reported as such.
        connected = any(o.requires_grad for o in outs)
        self.none_inputs = {idxs[j] for j, g in enumerate(got) if not g and connected}
        self.disconnected = {oi for oi, o in enumerate(outs) if not o.requires_grad}

    def _repeat_and_linearity(self, outs: list, ins: list, idxs: list[int], J: list | None) -> None:
        vs = [self.rng.standard_normal(o.shape) for o in outs]
        g1 = self._vjp(outs, ins, vs)
        g2 = self._vjp(outs, ins, vs)
        for j, (a, b) in enumerate(zip(g1, g2)):
            if a is None or b is None:
                continue
            d = np.abs(np.asarray(a.data, np.float64) - np.asarray(b.data, np.float64))
            if d.size and not (d.max() <= self.nondet_tol):
                k = _unravel(int(np.nanargmax(d)), ins[j].shape)
                lab = self.p.in_labels[idxs[j]]
                self.r.problems.append(
                    Problem(
                        "nondeterministic",
                        lab,
                        f"'{lab}': two backward passes with the same vector differ by up to "
                        f"{_fmt(float(np.nanmax(d)))} (at {_idx(lab, k)}), more than nondet_tol={self.nondet_tol:g}.",
                    )
                )
        if J is None:
            return
        for j, a in enumerate(g1):
            expect = sum(v.reshape(-1) @ J[oi][j] for oi, v in enumerate(vs) if outs[oi].requires_grad)
            got = np.zeros(ins[j].size) if a is None else np.asarray(a.data, np.float64).reshape(-1)
            scale = sum(np.abs(v.reshape(-1)) @ np.abs(J[oi][j]) for oi, v in enumerate(vs) if outs[oi].requires_grad)
            diff = np.abs(got - expect)
            if diff.size and not np.all(diff <= self.atol + self.rtol * (np.abs(expect) + 1e-6 * np.asarray(scale))):
                lab = self.p.in_labels[idxs[j]]
                k = _unravel(int(np.nanargmax(diff)), ins[j].shape)
                self.r.problems.append(
                    Problem(
                        "nonlinear",
                        lab,
                        f"'{lab}': backward is not linear in the incoming gradient: with a random "
                        f"vector v it gives {_fmt(float(got[int(np.nanargmax(diff))]))} at {_idx(lab, k)}, but the sum of its "
                        f"one-hot rows weighted by v is {_fmt(float(expect[int(np.nanargmax(diff))]))}. Does backward ignore, "
                        "square or threshold grad_output?",
                    )
                )

    # -- numerical side
    def numerical_full(self, i: int, f0: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = self.p
        x = p.leaves[i]
        n = x.size
        base = np.array(x.data, dtype=np.float64)
        num = np.zeros((f0.size, n))
        fwd = np.zeros((f0.size, n))
        bwd = np.zeros((f0.size, n))
        work = base.copy()
        eps = self.eps
        for k in range(n):
            orig = base.flat[k]
            vals = []
            for step in (eps, -eps):
                if not work.flags.writeable:  # a graph still holds it: never modify an array in use
                    work = base.copy()
                work.flat[k] = orig + step
                try:
                    vals.append(p.evaluate(i, work))
                except Exception as e:
                    raise RuntimeError(
                        f"gradcheck: fn raised {type(e).__name__} when element {_idx(p.in_labels[i], _unravel(k, x.shape))} was "
                        f"moved by {step:+g}: {e}"
                    ) from e
            if not work.flags.writeable:
                work = base.copy()
            work.flat[k] = orig
            fp, fm = vals
            num[:, k] = (fp - fm) / (2 * eps)
            fwd[:, k] = (fp - f0) / eps
            bwd[:, k] = (f0 - fm) / eps
        return num, fwd, bwd

    def _half_step(self, i: int, num: np.ndarray, ana: np.ndarray, fwd: np.ndarray, bwd: np.ndarray) -> np.ndarray | None:
        """Central differences with eps/2 for the columns that fail without a kink explaining
        them (NaN elsewhere), so that _compare can tell a jump from a wrong gradient."""
        bad = ~(np.abs(ana - num) <= self.atol + self.rtol * np.abs(num))
        ktol = self.atol + self.rtol * np.maximum(np.abs(fwd), np.abs(bwd))
        lo, hi = np.minimum(fwd, bwd), np.maximum(fwd, bwd)
        unexplained = bad & ~((hi - lo > ktol) & (ana >= lo - ktol) & (ana <= hi + ktol)) & (np.abs(num) * self.eps > self.atol)
        cols = np.flatnonzero(unexplained.any(axis=0))
        if cols.size == 0:
            return None
        p = self.p
        base = np.array(p.leaves[i].data, dtype=np.float64)
        half = np.full(num.shape, np.nan)
        h = self.eps / 2
        for k in cols:
            vals = []
            for step in (h, -h):
                work = base.copy()
                work.flat[k] += step
                vals.append(p.evaluate(i, work))
            half[:, k] = (vals[0] - vals[1]) / (2 * h)
        return half

    # -- full mode
    def full(self, idxs: list[int], mode: str = "full") -> list[PairReport] | None:
        p = self.p
        J = self.analytical_full(idxs)
        if J is None:
            return None
        f0 = p.evaluate()
        outs = p.graph()
        offsets = np.cumsum([0] + [o.size for o in outs])
        reports = []
        for j, i in enumerate(idxs):
            num, fwd, bwd = self.numerical_full(i, f0)
            half = self._half_step(i, num, np.concatenate([J[oi][j] for oi in range(len(outs))], axis=0), fwd, bwd)
            x = p.leaves[i]
            for oi, o in enumerate(outs):
                sl = slice(offsets[oi], offsets[oi + 1])
                rep = _compare(
                    num[sl],
                    J[oi][j],
                    fwd[sl],
                    bwd[sl],
                    p.in_labels[i],
                    p.out_labels[oi],
                    x.shape,
                    o.shape,
                    self.atol,
                    self.rtol,
                    self.fail_on_kinks,
                    mode,
                    None if half is None else half[sl],
                    self.eps,
                )
                notes = []
                if oi in self.disconnected and np.any(np.abs(num[sl]) > self.atol):
                    notes.append(
                        "this output does not require grad (its graph was not recorded, e.g. a backward written in raw "
                        "numpy), yet it changes with the input"
                    )
                    if not any(q.kind == "disconnected" and q.message.startswith(p.out_labels[oi]) for q in self.r.problems):
                        self.r.problems.append(
                            Problem(
                                "disconnected",
                                p.in_labels[i],
                                f"{p.out_labels[oi]} is not connected to the "
                                f"graph of '{p.in_labels[i]}' but changes with it: its derivative was computed "
                                "outside the graph (raw numpy or a detached tensor), so it cannot be differentiated.",
                            )
                        )
                if i in self.none_inputs and not rep.ok:
                    notes.append("backward gave no gradient (None) for this input, but its numerical gradient is nonzero")
                    if not any(q.kind == "none_grad" and q.input == p.in_labels[i] for q in self.r.problems):
                        self.r.problems.append(
                            Problem(
                                "none_grad",
                                p.in_labels[i],
                                f"'{p.in_labels[i]}' requires grad but backward "
                                "returned None for it, while its numerical gradient is nonzero.",
                            )
                        )
                rep.note = "; ".join(notes)
                reports.append(rep)
            if i in self.none_inputs and not np.any(np.abs(num) > self.atol):
                self.r.notes.append(f"'{p.in_labels[i]}' got no gradient (None): the outputs do not depend on it.")
        return reports

    # -- fast mode
    def fast(self) -> list[PairReport] | None:
        p = self.p
        idxs = p.checked
        outs = p.graph()
        ins = [p.leaves[i] for i in idxs]
        us = [self.rng.standard_normal(x.shape) for x in ins]
        vs = [self.rng.standard_normal(o.shape) for o in outs]
        A = np.zeros((len(idxs), len(outs)))
        got = [False] * len(idxs)
        try:
            for oi, o in enumerate(outs):
                if not o.requires_grad:
                    continue
                gs = self._vjp([o], ins, [vs[oi]])
                for j, g in enumerate(gs):
                    if g is not None:
                        got[j] = True
                        A[j, oi] = float(np.sum(np.asarray(g.data, np.float64) * us[j]))
            self._repeat_and_linearity(outs, ins, idxs, None)
        except Exception as e:
            self._backward_failed(e)
            return None
        self._none_and_disconnected(outs, idxs, got)
        offsets = np.cumsum([0] + [o.size for o in outs])
        reports: list[PairReport] = []
        for j, i in enumerate(idxs):
            base = np.array(p.leaves[i].data, dtype=np.float64)
            fp = p.evaluate(i, base + self.eps * us[j])
            fm = p.evaluate(i, base - self.eps * us[j])
            # The same derivative with a doubled step: their difference estimates the truncation
            # error (and grows near kinks), so the tolerance follows the actual numerical noise
            # instead of scaling with numel (which would let any error through on large layers).
            fp2 = p.evaluate(i, base + 2 * self.eps * us[j])
            fm2 = p.evaluate(i, base - 2 * self.eps * us[j])
            mine = []
            failed = False
            for oi, o in enumerate(outs):
                sl = slice(offsets[oi], offsets[oi + 1])
                v = vs[oi].reshape(-1)
                n = float(v @ (fp[sl] - fm[sl]) / (2 * self.eps))
                n2 = float(v @ (fp2[sl] - fm2[sl]) / (4 * self.eps))
                a = A[j, oi]
                ok = self._projection_ok(a, n, n2, v, fp[sl], fm[sl])
                failed |= not ok
                mine.append(
                    PairReport(
                        p.in_labels[i],
                        p.out_labels[oi],
                        p.leaves[i].shape,
                        o.shape,
                        "fast",
                        ok=ok,
                        projection=(n, a),
                        mismatches=0 if ok else -1,
                    )
                )
            if failed:
                mine = self.locate(i, outs, vs)
            reports += mine
        return reports

    def _projection_ok(self, a: float, n: float, n2: float, v: np.ndarray, fp: np.ndarray, fm: np.ndarray) -> bool:
        """Fast mode's test of an analytical projection ``a`` = <v, J u> against its central
        differences ``n`` (step eps; outputs ``fp``, ``fm`` at x +- eps*u) and ``n2`` (step 2*eps):
        their difference estimates the truncation error, plus float64 roundoff of the difference."""
        roundoff = 64 * np.finfo(np.float64).eps * float(np.abs(v) @ (np.abs(fp) + np.abs(fm))) / (2 * self.eps)
        return abs(a - n) <= self.atol + self.rtol * abs(n) + 10 * abs(n - n2) + roundoff

    def locate(self, i: int, outs: list, vs: list) -> list[PairReport]:
        """Re-check input ``i`` element by element: against every output element when the
        outputs are small, else against the projection sum(v * outputs) used by fast mode."""
        total = sum(o.size for o in outs)
        x = self.p.leaves[i]
        if x.size > _LOCATE_MAX_ELEMENTS:
            return [self.bisect(i, outs, vs)]
        if total <= _LOCATE_FULL_OUTPUTS:
            sub = self
            reps = sub.full([i], mode="located")
            return reps if reps is not None else []
        from ..tensor import Tensor

        p = self.p
        vts = [Tensor(v) for v in vs]

        def projected(leaves: list) -> list:
            os_ = p.fn(leaves)
            acc = None
            for o, v in zip(os_, vts):
                t = (o * v).sum()
                acc = t if acc is None else acc + t
            return [acc]

        proj = _Problem(projected, p.leaves, [i], p.in_labels, ["sum(v * outputs)"], p.needs_grad, p.skip_outputs)
        sub = _Checker(proj, self.r, self.eps, self.atol, self.rtol, self.nondet_tol, self.fail_on_kinks, self.rng)
        reps = sub.full([i], mode="located")
        for r in reps or []:
            r.output_shape = ()
        return reps if reps is not None else []


    def bisect(self, i: int, outs: list, vs: list) -> PairReport:
        """Locate the wrong elements of a large input ``i`` by bisection instead of one by one:
        check the projection sum(v * outputs) along a random direction restricted to a range of
        the input's (flat) elements, and split the ranges that fail, down to single elements.
        About 4 * log2(numel) forward passes per wrong element; stops after ``_BISECT_MAX_FOUND``."""
        p, x, eps = self.p, self.p.leaves[i], self.eps
        lab = p.in_labels[i]
        (g,) = self._vjp(outs, [x], vs)
        ana = np.zeros(x.size) if g is None else np.asarray(g.data, np.float64).reshape(-1)
        u = self.rng.standard_normal(x.size)
        base = np.array(x.data, dtype=np.float64).reshape(-1)
        v = np.concatenate([np.asarray(vv, np.float64).reshape(-1) for vv in vs])

        def derivative(lo: int, hi: int, step: float) -> tuple[float, np.ndarray, np.ndarray]:
            d = np.zeros(x.size)
            d[lo:hi] = u[lo:hi]
            fp, fm = p.evaluate(i, (base + step * d).reshape(x.shape)), p.evaluate(i, (base - step * d).reshape(x.shape))
            return float(v @ (fp - fm)) / (2 * step), fp, fm

        def check(lo: int, hi: int) -> tuple[bool, float, float]:  # the same test as fast mode's
            n, fp, fm = derivative(lo, hi, eps)
            n2 = derivative(lo, hi, 2 * eps)[0]
            a = float(ana[lo:hi] @ u[lo:hi])
            return self._projection_ok(a, n, n2, v, fp, fm), n, a

        found: list[ElementError] = []
        ok, n, _ = check(0, x.size)
        stack, spread = ([] if ok else [(0, x.size, n)]), 0  # ranges known to fail, with their derivative
        while stack and len(found) < _BISECT_MAX_FOUND:
            lo, hi, n = stack.pop()
            if hi - lo == 1:
                found.append(ElementError(_unravel(lo, x.shape), None, n / u[lo], float(ana[lo])))
                continue
            mid = (lo + hi) // 2
            bad = [(a, b, res[1]) for a, b in ((lo, mid), (mid, hi)) if not (res := check(a, b))[0]]
            if not bad:  # each half within tolerance, their sum not: errors spread thin
                spread += 1
            stack += bad[::-1]  # depth first, lower indices first
        r = PairReport(lab, "sum(v * outputs)", x.shape, (), "located", ok=False, mismatches=len(found) or -1)
        if found:
            r.worst = max(found, key=lambda e: e.abs_error)
            r.wrong = np.zeros(x.shape, dtype=bool)
            for e in found:
                r.wrong[e.index] = True
        more = stack or spread
        r.note = (
            f"{x.size} elements: located by bisection on sum(v * outputs) along a random direction"
            + (f"; stopped after the first {len(found)} wrong element(s), there may be more" if stack else "")
            + ("; some wrong ranges have no single wrong element (small errors spread over many elements)" if spread else "")
            + ("" if found or more else "; along this direction the projection agrees (an error cancelling out?)")
        )
        return r


def _edge_key(node: Any, idx: int) -> Any:
    e = node.next_edges[idx] if idx < len(node.next_edges) else None
    if e is None:
        return None
    return id(e[0]) if not hasattr(e[0], "_fn") else (id(e[0]), e[1])


def _edge_label(node: Any, idx: int, labels: dict, nodes: list) -> str:
    e = node.next_edges[idx] if idx < len(node.next_edges) else None
    if e is None:
        return "a constant"
    m = e[0]
    if hasattr(m, "_fn"):
        pos = next((k for k, n in enumerate(nodes) if n is m), None)
        return f"node #{pos} {m.name}" + (f" output {e[1]}" if len(m._out_meta) > 1 else "")
    lab = labels.get(id(m))
    return f"input '{lab}'" if lab else f"a leaf of shape {m.shape}"


def _structural_walk(p: _Problem, skip: tuple = (), stop_at: tuple = ()) -> list[tuple[str, str | None, str]]:
    """``(kind, input label, message)`` for every node of ``p``'s graph whose backward, called
    alone, raises or returns a gradient of the wrong count/shape/dtype."""
    from .graph_check import graph_nodes, leaf_labels, structural_problems

    with keep_inputs():
        outs = p.graph()
    labels = leaf_labels(p.leaves, p.in_labels)
    nodes = graph_nodes(outs)
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


def _locate_exception(p: _Problem) -> tuple[str, str | None] | None:
    """Find the node whose backward raises (or returns a wrong shape) by calling each backward alone."""
    try:
        for _kind, label, where in _structural_walk(p, skip=("none", "dtype"), stop_at=("exception", "shape", "count")):
            return where, label
    except Exception:  # locating is best effort; the original error is reported regardless
        return None
    return None


def _run(
    prob: _Problem,
    result: GradcheckResult,
    *,
    eps: float,
    atol: float,
    rtol: float,
    fast_mode: bool,
    nondet_tol: float,
    fail_on_kinks: bool,
    seed: Any,
) -> GradcheckResult:
    from ..tensor import get_rng

    result._fail_kinks = fail_on_kinks
    checker = _Checker(prob, result, eps, atol, rtol, nondet_tol, fail_on_kinks, get_rng(seed))
    reps = checker.fast() if fast_mode else checker.full(prob.checked)
    if reps is not None:
        result.pairs = reps
        try:
            checker.structural()
        except Exception as e:  # noqa: BLE001 - reported, not raised
            result.notes.append(f"could not walk the graph for shape/dtype checks: {type(e).__name__}: {e}")
    return result


def _check_args(op: str, eps: float, atol: float, rtol: float, nondet_tol: float) -> None:
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"{op}: eps must be a positive finite number, got {eps!r} (1e-6 suits float64).")
    if atol < 0 or rtol < 0 or nondet_tol < 0:
        raise ValueError(f"{op}: atol, rtol and nondet_tol must be >= 0, got atol={atol}, rtol={rtol}, nondet_tol={nondet_tol}.")


def _finish(result: GradcheckResult, warn_list: list[str], raise_exception: bool) -> Any:
    for w in warn_list:
        result.warnings.append(w)
        warnings.warn(w, GradcheckWarning, stacklevel=3)
    if raise_exception:
        if not result.passed:
            raise GradcheckError(result)
        return True
    return result


def _second_order(
    flat: Callable[[list], list],
    leaves: list,
    checked: list[int],
    labels: list[str],
    seed: Any,
    skip: frozenset,
    grad_outputs: list | None = None,
) -> _Problem:
    """The problem ``(leaves, v) -> vjp(flat, leaves)(v)`` whose gradcheck checks second derivatives."""
    from ..tensor import Tensor, get_rng

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
    return _Problem(
        first_derivative,
        list(leaves) + gos,
        list(checked) + list(range(n, n + len(gos))),
        list(labels) + go_labels,
        [f"grad {labels[i]}" for i in checked],
        needs_grad=True,
    )


def gradcheck(
    fn: Callable,
    inputs: Any,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    seed: int | np.random.Generator | None = None,
    fail_on_kinks: bool = False,
) -> Any:
    """Check ``fn``'s first derivatives against central differences in float64.

    ``inputs``: a Tensor, a tuple/list of positional arguments, or any pytree of them (dicts of
    parameters, ...). Every floating Tensor with ``requires_grad`` is checked as a float64 copy
    (a float32 one gets a :class:`GradcheckWarning`); everything else is passed through. ``fn``
    returns a Tensor or a pytree of Tensors; every floating output is checked.

    Returns ``True``, or raises :class:`GradcheckError` whose message is the report; with
    ``raise_exception=False`` returns the :class:`GradcheckResult` (truthy when passed).
    ``fast_mode`` checks random projections ``v^T J u`` instead of whole Jacobians; ``seed``
    (int or Generator; None = the global generator) draws those vectors. ``fail_on_kinks``
    counts non-differentiable points as errors.

    Example::

        x = randn(3, 4, dtype=np.float64, requires_grad=True)
        gradcheck(lambda x: (x.tanh() * x).sum(axis=0), (x,))          # True
        res = gradcheck(my_op, (x, w), raise_exception=False)
        print(res)                                                      # where it is wrong
    """
    _check_args("gradcheck", eps, atol, rtol, nondet_tol)
    setup = _Setup(fn, inputs, "gradcheck")
    prob = setup.problem("gradcheck")
    result = GradcheckResult(order=1, mode="fast" if fast_mode else "full", eps=eps, atol=atol, rtol=rtol)
    result.inputs = [(setup.labels[i], setup.leaves[i].shape, setup.orig_dtypes[i]) for i in setup.checked]
    _run(prob, result, eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode, nondet_tol=nondet_tol, fail_on_kinks=fail_on_kinks, seed=seed)
    return _finish(result, setup.warnings, raise_exception)


def gradgradcheck(
    fn: Callable,
    inputs: Any,
    grad_outputs: Any = None,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    fast_mode: bool = False,
    raise_exception: bool = True,
    nondet_tol: float = 0.0,
    seed: int | np.random.Generator | None = None,
    fail_on_kinks: bool = False,
) -> Any:
    """Check second derivatives: gradcheck of ``(inputs, v) -> vjp(fn, inputs)(v)``.

    The first derivative is taken with ``create_graph=True``, so this checks that every backward
    is itself differentiable and correct. ``grad_outputs`` (the vectors v, one per floating
    output, any pytree matching the outputs) default to random float64 tensors from ``seed``;
    they are checked too. Inputs, options and the result are as in :func:`gradcheck`; the
    outputs of the checked function are named ``grad <input>``.

    Example::

        x = randn(5, dtype=np.float64, requires_grad=True)
        gradgradcheck(lambda x: (x * x.sigmoid()).sum(), (x,))          # True
    """
    from ..pytree import tree_leaves

    _check_args("gradgradcheck", eps, atol, rtol, nondet_tol)
    setup = _Setup(fn, inputs, "gradgradcheck")
    setup.problem("gradgradcheck")
    given = None if grad_outputs is None else [g for g in tree_leaves(grad_outputs) if g is not None]
    prob = _second_order(setup.flat, setup.leaves, setup.checked, setup.labels, seed, frozenset(), given)
    result = GradcheckResult(order=2, mode="fast" if fast_mode else "full", eps=eps, atol=atol, rtol=rtol)
    n = len(setup.leaves)
    result.inputs = [
        (prob.in_labels[i], prob.leaves[i].shape, setup.orig_dtypes[i] if i < n else np.dtype(np.float64)) for i in prob.checked
    ]
    _run(prob, result, eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode, nondet_tol=nondet_tol, fail_on_kinks=fail_on_kinks, seed=seed)
    return _finish(result, setup.warnings, raise_exception)
