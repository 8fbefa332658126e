"""The matplotlib figures that the pictures of :mod:`tinygrad_cnn.viz.plots` and
:mod:`tinygrad_cnn.viz.per_sample` are drawn on, and how they are written to a file."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from ..atomic import atomic_open

__all__ = ["figure", "require_matplotlib", "save"]


def require_matplotlib() -> Any:
    """The ``matplotlib`` module, or an ImportError that says how to install it (the ``viz`` extra)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "the pictures of tinygrad_cnn.viz need matplotlib: pip install matplotlib (or pip install 'tinygrad_cnn[viz]')."
        ) from None
    return matplotlib


def figure(figsize: tuple[float, float], layout: Literal["constrained"] | None = None) -> Any:
    """A new ``matplotlib.figure.Figure`` of ``figsize`` (width, height) inches.

    Why a bare Figure and not pyplot's: no global figure list to leak and no display backend
    needed (it renders with Agg); Jupyter still shows it inline.

    >>> figure((4, 3)).get_size_inches().tolist()
    [4.0, 3.0]
    """
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout)


def save(fig: Any, path: str | os.PathLike | None) -> None:
    """Write ``fig`` to ``path`` atomically, in the format its suffix names (PNG, SVG or PDF; PNG
    without a suffix); nothing for ``path=None``.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(figure((2, 2)), os.path.join(d, "empty.svg"))
    ...     os.listdir(d)
    ['empty.svg']
    """
    if path is None:
        return
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    with atomic_open(path) as f:
        fig.savefig(f, format=fmt, dpi=110, bbox_inches="tight")
