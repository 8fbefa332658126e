"""The proof: deliberately broken ops are caught and located exactly (right input, right elements,
right node in check_graph), and correct ops are never flagged across many drawn examples."""
import numpy as np
import pytest
from custom_ops import CubeConstantDerivative, CubeOnce, WrongSignTanh
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import Function, keep_inputs
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import assert_gradients, broadcastable_shapes, conv2d_configs, conv2d_inputs, shapes, tensors


def t64(a, name=None):
    return tg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=True, name=name)


def only_failing(graph_result, name):
    """The single failing node of a check_graph result, which must be the op called ``name``."""
    assert [c.name for c in graph_result.failures] == [name], str(graph_result)
    (check,) = graph_result.failures
    assert graph_result.failing_nodes == [check.node]
    return check


# ---- 1. wrong sign -----------------------------------------------------------------------------
def test_wrong_sign_is_caught_everywhere_and_pinned_to_its_node():
    x = tg.randn(3, 4, seed=0, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(WrongSignTanh.apply, (x,), raise_exception=False)
    p = res.pair("x")
    assert p.wrong.all() and p.worst.numerical == pytest.approx(-p.worst.analytical, rel=1e-6)

    w = tg.randn(4, 4, seed=1, dtype=np.float64, requires_grad=True)
    graph = tg.check_graph(lambda x, w: (WrongSignTanh.apply(x @ w) * 2.0).sum(), (x, w))
    check = only_failing(graph, "WrongSignTanh")
    assert check.position == 1 and check.inputs == ["#0 MatMul"]
    assert check.result.pairs[0].wrong.all()


# ---- 2. transposed weight gradient -------------------------------------------------------------
class TransposedWeightGradLinear(Function):
    @staticmethod
    def forward(ctx, x, w):
        ctx.save_for_backward(x, w)
        return x @ w

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w.T, (x.T @ g).T  # the weight gradient must not be transposed


def test_transposed_weight_gradient_is_located_on_the_off_diagonal_of_the_weight():
    x = tg.randn(5, 4, seed=2, dtype=np.float64, requires_grad=True)
    w = tg.randn(4, 4, seed=3, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(TransposedWeightGradLinear.apply, (x, w), raise_exception=False)
    assert res.wrong_inputs() == ["w"] and res.pair("x").ok
    # (x^T g)^T and x^T g agree exactly on the diagonal: every off-diagonal element is wrong.
    np.testing.assert_array_equal(res.pair("w").wrong, ~np.eye(4, dtype=bool))

    b = tg.randn(4, seed=4, dtype=np.float64, requires_grad=True)
    graph = tg.check_graph(lambda x, w, b: F.cross_entropy(TransposedWeightGradLinear.apply(x.relu(), w) + b, np.arange(5) % 4), (x, w, b))
    check = only_failing(graph, "TransposedWeightGradLinear")
    assert check.inputs == ["#0 ReLU", "w"] and check.result.wrong_inputs() == ["w"]


# ---- 3. missing broadcast reduction --------------------------------------------------------------
class BiasAddNoReduction(Function):
    @staticmethod
    def forward(ctx, x, b):
        return x + b

    @staticmethod
    def backward(ctx, g):
        return g, g  # b was broadcast over the batch: its gradient must be g.sum(0)


def test_missing_broadcast_reduction_names_the_bias_and_the_node():
    x = tg.randn(3, 4, seed=5, dtype=np.float64, requires_grad=True)
    b = tg.randn(4, seed=6, dtype=np.float64, requires_grad=True)
    res = tg.gradcheck(BiasAddNoReduction.apply, (x, b), raise_exception=False)
    (problem,) = res.problems
    assert problem.kind == "exception" and problem.input == "b"
    assert "shape (3, 4) for an input of shape (4,)" in str(res) and "BiasAddNoReduction (input 1 <- input 'b')" in str(res)

    graph = tg.check_graph(lambda x, b: BiasAddNoReduction.apply(x.tanh(), b).sum(), (x, b))
    check = only_failing(graph, "BiasAddNoReduction")
    assert check.position == 1 and check.inputs == ["#0 Tanh", "b"]
    assert [q.input for q in check.result.problems] == ["b"]


# ---- 4. col2im that overwrites instead of accumulating -------------------------------------------
def _windows(h, w, k, s):
    return [(i, j) for i in range(0, h - k + 1, s) for j in range(0, w - k + 1, s)]


class Im2Col(Function):
    """(N, C, H, W) -> (N, L, C*k*k): one row per window (stride s, no padding)."""

    @staticmethod
    def forward(ctx, x, k, s):
        ctx.shape, ctx.k, ctx.s = x.shape, k, s
        n, c, h, w = x.shape
        return np.stack([x[:, :, i : i + k, j : j + k].reshape(n, c * k * k) for i, j in _windows(h, w, k, s)], axis=1)

    @staticmethod
    def backward(ctx, g):
        return Col2Im.apply(g, shape=ctx.shape, k=ctx.k, s=ctx.s, overwrite=False)


class Col2Im(Function):
    """The adjoint of Im2Col: add every row back to its window; ``overwrite=True`` is the bug."""

    @staticmethod
    def forward(ctx, cols, shape, k, s, overwrite):
        ctx.k, ctx.s = k, s
        n, c, h, w = shape
        out = np.zeros(shape, dtype=cols.dtype)
        for r, (i, j) in enumerate(_windows(h, w, k, s)):
            patch = cols[:, r].reshape(n, c, k, k)
            if overwrite:
                out[:, :, i : i + k, j : j + k] = patch
            else:
                out[:, :, i : i + k, j : j + k] += patch
        return out

    @staticmethod
    def backward(ctx, g):
        return Im2Col.apply(g, k=ctx.k, s=ctx.s)


class Conv(Function):
    """conv2d (no padding) on Im2Col; ``overwrite`` selects the broken col2im for the input gradient."""

    @staticmethod
    def forward(ctx, x, w, s, overwrite):
        ctx.s, ctx.overwrite = s, overwrite
        ctx.save_for_backward(x, w)
        cols = Im2Col.forward(ctx, x, w.shape[2], s)
        n, _, h, wd = x.shape
        oh, ow = (h - w.shape[2]) // s + 1, (wd - w.shape[3]) // s + 1
        y = cols @ w.reshape(w.shape[0], -1).T  # (N, L, F)
        return y.transpose(0, 2, 1).reshape(n, w.shape[0], oh, ow)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        k, f = w.shape[2], w.shape[0]
        g_rows = g.reshape(g.shape[0], f, -1).permute(0, 2, 1)  # (N, L, F)
        dcols = g_rows @ w.reshape(f, -1)
        gx = Col2Im.apply(dcols, shape=x.shape, k=k, s=ctx.s, overwrite=ctx.overwrite)
        cols = Im2Col.apply(x, k=k, s=ctx.s)
        gw = (g_rows.permute(0, 2, 1) @ cols).sum(axis=0).reshape(w.shape)
        return gx, gw


def test_col2im_overwriting_overlapping_windows_is_located_exactly():
    x = tg.randn(2, 2, 7, 7, seed=7, dtype=np.float64, requires_grad=True)
    w = tg.randn(3, 2, 3, 3, seed=8, dtype=np.float64, requires_grad=True)
    assert tg.gradcheck(lambda x, w: Conv.apply(x, w, s=2, overwrite=False), (x, w))
    assert tg.gradgradcheck(lambda x, w: Conv.apply(x, w, s=2, overwrite=False), (x, w))
    np.testing.assert_allclose(Conv.apply(x, w, s=2, overwrite=False).data, F.conv2d(x, w, stride=2).data, rtol=1e-12)

    res = tg.gradcheck(lambda x, w: Conv.apply(x, w, s=2, overwrite=True), (x, w), raise_exception=False)
    assert res.wrong_inputs() == ["x"]
    cover = np.zeros((7, 7), int)
    for i, j in _windows(7, 7, 3, 2):
        cover[i : i + 3, j : j + 3] += 1
    expect = np.broadcast_to(cover > 1, (2, 2, 7, 7))  # exactly the pixels two windows share
    np.testing.assert_array_equal(res.pair("x").wrong, expect)
    assert "largest error per channel: c0:" in str(res)

    graph = tg.check_graph(lambda x, w: Conv.apply(x, w, s=2, overwrite=True).relu().mean(), (x, w))
    check = only_failing(graph, "Conv")
    assert check.position == 0 and check.inputs == ["x", "w"]
    np.testing.assert_array_equal(check.result.pair("x").wrong, expect)


# ---- 5. a backward that only works in float32 ------------------------------------------------------
class CenteredSquare(Function):
    """(x - c)^2 whose backward computes 2 (x - c) in float32: exact for float32 inputs, wrong
    for float64 inputs that float32 cannot represent (near c the rounding is all there is)."""

    @staticmethod
    def forward(ctx, x, c):
        ctx.c = c
        ctx.save_for_backward(x)
        return (x - c) ** 2

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * ((x.float() - np.float32(ctx.c)) * np.float32(2.0)).astype(g.dtype)


def test_float32_only_backward_is_caught_at_the_one_unrepresentable_element():
    ulp = 2.0**-14  # float32 spacing at 1000
    vals = 1000.0 + ulp * np.array([100.0, 0.5, -300.0, 7.0])  # element 1 lies between two float32 numbers
    res = tg.gradcheck(lambda x: CenteredSquare.apply(x, c=1000.0), (t64(vals),), raise_exception=False)
    assert res.pair("x").wrong.tolist() == [False, True, False, False]
    assert res.pair("x").worst.index == (1,) and res.pair("x").worst.rel_error > 0.5

    # float32 inputs are promoted to float64 exactly, and there the backward is right: the check stays valid.
    x32 = tg.Tensor(vals.astype(np.float32), requires_grad=True)
    with pytest.warns(tg.autograd.GradcheckWarning, match="float32"):
        assert tg.gradcheck(lambda x: CenteredSquare.apply(x, c=1000.0), (x32,))

    w = t64([1.0, -2.0, 0.5, 3.0])
    graph = tg.check_graph(lambda x, w: (CenteredSquare.apply(x, c=1000.0) * w).sum(), (t64(vals), w))
    check = only_failing(graph, "CenteredSquare")
    assert check.position == 0 and check.result.pair("x").wrong.tolist() == [False, True, False, False]


# ---- 6. right once, not differentiable twice -------------------------------------------------------
class CubeRawNumpy(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x**3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return tg.Tensor(g.data * 3 * x.data**2)  # entirely outside the graph


def test_backward_right_once_but_not_twice_is_caught_by_gradgradcheck():
    x = t64([0.5, -1.0, 2.0, 0.0])
    for op in (CubeConstantDerivative, CubeRawNumpy, CubeOnce):
        assert tg.gradcheck(op.apply, (x,)), op.__name__

    res = tg.gradgradcheck(CubeConstantDerivative.apply, (x,), raise_exception=False)
    assert res.wrong_inputs() == ["x"] and res.pair("grad_output").ok
    assert res.pair("x").wrong.tolist() == [True, True, True, False]  # 6 x g vanishes at x = 0

    res = tg.gradgradcheck(CubeRawNumpy.apply, (x,), raise_exception=False)
    assert {q.kind for q in res.problems} == {"disconnected"} and res.problems[0].input == "x"
    assert "raw numpy" in str(res)

    res = tg.gradgradcheck(CubeOnce.apply, (x,), raise_exception=False)
    assert [q.kind for q in res.problems] == ["exception"] and "CubeOnce" in str(res) and "once_differentiable" in str(res)

    w = t64([1.0, 2.0, 3.0, 4.0])
    graph = tg.check_graph(lambda x, w: (CubeConstantDerivative.apply(x * w)).sum(), (x, w), gradgrad=True)
    check = only_failing(graph, "CubeConstantDerivative")
    assert check.result.passed and not check.second.passed and check.inputs == ["#0 Mul"]
    assert check.second.wrong_inputs() == ["#0 Mul"]


# ---- correct ops are never flagged ------------------------------------------------------------------
@settings(max_examples=15)
@given(tensors(shape=shapes(max_dims=3)))
def test_elementwise_ops_with_kinks_and_ties_are_never_flagged(x):
    for fn in (
        lambda x: x.relu(),
        lambda x: x.abs() * x.tanh(),
        lambda x: x.amax(-1),
        lambda x: F.maximum(x, x * 0.0 + 0.5),
        lambda x: x.clip(-1.0, 1.0) * x.sigmoid(),
    ):
        assert tg.gradcheck(fn, (x,))
        assert tg.gradgradcheck(fn, (x,))


def test_broadcasting_matmul_and_losses_are_never_flagged():
    pairs = broadcastable_shapes(max_dims=3).flatmap(lambda s: st.tuples(tensors(s[0]), tensors(s[1])))
    assert_gradients(lambda ab: ab[0] * ab[1] - ab[1] / (ab[0] * ab[0] + 1.0), pairs, max_examples=15)
    dims = st.integers(1, 3)
    mats = st.tuples(dims, dims, dims).flatmap(lambda s: st.tuples(tensors((s[0], s[1])), tensors((s[1], s[2]))))
    assert_gradients(lambda ab: F.log_softmax(ab[0] @ ab[1], axis=-1), mats, max_examples=10)


def test_conv_pool_network_is_never_flagged_by_gradcheck_or_check_graph():
    def net(a):
        x, w, b, cfg = a
        y = F.conv2d(x, w, b, **cfg.kwargs()).relu()
        return F.max_pool2d(y, 1) if min(y.shape[2:]) < 2 else F.max_pool2d(y, 2)

    assert_gradients(net, conv2d_inputs(conv2d_configs(max_size=5, max_channels=2)), max_examples=6)

    @settings(max_examples=6)
    @given(conv2d_inputs(conv2d_configs(max_size=6, max_channels=3)))
    def graph_ok(a):
        res = tg.check_graph(net, (a,), gradgrad=True)
        assert res.passed, str(res)

    graph_ok()


def test_a_small_convnet_loss_in_float32_passes_check_graph_node_by_node():
    from tinygrad_cnn import nn

    tg.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 3 * 3, 3))
    x = tg.randn(2, 1, 8, 8, seed=9)
    with keep_inputs():
        loss = F.cross_entropy(model(x), np.array([0, 2]))
    res = tg.check_graph(loss)
    assert res.passed and len(res) >= 10, str(res)
    assert res.nodes[0].name == "Conv2d" and res.nodes[0].inputs[1:] == ["0.weight", "0.bias"] and res.nodes[0].scope == "0"
