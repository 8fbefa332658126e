"""The networks and the training step that ``train_step.py`` (against PyTorch) and
``ab_revision.py`` (against an earlier revision of ours) time, built from a given copy of the
package (``tg``: tinygrad_cnn, or an old revision imported under another name).

Example::

    import tinygrad_cnn as tg
    model = build(tg, "LeNet")
    step = training_step(tg, model, x, y)   # x (100, 1, 32, 32) float32, y (100,) int64
    step()                                  # forward, cross-entropy, backward, Adam update
"""
from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

# name -> input height and width
INPUTS = {"SimpleConvNet": 28, "LeNet": 32}


def _sub(tg: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{tg.__name__}.{name}")


def build(tg: ModuleType, name: str) -> Any:
    """SimpleConvNet, or LeNet-5 with ReLU and max pooling (as trained in the docs), seed 0."""
    models = _sub(tg, "models")
    if name == "SimpleConvNet":
        return models.SimpleConvNet(seed=0)
    return models.LeNet(input_size=INPUTS["LeNet"], activation="relu", pooling="max", seed=0)


def training_step(tg: ModuleType, model: Any, x: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """One Adam step (lr 1e-3) of ``model`` on the batch (x, y), as a callable."""
    opt, xt, F = _sub(tg, "optim").Adam(model.parameters(), lr=0.001), tg.Tensor(x), _sub(tg, "nn.functional")

    def step() -> None:
        loss = F.cross_entropy(model(xt), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step
