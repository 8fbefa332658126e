"""Every elementwise, reduction and pooling op on inf, -inf, NaN, zeros and values near the float32
limit: PyTorch's results (NaN in the same places), and no numpy RuntimeWarning, forward or
backward. pyproject's ``filterwarnings = error::RuntimeWarning`` makes any warning fail the whole
suite; ``_no_warnings`` fails these tests also when run without that filter."""
import warnings

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.nn import functional as F

try:
    import torch
except ImportError:  # PyTorch is never a dependency: its comparisons are skipped without it
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")

INF, NAN, BIG = np.inf, np.nan, 3e38
# float32 values where numpy warns: overflow (BIG * 10, exp(100)), division by zero, inf - inf,
# log/sqrt of negatives, 0 * inf.
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0, INF, -INF, NAN, BIG, -BIG, 1e-30, 100.0, -100.0], dtype=np.float32)

UNARY = {
    "neg": (lambda x: -x, lambda x: -x),
    "exp": (F.exp, torch.exp if torch else None),
    "log": (F.log, torch.log if torch else None),
    "sqrt": (F.sqrt, torch.sqrt if torch else None),
    "abs": (F.abs, torch.abs if torch else None),
    "tanh": (F.tanh, torch.tanh if torch else None),
    "sigmoid": (F.sigmoid, torch.sigmoid if torch else None),
    "relu": (F.relu, torch.relu if torch else None),
    "add_scalar": (lambda x: x + 1e38, lambda x: x + 1e38),
    "sub_scalar": (lambda x: x - INF, lambda x: x - INF),
    "mul_scalar": (lambda x: x * 10.0, lambda x: x * 10.0),
    "mul_scalar_zero": (lambda x: x * 0.0, lambda x: x * 0.0),
    "square": (lambda x: x**2, lambda x: x**2),
    "pow_half": (lambda x: x**0.5, lambda x: x**0.5),
    "reciprocal_pow": (lambda x: x**-1, lambda x: x**-1),
    "rdiv": (lambda x: 1.0 / x, lambda x: 1.0 / x),
    "clip": (lambda x: F.clip(x, -1.0, 1.0), lambda x: x.clamp(-1.0, 1.0)),
    "to_float16": (lambda x: x.astype(np.float16), lambda x: x.to(torch.float16)),
}

BINARY = {
    "add": (F.add, lambda a, b: a + b),
    "sub": (F.sub, lambda a, b: a - b),
    "mul": (F.mul, lambda a, b: a * b),
    "div": (F.div, lambda a, b: a / b),
    "pow": (F.pow, lambda a, b: a**b),
    "maximum": (F.maximum, torch.maximum if torch else None),
    "minimum": (F.minimum, torch.minimum if torch else None),
}

# Rows of a (5, 4) matrix for the reductions: with NaN, with +inf and -inf, all -inf, sums that
# overflow, plain values.
ROWS = np.array(
    [[1.0, NAN, 2.0, 0.0], [INF, 1.0, -INF, 0.0], [-INF, -INF, -INF, -INF], [BIG, BIG, 1.0, 2.0], [INF, 0.0, 0.0, -2.0]],
    dtype=np.float32,
)

REDUCE = {
    "sum": (lambda x: x.sum(axis=1), lambda x: x.sum(1)),
    "mean": (lambda x: x.mean(axis=1), lambda x: x.mean(1)),
    "var": (lambda x: x.var(1, correction=0), lambda x: x.var(1, unbiased=False)),
    "max": (lambda x: x.amax(1), lambda x: x.amax(1)),
    "min": (lambda x: x.amin(1), lambda x: x.amin(1)),
    "logsumexp": (lambda x: F.logsumexp(x, axis=1), lambda x: torch.logsumexp(x, 1)),
    "softmax": (lambda x: F.softmax(x, axis=1), lambda x: torch.softmax(x, 1)),
    "log_softmax": (lambda x: F.log_softmax(x, axis=1), lambda x: torch.log_softmax(x, 1)),
    "matmul": (lambda x: x @ tg.Tensor(np.ones((4, 2), np.float32)), lambda x: x @ torch.ones(4, 2)),
}

POOL_INPUT = np.array([[1.0, NAN, 2.0, 0.0], [INF, 1.0, -INF, 0.0], [-INF, -INF, BIG, BIG], [0.0, 1.0, -2.0, 3.0]], dtype=np.float32)[
    None, None
]
# Without BIG, for the ops that sum a window holding BIG, BIG and -inf: BIG + BIG overflows to
# inf and the sum is NaN, or -inf comes first and the sum stays -inf, as the order of the
# additions falls (adaptive pooling averages rows, then columns; a conv sums in its BLAS
# kernel's order). Either is a fair float32 result, so the comparison leaves it out.
NO_BIG_INPUT = np.where(POOL_INPUT == BIG, np.float32(2.0), POOL_INPUT)
POOL = {
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), lambda x: torch.nn.functional.max_pool2d(x, 2)),
    "max_pool2d_overlapping": (lambda x: F.max_pool2d(x, 3, 1, 1), lambda x: torch.nn.functional.max_pool2d(x, 3, 1, 1)),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2), lambda x: torch.nn.functional.avg_pool2d(x, 2)),
    "avg_pool2d_overlapping": (lambda x: F.avg_pool2d(x, 3, 1, 1), lambda x: torch.nn.functional.avg_pool2d(x, 3, 1, 1)),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, 3), lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 3)),
}

_W = np.ones((1, 1, 3, 3), np.float32)
CONV = {
    "conv2d": (lambda x: F.conv2d(x, tg.Tensor(_W), padding=1), lambda x: torch.nn.functional.conv2d(x, torch.tensor(_W), padding=1)),
    "conv_transpose2d": (
        lambda x: F.conv_transpose2d(x, tg.Tensor(_W)),
        lambda x: torch.nn.functional.conv_transpose2d(x, torch.tensor(_W)),
    ),
}


def _binary_inputs():
    return np.broadcast_arrays(SPECIAL[:, None], SPECIAL[None, :])


def _run(fn, arrays, backward=True):
    """Forward and (with ``backward``) backward of a ones cotangent, every warning raised as an error."""
    xs = [tg.Tensor(a.copy(), requires_grad=backward) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = fn(*xs)
        if backward:
            y.backward(tg.Tensor(np.ones(y.shape, y.dtype)))
    return y.data


def _assert_same(ours, theirs, rtol):
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    # assert_allclose treats equal infinities as equal and NaN == NaN (positions checked above).
    # atol: PyTorch's sigmoid(-100) is 0 where ours is exp(-100) = 3.8e-44, a float32 subnormal.
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=10 * np.finfo(np.float32).tiny)


CASES = (
    [(f"unary-{k}", f, g, lambda: [SPECIAL]) for k, (f, g) in UNARY.items()]
    + [(f"binary-{k}", f, g, _binary_inputs) for k, (f, g) in BINARY.items()]
    + [(f"reduce-{k}", f, g, lambda: [ROWS]) for k, (f, g) in REDUCE.items()]
    + [(f"pool-{k}", f, g, lambda: [POOL_INPUT]) for k, (f, g) in POOL.items() if k != "adaptive_avg_pool2d"]
    + [("pool-adaptive_avg_pool2d", *POOL["adaptive_avg_pool2d"], lambda: [NO_BIG_INPUT])]
    + [(f"conv-{k}", f, g, lambda: [NO_BIG_INPUT]) for k, (f, g) in CONV.items()]
)
WITH_BACKWARD = [pytest.param(*c, id=c[0]) for c in CASES]
CASES = [pytest.param(*c, id=c[0]) for c in CASES]


@pytest.mark.parametrize("name, ours, theirs, inputs", WITH_BACKWARD)
def test_special_values_raise_no_numpy_warning(name, ours, theirs, inputs):
    _run(ours, inputs())


@needs_torch
@pytest.mark.parametrize("name, ours, theirs, inputs", CASES)
def test_special_values_match_torch(name, ours, theirs, inputs):
    arrays = inputs()
    y = _run(ours, arrays, backward=False)
    ty = theirs(*[torch.tensor(a) for a in arrays])
    _assert_same(y, ty.numpy(), rtol=1e-6)


def test_infinite_and_nan_results_are_pytorchs_without_warnings():
    # Values PyTorch defines (and the float64 math they come from), checked without PyTorch.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = tg.Tensor(np.array([0.0, 100.0, -100.0], np.float32), requires_grad=True)
        assert F.exp(x).tolist()[1] == INF  # e**100 overflows float32
        y = F.log(x)
        assert y.tolist()[0] == -INF and np.isnan(y.tolist()[2])
        y.sum().backward()
        assert x.grad.tolist()[0] == INF  # d/dx log x at 0
        assert F.sigmoid(tg.Tensor(np.array([-1e4, 1e4], np.float32))).tolist() == [0.0, 1.0]
        assert np.isnan(tg.Tensor(np.array([[1.0, NAN, 3.0]], np.float32)).amax(1).item())
        assert (tg.Tensor(np.array([BIG, BIG], np.float32)).sum()).item() == INF
        assert np.isnan(F.log_softmax(tg.Tensor(np.array([-INF, -INF], np.float32))).tolist()).all()
        assert F.logsumexp(tg.Tensor(np.array([-INF, -INF], np.float32))).item() == -INF


def test_pools_raise_no_warning_on_their_threads():
    # Each pool thread has its own numpy error state: blocks of planes must set it themselves.
    old = tg.get_num_threads()
    tg.set_num_threads(2)
    try:
        x = np.random.default_rng(0).standard_normal((8, 64, 16, 16)).astype(np.float32)
        x[:, :, ::4, ::4], x[:, :, 1::4, 1::4] = INF, -INF
        t = tg.Tensor(x, requires_grad=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            y = F.avg_pool2d(t, 3, 1, 1) + F.max_pool2d(t, 3, 1, 1)
            y.backward(tg.Tensor(np.full(y.shape, INF, np.float32)))
        assert np.isnan(y.data).any() and np.isinf(t.grad.data).any()
    finally:
        tg.set_num_threads(old)


def test_max_pool_gradients_send_inf_and_nan_to_the_argmax_only():
    # One 4x4 plane, 2x2 windows: the maxima are at (1, 1), (1, 3), (3, 1), (3, 3).
    x = tg.Tensor(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), requires_grad=True)
    g = tg.Tensor(np.array([[[[NAN, 1.0], [1.0, INF]]]], np.float32), requires_grad=True)
    y = F.max_pool2d(x, 2)
    (dx,) = grad(y, x, g, create_graph=True)
    expected = np.zeros((4, 4), np.float32)
    expected[1::2, 1::2] = [[NAN, 1.0], [1.0, INF]]
    np.testing.assert_array_equal(dx.data[0, 0], expected)
    # Double backward reads the cotangent at the argmax only: an inf elsewhere in the window stays out.
    gg = np.full((1, 1, 4, 4), INF, np.float32)
    gg[0, 0, 1::2, 1::2] = [[1.0, 2.0], [3.0, 4.0]]
    (dg,) = grad(dx, g, tg.Tensor(gg))
    np.testing.assert_array_equal(dg.data, [[[[1.0, 2.0], [3.0, 4.0]]]])


def test_relu_maximum_minimum_gradients_pass_where_an_input_is_nan():
    # PyTorch zeroes a side's gradient only where it lost the comparison; NaN loses no comparison.
    a = tg.Tensor(np.array([0.0, 1.0, NAN, NAN, 2.0, 3.0], np.float32), requires_grad=True)
    b = tg.Tensor(np.array([NAN, NAN, 0.0, NAN, 2.0, 1.0], np.float32), requires_grad=True)
    for fn, ga, gb in ((F.maximum, [1, 1, 1, 1, 0.5, 1], [1, 1, 1, 1, 0.5, 0]), (F.minimum, [1, 1, 1, 1, 0.5, 0], [1, 1, 1, 1, 0.5, 1])):
        a.grad = b.grad = None
        fn(a, b).sum().backward()
        np.testing.assert_array_equal(a.grad.data, ga)
        np.testing.assert_array_equal(b.grad.data, gb)
    x = tg.Tensor(np.array([NAN, -1.0, 0.0, 2.0], np.float32), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1.0, 0.0, 0.0, 1.0])


def test_abs_div_pow_gradients_at_zero_nan_and_tiny_values():
    x = tg.Tensor(np.array([NAN, -2.0, 0.0], np.float32), requires_grad=True)
    F.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, -1.0, 0.0])  # PyTorch's sgn(NaN) is 0
    a = tg.Tensor(np.array([0.0, 1e-20, 6.0], np.float32), requires_grad=True)
    b = tg.Tensor(np.array([1e-30, 1e-30, 2.0], np.float32), requires_grad=True)
    (a / b).sum().backward()
    # d(a/b)/db = -(a/b)/b: 0, -1e40 (past float32: -inf) and -1.5; b*b = 1e-60 would underflow to 0.
    np.testing.assert_array_equal(b.grad.data, [-0.0, -INF, -1.5])
    base = tg.Tensor(np.array([0.0, 0.0, 2.0], np.float32), requires_grad=True)
    F.pow(base, tg.Tensor(np.array([0.0, 2.0, 0.0], np.float32))).sum().backward()
    np.testing.assert_array_equal(base.grad.data, [0.0, 0.0, 0.0])  # d/da a**0 = 0, also at a = 0


# Not compared: Pow's exponent gradient (log a taken as 0 where a <= 0, documented in Pow) and
# x ** 0.5 at -0 and -inf, where PyTorch's own sqrt-based rule gives -inf and NaN.
GRADIENT_CASES = {"relu": [0], "abs": [0], "maximum": [0, 1], "minimum": [0, 1], "div": [0, 1], "pow": [0]}


@needs_torch
@pytest.mark.parametrize("name", list(GRADIENT_CASES))
def test_gradients_match_torch_on_special_values(name):
    ours, theirs = {**UNARY, **BINARY}[name]
    arrays = [SPECIAL] if name in UNARY else _binary_inputs()
    xs = [tg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    ours(*xs).sum().backward()
    theirs(*ts).sum().backward()
    for i in GRADIENT_CASES[name]:
        _assert_same(xs[i].grad.data, ts[i].grad.numpy(), rtol=1e-6)


@pytest.mark.parametrize("fn", ["sign", "floor", "ceil", "round", "trunc", "pow0"])
def test_piecewise_constant_ops_give_zero_gradient_even_for_an_infinite_incoming_gradient(fn):
    # PyTorch's gradient of sign/floor/.../x**0 is zeros, also where the gradient flowing in is
    # inf (g * 0 would make it NaN).
    x = tg.tensor([1.5, -2.5], requires_grad=True)
    y = x**0 if fn == "pow0" else getattr(x, fn)()
    (y * tg.tensor([np.inf, 1.0])).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [0.0, 0.0])
