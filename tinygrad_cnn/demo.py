"""``tinygrad-cnn demo``: train SimpleConvNet on Fashion-MNIST and draw what it learned.

Example::

    run_demo("demo-output", epochs=1)["test_acc"]
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_open
from .autograd.grad_mode import no_grad
from .tensor import Tensor, manual_seed
from .train.loop import fit
from .train.metrics import METRICS_FILE
from .train.registry import build_model, load_data, make_optimizer, model_options


def _say(msg: str) -> None:
    print(msg, flush=True)  # flushed: a log redirected to a file shows each stage as it ends


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
    print_fn: Callable[[str], Any] | None = None,
) -> dict:
    """The README's main job (``tinygrad-cnn demo``): train SimpleConvNet on Fashion-MNIST with the
    chapter's settings (Adam, lr 0.001, batch 100, weight std 0.01) and draw what it learned.

    Writes into ``out``: ``model_graph.svg`` (the forward graph; ``.dot`` source when Graphviz is
    missing), ``filters.png`` (conv1's filters before/after), ``curves.png``, ``feature_maps_conv1.png``
    and ``feature_maps_pool1.png`` (one test image), ``scores.png`` (the class scores for that image)
    and ``run/`` (checkpoints, metrics.jsonl).
    Prints the time of each stage (data, training with its test pass, pictures). Returns the last epoch
    record plus ``files`` (the paths written) and ``seconds`` (stage -> wall time). Raises FileNotFoundError
    (listing where it looked) when Fashion-MNIST is missing.
    """
    from .data import DataLoader, FashionMNIST
    from .viz import plots

    out = Path(out)
    say = print_fn or _say
    clock = time.perf_counter()
    train_set = load_data("fashion-mnist", "simpleconvnet", root, True, limit_train)
    test_set = load_data("fashion-mnist", "simpleconvnet", root, False, limit_test)
    seconds = {"data": time.perf_counter() - clock}
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

    clock = time.perf_counter()
    files.append(_draw_graph(model, Tensor(x0), out, say))
    seconds["pictures"] = time.perf_counter() - clock
    clock = time.perf_counter()
    opt = make_optimizer("adam", model.parameters(), 0.001)
    config = {"model": "simpleconvnet", "model_kwargs": opts, "dataset": "fashion-mnist", "normalize": False,
              "epochs": epochs, "batch_size": 100, "optimizer": "adam", "lr": 0.001, "seed": seed,
              "limit_train": limit_train, "limit_test": limit_test}
    history = fit(model, opt, DataLoader(train_set, 100, shuffle=True, seed=seed), DataLoader(test_set, 500),
                  epochs=epochs, out_dir=out / "run", seed=seed, progress=progress, config=config, overwrite=True, print_fn=say)
    last = history[-1]
    seconds["training"] = time.perf_counter() - clock
    say(f"test accuracy after {epochs} epoch(s): {last['test_acc']:.4f}")
    clock = time.perf_counter()

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
    plots.plot_scores(model, x0[0], out / "scores.png", class_names=FashionMNIST.classes, label=int(y0[0]))
    files += [out / "scores.png", out / "run"]
    seconds["pictures"] += time.perf_counter() - clock
    say("wrote:\n" + "\n".join(f"  {f}" for f in files))
    say("time: " + ", ".join(f"{stage} {seconds[stage]:.1f} s" for stage in ("data", "training", "pictures")))
    return {**last, "files": files, "seconds": seconds}


def _draw_graph(model: Any, x: Tensor, out: Path, say: Callable[[str], Any]) -> Path:
    from .viz import GraphvizNotFoundError, draw_model

    try:
        draw_model(model, x, path=out / "model_graph.svg")
        return out / "model_graph.svg"
    except GraphvizNotFoundError as e:
        path = out / "model_graph.dot"
        with atomic_open(path, "w") as f:
            f.write(draw_model(model, x).source)
        say(f"(no SVG of the graph: {e} The DOT source is in {path}.)")
        return path
