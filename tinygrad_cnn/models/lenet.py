"""LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to document
recognition")."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..nn.conv import Conv2d
from ..nn.layers import Flatten, Linear, ReLU, Sigmoid, Tanh
from ..nn.module import Module
from ..nn.pooling import AvgPool2d, MaxPool2d
from ..tensor import Tensor, get_rng

_ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU}
_POOLS = {"avg": AvgPool2d, "max": MaxPool2d}


class LeNet(Module):
    """LeNet-5: C1 6@5x5 - S2 2x2 subsampling - C3 16@5x5 - S4 - C5 120@5x5 - F6 84 - output.

    C1 pads by 2 for a 28x28 input (MNIST) and not at all for the paper's 32x32, so C5 always sees
    16x5x5 and its output is 120x1x1. ``activation`` ('sigmoid' | 'tanh' | 'relu') follows every
    conv/F6 layer; ``pooling`` ('avg' | 'max') is the subsampling. The default is the classic
    network (sigmoid, as in the reference chapter, and average subsampling); the modern variant is
    ``LeNet(activation='relu', pooling='max')``.

    Differences from the paper, as in most modern reimplementations: C3 connects to all six S2
    maps (the paper used a sparse connection table), subsampling has no trainable coefficient, and
    the output is a linear layer (the paper used Euclidean RBF units). 61,706 parameters with the
    defaults. Weights use the layers' default (PyTorch) initialisation.

    Example::

        net = LeNet(activation='relu', pooling='max', seed=0)
        logits = net(x)                    # x (N, 1, 28, 28) -> (N, 10)
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        input_size: int = 28,
        activation: str = "sigmoid",
        pooling: str = "avg",
        dtype: Any = np.float32,
        seed: Any = None,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"LeNet: activation must be one of {list(_ACTIVATIONS)}, got {activation!r}.")
        if pooling not in _POOLS:
            raise ValueError(f"LeNet: pooling must be one of {list(_POOLS)}, got {pooling!r}.")
        if input_size not in (28, 32):
            raise ValueError(f"LeNet: input_size must be 28 (padded to 32 in C1) or 32 (the paper's), got {input_size!r}.")
        self.input_size, self.in_channels = int(input_size), int(in_channels)
        act, pool = _ACTIVATIONS[activation], _POOLS[pooling]
        rng = get_rng(seed)
        self.c1 = Conv2d(in_channels, 6, 5, padding=2 if input_size == 28 else 0, dtype=dtype, seed=rng)
        self.act1 = act()
        self.s2 = pool(2)
        self.c3 = Conv2d(6, 16, 5, dtype=dtype, seed=rng)
        self.act3 = act()
        self.s4 = pool(2)
        self.c5 = Conv2d(16, 120, 5, dtype=dtype, seed=rng)
        self.act5 = act()
        self.flatten = Flatten()
        self.f6 = Linear(120, 84, dtype=dtype, seed=rng)
        self.act6 = act()
        self.output = Linear(84, num_classes, dtype=dtype, seed=rng)

    def forward(self, x: Any) -> Tensor:
        """Logits (N, num_classes) for x (N, in_channels, input_size, input_size)."""
        want = (self.in_channels, self.input_size, self.input_size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(f"LeNet: expected input (N, {want[0]}, {want[1]}, {want[2]}), got shape {tuple(x.shape)}.")
        x = self.s2(self.act1(self.c1(x)))
        x = self.s4(self.act3(self.c3(x)))
        x = self.flatten(self.act5(self.c5(x)))
        return self.output(self.act6(self.f6(x)))
