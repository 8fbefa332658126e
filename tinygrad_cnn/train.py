"""The training loop behind ``tinygrad-cnn train`` (usable from Python too).

:func:`fit` trains a model for some epochs and, per epoch, evaluates on the test set, writes a
checkpoint (``epoch_NNN.npz``, the safe ``.npz`` format of :func:`tinygrad_cnn.save`) and appends
to a JSON-lines metrics log (``metrics.jsonl``). A run is deterministic for a given seed: the
shuffling and every random draw of epoch ``e`` (dropout, ...) depend only on ``(seed, e)``, so a
run resumed from a checkpoint ends with the same weights as an uninterrupted one.

Example::

    history = fit(model, Adam(model.parameters(), lr=1e-3), train_loader, test_loader,
                  epochs=20, out_dir="runs/simple", seed=0)
    history[-1]["test_acc"]
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_open
from .autograd.grad_mode import no_grad
from .nn import functional as F
from .tensor import Tensor, manual_seed

CHECKPOINT_RE = re.compile(r"^epoch_(\d+)\.npz$")
METRICS_FILE = "metrics.jsonl"


def _say(msg: str) -> None:
    print(msg, flush=True)  # flushed: a log redirected to a file shows each epoch as it ends


# ---- progress -----------------------------------------------------------------------------------
class Progress:
    """A progress bar over ``total`` batches: tqdm when installed, else a line every ~10%.

    ``update(images, **postfix)`` advances one batch. ``enabled=False`` shows nothing.
    """

    def __init__(self, total: int, desc: str, enabled: bool = True, stream: Any = None) -> None:
        self.total, self.desc, self.enabled = total, desc, enabled
        self.stream = stream or sys.stderr
        self.count = 0
        self.images = 0
        self.start = time.perf_counter()
        self._bar = None
        self._next_print = 0.1
        if enabled:
            try:
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, desc=desc, unit="batch", file=self.stream, leave=True, dynamic_ncols=True)
            except ImportError:  # tqdm is an optional extra: fall back to plain lines
                self._bar = None

    @property
    def images_per_s(self) -> float:
        dt = time.perf_counter() - self.start
        return self.images / dt if dt > 0 else 0.0

    def update(self, images: int, **postfix: float) -> None:
        self.count += 1
        self.images += images
        if not self.enabled:
            return
        post = {k: f"{v:.4f}" for k, v in postfix.items()}
        post["img/s"] = f"{self.images_per_s:.0f}"
        if self._bar is not None:
            self._bar.set_postfix(post, refresh=False)
            self._bar.update(1)
        elif self.count >= self._next_print * self.total or self.count == self.total:
            self._next_print += 0.1
            items = "  ".join(f"{k} {v}" for k, v in post.items())
            print(f"{self.desc}: {100 * self.count // self.total:3d}% {self.count}/{self.total}  {items}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


# ---- one epoch, evaluation -----------------------------------------------------------------------
def _correct(logits: Tensor, y: Tensor) -> int:
    return int((logits.data.argmax(axis=1) == y.data).sum())


def evaluate(model: Any, loader: Iterable, loss_fn: Callable = F.cross_entropy, progress: bool = False, desc: str = "eval") -> dict:
    """Mean loss and accuracy of ``model`` over ``loader`` (eval mode, no graph recorded).

    Returns ``{"loss": float, "acc": float, "n": int, "seconds": float}``. The model's
    train/eval mode is restored afterwards.

    Example::

        evaluate(model, DataLoader(test_set, 1000))["acc"]
    """
    was_training = getattr(model, "training", True)
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    bar = Progress(len(loader), desc, progress)  # type: ignore[arg-type]
    t0 = time.perf_counter()
    try:
        with no_grad():
            for x, y in loader:
                logits = model(x)
                b = len(y.data)
                total_loss += float(loss_fn(logits, y).item()) * b
                correct += _correct(logits, y)
                n += b
                bar.update(b)
    finally:
        bar.close()
        model.train(was_training)
    if n == 0:
        raise ValueError("evaluate: the loader yielded no batches.")
    return {"loss": total_loss / n, "acc": correct / n, "n": n, "seconds": time.perf_counter() - t0}


def train_epoch(
    model: Any,
    optimizer: Any,
    loader: Any,
    loss_fn: Callable = F.cross_entropy,
    progress: bool = True,
    desc: str = "train",
    on_step: Callable[[int, float, float, int], None] | None = None,
) -> dict:
    """One pass over ``loader``: forward, loss, backward, ``optimizer.step()`` per batch.

    ``on_step(batch_index, loss, batch_accuracy, batch_size)`` is called after each step.
    Returns ``{"loss", "acc", "n", "seconds", "images_per_s"}`` (loss and accuracy are averaged
    over the samples seen while training, as in the chapter). A NaN/inf loss stops training with
    an error naming the batch.
    """
    model.train()
    total_loss, correct, n = 0.0, 0, 0
    bar = Progress(len(loader), desc, progress)
    t0 = time.perf_counter()
    try:
        for i, (x, y) in enumerate(loader):
            logits = model(x)
            loss = loss_fn(logits, y)
            lv = float(loss.item())
            if not math.isfinite(lv):
                raise FloatingPointError(
                    f"train_epoch: the loss became {lv} at batch {i} ({desc}). Lower the learning rate, or check the "
                    "inputs (are they scaled to [0, 1]?); `with tinygrad_cnn.detect_anomaly():` finds the op."
                )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            b = len(y.data)
            c = _correct(logits, y)
            total_loss += lv * b
            correct += c
            n += b
            bar.update(b, loss=lv, acc=c / b)
            if on_step is not None:
                on_step(i, lv, c / b, b)
    finally:
        bar.close()
    dt = time.perf_counter() - t0
    return {"loss": total_loss / max(n, 1), "acc": correct / max(n, 1), "n": n, "seconds": dt, "images_per_s": n / dt if dt > 0 else 0.0}


# ---- checkpoints ---------------------------------------------------------------------------------
def save_checkpoint(path: str | os.PathLike, model: Any, optimizer: Any = None, epoch: int = 0, config: dict | None = None) -> Path:
    """Write model (and optimizer) state, the epoch and a JSON ``config`` to ``path`` (safe .npz).

    Loaded back by :func:`load_checkpoint`; the file never contains pickled code.
    """
    from .serialization import save

    obj: dict[str, Any] = {"model": model.state_dict(), "epoch": int(epoch), "config": json.dumps(config or {}, sort_keys=True)}
    if optimizer is not None:
        obj["optimizer"] = optimizer.state_dict()
    path = Path(path)
    save(obj, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`: ``{"model", "optimizer"?, "epoch", "config"}``
    with ``config`` decoded back into a dict."""
    from .serialization import CheckpointError, load

    path = Path(path)
    obj = load(path)
    if not isinstance(obj, dict) or "model" not in obj or "epoch" not in obj:
        raise CheckpointError(f"load_checkpoint: {path} is not a training checkpoint (it has no 'model' and 'epoch' entries).")
    cfg = obj.get("config", "{}")
    try:
        obj["config"] = json.loads(str(cfg)) if not isinstance(cfg, dict) else cfg
        obj["epoch"] = int(obj["epoch"])
    except (ValueError, TypeError) as e:
        raise CheckpointError(f"load_checkpoint: {path} has an unreadable config or epoch ({e}).") from None
    return obj


def checkpoints(out_dir: str | os.PathLike) -> list[Path]:
    """The ``epoch_NNN.npz`` checkpoints in ``out_dir``, oldest epoch first."""
    d = Path(out_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := CHECKPOINT_RE.match(p.name))]
    return [p for _, p in sorted(found)]


# ---- the metrics log -----------------------------------------------------------------------------
def _atomic_write_text(path: Path, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


class MetricsLog:
    """Append-only JSON-lines log: one ``{"type": "step"|"epoch", ...}`` record per line."""

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None
        self.records: list[dict] = []

    def truncate_after(self, epoch: int) -> None:
        """Keep only the records of epochs <= ``epoch`` (a resumed run rewrites what followed)."""
        if self.path is not None and self.path.exists():
            from .viz.plots import read_metrics

            self.records = [r for r in read_metrics(self.path) if r.get("epoch", 0) <= epoch]
            _atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in self.records))

    def append(self, record: dict) -> None:
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


class _StepLogger:
    """Writes one step record per ``log_every`` batches: sample-weighted mean loss/acc of those batches."""

    def __init__(self, log: MetricsLog, epoch: int, steps_per_epoch: int, log_every: int) -> None:
        self.log, self.epoch, self.steps, self.every = log, epoch, steps_per_epoch, log_every
        self.window: list[tuple[float, float, int]] = []

    def __call__(self, i: int, loss: float, acc: float, b: int) -> None:
        self.window.append((loss, acc, b))
        if (i + 1) % self.every == 0 or i + 1 == self.steps:
            n = sum(w[2] for w in self.window)
            self.log.append({
                "type": "step",
                "epoch": self.epoch,
                "step": (self.epoch - 1) * self.steps + i + 1,
                "progress": round(self.epoch - 1 + (i + 1) / self.steps, 6),
                "loss": sum(w[0] * w[2] for w in self.window) / n,
                "acc": sum(w[1] * w[2] for w in self.window) / n,
            })
            self.window.clear()


# ---- resuming: the new settings against the checkpoint's ---------------------------------------------
FIXED_ON_RESUME = ("model", "model_kwargs")  # the checkpoint's weights belong to that architecture
_NOT_COMPARED = ("epochs", "overrides")  # epochs is the new total; overrides is the record kept below


class ResumeConfigError(ValueError):
    """``fit(resume=...)`` got a ``config`` that differs from the checkpoint's without ``override``."""


def resume_config(saved: dict, new: dict | None, override: Iterable[str], epoch: int, source: Any) -> tuple[dict, dict]:
    """The config to record when resuming from checkpoint ``source`` (at ``epoch``, config ``saved``)
    with the settings ``new``, and the changes ``{key: [old, new]}`` that ``override`` allows.

    Keys other than ``epochs`` must match unless named in ``override`` (:data:`FIXED_ON_RESUME`
    never may); the allowed changes are appended to ``config["overrides"]`` as
    ``{"from_epoch": epoch + 1, "changed": {...}}``. ``new=None`` keeps the checkpoint's config.
    Raises :class:`ResumeConfigError` naming every refused difference.
    """
    if new is None or not saved:
        return (saved if new is None else dict(new)), {}
    keys = [k for k in dict.fromkeys([*saved, *new]) if k not in _NOT_COMPARED]
    changed = {k: [saved.get(k), new.get(k)] for k in keys if saved.get(k) != new.get(k)}
    refused = {k: v for k, v in changed.items() if k not in set(override) or k in FIXED_ON_RESUME}
    if refused:
        raise ResumeConfigError(_refusal(refused, source))
    record = [*saved.get("overrides", []), *([{"from_epoch": epoch + 1, "changed": changed}] if changed else [])]
    return ({**new, "overrides": record} if record else dict(new)), changed


def _refusal(refused: dict, source: Any) -> str:
    lines = "".join(f"\n  {k}: {old!r} in the checkpoint, {new!r} now" for k, (old, new) in refused.items())
    fixed = [k for k in refused if k in FIXED_ON_RESUME]
    if fixed:
        fix = (f"{', '.join(fixed)} cannot change on resume (the weights belong to the checkpoint's architecture): start a new "
               "run in another out_dir (--out) or with overwrite=True (--overwrite).")
    else:
        names = list(refused)
        fix = (f"Resume with the checkpoint's settings, or pass override={names!r} (command line: --override {','.join(names)}) "
               "to continue with the new ones; the change is recorded in the config of later checkpoints.")
    return f"fit: {source} was trained with other settings than the ones given to resume it:{lines}\n{fix}"


def _restore_optimizer(optimizer: Any, ck: dict, changed: dict, say: Callable[[str], Any]) -> None:
    """Load the checkpoint's optimizer state; for overridden hyperparameters (lr, momentum) the given
    optimizer's values win, so what trains is what the config records. A new optimizer starts afresh."""
    if "optimizer" not in ck:
        return
    if "optimizer" in changed:
        say(f"optimizer changed from {changed['optimizer'][0]} to {changed['optimizer'][1]}: its state starts afresh")
        return
    given = [dict(g) for g in optimizer.param_groups]
    optimizer.load_state_dict(ck["optimizer"])
    for group, mine in zip(optimizer.param_groups, given):
        group.update({k: mine[k] for k in changed if k in mine and k != "params"})


# ---- fit -----------------------------------------------------------------------------------------
def epoch_seed(seed: int, epoch: int) -> int:
    """The global-generator seed used during ``epoch`` of a run seeded with ``seed``."""
    return int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])


def fit(
    model: Any,
    optimizer: Any,
    train_loader: Any,
    test_loader: Any = None,
    *,
    epochs: int,
    out_dir: str | os.PathLike | None = None,
    resume: bool | str | os.PathLike = False,
    seed: int = 0,
    loss_fn: Callable = F.cross_entropy,
    progress: bool = True,
    log_every: int = 10,
    config: dict | None = None,
    keep_checkpoints: int | None = None,
    overwrite: bool = False,
    print_fn: Callable[[str], Any] | None = _say,
    override: Iterable[str] = (),
) -> list[dict]:
    """Train ``model`` for ``epochs`` epochs; returns the per-epoch records.

    Each record: ``{"type": "epoch", "epoch", "train_loss", "train_acc", "test_loss", "test_acc",
    "seconds", "eval_seconds", "images_per_s", "step"}``. With ``out_dir``: a checkpoint
    ``epoch_NNN.npz`` per epoch (the newest ``keep_checkpoints`` are kept; None keeps all),
    ``metrics.jsonl`` with an epoch record per epoch and a step record (``progress`` in epochs,
    ``loss``, ``acc``) every ``log_every`` batches. ``resume=True`` continues from the newest
    checkpoint in ``out_dir`` (or ``resume=<path>`` from that file) up to ``epochs`` in total;
    starting afresh in a folder that holds checkpoints needs ``overwrite=True``. On resume a
    ``config`` that differs from the checkpoint's (other than ``epochs``) is refused unless the
    keys are named in ``override`` (see :func:`resume_config`); ``config=None`` keeps the
    checkpoint's.

    Example::

        fit(model, SGD(model.parameters(), lr=0.1), train_loader, test_loader, epochs=2, out_dir="run")
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"fit: epochs must be a positive int, got {epochs!r}.")
    if log_every < 1:
        raise ValueError(f"fit: log_every must be >= 1, got {log_every}.")
    if keep_checkpoints is not None and keep_checkpoints < 1:
        raise ValueError(f"fit: keep_checkpoints must be >= 1 (or None to keep all), got {keep_checkpoints}.")
    say = print_fn or (lambda s: None)
    out = Path(out_dir) if out_dir is not None else None
    log = MetricsLog(out / METRICS_FILE if out is not None else None)
    start_epoch = 1
    if resume:
        if isinstance(resume, (str, os.PathLike)):
            ckpt_path = Path(resume)
        else:
            if out is None:
                raise ValueError("fit: resume=True needs out_dir (the folder with the checkpoints), or pass resume=<checkpoint path>.")
            found = checkpoints(out)
            if not found:
                raise FileNotFoundError(f"fit: resume=True but {out} holds no epoch_NNN.npz checkpoint to resume from.")
            ckpt_path = found[-1]
        ck = load_checkpoint(ckpt_path)
        config, changed = resume_config(ck["config"], config, override, ck["epoch"], ckpt_path)
        model.load_state_dict(ck["model"])
        _restore_optimizer(optimizer, ck, changed, say)
        start_epoch = ck["epoch"] + 1
        log.truncate_after(ck["epoch"])
        overridden = "".join(f"; {k} {old!r} -> {new!r}" for k, (old, new) in changed.items())
        say(f"resumed from {ckpt_path} (epoch {ck['epoch']}){overridden}")
    elif out is not None:
        if checkpoints(out) and not overwrite:
            raise FileExistsError(
                f"fit: {out} already holds checkpoints of a previous run ({checkpoints(out)[-1].name}). Pass resume=True "
                "(--resume) to continue it, overwrite=True to start afresh there, or choose another out_dir."
            )
        out.mkdir(parents=True, exist_ok=True)
        for p in checkpoints(out):
            p.unlink()
        if log.path is not None and log.path.exists():
            log.path.unlink()

    history = [r for r in log.records if r.get("type") == "epoch"]
    if start_epoch > epochs:
        say(f"nothing to do: the checkpoint is at epoch {start_epoch - 1} and epochs={epochs}.")
        return history
    steps_per_epoch = len(train_loader)
    for epoch in range(start_epoch, epochs + 1):
        manual_seed(epoch_seed(seed, epoch))
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch - 1)
        logger = _StepLogger(log, epoch, steps_per_epoch, log_every)
        tr = train_epoch(model, optimizer, train_loader, loss_fn, progress, f"epoch {epoch}/{epochs}", logger)
        rec: dict[str, Any] = {
            "type": "epoch",
            "epoch": epoch,
            "step": epoch * steps_per_epoch,
            "train_loss": tr["loss"],
            "train_acc": tr["acc"],
            "test_loss": None,
            "test_acc": None,
            "seconds": round(tr["seconds"], 3),
            "eval_seconds": None,
            "images_per_s": round(tr["images_per_s"], 1),
        }
        if test_loader is not None:
            ev = evaluate(model, test_loader, loss_fn, progress=False)
            rec.update(test_loss=ev["loss"], test_acc=ev["acc"], eval_seconds=round(ev["seconds"], 3))
        log.append(rec)
        history.append(rec)
        test = f"  test loss {rec['test_loss']:.4f}  test acc {rec['test_acc']:.4f}" if test_loader is not None else ""
        say(
            f"epoch {epoch}/{epochs}  train loss {rec['train_loss']:.4f}  train acc {rec['train_acc']:.4f}{test}"
            f"  ({rec['seconds']:.1f} s, {rec['images_per_s']:.0f} img/s)"
        )
        if out is not None:
            save_checkpoint(out / f"epoch_{epoch:03d}.npz", model, optimizer, epoch, config)
            if keep_checkpoints is not None:
                for old in checkpoints(out)[:-keep_checkpoints]:
                    old.unlink()
    return history


# ---- what the command line builds: models, data, optimizers by name -------------------------------
MODEL_NAMES = ("simpleconvnet", "lenet", "alexnet")
OPTIMIZER_NAMES = ("sgd", "momentum", "adagrad", "rmsprop", "adam")
DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "adagrad": 0.01, "rmsprop": 0.001, "adam": 0.001}


def make_optimizer(name: str, params: Iterable[Any], lr: float | None = None, momentum: float = 0.9) -> Any:
    """An optimizer by its command-line name: ``sgd``, ``momentum`` (SGD with ``momentum``),
    ``adagrad``, ``rmsprop`` or ``adam``; ``lr=None`` takes :data:`DEFAULT_LR`."""
    from . import optim

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
    from .data import Compose, Normalize, Pad, Resize, ToFloat

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
    from .data import DATASETS, TensorDataset

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
    from . import models

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
    from .data import DataLoader

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


def first_conv(model: Any) -> tuple[str, Any]:
    """``(name, module)`` of the first submodule with 4-D weights (a conv layer)."""
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        if name and isinstance(w, Tensor) and w.ndim == 4:
            return name, m
    raise ValueError(f"first_conv: {type(model).__name__} has no conv layer (no submodule with 4-D weights).")


def run_demo(
    out: str | os.PathLike = "demo-output",
    epochs: int = 1,
    seed: int = 0,
    root: str | os.PathLike | None = None,
    limit_train: int | None = None,
    limit_test: int | None = None,
    progress: bool = True,
    print_fn: Callable[[str], Any] = _say,
) -> dict:
    """The README's main job (``tinygrad-cnn demo``): train SimpleConvNet on Fashion-MNIST with the
    chapter's settings (Adam, lr 0.001, batch 100, weight std 0.01) and draw what it learned.

    Writes into ``out``: ``model_graph.svg`` (the forward graph; ``.dot`` source when Graphviz is
    missing), ``filters.png`` (conv1's filters before/after), ``curves.png``, ``feature_maps_conv1.png``
    and ``feature_maps_pool1.png`` (one test image), and ``run/`` (checkpoints, metrics.jsonl).
    Returns the last epoch record plus ``files`` (the paths written). Raises FileNotFoundError
    (listing where it looked) when Fashion-MNIST is missing.
    """
    from .data import DataLoader, FashionMNIST
    from .viz import plots

    out = Path(out)
    say = print_fn
    train_set = load_data("fashion-mnist", "simpleconvnet", root, True, limit_train)
    test_set = load_data("fashion-mnist", "simpleconvnet", root, False, limit_test)
    out.mkdir(parents=True, exist_ok=True)
    files: list[Path] = []
    manual_seed(seed)
    opts = model_options("simpleconvnet")
    model = build_model("simpleconvnet", **opts)
    conv_name, conv = first_conv(model)
    before = conv.weight.data.copy()
    x0, y0 = test_set.get_batch(np.arange(1))
    say(f"Fashion-MNIST: {len(train_set)} training / {len(test_set)} test images from {getattr(train_set, 'folder', root)}")
    say(f"SimpleConvNet: {model.num_parameters():,} parameters; Adam lr 0.001, batch 100, {epochs} epoch(s), seed {seed}")

    files.append(_draw_graph(model, Tensor(x0), out, say))
    opt = make_optimizer("adam", model.parameters(), 0.001)
    config = {"model": "simpleconvnet", "model_kwargs": opts, "dataset": "fashion-mnist", "normalize": False,
              "epochs": epochs, "batch_size": 100, "optimizer": "adam", "lr": 0.001, "seed": seed,
              "limit_train": limit_train, "limit_test": limit_test}
    history = fit(model, opt, DataLoader(train_set, 100, shuffle=True, seed=seed), DataLoader(test_set, 500),
                  epochs=epochs, out_dir=out / "run", seed=seed, progress=progress, config=config, overwrite=True, print_fn=say)
    last = history[-1]
    say(f"test accuracy after {epochs} epoch(s): {last['test_acc']:.4f}")

    plots.plot_filters_before_after(before, conv.weight, out / "filters.png")
    plots.plot_training_curves(out / "run" / METRICS_FILE, out / "curves.png", title="SimpleConvNet on Fashion-MNIST")
    label = FashionMNIST.classes[int(y0[0])]
    with no_grad():
        model.eval()
        pred = FashionMNIST.classes[int(model(Tensor(x0)).data.argmax())]
        model.train()
    files += [out / "filters.png", out / "curves.png"]
    for layer in (conv_name, "pool1"):
        path = out / f"feature_maps_{layer}.png"
        plots.plot_feature_maps(model, x0[0], layer, path, title=f"{layer} of SimpleConvNet for a test image ({label}; predicted {pred})")
        files.append(path)
    files.append(out / "run")
    say("wrote:\n" + "\n".join(f"  {f}" for f in files))
    return {**last, "files": files}


def _draw_graph(model: Any, x: Tensor, out: Path, say: Callable[[str], Any]) -> Path:
    from .viz import GraphvizNotFoundError, draw_model

    try:
        draw_model(model, x, path=out / "model_graph.svg")
        return out / "model_graph.svg"
    except GraphvizNotFoundError as e:
        path = out / "model_graph.dot"
        _atomic_write_text(path, draw_model(model, x).source)
        say(f"(no SVG of the graph: {e} The DOT source is in {path}.)")
        return path
