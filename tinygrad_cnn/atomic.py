"""Atomic file writes: everything tinygrad_cnn writes (checkpoints, downloads, pictures, logs)
goes through :func:`atomic_open`, so a crash or an error never leaves a partial file and never
destroys the previous one. A writer killed mid-write (SIGKILL, power loss) cannot clean up; the
next write into the same folder removes its temporary file."""
from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, so orphaned temporary files are left alone
    fcntl = None  # type: ignore[assignment]

# mkstemp's names: ".<target name>.<8 random characters>.part"
_PART_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")


def default_file_mode() -> int:
    """The permission bits ``open()`` would give a new file (0o666 less the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _new_part(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path``, locked while its writer lives: an unlocked one is an orphan."""
    while True:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        if os.fstat(fd).st_nlink > 0:
            return fd, tmp
        os.close(fd)  # another writer removed it as an orphan before we locked it: take a new name


def remove_orphaned_parts(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files of writers that died mid-write in ``folder`` (those no live
    process holds locked); returns them. Files of writers still at work are left alone."""
    if fcntl is None:
        return []
    try:
        parts = [p for p in Path(folder).iterdir() if _PART_RE.match(p.name)]
    except OSError:
        return []
    return [p for p in parts if _remove_if_unlocked(p)]


def _remove_if_unlocked(p: Path) -> bool:
    try:
        fd = os.open(p, os.O_RDONLY)
    except OSError:
        return False  # already gone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if os.fstat(fd).st_ino != os.stat(p).st_ino:
            return False  # renamed into place meanwhile; the name now belongs to another file
        p.unlink()
        return True
    except OSError:
        return False  # locked by a live writer, or gone
    finally:
        os.close(fd)


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path`` for writing. When the ``with`` block ends normally the
    file is flushed to disk, given the usual permissions and renamed over ``path``; when it raises,
    the temporary file is deleted and ``path`` is left as it was. Temporary files that killed
    writers left in the folder are deleted afterwards.

    Example::

        with atomic_open("weights.npz") as f:
            np.savez(f, w=w)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_part(path)
    held = os.dup(fd)  # a duplicate shares the lock and keeps it until the rename is done
    try:
        with os.fdopen(fd, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())  # mkstemp makes 0600 files; ours are as readable as any other
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        os.close(held)
    remove_orphaned_parts(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path) as f:
        f.write(data)
