"""Matrix multiplication (batched, broadcasting). 1-D operands are handled in ``ops.functions.matmul``."""
from __future__ import annotations

import numpy as np

from ..autograd.function import Function
from ..kernels.parallel import parallel_chunks, plan
from .elementwise import sum_to

# OpenBLAS runs a GEMM with m*n*k up to 65536 * GEMM_MULTITHREAD_THRESHOLD (4 by default) on the
# calling thread (interface/gemm.c), so smaller products never wake its workers.
_ONE_THREAD_MNK = 65536 * 4


def matmul_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)`` (ndim >= 2, batch dimensions broadcast) with the output's rows shared
    among the thread pool and the BLAS on one thread meanwhile (see kernels/parallel.py: OpenBLAS's
    own workers would keep spinning after the GEMM, taking a core from the next conv or pool).
    Products OpenBLAS keeps on one thread anyway go straight to numpy, since the pool's
    bookkeeping would cost more than they take."""
    m = a.shape[-2]
    if m * a.shape[-1] * b.shape[-1] <= _ONE_THREAD_MNK:
        return np.matmul(a, b)
    out = np.empty(np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) + (m, b.shape[-1]), np.result_type(a, b))

    def rows(i: int, j: int) -> None:
        np.matmul(a[..., i:j, :], b, out=out[..., i:j, :])

    # One chunk of rows per thread: more, shorter GEMMs lose more to per-call overhead than they
    # gain in balance.
    parallel_chunks(rows, plan(m, 2.0 * out.size * a.shape[-1], per_thread=1))
    return out


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
