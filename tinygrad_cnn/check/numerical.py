"""The numerical side of a gradient check: finite differences of a :class:`FlatProblem`'s
outputs in float64, as whole Jacobian blocks (full mode) or along one direction (fast mode and
bisection)."""

from __future__ import annotations

import numpy as np

from .problem import FlatProblem
from .report import index_label, unravel

__all__ = ["directional_evaluations", "half_step_jacobian", "numerical_jacobian"]


def numerical_jacobian(prob: FlatProblem, i: int, f0: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Central, forward and backward differences of all outputs with respect to input ``i``,
    each ``(numel(outputs), numel(input))``; ``f0`` is the outputs at the unperturbed point.
    The one-sided differences are what tells a kink from a wrong gradient.

    Example: ``num, fwd, bwd = numerical_jacobian(prob, 0, prob.evaluate(), 1e-6)``.
    """
    x = prob.leaves[i]
    n = x.numel()
    base = np.array(x.data, dtype=np.float64)
    num = np.zeros((f0.size, n))
    fwd = np.zeros((f0.size, n))
    bwd = np.zeros((f0.size, n))
    work = base.copy()
    for k in range(n):
        orig = base.flat[k]
        vals = []
        for step in (eps, -eps):
            if not work.flags.writeable:  # a graph still holds it: never modify an array in use
                work = base.copy()
            work.flat[k] = orig + step
            try:
                vals.append(prob.evaluate(i, work))
            except Exception as e:
                raise RuntimeError(
                    f"gradcheck: fn raised {type(e).__name__} when element {index_label(prob.in_labels[i], unravel(k, x.shape))} was "
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


def half_step_jacobian(prob: FlatProblem, i: int, cols: np.ndarray, n_out: int, eps: float) -> np.ndarray:
    """Central differences with step ``eps / 2`` for the input elements ``cols`` of input ``i``
    (NaN in the other columns): near a jump they double, where a derivative would stay put.

    Example: ``half_step_jacobian(prob, 0, np.array([3]), n_out, 1e-6)[:, 3]``.
    """
    base = np.array(prob.leaves[i].data, dtype=np.float64)
    half = np.full((n_out, base.size), np.nan)
    h = eps / 2
    for k in cols:
        vals = []
        for step in (h, -h):
            work = base.copy()
            work.flat[k] += step
            vals.append(prob.evaluate(i, work))
        half[:, k] = (vals[0] - vals[1]) / (2 * h)
    return half


def directional_evaluations(
    prob: FlatProblem, i: int, base: np.ndarray, direction: np.ndarray, step: float
) -> tuple[np.ndarray, np.ndarray]:
    """All outputs (flat, float64) at input ``i`` moved to ``base + step * direction`` and to
    ``base - step * direction``; ``v @ (fp - fm) / (2 * step)`` is the derivative of the
    projection ``v . outputs`` along ``direction``.

    Example: ``fp, fm = directional_evaluations(prob, 0, x, u, 1e-6)``.
    """
    shape = prob.leaves[i].shape
    d = direction.reshape(shape)
    b = base.reshape(shape)
    return prob.evaluate(i, b + step * d), prob.evaluate(i, b - step * d)
