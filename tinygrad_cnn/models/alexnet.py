"""AlexNet (Krizhevsky, Sutskever & Hinton 2012, "ImageNet classification with deep convolutional
neural networks")."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from ..nn import init as nn_init
from ..nn.conv import Conv2d
from ..nn.layers import Dropout, Flatten, Linear, ReLU
from ..nn.module import Module, Sequential
from ..nn.normalization import LocalResponseNorm
from ..nn.pooling import MaxPool2d
from ..tensor import Tensor, get_rng


def _lrn() -> LocalResponseNorm:
    # The paper's k=2, n=5, alpha=1e-4, beta=0.75, in PyTorch's/Caffe's form (alpha divided by n).
    return LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)


class AlexNet(Module):
    """AlexNet on 227x227 inputs (the paper's "224" does not fit its own strides):

    ``features``: conv1 96@11x11/4 - ReLU - LRN - maxpool 3/2; conv2 256@5x5 pad 2 - ReLU - LRN -
    maxpool 3/2; conv3 384@3x3 pad 1 - ReLU; conv4 384@3x3 pad 1 - ReLU; conv5 256@3x3 pad 1 -
    ReLU - maxpool 3/2 -> (256, 6, 6). ``classifier``: dropout - fc6 9216->4096 - ReLU - dropout -
    fc7 4096->4096 - ReLU - fc8 4096->num_classes.

    ``groups=2`` reproduces the paper's two-GPU split: conv2, conv4 and conv5 see only the half of
    the previous layer's maps on their own GPU (conv3 and the FC layers are connected across).
    Parameters: 62,378,344 with groups=1, 60,965,224 with groups=2 (1000 classes, 3 channels).
    ``init="paper"`` (default) initialises as in the paper: weights N(0, 0.01^2), biases 1 in conv2,
    conv4, conv5, fc6 and fc7, 0 elsewhere. ``init="kaiming"``: weights N(0, 2/fan_in) (He et al.
    2015, for ReLU), biases 0; with it the network learns from the first epoch on Fashion-MNIST,
    where the paper's initialisation had not started to learn after two (docs/models.md).
    LRN uses k=2, n=5, alpha=1e-4, beta=0.75 in PyTorch's form (alpha / n).

    Example::

        net = AlexNet(num_classes=10, groups=2, seed=0)
        logits = net(x)                    # x (N, 3, 227, 227) -> (N, 10)
    """

    def __init__(
        self,
        num_classes: int = 1000,
        in_channels: int = 3,
        groups: int = 1,
        dropout: float = 0.5,
        dtype: Any = np.float32,
        seed: Any = None,
        init: str = "paper",
    ) -> None:
        super().__init__()
        if groups not in (1, 2):
            raise ValueError(f"AlexNet: groups must be 1 or 2 (the paper's two-GPU split), got {groups!r}.")
        if init not in ("paper", "kaiming"):
            raise ValueError(f"AlexNet: init must be 'paper' (N(0, 0.01^2), some biases 1) or 'kaiming' (He normal), got {init!r}.")
        self.in_channels, self.groups = int(in_channels), int(groups)
        rng = get_rng(seed)

        def conv(cin: int, cout: int, k: int, **kw: Any) -> Conv2d:
            return Conv2d(cin, cout, k, dtype=dtype, seed=rng, **kw)

        self.features = Sequential(
            OrderedDict(
                conv1=conv(in_channels, 96, 11, stride=4),
                relu1=ReLU(),
                norm1=_lrn(),
                pool1=MaxPool2d(3, stride=2),
                conv2=conv(96, 256, 5, padding=2, groups=groups),
                relu2=ReLU(),
                norm2=_lrn(),
                pool2=MaxPool2d(3, stride=2),
                conv3=conv(256, 384, 3, padding=1),
                relu3=ReLU(),
                conv4=conv(384, 384, 3, padding=1, groups=groups),
                relu4=ReLU(),
                conv5=conv(384, 256, 3, padding=1, groups=groups),
                relu5=ReLU(),
                pool5=MaxPool2d(3, stride=2),
            )
        )
        self.flatten = Flatten()
        seeds = rng.integers(0, 2**63, size=2) if seed is not None else (None, None)
        self.classifier = Sequential(
            OrderedDict(
                drop6=Dropout(dropout, seed=seeds[0]),
                fc6=Linear(256 * 6 * 6, 4096, dtype=dtype, seed=rng),
                relu6=ReLU(),
                drop7=Dropout(dropout, seed=seeds[1]),
                fc7=Linear(4096, 4096, dtype=dtype, seed=rng),
                relu7=ReLU(),
                fc8=Linear(4096, num_classes, dtype=dtype, seed=rng),
            )
        )
        ones = {"conv2", "conv4", "conv5", "fc6", "fc7"} if init == "paper" else set()
        for name, m in self.named_modules():
            if isinstance(m, (Conv2d, Linear)):
                if init == "paper":
                    nn_init.normal_(m.weight, std=0.01, seed=rng)
                else:
                    nn_init.kaiming_normal_(m.weight, nonlinearity="relu", seed=rng)
                nn_init.constant_(m.bias, 1.0 if name.split(".")[-1] in ones else 0.0)

    def forward(self, x: Any) -> Tensor:
        """Logits (N, num_classes) for x (N, in_channels, 227, 227)."""
        want = (self.in_channels, 227, 227)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"AlexNet: expected input (N, {self.in_channels}, 227, 227), got shape {tuple(x.shape)}; resize images "
                "to 227x227 (e.g. tinygrad_cnn.data's Resize transform)."
            )
        return self.classifier(self.flatten(self.features(x)))
