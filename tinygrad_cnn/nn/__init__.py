"""Neural-network building blocks: ``Module`` and layers, ``init``, and the functional API
(``nn.functional``), named as in PyTorch's ``torch.nn``."""
from . import functional, init, utils  # noqa: F401
from .conv import Conv2d, ConvTranspose2d
from .layers import (
    ELU,
    GELU,
    Dropout,
    Dropout2d,
    Flatten,
    Hardtanh,
    Identity,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, L1Loss, MSELoss, NLLLoss, SmoothL1Loss
from .module import Module, ModuleDict, ModuleList, Parameter, Sequential
from .normalization import BatchNorm1d, BatchNorm2d, LayerNorm, LocalResponseNorm
from .pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d, Upsample

__all__ = [
    "AdaptiveAvgPool2d",
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "ConvTranspose2d",
    "CrossEntropyLoss",
    "Dropout",
    "Flatten",
    "Identity",
    "Linear",
    "LocalResponseNorm",
    "MSELoss",
    "MaxPool2d",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
    "utils",
    "BCELoss",
    "BCEWithLogitsLoss",
    "Dropout2d",
    "ELU",
    "GELU",
    "Hardtanh",
    "L1Loss",
    "LayerNorm",
    "LeakyReLU",
    "LogSoftmax",
    "NLLLoss",
    "SiLU",
    "SmoothL1Loss",
    "Upsample",
]
