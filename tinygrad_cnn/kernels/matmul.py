"""Matrix products on the thread pool: the kernel under ``ops.linalg.MatMul``."""
from __future__ import annotations

import math

import numpy as np

from . import parallel


def matmul_array(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul(a, b)`` (batch dimensions broadcast, 1-D operands promoted) with the output's
    rows shared among the thread pool and the BLAS on one thread meanwhile (see
    kernels/parallel.py: OpenBLAS's own workers would keep spinning after the GEMM, taking a core
    from the next conv or pool). Products OpenBLAS keeps on one thread anyway go straight to
    numpy, since the pool's bookkeeping would cost more than they take."""
    if a.ndim <= 2 and b.ndim <= 2 and a.size * (b.shape[-1] if b.ndim == 2 else 1) <= parallel.ONE_THREAD_MNK:
        return np.matmul(a, b)  # a.size * n is m * k * n, a 1-D operand counting as one row or column
    if a.ndim == 1 or b.ndim == 1:  # numpy's promotion: a 1-D a is a row, a 1-D b a column; the result drops those axes
        out = matmul_array(a[None] if a.ndim == 1 else a, b[:, None] if b.ndim == 1 else b)
        return out.reshape(out.shape[:-2] + out.shape[-2:-1] * (a.ndim > 1) + out.shape[-1:] * (b.ndim > 1))
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    batch = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) if a.ndim > 2 or b.ndim > 2 else ()
    if batch:
        if k == 1:  # a stack of outer products: a broadcast multiply, not GEMMs with an inner dimension of 1
            return _outer_products(a, b, batch + (m, n))
        if b.ndim > 2 and not any(b.strides[:-2]) and a.shape[:-2] == batch:
            # b is one matrix broadcast over the batch (a shared weight under vmap): fold a's
            # batch into its rows and do one GEMM instead of one per batch entry.
            return matmul_array(a.reshape(-1, k), b[(0,) * (b.ndim - 2)]).reshape(batch + (m, n))
    if m * k * n <= parallel.ONE_THREAD_MNK:
        return np.matmul(a, b)
    # One chunk of rows per thread: more, shorter GEMMs lose more to per-call overhead than they
    # gain in balance.
    parts = parallel.plan(m, 2.0 * math.prod(batch) * m * n * k, per_thread=1)
    if len(parts) == 1:  # one GEMM, still with the BLAS held to one thread (see parallel_chunks)
        return parallel.parallel_chunks(lambda i, j: np.matmul(a, b), parts)[0]
    out = np.empty(batch + (m, n), np.result_type(a, b))

    def rows(i: int, j: int) -> None:
        np.matmul(a[..., i:j, :], b, out=out[..., i:j, :])

    parallel.parallel_chunks(rows, parts)
    return out


def _outer_products(a: np.ndarray, b: np.ndarray, shape: tuple) -> np.ndarray:
    """``a * b`` for a (..., m, 1) and b (..., 1, n) whose batch dimensions broadcast to
    ``shape[:-2]``. Bound by writing the output (per-example weight gradients under vmap are such
    stacks, often hundreds of MB), so large ones are shared among the threads along the first
    batch dimension: each core then writes, and pages in, its own part."""
    parts = parallel.plan(shape[0], math.prod(shape) * parallel.PASS_FLOPS_PER_ELEMENT, blas=False)
    if len(parts) == 1:
        return np.multiply(a, b)
    out = np.empty(shape, np.result_type(a, b))
    a = np.broadcast_to(a, shape[:-1] + (1,))
    b = np.broadcast_to(b, shape[:-2] + (1, shape[-1]))

    def fill(i: int, j: int) -> None:
        np.multiply(a[i:j], b[i:j], out=out[i:j])

    parallel.parallel_chunks(fill, parts, blas=False)
    return out
