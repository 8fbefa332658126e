"""The training loop: :func:`fit` over epochs, built on :func:`train_epoch` and :func:`evaluate`.

:func:`fit` trains a model for some epochs and, per epoch, evaluates on the test set, writes a
checkpoint (:mod:`.checkpoint`) and appends to the metrics log (:mod:`.metrics`). A run is
deterministic for a given seed: the shuffling and every random draw of epoch ``e`` (dropout, ...)
depend only on ``(seed, e)``, so a run resumed from a checkpoint ends with the same weights as an
uninterrupted one.

Example::

    history = fit(model, Adam(model.parameters(), lr=1e-3), train_loader, test_loader,
                  epochs=20, out_dir="runs/simple", seed=0)
    history[-1]["test_acc"]
"""
from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..tensor import Tensor, manual_seed
from .checkpoint import (
    checkpoint_path,
    checkpoints,
    load_checkpoint,
    prune_checkpoints,
    restore_optimizer,
    resume_config,
    resume_source,
    save_checkpoint,
)
from .metrics import METRICS_FILE, MetricsLog, StepLogger


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
        """Count one batch of ``images`` images and show ``postfix`` (e.g. ``loss=0.31``) and the
        throughput beside the bar."""
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
        """Finish the bar (its final line stays)."""
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
        ckpt_path = resume_source(resume, out)
        ck = load_checkpoint(ckpt_path)
        config, changed = resume_config(ck["config"], config, override, ck["epoch"], ckpt_path)
        model.load_state_dict(ck["model"])
        restore_optimizer(optimizer, ck, changed, say)
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
        prune_checkpoints(out, keep=0)
        log.remove()

    history = [r for r in log.records if r.get("type") == "epoch"]
    if start_epoch > epochs:
        say(f"nothing to do: the checkpoint is at epoch {start_epoch - 1} and epochs={epochs}.")
        return history
    steps_per_epoch = len(train_loader)
    for epoch in range(start_epoch, epochs + 1):
        manual_seed(epoch_seed(seed, epoch))
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch - 1)
        logger = StepLogger(log, epoch, steps_per_epoch, log_every)
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
            ev = evaluate(model, test_loader, loss_fn, progress=progress, desc=f"test {epoch}/{epochs}")
            rec.update(test_loss=ev["loss"], test_acc=ev["acc"], eval_seconds=round(ev["seconds"], 3))
        log.append(rec)
        history.append(rec)
        test = f"  test loss {rec['test_loss']:.4f}  test acc {rec['test_acc']:.4f}" if test_loader is not None else ""
        say(
            f"epoch {epoch}/{epochs}  train loss {rec['train_loss']:.4f}  train acc {rec['train_acc']:.4f}{test}"
            f"  ({rec['seconds']:.1f} s, {rec['images_per_s']:.0f} img/s)"
        )
        if out is not None:
            save_checkpoint(checkpoint_path(out, epoch), model, optimizer, epoch, config)
            if keep_checkpoints is not None:
                prune_checkpoints(out, keep_checkpoints)
    return history
