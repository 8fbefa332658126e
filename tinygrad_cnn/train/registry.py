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


LR_SCHEDULE_FORMS = ("constant", "step:N[:GAMMA]", "multistep:M1,M2,...[:GAMMA]", "exp:GAMMA", "cosine[:ETA_MIN]", "onecycle[:PCT_START]")
"""The forms of a ``--lr-schedule`` spec, as :func:`parse_lr_schedule` reads them."""


def parse_lr_schedule(spec: str) -> tuple[str, tuple]:
    """Read a ``--lr-schedule`` spec into ``(kind, arguments)``; a ValueError names the forms.

    ``constant``; ``step:N[:GAMMA]`` (StepLR, lr times GAMMA, default 0.1, every N epochs);
    ``multistep:M1,M2,...[:GAMMA]`` (MultiStepLR at those epochs); ``exp:GAMMA`` (ExponentialLR);
    ``cosine[:ETA_MIN]`` (CosineAnnealingLR over all epochs down to ETA_MIN, default 0);
    ``onecycle[:PCT_START]`` (OneCycleLR per batch, peaking at the run's lr after PCT_START of
    the steps, default 0.3).

    Example: ``parse_lr_schedule('multistep:10,15:0.5')`` is ``('multistep', ((10, 15), 0.5))``.
    """
    def bad(why: str) -> ValueError:
        return ValueError(f"lr schedule {spec!r}: {why}; use one of {', '.join(LR_SCHEDULE_FORMS)} (e.g. step:10:0.5).")

    def number(text: str, kind: type, what: str, ok: Any) -> Any:
        try:
            v = kind(text)
        except ValueError:
            raise bad(f"{what} {text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if not ok(v):
            raise bad(f"{what} {text!r} is out of range")
        return v

    kind, *rest = str(spec).strip().split(":")
    positive_gamma = lambda g: 0 < g <= 1  # noqa: E731
    if kind == "constant" and not rest:
        return "constant", ()
    if kind == "step" and len(rest) in (1, 2):
        n = number(rest[0], int, "step size", lambda v: v >= 1)
        return "step", (n, number(rest[1], float, "gamma", positive_gamma) if len(rest) == 2 else 0.1)
    if kind == "multistep" and len(rest) in (1, 2):
        ms = tuple(number(m, int, "milestone", lambda v: v >= 1) for m in rest[0].split(","))
        if list(ms) != sorted(set(ms)):
            raise bad("milestones must increase")
        return "multistep", (ms, number(rest[1], float, "gamma", positive_gamma) if len(rest) == 2 else 0.1)
    if kind == "exp" and len(rest) == 1:
        return "exp", (number(rest[0], float, "gamma", positive_gamma),)
    if kind == "cosine" and len(rest) <= 1:
        return "cosine", (number(rest[0], float, "eta_min", lambda v: v >= 0) if rest else 0.0,)
    if kind == "onecycle" and len(rest) <= 1:
        return "onecycle", (number(rest[0], float, "pct_start", lambda v: 0 < v < 1) if rest else 0.3,)
    raise bad("unknown form")


def make_scheduler(spec: str, optimizer: Any, epochs: int, steps_per_epoch: int) -> tuple[Any, str]:
    """The learning-rate scheduler of a ``--lr-schedule`` spec (see :func:`parse_lr_schedule`) for
    ``optimizer``, and when to step it: ``'epoch'``, or ``'step'`` (after every batch, OneCycleLR).
    ``constant`` gives ``(None, 'epoch')``.

    Example::

        sched, interval = make_scheduler("cosine", opt, epochs=20, steps_per_epoch=600)   # interval 'epoch'
    """
    from ..optim import lr_scheduler as S

    kind, a = parse_lr_schedule(spec)
    if kind == "constant":
        return None, "epoch"
    if kind == "step":
        return S.StepLR(optimizer, step_size=a[0], gamma=a[1]), "epoch"
    if kind == "multistep":
        return S.MultiStepLR(optimizer, milestones=list(a[0]), gamma=a[1]), "epoch"
    if kind == "exp":
        return S.ExponentialLR(optimizer, gamma=a[0]), "epoch"
    if kind == "cosine":
        return S.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=a[0]), "epoch"
    max_lr = [g["lr"] for g in optimizer.param_groups]
    cycle_momentum = all("momentum" in g or "betas" in g for g in optimizer.param_groups) and not any(
        g.get("momentum", 1) == 0 for g in optimizer.param_groups
    )
    return S.OneCycleLR(optimizer, max_lr=max_lr, epochs=epochs, steps_per_epoch=steps_per_epoch, pct_start=a[0],
                        cycle_momentum=cycle_momentum), "step"


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
