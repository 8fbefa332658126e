"""Finite-difference gradient checks: ``gradcheck`` and ``gradgradcheck``.

Both compare the analytical Jacobian (from backward, one vector-Jacobian product per output
element) with central differences, in float64, and raise :class:`GradcheckError` naming the
input, the element and both values on a mismatch.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .engine import grad as autograd_grad
from .grad_mode import enable_grad


class GradcheckError(AssertionError):
    """A gradient check failed; the message names the input, element and both values."""


def _as_tuple(x: Any) -> tuple:
    return tuple(x) if isinstance(x, (tuple, list)) else (x,)


def _prepare(inputs: Sequence[Any]) -> list:
    from ..tensor import Tensor

    out = []
    for x in inputs:
        if isinstance(x, Tensor) and x.requires_grad:
            out.append(Tensor(x.data.astype(np.float64), requires_grad=True, name=x.name))
        else:
            out.append(x)
    return out


def _outputs(fn: Callable, xs: list) -> list:
    from ..tensor import Tensor

    with enable_grad():
        outs = _as_tuple(fn(*xs))
    return [o for o in outs if isinstance(o, Tensor) and o.dtype.kind in "fc"]


def _jacobians(fn: Callable, xs: list, eps: float) -> tuple[list, list]:
    """Numerical and analytical Jacobians, one (n_out_total, n_in) matrix per checked input."""
    from ..tensor import Tensor

    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    outs = _outputs(fn, xs)
    sizes = [o.size for o in outs]
    n_out = int(sum(sizes))
    numerical, analytical = [], []
    for i in checked:
        x = xs[i]
        jn = np.zeros((n_out, x.size))
        for k in range(x.size):
            vals = []
            for step in (eps, -eps):
                a = x.data.copy()  # perturb a copy: the original may be saved (read-only) by a graph
                a.reshape(-1)[k] += step
                moved = list(xs)
                moved[i] = Tensor(a, requires_grad=True)
                outs_k = _outputs(fn, moved)
                vals.append(np.concatenate([o.data.reshape(-1) for o in outs_k]) if n_out else np.zeros(0))
            jn[:, k] = (vals[0] - vals[1]) / (2 * eps)
        numerical.append(jn)
        analytical.append(np.zeros((n_out, x.size)))
    # Analytical: one vector-Jacobian product per output element.
    row = 0
    for oi, o in enumerate(outs):
        for k in range(o.size):
            outs_now = _outputs(fn, xs)
            target = outs_now[oi]
            if not target.requires_grad:
                row += 1
                continue
            go = np.zeros(o.shape)
            go.reshape(-1)[k] = 1.0
            gs = autograd_grad(target, [xs[i] for i in checked], Tensor(go), allow_unused=True)
            for j, g in enumerate(gs):
                if g is not None:
                    analytical[j][row] = g.data.reshape(-1)
            row += 1
    return numerical, analytical


def gradcheck(
    fn: Callable,
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
) -> bool:
    """Check ``fn``'s gradients against central differences in float64.

    ``inputs`` is a Tensor or a tuple of them; those with ``requires_grad`` are checked (as
    float64 copies). Returns True, or raises :class:`GradcheckError` (returns False with
    ``raise_exception=False``).

    Example::

        x = randn(3, 4, dtype=np.float64, requires_grad=True)
        gradcheck(lambda x: (x.tanh() * x).sum(axis=0), (x,))
    """
    from ..tensor import Tensor

    xs = _prepare(_as_tuple(inputs))
    numerical, analytical = _jacobians(fn, xs, eps)
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    for j, i in enumerate(checked):
        jn, ja = numerical[j], analytical[j]
        bad = np.abs(jn - ja) > atol + rtol * np.abs(jn)
        if bad.any():
            r, c = np.argwhere(bad)[0]
            idx = np.unravel_index(c, xs[i].shape)
            label = f"'{xs[i].name}'" if xs[i].name else str(i)
            msg = (
                f"gradcheck: gradient of input {label} (shape {xs[i].shape}) is wrong at element "
                f"{tuple(int(v) for v in idx)} for output element {int(r)}: numerical {jn[r, c]:.8g}, "
                f"analytical {ja[r, c]:.8g} ({int(bad.sum())} of {bad.size} Jacobian entries differ)."
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True


def gradgradcheck(
    fn: Callable,
    inputs: Any,
    grad_outputs: Any = None,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """Check second derivatives: gradcheck of ``(inputs, v) -> vjp(fn, inputs)(v)``.

    ``grad_outputs`` (the vectors v) default to random float64 tensors; they are checked too.
    """
    from ..tensor import Tensor

    xs = _prepare(_as_tuple(inputs))
    outs = _outputs(fn, xs)
    rng = np.random.default_rng(seed)
    if grad_outputs is None:
        gos = [Tensor(rng.standard_normal(o.shape), requires_grad=True) for o in outs]
    else:
        gos = [
            Tensor(np.asarray(g.data if isinstance(g, Tensor) else g, dtype=np.float64), requires_grad=True)
            for g in _as_tuple(grad_outputs)
        ]
    n = len(xs)
    checked = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]

    def first_derivative(*args: Any) -> tuple:
        a, v = list(args[:n]), args[n:]
        o = [t for t in _as_tuple(fn(*a)) if isinstance(t, Tensor) and t.dtype.kind in "fc"]
        pairs = [(t, g) for t, g in zip(o, v) if t.requires_grad]
        gs = autograd_grad([t for t, _ in pairs], [a[i] for i in checked], [g for _, g in pairs], create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None)

    return gradcheck(first_derivative, tuple(xs) + tuple(gos), eps=eps, atol=atol, rtol=rtol, raise_exception=raise_exception)
