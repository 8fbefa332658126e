"""Gradient clipping and parameter-vector conversion, as in PyTorch's ``torch.nn.utils``.

``clip_grad_norm_`` and ``clip_grad_value_`` change the parameters' ``.grad`` Tensors in place
(same objects, bumped version counters), under ``no_grad``, between ``loss.backward()`` and
``optimizer.step()``.

Example:

>>> import numpy as np, tinygrad_cnn as tg
>>> from tinygrad_cnn.nn.utils import clip_grad_norm_
>>> w = tg.Tensor(np.zeros(2), requires_grad=True)
>>> w.grad = tg.Tensor(np.array([3.0, 4.0]))
>>> clip_grad_norm_([w], max_norm=1.0).item()      # the norm before clipping
5.0
>>> np.round(w.grad.numpy(), 6)
array([0.6, 0.8])
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..ops.functions import cat
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_", "get_total_norm", "parameters_to_vector", "vector_to_parameters"]


def _params(name: str, parameters: Any) -> list[Tensor]:
    ps = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(ps):
        if not isinstance(p, Tensor):
            raise TypeError(f"{name}: parameters[{i}] is a {type(p).__name__}, not a Tensor; pass model.parameters() or a list of Tensors.")
    return ps


def _vector_norm(x: np.ndarray, p: float) -> np.ndarray:
    """``torch.linalg.vector_norm(x, p)`` of the flattened array, as a 0-d array of x's dtype."""
    a = np.abs(x.ravel())
    if p == math.inf:
        r = a.max(initial=0)
    elif p == -math.inf:
        r = a.min(initial=math.inf)
    elif p == 0:
        r = np.count_nonzero(a)
    elif p == 1:
        r = a.sum()
    elif p == 2:
        r = np.sqrt(np.dot(a, a))
    else:
        r = np.sum(a**p) ** (1.0 / p)
    return np.asarray(r, dtype=x.dtype)


def get_total_norm(tensors: Any, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None) -> Tensor:
    """The ``norm_type``-norm of all ``tensors`` taken as one vector (the norm of their norms), as a
    0-d Tensor; ``float('inf')`` gives the largest absolute value. ``foreach`` is accepted for
    PyTorch compatibility (there is one implementation).

    >>> get_total_norm([Tensor(np.array([3.0])), Tensor(np.array([4.0]))]).item()
    5.0
    """
    ts = _params("get_total_norm", tensors)
    norm_type = float(norm_type)
    if not ts:
        return Tensor(np.array(0.0, dtype=np.float32))
    with no_grad():
        norms = [_vector_norm(t.data, norm_type) for t in ts]
        total = _vector_norm(np.stack(norms), norm_type)  # np.stack promotes mixed dtypes, as torch.stack
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(
            f"The total norm of order {norm_type} for gradients from `parameters` is non-finite, so it cannot be clipped. "
            "To disable this error and scale the gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return Tensor(total)


def clip_grads_with_norm_(parameters: Any, max_norm: float, total_norm: Tensor, foreach: bool | None = None) -> None:
    """Scale the parameters' gradients in place by ``min(max_norm / (total_norm + 1e-6), 1)``.

    >>> w = Tensor(np.zeros(2), requires_grad=True); w.grad = Tensor(np.array([3.0, 4.0]))
    >>> clip_grads_with_norm_([w], 2.5, Tensor(np.array(5.0))); np.round(w.grad.numpy(), 6)
    array([1.5, 2. ])
    """
    ps = _params("clip_grads_with_norm_", parameters)
    grads = [p.grad for p in ps if p.grad is not None]
    max_norm = float(max_norm)
    if not grads:
        return
    total = total_norm.data if isinstance(total_norm, Tensor) else np.asarray(total_norm)
    # Computed in the norm's dtype, and applied even when it is 1 (a no-op), as PyTorch does.
    coef = np.minimum(max_norm / (total + 1e-6), 1.0)
    with no_grad():
        for g in grads:
            g.mul_(coef)


def clip_grad_norm_(
    parameters: Any, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False, foreach: bool | None = None
) -> Tensor:
    """Rescale the gradients of ``parameters`` (a Tensor or an iterable of them) in place so that
    their total ``norm_type``-norm, taken as one vector, is at most ``max_norm``: each ``.grad`` is
    multiplied by ``min(max_norm / (total_norm + 1e-6), 1)``. Parameters without a gradient are
    skipped. Returns the total norm before clipping (a 0-d Tensor in the gradients' dtype).

    ``norm_type`` may be ``float('inf')`` (largest absolute value). A non-finite total norm raises a
    RuntimeError with ``error_if_nonfinite=True``; otherwise the gradients are scaled by it anyway
    (an infinite norm zeroes them, a nan one makes them nan). ``foreach`` is accepted for PyTorch
    compatibility.

    Example:

    >>> w = Tensor(np.zeros(3), requires_grad=True)
    >>> w.grad = Tensor(np.array([1.0, -2.0, 2.0]))
    >>> clip_grad_norm_([w], max_norm=1.5).item()
    3.0
    >>> np.round(w.grad.numpy(), 6)
    array([ 0.5, -1. ,  1. ])
    """
    if isinstance(parameters, types.GeneratorType):
        parameters = list(parameters)
        if not parameters:
            warnings.warn("`parameters` is an empty generator, no gradient clipping will occur.", stacklevel=2)
    ps = _params("clip_grad_norm_", parameters)
    grads = [p.grad for p in ps if p.grad is not None]
    total_norm = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(ps, max_norm, total_norm, foreach)
    return total_norm


def clip_grad_value_(parameters: Any, clip_value: float, foreach: bool | None = None) -> None:
    """Clamp the gradients of ``parameters`` in place to ``[-clip_value, clip_value]``; parameters
    without a gradient are skipped.

    Example:

    >>> w = Tensor(np.zeros(3), requires_grad=True)
    >>> w.grad = Tensor(np.array([0.5, -2.0, 3.0]))
    >>> clip_grad_value_([w], clip_value=1.0)
    >>> w.grad.numpy()
    array([ 0.5, -1. ,  1. ])
    """
    ps = _params("clip_grad_value_", parameters)
    clip_value = float(clip_value)
    with no_grad():
        for p in ps:
            if p.grad is not None:
                # Lower bound first, then upper: with a negative clip_value everything becomes
                # clip_value, as torch.clamp_ gives.
                p.grad.copy_(np.minimum(np.maximum(p.grad.data, -clip_value), clip_value))


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """Flatten and concatenate ``parameters`` into one 1-D Tensor (a new array; differentiable).

    Example:

    >>> parameters_to_vector([Tensor(np.ones((2, 2))), Tensor(np.zeros(1))]).numpy()
    array([1., 1., 1., 1., 0.])
    """
    ps = _params("parameters_to_vector", parameters)
    if not ps:
        raise ValueError("parameters_to_vector: got no parameters; pass model.parameters() or a non-empty list of Tensors.")
    return cat([p.reshape(-1) for p in ps], axis=0)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copy consecutive slices of the 1-D Tensor ``vec`` into ``parameters`` (reshaped to each
    parameter's shape). As in PyTorch, each parameter's ``.data`` becomes a view of ``vec``'s array
    (no copy), and the length of ``vec`` is not required to match exactly.

    Example:

    >>> a, b = Tensor(np.zeros((2, 2))), Tensor(np.zeros(1))
    >>> vector_to_parameters(Tensor(np.arange(5.0)), [a, b])
    >>> a.numpy(), b.numpy()
    (array([[0., 1.],
           [2., 3.]]), array([4.]))
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected Tensor, but got: {type(vec).__name__}")
    pointer = 0
    for i, param in enumerate(_params("vector_to_parameters", parameters)):
        n = param.data.size
        piece = vec.data.reshape(-1)[pointer : pointer + n] if vec.ndim == 1 else vec.data[pointer : pointer + n]
        if piece.size != n:
            raise RuntimeError(
                f"vector_to_parameters: vec has {vec.shape[0]} elements, too few for parameter {i} of shape {param.shape} "
                f"(elements {pointer} to {pointer + n}); give a vector as long as parameters_to_vector(parameters)."
            )
        param.data = piece.reshape(param.shape)
        pointer += n
