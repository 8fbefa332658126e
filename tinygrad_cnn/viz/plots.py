"""Pictures of what a network learned (matplotlib, Agg backend: no display needed).

- :func:`plot_training_curves`: loss and accuracy over training, from a metrics log.
- :func:`plot_filters` / :func:`plot_filters_before_after`: a conv layer's filters as a grid,
  every input channel shown, each filter normalized on its own or all on one scale.
- :func:`plot_feature_maps`: the output of any layer (chosen by its dotted name) for one image,
  on one colour scale, optionally after an activation.
- :func:`plot_scores`: a model's class scores for one image, the classes named.

Every ``plot_*`` returns the matplotlib Figure and, given ``path``, also writes it there
atomically (PNG, SVG or PDF by the file's suffix). Figures are plain ``matplotlib.figure.Figure``
objects (no pyplot state, no display needed). Needs the ``viz`` extra: ``pip install matplotlib``.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from ..autograd.grad_mode import no_grad
from ..tensor import Tensor
from ..train.metrics import batch_losses, read_metrics
from .figures import figure, require_matplotlib, save


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
    (read by :func:`tinygrad_cnn.train.metrics.read_metrics`) or its records. Drawn: the loss of
    every batch (``"batch"`` records, read by :func:`tinygrad_cnn.train.metrics.batch_losses`) as
    a thin line with its moving average, the logged windows' accuracy (``"step"`` records) the
    same way, and per epoch (``"epoch"`` records) train and test loss and accuracy with markers,
    so a one-epoch run still shows curves. The best test accuracy is starred and named in the
    legend, which matplotlib places inside the axes where it covers the least data.

    Example::

        plot_training_curves("runs/demo/metrics.jsonl", "curves.png")
    """
    recs = read_metrics(history) if isinstance(history, (str, os.PathLike)) else list(history)
    steps = [r for r in recs if r.get("type") == "step"]
    epochs = [r for r in recs if r.get("type") == "epoch"]
    bx, by = (np.array(v, float) for v in batch_losses(recs))
    if not steps and not epochs and not len(bx):
        raise ValueError("plot_training_curves: the history has no 'batch', 'step' or 'epoch' records to plot.")
    fig = figure((11, 4))
    ax_l, ax_a = fig.subplots(1, 2)

    def thin_and_smooth(ax: Any, x: np.ndarray, y: np.ndarray, thin: str, smooth: str) -> None:
        k = max(1, len(y) // 30)
        if k == 1:  # too few points to smooth: the line itself is the curve
            ax.plot(x, y, color="tab:blue", alpha=0.8, lw=1.0, label=thin, zorder=2)
            return
        ax.plot(x, y, color="tab:blue", alpha=0.3, lw=0.6, label=thin, zorder=1)
        ax.plot(x, _smooth(y, k), color="tab:blue", lw=1.5, label=smooth, zorder=2)

    if len(bx):
        thin_and_smooth(ax_l, bx, by, "train loss (each batch)", "train loss, moving average")
    elif steps:  # a log from before batch records: the logged windows stand in for the batches
        x = np.array([r["progress"] for r in steps], float)
        thin_and_smooth(ax_l, x, np.array([r["loss"] for r in steps], float), "train loss (logged batches)", "train loss, moving average")
    if steps:
        x = np.array([r["progress"] for r in steps], float)
        acc = np.array([r["acc"] for r in steps], float)
        thin_and_smooth(ax_a, x, acc, "train accuracy (logged batches)", "train accuracy, moving average")
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
                ax.plot(xs, ys, "o-" if "test" in key else "s--", color=color, lw=1.5, ms=5, label=label, zorder=3)
        xs, ys = series("test_acc")
        if len(xs):
            best = int(np.argmax(ys))
            ax_a.plot(xs[best], ys[best], "*", color="tab:red", ms=12, zorder=4, ls="none",
                      label=f"best test accuracy {ys[best]:.4f} (epoch {xs[best]:g})")
    ax_l.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    ax_a.set(xlabel="epoch", ylabel="accuracy", title="accuracy")
    for ax in (ax_l, ax_a):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, path)
    return fig


# ---- filters ----------------------------------------------------------------------------------
_FILTER_SCALES = ("per_filter", "shared")


def _check_scale(scale: str, what: str) -> None:
    if scale not in _FILTER_SCALES:
        raise ValueError(f"{what}: scale must be 'per_filter' (each filter to its own min..max) or 'shared' (one scale, "
                         f"symmetric about zero, for all filters), got {scale!r}.")


def _grid_shape(o: int, c: int, kh: int, kw: int, gap: int, ncols: int | None) -> tuple[int, int]:
    tile_w = c * kw + (c - 1) * gap
    if ncols is None:
        ncols = max(1, min(o, math.ceil(math.sqrt(o * (kh + gap) / (tile_w + 2 * gap)))))
    return math.ceil(o / ncols), ncols


def filter_grid(weight: Any, ncols: int | None = None, gap: int = 1, scale: str = "per_filter") -> np.ndarray:
    """Arrange conv filters (O, C, KH, KW) in one 2-D mosaic for display.

    ``scale="per_filter"`` (the default) scales each filter to [0, 1] by its own min and max (over
    all its channels, so channels of one filter stay comparable; a constant filter becomes 0.5);
    ``scale="shared"`` keeps the weights themselves, for one colour scale over all filters. Each
    filter is a tile of its C channels side by side (``gap`` apart); tiles fill a grid of
    ``ncols`` columns (default: about square), ``gap`` apart vertically and ``2 * gap``
    horizontally. Gaps and unused cells are NaN. Returns a float64 mosaic of shape
    (rows*(KH+gap) - gap, ncols*(C*KW + (C-1)*gap + 2*gap) - 2*gap).

    Example::

        m = filter_grid(model.conv1.weight)     # 30 filters 1x5x5 -> a 5x6 grid
    """
    w = _array(weight, "filter_grid").astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"filter_grid: expected conv weights (out_channels, in_channels, kh, kw), got shape {w.shape}.")
    _check_scale(scale, "filter_grid")
    if isinstance(gap, bool) or not isinstance(gap, int) or gap < 0:
        raise ValueError(f"filter_grid: gap must be an int >= 0 (pixels between tiles), got {gap!r}.")
    o, c, kh, kw = w.shape
    if scale == "per_filter":
        flat = w.reshape(o, -1)
        lo, hi = flat.min(1), flat.max(1)
        span = np.where(hi > lo, hi - lo, 1.0)
        norm = (w - lo[:, None, None, None]) / span[:, None, None, None]
        norm[hi == lo] = 0.5  # a constant filter carries no pattern: draw it mid-grey
    else:
        norm = w
    nrows, ncols = _grid_shape(o, c, kh, kw, gap, ncols)
    tile_w = c * kw + (c - 1) * gap
    cell_w = tile_w + 2 * gap  # a wider gap between filters than between one filter's channels
    out = np.full((nrows * (kh + gap) - gap, ncols * cell_w - 2 * gap), np.nan)
    for i in range(o):
        r, col = divmod(i, ncols)
        y0, x0 = r * (kh + gap), col * cell_w
        for ch in range(c):
            xs = x0 + ch * (kw + gap)
            out[y0 : y0 + kh, xs : xs + kw] = norm[i, ch]
    return out


def _show_filters(ax: Any, w: np.ndarray, ncols: int | None, scale: str, vlim: float, title: str) -> Any:
    # Drawn without gaps; thin white lines between filters (and thinner grey ones between one
    # filter's channels) separate them without outweighing 5x5 tiles the way pixel-wide gaps do.
    o, c, kh, kw = w.shape
    nrows, ncols = _grid_shape(o, c, kh, kw, 0, ncols)
    mosaic = filter_grid(w, ncols, gap=0, scale=scale)
    vmin, vmax = (0.0, 1.0) if scale == "per_filter" else (-vlim, vlim)
    cmap = require_matplotlib().colormaps["gray"].with_extremes(bad="white")
    im = ax.imshow(np.ma.masked_invalid(mosaic), cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    h, wd = mosaic.shape
    ax.vlines([col * c * kw - 0.5 for col in range(1, ncols)], -0.5, h - 0.5, colors="white", lw=1.5)
    ax.hlines([r * kh - 0.5 for r in range(1, nrows)], -0.5, wd - 0.5, colors="white", lw=1.5)
    if c > 1:  # per filter, so no line crosses the unused cells of the last row
        cells = [(divmod(i, ncols), ch) for i in range(o) for ch in range(1, c)]
        x = [col * c * kw + ch * kw - 0.5 for (_, col), ch in cells]
        y0 = np.array([r * kh - 0.5 for (r, _), _ in cells])
        ax.vlines(x, y0, y0 + kh, colors="0.6", lw=0.6)
    ax.set_title(title, fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    for sp in ax.spines.values():
        sp.set_color("0.7")
    return im


def _filter_title(w: np.ndarray, label: str, scale: str) -> str:
    o, c, kh, kw = w.shape
    chans = "1 input channel" if c == 1 else f"{c} input channels side by side"
    how = "each filter scaled to its own min..max" if scale == "per_filter" else "one scale for all filters, mid-grey = 0"
    return f"{label}{o} filters {kh}x{kw}, {chans}\n({how})"


def _filter_colorbar(fig: Any, im: Any, axes: Any, scale: str) -> None:
    if scale == "shared":
        fig.colorbar(im, ax=axes, shrink=0.8, label="weight")


def plot_filters(
    weight: Any, path: str | os.PathLike | None = None, title: str | None = None, ncols: int | None = None, scale: str = "per_filter"
) -> Any:
    """Draw conv filters (O, C, KH, KW) as a grid; returns the Figure.

    ``scale="per_filter"`` (the default) stretches each filter to its own min..max, so filters
    with small weights show their pattern; ``scale="shared"`` draws all filters on one grey scale
    symmetric about zero (mid-grey = 0) with a colour bar, so magnitudes compare. See
    :func:`filter_grid`.

    Example::

        plot_filters(model.conv1.weight, "filters.png")
        plot_filters(model.conv1.weight, "filters_shared.png", scale="shared")
    """
    w = _array(weight, "plot_filters")
    if w.ndim != 4:
        raise ValueError(f"plot_filters: expected conv weights (out_channels, in_channels, kh, kw), got shape {w.shape}.")
    _check_scale(scale, "plot_filters")
    o, c, kh, kw = w.shape
    nrows, nc = _grid_shape(o, c, kh, kw, 0, ncols)
    h, wd = nrows * kh, nc * c * kw
    bar_w = 1.0 if scale == "shared" else 0.0  # room for the colour bar
    fig = figure((max(3.0, min(12.0, wd / 6)) + bar_w, max(2.5, min(12.0, h / 6)) + 0.6), layout="constrained")
    ax = fig.subplots()
    im = _show_filters(ax, w, ncols, scale, float(np.abs(w).max()) or 1.0, title or _filter_title(w, "", scale))
    _filter_colorbar(fig, im, ax, scale)
    save(fig, path)
    return fig


def plot_filters_before_after(
    before: Any, after: Any, path: str | os.PathLike | None = None, ncols: int | None = None, scale: str = "per_filter"
) -> Any:
    """The same conv layer's filters before and after training, side by side; returns the Figure.

    ``before`` and ``after`` are weights of the same shape (O, C, KH, KW), e.g. a copy taken
    before training and ``model.conv1.weight`` after. ``scale`` as in :func:`plot_filters`
    (default ``"per_filter"``); with ``"shared"`` both grids use one scale, so growth of the
    weights during training shows.

    Example::

        plot_filters_before_after(before, model.conv1.weight, "filters.png")
    """
    b, a = _array(before, "plot_filters_before_after"), _array(after, "plot_filters_before_after")
    if b.shape != a.shape:
        raise ValueError(f"plot_filters_before_after: before has shape {b.shape} but after has {a.shape}; pass the same layer's weights.")
    if b.ndim != 4:
        raise ValueError(f"plot_filters_before_after: expected conv weights (out_channels, in_channels, kh, kw), got shape {b.shape}.")
    _check_scale(scale, "plot_filters_before_after")
    o, c, kh, kw = b.shape
    nrows, nc = _grid_shape(o, c, kh, kw, 0, ncols)
    h, wd = nrows * kh, nc * c * kw
    bar_w = 1.0 if scale == "shared" else 0.0
    fig = figure((max(6.0, min(16.0, wd / 3)) + bar_w, max(2.5, min(10.0, h / 6)) + 0.8), layout="constrained")
    axes = fig.subplots(1, 2)
    vlim = float(max(np.abs(b).max(), np.abs(a).max())) or 1.0
    _show_filters(axes[0], b, ncols, scale, vlim, "before training")
    im = _show_filters(axes[1], a, ncols, scale, vlim, "after training")
    _filter_colorbar(fig, im, axes, scale)
    fig.suptitle(_filter_title(b, "first conv layer: ", scale), fontsize=10)
    save(fig, path)
    return fig


# ---- feature maps -----------------------------------------------------------------------------
def layer_names(model: Any) -> list[str]:
    """The dotted names of every submodule of ``model`` (what ``feature_maps`` accepts)."""
    return [n for n, _ in model.named_modules() if n]


def _one_image(image: Any, what: str) -> np.ndarray:
    x = _array(image, what)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"{what}: expected one image (C, H, W) or (1, C, H, W), got shape {x.shape}.")
    return x


def _run(model: Any, x: np.ndarray, layer: str | None, what: str) -> np.ndarray:
    """The output of ``layer`` (None: of the model) for the batch of one ``x``, batch axis dropped."""
    captured: list = []
    handle = None
    if layer is not None:
        mods = dict(model.named_modules())
        if layer not in mods or not layer:
            names = ", ".join(layer_names(model))
            raise ValueError(f"{what}: model {type(model).__name__} has no layer {layer!r}; its layers are: {names}.")
        handle = mods[layer].register_forward_hook(lambda m, i, o: captured.append(o))
    was_training = getattr(model, "training", False)
    model.eval()
    try:
        with no_grad():
            out = model(Tensor(x))
    finally:
        if handle is not None:
            handle.remove()
        model.train(was_training)
    if layer is None:
        captured.append(out)
    if not captured:
        raise ValueError(f"{what}: layer {layer!r} was not called by {type(model).__name__}'s forward.")
    return _array(captured[0], what)[0]


def feature_maps(model: Any, image: Any, layer: str) -> np.ndarray:
    """The output of submodule ``layer`` (a dotted name, e.g. ``'relu1'`` or ``'features.0'``) when
    ``model`` sees one image.

    ``image`` is (C, H, W) or (1, C, H, W). Runs in eval mode without recording a graph (the
    model's mode is restored). Returns the layer's output for that image without the batch
    axis: (channels, H', W') for conv-like layers, (features,) for linear ones.

    Example::

        maps = feature_maps(model, x_test[0], "conv1")      # (30, 24, 24)
    """
    return _run(model, _one_image(image, "feature_maps"), layer, "feature_maps")


_ACTIVATIONS = ("relu", "sigmoid", "tanh")


def _activate(maps: np.ndarray, activation: str | Callable[[Tensor], Any] | None) -> tuple[np.ndarray, str]:
    if activation is None:
        return maps, ""
    from ..nn import functional as F

    if isinstance(activation, str):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"plot_feature_maps: activation must be one of {', '.join(map(repr, _ACTIVATIONS))}, a function "
                             f"of a Tensor, or None; got {activation!r}.")
        fn, name = getattr(F, activation), activation
    elif callable(activation):
        fn, name = activation, getattr(activation, "__name__", type(activation).__name__)
    else:
        raise TypeError(f"plot_feature_maps: activation must be a name ({', '.join(_ACTIVATIONS)}), a function or None, "
                        f"got {type(activation).__name__}.")
    with no_grad():
        out = fn(Tensor(maps))
    return _array(out, "plot_feature_maps (activation)"), name


def map_colour_scale(values: Any) -> tuple[str, float, float]:
    """The colour map and limits ``(cmap, vmin, vmax)`` :func:`plot_feature_maps` uses for ``values``.

    Values of both signs get the diverging ``"RdBu_r"`` symmetric about zero (blue negative,
    white zero, red positive); non-negative ones ``"Reds"`` from 0, non-positive ones
    ``"Blues_r"`` up to 0, so white is zero in all three.

    Example::

        map_colour_scale(np.array([-1.0, 3.0]))      # ('RdBu_r', -3.0, 3.0)
    """
    v = np.asarray(values, np.float64)
    lo, hi = float(np.nanmin(v)), float(np.nanmax(v))
    if lo < 0 < hi:
        m = max(-lo, hi)
        return "RdBu_r", -m, m
    if hi > 0:
        return "Reds", 0.0, hi
    if lo < 0:
        return "Blues_r", lo, 0.0
    return "Reds", 0.0, 1.0  # all zero (a dead layer): white throughout


def _show_input(ax: Any, img: np.ndarray) -> None:
    if img.shape[0] == 3:
        ax.imshow(np.moveaxis((img - img.min()) / max(np.ptp(img), 1e-12), 0, -1), interpolation="nearest")
    else:
        ax.imshow(img[0], cmap="gray", interpolation="nearest")
    ax.set_title(f"input {tuple(img.shape)}", fontsize=8, fontweight="bold")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_feature_maps(
    model: Any,
    image: Any,
    layer: str,
    path: str | os.PathLike | None = None,
    max_maps: int = 64,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
    activation: str | Callable[[Tensor], Any] | None = None,
) -> Any:
    """Draw the input image and the feature maps of ``layer`` for it; returns the Figure.

    Conv-like outputs (C, H, W) become a grid of the first ``max_maps`` channels, the input image
    in its first cell, all maps on one colour scale with a colour bar (see
    :func:`map_colour_scale`: diverging and symmetric about zero when the values have both signs),
    so magnitudes and the zero level compare across maps. Flat outputs (F,) become a bar chart
    (with ``class_names`` as tick labels when F matches; for a model's class scores see
    :func:`plot_scores`). ``activation`` (``"relu"``, ``"sigmoid"``, ``"tanh"`` or a function of a
    Tensor) is applied to the layer's output first, e.g. ``layer="conv1", activation="relu"``
    shows what the ReLU after conv1 passes on. See :func:`feature_maps`.

    Example::

        plot_feature_maps(model, x_test[0], "conv1", "conv1.png")
        plot_feature_maps(model, x_test[0], "conv1", "conv1_relu.png", activation="relu")
    """
    x = _one_image(image, "plot_feature_maps")
    maps, act = _activate(feature_maps(model, x, layer), activation)
    img = x[0]
    what = f"{layer} after {act}" if act else layer
    if maps.ndim == 3:
        n = min(len(maps), max_maps)
        cells = n + 1
        ncols = min(cells, max(4, math.ceil(math.sqrt(cells * 1.5))))
        nrows = math.ceil(cells / ncols)
        fig = figure((1.25 * ncols + 1.2, 1.25 * nrows + 0.8), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        _show_input(axes[0], img)
        cmap, vmin, vmax = map_colour_scale(maps[:n])
        im = None
        for j in range(n):
            ax = axes[j + 1]
            im = ax.imshow(maps[j], cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for sp in ax.spines.values():
                sp.set_color("0.7")
            ax.set_title(f"{j}", fontsize=7, pad=2)
        for ax in axes[cells:]:
            ax.set_axis_off()
        fig.colorbar(im, ax=list(axes), shrink=min(0.9, 0.35 + 0.12 * nrows), label=f"{what} output", pad=0.02)
        shown = f"first {n} of {len(maps)}" if n < len(maps) else f"{n}"
        head = f"{what}: {shown} feature maps {maps.shape[1]}x{maps.shape[2]} on one colour scale (white = 0)"
    elif maps.ndim == 1:
        fig = figure((10, 3.2), layout="constrained")
        ax_in, ax = fig.subplots(1, 2, width_ratios=[1, 4])
        _show_input(ax_in, img)
        ax.bar(np.arange(len(maps)), maps, color="tab:blue")
        named = class_names is not None and len(class_names) == len(maps)
        if class_names is not None and named:
            ax.set_xticks(np.arange(len(maps)), list(class_names), rotation=45, ha="right", fontsize=8)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set(xlabel="class" if named else "feature", ylabel=f"{what} output")
        ax.grid(alpha=0.3, axis="y")
        head = f"{what}: {len(maps)} outputs"
    else:
        raise ValueError(f"plot_feature_maps: layer {layer!r} gives an output of shape {maps.shape}; expected (C, H, W) or (F,).")
    fig.suptitle(title or head, fontsize=10)
    save(fig, path)
    return fig


# ---- class scores -----------------------------------------------------------------------------
def plot_scores(
    model: Any,
    image: Any,
    path: str | os.PathLike | None = None,
    class_names: Sequence[str] | None = None,
    label: int | str | None = None,
    title: str | None = None,
) -> Any:
    """The model's class scores (logits) for one image as horizontal bars beside the image;
    returns the Figure.

    ``model`` maps (1, C, H, W) to logits (1, K); ``image`` is (C, H, W) or (1, C, H, W).
    ``class_names`` (K names, e.g. ``FashionMNIST.classes``) label the bars, else the class
    indices do. The predicted class is drawn in blue; ``label`` (the true class, an index or a
    name), when given and different, in orange. The softmax probability of the prediction is in
    the title.

    Example::

        plot_scores(model, x_test[0], "scores.png", class_names=FashionMNIST.classes, label=int(y_test[0]))
    """
    x = _one_image(image, "plot_scores")
    logits = _run(model, x, None, "plot_scores").astype(np.float64)
    if logits.ndim != 1:
        raise ValueError(f"plot_scores: the model's output for one image has shape {logits.shape}; expected class scores (K,).")
    k = len(logits)
    if class_names is not None and len(class_names) != k:
        raise ValueError(f"plot_scores: {len(class_names)} class_names for {k} class scores; pass one name per class.")
    names = [str(c) for c in class_names] if class_names is not None else [str(i) for i in range(k)]
    true = None
    if label is not None:
        if isinstance(label, str):
            if label not in names:
                raise ValueError(f"plot_scores: label {label!r} is not one of the class names {names}.")
            true = names.index(label)
        else:
            true = int(label)
            if not 0 <= true < k:
                raise ValueError(f"plot_scores: label {label} is out of range for {k} classes (0..{k - 1}).")
    pred = int(np.argmax(logits))
    p = np.exp(logits - np.max(logits))
    p /= p.sum()
    colors = ["0.75"] * k
    if true is not None:
        colors[true] = "tab:orange"
    colors[pred] = "tab:blue"
    fig = figure((8, max(3.0, 0.3 * k + 1.0)), layout="constrained")
    ax_in, ax = fig.subplots(1, 2, width_ratios=[1, 2.2])
    _show_input(ax_in, x[0])
    ax.barh(np.arange(k), logits, color=colors)
    ax.set_yticks(np.arange(k), names, fontsize=8)
    ax.invert_yaxis()  # class 0 at the top, in reading order
    ax.axvline(0, color="0.3", lw=0.8)
    ax.set(xlabel="logit", ylabel="class")
    ax.grid(alpha=0.3, axis="x")
    verdict = f"predicted {names[pred]} (p = {p[pred]:.2f})"
    if true is not None:
        verdict += ", correct" if true == pred else f"; true class {names[true]}"
    fig.suptitle(title or f"class scores: {verdict}", fontsize=10)
    save(fig, path)
    return fig
