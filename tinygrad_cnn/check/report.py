"""What a gradient check found: :class:`GradcheckResult` and its parts (one
:class:`PairReport` per input and output, :class:`Problem` for failures that are not a wrong
Jacobian entry), the :class:`GradcheckError` that carries it, and :class:`GradcheckWarning`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "ElementError",
    "GradcheckError",
    "GradcheckResult",
    "GradcheckWarning",
    "Kink",
    "MAX_KINKS_LISTED",
    "PairReport",
    "Problem",
    "fmt",
    "index_label",
    "unravel",
]

# A report lists this many non-differentiable points per pair and in its summary.
MAX_KINKS_LISTED = 5


class GradcheckWarning(UserWarning):
    """Emitted when a check is less precise than it could be (e.g. a float32 input or output)."""


class GradcheckError(AssertionError):
    """A gradient check failed. ``str(err)`` is the readable summary; ``err.result`` is the full
    :class:`GradcheckResult` (``None`` if raised with a plain message)."""

    def __init__(self, result: GradcheckResult | str) -> None:
        self.result = result if isinstance(result, GradcheckResult) else None
        super().__init__(str(result))


def fmt(v: float) -> str:
    """A float as reports print it: six significant digits. ``fmt(1 / 3)`` is ``'0.333333'``."""
    return f"{v:.6g}"


def index_label(label: str, index: tuple[int, ...] | None) -> str:
    """``'w[0, 2]'`` for element ``(0, 2)`` of input ``'w'``; the bare label for ``()`` or ``None``."""
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
        """The kink (or jump) in words, after ``label`` (the entry it concerns)."""
        if self.kind == "jump":
            return (
                f"{label}: the function jumps here (central differences {fmt(self.left)} at eps and {fmt(self.right)} at eps/2 "
                f"grow like 1/eps); backward gave {fmt(self.analytical)}"
            )
        return (
            f"{label}: one-sided derivatives {fmt(self.left)} (left) and {fmt(self.right)} (right); backward gave {fmt(self.analytical)}"
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
        """The report as lines of text: a head line (ok, or how many elements are wrong) and the worst entries."""
        head = f"{self.input} {self.input_shape} -> {self.output} {self.output_shape}"
        if self.ok:
            extra = f" ({self.n_kinks} entries at non-differentiable points, see below)" if self.n_kinks else ""
            return [f"{head}: ok{extra}"]
        n = int(np.prod(self.input_shape))
        lines = [f"{head}: {self.mismatches} of {n} element(s) wrong" + (f" ({self.entries} Jacobian entries)" if self.entries else "")]
        if self.projection is not None and self.worst is None:
            num, ana = self.projection
            lines[0] = f"{head}: random projection v^T J u differs: numerical {fmt(num)}, analytical {fmt(ana)}"
        elif self.mismatches < 0:
            lines[0] = f"{head}: the random projection v^T J u differs (not located)"
        if self.note:
            lines.append(f"    note: {self.note}")
        w = self.worst
        if w is not None:
            via = "" if w.output_index is None else f" via {index_label(self.output, w.output_index)}"
            rel = "inf" if math.isinf(w.rel_error) else fmt(w.rel_error)
            lines.append(
                f"    worst: {index_label(self.input, w.index)}{via}: numerical {fmt(w.numerical)}, analytical {fmt(w.analytical)}"
                f" (abs err {fmt(w.abs_error)}, rel err {rel})"
            )
        if self.channel_max_error is not None and self.mismatches:
            ce = self.channel_max_error
            order = np.argsort(-ce)[:8]
            cells = "  ".join(f"c{int(c)}: {fmt(float(ce[c]))}" for c in sorted(order) if ce[c] > 0)
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
    (label, shape, original dtype of each checked input), ``fail_on_kinks`` (whether kinks
    counted as errors). ``str(result)`` is a short summary.

    Example: ``res = gradcheck(fn, (x,), raise_exception=False); res.wrong_inputs()``.
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
        self.fail_on_kinks = False  # whether kinks were counted as errors (for the summary)

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
            how = "counted as errors (fail_on_kinks=True)" if self.fail_on_kinks else "not counted as errors"
            lines.append(f"  non-differentiable points ({total} Jacobian entries; {how}):")
            for p, k in kinks[:MAX_KINKS_LISTED]:
                via = "" if k.output_index is None else f" of {index_label(p.output, k.output_index)}"
                lines.append("    " + k.describe(f"{index_label(p.input, k.index)}{via}"))
            if total > MAX_KINKS_LISTED:
                lines.append(f"    ... and {total - MAX_KINKS_LISTED} more")
        if self.problems:
            lines.append("  problems:")
            lines += [f"    - {q.message}" for q in self.problems]
        for n in self.notes:
            lines.append(f"  note: {n}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        status = "passed" if self.passed else "FAILED"
        return f"<GradcheckResult {status}: {len(self.failures)} failing pair(s), {len(self.problems)} problem(s)>"


def unravel(k: Any, shape: tuple | None) -> tuple[int, ...]:
    """Flat index ``k`` as an index into ``shape`` (``()`` for a scalar or no shape).
    ``unravel(5, (2, 3))`` is ``(1, 2)``."""
    if not shape:
        return ()
    return tuple(int(v) for v in np.unravel_index(int(k), shape))
