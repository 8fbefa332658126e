"""Checkpoints of a training run: ``epoch_NNN.npz`` files written, read, listed and pruned, and
the check that a resumed run keeps the settings its checkpoint was trained with.

A checkpoint holds the model's (and optimizer's) state, the epoch and the run's ``config`` as
JSON, in the safe ``.npz`` format of :func:`tinygrad_cnn.save` (never pickled code).

Example::

    save_checkpoint("run/epoch_001.npz", model, optimizer, epoch=1, config={"lr": 0.1})
    load_checkpoint(checkpoints("run")[-1])["epoch"]      # 1
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

CHECKPOINT_RE = re.compile(r"^epoch_(\d+)\.npz$")
"""The file name of a checkpoint, ``epoch_NNN.npz``; group 1 is the epoch."""


def checkpoint_path(out_dir: str | os.PathLike, epoch: int) -> Path:
    """Where :func:`~tinygrad_cnn.train.fit` writes the checkpoint of ``epoch``: ``out_dir/epoch_NNN.npz``."""
    return Path(out_dir) / f"epoch_{epoch:03d}.npz"


def save_checkpoint(path: str | os.PathLike, model: Any, optimizer: Any = None, epoch: int = 0, config: dict | None = None) -> Path:
    """Write model (and optimizer) state, the epoch and a JSON ``config`` to ``path`` (safe .npz).

    Loaded back by :func:`load_checkpoint`; the file never contains pickled code.
    """
    from ..serialization import save

    obj: dict[str, Any] = {"model": model.state_dict(), "epoch": int(epoch), "config": json.dumps(config or {}, sort_keys=True)}
    if optimizer is not None:
        obj["optimizer"] = optimizer.state_dict()
    path = Path(path)
    save(obj, path)
    return path


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`: ``{"model", "optimizer"?, "epoch", "config"}``
    with ``config`` decoded back into a dict."""
    from ..serialization import CheckpointError, load

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


def prune_checkpoints(out_dir: str | os.PathLike, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` checkpoints in ``out_dir`` (``keep=0`` deletes them all);
    returns the deleted paths."""
    found = checkpoints(out_dir)
    old = found[: max(len(found) - keep, 0)]
    for p in old:
        p.unlink()
    return old


# ---- resuming: the new settings against the checkpoint's ---------------------------------------------
FIXED_ON_RESUME = ("model", "model_kwargs")  # the checkpoint's weights belong to that architecture
"""The run settings a resumed run must keep from its checkpoint."""
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


def resume_source(resume: str | os.PathLike | bool, out_dir: Path | None) -> Path:
    """The checkpoint that ``fit(resume=...)`` continues from: the path given, or with
    ``resume=True`` the newest checkpoint in ``out_dir``."""
    if isinstance(resume, (str, os.PathLike)):
        return Path(resume)
    if out_dir is None:
        raise ValueError("fit: resume=True needs out_dir (the folder with the checkpoints), or pass resume=<checkpoint path>.")
    found = checkpoints(out_dir)
    if not found:
        raise FileNotFoundError(f"fit: resume=True but {out_dir} holds no epoch_NNN.npz checkpoint to resume from.")
    return found[-1]


def restore_optimizer(optimizer: Any, ck: dict, changed: dict, say: Callable[[str], Any]) -> None:
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
