"""Intra-op parallelism for the conv, pool and matmul kernels: cut the work (images, output
rows, channel planes) into contiguous chunks and run them on a small pool of threads; numpy
releases the GIL inside its copies, ufuncs and GEMMs.

Why: numpy runs im2col, col2im and the layout passes on one core, and small per-image GEMMs
barely gain from the BLAS's own threads. So every kernel runs its chunks here, with the BLAS
limited to one thread while they run (through ``threadpoolctl``, restored afterwards), each
chunk's GEMMs on their own core. Never on OpenBLAS's own threads: after a threaded GEMM its
workers keep spinning for a while, holding cores that our next chunks (and any other library)
then share. Chunks are at least ``MIN_PARALLEL_FLOPS`` of work, since a shorter one costs less
than the thread hand-off it needs.

The workers and the caller hand jobs over through ``threading`` locks and events only
(:class:`Workers`).

``set_num_threads(1)`` turns the pool off. The default is the number of usable cores, capped by
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` when they are set. Where ``threadpoolctl`` finds
no BLAS whose thread count it can limit, chunks that call BLAS run serially (that BLAS threads
them as it likes); the pools' passes, which call none, still run on the threads.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

# The smallest piece of work worth a thread hand-off (a thread wake-up).
MIN_PARALLEL_FLOPS = 2e7
CHUNKS_PER_THREAD = 2
# Pooling passes run over blocks of about a core's L2 cache, so each block stays in cache through
# all its passes; smaller blocks cost more in per-call overhead than they save.
BLOCK_BYTES = 1 << 20
# A memory pass (a strided copy or add) costs about as long per element as 4 GEMM flops.
PASS_FLOPS_PER_ELEMENT = 4
# OpenBLAS runs a GEMM with m*n*k up to 65536 * GEMM_MULTITHREAD_THRESHOLD (4 by default) on the
# calling thread (interface/gemm.c), so smaller products never wake its workers and gain nothing
# from the pool (kernels/matmul.py).
ONE_THREAD_MNK = 65536 * 4


def _default_threads() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n = os.cpu_count() or 1
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        v = os.environ.get(var, "")
        if v.isdigit() and int(v) > 0:
            n = min(n, int(v))
    return max(1, min(n, 8))


_num_threads = _default_threads()
_workers: Workers | None = None
_lock = threading.Lock()  # one parallel region at a time (the BLAS thread count is process-wide)


class Workers:
    """``n`` persistent daemon threads that run one job at a time alongside the calling thread.

    Each worker sleeps on a lock of its own (``go``), released by the caller to wake it (a
    ``threading.Lock`` may be released by any thread). A woken worker joins the job only while
    the caller still accepts helpers (``open``, read and written under ``state``); joining clears
    its ``done`` event, which it sets when it leaves the job. The caller, done with its own share,
    first closes the job (no worker joins after that), then waits for the ``done`` events of the
    workers that joined. Waiting takes nothing, so whatever interrupts the caller (a
    KeyboardInterrupt between waking the workers and waiting for them, say), it can simply wait
    again: it never waits for a worker that did not join and never returns while one still writes
    into the job's buffers.

    The caller sleeps on the event rather than polling it: a Python poll holds the GIL between
    looks, and a worker running many short numpy calls needs the GIL after each one, so polling
    starves the very worker it waits for.

    Why not ``concurrent.futures.ThreadPoolExecutor``: its futures and work queue cost more per
    region than the thread wake-ups themselves. The workers sleep between jobs: a Python thread
    cannot spin without the GIL."""

    def __init__(self, n: int) -> None:
        self.state = threading.Lock()
        self.job: Callable[[], None] | None = None
        self.open = False  # whether woken workers may still join the job
        self.closed = False
        self.joined: list[int] = []  # the workers in the current job
        self.go = [threading.Lock() for _ in range(n)]
        self.done = [threading.Event() for _ in range(n)]
        for go in self.go:
            go.acquire()
        for i in range(n):
            threading.Thread(target=self._serve, args=(i,), name=f"tinygrad_cnn-{i}", daemon=True).start()

    def _serve(self, i: int) -> None:
        np.seterr(all="ignore")  # chunks compute IEEE results without warnings, as ops do (autograd.grad_mode.ieee_context)
        go, done, state = self.go[i], self.done[i], self.state
        while True:
            go.acquire()
            with state:
                if self.closed:
                    return
                if not self.open:  # woken for a job that has ended
                    continue
                done.clear()
                self.joined.append(i)
                job = self.job
            try:
                job()  # type: ignore[misc]
            finally:
                job = None  # hold no buffers while idle
                done.set()

    def run(self, job: Callable[[], None], n: int) -> None:
        """Run ``job`` (which must not raise) on up to ``n`` workers and the calling thread; return
        when every worker that joined has left it."""
        try:
            with self.state:
                self.job, self.open = job, True
            for go in self.go[:n]:
                if go.locked():  # else the worker has a wake-up pending already
                    go.release()
            job()
        finally:
            self._finish()

    def _finish(self) -> None:
        # Closing the job and waiting for its workers can be repeated, so an interrupt anywhere in
        # them only starts them over; the first one is raised once they have completed.
        interrupted: BaseException | None = None
        while True:
            try:
                self._close_and_wait()
                break
            except BaseException as e:  # noqa: B036  (keep waiting: a worker may still write)
                interrupted = interrupted or e
        if interrupted is not None:
            raise interrupted

    def _close_and_wait(self) -> None:
        with self.state:
            self.open = False  # workers not yet in the job stay out of it
            joined = list(self.joined)
        for i in joined:
            done = self.done[i]
            done.wait()
        with self.state:
            self.joined = []
        # Drop the job: it holds the op's buffers, which would otherwise stay allocated until the
        # next parallel region.
        self.job = None

    def close(self) -> None:
        with self.state:
            self.closed = True
        for go in self.go:
            if go.locked():
                go.release()


def _reset_after_fork() -> None:
    # A forked child has none of the parent's worker threads, and the locks may have been held
    # by one of them: start from scratch (the workers are made again on first use).
    global _workers, _lock
    _workers, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def set_num_threads(n: int) -> None:
    """Use up to ``n`` threads inside the conv and pool ops (1: run them serially). As
    ``torch.set_num_threads``; numpy's own BLAS threads are left alone outside these ops.

    >>> before = get_num_threads()
    >>> set_num_threads(1)                  # single-core timings, say
    >>> get_num_threads()
    1
    >>> set_num_threads(before)
    """
    global _num_threads, _workers
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"set_num_threads: n must be a positive int, got {n!r}.")
    with _lock:
        _num_threads = n
        if _workers is not None:
            _workers.close()
            _workers = None


@contextlib.contextmanager
def thresholds(
    min_parallel_flops: float | None = None, block_bytes: int | None = None, one_thread_mnk: int | None = None
) -> Iterator[None]:
    """Inside the block, use other work thresholds than ``MIN_PARALLEL_FLOPS``, ``BLOCK_BYTES`` and
    ``ONE_THREAD_MNK`` (``None`` keeps one); the previous values are restored on exit. Tiny
    thresholds send even small inputs through the threaded paths, which is how the tests check
    them; results never depend on the thresholds, only the speed does.

    >>> with thresholds(min_parallel_flops=1e-9):
    ...     len(plan(8, flops=1.0)) > 1 or get_num_threads() == 1 or not blas_libraries()
    True
    """
    global MIN_PARALLEL_FLOPS, BLOCK_BYTES, ONE_THREAD_MNK
    before = MIN_PARALLEL_FLOPS, BLOCK_BYTES, ONE_THREAD_MNK
    if min_parallel_flops is not None:
        MIN_PARALLEL_FLOPS = min_parallel_flops
    if block_bytes is not None:
        BLOCK_BYTES = block_bytes
    if one_thread_mnk is not None:
        ONE_THREAD_MNK = one_thread_mnk
    try:
        yield
    finally:
        MIN_PARALLEL_FLOPS, BLOCK_BYTES, ONE_THREAD_MNK = before


def workers() -> Workers | None:
    """The pool's worker threads (``None`` until the first parallel region, and after
    :func:`set_num_threads` until the next one)."""
    return _workers


def get_num_threads() -> int:
    """The number of threads the conv and pool ops may use (see :func:`set_num_threads`).

    >>> get_num_threads() >= 1
    True
    """
    return _num_threads


_blas: Any = None  # threadpoolctl's controller of the process's BLAS libraries, made on first use


def _blas_controller() -> Any:
    """A ``threadpoolctl.ThreadpoolController`` restricted to the BLAS libraries loaded in this
    process (numpy's), made once: finding them walks the process's loaded libraries."""
    global _blas
    if _blas is None:
        import numpy  # noqa: F401  (loads numpy's BLAS, so the controller finds it)
        from threadpoolctl import ThreadpoolController

        _blas = ThreadpoolController().select(user_api="blas")
    return _blas


def blas_libraries() -> list:
    """threadpoolctl's controllers of the BLAS libraries whose thread count the pool limits
    (empty where it finds none)."""
    return _blas_controller().lib_controllers


@contextlib.contextmanager
def _one_blas_thread(libs: Any) -> Any:
    """Each BLAS library on one thread inside the block, its own count restored after. Through
    threadpoolctl's library controllers directly: ``ThreadpoolController.limit`` re-reads every
    library's description on each call, several times the cost of a small conv's region."""
    before = [(lib, lib.get_num_threads()) for lib in libs]
    for lib, n in before:
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in before:
            if n != 1:
                lib.set_num_threads(n)


def chunks(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into ``parts`` contiguous, nearly equal (start, stop) pieces.

    >>> chunks(10, 3)
    [(0, 3), (3, 6), (6, 10)]
    """
    parts = max(1, min(parts, n))
    bounds = [n * i // parts for i in range(parts + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def plan(n: int, flops: float, per_thread: int | None = None, blas: bool = True) -> list[tuple[int, int]]:
    """The chunks of ``range(n)`` (images, rows, ...) that work worth ``flops`` runs as: one
    when it is too small to share (or inside another parallel region, or, for work that calls
    BLAS, where no BLAS thread count can be limited), else up to ``per_thread`` (default
    ``CHUNKS_PER_THREAD``) per thread, each worth at least ``MIN_PARALLEL_FLOPS / 2``.

    >>> plan(100, flops=1e5)                # too little work to share
    [(0, 100)]
    """
    if _num_threads < 2 or _lock.locked() or (blas and not blas_libraries()):
        return [(0, n)]
    per_thread = CHUNKS_PER_THREAD if per_thread is None else per_thread
    return chunks(n, min(n, _num_threads * per_thread, int(2 * flops // MIN_PARALLEL_FLOPS) + 1))


def blocks(n: int, elements: int, passes: int, itemsize: int) -> list[tuple[int, int]]:
    """Chunks of ``range(n)`` for ``passes`` memory-bound passes over ``elements`` numbers (the
    pooling kernels): about ``BLOCK_BYTES`` each, so one block stays in a core's cache through
    all its passes, and at least one per thread when that is worth the hand-offs. (Only the
    pooling kernels share out memory passes: the convs' im2col and col2im passes are bound by
    memory bandwidth or too short to pay for a hand-off.)

    >>> blocks(8, elements=1000, passes=9, itemsize=4)     # 4 KB in all: one block
    [(0, 8)]
    """
    parts = min(n, max(1, elements * itemsize // BLOCK_BYTES))
    if plan(n, elements * passes * PASS_FLOPS_PER_ELEMENT, blas=False) != [(0, n)]:  # worth sharing
        parts = max(parts, min(n, _num_threads))
    return chunks(n, parts)


def parallel_chunks(fn: Callable[[int, int], Any], parts: list[tuple[int, int]], blas: bool = True) -> list[Any]:
    """``[fn(start, stop) for start, stop in parts]``, the chunks run concurrently on the pool.
    ``fn`` must touch only its own chunk of any shared output. ``blas=False`` promises that ``fn``
    calls no BLAS (the pools' passes): then it runs on the threads even where no BLAS thread
    count can be limited, and the BLAS is left alone.

    The calling thread works too, and each thread takes the next chunk when it finishes one: a
    core shared with another busy thread then does less of the work instead of holding the
    others up. While the chunks run, the BLAS is limited to one thread, also when there is only
    one chunk: each chunk's GEMMs run on their own core (two threads calling a multi-threaded
    OpenBLAS GEMM at once would serialise on its lock), and OpenBLAS's own workers are never
    woken, which would then spin, taking a core from the next op's chunks.

    ``fn`` should run little Python between its numpy calls: each return from numpy takes the
    GIL back, and a thread that finds the other one holding it sleeps until woken, which costs
    more than most numpy calls here. Operands that do not depend on the chunk are best made
    before the call (as :func:`tinygrad_cnn.kernels.conv_rows.input_grad_rows` does).

    >>> out = np.zeros(10)
    >>> def fill(a, b):
    ...     out[a:b] = a
    ...     return b - a
    >>> parallel_chunks(fill, chunks(10, 3)), out.tolist()
    ([3, 3, 4], [0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 6.0, 6.0, 6.0, 6.0])
    """
    libs = blas_libraries() if blas else ()
    if (blas and not libs) or not _lock.acquire(blocking=False):  # nested or concurrent call: serial
        return [fn(a, b) for a, b in parts]
    global _workers
    try:
        with _one_blas_thread(libs):
            threads = min(_num_threads, len(parts))
            if threads < 2:
                return [fn(a, b) for a, b in parts]
            if _workers is None:
                _workers = Workers(_num_threads - 1)
            results: list[Any] = [None] * len(parts)
            errors: list[BaseException] = []
            tickets = itertools.count()  # next() is atomic under the GIL

            def work() -> None:
                for i in tickets:
                    if i >= len(parts) or errors:
                        return
                    try:
                        results[i] = fn(*parts[i])
                    except BaseException as e:  # re-raised in the calling thread
                        errors.append(e)

            _workers.run(work, threads - 1)
            if errors:
                raise errors[0]
            return results
    finally:
        _lock.release()


