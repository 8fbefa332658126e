"""Comparing analytical and numerical derivatives, and telling wrong gradients from kinks.

At a non-differentiable point (relu or abs at 0, a tie in max) a central difference averages two
different one-sided derivatives. An entry that fails the tolerance is a *kink* when its one-sided
differences disagree and backward's value lies between them (a valid one-sided derivative or
subgradient), and a *jump* when the difference quotient doubles as the step halves (the function
is discontinuous there); anything else is a wrong gradient.
"""

from __future__ import annotations

import numpy as np

from .report import MAX_KINKS_LISTED, ElementError, Kink, PairReport, unravel

__all__ = ["between_one_sided", "compare_block", "failing", "projection_ok", "unexplained_columns"]


def failing(num: np.ndarray, ana: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Entries where ``ana`` and ``num`` differ by more than ``atol + rtol * |num|`` (NaN fails).
    ``failing(np.array([1.0]), np.array([1.1]), 1e-5, 1e-3)`` is ``array([ True])``."""
    return ~(np.abs(ana - num) <= atol + rtol * np.abs(num))


def between_one_sided(ana: np.ndarray, fwd: np.ndarray, bwd: np.ndarray, atol: float, rtol: float) -> np.ndarray:
    """Entries whose one-sided differences ``fwd`` and ``bwd`` disagree and ``ana`` lies between
    them (within tolerance): a kink, where backward's value is a valid one-sided derivative.
    For relu at 0 (``fwd=1``, ``bwd=0``) any ``ana`` in [0, 1] qualifies."""
    lo, hi = np.minimum(fwd, bwd), np.maximum(fwd, bwd)
    ktol = atol + rtol * np.maximum(np.abs(fwd), np.abs(bwd))
    return (hi - lo > ktol) & (ana >= lo - ktol) & (ana <= hi + ktol)


def unexplained_columns(
    num: np.ndarray, ana: np.ndarray, fwd: np.ndarray, bwd: np.ndarray, atol: float, rtol: float, eps: float
) -> np.ndarray:
    """The input elements (columns) with a failing entry that no kink explains and whose
    difference quotient is large enough for a jump to show: where a half step is worth taking.
    Example: ``half_step_jacobian(prob, i, unexplained_columns(num, ana, fwd, bwd, atol, rtol, eps), ...)``."""
    unexplained = failing(num, ana, atol, rtol) & ~between_one_sided(ana, fwd, bwd, atol, rtol) & (np.abs(num) * eps > atol)
    return np.flatnonzero(unexplained.any(axis=0))


def compare_block(
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
    """Compare one (n_out, n_in) block; classify failing entries as errors or kinks, and report
    the pair (``compare_block(num, ana, fwd, bwd, "x", "output", (3,), (), 1e-5, 1e-3, False, "full")``).

    ``half`` (central differences with eps/2, where computed, NaN elsewhere) reveals jumps: there
    the difference quotient doubles when eps halves, while a derivative would stay put."""
    err = np.abs(ana - num)
    tol = atol + rtol * np.abs(num)
    bad = ~(err <= tol)  # NaN anywhere counts as bad
    kink = np.zeros_like(bad)
    jump = np.zeros_like(bad)
    if bad.any():
        kink = bad & between_one_sided(ana, fwd, bwd, atol, rtol)
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
    for r, c in np.argwhere(kink)[:MAX_KINKS_LISTED]:
        is_jump = bool(jump[r, c])
        rep.kinks.append(
            Kink(
                unravel(c, in_shape),
                unravel(r, out_shape) if out_shape is not None else None,
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
            unravel(c, in_shape), unravel(r, out_shape) if out_shape is not None else None, float(num[r, c]), float(ana[r, c])
        )
        if len(in_shape) == 4 and n_in:
            per_elem = np.where(errors, np.nan_to_num(err, nan=np.inf), 0.0).max(axis=0).reshape(in_shape)
            rep.channel_max_error = per_elem.max(axis=(0, 2, 3))
    return rep


def projection_ok(
    a: float, n: float, n2: float, v: np.ndarray, fp: np.ndarray, fm: np.ndarray, eps: float, atol: float, rtol: float
) -> bool:
    """Fast mode's test of an analytical projection ``a`` = <v, J u> against its central
    differences ``n`` (step eps; outputs ``fp``, ``fm`` at x +- eps*u) and ``n2`` (step 2*eps).
    Their difference estimates the truncation error (and grows near kinks), so the tolerance
    follows the actual numerical noise instead of growing with the number of elements, which
    would let any error through on a large layer; float64 roundoff of the difference is added."""
    roundoff = 64 * np.finfo(np.float64).eps * float(np.abs(v) @ (np.abs(fp) + np.abs(fm))) / (2 * eps)
    return bool(abs(a - n) <= atol + rtol * abs(n) + 10 * abs(n - n2) + roundoff)
