"""Normalization layers: BatchNorm1d/2d, LayerNorm and LocalResponseNorm (calling nn.functional)."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from . import functional as F
from .layers import factory_dtype
from .module import Module, Parameter


class _BatchNorm(Module):
    """Batch normalization of (N, C, H, W) inputs per channel (Ioffe & Szegedy 2015), PyTorch's
    behaviour: training normalizes with batch statistics and updates ``running_mean`` /
    ``running_var`` (momentum 0.1; ``momentum=None`` is a cumulative average); eval uses them.

    Parameters ``weight`` (ones) and ``bias`` (zeros; none with ``bias=False``) of shape (C,) when ``affine``; buffers
    ``running_mean``, ``running_var``, ``num_batches_tracked`` (in ``state_dict()``).

    Example::

        bn = BatchNorm2d(16)
        y = bn(x)              # x (N, 16, H, W) -> same shape
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        dtype = factory_dtype(type(self).__name__, device, dtype)
        if num_features < 1:
            raise ValueError(f"{type(self).__name__}: num_features must be positive, got {num_features}.")
        if momentum is not None and not 0.0 <= momentum <= 1.0:
            raise ValueError(f"{type(self).__name__}: momentum must be in [0, 1] or None, got {momentum}.")
        self.num_features, self.eps, self.momentum = int(num_features), float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(num_features, dtype=dtype))
            else:  # PyTorch's bias=False: a learned scale only
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", Tensor(np.zeros(num_features, dtype=dtype)))
            self.register_buffer("running_var", Tensor(np.ones(num_features, dtype=dtype)))
            self.register_buffer("num_batches_tracked", Tensor(np.array(0, dtype=np.int64)))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    _dims: tuple[int, ...] = (4,)
    _layout = "(N, C, H, W)"

    def forward(self, x: Any) -> Tensor:
        if x.ndim not in self._dims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{type(self).__name__}: expected input {self._layout} with C = {self.num_features}, got shape {tuple(x.shape)}."
            )
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / int(self.num_batches_tracked.item())
        # Without running statistics, eval mode also normalizes with the batch's (PyTorch does too).
        use_batch = self.training or not self.track_running_stats
        return F.batch_norm(
            x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=use_batch,
            momentum=factor,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm2d(_BatchNorm):
    __doc__ = _BatchNorm.__doc__


class BatchNorm1d(_BatchNorm):
    """Batch normalization of (N, C) or (N, C, L) inputs per feature/channel; otherwise exactly
    :class:`BatchNorm2d`. Example: ``BatchNorm1d(100)(x)`` for x (N, 100)."""

    _dims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class LocalResponseNorm(Module):
    """Local response normalization across channels (Krizhevsky et al. 2012), PyTorch's formula
    ``y_c = x_c / (k + alpha / size * sum of x_{c'}^2 over size neighbouring channels) ** beta``.

    AlexNet's setting is ``LocalResponseNorm(size=5, alpha=1e-4, beta=0.75, k=2.0)``. Note that
    alpha is divided by ``size`` (as in PyTorch and Caffe); the paper's formula does not divide.
    """

    def __init__(self, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"LocalResponseNorm: size must be positive, got {size}.")
        self.size, self.alpha, self.beta, self.k = int(size), float(alpha), float(beta), float(k)

    def forward(self, x: Any) -> Tensor:
        return F.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def extra_repr(self) -> str:
        return f"{self.size}, alpha={self.alpha}, beta={self.beta}, k={self.k}"


class LayerNorm(Module):
    """Layer normalization over the last dimensions, ``normalized_shape`` (an int or a tuple), as
    in PyTorch: each sample's values over those dimensions get mean 0 and variance 1, then
    ``weight`` (ones) and ``bias`` (zeros) of shape ``normalized_shape`` when ``elementwise_affine``.

    Example::

        ln = LayerNorm(64)
        y = ln(x)              # x (N, L, 64) -> same shape
    """

    def __init__(
        self,
        normalized_shape: Any,
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dtype = factory_dtype("LayerNorm", device, dtype)
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) else tuple(normalized_shape)
        self.normalized_shape = tuple(int(s) for s in shape)
        if not self.normalized_shape or min(self.normalized_shape) < 1:
            raise ValueError(f"LayerNorm: normalized_shape must be positive sizes, got {normalized_shape!r}.")
        self.eps, self.elementwise_affine = float(eps), bool(elementwise_affine)
        if elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype=dtype))
            if bias:
                self.bias = Parameter(np.zeros(self.normalized_shape, dtype=dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
