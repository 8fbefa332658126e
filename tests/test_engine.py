import gc
import tracemalloc

import numpy as np
import pytest
from custom_ops import CubeOnce

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import Function, grad
from tinygrad_cnn.nn import functional as F


def test_backward_accumulates_and_requires_gradient_for_non_scalars():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    (x * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad.data, 4 * x.data)
    y = x * 2
    with pytest.raises(RuntimeError, match="gradient="):
        y.backward()
    x.grad = None
    y.backward(gradient=tg.ones(3))
    np.testing.assert_allclose(x.grad.data, [2, 2, 2])


def test_each_node_runs_once_even_with_fan_out():
    calls = []

    class Count(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            calls.append(1)
            return g

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = Count.apply(x)
    y = (h * h + h * 3 + h).sum()
    y.backward()
    assert len(calls) == 1
    np.testing.assert_allclose(x.grad.data, 2 * x.data + 4)


def test_second_backward_without_retain_graph_says_what_to_pass():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()
    x.grad = None
    y2 = (x.exp() * x).sum()
    y2.backward(retain_graph=True)
    y2.backward()
    np.testing.assert_allclose(x.grad.data, 2 * (np.exp(x.data) * (x.data + 1)), rtol=1e-6)


def test_long_chain_is_iterative():
    x = tg.tensor([1.0], requires_grad=True)
    h = x
    for _ in range(100_000):
        h = h + 1.0
    h.backward()
    assert x.grad.item() == 1.0


def test_higher_order_derivatives():
    x = tg.tensor([0.5, -1.0, 2.0], dtype=np.float64, requires_grad=True)
    y = (x**4).sum()
    (g,) = grad(y, x, create_graph=True)
    np.testing.assert_allclose(g.data, 4 * x.data**3)
    (h,) = grad(g.sum(), x, create_graph=True)
    np.testing.assert_allclose(h.data, 12 * x.data**2)
    (t,) = grad(h.sum(), x)
    np.testing.assert_allclose(t.data, 24 * x.data)
    assert x.grad is None  # grad() leaves .grad untouched


def test_backward_create_graph_then_differentiate_the_gradient():
    x = tg.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    y = x.tanh().sum()
    y.backward(create_graph=True)
    gx = x.grad
    x.grad = None
    gx.sum().backward()
    t = np.tanh(x.data)
    np.testing.assert_allclose(x.grad.data, -2 * t * (1 - t**2))


def test_grad_modes():
    x = tg.tensor([1.0], requires_grad=True)
    with tg.no_grad():
        assert not (x * 2).requires_grad
        with tg.enable_grad():
            assert (x * 2).requires_grad
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad

    @tg.no_grad()
    def f(v):
        return v * 2

    assert not f(x).requires_grad and (x * 2).requires_grad


def test_broadcast_gradients_sum_back():
    a = tg.randn(3, 1, 4, seed=0, dtype=np.float64, requires_grad=True)
    b = tg.randn(5, 1, seed=1, dtype=np.float64, requires_grad=True)
    (a * b).sum().backward()
    assert a.grad.shape == a.shape and b.grad.shape == b.shape
    np.testing.assert_allclose(a.grad.data, np.broadcast_to(b.data.sum(), (3, 1, 4)) * np.ones((3, 1, 4)))
    np.testing.assert_allclose(b.grad.data, np.full((5, 1), a.data.sum()))


def test_saved_array_protection():
    w = tg.tensor([1.0, 2.0], requires_grad=True, name="w")
    y = (w * w).sum()
    with pytest.raises(ValueError, match="read-only"):
        w.data[0] = 5.0  # a raw write to a saved array fails at once
    with tg.no_grad():
        w.sub_(0.1)  # an in-place method (as an optimizer does) is allowed but recorded...
    with pytest.raises(RuntimeError, match=r"Mul: 'w' of shape \(2,\).*modified in place"):
        y.backward()  # ...and the stale graph refuses to give a wrong gradient
    del y
    z = (w * 3).sum()
    z.backward()
    w.data[0] = 0.0  # writable again once no live graph saved it


def test_memory_is_flat_over_many_iterations():
    w = tg.randn(64, 64, seed=0, requires_grad=True)
    x = tg.randn(32, 64, seed=1)

    def step():
        loss = ((x @ w).relu() @ w).tanh().mean()
        loss.backward()
        w.grad = None

    for _ in range(20):
        step()
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(1000):
        step()
    gc.collect()
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 200_000, f"memory grew by {grown} bytes over 1000 iterations"


def test_unused_graph_is_freed_without_gc():
    import weakref

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    node = weakref.ref(y.grad_fn)
    del y
    assert node() is None


class Swish(Function):
    @staticmethod
    def forward(ctx, x, beta=1.0):
        s = 1 / (1 + np.exp(-beta * x))
        ctx.beta = beta
        ctx.save_for_backward(x)
        return x * s

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        s = (x * ctx.beta).sigmoid()
        return g * (s + ctx.beta * x * s * (1 - s))


def test_custom_function_first_and_second_order():
    x = tg.randn(5, seed=0, dtype=np.float64, requires_grad=True)
    assert tg.gradcheck(lambda v: Swish.apply(v, beta=1.5), (x,))
    assert tg.gradgradcheck(lambda v: Swish.apply(v, beta=1.5), (x,))
    y = Swish.apply(x)
    assert y.grad_fn.name == "Swish" and y.grad_fn.needs_input_grad == (True,)


def test_once_differentiable_backward_works_once_and_refuses_twice():
    x = tg.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    CubeOnce.apply(x).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3, 12])
    (g,) = grad(CubeOnce.apply(x).sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="CubeOnce.*once_differentiable"):
        g.sum().backward()


def test_mark_non_differentiable_and_needs_input_grad():
    class SortWithIndex(Function):
        @staticmethod
        def forward(ctx, x):
            idx = np.argsort(x)
            ctx.idx = idx
            ctx.mark_non_differentiable(idx)
            return x[idx], idx

        @staticmethod
        def backward(ctx, g, _g_idx):
            out = tg.zeros(g.shape, dtype=g.dtype)
            return F.getitem(g, np.argsort(ctx.idx)) + out

    x = tg.tensor([3.0, 1.0, 2.0], requires_grad=True)
    v, i = SortWithIndex.apply(x)
    assert v.requires_grad and not i.requires_grad
    (v * tg.tensor([1.0, 2.0, 3.0])).sum().backward()
    np.testing.assert_allclose(x.grad.data, [3.0, 1.0, 2.0])


def test_backward_returning_wrong_number_or_shape_is_named():
    class Bad(Function):
        @staticmethod
        def forward(ctx, x):
            return x.sum()

        @staticmethod
        def backward(ctx, g):
            return g  # shape () for an input of shape (3,)

    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"Bad.backward returned a gradient of shape \(\) for input 0"):
        Bad.apply(x).backward()


def test_detect_anomaly_names_op_and_line():
    x = tg.tensor([-1.0, 1.0], requires_grad=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        with tg.detect_anomaly():
            with pytest.raises(FloatingPointError, match=r"(?s)Sqrt forward produced NaN.*test_engine.py"):
                x.sqrt()
            with pytest.raises(FloatingPointError, match="Log forward produced Inf"):
                (x * 0.0).log()
        assert np.isnan(x.sqrt().data[0])  # outside the context: no checks


def test_detect_anomaly_in_backward_names_creation_site():
    x = tg.tensor([0.0, 1.0], requires_grad=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        with tg.detect_anomaly():
            y = x.sqrt()  # forward fine (0), backward 0.5/0 = inf
            with pytest.raises(FloatingPointError, match=r"(?s)Sqrt backward produced Inf.*test_engine.py"):
                y.sum().backward()


def test_views_share_the_version_counter_of_their_base():
    w = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="w")
    x = tg.tensor([[1.0, 1.0]])
    y = (x @ w.T).sum()  # MatMul saves only a view (w.T) of the parameter
    with tg.no_grad():
        w.sub_(1.0)
    with pytest.raises(RuntimeError, match=r"'w' of shape \(2, 2\) \(through a view of shape \(2, 2\)\).*modified in place"):
        y.backward()
    d = w.detach()
    z = (x @ w).sum()
    with tg.no_grad():
        d.mul_(2.0)  # detach() shares data, so it shares the version counter too
    with pytest.raises(RuntimeError, match="modified in place"):
        z.backward()
