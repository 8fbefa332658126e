"""Custom ops shared by several test files (importable because pytest puts tests/ on sys.path)."""

import numpy as np

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import Function, once_differentiable


class WrongSignTanh(Function):
    """tanh with a backward of the wrong sign."""

    @staticmethod
    def forward(ctx, x):
        y = np.tanh(x)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * (y * y - 1.0)  # should be 1 - y^2


class CubeOnce(Function):
    """x^3 with a right first derivative written in raw numpy (@once_differentiable)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (x,) = ctx.saved_arrays
        return 3 * x**2 * g


class CubeConstantDerivative(Function):
    """x^3 whose backward is right once but builds its derivative from raw numpy, so a second
    derivative cannot see its dependence on x."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * tg.Tensor(3 * x.data**2)  # raw numpy: the dependence on x is lost to a second derivative


class ScaledBackward(Function):
    """Identity whose backward multiplies the gradient by ``scale`` (a number, or an array of the
    input's shape): a gradient wrong by a known factor, everywhere or at chosen elements."""

    @staticmethod
    def forward(ctx, w, scale):
        return w.copy()

    @staticmethod
    def backward(ctx, g):
        return g * tg.Tensor(np.broadcast_to(np.asarray(ctx.params["scale"], dtype=g.dtype), g.shape).copy())
