"""The autograd engine: ``Function`` (custom ops), ``Node`` (the recorded graph), backward, grad
mode, anomaly detection, and :func:`~tinygrad_cnn.autograd.graph.walk` for tools that read graphs.

Gradient checking is a tool built on top of the engine, in :mod:`tinygrad_cnn.check`; nothing
here imports it. The checker's names are still reachable as attributes of this package
(``tinygrad_cnn.autograd.gradcheck``), looked up in :mod:`tinygrad_cnn.check` on first use.
"""
from typing import Any

from .anomaly import detect_anomaly
from .engine import grad, run_backward
from .function import Function, Node, OutputMeta, SavedValue, once_differentiable
from .grad_mode import FunctionScope, enable_grad, function_scope, is_grad_enabled, keep_inputs, module_scope, no_grad, set_grad_enabled
from .graph import walk

__all__ = [
    "Function",
    "FunctionScope",
    "Node",
    "OutputMeta",
    "SavedValue",
    "detect_anomaly",
    "enable_grad",
    "function_scope",
    "grad",
    "is_grad_enabled",
    "keep_inputs",
    "module_scope",
    "no_grad",
    "once_differentiable",
    "run_backward",
    "set_grad_enabled",
    "walk",
]

# The checker's names (tinygrad_cnn.check), also here as PyTorch has torch.autograd.gradcheck.
_CHECKER_NAMES = frozenset(
    {"GradcheckError", "GradcheckResult", "GradcheckWarning", "GraphCheckResult", "check_graph", "gradcheck", "gradgradcheck"}
)


def __getattr__(name: str) -> Any:
    # Resolved when first asked for, so importing the engine never imports the checker.
    if name in _CHECKER_NAMES:
        from .. import check

        return getattr(check, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
