"""Basic layers: Linear, activations, Flatten, Dropout, Identity. Each calls the functional
op (:mod:`tinygrad_cnn.nn.functional`); none re-implements it."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor, get_rng
from . import functional as F
from . import init
from .module import Module, Parameter


def add_weight_and_bias(module: Module, weight_shape: tuple[int, ...], bias_size: int | None, dtype: Any, seed: Any) -> None:
    """Give ``module`` a ``weight`` of ``weight_shape`` and a ``bias`` of ``bias_size`` (None: a
    ``None`` bias), initialised as PyTorch does for Linear and Conv layers: U(+-1/sqrt(fan_in))
    for both (kaiming_uniform with a=sqrt(5)), the weight drawn first."""
    rng = get_rng(seed)
    bound = 1.0 / math.sqrt(init.fan_in_and_fan_out(weight_shape)[0])
    module.weight = Parameter(np.empty(weight_shape, dtype=dtype))
    init.uniform_(module.weight, -bound, bound, seed=rng)
    if bias_size is not None:
        module.bias = Parameter(np.empty(bias_size, dtype=dtype))
        init.uniform_(module.bias, -bound, bound, seed=rng)
    else:
        module.register_parameter("bias", None)


class Linear(Module):
    """``y = x @ weight.T + bias``: (N, *, in_features) -> (N, *, out_features).

    ``weight`` is (out_features, in_features) as in PyTorch, initialised like PyTorch:
    U(-1/sqrt(in_features), 1/sqrt(in_features)) for weight and bias. ``seed`` makes it reproducible.

    Example::

        fc = Linear(4320, 100, seed=0)
        y = fc(x)              # x (N, 4320) -> y (N, 100)
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = np.float32, seed: Any = None) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear: in_features and out_features must be positive, got {in_features}, {out_features}.")
        self.in_features, self.out_features = int(in_features), int(out_features)
        add_weight_and_bias(self, (self.out_features, self.in_features), self.out_features if bias else None, dtype, seed)

    def forward(self, x: Any) -> Tensor:
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """max(x, 0) elementwise. Shape unchanged. ``inplace=True`` is refused (results are new tensors)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        F.validation.check_not_inplace("ReLU", inplace)

    def forward(self, x: Any) -> Tensor:
        return F.relu(x)


class Sigmoid(Module):
    """1 / (1 + exp(-x)) elementwise. Shape unchanged."""

    def forward(self, x: Any) -> Tensor:
        return F.sigmoid(x)


class Tanh(Module):
    """tanh(x) elementwise. Shape unchanged."""

    def forward(self, x: Any) -> Tensor:
        return F.tanh(x)


class Softmax(Module):
    """Softmax along ``dim``. Shape unchanged. Without ``dim``, the last dim of a 1-D or 2-D
    input (PyTorch's implicit choice there); a higher-dimensional input needs ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Any) -> Tensor:
        return F.softmax(x, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Identity(Module):
    """Returns its input (a placeholder, e.g. to remove a layer from a model)."""

    def forward(self, x: Any) -> Any:
        return x


class Flatten(Module):
    """Merge dims ``start_dim..end_dim``: (N, C, H, W) -> (N, C*H*W) with the default start_dim=1."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Any) -> Tensor:
        return F.flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Dropout(Module):
    """Inverted dropout with probability ``p`` in training mode, identity in eval mode.

    ``seed`` (int or Generator) gives the layer its own reproducible mask stream; without it the
    global generator is used (``tinygrad_cnn.manual_seed``).
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, seed: Any = None) -> None:
        super().__init__()
        F.validation.check_not_inplace("Dropout", inplace)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}.")
        self.p = float(p)
        self._rng = None if seed is None else get_rng(seed)

    def forward(self, x: Any) -> Tensor:
        return F.dropout(x, self.p, self.training, seed=self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class LogSoftmax(Module):
    """log(softmax(x)) along ``dim``. Shape unchanged. Without ``dim``, the last dim of a 1-D or
    2-D input; a higher-dimensional input needs ``dim``."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Any) -> Tensor:
        return F.log_softmax(x, dim=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GELU(Module):
    """Gaussian error linear unit, ``approximate`` 'none' (erf) or 'tanh'. Shape unchanged."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        F.validation.check_option("GELU", "approximate", approximate, ("none", "tanh"))
        self.approximate = approximate

    def forward(self, x: Any) -> Tensor:
        return F.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x) elementwise. Shape unchanged."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        F.validation.check_not_inplace("SiLU", inplace)

    def forward(self, x: Any) -> Tensor:
        return F.silu(x)


class LeakyReLU(Module):
    """x where x > 0, else ``negative_slope * x``. Shape unchanged."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        F.validation.check_not_inplace("LeakyReLU", inplace)
        self.negative_slope = negative_slope

    def forward(self, x: Any) -> Tensor:
        return F.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x where x > 0, else ``alpha * (exp(x) - 1)``. Shape unchanged."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        F.validation.check_not_inplace("ELU", inplace)
        self.alpha = alpha

    def forward(self, x: Any) -> Tensor:
        return F.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Hardtanh(Module):
    """Clamp to [min_val, max_val] (default [-1, 1]). Shape unchanged."""

    def __init__(self, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        F.validation.check_not_inplace("Hardtanh", inplace)
        if min_val > max_val:
            raise ValueError(f"Hardtanh: min_val ({min_val}) must not be greater than max_val ({max_val}).")
        self.min_val, self.max_val = min_val, max_val

    def forward(self, x: Any) -> Tensor:
        return F.hardtanh(x, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}"


class Dropout2d(Module):
    """Channel-wise dropout of (N, C, H, W) inputs with probability ``p`` in training mode,
    identity in eval mode; ``seed`` as in :class:`Dropout`.

    Example::

        drop = Dropout2d(0.2)
        y = drop(x)            # x (N, C, H, W): whole channels zeroed, the rest scaled by 1/0.8
    """

    def __init__(self, p: float = 0.5, inplace: bool = False, seed: Any = None) -> None:
        super().__init__()
        F.validation.check_not_inplace("Dropout2d", inplace)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout2d: dropout probability p must be in [0, 1], got {p}.")
        self.p = float(p)
        self._rng = None if seed is None else get_rng(seed)

    def forward(self, x: Any) -> Tensor:
        return F.dropout2d(x, self.p, self.training, seed=self._rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"
