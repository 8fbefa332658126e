"""A picture of per-example gradient norms (:func:`tinygrad_cnn.per_sample.per_sample_grad_norms`):
their distribution per layer and, optionally, the images whose gradients are largest."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..tensor import Tensor
from .figures import figure, save

__all__ = ["plot_per_sample_grad_norms"]


def plot_per_sample_grad_norms(
    norms: Mapping[str, Any],
    path: str | os.PathLike | None = None,
    images: Any = None,
    labels: Sequence[str] | None = None,
    top: int = 8,
    bins: int = 30,
) -> Any:
    """Histograms of per-example gradient norms, one panel per layer (log-scaled norms, so
    layers of very different scales fit), plus ``'total'``; with ``images`` (N, C, H, W) a row of
    the ``top`` examples with the largest total norm, titled with their norm (and ``labels[i]``).
    Returns the matplotlib Figure; writes it to ``path`` when given.

    Example::

        norms = per_sample_grad_norms(model, x, y)
        plot_per_sample_grad_norms(norms, "norms.png", images=x, labels=[classes[int(t)] for t in y])
    """
    keys = [k for k in norms if k != "total"] + (["total"] if "total" in norms else [])
    if not keys:
        raise ValueError("plot_per_sample_grad_norms: norms is empty; pass the dict per_sample_grad_norms returns.")
    data = {k: np.asarray(norms[k], dtype=np.float64).reshape(-1) for k in keys}
    n = len(data[keys[0]])
    if any(len(v) != n for v in data.values()):
        raise ValueError("plot_per_sample_grad_norms: every entry of norms must hold one norm per example (the same N).")
    ncols = min(len(keys), 4)
    nrows = -(-len(keys) // ncols)
    show = images is not None
    if show:
        imgs = images.numpy() if isinstance(images, Tensor) else np.asarray(images)
        if imgs.ndim != 4 or imgs.shape[0] != n:
            raise ValueError(f"plot_per_sample_grad_norms: images must be (N, C, H, W) with N = {n}, got shape {imgs.shape}.")
        top = max(1, min(top, n))
    fig = figure((3.2 * ncols, 2.6 * nrows + (2.2 if show else 0.0)))
    grid = fig.add_gridspec(nrows + (1 if show else 0), max(ncols, top if show else 1))
    span = max(ncols, top if show else 1)
    per = span // ncols
    for i, k in enumerate(keys):
        r, c = divmod(i, ncols)
        ax = fig.add_subplot(grid[r, c * per:(c + 1) * per])
        v = data[k]
        positive = v[v > 0]
        if positive.size:
            wide = positive.max() > 10 * positive.min()  # log-spaced bins only when the norms span decades
            edges = np.geomspace(positive.min(), positive.max() * 1.0001, bins + 1) if wide else bins
            ax.hist(positive, bins=edges, color="tab:blue" if k != "total" else "tab:red")
            if wide:
                ax.set_xscale("log")
        ax.set_title(f"{k}: median {np.median(v):.3g}", fontsize=9)
        ax.set_xlabel("per-example gradient norm", fontsize=8)
        ax.tick_params(labelsize=7)
    if show:
        order = np.argsort(data["total"] if "total" in data else data[keys[0]])[::-1][:top]
        for j, idx in enumerate(order):
            ax = fig.add_subplot(grid[nrows, j])
            img = imgs[idx]
            ax.imshow(img[0] if img.shape[0] == 1 else np.moveaxis(img, 0, -1), cmap="gray")
            name = f"{labels[idx]}\n" if labels is not None else ""
            ax.set_title(f"{name}#{idx}: {data['total' if 'total' in data else keys[0]][idx]:.3g}", fontsize=7)
            ax.axis("off")
    fig.subplots_adjust(hspace=0.9 if show else 0.5, wspace=0.35)
    fig.suptitle(f"Per-example gradient norms ({n} examples)", fontsize=10)
    save(fig, path)
    return fig
