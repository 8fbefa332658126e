"""A Function's backward reads the forward's parameters from ``ctx.params``, defaults included."""
import numpy as np
import pytest

import tinygrad_cnn as tg


class Swish(tg.Function):
    @staticmethod
    def forward(ctx, x, beta=1.0):
        ctx.save_for_backward(x)
        return x / (1.0 + np.exp(-beta * x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        beta = ctx.params["beta"]
        s = (x * beta).sigmoid()
        return g * (s + beta * x * s * (1 - s))


class AddScaled(tg.Function):
    """A defaulted positional parameter that may be filled by an input; a keyword-only default."""

    @staticmethod
    def forward(ctx, x, y=None, *, scale=3.0):
        return x * scale if y is None else x * scale + y

    @staticmethod
    def backward(ctx, g):
        s = ctx.params["scale"]
        return (g * s,) if len(ctx.needs_input_grad) == 1 else (g * s, g)


def test_default_visible_to_backward_without_the_parameter():
    x = tg.randn(4, 3, dtype=np.float64, requires_grad=True, seed=0)
    y = Swish.apply(x)
    assert y.grad_fn.params == {"beta": 1.0}
    y.sum().backward()
    s = 1 / (1 + np.exp(-x.data))
    np.testing.assert_allclose(x.grad.data, s + x.data * s * (1 - s))
    assert tg.gradcheck(lambda x: Swish.apply(x), (x,))
    assert tg.gradgradcheck(lambda x: Swish.apply(x), (x,))


def test_passed_parameter_wins_over_default():
    x = tg.randn(5, dtype=np.float64, requires_grad=True, seed=1)
    assert Swish.apply(x, beta=1.5).grad_fn.params == {"beta": 1.5}
    assert tg.gradcheck(lambda x: Swish.apply(x, beta=1.5), (x,))


def test_defaults_only_for_parameters_not_filled_by_inputs():
    x = tg.randn(3, dtype=np.float64, requires_grad=True, seed=2)
    y = tg.randn(3, dtype=np.float64, requires_grad=True, seed=3)
    assert AddScaled.apply(x).grad_fn.params == {"y": None, "scale": 3.0}
    assert AddScaled.apply(x, y).grad_fn.params == {"scale": 3.0}
    assert AddScaled.apply(x, y, scale=0.5).grad_fn.params == {"scale": 0.5}
    assert tg.gradcheck(lambda x, y: AddScaled.apply(x, y), (x, y))
    assert tg.gradcheck(lambda x: AddScaled.apply(x), (x,))


@pytest.mark.parametrize("beta", [0.5, 2.0])
def test_recorded_params_replay_in_check_graph(beta):
    x = tg.randn(2, 3, dtype=np.float64, requires_grad=True, seed=5)
    assert tg.check_graph(lambda x: Swish.apply(x) * beta, (x,))
