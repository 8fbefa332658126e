"""Sliding-window geometry shared by the conv and pool kernels and by the layers: argument pairs,
the :class:`Window` a kernel slides over the last two axes, and the output-size formulas.

>>> conv_output_size(28, kernel=5, stride=1, padding=0, dilation=1)
24
>>> pool_output_size(5, 2, 2, 1, 1, ceil_mode=True)
3
"""
from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any, NamedTuple

import numpy as np


def pair(op: str, name: str, v: Any) -> tuple[int, int]:
    """``v`` (an int or a pair of ints) as a pair; TypeError naming ``op`` otherwise.

    >>> pair("conv2d", "stride", 2)
    (2, 2)
    """
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return int(v), int(v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in v):
        return int(v[0]), int(v[1])
    raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {v!r}.")


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """Output length of a convolution along one axis: ``(size + 2p - d*(k-1) - 1) // s + 1``."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def pool_output_size(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output length; with ceil_mode a last window starting in the right/bottom
    padding (or past the input) is dropped."""
    num = size + 2 * p - d * (k - 1) - 1
    o = (num + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


class Window(NamedTuple):
    """Sliding-window geometry over the last two axes: kernel, stride, padding, dilation and the
    output grid ``out`` = (OH, OW). Window (oh, ow) covers padded rows ``oh*sh + i*dh``."""

    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    out: tuple[int, int]

    def padded_hw(self, h: int, w: int) -> tuple[int, int]:
        # ceil_mode (pooling) or an explicit out grid (conv_transpose) may reach past H + 2p.
        need = [(o - 1) * s + d * (k - 1) + 1 for o, s, d, k in zip(self.out, self.stride, self.dilation, self.kernel)]
        return max(h + 2 * self.padding[0], need[0]), max(w + 2 * self.padding[1], need[1])

    def positions(self) -> Iterator[tuple[int, tuple[slice, slice]]]:
        """(kernel position k = i*KW + j, (row slice, column slice) of the padded input)."""
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = self.kernel, self.stride, self.dilation, self.out
        for i in range(kh):
            rows = slice(i * dh, i * dh + (oh - 1) * sh + 1, sh)
            for j in range(kw):
                yield i * kw + j, (rows, slice(j * dw, j * dw + (ow - 1) * sw + 1, sw))

    def first_writes(self) -> tuple[frozenset[int], tuple[int, int] | None]:
        """How a scatter through the windows, kernel position by position in row-major order, can
        write its buffer: the positions k whose slots no earlier position touches (their values
        may be assigned, not added, and need no cleared buffer), and (a, b) when the slots of those
        positions are exactly the padded rows [0, a) x columns [0, b), so only the rest needs
        clearing first (None: clear everything).

        >>> Window((3, 3), (2, 2), (0, 0), (1, 1), (11, 11)).first_writes()
        (frozenset({0, 1, 3, 4}), (22, 22))
        """
        axes = [_first_offsets(k, s, d, o) for k, s, d, o in zip(self.kernel, self.stride, self.dilation, self.out)]
        (rows, row_end), (cols, col_end) = axes
        fresh = frozenset(i * self.kernel[1] + j for i in rows for j in cols)
        return fresh, (row_end, col_end) if row_end is not None and col_end is not None else None


@functools.lru_cache(maxsize=256)
def _first_offsets(k: int, s: int, d: int, o: int) -> tuple[list[int], int | None]:
    """Along one axis: the kernel offsets i whose slots i*d + s*t (t < o) meet no earlier
    offset's, and the end a when those slots are exactly [0, a) (else None)."""
    fresh = [i for i in range(k) if all((i - j) * d % s or (i - j) * d // s >= o for j in range(i))]
    slots = {i * d + s * t for i in fresh for t in range(o)}
    return fresh, (len(slots) if slots == set(range(len(slots))) else None)
