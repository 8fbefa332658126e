"""Gradient recording switches: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, ``inference_mode``.

Each works as a context manager and as a function decorator, as in PyTorch; ``set_grad_enabled``
also works as a plain call. Every mode is per thread: one thread evaluating under ``no_grad``
does not stop another from training, and a new thread starts with grad mode on.
"""
from __future__ import annotations

import contextvars
import copy
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

F = TypeVar("F", bound=Callable[..., Any])


class Modes:
    """One thread's modes, read on every op; the class attributes are a new thread's defaults."""

    enabled: bool = True
    anomaly: bool = False
    in_backward: bool = False  # anomaly checks attribute ops run inside a backward to that node
    # Modules whose forward is running and composite functions being called (FunctionScope),
    # outermost first; recorded on each node for graph rendering. nn.Module.__call__ pushes
    # itself (module_scope()), functions push a FunctionScope (function_scope()).
    scope: tuple = ()
    # When True, nodes also keep their input Tensors (node.input_tensors) so that tools can re-run
    # every op on its own inputs (whole-graph gradient checks). Off by default: it keeps every
    # intermediate activation alive as long as the graph.
    keep_inputs: bool = False
    ieee: contextvars.Context  # where ops compute (see ieee_context), made per thread


class _PerThread(threading.local):
    # One thread-local lookup gives the thread's Modes, whose attributes are then plain reads.
    def __init__(self) -> None:
        self.modes = Modes()
        self.modes.ieee = ieee_context()


def ieee_context() -> contextvars.Context:
    """A context in which numpy returns IEEE results without warnings (overflow gives inf, log(0)
    -inf, 0/0 NaN), as PyTorch does. Every op's forward runs in its thread's one (see
    :func:`run_ieee`): numpy keeps its error state in a context variable, and entering a ready
    context is cheaper than ``np.errstate``; the caller's own numpy settings stay untouched."""
    ctx = contextvars.copy_context()
    ctx.run(np.seterr, all="ignore")
    return ctx


def run_ieee(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in this thread's IEEE context (directly when already inside it)."""
    try:
        return PER_THREAD.modes.ieee.run(fn, *args, **kwargs)
    except RuntimeError as e:
        if not entered_twice(e):
            raise
        return fn(*args, **kwargs)


def entered_twice(e: RuntimeError) -> bool:
    """Whether ``e`` is Context.run refusing a context this thread is already in (an op's forward
    that applies other ops), rather than an error of the function it runs."""
    return e.__traceback__ is not None and e.__traceback__.tb_next is None and "already entered" in str(e)


PER_THREAD = _PerThread()


def state() -> Modes:
    """The calling thread's modes (hot paths read ``PER_THREAD.modes`` inline)."""
    return PER_THREAD.modes


def is_grad_enabled() -> bool:
    """Return whether ops currently record the graph (in this thread)."""
    return PER_THREAD.modes.enabled


class ModeSwitch:
    """Sets one attribute of the per-thread state inside a ``with`` block or a decorated function
    and restores it on exit. Subclasses name the attribute; the value is given to ``__init__``."""

    attribute = "enabled"

    def __init__(self, value: Any) -> None:
        self.value = value
        self.prev: list = []

    def __enter__(self) -> Any:
        self.prev.append(getattr(state(), self.attribute))
        setattr(state(), self.attribute, self.value)
        return self

    def __exit__(self, *exc: object) -> None:
        setattr(state(), self.attribute, self.prev.pop())

    def __call__(self, fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._fresh():  # a switch per call: calls may nest or run in several threads
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def _fresh(self) -> ModeSwitch:
        switch = copy.copy(self)
        switch.prev = []
        return switch


class set_grad_enabled(ModeSwitch):
    """Turn graph recording on or off: as a plain call, inside a ``with`` block, or on a
    decorated function, as ``torch.set_grad_enabled``.

    Example::

        with set_grad_enabled(False):
            y = x * 2          # y.requires_grad is False
        set_grad_enabled(False)  # off from here on, in this thread
    """

    def __init__(self, mode: bool = True) -> None:
        super().__init__(bool(mode))
        # Takes effect at once (a plain call works); ``with`` then restores the mode from before the call.
        self._before = state().enabled
        state().enabled = self.value

    def __enter__(self) -> set_grad_enabled:
        self.prev.append(self._before)
        state().enabled = self.value
        return self

    def __call__(self, fn: F) -> F:
        state().enabled = self._before  # used as a decorator: only calls of fn change the mode
        return super().__call__(fn)

    def _fresh(self) -> set_grad_enabled:
        return set_grad_enabled(self.value)


class _BareDecorator:
    """For the switches without arguments: ``@no_grad`` without parentheses decorates ``func``
    directly, as in PyTorch; ``no_grad()`` makes the switch as usual."""

    def __new__(cls, func: Any = None) -> Any:
        self = object.__new__(cls)
        if func is None:
            return self
        cls.__init__(self)
        return self(func)  # type: ignore[operator]  # the switch subclasses are callable


class no_grad(_BareDecorator, ModeSwitch):
    """Context manager / decorator that stops graph recording.

    Example::

        with no_grad():
            w -= 0.1 * w.grad     # an update that must not be differentiated
    """

    def __init__(self) -> None:
        super().__init__(False)


class inference_mode(ModeSwitch):
    """Context manager / decorator for inference: stops graph recording, as ``no_grad`` does
    (``torch.inference_mode``'s extra speed-ups do not apply here). ``inference_mode(False)``
    leaves the mode unchanged.

    Example::

        @inference_mode()
        def predict(x):
            return model(x)
    """

    def __init__(self, mode: bool = True) -> None:
        super().__init__(False)
        self.mode = bool(mode)

    def __enter__(self) -> inference_mode:
        self.prev.append(state().enabled)
        if self.mode:
            state().enabled = False
        return self


class enable_grad(_BareDecorator, ModeSwitch):
    """Context manager / decorator that turns graph recording back on inside ``no_grad``."""

    def __init__(self) -> None:
        super().__init__(True)


class module_scope(ModeSwitch):
    """Context manager marking ops recorded inside it as belonging to ``module`` (for graph
    rendering). ``nn.Module.__call__`` uses it; nested scopes stack."""

    attribute = "scope"

    def __init__(self, module: Any) -> None:
        super().__init__(module)

    def __enter__(self) -> module_scope:
        self.prev.append(state().scope)
        state().scope = state().scope + (self.value,)
        return self


class FunctionScope:
    """One call of a composite function, as recorded in ``Node.scope`` beside the modules.

    A new object per call, so two calls of the same function are told apart (as two calls of
    one module are). ``name`` is what the graph renderer draws, e.g. ``'linear'``.
    """

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"FunctionScope({self.name!r})"


class function_scope:
    """Context manager / decorator marking the ops recorded inside it as one call of a composite
    function named ``name``: each node's ``scope`` gets a :class:`FunctionScope` after the modules
    (and functions) already running, and the graph renderer draws the ops in one box named
    ``name`` that ``depth=`` folds into a single node. ``nn.functional``'s compositions
    (``linear``, ``log_softmax``, ``cross_entropy``, ...) use it; scopes nest.

    Example::

        @function_scope("swish")
        def swish(x):
            return x * x.sigmoid()

        y = swish(tg.randn(3, requires_grad=True))
        y.grad_fn.scope                # (FunctionScope('swish'),)
        with function_scope("residual"):
            z = y + 1.0
    """

    __slots__ = ("name", "_prev")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise TypeError(
                f"function_scope: name must be a non-empty str, got {name!r}; "
                "use @function_scope(\"my_fn\") (with the name), not @function_scope."
            )
        self.name = name
        self._prev: list = []

    def __enter__(self) -> function_scope:
        modes = PER_THREAD.modes
        self._prev.append(modes.scope)
        modes.scope = modes.scope + (FunctionScope(self.name),)
        return self

    def __exit__(self, *exc: object) -> None:
        PER_THREAD.modes.scope = self._prev.pop()

    def __call__(self, fn: F) -> F:
        name = self.name

        # The wrapper does the work of __enter__/__exit__ inline: functional ops call it on every use.
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            modes = PER_THREAD.modes
            prev = modes.scope
            modes.scope = prev + (FunctionScope(name),)
            try:
                return fn(*args, **kwargs)
            finally:
                modes.scope = prev

        return wrapper  # type: ignore[return-value]


class keep_inputs(ModeSwitch):
    """Context manager / decorator: nodes recorded inside keep references to their input Tensors
    (``node.input_tensors``), for tools that re-run each op on its own inputs."""

    attribute = "keep_inputs"

    def __init__(self, enabled: bool = True) -> None:
        super().__init__(enabled)
