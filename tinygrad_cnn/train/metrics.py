"""The metrics log of a training run, ``metrics.jsonl``: written and read here, nowhere else.

One JSON record per line:

- ``{"type": "batch", "epoch", "step", "progress", "loss"}`` per training batch (``progress`` in
  epochs, ``loss`` that batch's mean loss); :func:`batch_losses` reads them back;
- ``{"type": "step", "epoch", "step", "progress", "loss", "acc"}`` every ``log_every`` batches
  (after that window's batch records; loss and accuracy are the sample-weighted means of those batches);
- ``{"type": "epoch", "epoch", "step", "train_loss", "train_acc", "test_loss", "test_acc",
  "seconds", "eval_seconds", "images_per_s"}`` per epoch.

Example::

    [r["test_acc"] for r in read_metrics("runs/simple/metrics.jsonl") if r["type"] == "epoch"]
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from ..atomic import atomic_open

METRICS_FILE = "metrics.jsonl"
"""The name of the metrics log in a run folder (one JSON record per line)."""


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The records of a JSON-lines metrics log (one dict per line), as written by ``fit``."""
    path = Path(path)
    out = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"read_metrics: {path}, line {i} is not JSON ({e.msg}).") from None
    return out


def batch_losses(history: str | os.PathLike | Iterable[dict]) -> tuple[list[float], list[float]]:
    """The per-batch training losses of a metrics log: ``(progress, loss)``, two equal-length lists
    in training order (``progress`` in epochs, e.g. 0.5 halfway through the first epoch).

    ``history`` is the path of a ``metrics.jsonl`` or its records. A log without batch records
    (written before they existed) gives two empty lists.

    Example::

        progress, loss = batch_losses("runs/simple/metrics.jsonl")
    """
    recs = read_metrics(history) if isinstance(history, (str, os.PathLike)) else history
    batches = [r for r in recs if r.get("type") == "batch"]
    return [float(r["progress"]) for r in batches], [float(r["loss"]) for r in batches]


class MetricsLog:
    """Append-only JSON-lines log: one ``{"type": "batch"|"step"|"epoch", ...}`` record per line.

    ``path=None`` keeps the records in memory only (``records``).
    """

    def __init__(self, path: str | os.PathLike | None) -> None:
        self.path = Path(path) if path is not None else None
        self.records: list[dict] = []

    def truncate_after(self, epoch: int) -> None:
        """Keep only the records of epochs <= ``epoch`` (a resumed run rewrites what followed)."""
        if self.path is not None and self.path.exists():
            self.records = [r for r in read_metrics(self.path) if r.get("epoch", 0) <= epoch]
            with atomic_open(self.path, "w") as f:
                f.write("".join(json.dumps(r) + "\n" for r in self.records))

    def remove(self) -> None:
        """Delete the log file (a run started afresh in the same folder)."""
        if self.path is not None and self.path.exists():
            self.path.unlink()

    def append(self, record: dict) -> None:
        """Keep ``record`` and append it to the file as one JSON line (the file is closed after each
        write, so a run that crashes keeps what it logged)."""
        self.extend([record])

    def extend(self, records: list[dict]) -> None:
        """Append several records with one write (the batch records of a logging window)."""
        self.records.extend(records)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write("".join(json.dumps(r) + "\n" for r in records))


class StepLogger:
    """The ``on_step`` callback of :func:`~tinygrad_cnn.train.train_epoch`: a batch record per
    batch and, per ``log_every`` batches, a step record with the sample-weighted mean loss/accuracy
    of those batches. The window's records are written together, after its last batch."""

    def __init__(self, log: MetricsLog, epoch: int, steps_per_epoch: int, log_every: int) -> None:
        self.log, self.epoch, self.steps, self.every = log, epoch, steps_per_epoch, log_every
        self.window: list[tuple[float, float, int]] = []
        self.batches: list[dict] = []

    def _where(self, i: int) -> dict:
        step = (self.epoch - 1) * self.steps + i + 1
        return {"epoch": self.epoch, "step": step, "progress": round(self.epoch - 1 + (i + 1) / self.steps, 6)}

    def __call__(self, i: int, loss: float, acc: float, b: int) -> None:
        self.window.append((loss, acc, b))
        self.batches.append({"type": "batch", **self._where(i), "loss": loss})
        if (i + 1) % self.every == 0 or i + 1 == self.steps:
            n = sum(w[2] for w in self.window)
            step = {
                "type": "step",
                **self._where(i),
                "loss": sum(w[0] * w[2] for w in self.window) / n,
                "acc": sum(w[1] * w[2] for w in self.window) / n,
            }
            self.log.extend([*self.batches, step])
            self.window.clear()
            self.batches.clear()
