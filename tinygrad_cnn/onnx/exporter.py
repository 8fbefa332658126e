"""Export: run the model once, read the recorded forward graph through the public ``Node`` API
and the one graph walk, and write each primitive op as ONNX nodes (the table ``EXPORTERS``).
Composite functions that our primitives spell out (softmax, log_softmax, linear, gelu, batch
norm, local response norm) are written as their ONNX counterparts by the passes in
:mod:`tinygrad_cnn.onnx.fusion`.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NoReturn

import numpy as np
import onnx
from onnx import helper, numpy_helper

from ..autograd.function import Node
from ..autograd.grad_mode import enable_grad, keep_inputs
from ..autograd.graph import walk
from ..kernels.geometry import pool_output_size
from ..kernels.pool import avg_divisor
from ..nn.module import BackwardHookInputs, BackwardHookOutputs
from ..ops import conv as C
from ..ops import elementwise as E
from ..ops import linalg as L
from ..ops import movement as M
from ..ops import pool as P
from ..ops import reduce as R
from ..tensor import Tensor
from . import fusion

__all__ = ["DEFAULT_OPSET", "EXPORTERS", "MIN_OPSET", "export", "supported_ops"]

DEFAULT_OPSET = 20
"""The opset :func:`export` writes when none is given: the first with a ``Gelu`` op (with an older
opset ``gelu`` is written as its ``Erf`` formula)."""
MIN_OPSET = 18
"""The oldest opset :func:`export` writes: from 18 on ``ReduceMax``/``ReduceMin`` take their axes as
an input, as they are written here."""


class _Emitter:
    """What an op's exporter writes into: ONNX nodes, initializers, and facts about values (the
    example shape, and which axis carries the batch, for a symbolic batch dimension)."""

    def __init__(self, dynamic_batch: bool) -> None:
        self.nodes: list = []
        self.inits: dict[str, np.ndarray] = {}
        self.shape: dict[str, tuple] = {}
        self.batch: dict[str, int | None] = {}
        self.dynamic = dynamic_batch
        self._n = 0

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: Any, hint: str = "const") -> str:
        name = self.fresh(hint)
        self.inits[name] = np.asarray(value)
        self.shape[name] = self.inits[name].shape
        self.batch[name] = None
        return name

    def ints(self, values: Any, hint: str = "shape") -> str:
        return self.const(np.asarray(list(values), dtype=np.int64), hint)

    def emit(self, op_type: str, inputs: list, outputs: list, name: str | None = None, **attrs: Any) -> None:
        self.nodes.append(helper.make_node(op_type, inputs, outputs, name=name or self.fresh(op_type), **attrs))


class _Op:
    """One recorded node as its exporter sees it: input names, arrays, batch axes, params, output names."""

    def __init__(self, node: Node, inputs: list[str], arrays: list, out: list[str], em: _Emitter, where: str) -> None:
        self.node, self.inputs, self.arrays, self.out, self.em, self.where = node, inputs, arrays, out, em, where
        self.params = node.params

    def batch(self, i: int = 0) -> int | None:
        return self.em.batch.get(self.inputs[i])

    def emit(self, op_type: str, inputs: list, outputs: list | None = None, **attrs: Any) -> None:
        name = f"{self.where}{op_type}_{self.node.sequence_nr}"
        self.em.emit(op_type, inputs, self.out if outputs is None else outputs, name=name, **attrs)

    def fail(self, why: str) -> NoReturn:
        raise NotImplementedError(f"onnx.export: {self.node.name} (created in {self.where.rstrip('/') or 'the top level'}): {why}")


def _pairs(p: tuple) -> list[int]:
    return [int(p[0]), int(p[1]), int(p[0]), int(p[1])]


def _conv(op: _Op) -> None:
    s, p, d, g = (op.params[k] for k in ("stride", "padding", "dilation", "groups"))
    k = op.arrays[1].shape[2:]
    op.emit("Conv", op.inputs, kernel_shape=list(k), strides=list(s), pads=_pairs(p), dilations=list(d), group=int(g))


def _conv_transpose(op: _Op) -> None:
    s, p, d, g, out = (op.params[k] for k in ("stride", "padding", "dilation", "groups", "out"))
    x, w = op.arrays[0], op.arrays[1]
    k = w.shape[2:]
    base = [(x.shape[2 + a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + 1 for a in range(2)]
    op.emit(
        "ConvTranspose", op.inputs, kernel_shape=list(k), strides=list(s), pads=_pairs(p), dilations=list(d), group=int(g),
        output_padding=[int(out[a] - base[a]) for a in range(2)],
    )


def _ceil_mode(x_shape: tuple, win: Any) -> int:
    floor = tuple(pool_output_size(n, k, s, p, d, False) for n, k, s, p, d in zip(x_shape[2:], *win[:4]))
    return int(floor != tuple(win.out))


def _max_pool(op: _Op) -> None:
    if op.params.get("return_indices"):
        op.fail("max_pool2d with return_indices=True has no ONNX counterpart here; export without the indices.")
    win = op.params["win"]
    op.emit(
        "MaxPool", op.inputs[:1], kernel_shape=list(win.kernel), strides=list(win.stride), pads=_pairs(win.padding),
        dilations=list(win.dilation), ceil_mode=_ceil_mode(op.arrays[0].shape, win),
    )


def _avg_pool(op: _Op) -> None:
    win, inv = op.params["win"], op.params["inv"]
    x = op.arrays[0]
    include = None
    for flag in (True, False):
        if np.allclose(avg_divisor(x.shape, win, flag, inv.dtype), inv, rtol=1e-6, atol=0):
            include = flag
            break
    if include is None:
        op.fail("an average pool whose divisors are neither count_include_pad=True nor False cannot be exported.")
    if tuple(win.kernel) == x.shape[2:] and tuple(win.out) == (1, 1) and not any(win.padding):
        op.emit("GlobalAveragePool", op.inputs[:1])  # adaptive_avg_pool2d(x, 1)
        return
    op.emit(
        "AveragePool", op.inputs[:1], kernel_shape=list(win.kernel), strides=list(win.stride), pads=_pairs(win.padding),
        ceil_mode=_ceil_mode(x.shape, win), count_include_pad=int(include),
    )


def _simple(onnx_op: str) -> Callable[[_Op], None]:
    def exporter(op: _Op) -> None:
        op.emit(onnx_op, op.inputs)

    exporter.__name__ = f"_{onnx_op.lower()}"
    return exporter


def _scalar(onnx_op: str, key: str) -> Callable[[_Op], None]:
    def exporter(op: _Op) -> None:
        c = op.params[key]
        dtype = op.arrays[0].dtype if op.arrays[0].dtype.kind == "f" else np.float32
        op.emit(onnx_op, [op.inputs[0], op.em.const(np.asarray(c, dtype=dtype), "scalar")])

    return exporter


def _max_of(x: np.ndarray, c: np.ndarray) -> int | None:
    """The axis along which the constant ``c`` is the (detached) max of ``x``, or None."""
    if c.ndim != x.ndim or x.ndim == 0:
        return None
    axes = [a for a in range(x.ndim) if c.shape[a] == 1 and x.shape[a] != 1]
    cands = axes or [a for a in range(x.ndim) if c.shape[a] == 1]
    for a in cands:
        m = np.max(x, axis=a, keepdims=True)
        if m.shape == c.shape and np.array_equal(np.where(np.isfinite(m), m, 0), c):
            return a
    return None


def _binary(onnx_op: str) -> Callable[[_Op], None]:
    def exporter(op: _Op) -> None:
        inputs = list(op.inputs)
        if onnx_op == "Sub" and op.node.next_edges[1] is None and op.node.next_edges[0] is not None:
            # The softmax family subtracts the input's max as a constant (it needs no gradient);
            # in the graph it is a ReduceMax of the input, so every batch gets its own.
            axis = _max_of(op.arrays[0], np.asarray(op.arrays[1]))
            if axis is not None:
                m = op.em.fresh("max")
                op.em.emit("ReduceMax", [inputs[0], op.em.ints([axis], "axes")], [m], keepdims=1)
                op.em.batch[m] = op.batch(0)
                inputs[1] = m
        op.emit(onnx_op, inputs)

    return exporter


def _squeeze_or_unsqueeze(op: _Op, src: tuple, dst: tuple, b: int | None) -> bool:
    """A reshape that only drops or only inserts size-1 dimensions (squeeze/unsqueeze)."""
    for kind, short, long in (("Squeeze", dst, src), ("Unsqueeze", src, dst)):
        if len(long) <= len(short) or [s for s in long if s != 1] != [s for s in short if s != 1]:
            continue
        axes, j = [], 0
        for i, s in enumerate(long):  # match greedily; the extra 1s are the squeezed/inserted axes
            if j < len(short) and short[j] == s:
                j += 1
            else:
                axes.append(i)
        if j != len(short) or any(long[a] != 1 for a in axes):
            continue
        if b is not None and op.em.dynamic and kind == "Squeeze" and b in axes:
            return False
        op.emit(kind, [op.inputs[0], op.em.ints(axes, "axes")])
        if b is not None:
            if kind == "Squeeze":
                op.em.batch[op.out[0]] = b - sum(a < b for a in axes)
            else:
                pos = [i for i in range(len(long)) if i not in axes]
                op.em.batch[op.out[0]] = pos[b]
        return True
    return False


def _reshape(op: _Op) -> None:
    x = op.arrays[0]
    shape = list(op.params["shape"])
    b = op.batch(0)
    out_batch = None
    for axis in range(1, x.ndim - 1):
        if len(shape) == 2 and tuple(shape) == (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:]))) and b in (None, 0):
            op.emit("Flatten", op.inputs[:1], axis=axis)  # flatten(x, start_dim) / nn.Flatten
            op.em.batch[op.out[0]] = b
            return
    if _squeeze_or_unsqueeze(op, x.shape, tuple(shape), b):
        return
    if b is not None and op.em.dynamic:
        if b < len(shape) and shape[b] == x.shape[b]:
            shape[b], out_batch = 0, b  # 0 copies the input's (batch) dimension
        else:
            n = x.shape[b]
            at = next((i for i, s in enumerate(shape) if n and s % n == 0), None)
            if at is None:
                op.fail(f"reshape {x.shape} -> {tuple(op.params['shape'])} splits the batch dimension; export with dynamic_batch=False.")
            shape[at], out_batch = -1, at
    if out_batch is None and b is not None and op.em.dynamic:
        out_batch = b
    op.emit("Reshape", [op.inputs[0], op.em.ints(shape)])
    op.em.batch[op.out[0]] = out_batch


def _permute(op: _Op) -> None:
    axes = list(op.params["axes"])
    op.emit("Transpose", op.inputs[:1], perm=axes)
    b = op.batch(0)
    op.em.batch[op.out[0]] = None if b is None else axes.index(b)


def _expand(op: _Op) -> None:
    shape = list(op.params["shape"])
    b = op.batch(0)
    lead = len(shape) - op.arrays[0].ndim
    if b is not None and op.em.dynamic:
        shape[b + lead] = 1  # Expand broadcasts both ways: 1 keeps the input's batch size
        op.em.batch[op.out[0]] = b + lead
    op.emit("Expand", [op.inputs[0], op.em.ints(shape)])


def _reduce(onnx_op: str) -> Callable[[_Op], None]:
    def exporter(op: _Op) -> None:
        axis, keep = op.params.get("axis"), int(bool(op.params.get("keepdims", False)))
        ins = [op.inputs[0]] + ([op.em.ints(axis, "axes")] if axis is not None else [])
        op.emit(onnx_op, ins, keepdims=keep)
        b = op.batch(0)
        if b is not None:
            axes = range(op.arrays[0].ndim) if axis is None else axis
            op.em.batch[op.out[0]] = None if b in axes else (b if keep else b - sum(a < b for a in axes))

    return exporter


def _concat(op: _Op) -> None:
    op.emit("Concat", op.inputs, axis=int(op.params["axis"]))


def _pad(op: _Op) -> None:
    pw = op.params["pad_width"]
    dtype = op.arrays[0].dtype
    pads = [int(b) for b, _ in pw] + [int(a) for _, a in pw]
    op.emit("Pad", [op.inputs[0], op.em.ints(pads, "pads"), op.em.const(np.asarray(op.params.get("value", 0.0), dtype=dtype), "value")])


_INT64_MIN = -(2**63)


def _chain(op: _Op, kind: str, cur: str, args: list) -> str:
    nxt = op.em.fresh(kind.lower())
    op.emit(kind, [cur, *args], [nxt])
    return nxt


def _getitem(op: _Op) -> None:
    index = op.params["index"]
    x = op.arrays[0]
    index = index if isinstance(index, tuple) else (index,)
    pos = [k for k, i in enumerate(index) if isinstance(i, (np.ndarray, list))]
    b = op.batch(0)
    if pos:
        rest = [i for k, i in enumerate(index) if k not in pos]
        arr = np.asarray(index[pos[0]])
        if len(pos) != 1 or arr.dtype.kind not in "iu" or any(not (isinstance(i, slice) and i == slice(None)) for i in rest):
            op.fail("only one integer index array (x[..., idx, ...] with full slices elsewhere) maps to ONNX Gather. "
                    "A loss that picks by label (cross_entropy, nll_loss) does this: export the model's logits instead.")
        if b is not None and op.em.dynamic and pos[0] == b:
            op.fail("an index array along the batch dimension cannot be exported with a symbolic batch; use dynamic_batch=False.")
        indices = op.em.ints(arr.reshape(-1), "indices") if arr.ndim == 1 else op.em.const(arr.astype(np.int64), "indices")
        op.emit("Gather", [op.inputs[0], indices], axis=pos[0])
        if b is not None:
            op.em.batch[op.out[0]] = b if b < pos[0] else b + arr.ndim - 1
        return
    ellipsis = [k for k, i in enumerate(index) if i is Ellipsis]
    if len(ellipsis) > 1:
        op.fail("more than one Ellipsis in an index.")
    if ellipsis:
        k = ellipsis[0]
        used = sum(1 for i in index if i is not None and i is not Ellipsis)
        index = index[:k] + (slice(None),) * (x.ndim - used) + index[k + 1 :]
    index = index + (slice(None),) * (x.ndim - sum(1 for i in index if i is not None))
    starts, ends, axes, steps, squeeze, unsq = [], [], [], [], [], []
    axis, out_axis = 0, 0
    for i in index:
        if i is None:
            unsq.append(out_axis)
            out_axis += 1
            continue
        if isinstance(i, slice):
            if i != slice(None):
                start, stop, step = i.indices(x.shape[axis])
                if step < 0 and stop < 0:
                    stop = _INT64_MIN  # through the first element
                starts.append(start)
                ends.append(stop)
                axes.append(axis)
                steps.append(step)
            out_axis += 1
        else:
            j = int(i) % x.shape[axis]
            starts.append(j)
            ends.append(j + 1)
            axes.append(axis)
            steps.append(1)
            squeeze.append(axis)
        axis += 1
    if b is not None and b in axes and op.em.dynamic:
        op.fail("an index that slices or picks along the batch dimension cannot be exported with a symbolic batch; "
                "use dynamic_batch=False.")
    cur = op.inputs[0]
    if starts:
        bounds = ((starts, "starts"), (ends, "ends"), (axes, "axes"), (steps, "steps"))
        cur = _chain(op, "Slice", cur, [op.em.ints(v, k) for v, k in bounds])
    if squeeze:
        cur = _chain(op, "Squeeze", cur, [op.em.ints(squeeze, "axes")])
    if unsq:
        cur = _chain(op, "Unsqueeze", cur, [op.em.ints(unsq, "axes")])
    if cur == op.inputs[0]:
        op.emit("Identity", [cur])
    else:
        op.em.nodes[-1].output[0] = op.out[0]
    if b is not None:
        shift = sum(u <= b for u in unsq) - sum(s < b for s in squeeze)
        op.em.batch[op.out[0]] = None if b in squeeze else b + shift


def _where(op: _Op) -> None:
    # leaky_relu is where(x > 0, x, x * slope): ONNX's LeakyRelu.
    e0, e1 = op.node.next_edges[0], op.node.next_edges[1]
    cond = op.params["cond"]
    inner = e1[0].next_edges[0] if e1 is not None and type(e1[0]) is Node and e1[0].op is E.MulScalar else None
    if e0 is not None and inner is not None and inner[0] is e0[0] and inner[1] == e0[1]:
        x = op.arrays[0]
        if np.array_equal(np.asarray(cond), x > 0):
            op.emit("LeakyRelu", op.inputs[:1], alpha=float(e1[0].params["c"]))
            return
    op.fail("a where() with a constant condition depends on the example input; only leaky_relu's pattern is exported.")


def _clip(op: _Op) -> None:
    dtype = op.arrays[0].dtype
    lo, hi = op.params["lo"], op.params["hi"]
    op.emit("Clip", [op.inputs[0], "" if lo is None else op.em.const(np.asarray(lo, dtype), "min"),
                     "" if hi is None else op.em.const(np.asarray(hi, dtype), "max")])


def _cast(op: _Op) -> None:
    op.emit("Cast", op.inputs, to=helper.np_dtype_to_tensor_dtype(np.dtype(op.params["dtype"])))


def _identities(op: _Op) -> None:
    # A module's backward-hook ops pass each input through unchanged (they act only in backward).
    for k, (i, o) in enumerate(zip(op.inputs, op.out)):
        op.em.emit("Identity", [i], [o], name=f"{op.where}Identity_{op.node.sequence_nr}_{k}")
        op.em.batch[o] = op.batch(k)


def _pow_scalar(op: _Op) -> None:
    dtype = op.arrays[0].dtype if op.arrays[0].dtype.kind == "f" else np.float32
    op.emit("Pow", [op.inputs[0], op.em.const(np.asarray(op.params["exponent"], dtype=dtype), "exponent")])


# In one place: docs/onnx.md shows this table.
EXPORTERS: dict[type, tuple[str, Callable[[_Op], None]]] = {
    C.Conv2d: ("Conv", _conv),
    C.ConvTranspose2d: ("ConvTranspose", _conv_transpose),
    P.MaxPool2d: ("MaxPool", _max_pool),
    P.AvgPool2d: ("AveragePool", _avg_pool),
    L.MatMul: ("MatMul", _simple("MatMul")),
    E.Add: ("Add", _binary("Add")),
    E.Sub: ("Sub", _binary("Sub")),
    E.Mul: ("Mul", _binary("Mul")),
    E.Div: ("Div", _binary("Div")),
    E.Pow: ("Pow", _binary("Pow")),
    E.Maximum: ("Max", _binary("Max")),
    E.Minimum: ("Min", _binary("Min")),
    E.AddScalar: ("Add", _scalar("Add", "c")),
    E.MulScalar: ("Mul", _scalar("Mul", "c")),
    E.PowScalar: ("Pow", _pow_scalar),
    E.Neg: ("Neg", _simple("Neg")),
    E.Exp: ("Exp", _simple("Exp")),
    E.Log: ("Log", _simple("Log")),
    E.Sqrt: ("Sqrt", _simple("Sqrt")),
    E.Abs: ("Abs", _simple("Abs")),
    E.Sin: ("Sin", _simple("Sin")),
    E.Cos: ("Cos", _simple("Cos")),
    E.Sign: ("Sign", _simple("Sign")),
    E.Tanh: ("Tanh", _simple("Tanh")),
    E.Sigmoid: ("Sigmoid", _simple("Sigmoid")),
    E.ReLU: ("Relu", _simple("Relu")),
    E.Erf: ("Erf", _simple("Erf")),
    E.Clone: ("Identity", _simple("Identity")),
    BackwardHookInputs: ("Identity", _identities),
    BackwardHookOutputs: ("Identity", _identities),
    E.Where: ("LeakyRelu", _where),
    E.Clip: ("Clip", _clip),
    E.Cast: ("Cast", _cast),
    R.Sum: ("ReduceSum", _reduce("ReduceSum")),
    R.Max: ("ReduceMax", _reduce("ReduceMax")),
    R.Min: ("ReduceMin", _reduce("ReduceMin")),
    M.Reshape: ("Reshape", _reshape),
    M.Permute: ("Transpose", _permute),
    M.Expand: ("Expand", _expand),
    M.GetItem: ("Slice/Gather", _getitem),
    M.Concat: ("Concat", _concat),
    M.Pad: ("Pad", _pad),
}
"""Our primitive op classes -> (the ONNX op name(s), the function that writes a recorded node of that
op); :func:`supported_ops` lists it by name."""


def _param(em: _Emitter, path: str, name: str, value: Any, like: Any) -> str:
    full = f"{path}.{name}" if path else name
    if full not in em.inits:
        em.inits[full] = np.asarray(value if value is not None else like, dtype=np.asarray(like).dtype)
        em.shape[full], em.batch[full] = em.inits[full].shape, None
    return full


def _batch_norm_module(em: _Emitter, m: Any, path: str, x: str, out: str) -> None:
    c = m.num_features
    rm, rv = m.running_mean.data, m.running_var.data
    ins = [
        x,
        _param(em, path, "weight", None if m.weight is None else m.weight.data, np.ones(c, rm.dtype)),
        _param(em, path, "bias", None if m.bias is None else m.bias.data, np.zeros(c, rm.dtype)),
        _param(em, path, "running_mean", rm, rm),
        _param(em, path, "running_var", rv, rv),
    ]
    em.emit("BatchNormalization", ins, [out], name=f"{path}/BatchNormalization", epsilon=float(m.eps))


def _lrn_module(em: _Emitter, m: Any, path: str, x: str, out: str) -> None:
    em.emit("LRN", [x], [out], name=f"{path}/LRN", size=int(m.size), alpha=float(m.alpha), beta=float(m.beta), bias=float(m.k))


def _module_exporters() -> dict[type, tuple[Callable, Callable]]:
    """Modules whose whole call is one ONNX op: class -> (does this instance fit, emit)."""
    from ..nn.normalization import BatchNorm1d, BatchNorm2d, LocalResponseNorm

    return {
        # Without running statistics batch norm normalizes with the batch's even in eval mode.
        BatchNorm2d: (lambda m: m.running_mean is not None and m.running_var is not None, _batch_norm_module),
        BatchNorm1d: (lambda m: m.running_mean is not None and m.running_var is not None, _batch_norm_module),
        # ONNX's LRN window for an even size is not PyTorch's.
        LocalResponseNorm: (lambda m: m.size % 2 == 1, _lrn_module),
    }


def _groups(nodes: list[Node]) -> dict[int, tuple[Any, list[Node]]]:
    """Runs of consecutive nodes recorded inside one call of a module that exports as a single ONNX
    op (batch norm, local response norm): id(node) -> (module, nodes of the call)."""
    table = _module_exporters()
    runs: list[tuple[Any, list[Node]]] = []
    owner = None
    for n in nodes:
        m = next((s for s in n.scope if any(isinstance(s, c) for c in table)), None)
        if m is not None:
            if m is not owner:
                runs.append((m, []))
            runs[-1][1].append(n)
        owner = m
    return {id(r): (module, run) for module, run in runs for r in run}


def supported_ops() -> dict[str, str]:
    """Our primitive op names -> the ONNX op(s) they export as.

    Example: ``supported_ops()["Conv2d"]`` is ``'Conv'``, ``supported_ops()["Permute"]`` ``'Transpose'``.
    """
    return {cls.__name__: onnx_name for cls, (onnx_name, _) in EXPORTERS.items()}


def _module_paths(model: Any) -> dict[int, str]:
    named = getattr(model, "named_modules", None)
    return {id(m): name for name, m in named()} if named is not None else {}


def _where_created(node: Node, paths: dict[int, str]) -> str:
    for m in reversed(node.scope):
        if id(m) in paths and paths[id(m)]:
            return paths[id(m)] + "/"
    return ""


def _run(model: Any, params: Any, inputs: list) -> tuple:
    """Run the model once in eval mode with the graph recorded; returns (outputs, input tensors)."""
    xs = [Tensor(np.asarray(x.data if isinstance(x, Tensor) else x), requires_grad=True) for x in inputs]
    modes = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
    for m, _ in modes:
        m.training = False
    try:
        with enable_grad(), keep_inputs():
            out = model(*xs) if params is None else model(params, *xs)
    finally:
        for m, mode in modes:
            m.training = mode
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    for o in outs:
        if not isinstance(o, Tensor):
            raise TypeError(f"onnx.export: the model must return a Tensor or a tuple of Tensors, got {type(o).__name__}.")
    return outs, xs


def _kept(node: Node, i: int, t: Any) -> Any:
    """Input ``i`` of ``node`` as recorded under ``keep_inputs`` (the export needs its value)."""
    if t is None:
        raise RuntimeError(f"onnx.export: the graph kept no value for input {i} of {node.name}; it must be recorded under keep_inputs().")
    return t


def _export_group(em: _Emitter, group: tuple, node: Node, produced: dict, names: dict, paths: dict, decided: dict) -> bool:
    """Write a module call that has an ONNX op of its own (at its last node; its other nodes are
    skipped). False when the call does not fit (then its primitives are exported one by one)."""
    module, run = group
    fits, emit = next(v for c, v in _module_exporters().items() if isinstance(module, c))
    key = id(run)
    if key not in decided:
        members = {id(n) for n in run}
        external: list[tuple[int | str, int]] = []  # (id of the producing node, output) or ("leaf", id of the tensor)
        for n in run:
            for e in n.next_edges:
                if e is not None and type(e[0]) is Node and id(e[0]) not in members:
                    external.append((id(e[0]), e[1]))
                elif e is not None and type(e[0]) is not Node and id(e[0]) in names:
                    external.append(("leaf", id(e[0])))
        external = list(dict.fromkeys(external))
        decided[key] = external[0] if len(external) == 1 and fits(module) else None
    if decided[key] is None:
        return False
    if node is not run[-1]:
        return True
    ext = decided[key]
    src = produced[ext] if ext[0] != "leaf" else names[ext[1]]
    path = paths.get(id(module), "")
    out = f"{path}/{type(module).__name__}_{node.sequence_nr}" if path else f"{type(module).__name__}_{node.sequence_nr}"
    emit(em, module, path, src, out)
    produced[(id(node), 0)] = out
    em.shape[out], em.batch[out] = node.output_meta[0].shape, em.batch.get(src)
    return True


def export(
    model_or_fn: Any,
    example_inputs: Any,
    path: str | os.PathLike,
    opset: int | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    dynamic_batch: bool = True,
    check: bool = True,
) -> Any:
    """Write ``model_or_fn``'s forward graph to the ONNX file ``path``; returns the ``onnx.ModelProto``.

    ``model_or_fn``: a ``Module`` (run in eval mode: dropout is the identity, batch norm uses its
    running statistics) or a functional model ``(params, fn)`` with ``fn(params, *inputs)``.
    ``example_inputs``: one Tensor/array (e.g. ``(1, 1, 28, 28)``) or a tuple of them; the model
    runs once on them. Parameters become initializers named by their module path (``conv1.weight``)
    or their key in ``params``; with ``dynamic_batch`` the first dimension of inputs and outputs
    is symbolic (``batch``). An op with no ONNX mapping raises ``NotImplementedError`` naming the op,
    the module that created it and the supported ops. With ``check`` the written graph is run (by
    :func:`~tinygrad_cnn.onnx.load`'s interpreter) against the model on a second input (another
    batch size with ``dynamic_batch``); a difference, i.e. a value computed from the example's data
    outside the graph and frozen as a constant, raises ``ValueError`` before anything is written.

    Example::

        export(LeNet(seed=0), tg.randn(1, 1, 28, 28), "lenet.onnx")
    """
    params = None
    if isinstance(model_or_fn, tuple) and len(model_or_fn) == 2 and callable(model_or_fn[1]):
        params, model = model_or_fn
    else:
        model = model_or_fn
    if not callable(model):
        raise TypeError(f"onnx.export: expected a Module or a (params, fn) pair, got {type(model_or_fn).__name__}.")
    opset = DEFAULT_OPSET if opset is None else int(opset)
    if not MIN_OPSET <= opset <= onnx.defs.onnx_opset_version():
        raise ValueError(
            f"onnx.export: opset {opset} is not supported; use {MIN_OPSET} to {onnx.defs.onnx_opset_version()} "
            f"(the reductions take their axes as inputs from opset {MIN_OPSET} on; default {DEFAULT_OPSET})."
        )
    inputs = list(example_inputs) if isinstance(example_inputs, (tuple, list)) else [example_inputs]
    outs, xs = _run(model, params, inputs)
    input_names = list(input_names or (["input"] if len(xs) == 1 else [f"input{i}" for i in range(len(xs))]))
    output_names = list(output_names or (["output"] if len(outs) == 1 else [f"output{i}" for i in range(len(outs))]))
    if len(input_names) != len(xs) or len(output_names) != len(outs):
        raise ValueError(
            f"onnx.export: {len(input_names)} input names for {len(xs)} inputs and {len(output_names)} output names for "
            f"{len(outs)} outputs; give one name each."
        )

    em = _Emitter(dynamic_batch)
    names: dict[int, str] = {}  # leaf tensors (inputs, parameters, buffers) by id
    for name, x in zip(input_names, xs):
        names[id(x)] = name
        em.shape[name], em.batch[name] = x.shape, (0 if dynamic_batch and x.ndim else None)
    if params is None:
        named = list(model.named_parameters()) + list(model.named_buffers()) if hasattr(model, "named_parameters") else []
    else:
        from ..pytree import tree_flatten_with_path

        # {'conv': {'w': ...}, 'blocks': [{'b': ...}]} -> 'conv.w', 'blocks.0.b' (module-path style)
        named = [(".".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in p), t) for p, t in tree_flatten_with_path(params)[0]]
    param_ids = {id(t): n for n, t in named if isinstance(t, Tensor)}
    paths = _module_paths(model)

    nodes = walk(outs)
    produced: dict[tuple[int, int], str] = {}
    unsupported = [n for n in nodes if n.op not in EXPORTERS]
    if unsupported:
        found = dict.fromkeys(f"{n.name} (created in {_where_created(n, paths).rstrip('/') or 'the top level'})" for n in unsupported)
        raise NotImplementedError(
            f"onnx.export: op {', '.join(found)} has no ONNX mapping. Supported ops: {', '.join(sorted(supported_ops()))}."
            if len(found) == 1 else
            f"onnx.export: ops {', '.join(found)} have no ONNX mapping. Supported ops: {', '.join(sorted(supported_ops()))}."
        )
    groups = _groups(nodes)
    decided: dict = {}
    for node in nodes:
        group = groups.get(id(node))
        if group is not None and _export_group(em, group, node, produced, names, paths, decided):
            continue
        where = _where_created(node, paths)
        tensors = node.input_tensors or ()
        in_names, arrays = [], []
        for i, edge in enumerate(node.next_edges):
            t = tensors[i] if i < len(tensors) else None
            if edge is not None and type(edge[0]) is Node:
                in_names.append(produced[(id(edge[0]), edge[1])])
                value = edge[0].output(edge[1])
                arrays.append((value if value is not None else _kept(node, i, t)).data)
                continue
            leaf = edge[0] if edge is not None else _kept(node, i, t)
            arrays.append(leaf.data)
            if id(leaf) in names:
                in_names.append(names[id(leaf)])
            elif id(leaf) in param_ids:
                nm = param_ids[id(leaf)]
                names[id(leaf)] = nm
                em.inits[nm] = np.asarray(leaf.data)
                em.shape[nm], em.batch[nm] = leaf.shape, None
                in_names.append(nm)
            else:
                nm = em.const(np.array(leaf.data), f"{where.replace('/', '.')}const")
                names[id(leaf)] = nm
                in_names.append(nm)
        stem = f"{where}{EXPORTERS[node.op][0].split('/')[0]}_{node.sequence_nr}"
        outs_n = [stem + (f"_{k}" if k else "") for k in range(len(node.output_meta))]
        for k, nm in enumerate(outs_n):
            produced[(id(node), k)] = nm
            em.shape[nm] = node.output_meta[k].shape
        op = _Op(node, in_names, arrays, outs_n, em, where)
        EXPORTERS[node.op][1](op)
        for nm in outs_n:
            if nm not in em.batch:
                same = [em.batch.get(i) for i in in_names if em.batch.get(i) is not None]
                em.batch[nm] = same[0] if same else None

    final = []
    for t, name in zip(outs, output_names):
        src = produced.get((id(t.grad_fn), 0)) if t.grad_fn is not None else names.get(id(t))
        if src is None:
            raise ValueError("onnx.export: an output does not depend on the inputs or parameters; nothing to export.")
        em.emit("Identity", [src], [name], name=f"output_{name}")
        em.shape[name], em.batch[name] = t.shape, em.batch.get(src)
        final.append((name, t))
    fusion.run(em, opset)
    fusion.prune(em, [n for n, _ in final])

    def value_info(name: str, t: Any) -> Any:
        dims: list = list(t.shape)
        b = em.batch.get(name)
        if dynamic_batch and b is not None:
            dims[b] = "batch"
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(t.dtype), dims)

    graph = helper.make_graph(
        em.nodes,
        getattr(model, "__class__", type(model)).__name__ if params is None else getattr(model, "__name__", "model"),
        [value_info(n, x) for n, x in zip(input_names, xs)],
        [value_info(n, t) for n, t in final],
        initializer=[numpy_helper.from_array(np.array(a, order="C"), n) for n, a in em.inits.items()],
    )
    opsets = [helper.make_opsetid("", opset)]
    # The oldest IR version the opset allows, so older runtimes read the file too.
    proto = helper.make_model(graph, opset_imports=opsets, producer_name="tinygrad_cnn", ir_version=helper.find_min_ir_version_for(opsets))
    onnx.checker.check_model(proto, full_check=True)
    if check:
        _check_generalizes(proto, model, params, xs, outs, dynamic_batch)
    onnx.save(proto, os.fspath(path))
    return proto


def _other_input(x: np.ndarray, grow: bool) -> np.ndarray:
    """An input the export never saw, with the example's values: samples in reverse order, each
    flipped along its last axis, and (``grow``) one more sample."""
    if x.ndim == 0 or x.dtype.kind != "f":
        return np.concatenate([x, x[:1]]) if grow and x.ndim else x
    y = x[::-1][..., ::-1] if x.ndim > 1 else x[::-1]
    return np.ascontiguousarray(np.concatenate([y, x[:1]]) if grow else y)


_FROZEN = (
    "onnx.export: the exported graph does not reproduce the model on an input other than the example ({what}). "
    "Some value was computed from the example's data outside the recorded graph (numpy on x.data, a mask, a "
    "data-dependent shape) and was written as a constant{batch}. Compute it with Tensor ops, or pass check=False "
    "to write the file anyway."
)
_BATCH_HINT = ", or a reshape mixes the batch dimension with others"


def _check_generalizes(proto: Any, model: Any, params: Any, xs: list, outs: list, dynamic: bool) -> None:
    """Run the exported graph (through our importer) and the model on another input: a value
    computed from the example's data outside the recorded graph (numpy on ``x.data``, a
    data-dependent ``where``) is a constant in the file and makes them differ."""
    from ..autograd.grad_mode import no_grad
    from .importer import from_proto

    others = [_other_input(x.data, dynamic) for x in xs]
    modes = [(m, m.training) for m in model.modules()] if hasattr(model, "modules") else []
    for m, _ in modes:
        m.training = False
    try:
        with no_grad():
            want = model(*[Tensor(a) for a in others]) if params is None else model(params, *[Tensor(a) for a in others])
            got_params, fn = from_proto(proto, "<exported>")
            try:
                got = fn(got_params, *[Tensor(a) for a in others])
            except (ValueError, TypeError) as e:
                raise ValueError(_FROZEN.format(what=f"it fails: {e}", batch=_BATCH_HINT if dynamic else "")) from None
    finally:
        for m, mode in modes:
            m.training = mode
    want = list(want) if isinstance(want, (tuple, list)) else [want]
    got = list(got) if isinstance(got, tuple) else [got]
    for i, (w, g) in enumerate(zip(want, got)):
        w, g = np.asarray(w.data), np.asarray(g.data)
        tol = 1e-4 if w.dtype == np.float32 else 1e-9
        finite = np.abs(w[np.isfinite(w)]) if w.dtype.kind == "f" else np.abs(w)
        scale = max(float(finite.max(initial=0.0)), 1.0)
        with np.errstate(invalid="ignore", over="ignore"):
            same = w.shape == g.shape and np.allclose(g, w, rtol=tol, atol=tol * scale, equal_nan=True)
            diff = float(np.max(np.abs(g - w), initial=0.0)) if w.shape == g.shape else "n/a"
        if not same:
            what = f"output {i}: shape {g.shape} vs {w.shape}, max difference {diff}"
            raise ValueError(_FROZEN.format(what=what, batch=_BATCH_HINT if dynamic else ""))



