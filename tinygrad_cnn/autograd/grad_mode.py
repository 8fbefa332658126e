"""Gradient recording switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled``.

Each works as a context manager and as a function decorator, as in PyTorch.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _GradState:
    # One process-wide flag, read on every op: a plain attribute is the cheapest lookup.
    enabled: bool = True
    anomaly: bool = False
    in_backward: bool = False  # anomaly checks attribute ops run inside a backward to that node


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

    def __enter__(self) -> "set_grad_enabled":
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
