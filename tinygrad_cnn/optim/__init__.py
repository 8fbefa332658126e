"""Optimizers: object optimizers (``SGD``, ``AdaGrad``, ``RMSprop``, ``Adam``, ``AdamW``) over
parameter groups, built on the pure update rules of :mod:`tinygrad_cnn.optim.rules`."""
from . import lr_scheduler, rules
from .optimizer import Optimizer
from .optimizers import SGD, AdaGrad, Adagrad, Adam, AdamW, RMSprop

__all__ = ["SGD", "AdaGrad", "Adagrad", "Adam", "AdamW", "Optimizer", "RMSprop", "lr_scheduler", "rules"]
