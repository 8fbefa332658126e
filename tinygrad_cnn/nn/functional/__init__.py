"""The functional API: every op as a function of Tensors, with PyTorch's names, signatures and
defaults (``torch.nn.functional``); numpy's ``axis``/``keepdims`` are accepted as aliases of
``dim``/``keepdim``.

The modules here hold what users call: argument checks, defaults and compositions over the
primitives of :mod:`tinygrad_cnn.ops`, which each do one thing.

- :mod:`.conv` conv2d, conv_transpose2d; :mod:`.pooling` max/avg/adaptive pools;
  :mod:`.sampling` interpolate; :mod:`.padding` pad; :mod:`.windows` im2col, col2im
- :mod:`.activation` relu, gelu, silu, leaky_relu, elu, hardtanh, softmax, log_softmax, logsumexp
- :mod:`.loss` cross_entropy, nll_loss, binary cross-entropies, mse/l1/smooth_l1, one_hot
- :mod:`.normalization` batch_norm, layer_norm, local_response_norm;
  :mod:`.regularization` dropout, dropout2d; :mod:`.affine` linear

The elementwise, reduction, shape and matmul functions behind the Tensor methods come from
:mod:`tinygrad_cnn.ops.functions` and are re-exported here unchanged.
"""
from ...ops.functions import (  # noqa: F401  (re-exported)
    abs,
    add,
    broadcast_to,
    cat,
    clip,
    concatenate,
    div,
    exp,
    expand,
    flatten,
    getitem,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    permute,
    pow,
    reshape,
    sigmoid,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from .activation import elu, gelu, hardtanh, leaky_relu, log_softmax, logsumexp, relu, silu, softmax
from .affine import linear
from .conv import conv2d, conv_transpose2d
from .loss import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    l1_loss,
    mse_loss,
    nll_loss,
    one_hot,
    smooth_l1_loss,
)
from .normalization import batch_norm, layer_norm, local_response_norm
from .padding import pad
from .pooling import adaptive_avg_pool2d, avg_pool2d, max_pool2d
from .regularization import dropout, dropout2d
from .sampling import interpolate
from .windows import col2im, im2col

__all__ = [
    "abs", "adaptive_avg_pool2d", "add", "avg_pool2d", "batch_norm", "binary_cross_entropy",
    "binary_cross_entropy_with_logits", "broadcast_to", "cat", "clip", "col2im", "concatenate", "conv2d",
    "conv_transpose2d", "cross_entropy", "div", "dropout", "dropout2d", "elu", "exp", "expand",
    "flatten", "gelu", "getitem", "hardtanh", "im2col", "interpolate", "l1_loss", "layer_norm", "leaky_relu",
    "linear", "local_response_norm", "log", "log_softmax", "logsumexp", "matmul", "max", "max_pool2d",
    "maximum", "mean", "min", "minimum", "mse_loss", "mul", "neg", "nll_loss", "one_hot", "pad",
    "permute", "pow", "relu", "reshape", "sigmoid", "silu", "smooth_l1_loss", "softmax", "sqrt",
    "squeeze", "stack", "sub", "sum", "tanh", "transpose", "unsqueeze", "var", "where",
]  # fmt: skip
