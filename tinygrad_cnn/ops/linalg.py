"""Matrix multiplication (batched, broadcasting). 1-D operands are handled in ``ops.functions.matmul``."""
from __future__ import annotations

from ..autograd.function import Function
from ..kernels.matmul import matmul_array
from .elementwise import sum_to


class MatMul(Function):
    """``a @ b`` for a, b with ndim >= 2; leading (batch) dimensions broadcast."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return matmul_array(a, b)

    @staticmethod
    def backward(ctx, g):
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        ga = sum_to(MatMul.apply(g, b.mT), a.shape) if na else None
        gb = sum_to(MatMul.apply(a.mT, g), b.shape) if nb else None
        return ga, gb
