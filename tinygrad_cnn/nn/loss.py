"""Loss layers, PyTorch's constructors: each calls its function in nn.functional."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from . import functional as F
from .module import Module


def legacy_reduction(op: str, size_average: Any, reduce: Any, reduction: str) -> str:
    """PyTorch's reading of the deprecated ``size_average``/``reduce`` pair: when either is given
    it overrides ``reduction`` (``reduce=False`` -> 'none', else ``size_average=False`` -> 'sum',
    else 'mean'), with PyTorch's warning."""
    if size_average is None and reduce is None:
        return reduction
    import warnings

    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    out = "none" if not reduce else ("mean" if size_average else "sum")
    msg = f"{op}: size_average and reduce are deprecated (as in PyTorch); use reduction={out!r} instead."
    warnings.warn(msg, UserWarning, stacklevel=3)
    return out


class _Loss(Module):
    """Holds ``reduction`` (checked here, so a typo fails at construction) for the subclasses."""

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__()
        name = type(self).__name__
        reduction = legacy_reduction(name, size_average, reduce, reduction)
        self.reduction = F.validation.check_option(name, "reduction", reduction, ("mean", "sum", "none"))

    def _weight_buffer(self, name: str, weight: Any) -> None:
        # A buffer (in state_dict) but no parameter, as in PyTorch.
        if weight is None:
            self.register_buffer(name, None)
            return
        w = np.array(weight.data if isinstance(weight, Tensor) else weight)
        if w.dtype.kind not in "fiu":
            raise TypeError(f"{type(self).__name__}: {name} must be a numeric array or Tensor (one weight per class), got {weight!r}.")
        self.register_buffer(name, Tensor(w if w.dtype.kind == "f" else w.astype(np.float32)))

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (N, C) or (N, C, d1, ...) against integer class indices
    (N,) / (N, d1, ...) or class probabilities of the logits' shape; see
    :func:`tinygrad_cnn.nn.functional.cross_entropy` for ``weight``, ``ignore_index`` and
    ``label_smoothing``. The chapter's SoftmaxWithLoss.

    Example::

        loss = CrossEntropyLoss()(model(x), labels)
    """

    def __init__(
        self,
        weight: Any = None,
        size_average: Any = None,
        ignore_index: int = -100,
        reduce: Any = None,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be in [0, 1], got {label_smoothing}.")
        self._weight_buffer("weight", weight)
        self.ignore_index, self.label_smoothing = int(ignore_index), float(label_smoothing)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        return F.cross_entropy(input, target, self.weight, self.ignore_index, self.reduction, self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities (N, C) at class indices (N,); see
    :func:`tinygrad_cnn.nn.functional.nll_loss`. Example: ``NLLLoss()(log_softmax(z, 1), labels)``."""

    def __init__(
        self, weight: Any = None, size_average: Any = None, ignore_index: int = -100, reduce: Any = None, reduction: str = "mean"
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self._weight_buffer("weight", weight)
        self.ignore_index = int(ignore_index)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        return F.nll_loss(input, target, self.weight, self.ignore_index, self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities in [0, 1] against same-shaped targets; ``weight``
    rescales each element (broadcast). Example: ``BCELoss()(sigmoid(z), y)``."""

    def __init__(self, weight: Any = None, size_average: Any = None, reduce: Any = None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self._weight_buffer("weight", weight)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        return F.binary_cross_entropy(input, target, self.weight, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits (sigmoid inside, stable) against same-shaped targets;
    ``pos_weight`` (one per class, last dimension) weighs the positive term. Example:
    ``BCEWithLogitsLoss(pos_weight=np.array([3.0]))(z, y)``."""

    def __init__(
        self, weight: Any = None, size_average: Any = None, reduce: Any = None, reduction: str = "mean", pos_weight: Any = None
    ) -> None:
        super().__init__(size_average, reduce, reduction)
        self._weight_buffer("weight", weight)
        self._weight_buffer("pos_weight", pos_weight)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        return F.binary_cross_entropy_with_logits(input, target, self.weight, self.reduction, self.pos_weight)


class MSELoss(_Loss):
    """Squared error between same-shaped tensors; ``reduction`` 'mean' | 'sum' | 'none'."""

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Absolute error between same-shaped tensors; ``reduction`` 'mean' | 'sum' | 'none'."""

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    """Squared error below ``beta``, absolute error above (Huber-like); see
    :func:`tinygrad_cnn.nn.functional.smooth_l1_loss`."""

    def __init__(self, size_average: Any = None, reduce: Any = None, reduction: str = "mean", beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        if beta < 0:
            raise ValueError(f"SmoothL1Loss: beta must be non-negative, got {beta}.")
        self.beta = float(beta)

    def forward(self, input: Any, target: Any) -> Tensor:  # noqa: A002
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}, beta={self.beta}"
