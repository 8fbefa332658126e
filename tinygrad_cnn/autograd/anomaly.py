"""``detect_anomaly``: stop at the first op whose forward or backward produces NaN or Inf."""
from __future__ import annotations

import os
import traceback
from typing import Any

import numpy as np

from .grad_mode import ModeSwitch, state

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def user_stack() -> str:
    """The call stack outside tinygrad_cnn: where the user's code created the op."""
    frames = [f for f in traceback.extract_stack() if not os.path.abspath(f.filename).startswith(_PKG)]
    return "".join(traceback.format_list(frames[-3:]))


def _bad(a: np.ndarray) -> str | None:
    if a.dtype.kind not in "fc" or np.isfinite(a).all():
        return None
    return "NaN" if np.isnan(a).any() else "Inf"


def check_forward(ctx: Any, name: str, outputs: list) -> None:
    """Raise FloatingPointError if an op's forward outputs hold NaN/Inf (called by Function.apply)."""
    if state().in_backward:
        return
    for i, t in enumerate(outputs):
        kind = _bad(t.data)
        if kind:
            where = ctx.creation_stack or user_stack()
            raise FloatingPointError(
                f"detect_anomaly: {name} forward produced {kind} in output {i} (shape {t.shape}).\n"
                f"The op was called at:\n{where}"
            )


def check_backward(node: Any, grads: tuple) -> None:
    """Raise FloatingPointError if a node's backward returned NaN/Inf (called by the engine)."""
    for i, g in enumerate(grads):
        if g is None:
            continue
        kind = _bad(g.data if hasattr(g, "data") else np.asarray(g))
        if kind:
            raise FloatingPointError(
                f"detect_anomaly: {node.name} backward produced {kind} in the gradient of input {i}.\n"
                f"The op was created at:\n{node.creation_stack or '(unknown: created outside detect_anomaly)'}"
            )


class detect_anomaly(ModeSwitch):
    """Context manager / decorator: raise at the first op whose forward or backward gives NaN/Inf,
    naming the op and the line of user code that created it. Slow: for debugging only.

    Example::

        with detect_anomaly():
            loss = model(x).sum()
            loss.backward()
    """

    attribute = "anomaly"

    def __init__(self, enabled: bool = True) -> None:
        super().__init__(enabled)
