"""Training: the loop behind ``tinygrad-cnn train`` (usable from Python too), one module per job.

- :mod:`~tinygrad_cnn.train.loop`: :func:`fit`, :func:`train_epoch`, :func:`evaluate`, the
  progress bar and the per-epoch seeds;
- :mod:`~tinygrad_cnn.train.checkpoint`: ``epoch_NNN.npz`` checkpoints saved, loaded, listed and
  pruned, and the check that a resumed run keeps its checkpoint's settings;
- :mod:`~tinygrad_cnn.train.metrics`: the ``metrics.jsonl`` log, written and read;
- :mod:`~tinygrad_cnn.train.registry`: models, optimizers and datasets by their command-line names.

``tinygrad-cnn demo`` lives in :mod:`tinygrad_cnn.demo`, above this package and :mod:`tinygrad_cnn.viz`.

Every public name of those modules is importable from here.

Example::

    history = fit(model, Adam(model.parameters(), lr=1e-3), train_loader, test_loader,
                  epochs=20, out_dir="runs/simple", seed=0)
    history[-1]["test_acc"]
"""
from .checkpoint import (
    CHECKPOINT_RE,
    FIXED_ON_RESUME,
    ResumeConfigError,
    checkpoint_path,
    checkpoints,
    load_checkpoint,
    prune_checkpoints,
    resume_config,
    save_checkpoint,
)
from .loop import Progress, epoch_seed, evaluate, fit, train_epoch
from .metrics import METRICS_FILE, MetricsLog, StepLogger, batch_losses, read_metrics
from .registry import (
    DEFAULT_LR,
    MODEL_NAMES,
    OPTIMIZER_NAMES,
    build_model,
    evaluate_checkpoint,
    input_transform,
    load_data,
    make_optimizer,
    model_options,
)

__all__ = [
    "CHECKPOINT_RE",
    "DEFAULT_LR",
    "FIXED_ON_RESUME",
    "METRICS_FILE",
    "MODEL_NAMES",
    "OPTIMIZER_NAMES",
    "MetricsLog",
    "Progress",
    "ResumeConfigError",
    "StepLogger",
    "batch_losses",
    "build_model",
    "checkpoint_path",
    "checkpoints",
    "epoch_seed",
    "evaluate",
    "evaluate_checkpoint",
    "fit",
    "input_transform",
    "load_checkpoint",
    "load_data",
    "make_optimizer",
    "model_options",
    "prune_checkpoints",
    "read_metrics",
    "resume_config",
    "save_checkpoint",
    "train_epoch",
]
