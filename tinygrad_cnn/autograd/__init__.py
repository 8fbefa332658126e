"""The autograd engine: ``Function`` (custom ops), ``Node`` (the recorded graph), backward, grad
mode, anomaly detection, and :func:`~tinygrad_cnn.autograd.graph.walk` for tools that read graphs.

Gradient checking is a tool built on top of the engine, in :mod:`tinygrad_cnn.check`; nothing
here imports it. Its functions are also attributes of this package
(``tinygrad_cnn.autograd.gradcheck``, as ``torch.autograd.gradcheck``), bound by the package
root, which imports both.
"""
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
