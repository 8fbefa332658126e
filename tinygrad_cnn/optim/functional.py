"""Functional optimizers in the style of optax: pure ``init`` / ``update`` pairs over pytrees.

Each constructor (:func:`sgd`, :func:`adam`, :func:`adamw`, :func:`adagrad`, :func:`rmsprop`)
returns a :class:`GradientTransformation` ``(init, update)``:

- ``state = init(params)``
- ``new_params, new_state = update(grads, state, params)``

``params`` and ``grads`` are pytrees of the same structure (dicts matched by key) whose leaves
are float Tensors or numpy arrays; nothing is modified in place. The formulas are the ones the
object optimizers (``tinygrad_cnn.optim.SGD`` ...) use: both call the pure rules in
:mod:`tinygrad_cnn.optim.rules`, and each constructor's arguments are its rule's hyperparameters
with the rule's defaults (PyTorch's), read from the rule's signature.
Updates are not differentiated (as an object optimizer's ``step`` runs under ``no_grad``).

Example::

    opt = adam(lr=1e-3)
    state = opt.init(params)
    loss, grads = value_and_grad(loss_fn)(params, x, y)
    params, state = opt.update(grads, state, params)
"""
from __future__ import annotations

import inspect
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

    count: int  # type: ignore[assignment]  # a field named like tuple.count: optax's name
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
    hp = rules.with_defaults(name, hp)
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


def _constructor(name: str, doc: str) -> Callable[..., GradientTransformation]:
    """The public constructor of rule ``name``: its hyperparameters as arguments, in the rule's
    order and with its defaults, ``lr`` also accepting a schedule ``lr(step) -> float``."""
    P = inspect.Parameter
    lr_type = float | Callable[[int], float]
    params = [p.replace(kind=P.POSITIONAL_OR_KEYWORD) for p in rules.hyperparameters(name)]
    params = [p.replace(annotation=lr_type) if p.name == "lr" else p for p in params]
    sig = inspect.Signature(params, return_annotation=GradientTransformation)

    def make(*args: Any, **kwargs: Any) -> GradientTransformation:
        try:
            bound = sig.bind(*args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{name}: {e}.") from None
        return _make(name, bound.arguments)

    make.__name__ = make.__qualname__ = name
    make.__doc__ = doc
    make.__signature__ = sig  # type: ignore[attr-defined]
    return make


sgd = _constructor("sgd", """SGD with optional (Nesterov) momentum and weight decay; rule :func:`tinygrad_cnn.optim.rules.sgd`.

    ``lr`` (required) may be a schedule ``lr(step) -> float`` (step counts from 0). Example::

        opt = sgd(0.1, momentum=0.9)
        state = opt.init(params)
        params, state = opt.update(grads, state, params)
    """)

adam = _constructor("adam", """Adam (optionally AMSGrad; ``weight_decay`` is L2); rule :func:`tinygrad_cnn.optim.rules.adam`.

    Example: ``opt = adam(lr=1e-3); state = opt.init(params)``.
    """)

adamw = _constructor("adamw", """AdamW (decoupled weight decay); rule :func:`tinygrad_cnn.optim.rules.adamw`.

    Example: ``opt = adamw(lr=1e-3, weight_decay=0.01)``.
    """)

adagrad = _constructor("adagrad", """AdaGrad; rule :func:`tinygrad_cnn.optim.rules.adagrad`. Example: ``opt = adagrad(lr=0.01)``.""")

rmsprop = _constructor("rmsprop", """RMSprop (optionally centered, with momentum); rule :func:`tinygrad_cnn.optim.rules.rmsprop`.

    Example: ``opt = rmsprop(lr=1e-3, alpha=0.9)``.
    """)
