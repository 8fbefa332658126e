"""Intra-op parallelism for the conv, pool and matmul kernels: cut the work (images, output
rows, channel planes) into contiguous chunks and run them on a small pool of threads; numpy
releases the GIL inside its copies, ufuncs and GEMMs.

Why: numpy runs im2col, col2im and the layout passes on one core while PyTorch runs them on all;
and the small per-image GEMMs of SimpleConvNet barely gain from OpenBLAS's threads. So every
kernel of ours runs its chunks here, with OpenBLAS pinned to one thread (process-wide, restored
afterwards), each chunk's GEMMs on their own core. Never on OpenBLAS's own threads: after each
threaded GEMM its worker spins for ~110 ms, holding a core that our next chunks (and any other
library) then share. Measured on 2 cores: SimpleConvNet conv forward+backward 4.5 ms serial,
1.9-2.5 ms in chunks; max_pool2d 3x3/2 on 8x96x55x55 forward+backward 0.5-0.6x its unblocked
serial time. What does not pay: numpy calls shorter than ~20 us on two threads (every GIL
hand-off then costs a thread wake-up, 10-60 us on these VMs), hence chunks of at least ~1 ms.

``set_num_threads(1)`` turns the pool off. The default is the number of usable cores, capped by
``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS`` when they are set. Where no OpenBLAS library is
found in the process (numpy built on another BLAS), chunks that call BLAS run serially (that
BLAS threads them as it likes); the pools' passes, which call none, still run on the threads.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

# A chunk must be worth more than a thread hand-off (a wake-up: 10-60 us on these VMs): ~1 ms of work.
MIN_PARALLEL_FLOPS = 2e7
CHUNKS_PER_THREAD = 2
# Pooling passes run over blocks of about 1 MB (a core's L2 here): max_pool2d 3x3/2 on
# 8x96x55x55 forward+backward took 0.49-0.57x the unblocked time on 2 threads; blocks of 128 or
# 256 KB were slower than none (per-block numpy call overhead and GIL hand-offs).
BLOCK_BYTES = 1 << 20
# A memory pass (a strided copy or add) costs about as long per element as 4 GEMM flops.
PASS_FLOPS_PER_ELEMENT = 4


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
_workers: _Workers | None = None
_lock = threading.Lock()  # one parallel region at a time (OpenBLAS's thread count is process-wide)


def _c_spin_lock() -> tuple[Callable[[int], int], Callable[[int], int], Callable[[int, int], int]] | None:
    """(lock, unlock, init) of the C library's POSIX spin locks, called by address, or None where
    there are none (macOS, Windows). ctypes releases the GIL while a C function runs."""
    try:
        libc = ctypes.CDLL(None)
        fns = libc.pthread_spin_lock, libc.pthread_spin_unlock, libc.pthread_spin_init
    except (AttributeError, OSError, TypeError):
        return None
    for f in fns:
        f.restype = ctypes.c_int
    fns[0].argtypes = fns[1].argtypes = [ctypes.c_void_p]
    fns[2].argtypes = [ctypes.c_void_p, ctypes.c_int]
    return fns


_SPIN = _c_spin_lock()


class _SpinDone:
    """A worker's "chunk work finished" flag: ``arm`` before waking the worker, ``set`` by the
    worker, ``wait`` by the caller until set (which leaves it unarmed again).

    Why a spin lock: the caller, having finished its own chunks, usually waits a few to a few
    hundred microseconds for the worker. Asleep on a lock, it needs a wake-up once the worker is
    done, 20-50 us on these VMs (a sleeping vCPU). Spinning in C costs no wake-up and, with ctypes
    releasing the GIL, does not hold up the worker (a Python spin would hold the GIL it needs): a
    region of two trivial chunks took 15 us instead of 52. The wait is bounded by the worker's
    own chunk. Unlocked by the worker, not by the caller that locked it: glibc's and musl's spin
    locks are a bare int that any thread may store 0 into."""

    def __init__(self) -> None:
        self.cell = ctypes.c_int(0)  # kept alive here: the C functions get its address
        self.addr = ctypes.addressof(self.cell)
        self.lock, self.unlock, init = _SPIN
        init(self.addr, 0)

    def arm(self) -> None:
        self.lock(self.addr)

    def set(self) -> None:
        self.unlock(self.addr)

    def wait(self) -> None:
        self.lock(self.addr)
        self.unlock(self.addr)


class _LockDone:
    """:class:`_SpinDone` on a lock, where the C library has no POSIX spin locks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def arm(self) -> None:
        self.lock.acquire()

    def set(self) -> None:
        self.lock.release()

    def wait(self) -> None:
        self.lock.acquire()
        self.lock.release()


class _Workers:
    """``n`` persistent daemon threads, each woken by a lock of its own and answering on a
    :class:`_SpinDone` flag that the caller waits on by spinning (:class:`_LockDone` without spin locks).

    Why not ``concurrent.futures.ThreadPoolExecutor``: its submit + wait round trip (futures, a
    queue, condition variables) cost ~80 us here, on top of the wake-ups themselves; a round trip
    over two bare locks costs just the two wake-ups, 13-60 us depending on the VM's mood, and with
    the spinning caller just the worker's. (SimpleConvNet conv and the pools ran ~3% faster with
    these workers than with the executor, in one process, and the conv another ~3% faster with
    the spinning caller.) The worker itself sleeps between jobs: a Python thread cannot spin
    without the GIL, and one spinning in C would hold a core between regions, which other work
    (and other libraries) need."""

    def __init__(self, n: int) -> None:
        self.job: Callable[[], None] | None = None
        self.slots = []
        flag = _LockDone if _SPIN is None else _SpinDone  # chosen once per pool
        for i in range(n):
            go, done = threading.Lock(), flag()
            go.acquire()
            threading.Thread(target=self._serve, args=(go, done), name=f"tinygrad_cnn-{i}", daemon=True).start()
            self.slots.append((go, done))

    def _serve(self, go: threading.Lock, done: _SpinDone | _LockDone) -> None:
        np.seterr(all="ignore")  # chunks compute IEEE results without warnings, as ops do (autograd.grad_mode.ieee_context)
        while True:
            go.acquire()
            job = self.job
            if job is None:  # closed
                return
            try:
                job()
            finally:
                job = None  # hold no buffers while idle (see run)
                done.set()

    def run(self, job: Callable[[], None], n: int) -> None:
        """Run ``job`` (which must not raise) on ``n`` workers and the calling thread; return when all are done."""
        self.job = job
        for go, done in self.slots[:n]:
            done.arm()
            go.release()
        try:
            job()
        finally:  # never return while a worker still writes into shared buffers
            for _, done in self.slots[:n]:
                done.wait()
            # Drop the job: it holds the op's buffers, which would otherwise stay allocated until
            # the next parallel region. The workers read it only after `go`.
            self.job = None

    def close(self) -> None:
        self.job = None
        for go, _ in self.slots:
            go.release()


def _reset_after_fork() -> None:
    # A forked child has none of the parent's worker threads, and the lock may have been held
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


def get_num_threads() -> int:
    """The number of threads the conv and pool ops may use (see :func:`set_num_threads`).

    >>> get_num_threads() >= 1
    True
    """
    return _num_threads


def _find_openblas() -> list[tuple[Callable[[], int], Callable[[int], None]]]:
    """(get, set) thread-count functions of every OpenBLAS loaded in this process (numpy's)."""
    import numpy  # noqa: F401  (loads numpy's BLAS, so it shows up in the memory map)

    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(maxsplit=5)[5].strip() for line in f if line.count(" ") >= 5 and "openblas" in line.rsplit("/", 1)[-1]}
    except OSError:
        return []
    found = []
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
            get = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
            set_ = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
            if get is not None and set_ is not None:
                get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                found.append((get, set_))
                break
    return found


_blas: list | None = None


def _blas_libs() -> list:
    global _blas
    if _blas is None:
        _blas = _find_openblas()
    return _blas


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
    BLAS, where no OpenBLAS is found), else up to ``per_thread`` (default ``CHUNKS_PER_THREAD``)
    per thread, each worth at least ``MIN_PARALLEL_FLOPS / 2``.

    >>> plan(100, flops=1e5)                # too little work to share
    [(0, 100)]
    """
    if _num_threads < 2 or _lock.locked() or (blas and not _blas_libs()):
        return [(0, n)]
    per_thread = CHUNKS_PER_THREAD if per_thread is None else per_thread
    return chunks(n, min(n, _num_threads * per_thread, int(2 * flops // MIN_PARALLEL_FLOPS) + 1))


def blocks(n: int, elements: int, passes: int, itemsize: int) -> list[tuple[int, int]]:
    """Chunks of ``range(n)`` for ``passes`` memory-bound passes over ``elements`` numbers (the
    pooling ops): about ``BLOCK_BYTES`` each, so one block stays in a core's cache through all its
    passes, and at least one per thread when that is worth the hand-offs. (Only the pooling ops
    share out memory passes: the convs' im2col and col2im passes ran no faster shared, AlexNet
    conv2's being bound by memory bandwidth, or slower, LeNet's 0.1-0.8 ms ones costing no more
    than a thread hand-off.)

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
    calls no BLAS (the pools' passes): then it runs on the threads even where numpy's BLAS is not
    OpenBLAS, and OpenBLAS is left alone.

    The calling thread works too, and each thread takes the next chunk when it finishes one: a
    core shared with another busy thread (another library's spinning OpenMP workers, say) then
    does less of the work instead of holding the others up. While the chunks run, OpenBLAS is
    pinned to one thread, also when there is only one chunk: each chunk's GEMMs run on their own
    core (two threads calling a multi-threaded OpenBLAS GEMM at once would serialise on its
    lock), and OpenBLAS's own worker is never woken, which would then spin for ~110 ms, taking
    a core from the next op's chunks (a training step ran ~15% faster without that spinning).

    >>> out = np.zeros(10)
    >>> def fill(a, b):
    ...     out[a:b] = a
    ...     return b - a
    >>> parallel_chunks(fill, chunks(10, 3)), out.tolist()
    ([3, 3, 4], [0.0, 0.0, 0.0, 3.0, 3.0, 3.0, 6.0, 6.0, 6.0, 6.0])
    """
    threads = min(_num_threads, len(parts))
    if (blas and not _blas_libs()) or not _lock.acquire(blocking=False):  # nested or concurrent call: serial
        return [fn(a, b) for a, b in parts]
    global _workers
    try:
        saved = [(set_, get()) for get, set_ in _blas_libs()] if blas else []
        for set_, _ in saved:
            set_(1)
        try:
            if threads < 2:
                return [fn(a, b) for a, b in parts]
            if _workers is None:
                _workers = _Workers(_num_threads - 1)
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
            for set_, old in saved:
                set_(old)
    finally:
        _lock.release()
