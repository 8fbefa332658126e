"""The gradient check itself: a :class:`Checker` compares a :class:`FlatProblem`'s analytical
derivatives (vector-Jacobian products from backward) with its numerical ones and fills a
:class:`GradcheckResult`.

- **Full mode** builds both Jacobians: ``2 * numel(input)`` forward passes and one backward per
  output element.
- **Fast mode** compares random projections ``v^T J u`` (four forward passes per input, one
  backward per output). An input whose projection disagrees is located: re-checked element by
  element, or, above ``LOCATE_MAX_ELEMENTS`` elements, by bisection (:meth:`Checker.bisect`).
- Both also check that two backward passes agree, that backward is linear in the incoming
  gradient, and (:mod:`.structural`) every node's gradient shapes and dtypes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd.engine import grad as autograd_grad
from ..tensor import Tensor, get_rng
from .compare import compare_block, projection_ok, unexplained_columns
from .numerical import directional_evaluations, half_step_jacobian, numerical_jacobian
from .problem import FlatProblem
from .report import ElementError, GradcheckResult, PairReport, Problem, fmt, index_label, unravel
from .structural import locate_exception, structural_walk

__all__ = ["BISECT_MAX_FOUND", "LOCATE_FULL_OUTPUTS", "LOCATE_MAX_ELEMENTS", "Checker", "run"]

# Above this many output elements, an input that failed in fast mode is located against one
# random projection of the outputs (one scalar) instead of against every output element.
LOCATE_FULL_OUTPUTS = 256
# Above this many elements a failing input is located by bisection, not element by element.
LOCATE_MAX_ELEMENTS = 50_000
# Bisection reports at most this many wrong elements.
BISECT_MAX_FOUND = 8


class Checker:
    """Checks one :class:`FlatProblem` with the given tolerances and writes what it finds into
    ``result`` (``problems``, ``notes``); :meth:`full` and :meth:`fast` return the pair reports."""

    def __init__(
        self,
        prob: FlatProblem,
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
        pairs = [(o, v) for o, v in zip(outs, vs) if o.requires_grad]
        if not pairs:
            return [None] * len(ins)
        return list(
            autograd_grad([o for o, _ in pairs], ins, [Tensor(np.array(v)) for _, v in pairs], retain_graph=True, allow_unused=True)
        )

    def _backward_failed(self, e: Exception) -> None:
        where = locate_exception(self.p)
        located = f"\n      located: {where[0]}" if where and not self.p.single_node else ""
        self.r.problems.append(Problem("exception", where[1] if where else None, f"backward raised {type(e).__name__}: {e}{located}"))

    def structural(self) -> None:
        """Shape/dtype of every backward in the graph (the engine casts dtypes silently, so look at each node)."""
        for kind, label, where in structural_walk(self.p, skip=("none",)):
            self.r.problems.append(Problem(kind, label, where))

    def analytical_full(self, idxs: list[int]) -> list[list[np.ndarray]] | None:
        """J[o][j]: (numel(out o), numel(input idxs[j])) from one-hot vector-Jacobian products."""
        p = self.p
        outs = p.graph()
        ins = [p.leaves[i] for i in idxs]
        J = [[np.zeros((o.numel(), ins[j].numel())) for j in range(len(idxs))] for o in outs]
        got = [False] * len(idxs)
        try:
            for oi, o in enumerate(outs):
                if not o.requires_grad:
                    continue
                go = np.zeros(o.shape)
                flat = go.reshape(-1)
                for k in range(o.numel()):
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
                k = unravel(int(np.nanargmax(d)), ins[j].shape)
                lab = self.p.in_labels[idxs[j]]
                self.r.problems.append(
                    Problem(
                        "nondeterministic",
                        lab,
                        f"'{lab}': two backward passes with the same vector differ by up to "
                        f"{fmt(float(np.nanmax(d)))} (at {index_label(lab, k)}), more than nondet_tol={self.nondet_tol:g}.",
                    )
                )
        if J is None:
            return
        for j, a in enumerate(g1):
            expect = sum(v.reshape(-1) @ J[oi][j] for oi, v in enumerate(vs) if outs[oi].requires_grad)
            got = np.zeros(ins[j].numel()) if a is None else np.asarray(a.data, np.float64).reshape(-1)
            scale = sum(np.abs(v.reshape(-1)) @ np.abs(J[oi][j]) for oi, v in enumerate(vs) if outs[oi].requires_grad)
            diff = np.abs(got - expect)
            if diff.size and not np.all(diff <= self.atol + self.rtol * (np.abs(expect) + 1e-6 * np.asarray(scale))):
                lab = self.p.in_labels[idxs[j]]
                k = unravel(int(np.nanargmax(diff)), ins[j].shape)
                self.r.problems.append(
                    Problem(
                        "nonlinear",
                        lab,
                        f"'{lab}': backward is not linear in the incoming gradient: with a random "
                        f"vector v it gives {fmt(float(got[int(np.nanargmax(diff))]))} at {index_label(lab, k)}, but the sum of its "
                        f"one-hot rows weighted by v is {fmt(float(expect[int(np.nanargmax(diff))]))}. Does backward ignore, "
                        "square or threshold grad_output?",
                    )
                )

    # -- full mode
    def full(self, idxs: list[int], mode: str = "full") -> list[PairReport] | None:
        p = self.p
        J = self.analytical_full(idxs)
        if J is None:
            return None
        f0 = p.evaluate()
        outs = p.graph()
        offsets = np.cumsum([0] + [o.numel() for o in outs])
        reports = []
        for j, i in enumerate(idxs):
            num, fwd, bwd = numerical_jacobian(p, i, f0, self.eps)
            ana = np.concatenate([J[oi][j] for oi in range(len(outs))], axis=0)
            cols = unexplained_columns(num, ana, fwd, bwd, self.atol, self.rtol, self.eps)
            half = half_step_jacobian(p, i, cols, f0.size, self.eps) if cols.size else None
            x = p.leaves[i]
            for oi, o in enumerate(outs):
                sl = slice(offsets[oi], offsets[oi + 1])
                rep = compare_block(
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
        offsets = np.cumsum([0] + [o.numel() for o in outs])
        reports: list[PairReport] = []
        for j, i in enumerate(idxs):
            base = np.array(p.leaves[i].data, dtype=np.float64)
            # The same derivative with a doubled step as well: see projection_ok.
            fp, fm = directional_evaluations(p, i, base, us[j], self.eps)
            fp2, fm2 = directional_evaluations(p, i, base, us[j], 2 * self.eps)
            mine = []
            failed = False
            for oi, o in enumerate(outs):
                sl = slice(offsets[oi], offsets[oi + 1])
                v = vs[oi].reshape(-1)
                n = float(v @ (fp[sl] - fm[sl]) / (2 * self.eps))
                n2 = float(v @ (fp2[sl] - fm2[sl]) / (4 * self.eps))
                a = A[j, oi]
                ok = projection_ok(a, n, n2, v, fp[sl], fm[sl], self.eps, self.atol, self.rtol)
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

    def locate(self, i: int, outs: list, vs: list) -> list[PairReport]:
        """Re-check input ``i`` element by element: against every output element when the
        outputs are small, else against the projection sum(v * outputs) used by fast mode."""
        total = sum(o.numel() for o in outs)
        x = self.p.leaves[i]
        if x.numel() > LOCATE_MAX_ELEMENTS:
            return [self.bisect(i, outs, vs)]
        if total <= LOCATE_FULL_OUTPUTS:
            reps = self.full([i], mode="located")
            return reps if reps is not None else []
        p = self.p
        vts = [Tensor(v) for v in vs]

        def projected(leaves: list) -> list:
            os_ = p.fn(leaves)
            acc = None
            for o, v in zip(os_, vts):
                t = (o * v).sum()
                acc = t if acc is None else acc + t
            return [acc]

        proj = FlatProblem(projected, p.leaves, [i], p.in_labels, ["sum(v * outputs)"], p.needs_grad, p.skip_outputs)
        sub = Checker(proj, self.r, self.eps, self.atol, self.rtol, self.nondet_tol, self.fail_on_kinks, self.rng)
        reps = sub.full([i], mode="located")
        for r in reps or []:
            r.output_shape = ()
        return reps if reps is not None else []

    def bisect(self, i: int, outs: list, vs: list) -> PairReport:
        """Locate the wrong elements of a large input ``i`` by bisection instead of one by one:
        check the projection sum(v * outputs) along a random direction restricted to a range of
        the input's (flat) elements, and split the ranges that fail, down to single elements.
        Each wrong element costs a few forward passes per halving, so a logarithmic number in the
        input's size; stops after ``BISECT_MAX_FOUND`` wrong elements."""
        p, x, eps = self.p, self.p.leaves[i], self.eps
        lab = p.in_labels[i]
        (g,) = self._vjp(outs, [x], vs)
        ana = np.zeros(x.numel()) if g is None else np.asarray(g.data, np.float64).reshape(-1)
        u = self.rng.standard_normal(x.numel())
        base = np.array(x.data, dtype=np.float64).reshape(-1)
        v = np.concatenate([np.asarray(vv, np.float64).reshape(-1) for vv in vs])

        def derivative(lo: int, hi: int, step: float) -> tuple[float, np.ndarray, np.ndarray]:
            d = np.zeros(x.numel())
            d[lo:hi] = u[lo:hi]
            fp, fm = directional_evaluations(p, i, base, d, step)
            return float(v @ (fp - fm)) / (2 * step), fp, fm

        def check(lo: int, hi: int) -> tuple[bool, float, float]:  # the same test as fast mode's
            n, fp, fm = derivative(lo, hi, eps)
            n2 = derivative(lo, hi, 2 * eps)[0]
            a = float(ana[lo:hi] @ u[lo:hi])
            return projection_ok(a, n, n2, v, fp, fm, eps, self.atol, self.rtol), n, a

        found: list[ElementError] = []
        ok, n, _ = check(0, x.numel())
        stack, spread = ([] if ok else [(0, x.numel(), n)]), 0  # ranges known to fail, with their derivative
        while stack and len(found) < BISECT_MAX_FOUND:
            lo, hi, n = stack.pop()
            if hi - lo == 1:
                found.append(ElementError(unravel(lo, x.shape), None, n / u[lo], float(ana[lo])))
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
            f"{x.numel()} elements: located by bisection on sum(v * outputs) along a random direction"
            + (f"; stopped after the first {len(found)} wrong element(s), there may be more" if stack else "")
            + ("; some wrong ranges have no single wrong element (small errors spread over many elements)" if spread else "")
            + ("" if found or more else "; along this direction the projection agrees (an error cancelling out?)")
        )
        return r


def run(
    prob: FlatProblem,
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
    """Check ``prob`` (fast or full mode, then the structural checks) and fill ``result``, which
    is returned; ``seed`` draws the random vectors. ``gradcheck`` and ``check_graph`` call this.

    Example: ``run(Setup(fn, (x,), "gradcheck").problem("gradcheck"), GradcheckResult(order=1,
    mode="full", eps=1e-6, atol=1e-5, rtol=1e-3), eps=1e-6, atol=1e-5, rtol=1e-3, fast_mode=False,
    nondet_tol=0.0, fail_on_kinks=False, seed=0).passed``.
    """
    result.fail_on_kinks = fail_on_kinks
    checker = Checker(prob, result, eps, atol, rtol, nondet_tol, fail_on_kinks, get_rng(seed))
    reps = checker.fast() if fast_mode else checker.full(prob.checked)
    if reps is not None:
        result.pairs = reps
        try:
            checker.structural()
        except Exception as e:  # noqa: BLE001 - reported, not raised
            result.notes.append(f"could not walk the graph for shape/dtype checks: {type(e).__name__}: {e}")
    return result


