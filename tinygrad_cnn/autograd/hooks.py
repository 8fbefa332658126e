"""``RemovableHandle``: what ``register_hook`` (tensors) and the module hook registrations return."""
from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count()


class RemovableHandle:
    """Unregisters one hook: ``handle.remove()``, or leave a ``with handle:`` block.

    Example::

        h = x.register_hook(lambda g: g * 2)
        ...
        h.remove()
    """

    def __init__(self, hooks: dict) -> None:
        self.hooks_dict = hooks
        self.id = next(_ids)

    def add(self, hook: Any) -> RemovableHandle:
        """Register ``hook`` under this handle's id; returns the handle."""
        self.hooks_dict[self.id] = hook
        return self

    def remove(self) -> None:
        """Unregister the hook (a no-op when it is already gone)."""
        self.hooks_dict.pop(self.id, None)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def run_hooks(hooks: dict, grad: Any) -> Any:
    """Pass ``grad`` through each hook in registration order; a hook returning a value replaces it."""
    for hook in list(hooks.values()):
        res = hook(grad)
        if res is not None:
            grad = res
    return grad
