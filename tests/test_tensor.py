import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor


def test_dtypes_follow_the_rules():
    assert Tensor(1.5).dtype == np.float32
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(np.zeros(2)).dtype == np.float64
    assert Tensor(np.arange(3)).dtype.kind == "i"
    with pytest.raises(TypeError, match="only floating-point"):
        Tensor(np.arange(3), requires_grad=True)


def test_attributes_and_conversions():
    t = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="w")
    assert t.shape == (2, 2) and t.ndim == 2 and t.size() == (2, 2) and t.numel() == 4 and t.is_leaf and t.name == "w"
    assert t.tolist() == [[1.0, 2.0], [3.0, 4.0]]
    assert isinstance(t.numpy(), np.ndarray)
    assert tg.tensor([3.0]).item() == 3.0
    with pytest.raises(ValueError, match="one element"):
        t.item()
    d = t.detach()
    assert not d.requires_grad and d.data is t.data
    assert t.double().dtype == np.float64 and t.double().float().dtype == np.float32
    y = t * t
    assert not y.is_leaf and y.requires_grad
    r = repr(y)
    assert "float32" in r and "MulBackward" in r
    t.grad = None


def test_factories():
    assert tg.zeros(2, 3).shape == (2, 3) and tg.zeros((2, 3)).data.sum() == 0
    assert tg.ones(4).data.sum() == 4
    assert (tg.full((2, 2), 7.0).data == 7).all()
    assert tg.arange(5).tolist() == [0, 1, 2, 3, 4]
    assert tg.arange(0.0, 1.0, 0.25).dtype == np.float32
    assert np.array_equal(tg.eye(3).data, np.eye(3))
    np.testing.assert_array_equal(tg.randn(3, seed=1).data, tg.randn(3, seed=1).data)
    assert not np.array_equal(tg.randn(3, seed=1).data, tg.randn(3, seed=2).data)
    g = np.random.default_rng(5)
    a = tg.rand(4, seed=g)
    assert ((a.data >= 0) & (a.data < 1)).all()
    tg.manual_seed(3)
    u = tg.randn(3)
    tg.manual_seed(3)
    assert np.array_equal(u.data, tg.randn(3).data)
    assert tg.zeros_like(u).shape == (3,) and tg.ones_like(np.zeros((2, 2))).data.sum() == 4


def test_operators_with_scalars_and_arrays_on_either_side():
    x = tg.tensor([1.0, 2.0])
    a = np.array([3.0, 4.0], dtype=np.float32)
    assert (x + 1).tolist() == [2, 3] and (1 + x).tolist() == [2, 3]
    assert (x - a).tolist() == [-2, -2] and (a - x).tolist() == [2, 2]
    assert (2 * x).tolist() == [2, 4] and (x / 2).tolist() == [0.5, 1]
    assert (2 / x).tolist() == [2, 1] and (x**2).tolist() == [1, 4] and (2**x).tolist() == [2, 4]
    assert (a * x).tolist() == [3, 8] and isinstance(a * x, Tensor)
    assert (x @ a).item() == 11
    assert (-x).tolist() == [-1, -2]
    assert (x * 2.0).dtype == np.float32
    assert (x < 2).tolist() == [True, False] and (x >= a).tolist() == [False, False]
    assert (x == x).data.all() and not (x != x).data.any()
    assert x[1].item() == 2.0


def test_inplace_ops_bump_version_and_refuse_on_grad_leaves():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="no_grad"):
        w.add_(1.0)
    with tg.no_grad():
        w.add_(1.0).mul_(2.0)
    assert w.tolist() == [4.0, 6.0] and w._version == 2
    with tg.no_grad():
        w.zero_()
    assert w.tolist() == [0.0, 0.0]
