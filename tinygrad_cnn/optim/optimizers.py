"""The object optimizers. Each names its rule in :mod:`tinygrad_cnn.optim.rules`, which holds the
formula and declares the hyperparameters and defaults: ``Adam(params, lr=1e-3, betas=...)`` takes
exactly the keyword arguments of :func:`tinygrad_cnn.optim.rules.adam` (see
:class:`~tinygrad_cnn.optim.Optimizer`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .optimizer import Optimizer


class SGD(Optimizer, rule="sgd"):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay
    (rule: :func:`tinygrad_cnn.optim.rules.sgd`, whose hyperparameters are the constructor's; ``lr`` has no default).

    Example::

        opt = SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    """

    if TYPE_CHECKING:  # the constructor is built from the rule's signature (Optimizer.__init_subclass__)

        def __init__(self, params: Iterable[Any], *args: Any, **hyperparameters: Any) -> None: ...


class AdaGrad(Optimizer, rule="adagrad"):
    """AdaGrad (Duchi et al. 2011) (rule: :func:`tinygrad_cnn.optim.rules.adagrad`).

    Example: ``opt = AdaGrad(model.parameters(), lr=0.01)``.
    """

    if TYPE_CHECKING:  # the constructor is built from the rule's signature (Optimizer.__init_subclass__)

        def __init__(self, params: Iterable[Any], *args: Any, **hyperparameters: Any) -> None: ...


Adagrad = AdaGrad  # PyTorch's spelling


class RMSprop(Optimizer, rule="rmsprop"):
    """RMSprop (Tieleman & Hinton 2012), optionally centered and with momentum
    (rule: :func:`tinygrad_cnn.optim.rules.rmsprop`).

    Example: ``opt = RMSprop(model.parameters(), lr=1e-3, alpha=0.9)``.
    """

    if TYPE_CHECKING:  # the constructor is built from the rule's signature (Optimizer.__init_subclass__)

        def __init__(self, params: Iterable[Any], *args: Any, **hyperparameters: Any) -> None: ...


class Adam(Optimizer, rule="adam"):
    """Adam (Kingma & Ba 2015), optionally AMSGrad; ``weight_decay`` is L2 on the gradient
    (rule: :func:`tinygrad_cnn.optim.rules.adam`).

    Example: ``opt = Adam(model.parameters(), lr=1e-3)``.
    """

    if TYPE_CHECKING:  # the constructor is built from the rule's signature (Optimizer.__init_subclass__)

        def __init__(self, params: Iterable[Any], *args: Any, **hyperparameters: Any) -> None: ...


class AdamW(Optimizer, rule="adamw"):
    """AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay
    (rule: :func:`tinygrad_cnn.optim.rules.adamw`).

    Example: ``opt = AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)``.
    """

    if TYPE_CHECKING:  # the constructor is built from the rule's signature (Optimizer.__init_subclass__)

        def __init__(self, params: Iterable[Any], *args: Any, **hyperparameters: Any) -> None: ...
