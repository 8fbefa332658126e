"""What the command line names: models, optimizers and datasets by name, as ``tinygrad-cnn
train`` / ``eval`` build them, and a checkpoint's model rebuilt from its ``config``.

Example::

    model = build_model("lenet", **model_options("lenet", activation="relu"))
    opt = make_optimizer("momentum", model.parameters())          # SGD, lr 0.01, momentum 0.9
    train_set = load_data("fashion-mnist", "lenet")               # 32x32 inputs in [0, 1]
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from .checkpoint import load_checkpoint
from .loop import evaluate

MODEL_NAMES = ("simpleconvnet", "lenet", "alexnet")
"""The models ``build_model`` (and ``tinygrad-cnn train --model``) knows."""
OPTIMIZER_NAMES = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
"""The optimizers ``make_optimizer`` (and ``--optimizer``) knows."""
DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.001}
"""The learning rate of each optimizer when none is given."""


def make_optimizer(name: str, params: Iterable[Any], lr: float | None = None, momentum: float = 0.9) -> Any:
    """An optimizer by its command-line name: ``sgd``, ``momentum`` (SGD with ``momentum``),
    ``adagrad``, ``rmsprop`` or ``adam``; ``lr=None`` takes :data:`DEFAULT_LR`."""
    from .. import optim

    if name not in OPTIMIZER_NAMES:
        raise ValueError(f"make_optimizer: unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}.")
    lr = DEFAULT_LR[name] if lr is None else lr
    if name == "sgd":
        return optim.SGD(params, lr=lr)
    if name == "momentum":
        return optim.SGD(params, lr=lr, momentum=momentum)
    if name == "adagrad":
        return optim.AdaGrad(params, lr=lr)
    if name == "rmsprop":
        return optim.RMSprop(params, lr=lr)
    return optim.Adam(params, lr=lr)


def input_transform(model: str, normalize: bool = False, mean: float = 0.0, std: float = 1.0) -> Any:
    """The transform that turns 28x28 uint8 images into ``model``'s input: scaled to [0, 1]
    (optionally normalized with ``mean``/``std``), padded to 32x32 for LeNet, resized to
    227x227 for AlexNet."""
    from ..data import Compose, Normalize, Pad, Resize, ToFloat

    steps: list = [ToFloat()]
    if normalize:
        steps.append(Normalize(mean, std))
    if model == "lenet":
        steps.append(Pad(2))
    elif model == "alexnet":
        steps.append(Resize(227))
    elif model != "simpleconvnet":
        raise ValueError(f"input_transform: unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}.")
    return Compose(steps)


def load_data(
    dataset: str,
    model: str,
    root: str | os.PathLike | None = None,
    train: bool = True,
    limit: int | None = None,
    normalize: bool = False,
    download: bool = True,
) -> Any:
    """The ``dataset`` (``mnist`` | ``fashion-mnist``) split prepared for ``model``; ``limit`` keeps
    the first N samples. Raises FileNotFoundError listing every place looked when the files are missing."""
    from ..data import DATASETS, TensorDataset

    if dataset not in DATASETS:
        raise ValueError(f"load_data: unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}.")
    cls = DATASETS[dataset]
    ds = cls(root=root, train=train, download=download, transform=input_transform(model, normalize, cls.mean, cls.std))
    if limit is not None:
        if limit < 1:
            raise ValueError(f"load_data: limit must be >= 1, got {limit}.")
        sub = TensorDataset(ds.data[:limit], ds.targets[:limit], ds.transform)
        sub.folder = ds.folder  # type: ignore[attr-defined]
        return sub
    return ds


def model_options(
    model: str, weight_init_std: float = 0.01, activation: str | None = None, pooling: str | None = None, init: str | None = None
) -> dict:
    """The constructor keyword arguments of ``model`` from the command-line options (only those
    that apply to it; None means the model's default)."""
    if model == "simpleconvnet":
        return {"weight_init_std": weight_init_std}
    if model == "lenet":
        opts = {"activation": activation, "pooling": pooling}
        return {k: v for k, v in opts.items() if v is not None}
    if model == "alexnet":
        return {"num_classes": 10, "in_channels": 1} | ({"init": init} if init is not None else {})
    raise ValueError(f"model_options: unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}.")


def build_model(model: str, **kwargs: Any) -> Any:
    """A model of :mod:`tinygrad_cnn.models` by its command-line name, for 28x28 grey input
    prepared by :func:`input_transform` (LeNet gets 32x32, AlexNet 227x227)."""
    from .. import models

    if model == "simpleconvnet":
        return models.SimpleConvNet(input_dim=(1, 28, 28), **kwargs)
    if model == "lenet":
        return models.LeNet(input_size=32, **kwargs)
    if model == "alexnet":
        return models.AlexNet(**kwargs)
    raise ValueError(f"build_model: unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}.")


def evaluate_checkpoint(
    path: str | os.PathLike, root: str | os.PathLike | None = None, batch_size: int = 500, progress: bool = False
) -> dict:
    """Rebuild the model described by a ``tinygrad-cnn train`` checkpoint, load its weights and
    evaluate it on its dataset's test split. Returns ``evaluate``'s dict plus ``model``,
    ``dataset`` and ``epoch``."""
    from ..data import DataLoader

    ck = load_checkpoint(path)
    cfg = ck["config"]
    missing = [k for k in ("model", "dataset") if k not in cfg]
    if missing:
        raise ValueError(
            f"evaluate_checkpoint: {path} has no {', '.join(missing)} in its config (it was not written by "
            "`tinygrad-cnn train`); load it with load_checkpoint() and evaluate() yourself."
        )
    model = build_model(cfg["model"], **cfg.get("model_kwargs", {}))
    model.load_state_dict(ck["model"])
    limit, normalize = cfg.get("limit_test"), cfg.get("normalize", False)
    test_set = load_data(cfg["dataset"], cfg["model"], root, train=False, limit=limit, normalize=normalize)
    res = evaluate(model, DataLoader(test_set, batch_size), progress=progress)
    res.update(model=cfg["model"], dataset=cfg["dataset"], epoch=ck["epoch"])
    return res
