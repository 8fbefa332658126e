"""Matrix multiplication with numpy's rules (batched, broadcasting, 1-D operands)."""
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
    """``a @ b`` with numpy's rules: leading (batch) dimensions broadcast, and a 1-D ``a`` is a row
    (``b`` a column) whose added axis the result drops."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return matmul_array(a, b)

    @staticmethod
    def vmap(info, a, b):
        ba, bb = info.batched
        n = info.batch_size
        la, lb = a.ndim - ba, b.ndim - bb
        # One side batched: numpy's own broadcasting keeps the batch in front when that side, as a
        # stack of matrices, has the most dimensions; a batch of vectors times a matrix is v @ a.T.
        if not bb and (la == 1 and lb <= 2 or 2 <= la and lb <= la):
            return MatMul.apply(a, b)
        if not ba and 2 <= lb and la <= lb:
            return MatMul.apply(a, b)
        if not ba and lb == 1 and la <= 2:
            return MatMul.apply(b, R.Permute.apply(a, axes=(1, 0)) if la == 2 else a)
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
        if a.ndim == 1 and b.ndim == 1:  # a dot product: g is a scalar
            return (g * b if na else None), (g * a if nb else None)
        if a.ndim == 1 and b.ndim == 2:  # g is (m,): one product and one outer product
            return (MatMul.apply(b, g) if na else None), (a.unsqueeze(-1) * g if nb else None)
        if a.ndim == 2 and b.ndim == 1:  # g is (n,)
            return (g.unsqueeze(-1) * b if na else None), (MatMul.apply(g, a) if nb else None)
        # Otherwise the matrix rule, with a 1-D operand's dropped axis put back into a and g.
        a2 = a.unsqueeze(-2) if a.ndim == 1 else a
        b2 = b.unsqueeze(-1) if b.ndim == 1 else b
        g2 = g.unsqueeze(-1) if b.ndim == 1 else g
        g2 = g2.unsqueeze(-2) if a.ndim == 1 else g2
        ga = sum_to(MatMul.apply(g2, b2.mT), a2.shape).reshape(a.shape) if na else None
        gb = sum_to(MatMul.apply(a2.mT, g2), b2.shape).reshape(b.shape) if nb else None
        return ga, gb
