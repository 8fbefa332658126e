"""The autograd engine: ``Function`` (custom ops), backward, grad mode, anomaly detection,
and gradient checking."""
from .anomaly import detect_anomaly
from .engine import grad, run_backward
from .function import Function, Node, once_differentiable
from .grad_mode import enable_grad, is_grad_enabled, keep_inputs, module_scope, no_grad, set_grad_enabled
from .gradcheck import GradcheckError, GradcheckResult, GradcheckWarning, gradcheck, gradgradcheck
from .graph_check import GraphCheckResult, check_graph

__all__ = [
    "Function",
    "GradcheckError",
    "GradcheckResult",
    "GradcheckWarning",
    "GraphCheckResult",
    "Node",
    "check_graph",
    "detect_anomaly",
    "enable_grad",
    "grad",
    "gradcheck",
    "gradgradcheck",
    "is_grad_enabled",
    "keep_inputs",
    "module_scope",
    "no_grad",
    "once_differentiable",
    "run_backward",
    "set_grad_enabled",
]
