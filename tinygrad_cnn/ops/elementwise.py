"""Elementwise primitives. Binary ops broadcast; their backward sums the gradient back to each
input's shape (``sum_to``). Every backward is written with Tensor ops, so it is differentiable."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..autograd.function import Function
from . import vmap_rules as R


def sum_to(g: Any, shape: tuple) -> Any:
    """Sum a broadcast gradient back to ``shape`` (the inverse of broadcasting)."""
    if g.shape == shape:
        return g
    lead = g.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(i + lead for i, s in enumerate(shape) if s == 1 and g.shape[i + lead] != 1)
    r = g.sum(axis=axes, keepdims=True) if axes else g
    return r.reshape(shape) if r.shape != shape else r


def _mask(cond: np.ndarray, like: np.ndarray) -> np.ndarray:
    return cond.astype(like.dtype if like.dtype.kind == "f" else np.float32)


class Add(Function):
    broadcasts = True

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a + b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (sum_to(g, sa) if na else None), (sum_to(g, sb) if nb else None)


class AddScalar(Function):
    """x + c for a Python number c: a parameter of the op, not a graph input (cheaper per op)."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x, c):
        if x.dtype.kind in "biu" and type(c) is float:  # a float scalar makes an integer tensor float32, as in PyTorch
            x = x.astype(np.float32)
        return x + c

    @staticmethod
    def backward(ctx, g):
        return g


class MulScalar(Function):
    """x * c for a Python number c."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        if x.dtype.kind in "biu" and type(c) is float:  # as in AddScalar
            x = x.astype(np.float32)
        return x * c

    @staticmethod
    def backward(ctx, g):
        return MulScalar.apply(g, c=ctx.c)


class Sub(Function):
    broadcasts = True

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        return a - b

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (sum_to(g, sa) if na else None), (sum_to(-g, sb) if nb else None)


class Mul(Function):
    broadcasts = True

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        return (sum_to(g * b, a.shape) if na else None), (sum_to(g * a, b.shape) if nb else None)


class Div(Function):
    broadcasts = True

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        if a.dtype.kind in "biu":  # true division of integers gives float32, as in PyTorch (not numpy's float64)
            return np.true_divide(a, b, dtype=np.float32)
        return a / b

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = sum_to(g / b, a.shape) if na else None
        # (a / b) / b, not a / (b * b): b * b underflows to 0 or overflows to inf long before the quotient does.
        gb = sum_to(-g * (a / b) / b, b.shape) if nb else None
        return ga, gb


class Neg(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, g):
        return -g


class PowScalar(Function):
    """``x ** p`` for a constant exponent ``p``."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x, exponent):
        ctx.save_for_backward(x)
        ctx.exponent = exponent
        if x.dtype.kind in "biu" and isinstance(exponent, float):  # as in AddScalar
            x = x.astype(np.float32)
        return x**exponent

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        p = ctx.exponent
        if p == 0:  # zeros, as PyTorch (g * 0 would be NaN where g is infinite)
            return g.new_zeros(g.shape)
        if p == 1:
            return g
        if p == 2:  # x ** 1 would put a needless pow node in the graph of a create_graph backward
            return g * (x * 2.0)
        return g * (p * x ** (p - 1))


class Pow(Function):
    """``a ** b`` with a tensor exponent. d/da is 0 where b == 0, also at a = 0 or NaN (as in
    PyTorch); d/db uses log(a), taken as 0 where a <= 0."""

    broadcasts = True

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, a, b):
        y = a**b
        ctx.save_for_backward(a, b, y)
        return y

    @staticmethod
    def backward(ctx, g):
        a, b, y = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = None
        if na:  # where b == 0 and a is 0 or NaN the formula is 0 * inf or 0 * NaN; PyTorch's gradient there is 0
            ga = g * b * a ** (b - 1)
            zero = (b.data == 0) & ((a.data == 0) | np.isnan(a.data))
            ga = sum_to(Where.apply(0.0, ga, cond=zero) if zero.any() else ga, a.shape)
        gb = None
        if nb:
            pos = a.data > 0
            log_a = Where.apply(Log.apply(Where.apply(a, 1.0, cond=pos)), 0.0, cond=pos)
            gb = sum_to(g * y * log_a, b.shape)
        return ga, gb


class Exp(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        y = np.exp(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y


class Log(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / x


class Sqrt(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        y = np.sqrt(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * 0.5 / y


class Abs(Function):
    """|x|; the gradient at 0 is 0 (the subgradient PyTorch uses), and at NaN too (as PyTorch's sgn)."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        ctx.sign = _mask(x > 0, x) - _mask(x < 0, x)
        return np.abs(x)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.sign


class Log1p(Function):
    """log(1 + x), accurate for small x."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log1p(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g / (x + 1.0)


class Expm1(Function):
    """exp(x) - 1, accurate for small x."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        y = np.expm1(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y + 1.0)


class Sin(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.sin(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * Cos.apply(x)


class Cos(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.cos(x)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return -g * Sin.apply(x)


class Sign(Function):
    """-1, 0 or 1 (NaN stays NaN); the gradient is 0 everywhere, as in PyTorch."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        return np.sign(x)

    @staticmethod
    def backward(ctx, g):
        return g.new_zeros(g.shape)  # not g * 0, which is NaN where g is infinite


class Rounding(Function):
    """floor, ceil, round (half to even) or trunc; piecewise constant, so the gradient is 0
    everywhere, as in PyTorch."""

    FNS: dict[str, Any] = {"floor": np.floor, "ceil": np.ceil, "round": np.round, "trunc": np.trunc}

    @staticmethod
    def forward(ctx, x, mode):
        return Rounding.FNS[mode](x)

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def backward(ctx, g):
        # Zeros, not g * 0: an infinite incoming gradient would make that NaN (PyTorch gives 0).
        return g.new_zeros(g.shape)


class Tanh(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return TanhBackward.apply(g, y)


class TanhBackward(Function):
    """``g * (1 - y * y)``: tanh's gradient from its output ``y``, one op in a backward pass instead
    of three (PyTorch's ``tanh_backward``); its own backward gives the higher orders."""

    broadcasts = True  # under vmap a batched g meets an unbatched y

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return g * (1.0 - y * y)

    @staticmethod
    def backward(ctx, gg):
        g, y = ctx.saved_tensors
        ng, ny = ctx.needs_input_grad
        return (sum_to(TanhBackward.apply(gg, y), g.shape) if ng else None), (sum_to(gg * g * y * -2.0, y.shape) if ny else None)


class Sigmoid(Function):
    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        # exp of a non-positive number only: no overflow warning for large |x|.
        e = np.exp(-np.abs(x))
        y = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return SigmoidBackward.apply(g, y)


class SigmoidBackward(Function):
    """``g * y * (1 - y)``: sigmoid's gradient from its output ``y``, one op (PyTorch's
    ``sigmoid_backward``); its own backward gives the higher orders."""

    broadcasts = True

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, g, y):
        ctx.save_for_backward(g, y)
        return g * y * (1.0 - y)

    @staticmethod
    def backward(ctx, gg):
        g, y = ctx.saved_tensors
        ng, ny = ctx.needs_input_grad
        return (sum_to(SigmoidBackward.apply(gg, y), g.shape) if ng else None), (sum_to(gg * g * (1.0 - 2.0 * y), y.shape) if ny else None)


class ReLU(Function):
    """max(x, 0); the gradient at exactly 0 is 0, as in PyTorch, and passes where x is NaN (PyTorch
    zeroes it only where x <= 0)."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        if ctx.needs_input_grad:  # recorded for backward (not under no_grad, not for a constant)
            ctx.mask = _mask(~(x <= 0), x)
        return np.maximum(x, 0)

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask


class _Pick(Function):
    """Elementwise max/min with PyTorch's gradient: each side gets the gradient unless it lost the
    comparison, halved at a tie; so where either side is NaN both get all of it. Subclasses name
    the numpy function and the comparison that says the first argument lost."""

    broadcasts = True
    pick: Any = None
    loses: Any = None

    @classmethod
    def _forward(cls, ctx, a, b):
        ctx.shapes = (a.shape, b.shape)
        y = cls.pick(a, b)
        tie = 0.5 * _mask(a == b, y)
        ctx.wa = _mask(~cls.loses(a, b), y) - tie
        ctx.wb = _mask(~cls.loses(b, a), y) - tie
        return y

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        return (sum_to(g * ctx.wa, sa) if na else None), (sum_to(g * ctx.wb, sb) if nb else None)


class Maximum(_Pick):
    pick, loses = staticmethod(np.maximum), staticmethod(np.less)

    @staticmethod
    def forward(ctx, a, b):
        return Maximum._forward(ctx, a, b)


class Minimum(_Pick):
    pick, loses = staticmethod(np.minimum), staticmethod(np.greater)

    @staticmethod
    def forward(ctx, a, b):
        return Minimum._forward(ctx, a, b)


class Where(Function):
    """``cond ? a : b`` with a constant boolean ``cond`` (a keyword parameter)."""

    broadcasts = True

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, a, b, cond):
        ctx.shapes = (a.shape, b.shape)
        ctx.cond = cond
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx, g):
        sa, sb = ctx.shapes
        na, nb = ctx.needs_input_grad
        ga = sum_to(Where.apply(g, 0.0, cond=ctx.cond), sa) if na else None
        gb = sum_to(Where.apply(0.0, g, cond=ctx.cond), sb) if nb else None
        return ga, gb


class Clip(Function):
    """Clamp to [lo, hi]; the gradient passes where lo <= x <= hi."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x, lo, hi):
        y = np.clip(x, lo, hi)
        if ctx.needs_input_grad:  # recorded for backward
            inside = np.ones(x.shape, dtype=bool)
            if lo is not None:
                inside &= x >= lo
            if hi is not None:
                inside &= x <= hi
            ctx.mask = _mask(inside, x)
        return y

    @staticmethod
    def backward(ctx, g):
        return g * ctx.mask


class Clone(Function):
    """A copy with memory of its own (``Tensor.clone``; ``order="C"`` for ``contiguous``); the
    gradient passes unchanged."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x, order=None):  # None: numpy's "K", left out of graph labels
        return np.array(x, copy=True, order=order or "K")

    @staticmethod
    def backward(ctx, g):
        return g


class Cast(Function):
    """Change dtype; the gradient is cast back to the input's dtype."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.in_dtype = x.dtype
        return x.astype(dtype)  # an integer or bool result carries no gradient (Function.apply)

    @staticmethod
    def backward(ctx, g):
        return Cast.apply(g, dtype=ctx.in_dtype)


_erf = np.frompyfunc(math.erf, 1, 1)  # libm's erf, elementwise (numpy has none)


class Erf(Function):
    """The error function, 2/sqrt(pi) * integral_0^x exp(-t^2) dt; d/dx = 2/sqrt(pi) * exp(-x^2)."""

    vmap = staticmethod(R.elementwise)

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.asarray(_erf(x), dtype=x.dtype if x.dtype.kind == "f" else np.float32)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((-(x * x)).exp() * (2.0 / math.sqrt(math.pi)))
