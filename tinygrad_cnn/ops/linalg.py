"""Matrix multiplication (batched, broadcasting). 1-D operands are handled in ``ops.functions.matmul``."""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..kernels.matmul import matmul_array
from . import vmap_rules as R
from .elementwise import sum_to


def matmul_shape(sa: tuple, sb: tuple) -> tuple:
    """The shape of ``a @ b`` for operands of shapes ``sa`` and ``sb`` (numpy's matmul rules)."""
    a2 = (1,) + tuple(sa) if len(sa) == 1 else tuple(sa)
    b2 = tuple(sb) + (1,) if len(sb) == 1 else tuple(sb)
    out = np.broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(sa) == 1:
        out = out[:-2] + out[-1:]
    if len(sb) == 1:
        out = out[:-1]
    return out


class MatMul(Function):
    """``a @ b`` for a, b with ndim >= 2; leading (batch) dimensions broadcast."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return matmul_array(a, b)

    @staticmethod
    def vmap(info, a, b):
        ba, bb = info.batched
        n = info.batch_size
        la, lb = a.ndim - ba, b.ndim - bb
        out = matmul_shape(tuple(a.shape[ba:]), tuple(b.shape[bb:]))
        # 1-D operands as matrices (a row, b a column); the final reshape drops the added axes.
        if la == 1:
            a = R.reshape(a, (n, 1, a.shape[1]) if ba else (1, a.shape[0]))
        if lb == 1:
            b = R.reshape(b, (n, b.shape[1], 1) if bb else (b.shape[0], 1))
        r = max(a.ndim - ba, b.ndim - bb)
        if ba:
            a = R.pad_batched(a, r)
        if bb:
            b = R.pad_batched(b, r)
        y = MatMul.apply(a, b)
        return R.reshape(y, (n,) + out)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = sum_to(MatMul.apply(g, b.mT), a.shape) if na else None
        gb = sum_to(MatMul.apply(a.mT, g), b.shape) if nb else None
        return ga, gb
