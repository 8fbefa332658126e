"""Memory reuse: large scratch buffers that the kernels lend from one call to the next, and
the C library's own reuse of freed memory (:func:`retain_freed_memory`).

Why: the C library takes an allocation above its mmap threshold (32 MiB at most with glibc)
straight from the operating system, whose pages are then mapped one fault per 4 KiB on first
touch, on every call. The im2col columns of a large conv are that big, and filling a fresh
buffer costs several times the copy itself. The workspace keeps such buffers for the next
call; smaller arrays are left to ``np.empty``, whose memory the C library already reuses.

Ownership is explicit: a buffer is either free (held by the workspace alone) or lent out as a
:class:`Lease`, and only the lease gives it back, once, by :meth:`Lease.release` (or at the end
of its ``with`` block). The borrower promises that no view of the array outlives the release.
Nothing depends on reference counts or on when Python frees an array: a lease never released
simply frees its buffer like any array.
"""
from __future__ import annotations

import ctypes
import platform
import threading
from typing import Any

import numpy as np

# glibc's mallopt parameters (malloc.h) and the values set by retain_freed_memory: blocks under
# 32 MiB (the most glibc's own dynamic threshold rises to on 64-bit) come from the heap, and up to
# 256 MiB (the workspace's own cap) of free heap top is kept instead of returned to the system.
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 1 << 25
TRIM_THRESHOLD = 1 << 28
# The environment variable that, set to 0 before import, leaves the C library's settings alone.
RETAIN_ENV_VAR = "TINYGRAD_CNN_RETAIN_FREED_MEMORY"

# Arrays smaller than this are plain np.empty: the C library reuses their memory itself.
MIN_BYTES = 1 << 24
# The free buffers kept for reuse, in bytes at most; beyond it a returned buffer is dropped.
MAX_FREE_BYTES = 1 << 28

_free: list[np.ndarray] = []  # 1-D uint8 buffers that no lease holds
_lock = threading.Lock()


class Lease:
    """An array of the given shape and dtype (``array``, uninitialised) lent from the workspace
    until :meth:`release`; a ``with`` block releases it on exit.

    >>> with Lease((4096, 4096), np.float32) as cols:      # 64 MiB, reused by the next lease
    ...     cols.fill(0)
    ...     total = float(cols.sum())
    >>> total
    0.0
    """

    __slots__ = ("array", "_buffer")

    def __init__(self, shape: tuple[int, ...], dtype: Any) -> None:
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        self._buffer = _take(nbytes) if nbytes >= MIN_BYTES else None
        if self._buffer is None:
            self.array: np.ndarray | None = np.empty(shape, dtype)
        else:
            self.array = self._buffer[:nbytes].view(dtype).reshape(shape)

    @classmethod
    def of(cls, array: np.ndarray) -> Lease:
        """A lease on an array made elsewhere (not from the workspace): ``release`` only drops it."""
        lease = cls.__new__(cls)
        lease.array, lease._buffer = array, None
        return lease

    def release(self) -> None:
        """Give the buffer back to the workspace (a second call does nothing); ``array`` is None after."""
        buffer, self._buffer, self.array = self._buffer, None, None
        if buffer is not None:
            _give(buffer)

    def __enter__(self) -> np.ndarray:
        return self.array  # type: ignore[return-value]

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _take(nbytes: int) -> np.ndarray:
    """The smallest free buffer of at least ``nbytes`` and at most twice that, else a new one."""
    with _lock:
        fits = [(b.nbytes, i) for i, b in enumerate(_free) if nbytes <= b.nbytes <= 2 * nbytes]
        if fits:
            return _free.pop(min(fits)[1])
    return np.empty(nbytes, np.uint8)


def _give(buffer: np.ndarray) -> None:
    with _lock:
        _free.append(buffer)
        # Over the cap, drop the oldest buffers first: sizes in use now were returned last.
        while sum(b.nbytes for b in _free) > MAX_FREE_BYTES and _free:
            _free.pop(0)


def free_bytes() -> int:
    """The bytes the workspace holds for reuse (no lease has them).

    >>> empty_cache(); free_bytes()
    0
    """
    with _lock:
        return sum(b.nbytes for b in _free)


def empty_cache() -> None:
    """Free the buffers kept for reuse (as ``torch.cuda.empty_cache`` does for its allocator);
    leased buffers are unaffected and return to the workspace when released.

    >>> empty_cache()
    """
    with _lock:
        _free.clear()


def retain_freed_memory() -> bool:
    """Have the C library keep freed memory for the next allocation instead of returning it to
    the system; True if set (glibc), False elsewhere (other C libraries are left as they are).

    Why: glibc hands the free top of its heap back to the system once it exceeds its trim
    threshold, and a training step frees its activations and gradients all at once, so the
    next step maps every page of them again, one page fault per 4 KiB written. This sets
    glibc's documented ``mallopt`` thresholds (``M_MMAP_THRESHOLD`` 32 MiB, ``M_TRIM_THRESHOLD``
    256 MiB; the same as the ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` environment
    variables) for the whole process. ``import tinygrad_cnn`` calls it, as NumPy turns on huge
    pages for its arrays, unless the environment variable ``TINYGRAD_CNN_RETAIN_FREED_MEMORY``
    is ``0``. Memory then stays with the process up to those sizes after a peak.

    >>> import platform
    >>> retain_freed_memory() == (platform.libc_ver()[0] == "glibc")
    True
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL("libc.so.6").mallopt
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # Either call alone turns off glibc's dynamic thresholds, so both are set.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
