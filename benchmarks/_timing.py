"""Shared timing helper: time two callables alternately (A B A B ...) in one process and report
each one's median time and the median of the per-pair ratios A/B.

Alternating matters on a shared, noisy machine: a burst of load hits both sides of a pair, so
the per-pair ratio stays meaningful even when the absolute times move.

Example::

    from _timing import alternate
    r = alternate(lambda: ours(), lambda: theirs(), pairs=15)
    print(f"{r.a_ms:.2f} ms vs {r.b_ms:.2f} ms, ratio {r.ratio:.2f}")
"""
from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class PairResult:
    a_ms: float  # median time of A, milliseconds
    b_ms: float  # median time of B (nan when B is None)
    ratio: float  # median of per-pair A/B (nan when B is None)
    ratios: list[float]


def timed(fn: Callable[[], object], number: int = 1) -> float:
    """Seconds one call of ``fn`` takes (the mean over ``number`` calls in a row)."""
    t = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t) / number


SETTLE_MS = 150.0  # longer than OpenBLAS's ~110 ms spin after a threaded GEMM


def settle(fn: Callable[[], object], settle_ms: float) -> None:
    """Call ``fn``, untimed, for ``settle_ms`` milliseconds (not at all for 0).

    Why: PyTorch's OpenMP workers spin for about 13 ms after each parallel region here (libgomp's
    default spin count), and numpy's OpenBLAS worker for about 110 ms of CPU after each threaded
    GEMM (read from /proc/self/task/*/stat). Timed back to back, the next library's threads share
    the cores with those spinners: a two-thread SimpleConvNet conv of ours ran 2.5 ms alone and
    4-5 ms right after PyTorch's, and PyTorch's LeNet conv2 forward ran 24 ms instead of 0.3 ms
    20-50 ms after a numpy GEMM. Settled for longer than both spins (:data:`SETTLE_MS`), each
    library is timed on the machine as it leaves it for itself, as in its own training loop;
    alternating the timed calls still cancels the machine's drift."""
    end = time.perf_counter() + settle_ms / 1e3
    while time.perf_counter() < end:
        fn()


def alternate(
    a: Callable[[], object], b: Callable[[], object] | None, pairs: int = 15, warmup: int = 2, settle_ms: float = 0.0,
    number: int = 1,
) -> PairResult:
    """Time ``a`` and ``b`` alternately ``pairs`` times after ``warmup`` untimed rounds of each.
    ``b`` may be None (then only ``a`` is timed). With ``settle_ms``, each timed call follows
    ``settle_ms`` of untimed calls of the same callable (see :func:`settle`). With ``number``,
    each timing is the mean of that many calls in a row: for calls of a fraction of a
    millisecond, whose single timings also pay for the caches the other side left cold."""

    def measure(fn: Callable[[], object]) -> Callable[[], float]:
        def seconds() -> float:
            settle(fn, settle_ms if b is not None else 0.0)
            return timed(fn, number)

        return seconds

    for _ in range(warmup):
        a()
        if b is not None:
            b()
    return alternate_measures(measure(a), None if b is None else measure(b), pairs)


def alternate_measures(a: Callable[[], float], b: Callable[[], float] | None, pairs: int) -> PairResult:
    """:func:`alternate` over two measurements, each a callable that returns seconds: how the
    sides are timed is theirs (in another process, say); only the alternation is done here."""
    ta, tb, ratios = [], [], []
    for i in range(pairs):
        if b is None:
            ta.append(a())
            continue
        # Swap the order every other pair so neither side always runs on a warmer cache.
        if i % 2:
            x = b()
            y = a()
        else:
            y = a()
            x = b()
        ta.append(y)
        tb.append(x)
        ratios.append(y / x)
    nan = float("nan")
    return PairResult(
        a_ms=statistics.median(ta) * 1e3,
        b_ms=statistics.median(tb) * 1e3 if tb else nan,
        ratio=statistics.median(ratios) if ratios else nan,
        ratios=ratios,
    )
