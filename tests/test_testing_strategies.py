"""tinygrad_cnn.testing: the strategies draw what they promise, configs are valid (for us and for
PyTorch), and assert_gradients finds and shrinks failures."""
import numpy as np
import pytest
from custom_ops import CubeConstantDerivative
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import Function
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import (
    assert_gradients,
    broadcastable_shapes,
    conv2d_configs,
    conv2d_inputs,
    pool2d_configs,
    pool2d_inputs,
    shapes,
    tensors,
)


@given(shapes(min_dims=2, max_dims=3, max_side=5))
def test_shapes_respect_bounds(s):
    assert 2 <= len(s) <= 3 and all(1 <= d <= 5 for d in s)


@given(tensors(shape=shapes(max_dims=2), min_value=0.5, max_value=2.0))
def test_tensors_are_float64_leaves_in_range(t):
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf and t.ndim <= 2
    assert np.all((t.data >= 0.5) & (t.data <= 2.0))


@given(tensors(shape=(3, 2), dtype=np.float32, requires_grad=False), tensors(shape=(4,), unique=True))
def test_tensors_dtype_fixed_shape_and_unique(a, b):
    assert a.shape == (3, 2) and a.dtype == np.float32 and not a.requires_grad
    assert len(set(b.data.tolist())) == 4


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(ValueError, match="cannot require grad"):
        tensors(dtype=np.int64)


@given(tensors(shape=(2,), dtype=np.int64, requires_grad=False, min_value=0, max_value=3))
def test_integer_tensors_without_grad(t):
    assert t.dtype == np.int64 and ((0 <= t.data) & (t.data <= 3)).all()


@given(broadcastable_shapes(max_dims=4))
def test_broadcastable_shapes_broadcast(pair):
    a, b = pair
    np.broadcast_shapes(a, b)
    x = tg.Tensor(np.ones(a), requires_grad=True)
    y = tg.Tensor(np.ones(b))
    assert (x + y).shape == np.broadcast_shapes(a, b)


@given(conv2d_configs())
def test_conv2d_configs_are_valid_and_predict_the_output_shape(cfg):
    x = np.zeros(cfg.input_shape)
    w = np.zeros(cfg.weight_shape)
    b = np.zeros(cfg.bias_shape) if cfg.bias else None
    assert F.conv2d(tg.Tensor(x), tg.Tensor(w), None if b is None else tg.Tensor(b), **cfg.kwargs()).shape == cfg.output_shape
    assert min(cfg.output_shape) >= 1 and cfg.input_shape[1] % cfg.groups == 0 and cfg.out_channels % cfg.groups == 0


@given(st.sampled_from(["max", "avg"]).flatmap(pool2d_configs))
def test_pool2d_configs_are_valid_and_predict_the_output_shape(cfg):
    fn = F.max_pool2d if cfg.kind == "max" else F.avg_pool2d
    assert fn(tg.Tensor(np.zeros(cfg.input_shape)), **cfg.kwargs()).shape == cfg.output_shape
    assert all(p <= k // 2 for p, k in zip(cfg.padding, cfg.kernel_size))


@given(st.data())
def test_configs_are_accepted_by_pytorch_with_the_same_output_shape(data):
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    cfg = data.draw(conv2d_configs())
    x, w = torch.zeros(cfg.input_shape, dtype=torch.float64), torch.zeros(cfg.weight_shape, dtype=torch.float64)
    assert tuple(TF.conv2d(x, w, **cfg.kwargs()).shape) == cfg.output_shape
    pc = data.draw(st.sampled_from(["max", "avg"]).flatmap(pool2d_configs))
    fn = TF.max_pool2d if pc.kind == "max" else TF.avg_pool2d
    assert tuple(fn(torch.zeros(pc.input_shape, dtype=torch.float64), **pc.kwargs()).shape) == pc.output_shape


def test_assert_gradients_passes_correct_functions():
    assert_gradients(lambda x: (x * x.sigmoid()).sum(axis=-1), tensors(shape=shapes(max_dims=3)))
    pairs = broadcastable_shapes(max_dims=3).flatmap(lambda s: st.tuples(tensors(s[0]), tensors(s[1])))
    assert_gradients(lambda ab: ab[0] * ab[1] + ab[0].exp(), pairs)
    assert_gradients(lambda a: F.conv2d(a[0], a[1], a[2], **a[3].kwargs()), conv2d_inputs(conv2d_configs(max_size=5)), max_examples=8)
    for kind, fn in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
        assert_gradients(lambda a, fn=fn: fn(a[0], **a[1].kwargs()), pool2d_inputs(kind, pool2d_configs(kind, max_size=5)), max_examples=10)


class WrongFromThree(Function):
    """2x whose backward is wrong for the third element onwards: a bug that needs size >= 3."""

    @staticmethod
    def forward(ctx, x):
        return x * 2.0

    @staticmethod
    def backward(ctx, g):
        scale = np.full(g.shape, 2.0)
        scale.reshape(-1)[2:] = 2.5
        return g * tg.Tensor(scale)


def test_assert_gradients_shrinks_to_a_minimal_failing_example():
    with pytest.raises(tg.GradcheckError) as info:
        assert_gradients(WrongFromThree.apply, tensors(shape=shapes(max_dims=3, max_side=4)), gradgrad=False, max_examples=30)
    res = info.value.result
    assert res.inputs[0][1] in {(3,), (1, 3), (3, 1), (1, 1, 3)}  # the smallest shapes with 3 elements
    assert res.pair("x").wrong.reshape(-1).tolist() == [False, False, True]


def test_assert_gradients_catches_second_order_bugs_and_checks_arguments():
    nonzero = tensors(shape=(2,), min_value=0.5, max_value=1.0)
    assert_gradients(CubeConstantDerivative.apply, nonzero, gradgrad=False, max_examples=5)
    with pytest.raises(tg.GradcheckError, match="gradgradcheck FAILED"):
        assert_gradients(CubeConstantDerivative.apply, nonzero, max_examples=5)
    with pytest.raises(TypeError, match="strategies"):
        assert_gradients(CubeConstantDerivative.apply, tg.ones(3))
    with pytest.raises(TypeError, match="one hypothesis strategy"):
        assert_gradients(CubeConstantDerivative.apply)
