"""Functional optimizers in the style of optax: pure ``init`` / ``update`` pairs over pytrees.

Each constructor (:func:`sgd`, :func:`adam`, :func:`adamw`, :func:`adagrad`, :func:`rmsprop`)
returns a :class:`GradientTransformation` ``(init, update)``:

- ``state = init(params)``
- ``new_params, new_state = update(grads, state, params)``

``params`` and ``grads`` are pytrees of the same structure (dicts matched by key) whose leaves
are float Tensors or numpy arrays; nothing is modified in place. The formulas are the ones the
object optimizers (``tinygrad_cnn.optim.SGD`` ...) use: both call the pure rules in
:mod:`tinygrad_cnn.optim.rules`, with the same hyperparameter names and defaults (PyTorch's).
Updates are not differentiated (as an object optimizer's ``step`` runs under ``no_grad``).

Example::

    opt = adam(lr=1e-3)
    state = opt.init(params)
    loss, grads = value_and_grad(loss_fn)(params, x, y)
    params, state = opt.update(grads, state, params)
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..pytree import describe, keystr, tree_flatten, tree_flatten_with_path
from ..tensor import Tensor
from . import rules

__all__ = ["GradientTransformation", "OptState", "adagrad", "adam", "adamw", "rmsprop", "sgd"]


class OptState(NamedTuple):
    """A functional optimizer's state: ``count`` updates done so far, and one dict of the rule's
    state per parameter leaf (in ``tree_flatten`` order; empty before the first update)."""

    count: int
    leaf_states: tuple


class GradientTransformation(NamedTuple):
    """A pure optimizer: ``init(params) -> state`` and ``update(grads, state, params) -> (new_params, new_state)``."""

    init: Callable[[Any], OptState]
    update: Callable[[Any, OptState, Any], tuple[Any, OptState]]


def _array(x: Any, where: str, op: str) -> np.ndarray:
    a = x.data if isinstance(x, Tensor) else x
    if isinstance(a, (float, np.floating)):
        a = np.asarray(a)
    if not isinstance(a, np.ndarray) or a.dtype.kind != "f":
        raise TypeError(f"{op}: {where} is {describe(x)}; expected a floating-point Tensor or numpy array.")
    return a


def _where(tree: Any, j: int, root: str) -> str:
    pairs, _ = tree_flatten_with_path(tree)
    return keystr(pairs[j][0], root)


def _make(name: str, hp: dict[str, Any]) -> GradientTransformation:
    rule = rules.RULES[name]
    hp = {**rules.DEFAULTS[name], **hp}
    if "betas" in hp:
        hp["betas"] = tuple(hp["betas"])
    lr = hp.get("lr")
    schedule = callable(lr)
    if lr is None:
        raise ValueError(f"{name}: no learning rate given (pass lr=...).")
    # A schedule's values are checked when used; the other hyperparameters now.
    rules.check_hyperparameters(name, {k: v for k, v in hp.items() if not (k == "lr" and schedule)})

    def init(params: Any) -> OptState:
        """Empty per-parameter state for ``params`` (a pytree of float Tensors/arrays)."""
        leaves, _ = tree_flatten(params)
        for j, p in enumerate(leaves):
            _array(p, _where(params, j, "params"), f"{name}.init")
        return OptState(0, tuple({} for _ in leaves))

    def update(grads: Any, state: OptState, params: Any) -> tuple[Any, OptState]:
        """One step: returns ``(new_params, new_state)``; ``grads`` has the structure of ``params``."""
        op = f"{name}.update"
        if not isinstance(state, OptState):
            raise TypeError(f"{op}: state must be the OptState from init() or a previous update(), got {describe(state)}.")
        p_leaves, treedef = tree_flatten(params)
        g_leaves = treedef.flatten_up_to(grads, name="grads", op=op)
        if len(state.leaf_states) != len(p_leaves):
            raise ValueError(
                f"{op}: the state holds {len(state.leaf_states)} parameter(s) but params has {len(p_leaves)}; "
                "call init(params) for this parameter tree."
            )
        step_hp = dict(hp)
        if schedule:
            step_hp["lr"] = float(lr(state.count))
            rules.check_hyperparameters(name, {"lr": step_hp["lr"]})
        new_leaves, new_states = [], []
        for j, (p, g, st) in enumerate(zip(p_leaves, g_leaves, state.leaf_states)):
            pa = _array(p, _where(params, j, "params"), op)
            ga = _array(g, _where(params, j, "grads"), op)
            if ga.shape != pa.shape:
                raise ValueError(f"{op}: {_where(params, j, 'grads')} has shape {ga.shape} but the parameter has shape {pa.shape}.")
            new_p, new_st = rule(pa, ga, st, **step_hp)
            new_p = np.asarray(new_p).astype(pa.dtype, copy=False)  # keep the parameter's dtype, as copy_ does
            new_leaves.append(Tensor._make(new_p, None, 0) if isinstance(p, Tensor) else new_p)
            new_states.append(new_st)
        return treedef.unflatten(new_leaves), OptState(state.count + 1, tuple(new_states))

    return GradientTransformation(init, update)


def sgd(
    lr: float | Callable[[int], float],
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> GradientTransformation:
    """SGD with optional (Nesterov) momentum and weight decay; rule :func:`tinygrad_cnn.optim.rules.sgd`.

    ``lr`` may be a schedule ``lr(step) -> float`` (step counts from 0). Example::

        opt = sgd(0.1, momentum=0.9)
        state = opt.init(params)
        params, state = opt.update(grads, state, params)
    """
    return _make("sgd", dict(locals()))


def adam(
    lr: float | Callable[[int], float] = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """Adam (optionally AMSGrad; ``weight_decay`` is L2); rule :func:`tinygrad_cnn.optim.rules.adam`.

    Example: ``opt = adam(lr=1e-3); state = opt.init(params)``.
    """
    return _make("adam", dict(locals()))


def adamw(
    lr: float | Callable[[int], float] = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """AdamW (decoupled weight decay); rule :func:`tinygrad_cnn.optim.rules.adamw`.

    Example: ``opt = adamw(lr=1e-3, weight_decay=0.01)``.
    """
    return _make("adamw", dict(locals()))


def adagrad(
    lr: float | Callable[[int], float] = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> GradientTransformation:
    """AdaGrad; rule :func:`tinygrad_cnn.optim.rules.adagrad`. Example: ``opt = adagrad(lr=0.01)``."""
    return _make("adagrad", dict(locals()))


def rmsprop(
    lr: float | Callable[[int], float] = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> GradientTransformation:
    """RMSprop (optionally centered, with momentum); rule :func:`tinygrad_cnn.optim.rules.rmsprop`.

    Example: ``opt = rmsprop(lr=1e-3, alpha=0.9)``.
    """
    return _make("rmsprop", dict(locals()))
