"""Which conv algorithm the kernels use: a process-wide setting, like ``torch.backends`` flags.

``"auto"`` (the default) picks per conv by its geometry (:func:`tinygrad_cnn.kernels.conv_rows.by_rows`,
:func:`tinygrad_cnn.kernels.im2col.two_pass`); the others force one algorithm, for tests and for
benchmarks that compare them. Every setting computes the same convolution.

>>> import tinygrad_cnn.kernels as K
>>> K.get_conv_algorithm()
('auto', 'auto')
>>> with K.conv_algorithm("im2col", unfold="one-copy"):
...     K.get_conv_algorithm()
('im2col', 'one-copy')
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

ALGORITHMS = ("auto", "im2col", "rows")
UNFOLDS = ("auto", "one-copy", "two-pass")

# Read by the kernels on every conv (plain module globals: one attribute load).
current_algorithm = "auto"
current_unfold = "auto"


def set_conv_algorithm(algorithm: str = "auto", unfold: str = "auto") -> None:
    """Choose how convolutions (forward, input and weight gradients) are computed.

    ``algorithm``: ``"auto"`` (by the conv's geometry), ``"im2col"`` (always im2col columns and
    GEMMs), or ``"rows"`` (the width-unfolded input and one GEMM per output row wherever that
    algorithm applies: groups 1 and dilation 1 along the height; other convs use im2col).

    ``unfold``: how im2col builds its columns (also for :func:`tinygrad_cnn.im2col`): ``"auto"``,
    ``"one-copy"`` (one copy from a strided view of all windows) or ``"two-pass"`` (through the
    width-unfolded input wherever the stride along the height is 1).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"set_conv_algorithm: algorithm must be one of {ALGORITHMS}, got {algorithm!r}.")
    if unfold not in UNFOLDS:
        raise ValueError(f"set_conv_algorithm: unfold must be one of {UNFOLDS}, got {unfold!r}.")
    global current_algorithm, current_unfold
    current_algorithm, current_unfold = algorithm, unfold


def get_conv_algorithm() -> tuple[str, str]:
    """The current ``(algorithm, unfold)`` setting (see :func:`set_conv_algorithm`)."""
    return current_algorithm, current_unfold


@contextlib.contextmanager
def conv_algorithm(algorithm: str = "auto", unfold: str = "auto") -> Iterator[None]:
    """:func:`set_conv_algorithm` for the duration of a ``with`` block; the previous setting is
    restored on exit."""
    before = get_conv_algorithm()
    set_conv_algorithm(algorithm, unfold)
    try:
        yield
    finally:
        set_conv_algorithm(*before)
