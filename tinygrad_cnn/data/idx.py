"""Reading and writing IDX files, the format of MNIST and Fashion-MNIST (raw or gzip-compressed).

An IDX file is a 4-byte magic number ``00 00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the data in C order, big-endian. Every check here names the file and the
problem, so a truncated download or a file of the wrong kind never turns into a silently
wrong array or a numpy traceback.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_bytes

# The IDX type codes and their (big-endian) element types.
_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("="): code for code, dt in _TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXError(ValueError):
    """An IDX file is truncated, corrupt or not an IDX file at all (the message names the file)."""


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"read_idx: {path}: no such file.") from None
    if raw[:2] != _GZIP_MAGIC:
        return raw
    try:
        return gzip.decompress(raw)
    except EOFError:
        raise IDXError(
            f"read_idx: {path}: the gzip stream ends early (the file is truncated, e.g. an interrupted "
            "download). Delete it and get the file again."
        ) from None
    except (gzip.BadGzipFile, zlib.error, OSError) as e:
        raise IDXError(f"read_idx: {path}: corrupt gzip data ({e}). Delete it and get the file again.") from None


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw: detected from its first bytes) into an array.

    Returns a writable array in native byte order whose shape is the file's dimensions, e.g.
    (60000, 28, 28) uint8 for MNIST training images and (60000,) uint8 for its labels.
    Raises :class:`IDXError` naming the file when the magic number, the type code, the header
    or the data size is wrong.

    Example::

        images = read_idx("train-images-idx3-ubyte.gz")   # (60000, 28, 28) uint8
    """
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4:
        raise IDXError(f"read_idx: {path}: only {len(buf)} byte(s), too short for the 4-byte IDX magic number (truncated or empty file).")
    if buf[0] != 0 or buf[1] != 0:
        raise IDXError(
            f"read_idx: {path}: not an IDX file: the magic number must start with two zero bytes, got "
            f"{buf[:4].hex(' ')}."
        )
    code, ndim = buf[2], buf[3]
    if code not in _TYPES:
        known = ", ".join(f"0x{c:02X} ({t.name})" for c, t in _TYPES.items())
        raise IDXError(f"read_idx: {path}: unknown IDX type code 0x{code:02X}; valid codes are {known}.")
    if ndim == 0:
        raise IDXError(f"read_idx: {path}: the magic number declares 0 dimensions; an IDX file has at least one.")
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise IDXError(
            f"read_idx: {path}: truncated header: {ndim} dimension(s) need {header} header bytes, the file has {len(buf)}."
        )
    dims = tuple(int(d) for d in np.frombuffer(buf, dtype=">u4", count=ndim, offset=4))
    dtype = _TYPES[code]
    expected = math.prod(dims) * dtype.itemsize  # Python ints: a product of four uint32 can overflow int64
    found = len(buf) - header
    if found < expected:
        raise IDXError(
            f"read_idx: {path}: truncated data: dimensions {dims} of {dtype.name} need {expected} bytes, "
            f"found {found}. The file is incomplete; delete it and get it again."
        )
    if found > expected:
        raise IDXError(
            f"read_idx: {path}: {found - expected} unexpected trailing byte(s) after the {expected} bytes that "
            f"dimensions {dims} of {dtype.name} need: the header does not match the data (corrupt file)."
        )
    arr = np.frombuffer(buf, dtype=dtype, count=expected // dtype.itemsize, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))  # a writable native-order copy


def write_idx(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Write ``array`` (uint8, int8, int16, int32, float32 or float64; at least 1-D) as an IDX file.

    A path ending in ``.gz`` is gzip-compressed. The file is written atomically (a temporary file
    in the same folder, then renamed), so a crash never leaves a half-written file.

    Example::

        write_idx("labels-idx1-ubyte.gz", np.array([3, 1, 4], dtype=np.uint8))
    """
    path = Path(path)
    a = np.asarray(array)
    native = a.dtype.newbyteorder("=")
    if native not in _CODES:
        raise TypeError(
            f"write_idx: dtype {a.dtype} has no IDX type code; use one of uint8, int8, int16, int32, float32, float64."
        )
    if a.ndim == 0 or a.ndim > 255:
        raise ValueError(f"write_idx: an IDX array needs 1 to 255 dimensions, got shape {a.shape}.")
    code = _CODES[native]
    body = bytes([0, 0, code, a.ndim]) + np.asarray(a.shape, dtype=">u4").tobytes()
    body += np.ascontiguousarray(a, dtype=_TYPES[code]).tobytes()
    if path.suffix == ".gz":
        body = gzip.compress(body, mtime=0)
    atomic_write_bytes(path, body)
    return path


