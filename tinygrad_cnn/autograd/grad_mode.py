"""Gradient recording switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

Each works as a context manager and as a function decorator, as in PyTorch.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState:
    # One process-wide flag, read on every op: a plain attribute is the cheapest lookup.
    enabled: bool = True
    anomaly: bool = False
    in_backward: bool = False  # anomaly checks attribute ops run inside a backward to that node
    # Modules whose forward is running (outermost first); recorded on each node for graph
    # rendering. nn.Module.__call__ pushes itself; see module_scope().
    scope: tuple = ()
    # When True, nodes also keep their input Tensors (node.input_tensors) so that tools can re-run
    # every op on its own inputs (whole-graph gradient checks). Off by default: it keeps every
    # intermediate activation alive as long as the graph.
    keep_inputs: bool = False


STATE = _GradState()


def is_grad_enabled() -> bool:
    """Return whether ops currently record the graph."""
    return STATE.enabled


class set_grad_enabled:
    """Turn graph recording on or off, inside a ``with`` block or a decorated function.

    Example::

        with set_grad_enabled(False):
            y = x * 2          # y.requires_grad is False
    """

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)
        self.prev: list[bool] = []

    def __enter__(self) -> set_grad_enabled:
        self.prev.append(STATE.enabled)
        STATE.enabled = self.mode
        return self

    def __exit__(self, *exc: object) -> None:
        STATE.enabled = self.prev.pop()

    def __call__(self, fn: F) -> F:
        mode = self.mode

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with set_grad_enabled(mode):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]


class no_grad(set_grad_enabled):
    """Context manager / decorator that stops graph recording.

    Example::

        with no_grad():
            w -= 0.1 * w.grad     # an update that must not be differentiated
    """

    def __init__(self) -> None:
        super().__init__(False)


class enable_grad(set_grad_enabled):
    """Context manager / decorator that turns graph recording back on inside ``no_grad``."""

    def __init__(self) -> None:
        super().__init__(True)


class module_scope:
    """Context manager marking ops recorded inside it as belonging to ``module`` (for graph
    rendering). ``nn.Module.__call__`` uses it; nested scopes stack."""

    def __init__(self, module: Any) -> None:
        self.module = module
        self.prev: tuple = ()

    def __enter__(self) -> module_scope:
        self.prev = STATE.scope
        STATE.scope = self.prev + (self.module,)
        return self

    def __exit__(self, *exc: object) -> None:
        STATE.scope = self.prev


class keep_inputs(set_grad_enabled):
    """Context manager: nodes recorded inside keep references to their input Tensors
    (``node.input_tensors``), for tools that re-run each op on its own inputs."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.prev_keep: list[bool] = []

    def __enter__(self) -> keep_inputs:
        self.prev_keep.append(STATE.keep_inputs)
        STATE.keep_inputs = self.enabled
        return self

    def __exit__(self, *exc: object) -> None:
        STATE.keep_inputs = self.prev_keep.pop()

    def __call__(self, fn: F) -> F:
        enabled = self.enabled

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with keep_inputs(enabled):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]
