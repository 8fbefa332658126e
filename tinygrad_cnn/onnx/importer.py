"""Import: an ONNX graph as a differentiable functional model ``(params, fn)``.

Floating-point initializers become the parameters (Tensors that require grad, by their ONNX
names); integer initializers (shapes, axes, indices) stay constants. ``fn(params, *inputs)``
runs the graph's nodes in order, each through the ``nn.functional`` function of the table
``IMPORTERS``, so everything it computes is recorded and differentiable: fine-tune it, take input
gradients, ``gradcheck`` or draw it.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import numpy as np
from onnx import helper

from ..nn import functional as F
from ..nn.module import Module, Parameter
from ..ops import functions as OF
from ..ops.elementwise import Erf
from ..tensor import Tensor, as_tensor
from .reader import OnnxFileError, read_model, tensor_to_array

__all__ = ["IMPORTERS", "OnnxFileError", "OnnxModel", "OnnxModule", "from_proto", "load"]


def _f(x: Any, like: Any = None) -> Any:
    """A float Tensor for an arithmetic input (numpy constants become constant Tensors)."""
    if isinstance(x, Tensor):
        return x
    a = np.asarray(x)
    return Tensor(a.astype(like.dtype) if like is not None and a.dtype.kind in "fiub" and like.dtype.kind == "f" else a)


def _ints(x: Any) -> list[int]:
    a = x.data if isinstance(x, Tensor) else np.asarray(x)
    return [int(v) for v in a.reshape(-1)]


def _pads(op: str, attrs: dict, x: Any, kernel: list, strides: list, dilations: list) -> tuple[list, list]:
    """(begin, end) padding per spatial axis from ``pads`` or ``auto_pad``."""
    auto = attrs.get("auto_pad", b"NOTSET")
    auto = auto.decode() if isinstance(auto, bytes) else auto
    n = len(kernel)
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        begin, end = [], []
        for a in range(n):
            size = x.shape[2 + a]
            out = -(-size // strides[a])
            total = max((out - 1) * strides[a] + (kernel[a] - 1) * dilations[a] + 1 - size, 0)
            small = total // 2
            begin.append(small if auto == "SAME_UPPER" else total - small)
            end.append(total - begin[-1])
        return begin, end
    if auto == "VALID":
        return [0] * n, [0] * n
    pads = list(attrs.get("pads", [0] * (2 * n)))
    return pads[:n], pads[n:]


def _pad_explicit(x: Tensor, begin: list, end: list, value: float = 0.0) -> Tensor:
    return F.pad(x, (begin[1], end[1], begin[0], end[0]), value=value)


def _spatial(op: str, x: Any) -> None:
    if x.ndim != 4:
        raise NotImplementedError(f"onnx.load: {op} on a {x.ndim}-D input: only 2-D (N, C, H, W) {op} is supported.")


def _conv(x, w, b=None, **a):
    _spatial("Conv", x)
    k = list(w.shape[2:])
    s, d = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    begin, end = _pads("Conv", a, x, k, s, d)
    if begin != end:
        x, begin = _pad_explicit(x, begin, end), [0, 0]
    return F.conv2d(x, w, b, stride=tuple(s), padding=tuple(begin), dilation=tuple(d), groups=int(a.get("group", 1)))


def _conv_transpose(x, w, b=None, **a):
    _spatial("ConvTranspose", x)
    if "output_shape" in a:
        raise NotImplementedError("onnx.load: ConvTranspose with output_shape is not supported; give pads and output_padding.")
    k = list(w.shape[2:])
    s, d = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    begin, end = _pads("ConvTranspose", a, x, k, s, d)
    if begin != end:
        raise NotImplementedError(f"onnx.load: ConvTranspose with asymmetric pads {begin + end} is not supported.")
    return F.conv_transpose2d(x, w, b, stride=tuple(s), padding=tuple(begin), output_padding=tuple(a.get("output_padding", [0, 0])),
                              groups=int(a.get("group", 1)), dilation=tuple(d))


def _pool_args(op: str, x: Any, a: dict) -> tuple:
    _spatial(op, x)
    k = list(a["kernel_shape"])
    s, d = list(a.get("strides", [1, 1])), list(a.get("dilations", [1, 1]))
    begin, end = _pads(op, a, x, k, s, d)
    return k, s, d, begin, end


def _max_pool(x, **a):
    k, s, d, begin, end = _pool_args("MaxPool", x, a)
    if begin != end:
        x, begin = _pad_explicit(x, begin, end, -np.inf), [0, 0]
    return F.max_pool2d(x, tuple(k), tuple(s), tuple(begin), tuple(d), ceil_mode=bool(a.get("ceil_mode", 0)))


def _avg_pool(x, **a):
    k, s, d, begin, end = _pool_args("AveragePool", x, a)
    if begin != end or d != [1, 1]:
        raise NotImplementedError(f"onnx.load: AveragePool with asymmetric pads {begin + end} or dilations {d} is not supported.")
    return F.avg_pool2d(x, tuple(k), tuple(s), tuple(begin), ceil_mode=bool(a.get("ceil_mode", 0)),
                        count_include_pad=bool(a.get("count_include_pad", 0)))


def _gemm(A, B, C=None, **a):
    A = A.mT if a.get("transA", 0) else A
    B = B.mT if a.get("transB", 0) else B
    y = A @ B
    alpha, beta = float(a.get("alpha", 1.0)), float(a.get("beta", 1.0))
    if alpha != 1.0:
        y = y * alpha
    if C is not None:
        y = y + (_f(C, y) if beta == 1.0 else _f(C, y) * beta)
    return y


def _binary(fn: Callable) -> Callable:
    def run(a, b):
        if not isinstance(a, Tensor) and not isinstance(b, Tensor):
            return fn(np.asarray(a), np.asarray(b))
        like = a if isinstance(a, Tensor) else b
        return fn(_f(a, like), _f(b, like))

    return run


def _reshape(x, shape, allowzero=0):
    target = _ints(shape)
    if not allowzero:
        target = [x.shape[i] if s == 0 else s for i, s in enumerate(target)]
    return x.reshape(tuple(target)) if not isinstance(x, Tensor) else OF.reshape(x, target)


def _flatten(x, axis=1):
    axis = axis % max(x.ndim, 1) if x.ndim else 0
    shape = (math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))
    return np.reshape(x, shape) if not isinstance(x, Tensor) else OF.reshape(x, shape)


def _transpose(x, perm=None):
    perm = list(perm) if perm is not None else list(range(x.ndim))[::-1]
    return np.transpose(x, perm) if not isinstance(x, Tensor) else OF.permute(x, perm)


def _axes(axes_input: Any, a: dict) -> list | None:
    if axes_input is not None:
        return _ints(axes_input)
    return list(a["axes"]) if "axes" in a else None


def _squeeze(x, axes=None, **a):
    ax = _axes(axes, a)
    if not isinstance(x, Tensor):
        return np.squeeze(x, tuple(ax)) if ax is not None else np.squeeze(x)
    return OF.squeeze(x, tuple(ax) if ax is not None else None)


def _unsqueeze(x, axes=None, **a):
    given = _axes(axes, a)
    if given is None:  # required by the spec: an input from opset 13 on, an attribute before
        raise ValueError("Unsqueeze has no axes (neither an 'axes' input nor attribute); the node is malformed.")
    ax = sorted(v % (x.ndim + len(given)) for v in given)
    for v in ax:
        x = np.expand_dims(x, v) if not isinstance(x, Tensor) else OF.unsqueeze(x, v)
    return x


def _concat(*xs, axis):
    if not any(isinstance(x, Tensor) for x in xs):
        return np.concatenate([np.asarray(x) for x in xs], axis=axis)
    like = next(x for x in xs if isinstance(x, Tensor))
    return OF.cat([_f(x, like) for x in xs], axis)


def _pad(x, pads, value=None, axes=None, mode=b"constant"):
    mode = mode.decode() if isinstance(mode, bytes) else mode
    p = _ints(pads)
    ax = _ints(axes) if axes is not None else list(range(x.ndim))
    ax = [v % x.ndim for v in ax]
    n = len(ax)
    amounts = {a: (p[i], p[i + n]) for i, a in enumerate(ax)}
    flat: list[int] = []
    for dim in range(x.ndim - 1, min(amounts) - 1 if amounts else x.ndim, -1):
        flat += list(amounts.get(dim, (0, 0)))
    modes = {"constant": "constant", "reflect": "reflect", "edge": "replicate", "wrap": "circular"}
    if mode not in modes:
        raise NotImplementedError(f"onnx.load: Pad mode {mode!r} is not supported (constant, reflect, edge, wrap are).")
    v = None if value is None or mode != "constant" else float(np.asarray(value.data if isinstance(value, Tensor) else value))
    return F.pad(x, tuple(flat), mode=modes[mode], value=v)


def _slice(x, starts, ends, axes=None, steps=None):
    st, en = _ints(starts), _ints(ends)
    ax = _ints(axes) if axes is not None else list(range(len(st)))
    sp = _ints(steps) if steps is not None else [1] * len(st)
    index = [slice(None)] * x.ndim
    for s, e, a, k in zip(st, en, ax, sp):
        size = x.shape[a]
        stop: int | None = None if k < 0 and e < -size else min(e, size) if e >= 0 else e  # None: to the very beginning
        index[a % x.ndim] = slice(max(min(s, size), -size - 1) if k > 0 else s, stop, k)
    return x[tuple(index)]


def _gather(x, indices, axis=0):
    idx = np.asarray(indices.data if isinstance(indices, Tensor) else indices).astype(np.int64)
    axis = axis % x.ndim
    index = (slice(None),) * axis + ((int(idx),) if idx.ndim == 0 else (idx,))
    return x[index]


def _reduce(kind: str) -> Callable:
    def run(x, axes=None, keepdims=1, noop_with_empty_axes=0, **a):
        ax = _axes(axes, a)
        if ax is not None and not ax:
            ax = None
            if noop_with_empty_axes:
                return x
        dims = tuple(v % x.ndim for v in ax) if ax is not None else None
        keep = bool(keepdims)
        if kind == "sum":
            return x.sum(dims, keepdim=keep)
        if kind == "mean":
            return x.mean(dims, keepdim=keep)
        return x.amax(dims, keepdim=keep) if kind == "max" else x.amin(dims, keepdim=keep)

    return run


def _batch_norm(x, scale, b, mean, var, epsilon=1e-5, **a):
    return F.batch_norm(x, mean, var, scale, b, training=False, eps=float(epsilon))


def _lrn(x, size, alpha=1e-4, beta=0.75, bias=1.0):
    if size % 2 == 0:
        raise NotImplementedError(f"onnx.load: LRN with an even size ({size}) sums an asymmetric window PyTorch's formula does not have.")
    return F.local_response_norm(x, int(size), float(alpha), float(beta), float(bias))


def _softmax(fn: Callable) -> Callable:
    def run(x, axis=None, _opset=13):
        if _opset >= 13:
            return fn(x, dim=-1 if axis is None else int(axis))
        # Before opset 13 the input is taken as 2-D, (prod(shape[:axis]), prod(shape[axis:])).
        a = (1 if axis is None else int(axis)) % x.ndim
        flat = OF.reshape(x, (math.prod(x.shape[:a]), math.prod(x.shape[a:])))
        return OF.reshape(fn(flat, dim=1), x.shape)

    return run


def _cast(x, to):
    dtype = helper.tensor_dtype_to_np_dtype(to)
    return x.astype(dtype) if isinstance(x, Tensor) else np.asarray(x).astype(dtype)


def _clip(x, lo=None, hi=None, **a):
    lo = float(np.asarray(lo.data if isinstance(lo, Tensor) else lo)) if lo is not None else a.get("min")
    hi = float(np.asarray(hi.data if isinstance(hi, Tensor) else hi)) if hi is not None else a.get("max")
    return OF.clip(x, lo, hi)


def _expand(x, shape):
    target = _ints(shape)
    out = np.broadcast_shapes(tuple(x.shape), tuple(target))
    return OF.broadcast_to(x, out) if isinstance(x, Tensor) else np.broadcast_to(x, out)


def _shape(x, start=0, end=None):
    return np.asarray(x.shape[start:end], dtype=np.int64)


def _dropout(x, *rest, **a):
    return x  # inference: dropout is the identity (a training-mode ONNX Dropout is not trained here)


def _identity(x):
    return x


def _unary(name: str) -> Callable:
    def run(x):
        return getattr(_f(x), name)()

    return run


# In one place: docs/onnx.md shows this table.
IMPORTERS: dict[str, Callable] = {
    "Conv": _conv,
    "ConvTranspose": _conv_transpose,
    "MaxPool": _max_pool,
    "AveragePool": _avg_pool,
    "GlobalAveragePool": lambda x: x.mean((2, 3), keepdim=True),
    "GlobalMaxPool": lambda x: x.amax((2, 3), keepdim=True),
    "Gemm": _gemm,
    "MatMul": lambda a, b: OF.matmul(a, b),
    "Add": _binary(lambda a, b: a + b),
    "Sub": _binary(lambda a, b: a - b),
    "Mul": _binary(lambda a, b: a * b),
    "Div": _binary(lambda a, b: a / b),
    "Pow": _binary(lambda a, b: a**b),
    "Max": _binary(lambda a, b: OF.maximum(a, b) if isinstance(a, Tensor) else np.maximum(a, b)),
    "Min": _binary(lambda a, b: OF.minimum(a, b) if isinstance(a, Tensor) else np.minimum(a, b)),
    "Neg": lambda x: -x,
    "Exp": _unary("exp"),
    "Log": _unary("log"),
    "Sqrt": _unary("sqrt"),
    "Abs": _unary("abs"),
    "Tanh": _unary("tanh"),
    "Sigmoid": _unary("sigmoid"),
    "Relu": lambda x: F.relu(x),
    "Erf": lambda x: Erf.apply(_f(x)),
    "Sin": _unary("sin"),
    "Cos": _unary("cos"),
    "Reciprocal": lambda x: 1.0 / x,
    "LeakyRelu": lambda x, alpha=0.01: F.leaky_relu(x, float(alpha)),
    "Gelu": lambda x, approximate=b"none": F.gelu(x, approximate.decode() if isinstance(approximate, bytes) else approximate),
    "Softmax": _softmax(F.softmax),
    "LogSoftmax": _softmax(F.log_softmax),
    "Reshape": _reshape,
    "Flatten": _flatten,
    "Transpose": _transpose,
    "Squeeze": _squeeze,
    "Unsqueeze": _unsqueeze,
    "Concat": _concat,
    "Pad": _pad,
    "Slice": _slice,
    "Gather": _gather,
    "ReduceSum": _reduce("sum"),
    "ReduceMean": _reduce("mean"),
    "ReduceMax": _reduce("max"),
    "ReduceMin": _reduce("min"),
    "BatchNormalization": _batch_norm,
    "LRN": _lrn,
    "Identity": _identity,
    "Dropout": _dropout,
    "Cast": _cast,
    "Clip": _clip,
    "Expand": _expand,
    "Shape": _shape,
    "Constant": lambda value: Tensor(value) if value.dtype.kind == "f" else value,
}
"""ONNX op name -> the function that runs it here, called with the node's inputs (Tensors, or numpy
arrays for integer constants) and its attributes as keywords; :func:`load` accepts the ops listed."""


class OnnxModel(tuple):
    """What :func:`load` returns: unpacks as ``params, fn``; ``fn(params, *inputs)`` runs the graph.

    ``params`` maps each floating-point initializer's ONNX name to a Tensor that requires grad;
    ``input_names``/``output_names`` are the graph's. :meth:`as_module` wraps both in a ``Module``.
    """

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def __new__(cls, params: dict, fn: Callable, input_names: tuple = (), output_names: tuple = ()) -> OnnxModel:
        obj = super().__new__(cls, (params, fn))
        obj.input_names, obj.output_names = tuple(input_names), tuple(output_names)
        return obj

    @property
    def params(self) -> dict:
        """The floating-point initializers by ONNX name, as Tensors (the first item of the pair)."""
        return self[0]

    @property
    def fn(self) -> Callable:
        """``fn(params, *inputs)``: runs the graph (the second item of the pair)."""
        return self[1]

    def as_module(self) -> OnnxModule:
        """A ``Module`` whose parameters start from ``params``, named by the ONNX names with dots
        as module nesting (``conv1.weight``); batch norm's running statistics become buffers."""
        return OnnxModule(self)


class OnnxModule(Module):
    """An imported ONNX graph as a Module. Its parameters (and, for batch norm's running
    statistics, buffers) start from the loaded ``params`` and are named by the ONNX initializer
    names, dots nesting submodules (``conv1.weight``), so ``state_dict`` keys match the exporter's."""

    def __init__(self, model: OnnxModel) -> None:
        super().__init__()
        self._fn = model.fn
        self._slots: list[tuple[str, Module, str]] = []
        for name, t in model.params.items():
            parts = [p or "_" for p in name.split(".")]
            owner: Module = self
            for p in parts[:-1]:
                child = dict(owner.named_children()).get(p)
                if child is None:
                    child = Module()
                    owner.add_module(p, child)
                owner = child
            if t.requires_grad:
                owner.register_parameter(parts[-1], t if isinstance(t, Parameter) else Parameter(t.data))
            else:
                owner.register_buffer(parts[-1], t)
            self._slots.append((name, owner, parts[-1]))

    def forward(self, *inputs: Any) -> Any:
        params = {name: getattr(owner, attr) for name, owner, attr in self._slots}
        return self._fn(params, *inputs)


def _constant_value(path: str, name: str, attrs: dict) -> np.ndarray:
    if "value" in attrs:
        return tensor_to_array(path, attrs["value"])
    for key, dtype in (("value_float", np.float32), ("value_floats", np.float32), ("value_int", np.int64), ("value_ints", np.int64)):
        if key in attrs:
            return np.asarray(attrs[key], dtype=dtype)
    raise NotImplementedError(
        f"onnx.load: {path}: Constant node {name!r} holds {sorted(attrs)}, which is not supported "
        "(value, value_float(s), value_int(s) are)."
    )


def _attrs(node: Any) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def load(path: str | os.PathLike) -> OnnxModel:
    """Load the ONNX file ``path`` as a differentiable functional model.

    Returns an :class:`OnnxModel` that unpacks as ``params, fn``: ``fn(params, *inputs)`` gives
    the graph's output (a tuple if it has several). The file is treated as untrusted (see
    :mod:`tinygrad_cnn.onnx.reader`): a malformed file raises ``OnnxFileError`` naming it. Ops
    without a mapping raise one ``NotImplementedError`` listing them all with their node names.

    Example::

        params, fn = load("lenet.onnx")
        logits = fn(params, x)                      # x (N, 1, 28, 28)
        net = load("lenet.onnx").as_module()        # or as a Module
    """
    path = os.fspath(path)
    return from_proto(read_model(path), path)


def from_proto(model: Any, path: str = "<model>") -> OnnxModel:
    """:func:`load` for an ``onnx.ModelProto`` already in memory whose tensors hold their data
    (as :func:`~tinygrad_cnn.onnx.reader.read_model` returns it); ``path`` names it in errors.

    Example: ``params, fn = from_proto(tinygrad_cnn.onnx.export(model, x, "m.onnx"))``.
    """
    g = model.graph
    missing = [(n.op_type, n.name or f"#{i}") for i, n in enumerate(g.node)
               if n.op_type not in IMPORTERS or n.domain not in ("", "ai.onnx")]
    if missing:
        listed = ", ".join(f"{op} (node {name!r})" for op, name in missing)
        raise NotImplementedError(f"onnx.load: {path} uses ops with no mapping here: {listed}. Supported: {', '.join(sorted(IMPORTERS))}.")
    inits = {t.name: tensor_to_array(path, t) for t in g.initializer}
    # Batch norm's running statistics are state, not weights (PyTorch's buffers): no gradient.
    stats = {n.input[i] for n in g.node if n.op_type == "BatchNormalization" for i in (3, 4) if i < len(n.input)}
    params = {k: Tensor(v, requires_grad=k not in stats) for k, v in inits.items() if v.dtype.kind == "f"}
    consts = {k: v for k, v in inits.items() if v.dtype.kind != "f"}
    inputs = [i.name for i in g.input if i.name not in inits]
    outputs = [o.name for o in g.output]
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    nodes = [(n.op_type, list(n.input), list(n.output), _attrs(n), n.name) for n in g.node]
    for op, _, _, attrs, _ in nodes:
        if op in ("Softmax", "LogSoftmax"):
            attrs["_opset"] = opset
    for i, (op, ins, outs, attrs, name) in enumerate(nodes):
        if op == "Constant":
            nodes[i] = (op, ins, outs, {"value": _constant_value(path, name, attrs)}, name)

    def fn(params: dict, *xs: Any) -> Any:
        if len(xs) != len(inputs):
            raise TypeError(f"onnx model from {path}: expected {len(inputs)} input(s) {inputs}, got {len(xs)}.")
        env: dict[str, Any] = dict(consts)
        for k in inits:
            if k in params:
                env[k] = params[k]
        for k, x in zip(inputs, xs):
            env[k] = x if isinstance(x, Tensor) else as_tensor(np.asarray(x))
        for op, ins, outs, attrs, name in nodes:
            args = [env[i] if i else None for i in ins]
            while args and args[-1] is None:
                args.pop()
            try:
                res = IMPORTERS[op](*args, **attrs)
            except (ValueError, TypeError, KeyError) as e:
                raise type(e)(f"onnx model from {path}: node {name!r} ({op}): {e}") from None
            env[outs[0]] = res
        res = tuple(env[o] for o in outputs)
        return res[0] if len(res) == 1 else res

    return OnnxModel(params, fn, tuple(inputs), tuple(outputs))

