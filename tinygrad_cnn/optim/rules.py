"""The update rules of every optimizer, written once, as pure functions on numpy arrays.

Each rule is ``rule(param, grad, state, **hyperparameters) -> (new_param, new_state)``:

- ``param``, ``grad``: arrays of the same shape (the parameter and its gradient);
- ``state``: the rule's per-parameter state from the previous call (``{}`` on the first);
- the keyword-only arguments are the rule's hyperparameters with their defaults;
- returns a *new* parameter array and a *new* state dict; the inputs are never modified.

The object optimizers (:class:`tinygrad_cnn.optim.SGD` ...) and the functional optimizers both
call these, so there is one implementation of each formula, and both take their hyperparameters
and defaults from the rule's signature (:func:`hyperparameters`, :data:`DEFAULTS`), so there is
one list of them too. The formulas and state key names are PyTorch's (``torch.optim``);
arithmetic stays in the parameter's dtype.

Example::

    p, g = np.array([1.0, 2.0]), np.array([0.5, -0.5])
    state = {}
    for _ in range(3):
        p, state = adam(p, g, state, lr=0.1)
    state["step"]                 # 3
"""
from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["DEFAULTS", "RULES", "adagrad", "adam", "adamw", "check_hyperparameters", "hyperparameters", "rmsprop", "sgd", "with_defaults"]

State = dict[str, Any]
"""A rule's per-parameter state (moment arrays, step count), as it returns it."""


def _prep(param: np.ndarray, grad: np.ndarray, name: str, weight_decay: float, maximize: bool) -> np.ndarray:
    if param.shape != grad.shape:
        raise ValueError(f"{name}: gradient shape {grad.shape} differs from parameter shape {param.shape}.")
    g = grad.astype(param.dtype, copy=False)
    if maximize:
        g = -g
    if weight_decay:
        g = g + weight_decay * param
    return g


def sgd(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    *,
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """Stochastic gradient descent (PyTorch's form of momentum and Nesterov).

    ``g = grad + weight_decay * p``; with momentum, ``buf = g`` on the first step and
    ``buf = momentum * buf + (1 - dampening) * g`` after; the step direction is ``buf``, or
    ``g + momentum * buf`` with ``nesterov``; ``p = p - lr * direction``. State: ``momentum_buffer``.
    """
    g = _prep(param, grad, "sgd", weight_decay, maximize)
    new_state: State = {}
    if momentum:
        buf = state.get("momentum_buffer")
        buf = g.copy() if buf is None else momentum * buf + (1.0 - dampening) * g
        new_state["momentum_buffer"] = buf
        g = g + momentum * buf if nesterov else buf
    return param - lr * g, new_state


def adagrad(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    *,
    lr: float = 1e-2,
    lr_decay: float = 0.0,
    weight_decay: float = 0.0,
    initial_accumulator_value: float = 0.0,
    eps: float = 1e-10,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """AdaGrad (Duchi et al. 2011): ``sum += g^2``; ``p -= clr * g / (sqrt(sum) + eps)`` with
    ``clr = lr / (1 + (step - 1) * lr_decay)``. State: ``step``, ``sum``."""
    g = _prep(param, grad, "adagrad", weight_decay, maximize)
    step = int(state.get("step", 0)) + 1
    acc = state.get("sum")
    if acc is None:
        acc = np.full_like(param, initial_accumulator_value)
    acc = acc + g * g
    clr = lr / (1.0 + (step - 1) * lr_decay)
    return param - clr * g / (np.sqrt(acc) + eps), {"step": step, "sum": acc}


def rmsprop(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    *,
    lr: float = 1e-2,
    alpha: float = 0.99,
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    momentum: float = 0.0,
    centered: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """RMSprop (Hinton's lecture 6e; PyTorch's variant): ``sq = alpha * sq + (1 - alpha) * g^2``;
    ``avg = sqrt(sq) + eps`` (centered: ``sqrt(sq - ga^2) + eps`` with ``ga`` the running mean of
    g); with momentum ``buf = momentum * buf + g / avg; p -= lr * buf``, else ``p -= lr * g / avg``.
    State: ``step``, ``square_avg``, and ``grad_avg`` / ``momentum_buffer`` when used."""
    g = _prep(param, grad, "rmsprop", weight_decay, maximize)
    step = int(state.get("step", 0)) + 1
    sq = state.get("square_avg")
    sq = (1.0 - alpha) * g * g if sq is None else alpha * sq + (1.0 - alpha) * g * g
    new_state: State = {"step": step, "square_avg": sq}
    if centered:
        ga = state.get("grad_avg")
        ga = (1.0 - alpha) * g if ga is None else alpha * ga + (1.0 - alpha) * g
        new_state["grad_avg"] = ga
        avg = np.sqrt(sq - ga * ga) + eps
    else:
        avg = np.sqrt(sq) + eps
    if momentum > 0:
        buf = state.get("momentum_buffer")
        buf = g / avg if buf is None else momentum * buf + g / avg
        new_state["momentum_buffer"] = buf
        return param - lr * buf, new_state
    return param - lr * g / avg, new_state


def adam(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """Adam (Kingma & Ba 2015): ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``; ``amsgrad`` uses the running
    maximum of v. ``weight_decay`` is L2 added to the gradient (for decoupled decay use
    :func:`adamw`). State: ``step``, ``exp_avg``, ``exp_avg_sq`` (, ``max_exp_avg_sq``)."""
    g = _prep(param, grad, "adam", weight_decay, maximize)
    return _adam_core(param, g, state, lr, betas, eps, amsgrad)


def adamw(
    param: np.ndarray,
    grad: np.ndarray,
    state: State,
    *,
    lr: float = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 1e-2,
    amsgrad: bool = False,
    maximize: bool = False,
) -> tuple[np.ndarray, State]:
    """AdamW (Loshchilov & Hutter 2019): decoupled weight decay ``p = p * (1 - lr * weight_decay)``,
    then the Adam step on the raw gradient. Same state as :func:`adam`."""
    g = _prep(param, grad, "adamw", 0.0, maximize)
    return _adam_core(param * (1.0 - lr * weight_decay), g, state, lr, betas, eps, amsgrad)


def _adam_core(
    param: np.ndarray, g: np.ndarray, state: State, lr: float, betas: tuple[float, float], eps: float, amsgrad: bool
) -> tuple[np.ndarray, State]:
    b1, b2 = betas
    step = int(state.get("step", 0)) + 1
    m = state.get("exp_avg")
    v = state.get("exp_avg_sq")
    m = (1.0 - b1) * g if m is None else b1 * m + (1.0 - b1) * g
    v = (1.0 - b2) * g * g if v is None else b2 * v + (1.0 - b2) * g * g
    new_state: State = {"step": step, "exp_avg": m, "exp_avg_sq": v}
    if amsgrad:
        vmax = state.get("max_exp_avg_sq")
        vmax = v if vmax is None else np.maximum(vmax, v)
        new_state["max_exp_avg_sq"] = vmax
        v = vmax
    bc1 = 1.0 - b1**step
    bc2 = 1.0 - b2**step
    denom = np.sqrt(v) / math.sqrt(bc2) + eps
    return param - (lr / bc1) * m / denom, new_state


RULES: dict[str, Callable[..., tuple[np.ndarray, State]]] = {
    "sgd": sgd,
    "adagrad": adagrad,
    "rmsprop": rmsprop,
    "adam": adam,
    "adamw": adamw,
}
"""The update rules by name."""



@functools.cache
def hyperparameters(name: str) -> tuple[inspect.Parameter, ...]:
    """The hyperparameters of rule ``name``, in order: the keyword-only parameters of its signature,
    with their defaults (``inspect.Parameter.empty`` for none, as sgd's ``lr``).

    Example::

        [p.name for p in hyperparameters("adam")]   # ['lr', 'betas', 'eps', 'weight_decay', 'amsgrad', 'maximize']
    """
    sig = inspect.signature(RULES[name], eval_str=True)
    return tuple(p for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY)


DEFAULTS: dict[str, dict[str, Any]] = {
    name: {p.name: p.default for p in hyperparameters(name) if p.default is not p.empty} for name in RULES
}
"""The default hyperparameters of each rule (PyTorch's), read from its signature; sgd has no default learning rate."""


def with_defaults(name: str, hp: dict[str, Any]) -> dict[str, Any]:
    """All hyperparameters of rule ``name`` in the rule's order: ``hp``'s values, else the
    :data:`DEFAULTS`; ``betas`` given as a list becomes a tuple."""
    out = {p.name: hp.get(p.name, p.default) for p in hyperparameters(name) if p.name in hp or p.default is not p.empty}
    out.update({k: v for k, v in hp.items() if k not in out})  # unknown names stay, for the caller to report
    if "betas" in out:
        out["betas"] = tuple(out["betas"])
    return out


def check_hyperparameters(name: str, hp: dict[str, Any]) -> None:
    """Raise a ValueError naming the optimizer and the bad value for out-of-range hyperparameters."""

    def bad(key: str, rule: str) -> None:
        raise ValueError(f"{name}: {key}={hp[key]!r} is invalid; {rule}.")

    if "lr" in hp and not (isinstance(hp["lr"], (int, float)) and hp["lr"] >= 0):
        bad("lr", "the learning rate must be a number >= 0")
    for key in ("momentum", "weight_decay", "eps", "lr_decay", "initial_accumulator_value", "dampening"):
        if key in hp and not hp[key] >= 0:
            bad(key, "it must be >= 0")
    if "alpha" in hp and not 0 <= hp["alpha"] < 1:
        bad("alpha", "the smoothing constant must be in [0, 1)")
    if "betas" in hp:
        b = hp["betas"]
        if len(b) != 2 or not all(0 <= x < 1 for x in b):
            bad("betas", "give two coefficients, each in [0, 1)")
    if hp.get("nesterov") and (hp.get("momentum", 0) <= 0 or hp.get("dampening", 0) != 0):
        bad("nesterov", "Nesterov momentum needs momentum > 0 and dampening = 0")
