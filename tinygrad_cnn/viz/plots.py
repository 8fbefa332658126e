"""Pictures of what a network learned (matplotlib, Agg backend: no display needed).

- :func:`plot_training_curves`: loss and accuracy over training, from a metrics log.
- :func:`plot_filters` / :func:`plot_filters_before_after`: a conv layer's filters as a grid,
  every input channel shown, each filter normalized on its own.
- :func:`plot_feature_maps`: the output of any layer (chosen by its dotted name) for one image.

Every ``plot_*`` returns the matplotlib Figure and, given ``path``, also writes it there
atomically (PNG, SVG or PDF by the file's suffix). Figures are plain ``matplotlib.figure.Figure``
objects (no pyplot state, no display needed). Needs the ``viz`` extra: ``pip install matplotlib``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_open
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from ..train.metrics import read_metrics


def _mpl() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "tinygrad_cnn.viz.plots needs matplotlib: pip install matplotlib (or pip install 'tinygrad_cnn[viz]')."
        ) from None
    return matplotlib


def _figure(figsize: tuple[float, float]) -> Any:
    # A bare Figure, not pyplot's: no global figure list to leak, no display backend needed
    # (it renders with Agg); Jupyter still shows it inline.
    _mpl()
    from matplotlib.figure import Figure

    return Figure(figsize=figsize)


def _save(fig: Any, path: str | os.PathLike | None) -> None:
    if path is None:
        return
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_open(path) as f:
        fig.savefig(f, format=fmt, dpi=110, bbox_inches="tight")


def _array(x: Any, what: str) -> np.ndarray:
    if isinstance(x, Tensor):
        return x.data
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{what}: expected a Tensor or numpy array, got {type(x).__name__}.")


# ---- training curves --------------------------------------------------------------------------
def _smooth(y: np.ndarray, k: int) -> np.ndarray:
    if len(y) < k or k < 2:
        return y
    c = np.cumsum(np.insert(y, 0, 0.0))
    head = c[1:k] / np.arange(1, k)
    return np.concatenate([head, (c[k:] - c[:-k]) / k])


def plot_training_curves(
    history: str | os.PathLike | Iterable[dict], path: str | os.PathLike | None = None, title: str | None = None
) -> Any:
    """Loss (left) and accuracy (right) against epochs from a metrics log.

    ``history`` is the path of a ``metrics.jsonl`` written by :func:`tinygrad_cnn.train.fit`
    (read by :func:`tinygrad_cnn.train.metrics.read_metrics`) or its records: ``{"type": "step",
    "progress", "loss", "acc"}`` per logged batch (drawn thin, with a moving average) and
    ``{"type": "epoch", "epoch", "train_loss", "train_acc", "test_loss", "test_acc"}`` per epoch
    (drawn with markers).

    Example::

        plot_training_curves("runs/demo/metrics.jsonl", "curves.png")
    """
    recs = read_metrics(history) if isinstance(history, (str, os.PathLike)) else list(history)
    steps = [r for r in recs if r.get("type") == "step"]
    epochs = [r for r in recs if r.get("type") == "epoch"]
    if not steps and not epochs:
        raise ValueError("plot_training_curves: the history has no 'step' or 'epoch' records to plot.")
    fig = _figure((11, 4))
    ax_l, ax_a = fig.subplots(1, 2)
    if steps:
        x = np.array([r["progress"] for r in steps], float)
        k = max(1, len(steps) // 30)
        for ax, key, label in ((ax_l, "loss", "train loss (batches)"), (ax_a, "acc", "train accuracy (batches)")):
            y = np.array([r[key] for r in steps], float)
            ax.plot(x, y, color="tab:blue", alpha=0.25, lw=0.8)
            ax.plot(x, _smooth(y, k), color="tab:blue", lw=1.5, label=f"{label}, moving average")
    if epochs:
        e = np.array([r["epoch"] for r in epochs], float)

        def series(key: str) -> tuple[np.ndarray, np.ndarray]:
            pts = [(ei, r[key]) for ei, r in zip(e, epochs) if r.get(key) is not None]
            return (np.array([p[0] for p in pts]), np.array([p[1] for p in pts])) if pts else (np.array([]), np.array([]))

        for ax, key, label, color in (
            (ax_l, "train_loss", "train loss (epoch)", "tab:blue"),
            (ax_l, "test_loss", "test loss", "tab:orange"),
            (ax_a, "train_acc", "train accuracy (epoch)", "tab:blue"),
            (ax_a, "test_acc", "test accuracy", "tab:orange"),
        ):
            xs, ys = series(key)
            if len(xs):
                ax.plot(xs, ys, "o-" if "test" in key else "s--", color=color, lw=1.5, ms=5, label=label)
        xs, ys = series("test_acc")
        if len(xs):
            best = int(np.argmax(ys))
            ax_a.annotate(
                f"best test {ys[best]:.4f}", (xs[best], ys[best]),
                textcoords="offset points", xytext=(0, -16), ha="center", color="tab:orange", fontsize=9,
                bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
            )
    ax_l.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    _save(fig, path)
    return fig


# ---- filters ----------------------------------------------------------------------------------
def filter_grid(weight: Any, ncols: int | None = None, gap: int = 1) -> np.ndarray:
    """Arrange conv filters (O, C, KH, KW) in one 2-D mosaic for display.

    Each filter is scaled to [0, 1] by its own min and max (over all its channels, so channels of
    one filter stay comparable) and drawn as a tile of its C channels side by side; tiles fill a
    grid of ``ncols`` columns (default: about square). Gaps are NaN. Returns a float64 mosaic of
    shape (rows*(KH+gap) - gap, ncols*(C*KW + (C-1)*gap + 2*gap) - 2*gap).

    Example::

        m = filter_grid(model.conv1.weight)     # 30 filters 1x5x5 -> a 5x6 grid
    """
    w = _array(weight, "filter_grid").astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected conv weights (out_channels, in_channels, kh, kw), got shape {w.shape}.")
    o, c, kh, kw = w.shape
    flat = w.reshape(o, -1)
    lo, hi = flat.min(1), flat.max(1)
    span = np.where(hi > lo, hi - lo, 1.0)
    norm = (w - lo[:, None, None, None]) / span[:, None, None, None]
    norm[hi == lo] = 0.5  # a constant filter carries no pattern: draw it mid-grey
    tile_h, tile_w = kh, c * kw + (c - 1) * gap
    if ncols is None:
        ncols = max(1, min(o, math.ceil(math.sqrt(o * (tile_h + gap) / (tile_w + 2 * gap)))))
    nrows = math.ceil(o / ncols)
    cell_w = tile_w + 2 * gap  # a wider gap between filters than between one filter's channels
    out = np.full((nrows * (tile_h + gap) - gap, ncols * cell_w - 2 * gap), np.nan)
    for i in range(o):
        r, col = divmod(i, ncols)
        y0, x0 = r * (tile_h + gap), col * cell_w
        for ch in range(c):
            xs = x0 + ch * (kw + gap)
            out[y0 : y0 + kh, xs : xs + kw] = norm[i, ch]
    return out


def _show_grid(ax: Any, mosaic: np.ndarray, title: str) -> None:
    cmap = _mpl().colormaps["gray"].with_extremes(bad="#5b8fd6")
    ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])


def _filter_title(w: np.ndarray, label: str) -> str:
    o, c, kh, kw = w.shape
    chans = "1 input channel" if c == 1 else f"{c} input channels side by side"
    return f"{label}{o} filters {kh}x{kw}, {chans}\n(each filter scaled to its own min..max)"


def plot_filters(weight: Any, path: str | os.PathLike | None = None, title: str | None = None, ncols: int | None = None) -> Any:
    """Draw conv filters (O, C, KH, KW) as a grid (see :func:`filter_grid`); returns the Figure.

    Example::

        plot_filters(model.conv1.weight, "filters.png")
    """
    w = _array(weight, "plot_filters")
    mosaic = filter_grid(w, ncols)
    h, wd = mosaic.shape
    fig = _figure((max(3.0, min(12.0, wd / 6)), max(2.5, min(12.0, h / 6)) + 0.6))
    ax = fig.subplots()
    _show_grid(ax, mosaic, title or _filter_title(w, ""))
    fig.tight_layout()
    _save(fig, path)
    return fig


def plot_filters_before_after(before: Any, after: Any, path: str | os.PathLike | None = None, ncols: int | None = None) -> Any:
    """The same conv layer's filters before and after training, side by side; returns the Figure.

    ``before`` and ``after`` are weights of the same shape (O, C, KH, KW), e.g. a copy taken
    before training and ``model.conv1.weight`` after.
    """
    b, a = _array(before, "plot_filters_before_after"), _array(after, "plot_filters_before_after")
    if b.shape != a.shape:
        raise ValueError(f"plot_filters_before_after: before has shape {b.shape} but after has {a.shape}; pass the same layer's weights.")
    mb, ma = filter_grid(b, ncols), filter_grid(a, ncols)
    h, wd = mb.shape
    fig = _figure((max(6.0, min(16.0, wd / 3)), max(2.5, min(10.0, h / 6)) + 0.8))
    axes = fig.subplots(1, 2)
    _show_grid(axes[0], mb, "before training")
    _show_grid(axes[1], ma, "after training")
    fig.suptitle(_filter_title(b, "first conv layer: "), fontsize=10)
    fig.tight_layout()
    _save(fig, path)
    return fig


# ---- feature maps -----------------------------------------------------------------------------
def layer_names(model: Any) -> list[str]:
    """The dotted names of every submodule of ``model`` (what ``feature_maps`` accepts)."""
    return [n for n, _ in model.named_modules() if n]


def feature_maps(model: Any, image: Any, layer: str) -> np.ndarray:
    """The output of submodule ``layer`` (a dotted name, e.g. ``'relu1'`` or ``'features.0'``) when
    ``model`` sees one image.

    ``image`` is (C, H, W) or (1, C, H, W). Runs in eval mode without recording a graph (the
    model's mode is restored). Returns the layer's output for that image without the batch
    axis: (channels, H', W') for conv-like layers, (features,) for linear ones.

    Example::

        maps = feature_maps(model, x_test[0], "conv1")      # (30, 24, 24)
    """
    x = _array(image, "feature_maps")
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"feature_maps: expected one image (C, H, W) or (1, C, H, W), got shape {x.shape}.")
    mods = dict(model.named_modules())
    if layer not in mods or not layer:
        names = ", ".join(layer_names(model))
        raise ValueError(f"feature_maps: model {type(model).__name__} has no layer {layer!r}; its layers are: {names}.")
    captured: list = []
    handle = mods[layer].register_forward_hook(lambda m, i, o: captured.append(o))
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            model(Tensor(x))
    finally:
        handle.remove()
        model.train(was_training)
    if not captured:
        raise ValueError(f"feature_maps: layer {layer!r} was not called by {type(model).__name__}'s forward.")
    out = _array(captured[0], "feature_maps")
    return out[0]


def plot_feature_maps(
    model: Any,
    image: Any,
    layer: str,
    path: str | os.PathLike | None = None,
    max_maps: int = 64,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Any:
    """Draw the input image and the feature maps of ``layer`` for it; returns the Figure.

    Conv-like outputs (C, H, W) become a grid of the first ``max_maps`` channels, each with its
    own colour scale (its min..max is printed when the map is constant); flat outputs (F,) a bar
    chart (with ``class_names`` as tick labels when F matches). See :func:`feature_maps`.

    Example::

        plot_feature_maps(model, x_test[0], "relu1", "relu1.png")
    """
    x = _array(image, "plot_feature_maps")
    maps = feature_maps(model, x, layer)
    img = x[0] if x.ndim == 4 else x
    if maps.ndim == 3:
        n = min(len(maps), max_maps)
        ncols = min(n, max(4, math.ceil(math.sqrt(n * 1.5))))
        nrows = math.ceil(n / ncols)
        fig = _figure((1.3 * ncols + 2.6, 1.3 * nrows + 0.9))
        gs = fig.add_gridspec(nrows, ncols + 2, width_ratios=[2, 0.3] + [1] * ncols)
        ax_in = fig.add_subplot(gs[:, 0] if nrows < 3 else gs[0:2, 0])
        for j in range(n):
            ax = fig.add_subplot(gs[j // ncols, 2 + j % ncols])
            m = maps[j]
            ax.imshow(m, cmap="viridis", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{j}" + (" (const)" if m.max() == m.min() else ""), fontsize=7, pad=2)
        shown = f"first {n} of {len(maps)}" if n < len(maps) else f"{n}"
        head = f"{layer}: {shown} feature maps {maps.shape[1]}x{maps.shape[2]} (each on its own colour scale)"
    elif maps.ndim == 1:
        fig = _figure((10, 3.2))
        gs = fig.add_gridspec(1, 2, width_ratios=[1, 4])
        ax_in = fig.add_subplot(gs[0, 0])
        ax = fig.add_subplot(gs[0, 1])
        ax.bar(np.arange(len(maps)), maps, color="tab:blue")
        if class_names is not None and len(class_names) == len(maps):
            ax.set_xticks(np.arange(len(maps)), class_names, rotation=45, ha="right", fontsize=8)
        ax.set(xlabel="unit", ylabel="activation")
        ax.grid(alpha=0.3, axis="y")
        head = f"{layer}: {len(maps)} activations"
    else:
        raise ValueError(f"plot_feature_maps: layer {layer!r} gives an output of shape {maps.shape}; expected (C, H, W) or (F,).")
    if img.shape[0] in (1, 3):
        shown_img = img[0] if img.shape[0] == 1 else np.moveaxis((img - img.min()) / max(np.ptp(img), 1e-12), 0, -1)
        ax_in.imshow(shown_img, cmap="gray", interpolation="nearest")
    else:
        ax_in.imshow(img[0], cmap="gray", interpolation="nearest")
    ax_in.set_title(f"input {tuple(img.shape)}", fontsize=9)
    ax_in.set_xticks([])
    ax_in.set_yticks([])
    fig.suptitle(title or head, fontsize=10)
    _save(fig, path)
    return fig
