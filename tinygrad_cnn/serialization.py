"""Checkpoints: ``save(obj, path)`` / ``load(path)`` for state dicts, in NumPy's ``.npz`` format.

``obj`` is a nesting of dicts (str or int keys), lists and tuples whose leaves are arrays,
Tensors, or Python ``int``/``float``/``bool``/``str``/``None`` - e.g. a model's and an optimizer's
state dicts together::

    save({"model": model.state_dict(), "optim": opt.state_dict(), "epoch": 3}, "ckpt.npz")
    ck = load("ckpt.npz")
    model.load_state_dict(ck["model"]); opt.load_state_dict(ck["optim"])

Safety and robustness:

- Loading uses ``allow_pickle=False``: a weight file can hold only plain numeric arrays and a JSON
  manifest, never code.
- Writing is atomic: the archive is written to a temporary file in the target's directory, synced,
  then renamed over the target (``os.replace``), so a crash leaves the previous file intact; the
  temporary file of a writer killed mid-write is removed by the next save into that folder.
- Each array is stored under its slash-joined path (``model/conv1.weight``, readable with plain
  ``numpy.load``); the manifest entry ``__tinygrad_cnn__`` records the tree, the Python values and
  every array's shape and dtype. A truncated, corrupted, foreign or mismatched file raises
  :class:`CheckpointError` (a ValueError) that names the file and the problem; zip's CRC-32 of
  every entry catches flipped bytes in the data.

``load`` returns Tensors where Tensors were saved (as ``torch.load``), numpy arrays where arrays
were saved, dicts, lists and tuples as saved.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable
from typing import Any

import numpy as np

from .atomic import atomic_open
from .tensor import Tensor, from_numpy

__all__ = ["CheckpointError", "load", "save"]

MANIFEST = "__tinygrad_cnn__"
FORMAT = "tinygrad_cnn-checkpoint"
VERSION = 1
_MAX_DEPTH = 64


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupted, foreign or does not match its manifest (the
    message names the file and the problem)."""


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray], depth: int) -> Any:
    where = path or "<root>"
    if depth > _MAX_DEPTH:
        raise ValueError(f"save: the object is nested more than {_MAX_DEPTH} levels deep at {where!r}.")
    kind = "array"
    if isinstance(obj, Tensor):
        obj, kind = obj.data, "tensor"
    if isinstance(obj, np.generic):
        obj = np.asarray(obj)
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufc":
            raise TypeError(
                f"save: {where!r} is an array of dtype {obj.dtype}; only numeric and boolean arrays can be saved without pickle."
            )
        name = path or "<root>"
        base, n = name, 1
        while name in arrays or name == MANIFEST:
            n += 1
            name = f"{base}#{n}"
        arrays[name] = obj
        return {kind: name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int, np.integer)):
                raise TypeError(f"save: dict keys must be str or int, got {type(k).__name__} {k!r} at {where!r}.")
            kind = "s" if isinstance(k, str) else "i"
            key = k if kind == "s" else int(k)
            items.append([key, kind, _encode(v, f"{path}/{key}" if path else str(key), arrays, depth + 1)])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, f"{path}/{i}" if path else str(i), arrays, depth + 1) for i, v in enumerate(obj)]}
    hint = " Save its .state_dict() instead." if hasattr(obj, "state_dict") else ""
    raise TypeError(
        f"save: cannot save a {type(obj).__name__} at {where!r}; leaves must be arrays, Tensors, int, float, "
        f"bool, str or None, inside dicts, lists and tuples.{hint}"
    )


def save(obj: Any, path: str | os.PathLike, compressed: bool = False) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of arrays, Tensors and plain values) to ``path`` as
    ``.npz``, atomically. ``compressed=True`` uses zip deflate (smaller, slower).

    Example::

        save({"model": model.state_dict(), "optim": opt.state_dict()}, "ckpt.npz")
    """
    path = os.fspath(path)
    arrays: dict[str, np.ndarray] = {}
    tree = _encode(obj, "", arrays, 0)
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "tree": tree,
        "arrays": {k: [list(a.shape), a.dtype.str] for k, a in arrays.items()},
    }
    arrays[MANIFEST] = np.array(json.dumps(manifest))
    with atomic_open(path) as f:
        # numpy's stubs read **arrays as possibly holding savez's allow_pickle flag (a bool)
        (np.savez_compressed if compressed else np.savez)(f, **arrays)  # type: ignore[arg-type]


def _decode(node: Any, arrays: dict[str, np.ndarray], path: str) -> Any:
    if not isinstance(node, dict) or len(node) != 1:
        raise ValueError(f"manifest node at {path or '<root>'!r} is malformed")
    ((kind, v),) = node.items()
    if kind == "value":
        return v
    if kind == "array":
        return arrays[v]
    if kind == "tensor":
        return from_numpy(arrays[v])
    if kind == "dict":
        out = {}
        for key, kt, child in v:
            k = int(key) if kt == "i" else str(key)
            out[k] = _decode(child, arrays, f"{path}/{k}")
        return out
    if kind in ("list", "tuple"):
        items = [_decode(c, arrays, f"{path}/{i}") for i, c in enumerate(v)]
        return items if kind == "list" else tuple(items)
    raise ValueError(f"manifest node at {path or '<root>'!r} has unknown kind {kind!r}")


def load(path: str | os.PathLike) -> Any:
    """Read a checkpoint written by :func:`save` (with ``allow_pickle=False``). Returns the saved
    tree with numpy arrays at the array leaves. Raises :class:`CheckpointError` naming the file
    when it is not an intact checkpoint.

    Example::

        model.load_state_dict(load("ckpt.npz")["model"])
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file {path!r}.")
    try:
        return _read(path)
    except CheckpointError:
        raise
    except Exception as e:  # damaged bytes can fail anywhere in zipfile, zlib or numpy's header parser
        raise CheckpointError(
            f"load: {path!r} is corrupted ({type(e).__name__}: {e}). Restore it from a copy or use an older checkpoint."
        ) from None


def _read(path: str) -> Any:
    def fail(problem: str) -> CheckpointError:
        return CheckpointError(f"load: {path!r} {problem}")

    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as e:
        # numpy says "pickled data ... allow_pickle" for anything that is not .npy/.npz: never
        # pass that advice on for a weight file (unpickling runs code).
        why = "" if "pickle" in str(e) else f": {e}"
        raise fail(
            f"is not a readable .npz archive (truncated, corrupted, or another format){why}. "
            "Checkpoints are written by tinygrad_cnn.save; they never need allow_pickle."
        ) from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise fail("is a single .npy array, not a tinygrad_cnn checkpoint (.npz written by tinygrad_cnn.save).")
    with archive:
        manifest = _read_manifest(archive, fail)
        arrays = _read_arrays(archive, manifest.get("arrays", {}), fail)
    try:
        return _decode(manifest["tree"], arrays, "")
    except (KeyError, ValueError, TypeError) as e:
        raise fail(f"has a malformed manifest: {e}") from None


def _read_manifest(archive: Any, fail: Callable[[str], CheckpointError]) -> dict:
    names = list(archive.files)
    if MANIFEST not in names:
        raise fail(
            f"is a .npz archive but not a tinygrad_cnn checkpoint (no {MANIFEST!r} manifest; entries: {names[:8]}). "
            "Read plain archives with numpy.load(path, allow_pickle=False)."
        )
    try:
        manifest = json.loads(str(archive[MANIFEST]))
    except Exception as e:  # any failure here means the manifest itself is damaged
        raise fail(f"has an unreadable manifest (truncated or corrupted): {e}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise fail(f"has a {MANIFEST!r} entry that is not a tinygrad_cnn checkpoint manifest.")
    if manifest.get("version") != VERSION:
        raise fail(f"is checkpoint format version {manifest.get('version')!r}; this tinygrad_cnn reads version {VERSION}.")
    missing = sorted(set(manifest.get("arrays", {})) - set(names))
    extra = sorted(set(names) - set(manifest.get("arrays", {})) - {MANIFEST})
    if missing or extra:
        raise fail(f"does not match its manifest: missing entries {missing}, unexpected entries {extra}.")
    return manifest


def _read_arrays(archive: Any, expected: dict, fail: Callable[[str], CheckpointError]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for name, (shape, dtype) in expected.items():
        try:
            a = archive[name]
        except Exception as e:  # a damaged entry fails in zipfile (CRC, compression) or numpy's header parser
            raise fail(f"entry {name!r} could not be read (truncated or corrupted): {type(e).__name__}: {e}") from None
        if list(a.shape) != list(shape) or a.dtype.str != dtype:
            raise fail(
                f"entry {name!r} has shape {a.shape} and dtype {a.dtype}, but the manifest records {tuple(shape)} {np.dtype(dtype)}."
            )
        arrays[name] = a
    return arrays
