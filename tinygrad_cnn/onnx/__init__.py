"""ONNX in and out: :func:`export` writes a model's recorded forward graph as an ONNX file that
onnxruntime, Netron or any serving stack reads; :func:`load` turns an ONNX file (ours or another
framework's) into a differentiable functional model ``(params, fn)``.

Built on the ``onnx`` package (``pip install tinygrad_cnn[onnx]``), imported when first used, so
``import tinygrad_cnn`` never needs it. See docs/onnx.md.

Example::

    from tinygrad_cnn import onnx as tonnx
    tonnx.export(model, tg.randn(1, 1, 28, 28), "model.onnx")
    params, fn = tonnx.load("model.onnx")
"""
from __future__ import annotations

from typing import Any

__all__ = ["OnnxFileError", "OnnxModel", "export", "load", "supported_ops"]


def require_onnx() -> Any:
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as e:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "tinygrad_cnn.onnx needs the 'onnx' package: pip install 'tinygrad_cnn[onnx]' (or pip install onnx onnxruntime)."
        ) from e
    return onnx


def __getattr__(name: str) -> Any:
    # Loaded on first use: importing tinygrad_cnn.onnx must not import onnx itself.
    if name in ("export", "supported_ops"):
        require_onnx()
        from . import exporter

        return getattr(exporter, name)
    if name in ("load", "OnnxModel", "OnnxFileError"):
        require_onnx()
        from . import importer

        return getattr(importer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
