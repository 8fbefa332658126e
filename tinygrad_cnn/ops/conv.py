"""Convolution primitives: ``Conv2d``, ``ConvTranspose2d`` and the weight-gradient op
``ConvWeightGrad``; the functions users call (argument checks, output sizes) are
:func:`tinygrad_cnn.nn.functional.conv2d` and :func:`~tinygrad_cnn.nn.functional.conv_transpose2d`.
The arithmetic is in :mod:`tinygrad_cnn.kernels.conv` (im2col or by rows); the ops here wire
its kernels into the graph.

The three ops are each other's backward, so every derivative is again an op of the graph:

- ``Conv2d(x, w)``: input grad = ``ConvTranspose2d(g, w)``, weight grad = ``ConvWeightGrad(x, g)``.
- ``ConvTranspose2d(x, w)``: input grad = ``Conv2d(g, w)``, weight grad = ``ConvWeightGrad(g, x)``.
- ``ConvWeightGrad(a, b)`` (bilinear: <gw, v> = <Conv2d(a, v), b>): grad a = ``ConvTranspose2d(b, v)``,
  grad b = ``Conv2d(a, v)``.

With groups 1 the forward kernel fuses the bias into its GEMMs, and ``ConvWeightGrad(x, g,
bias=True)`` then returns the bias gradient too (an op with two outputs); otherwise the bias
grad is ``g.sum((0, 2, 3))``. Memory: Conv2d keeps x (a reference, as the graph input of the
weight-grad op) and, only when the weight needs a gradient, the kernel's unfolded input
(:class:`tinygrad_cnn.kernels.conv.Unfolded`), which the weight-gradient kernel takes instead
of unfolding x again; it is freed with the node's saved values after backward.
"""
from __future__ import annotations

import threading
from typing import Any

from ..autograd.function import Function
from ..kernels import conv as K
from ..kernels.geometry import Window
from . import vmap_rules as R

_P = ("stride", "padding", "dilation", "groups")


def _win(w_shape: tuple, stride, padding, dilation, out) -> Window:
    return Window(tuple(w_shape[2:]), stride, padding, dilation, tuple(out))


def _batched_conv(op: Any, info: Any, x: Any, w: Any, bias: tuple, *, groups: int, **params: Any) -> Any:
    """The batching rule of Conv2d and ConvTranspose2d. Batched images only: one conv over the
    N*B images. Per-example weights: one grouped conv, example b's channels forming groups
    b*G .. b*G+G-1."""
    bx, bw, *bb = info.batched
    if not bw and not any(bb):
        xf, lead = R.fold(x)
        return R.unfold(op.apply(xf, w, *bias, groups=groups, **params), lead)
    n = info.batch_size
    xb = x if bx else R.expand_batch(x, n)
    wf = (w if bw else R.expand_batch(w, n)).reshape((n * w.shape[bw],) + tuple(w.shape[bw + 1:]))
    bf = [(b if f else R.expand_batch(b, n)).reshape((-1,)) for b, f in zip(bias, bb)]
    y = op.apply(R.batched_to_groups(xb), wf, *bf, groups=groups * n, **params)
    return R.groups_to_batched(y, n)


class Conv2d(Function):
    """y = conv2d(x, w [, b]); params stride, padding, dilation (pairs), groups, out (OH, OW)."""

    new_gradients = True

    @staticmethod
    def forward(ctx, x, w, *bias, stride, padding, dilation, groups, out):
        keep = bool(ctx.needs_input_grad) and ctx.needs_input_grad[1]  # unfolded x saved for the weight grad
        ctx.fused = bool(bias) and groups == 1  # the weight-grad op then returns the bias grad too
        y, unfolded = K.conv2d(x, w, bias[0] if bias else None, _win(w.shape, stride, padding, dilation, out), groups, keep)
        ctx.save_for_backward(x, w, unfolded)
        if unfolded is not None:  # its buffer goes back to the kernels' workspace with the saved values
            ctx.on_release(unfolded.release)
        return y

    @staticmethod
    def vmap(info, x, w, *bias, **params):
        return _batched_conv(Conv2d, info, x, w, bias, **params)

    @staticmethod
    def backward(ctx, g):
        x, w, unfolded = ctx.saved_tensors
        nx, nw, *nb = ctx.needs_input_grad
        p = {k: ctx.params[k] for k in _P}
        gx = ConvTranspose2d.apply(g, w, out=x.shape[2:], **p) if nx else None
        if nw and nb and nb[0] and ctx.fused:  # the weight-grad op returns the bias grad too
            gw, gb = ConvWeightGrad.unfolded_apply(unfolded, x, g, kernel=w.shape[2:], bias=True, **p)
            return gx, gw, gb
        gw = ConvWeightGrad.unfolded_apply(unfolded, x, g, kernel=w.shape[2:], **p) if nw else None
        gb = g.sum(axis=(0, 2, 3)) if nb and nb[0] else None
        return (gx, gw, gb) if nb else (gx, gw)


class ConvTranspose2d(Function):
    """y = conv_transpose2d(x, w [, b]), w (C_in, C_out/G, KH, KW); ``out`` is the (H_out, W_out) grid."""

    new_gradients = True

    @staticmethod
    def forward(ctx, x, w, *bias, stride, padding, dilation, groups, out):
        win = _win(w.shape, stride, padding, dilation, x.shape[2:])
        ctx.save_for_backward(x, w)
        return K.conv_transpose2d(x, w, bias[0] if bias else None, win, groups, (x.shape[0], w.shape[1] * groups, *out))

    @staticmethod
    def vmap(info, x, w, *bias, **params):
        return _batched_conv(ConvTranspose2d, info, x, w, bias, **params)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        nx, nw, *nb = ctx.needs_input_grad
        p = {k: ctx.params[k] for k in _P}
        gx = Conv2d.apply(g, w, out=x.shape[2:], **p) if nx else None
        gw = ConvWeightGrad.apply(g, x, kernel=w.shape[2:], **p) if nw else None
        gb = g.sum(axis=(0, 2, 3)) if nb and nb[0] else None
        return (gx, gw, gb) if nb else (gx, gw)


# The forward conv's unfolded input on its way to the weight-gradient kernel (see
# ConvWeightGrad.unfolded_apply): per thread, set only for the duration of one apply.
_handoff = threading.local()


class ConvWeightGrad(Function):
    """Weight gradient of ``conv2d(a, w)`` for output gradient b: (C_b, C_a/G, KH, KW); with
    ``bias`` (groups 1 only) two outputs, the weight gradient and the bias gradient (C_b,).

    Its parameters are only the conv's own (kernel, stride, padding, dilation, groups, bias):
    re-running the op from its inputs and parameters (as ``check_graph`` does) unfolds ``a``
    itself. :meth:`unfolded_apply` lets the backward of ``Conv2d`` hand over the unfolded input
    its forward kernel kept; the op passes it on to the kernel and keeps no reference to it."""

    new_gradients = True

    @classmethod
    def unfolded_apply(cls, unfolded: K.Unfolded | None, a: Any, b: Any, **params: Any) -> Any:
        """``apply``, the weight-gradient kernel taking ``unfolded`` (the forward kernel's
        unfolded ``a``) instead of unfolding ``a`` again."""
        if unfolded is None:
            return cls.apply(a, b, **params)
        _handoff.value = (unfolded, a.data)
        try:
            return cls.apply(a, b, **params)
        finally:
            _handoff.value = None

    @staticmethod
    def forward(ctx, a, b, kernel, stride, padding, dilation, groups, bias=False):
        handed = getattr(_handoff, "value", None)
        _handoff.value = None
        # Only for the array it was made from (an apply nested in this one never sees it).
        unfolded = handed[0] if handed is not None and handed[1] is a else None
        win = Window(tuple(kernel), stride, padding, dilation, b.shape[2:])
        ctx.save_for_backward(a, b)
        return K.conv_weight_grad(a, b, win, groups, bias, unfolded)

    @staticmethod
    def vmap(info, a, b, kernel, stride, padding, dilation, groups, bias=False):
        # Per-example weight gradients: the grouped conv's weight gradient, one group set per example.
        n = info.batch_size
        ba, bb = info.batched
        ag = R.batched_to_groups(a if ba else R.expand_batch(a, n))
        bg = R.batched_to_groups(b if bb else R.expand_batch(b, n))
        p = dict(kernel=kernel, stride=stride, padding=padding, dilation=dilation)
        gw = ConvWeightGrad.apply(ag, bg, groups=groups * n, **p)
        gw = gw.reshape((n, gw.shape[0] // n) + tuple(gw.shape[1:]))
        if not bias:
            return gw
        bsum = (b if bb else R.expand_batch(b, n)).sum(axis=(1, 3, 4))
        return gw, bsum

    @staticmethod
    def backward(ctx, v, *vb):
        # With the bias output, its gradient vb reaches b as Conv2d's bias does.
        a, b = ctx.saved_tensors
        na, nb = ctx.needs_input_grad
        p = {k: ctx.params[k] for k in _P}
        ga = ConvTranspose2d.apply(b, v, out=a.shape[2:], **p) if na else None
        gb = Conv2d.apply(a, v, *vb, out=b.shape[2:], **p) if nb else None
        return ga, gb
