"""Reading an ONNX file as untrusted input.

- A file that does not parse (truncated, corrupted, not ONNX) raises one :class:`OnnxFileError`
  naming the file.
- Every tensor's size (from its dims and element type) is checked against the bytes actually
  present, in the file or in its external-data file, before any array is allocated.
- External data must live inside the model's folder: an absolute path, a ``..`` that climbs out
  or a symlink that leads out is refused.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["OnnxFileError", "read_model", "tensor_to_array"]


class OnnxFileError(ValueError):
    """An ONNX file that cannot be loaded safely: malformed, truncated, or with tensors whose data
    is missing or lies outside the model's folder."""


# The typed repeated field each element type stores its values in when raw_data is not used.
_FIELDS = {
    TensorProto.FLOAT: "float_data", TensorProto.DOUBLE: "double_data", TensorProto.INT64: "int64_data",
    TensorProto.INT32: "int32_data", TensorProto.INT8: "int32_data", TensorProto.UINT8: "int32_data",
    TensorProto.INT16: "int32_data", TensorProto.UINT16: "int32_data", TensorProto.BOOL: "int32_data",
    TensorProto.FLOAT16: "int32_data", TensorProto.UINT32: "uint64_data", TensorProto.UINT64: "uint64_data",
}


def _itemsize(path: str, t: Any) -> int:
    try:
        return int(np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize)
    except (KeyError, TypeError, ValueError):
        raise OnnxFileError(f"{path}: tensor {t.name!r} has element type {t.data_type}, which cannot be loaded.") from None


def _count(path: str, t: Any) -> int:
    if any(d < 0 for d in t.dims):
        raise OnnxFileError(f"{path}: tensor {t.name!r} has negative dims {list(t.dims)}.")
    return math.prod(int(d) for d in t.dims)


def _inside(path: str, base: str, location: str, name: str) -> str:
    if not location or os.path.isabs(location):
        raise OnnxFileError(
            f"{path}: tensor {name!r} points to external data {location!r}, which is not a path relative to the model's folder."
        )
    root = os.path.realpath(base)
    try:
        full = os.path.realpath(os.path.join(root, location))
        outside = os.path.commonpath([root, full]) != root
    except ValueError:  # an embedded NUL, or paths on different drives
        outside = True
    if outside:
        raise OnnxFileError(
            f"{path}: tensor {name!r} points to external data {location!r} outside the model's folder {root}; "
            "refusing to read it. Keep external data files next to the model."
        )
    return full


def _load_external(path: str, base: str, t: Any) -> None:
    info = {e.key: e.value for e in t.external_data}
    full = _inside(path, base, info.get("location", ""), t.name)
    want = _count(path, t) * _itemsize(path, t)
    try:
        offset = int(info.get("offset", 0))
        length = int(info["length"]) if "length" in info else want
    except ValueError:
        raise OnnxFileError(f"{path}: tensor {t.name!r} has a malformed external-data offset or length: {info}.") from None
    if offset < 0 or length != want:
        raise OnnxFileError(
            f"{path}: tensor {t.name!r} of dims {list(t.dims)} needs {want} bytes but its external data says {length} at offset {offset}."
        )
    if not os.path.isfile(full):
        raise OnnxFileError(f"{path}: the external data file {info.get('location')!r} of tensor {t.name!r} does not exist.")
    if os.path.getsize(full) < offset + want:
        raise OnnxFileError(
            f"{path}: tensor {t.name!r} needs {want} bytes at offset {offset} of {info.get('location')!r}, "
            f"which holds only {os.path.getsize(full)} bytes (truncated?)."
        )
    with open(full, "rb") as f:
        f.seek(offset)
        t.raw_data = f.read(want)
    del t.external_data[:]
    t.data_location = TensorProto.DEFAULT


def _check_present(path: str, t: Any) -> None:
    """The bytes or values a tensor's dims call for are present (checked before numpy allocates)."""
    n = _count(path, t)
    if t.data_type == TensorProto.STRING:
        raise OnnxFileError(f"{path}: tensor {t.name!r} holds strings, which no supported op takes.")
    size = _itemsize(path, t)
    if t.HasField("raw_data"):
        have = len(t.raw_data)
        if have != n * size:
            raise OnnxFileError(f"{path}: tensor {t.name!r} of dims {list(t.dims)} needs {n * size} bytes, the file holds {have}.")
        return
    field = _FIELDS.get(t.data_type)
    have = len(getattr(t, field)) if field else 0
    if have != n:
        raise OnnxFileError(f"{path}: tensor {t.name!r} of dims {list(t.dims)} needs {n} values, the file holds {have}.")


def tensor_to_array(path: str, t: Any) -> np.ndarray:
    """A TensorProto as a numpy array of its own, after checking that its data is all there
    (``path`` names the file in the error). Example: ``tensor_to_array("m.onnx", model.graph.initializer[0])``."""
    _check_present(path, t)
    return np.array(numpy_helper.to_array(t))


def _tensors(model: Any) -> list:
    out = list(model.graph.initializer)
    stack = [model.graph]
    while stack:
        g = stack.pop()
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    out.append(a.t)
                elif a.type == onnx.AttributeProto.GRAPH:
                    stack.append(a.g)
    return out


def read_model(path: str | os.PathLike) -> Any:
    """Parse and check the ONNX file ``path``; external data is read from the model's folder only.
    Returns the ``onnx.ModelProto`` with every tensor's data in place and its size checked.

    Example::

        model = read_model("lenet.onnx")
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OnnxFileError(f"{path}: cannot read the file: {e.strerror or e}.") from None
    try:
        model = onnx.load_model_from_string(data)
    except Exception as e:  # protobuf raises its own DecodeError (and others) on bad bytes
        raise OnnxFileError(f"{path}: not a valid ONNX file (truncated or corrupted?): {type(e).__name__}: {e}") from None
    if not model.HasField("graph") or not len(model.graph.output):
        raise OnnxFileError(f"{path}: not a valid ONNX file: no graph with outputs (truncated or not an ONNX model?).")
    base = os.path.dirname(os.path.abspath(path))
    for t in _tensors(model):
        if t.data_location == TensorProto.EXTERNAL:
            _load_external(path, base, t)
        _check_present(path, t)
    try:
        onnx.checker.check_model(model)
    except Exception as e:  # onnx's ValidationError and friends
        raise OnnxFileError(f"{path}: the ONNX model is malformed: {e}") from None
    return model
