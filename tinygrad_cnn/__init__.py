"""tinygrad_cnn: a small NumPy autograd framework for convolutional networks."""
from .autograd import Function, detect_anomaly, enable_grad, no_grad, once_differentiable, set_grad_enabled
from .check import GradcheckError, GradcheckResult, GradcheckWarning, GraphCheckResult, check_graph, gradcheck, gradgradcheck
from .kernels.parallel import get_num_threads, set_num_threads
from .nn.functional.windows import col2im, im2col
from .serialization import CheckpointError, load, save
from .tensor import (
    Tensor,
    arange,
    as_tensor,
    eye,
    from_numpy,
    full,
    manual_seed,
    ones,
    ones_like,
    rand,
    randn,
    tensor,
    zeros,
    zeros_like,
)

__version__ = "0.1.0"

__all__ = [
    "CheckpointError",
    "Function",
    "GradcheckError",
    "GradcheckResult",
    "GradcheckWarning",
    "GraphCheckResult",
    "Tensor",
    "arange",
    "as_tensor",
    "check_graph",
    "col2im",
    "detect_anomaly",
    "enable_grad",
    "eye",
    "from_numpy",
    "full",
    "get_num_threads",
    "gradcheck",
    "gradgradcheck",
    "im2col",
    "load",
    "manual_seed",
    "no_grad",
    "once_differentiable",
    "ones",
    "ones_like",
    "rand",
    "randn",
    "save",
    "set_grad_enabled",
    "set_num_threads",
    "tensor",
    "zeros",
    "zeros_like",
]
