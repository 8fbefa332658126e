"""check_graph: every recorded op checked on its own inputs, failures pinned to the node."""
import numpy as np
import pytest
from custom_ops import CubeOnce

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.autograd import Function, keep_inputs
from tinygrad_cnn.autograd.graph import walk
from tinygrad_cnn.nn import functional as F


class DoubleWrong(Function):
    """2x with a backward of 3x."""

    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        return g * 3.0


def mlp(x, w1, w2):
    return F.cross_entropy((x @ w1).relu() @ w2, np.array([0, 1, 1]))


def weights(seed=0):
    x = tg.randn(3, 4, seed=seed, dtype=np.float64, requires_grad=True)
    w1 = tg.randn(4, 5, seed=seed + 1, dtype=np.float64, requires_grad=True)
    w2 = tg.randn(5, 2, seed=seed + 2, dtype=np.float64, requires_grad=True)
    return x, w1, w2


def test_correct_graph_passes_and_lists_nodes_in_forward_order():
    res = tg.check_graph(mlp, weights())
    assert res.passed and bool(res) and res.failing_nodes == []
    names = [c.name for c in res.nodes]
    assert names[:3] == ["MatMul", "ReLU", "MatMul"] and [c.position for c in res.nodes] == list(range(len(res)))
    assert res.nodes[0].inputs == ["x", "w1"] and res.nodes[1].inputs == ["#0 MatMul"] and res.nodes[2].inputs == ["#1 ReLU", "w2"]
    assert all(c.result is not None and c.result.mode == "full" for c in res.nodes)
    assert "all passed" in str(res)


def test_a_wrong_backward_is_pinned_to_its_node_and_nothing_else():
    def model(x, w1, w2):
        return mlp(DoubleWrong.apply(x), w1, w2)

    res = tg.check_graph(model, weights())
    assert not res.passed
    (bad,) = res.failures
    assert bad.name == "DoubleWrong" and bad.position == 0 and bad.inputs == ["x"]
    assert res.failing_nodes == [bad.node] and res[bad.node] is bad
    assert bad.result.pair("x").wrong.all()
    text = str(res)
    assert "1 FAILED" in text and "#0 DoubleWrong (inputs: x): FAILED" in text and "MatMul" not in text.split("FAILED", 2)[2]


def test_check_graph_of_an_output_needs_keep_inputs():
    x, w1, w2 = weights()
    out = mlp(DoubleWrong.apply(x), w1, w2)
    with pytest.raises(ValueError, match="keep_inputs"):
        tg.check_graph(out)
    with keep_inputs():
        out = mlp(DoubleWrong.apply(x), w1, w2)
    res = tg.check_graph(out)
    assert [c.name for c in res.failures] == ["DoubleWrong"]
    assert res.failing_nodes[0] is walk(out)[0]  # the very node of the user's graph


def test_float32_graph_is_checked_in_float64_node_by_node():
    x = tg.randn(3, 4, seed=3, requires_grad=True)  # float32 model
    w = tg.randn(4, 2, seed=4, requires_grad=True)
    with keep_inputs():
        out = ((x @ w).tanh().double() * 2.0).float().sum()  # Cast nodes to float64 and back
    res = tg.check_graph(out)
    assert res.passed, str(res)
    assert all(c.result.inputs[0][2] == np.float32 for c in res.nodes if c.name == "MatMul")


def test_scope_and_parameter_names_come_from_the_modules():
    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)

        def forward(self, x):
            return DoubleWrong.apply(self.fc(x))

    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), Block())
    with keep_inputs():
        out = model(tg.randn(2, 3, seed=5)).sum()
    res = tg.check_graph(out)
    (bad,) = res.failures
    assert bad.name == "DoubleWrong" and bad.scope == "2"
    linear_nodes = [c for c in res.nodes if "2.fc.weight" in c.inputs]
    assert linear_nodes and linear_nodes[0].scope == "2 > 2.fc"
    assert "in 2" in bad.title()


def test_large_nodes_use_fast_mode_unless_told():
    x = tg.randn(4, 8, 12, 12, seed=6, dtype=np.float64, requires_grad=True)
    w = tg.randn(8, 8, 3, 3, seed=7, dtype=np.float64, requires_grad=True)
    res = tg.check_graph(lambda x, w: F.conv2d(x, w).relu().sum(), (x, w))
    modes = {c.name: c.result.mode for c in res.nodes}
    assert res.passed and modes["Conv2d"] == "fast" and modes["Sum"] == "fast"
    small = tg.check_graph(lambda a: (a * 2.0).sum(), (tg.randn(3, seed=8, dtype=np.float64, requires_grad=True),), fast_mode=True)
    assert {c.result.mode for c in small.nodes} == {"fast"}


def test_gradgrad_option_checks_each_nodes_second_derivative():
    x = tg.randn(4, seed=9, dtype=np.float64, requires_grad=True)
    assert tg.check_graph(lambda x: CubeOnce.apply(x.tanh()).sum(), (x,)).passed
    res = tg.check_graph(lambda x: CubeOnce.apply(x.tanh()).sum(), (x,), gradgrad=True)
    (bad,) = res.failures
    assert bad.name == "CubeOnce" and bad.result.passed and not bad.second.passed
    assert "once_differentiable" in str(res)


def test_wrong_dtype_of_a_nodes_gradient_is_reported():
    class Float32Grad(Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2.0

        @staticmethod
        def backward(ctx, g):
            return (g * 2.0).float()

    res = tg.check_graph(lambda x: Float32Grad.apply(x).sum(), (tg.randn(3, seed=10, dtype=np.float64, requires_grad=True),))
    (bad,) = res.failures
    assert [q.kind for q in bad.result.problems] == ["dtype"] and "input 0 (x)" in str(bad)


def test_non_differentiable_outputs_of_a_node_are_skipped():
    class ValueAndMask(Function):
        @staticmethod
        def forward(ctx, x):
            mask = (x > 0).astype(x.dtype)
            ctx.mark_non_differentiable(mask)
            ctx.save_for_backward(x)
            return x * x, mask

        @staticmethod
        def backward(ctx, g, g_mask):
            (x,) = ctx.saved_tensors
            return g * 2.0 * x

    x = tg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    res = tg.check_graph(lambda x: ValueAndMask.apply(x)[0].sum(), (x,))
    assert res.passed and res.nodes[0].result.pairs[0].output == "output[0]" and len(res.nodes[0].result.pairs) == 1


def test_bad_calls_are_explained():
    x = tg.randn(3, seed=11, dtype=np.float64)
    with pytest.raises(ValueError, match="no recorded graph"):
        tg.check_graph(x * 2.0)
    with pytest.raises(TypeError, match="inputs"):
        tg.check_graph(lambda x: x)
    with pytest.raises(TypeError, match="only for check_graph"):
        tg.check_graph(x, (x,))
    with pytest.raises(TypeError, match="Tensor"):
        tg.check_graph(3.0)


def test_graph_traversal_is_iterative():
    x = tg.Tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0
    nodes = walk(y)
    assert len(nodes) == 100_000 and nodes[0].next_edges[0][0] is x
