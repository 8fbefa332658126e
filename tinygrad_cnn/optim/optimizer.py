"""``Optimizer``: the object API over parameter groups. Each subclass names an update rule from
:mod:`tinygrad_cnn.optim.rules` (``class SGD(Optimizer, rule="sgd")``), and its constructor's
hyperparameters and defaults are the rule's; ``step()`` applies it to every parameter with a gradient and
writes the result back in place under ``no_grad``. The in-place write bumps the parameter's version
counter, so a graph recorded before the step and still alive refuses to backward (its saved
weights are no longer the ones its forward used)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad, run_ieee
from ..tensor import Tensor
from . import rules


class Optimizer:
    """Base class. ``params`` is an iterable of Tensors that require grad (e.g.
    ``model.parameters()``), of ``(name, Tensor)`` pairs (``model.named_parameters()``) or of
    dicts ``{'params': [...], **hyperparameters}`` (parameter groups; missing hyperparameters
    take the constructor's values).

    Attributes: ``param_groups`` (list of dicts), ``state`` (dict Tensor -> the rule's state).

    ``class SGD(Optimizer, rule="sgd")`` makes an optimizer of a rule in
    :data:`tinygrad_cnn.optim.rules.RULES`: its constructor is ``SGD(params, <the rule's
    hyperparameters with the rule's defaults>)``, read from the rule's signature, plus PyTorch's
    ``foreach``/``fused``/``capturable``/``differentiable`` switches, which accept only their
    defaults (anything else raises NotImplementedError).

    Example::

        opt = SGD([{'params': model.fc1.parameters()}, {'params': model.fc2.parameters(), 'lr': 0.01}],
                  lr=0.1, momentum=0.9)
        opt.zero_grad(); loss.backward(); opt.step()
    """

    rule_name: str = ""
    step_count = 0  # step() calls so far (a scheduler warns when it is stepped first)

    def __init_subclass__(cls, rule: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if rule is not None:
            cls.rule_name = rule
            cls.__init__ = _constructor(rule)  # type: ignore[method-assign]
        if "step" in cls.__dict__:
            # A PyTorch-style subclass with its own step() counts its steps too (for the schedulers).
            cls.step = _counted(cls.__dict__["step"])  # type: ignore[method-assign]

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[Tensor, dict[str, Any]] = {}
        if isinstance(params, Tensor):
            raise TypeError(
                f"{type(self).__name__}: params must be an iterable of Tensors or dicts, got a single Tensor; wrap it in a list."
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list.")
        if not isinstance(groups[0], dict):
            groups = [{"params": _unnamed(groups)}]
        for g in groups:
            self.add_param_group(g)

    @property
    def rule(self) -> Callable[..., tuple[np.ndarray, dict]]:
        return rules.RULES[self.rule_name]

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Add ``{'params': [...], **hyperparameters}``; a parameter may belong to one group only."""
        name = type(self).__name__
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{name}: a parameter group is a dict with a 'params' entry, got {type(group).__name__}.")
        ps = group["params"]
        ps = [ps] if isinstance(ps, Tensor) else _unnamed(list(ps))
        if not ps:
            raise ValueError(f"{name}: a parameter group has an empty 'params' list.")
        for i, p in enumerate(ps):
            if not isinstance(p, Tensor):
                raise TypeError(f"{name}: params[{i}] is a {type(p).__name__}, not a Tensor.")
            if not p.is_leaf:
                raise ValueError(
                    f"{name}: params[{i}] (shape {p.shape}) is not a leaf tensor; optimize the leaves (e.g. model.parameters())."
                )
            if p.dtype.kind != "f":
                raise TypeError(f"{name}: params[{i}] has dtype {p.dtype}; only floating-point tensors can be optimized.")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in ps}) != len(ps) or any(id(p) in seen for p in ps):
            raise ValueError(f"{name}: some parameters appear more than once (in a group or across groups).")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"{name}: unknown hyperparameter(s) {sorted(unknown)}; known: {sorted(self.defaults)}.")
        g = {**self.defaults, **{k: v for k, v in group.items() if k != "params"}, "params": ps}
        if g.get("lr") is None:
            raise ValueError(f"{name}: no learning rate given (pass lr=...).")
        rules.check_hyperparameters(name, g)
        self.param_groups.append(g)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Clear the gradients of all optimized parameters (to None, or zeros with ``set_to_none=False``)."""
        for g in self.param_groups:
            for p in g["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad = Tensor(np.zeros_like(p.data))

    @no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a ``.grad`` with the rule; returns ``closure()`` if given
        (the closure re-evaluates the loss, with gradients enabled)."""
        loss = None
        if closure is not None:
            from ..autograd.grad_mode import enable_grad

            with enable_grad():
                loss = closure()
        rule, names = self.rule, self.defaults
        for g in self.param_groups:
            # Only the rule's hyperparameters: a group also holds other tools' entries (a
            # scheduler's 'initial_lr', OneCycleLR's 'max_lr'), as in PyTorch.
            hp = {k: v for k, v in g.items() if k in names}
            for p in g["params"]:
                if p.grad is None:
                    continue
                new_p, new_state = run_ieee(rule, p.data, p.grad.data, self.state.get(p, {}), **hp)
                p.copy_(new_p)
                self.state[p] = new_state
        return loss

    # ---- checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{'state': {index: {name: array | int}}, 'param_groups': [{hyperparameters, 'params': [index, ...]}]}``,
        parameters numbered in group order (PyTorch's layout); ready for ``tinygrad_cnn.save``.
        The state arrays are the optimizer's own (the rules never modify them in place)."""
        index: dict[int, int] = {}
        groups = []
        for g in self.param_groups:
            ids = []
            for p in g["params"]:
                index.setdefault(id(p), len(index))
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in g.items() if k != "params"}, "params": ids})
        state = {index[id(p)]: dict(s) for p, s in self.state.items() if id(p) in index}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and per-parameter state saved by ``state_dict()`` (also after a
        round trip through ``tinygrad_cnn.save``/``load``). The groups must have the same sizes, and
        each state array the shape of its parameter; nothing is changed if a check fails."""
        name = type(self).__name__
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError(f"{name}.load_state_dict: expected a dict with keys 'state' and 'param_groups' (from state_dict()).")
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(
                f"{name}.load_state_dict: the checkpoint has {len(saved)} parameter group(s), this optimizer {len(self.param_groups)}."
            )
        params: dict[int, Tensor] = {}
        new_groups = []
        for i, (sg, g) in enumerate(zip(saved, self.param_groups)):
            ids = [int(k) for k in sg["params"]]
            if len(ids) != len(g["params"]):
                raise ValueError(
                    f"{name}.load_state_dict: group {i} has {len(ids)} parameter(s) in the checkpoint, {len(g['params'])} here."
                )
            params.update(zip(ids, g["params"]))
            # Entries other than the rule's hyperparameters (a scheduler's) are restored as they are.
            hp = {k: _restore(v) for k, v in sg.items() if k != "params"}
            new_groups.append({**g, **hp})
        new_state: dict[Tensor, dict[str, Any]] = {}
        for k, s in state_dict["state"].items():
            k = int(k)
            if k not in params:
                raise ValueError(f"{name}.load_state_dict: state for parameter {k}, which no group lists.")
            p = params[k]
            restored = {}
            for key, v in s.items():
                v = _restore(v)
                if isinstance(v, np.ndarray) and v.ndim > 0:
                    if v.shape != p.shape:
                        raise ValueError(
                            f"{name}.load_state_dict: state '{key}' of parameter {k} has shape {v.shape}, the parameter {p.shape}."
                        )
                    v = v.astype(p.dtype, copy=True)
                restored[key] = v
            new_state[p] = restored
        for i, g in enumerate(new_groups):
            rules.check_hyperparameters(name, g)
            self.param_groups[i] = g
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, g in enumerate(self.param_groups):
            lines.append(f"  group {i}: {len(g['params'])} tensors, " + ", ".join(f"{k}={v}" for k, v in g.items() if k != "params"))
        return "\n".join(lines) + "\n)"


# Hyperparameters that torch.optim takes by keyword only.
_KEYWORD_ONLY = ("maximize", "decoupled_weight_decay")

# torch.optim's implementation switches, accepted at their defaults (or False); what they select
# does not exist here: each rule is one numpy implementation on the CPU.
_IMPLEMENTATION_FLAGS = {
    "foreach": (None, "the multi-tensor CUDA path"),
    "fused": (None, "fused CUDA kernels"),
    "capturable": (False, "CUDA-graph capture"),
    "differentiable": (False, "differentiating through the optimizer step; use tinygrad_cnn.optim.functional for a pure update"),
}


def _check_flags(name: str, flags: dict[str, Any]) -> None:
    for k, v in flags.items():
        if v:
            default, what = _IMPLEMENTATION_FLAGS[k]
            raise NotImplementedError(
                f"{name}: {k}={v!r} is not supported in tinygrad_cnn ({what}); every optimizer runs one numpy "
                f"implementation on the CPU. Leave {k} at its default ({default!r}) or pass False."
            )


def _constructor(rule: str) -> Callable[..., None]:
    """``__init__(self, params, <hyperparameters>, *, maximize, ..., foreach=None, fused=None, ...)``
    of the optimizer of ``rule``, as torch.optim's: the rule's hyperparameters in the rule's order
    and with its defaults (``maximize`` and ``decoupled_weight_decay`` keyword-only), then PyTorch's
    implementation switches, which only accept their defaults here."""
    P = inspect.Parameter
    hps = list(rules.hyperparameters(rule))
    positional = [p.replace(kind=P.POSITIONAL_OR_KEYWORD) for p in hps if p.name not in _KEYWORD_ONLY]
    keyword = [p for p in hps if p.name in _KEYWORD_ONLY]
    flags = [P(k, P.KEYWORD_ONLY, default=d, annotation=bool | None) for k, (d, _) in _IMPLEMENTATION_FLAGS.items()]
    sig = inspect.Signature(
        [P("self", P.POSITIONAL_OR_KEYWORD), P("params", P.POSITIONAL_OR_KEYWORD, annotation=Iterable[Any]), *positional, *keyword, *flags],
        return_annotation=None,
    )

    def __init__(self: Optimizer, *args: Any, **kwargs: Any) -> None:
        try:
            bound = sig.bind(self, *args, **kwargs)
        except TypeError as e:
            raise TypeError(f"{type(self).__name__}: {e}.") from None
        bound.apply_defaults()
        hp = dict(bound.arguments)
        del hp["self"]
        params = hp.pop("params")
        _check_flags(type(self).__name__, {k: hp.pop(k) for k in _IMPLEMENTATION_FLAGS})
        Optimizer.__init__(self, params, rules.with_defaults(rule, hp))

    __init__.__signature__ = sig  # type: ignore[attr-defined]
    return __init__


def _counted(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` that adds one to ``step_count`` per outermost call (a subclass's step calling
    ``super().step()`` counts once)."""

    @functools.wraps(step)
    def counted(self: Optimizer, *args: Any, **kwargs: Any) -> Any:
        outer = not self.__dict__.get("_in_step", False)
        if outer:
            self.step_count += 1
            self.__dict__["_in_step"] = True
        try:
            return step(self, *args, **kwargs)
        finally:
            if outer:
                self.__dict__["_in_step"] = False

    return counted


def _unnamed(ps: list[Any]) -> list[Any]:
    # torch.optim also takes model.named_parameters(): (name, tensor) pairs.
    if ps and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str) for p in ps):
        return [p[1] for p in ps]
    return ps


def _restore(v: Any) -> Any:
    # Scalars come back from a .npz as 0-d arrays and tuples as lists: give the rules plain values.
    if isinstance(v, np.ndarray) and v.ndim == 0:
        return v.item()
    if isinstance(v, list):
        return tuple(_restore(x) for x in v)
    return v


Optimizer.step = _counted(Optimizer.step)  # type: ignore[method-assign]
