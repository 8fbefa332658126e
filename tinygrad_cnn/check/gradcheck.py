"""Finite-difference gradient checks that explain themselves: ``gradcheck`` and ``gradgradcheck``.

Both compare the gradients computed by backward (the *analytical* Jacobian) with central
differences (the *numerical* Jacobian) in float64, and describe what they found in a
:class:`~tinygrad_cnn.check.report.GradcheckResult`: for each input (named by its argument name
or pytree path) and each output, how many elements are wrong, where the worst one is in the
input's own shape, both values and the errors, and for 4-D inputs the largest error per channel.

- **Full mode** (default) builds both Jacobians: ``2 * numel(input)`` forward passes and one
  backward per output element.
- **Fast mode** compares random projections ``v^T J u`` (u, v standard normal): four forward
  passes per input (steps eps and 2 eps; their difference measures the numerical noise, which
  sets the tolerance) and one backward per output, so large layers are checked quickly. An input
  whose projection disagrees is re-checked to locate its wrong elements: element by element, or
  by bisection for an input above ``checker.LOCATE_MAX_ELEMENTS`` elements (which then reports
  at most ``checker.BISECT_MAX_FOUND`` of them).
- **Kinks**: at a non-differentiable point (relu or abs at 0, a tie in max) a central
  difference averages two different one-sided derivatives. When an element fails, the checker
  compares the one-sided differences; if they disagree and backward's value lies between them
  (a valid one-sided derivative/subgradient), the element is reported as non-differentiable at
  that point instead of as a gradient error (``fail_on_kinks=True`` makes these fail).
- Also checked: every backward in the graph returns gradients of its input's shape and dtype
  (:func:`tinygrad_cnn.check.structural.structural_problems`), repeated backward passes agree
  within ``nondet_tol``, backward is linear in the incoming gradient, and an input that requires
  grad but gets ``None`` while its numerical gradient is nonzero is reported.

Where the parts live: :mod:`.problem` (the function as a flat problem), :mod:`.numerical`
(finite differences), :mod:`.compare` (tolerances, kinks and jumps), :mod:`.checker` (full and
fast mode, locating), :mod:`.structural` (per-node shape/dtype checks), :mod:`.report` (results).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from ..pytree import tree_leaves
from .checker import run
from .problem import Setup, second_order
from .report import GradcheckError, GradcheckResult, GradcheckWarning

__all__ = ["gradcheck", "gradgradcheck"]


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
    setup = Setup(fn, inputs, "gradcheck")
    prob = setup.problem("gradcheck")
    result = GradcheckResult(order=1, mode="fast" if fast_mode else "full", eps=eps, atol=atol, rtol=rtol)
    result.inputs = [(setup.labels[i], setup.leaves[i].shape, setup.orig_dtypes[i]) for i in setup.checked]
    run(prob, result, eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode, nondet_tol=nondet_tol, fail_on_kinks=fail_on_kinks, seed=seed)
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
    _check_args("gradgradcheck", eps, atol, rtol, nondet_tol)
    setup = Setup(fn, inputs, "gradgradcheck")
    setup.problem("gradgradcheck")
    given = None if grad_outputs is None else [g for g in tree_leaves(grad_outputs) if g is not None]
    prob = second_order(setup.flat, setup.leaves, setup.checked, setup.labels, seed, frozenset(), given)
    result = GradcheckResult(order=2, mode="fast" if fast_mode else "full", eps=eps, atol=atol, rtol=rtol)
    n = len(setup.leaves)
    result.inputs = [
        (prob.in_labels[i], prob.leaves[i].shape, setup.orig_dtypes[i] if i < n else np.dtype(np.float64)) for i in prob.checked
    ]
    run(prob, result, eps=eps, atol=atol, rtol=rtol, fast_mode=fast_mode, nondet_tol=nondet_tol, fail_on_kinks=fail_on_kinks, seed=seed)
    return _finish(result, setup.warnings, raise_exception)
