"""The object optimizers; their formulas live in :mod:`tinygrad_cnn.optim.rules`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay
    (rule: :func:`tinygrad_cnn.optim.rules.sgd`).

    Example::

        opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    rule_name = "sgd"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float | None = None,
        momentum: float = 0.0,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": lr,
                "momentum": momentum,
                "dampening": dampening,
                "nesterov": nesterov,
                "weight_decay": weight_decay,
                "maximize": maximize,
            },
        )


class AdaGrad(Optimizer):
    """AdaGrad (Duchi et al. 2011) (rule: :func:`tinygrad_cnn.optim.rules.adagrad`).

    Example: ``opt = AdaGrad(model.parameters(), lr=0.01)``.
    """

    rule_name = "adagrad"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": lr,
                "lr_decay": lr_decay,
                "weight_decay": weight_decay,
                "initial_accumulator_value": initial_accumulator_value,
                "eps": eps,
                "maximize": maximize,
            },
        )


Adagrad = AdaGrad  # PyTorch's spelling


class RMSprop(Optimizer):
    """RMSprop (Tieleman & Hinton 2012), optionally centered and with momentum
    (rule: :func:`tinygrad_cnn.optim.rules.rmsprop`).

    Example: ``opt = RMSprop(model.parameters(), lr=1e-3, alpha=0.9)``.
    """

    rule_name = "rmsprop"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params,
            {
                "lr": lr,
                "alpha": alpha,
                "eps": eps,
                "weight_decay": weight_decay,
                "momentum": momentum,
                "centered": centered,
                "maximize": maximize,
            },
        )


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), optionally AMSGrad; ``weight_decay`` is L2 on the gradient
    (rule: :func:`tinygrad_cnn.optim.rules.adam`).

    Example: ``opt = Adam(model.parameters(), lr=1e-3)``.
    """

    rule_name = "adam"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad, "maximize": maximize}
        )


class AdamW(Optimizer):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay
    (rule: :func:`tinygrad_cnn.optim.rules.adamw`).

    Example: ``opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)``.
    """

    rule_name = "adamw"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
    ) -> None:
        super().__init__(
            params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay, "amsgrad": amsgrad, "maximize": maximize}
        )
