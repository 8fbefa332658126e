"""Every foundation op: forward against numpy, gradcheck and gradgradcheck in float64 on shapes
drawn with hypothesis (broadcasting included)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tinygrad_cnn as tg
from tinygrad_cnn import Tensor, testing
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.ops.elementwise import SigmoidBackward, TanhBackward
from tinygrad_cnn.testing import tensors

SMALL = settings(max_examples=8, deadline=None)


def arrays(shape, lo=-2.0, hi=2.0, away_from_zero=False, distinct=False):
    """float64 arrays drawn with tinygrad_cnn.testing.tensors; optionally |x| >= 0.2 (away from
    kinks at 0) or pairwise far apart (no ties in max)."""
    if distinct:
        n = int(np.prod(shape))
        return st.permutations(list(range(n))).map(lambda p: (np.array(p, dtype=np.float64) * 0.37 - 1.0).reshape(shape))
    el = None
    if away_from_zero:
        el = st.tuples(st.floats(0.2, hi), st.sampled_from([-1.0, 1.0])).map(lambda p: p[0] * p[1])
    return tensors(shape, elements=el, min_value=lo, max_value=hi, grid=None, requires_grad=False).map(lambda t: t.data)


def t(a):
    return Tensor(np.array(a, dtype=np.float64), requires_grad=True)


def check(fn, *arrays_, double=True):
    inputs = tuple(t(a) for a in arrays_)
    assert tg.gradcheck(fn, inputs)
    if double:
        assert tg.gradgradcheck(fn, inputs)


shapes = testing.shapes(max_dims=3, max_side=3)
pairs = testing.broadcastable_shapes(max_dims=3, max_side=3)


# ---- binary elementwise with broadcasting ------------------------------------------------------
BINARY = {
    "add": (lambda a, b: a + b, np.add),
    "sub": (lambda a, b: a - b, np.subtract),
    "mul": (lambda a, b: a * b, np.multiply),
    "div": (lambda a, b: a / b, np.divide),
    "maximum": (F.maximum, np.maximum),
    "minimum": (F.minimum, np.minimum),
    # the gradient ops of tanh and sigmoid from their outputs (g, y), used by their backward passes
    "tanh_backward": (TanhBackward.apply, lambda g, y: g * (1 - y * y)),
    "sigmoid_backward": (SigmoidBackward.apply, lambda g, y: g * y * (1 - y)),
}


@pytest.mark.parametrize("name", BINARY)
@SMALL
@given(data=st.data(), shp=pairs)
def test_binary_ops_broadcast(name, data, shp):
    fn, ref = BINARY[name]
    sa, sb = shp
    result_shape = np.broadcast_shapes(sa, sb)
    a = data.draw(arrays(sa, away_from_zero=True))
    # b far from a (no ties in maximum/minimum) and from 0 (division)
    b = data.draw(arrays(sb, away_from_zero=True)) + 0.05
    np.testing.assert_allclose(fn(t(a), t(b)).data, ref(a, b), rtol=1e-12)
    if (
        name in ("maximum", "minimum")
        and np.isclose(np.broadcast_to(a, result_shape), np.broadcast_to(b, result_shape), atol=1e-3).any()
    ):
        return
    check(fn, a, b)


@SMALL
@given(data=st.data(), shp=pairs)
def test_pow_with_tensor_exponent(data, shp):
    sa, sb = shp
    a = np.abs(data.draw(arrays(sa, away_from_zero=True)))
    b = data.draw(arrays(sb, -1.5, 1.5))
    np.testing.assert_allclose((t(a) ** t(b)).data, a**b)
    check(lambda x, y: x**y, a, b)


@SMALL
@given(a=arrays((2, 3), away_from_zero=True), p=st.sampled_from([2, 3, -1, 0.5, 1.5]))
def test_pow_scalar(a, p):
    a = np.abs(a)
    np.testing.assert_allclose((t(a) ** p).data, a**p)
    check(lambda x: x**p, a)


# ---- unary --------------------------------------------------------------------------------------
UNARY = {
    "neg": (lambda x: -x, np.negative, False),
    "exp": (lambda x: x.exp(), np.exp, False),
    "log": (lambda x: x.abs().log(), lambda a: np.log(np.abs(a)), True),
    "sqrt": (lambda x: x.abs().sqrt(), lambda a: np.sqrt(np.abs(a)), True),
    "abs": (lambda x: x.abs(), np.abs, True),
    "tanh": (lambda x: x.tanh(), np.tanh, False),
    "sigmoid": (lambda x: x.sigmoid(), lambda a: 1 / (1 + np.exp(-a)), False),
    "relu": (lambda x: x.relu(), lambda a: np.maximum(a, 0), True),
    "clip": (lambda x: x.clip(-1.0, 1.0), lambda a: np.clip(a, -1, 1), True),
}


@pytest.mark.parametrize("name", UNARY)
@SMALL
@given(data=st.data(), shape=shapes)
def test_unary_ops(name, data, shape):
    fn, ref, kink = UNARY[name]
    a = data.draw(arrays(shape, away_from_zero=kink))
    if name == "clip":
        a = np.where(np.abs(np.abs(a) - 1) < 0.05, a * 0.9, a)  # stay off the clip corners
    np.testing.assert_allclose(fn(t(a)).data, ref(a), rtol=1e-12)
    check(fn, a)


def test_sigmoid_is_stable_for_large_inputs():
    x = tg.tensor([-1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(x.sigmoid().data, [0.0, 0.5, 1.0])


def test_where():
    cond = np.array([[True, False, True]])
    check(lambda a, b: F.where(cond, a, b), np.ones((2, 3)), np.arange(3.0))
    np.testing.assert_array_equal(F.where(cond, t(np.ones((2, 3))), t(np.zeros(3))).data, np.broadcast_to(cond, (2, 3)).astype(float))
    with pytest.raises(TypeError, match="boolean"):
        F.where(np.ones(3), t(np.ones(3)), t(np.ones(3)))


# ---- reductions -----------------------------------------------------------------------------------
axes_for = st.sampled_from([None, 0, -1, (0, 1)])


# Ours (numpy's axis/keepdims spelling accepted) against numpy's function of the same meaning.
REDUCTIONS = {"sum": ("sum", {}), "mean": ("mean", {}), "var": ("var", {"ddof": 0}), "amax": ("max", {}), "amin": ("min", {})}


@pytest.mark.parametrize("name", REDUCTIONS)
@SMALL
@given(data=st.data(), axis=axes_for, keepdims=st.booleans())
def test_reductions(name, data, axis, keepdims):
    a = data.draw(arrays((2, 3), distinct=True))
    np_name, extra = REDUCTIONS[name]
    fn = lambda x: getattr(x, name)(axis=axis, keepdims=keepdims, **extra)  # noqa: E731
    np.testing.assert_allclose(fn(t(a)).data, getattr(np, np_name)(a, axis=axis, keepdims=keepdims, **extra), rtol=1e-12)
    check(fn, a)


def test_max_ties_share_the_gradient_equally():
    x = t([1.0, 3.0, 3.0, 2.0])
    x.max().backward()
    np.testing.assert_allclose(x.grad.data, [0, 0.5, 0.5, 0])


def test_var_ddof_matches_numpy():
    a = np.arange(6.0).reshape(2, 3) ** 2
    np.testing.assert_allclose(t(a).var(axis=1, ddof=1).data, a.var(axis=1, ddof=1))
    check(lambda x: x.var(axis=0, ddof=1), a)


# ---- matmul with numpy's 1-D rules -----------------------------------------------------------------
@pytest.mark.parametrize(
    "sa,sb",
    [((3,), (3,)), ((3,), (3, 2)), ((2, 3), (3,)), ((2, 3), (3, 4)), ((2, 2, 3), (3, 4)), ((1, 2, 3), (4, 3, 2)), ((3,), (2, 3, 2)),
     ((2, 2, 3), (3,)), ((2, 3), (2, 3, 4)), ((2, 1, 3), (3,)), ((3,), (1, 3, 1))],
)
def test_matmul_shapes_and_gradients(sa, sb):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    np.testing.assert_allclose((t(a) @ t(b)).data, a @ b, rtol=1e-12)
    check(lambda x, y: x @ y, a, b)


def test_matmul_errors_name_shapes():
    with pytest.raises(ValueError, match=r"matmul: \(3, 4\) @ \(5, 2\): inner dimensions 4 and 5 differ"):
        tg.zeros(3, 4) @ tg.zeros(5, 2)
    with pytest.raises(ValueError, match="batch dimensions"):
        tg.zeros(2, 3, 4) @ tg.zeros(3, 4, 2)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        tg.tensor(2.0) @ tg.zeros(2)


# ---- shapes and indexing ---------------------------------------------------------------------------
def test_shape_ops_forward_and_gradients():
    a = np.arange(24.0).reshape(2, 3, 4) / 7
    cases = [
        (lambda x: x.reshape(4, -1), a.reshape(4, -1)),
        (lambda x: x.permute(2, 0, 1), a.transpose(2, 0, 1)),
        (lambda x: x.transpose(0, 2), a.swapaxes(0, 2)),
        (lambda x: x.T, a.T),
        (lambda x: x.flatten(1), a.reshape(2, 12)),
        (lambda x: x.unsqueeze(1).squeeze(1), a),
        (lambda x: x[:, :1].expand(2, 5, 4), np.broadcast_to(a[:, :1], (2, 5, 4))),
        (lambda x: F.pad(x, (2, 0, 1, 2)), np.pad(a, ((0, 0), (1, 2), (2, 0)))),  # PyTorch order: last dimension first
        (lambda x: F.cat([x, x * 2], axis=1), np.concatenate([a, a * 2], axis=1)),
        (lambda x: F.stack([x, x + 1], axis=-1), np.stack([a, a + 1], axis=-1)),
    ]
    for fn, expected in cases:
        np.testing.assert_allclose(fn(t(a)).data, expected)
        check(fn, a, double=False)  # linear ops: second derivatives are checked on getitem/cat below
    check(lambda x: F.cat([x, x * 2], axis=1), a[:1, :2, :2])


@pytest.mark.parametrize(
    "index",
    [
        (slice(None), 1),
        (Ellipsis, slice(1, None, 2)),
        (None, 0),
        np.array([0, 0, 1]),  # repeated rows accumulate
        (np.array([1, 1, 0]), np.array([2, 2, 3])),
        "mask",
    ],
    ids=["slice-int", "ellipsis-step", "newaxis", "int-array-repeats", "pairs-repeat", "bool-mask"],
)
def test_getitem_forward_and_gradients(index):
    a = np.arange(12.0).reshape(3, 4) / 5 - 1
    if isinstance(index, str):
        index = a > 0
    np.testing.assert_allclose(t(a)[index].data, a[index])
    check(lambda x: x[index], a)


def test_getitem_repeated_indices_accumulate():
    x = t([1.0, 2.0, 3.0])
    x[np.array([0, 0, 2, 0])].sum().backward()
    np.testing.assert_allclose(x.grad.data, [3, 0, 1])


def test_shape_errors_are_named():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape a tensor of shape \(2, 3\)"):
        x.reshape(4, 2)
    with pytest.raises(ValueError, match=r"add: shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        x + tg.zeros(4)
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match="permute"):
        x.permute(0, 0)
    with pytest.raises(ValueError, match="cat: tensor 1 has shape"):
        F.cat([x, tg.zeros(3, 3)], axis=1)
    with pytest.raises(IndexError, match="getitem"):
        x[5]
    assert x.squeeze(1).shape == (2, 3)  # as in PyTorch, a dim whose size is not 1 stays


# ---- softmax family and losses --------------------------------------------------------------------
@SMALL
@given(a=arrays((3, 4), -5, 5))
def test_softmax_family(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    sm = e / e.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(F.softmax(t(a), axis=1).data, sm, rtol=1e-12)
    np.testing.assert_allclose(F.log_softmax(t(a), axis=1).data, np.log(sm), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(F.logsumexp(t(a), axis=1).data, np.log(np.exp(a).sum(axis=1)), rtol=1e-12)
    check(lambda x: F.softmax(x, axis=1), a)
    check(lambda x: F.log_softmax(x, axis=0), a)
    check(lambda x: F.logsumexp(x, axis=1), a)


def test_softmax_is_stable_for_huge_logits():
    x = tg.tensor([[1e4, 0.0, -1e4]], dtype=np.float64, requires_grad=True)
    loss = F.cross_entropy(x, np.array([1]))
    assert np.isfinite(loss.item()) and abs(loss.item() - 1e4) < 1e-6
    loss.backward()
    np.testing.assert_allclose(x.grad.data, [[1.0, -1.0, 0.0]], atol=1e-12)


@SMALL
@given(
    a=arrays((4, 3), -3, 3), labels=hnp.arrays(np.int64, 4, elements=st.integers(0, 2)), reduction=st.sampled_from(["mean", "sum", "none"])
)
def test_cross_entropy_labels_and_probabilities(a, labels, reduction):
    logp = a - np.log(np.exp(a).sum(axis=1, keepdims=True))
    per = -logp[np.arange(4), labels]
    expected = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    np.testing.assert_allclose(F.cross_entropy(t(a), labels, reduction=reduction).data, expected, rtol=1e-10)
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(F.cross_entropy(t(a), onehot, reduction=reduction).data, expected, rtol=1e-10)
    check(lambda x: F.cross_entropy(x, labels, reduction=reduction), a)
    probs = np.full((4, 3), 1 / 3)
    check(lambda x: F.cross_entropy(x, probs), a)


def test_cross_entropy_rejects_bad_labels():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 3\) \(or equal ignore_index=-100\), got \[3\]"):
        F.cross_entropy(x, np.array([0, 3]))
    with pytest.raises(ValueError, match=r"class-index target must have shape \(2,\)"):
        F.cross_entropy(x, np.array([[0], [1]]))
    with pytest.raises(ValueError, match="probability targets"):
        F.cross_entropy(x, np.ones((2, 4)))
    with pytest.raises(ValueError, match="cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"):
        F.cross_entropy(x, np.array([0, 1]), reduction="avg")


def test_mse_loss():
    a, b = np.arange(6.0).reshape(2, 3), np.ones((2, 3))
    np.testing.assert_allclose(F.mse_loss(t(a), b).item(), ((a - b) ** 2).mean())
    check(lambda x: F.mse_loss(x, b, reduction="sum"), a)
    with pytest.raises(ValueError, match="mse_loss"):
        F.mse_loss(t(a), np.ones(3))


def test_dropout_is_inverted_seeded_and_identity_in_eval():
    x = tg.ones(1000)
    y = F.dropout(x, p=0.25, seed=0)
    kept = y.data != 0
    assert 0.65 < kept.mean() < 0.85
    np.testing.assert_allclose(y.data[kept], 1 / 0.75)
    np.testing.assert_array_equal(y.data, F.dropout(x, p=0.25, seed=0).data)
    assert F.dropout(x, p=0.25, training=False) is x
    with pytest.raises(ValueError, match=r"dropout: dropout probability p must be in \[0, 1\], got 1.5"):
        F.dropout(x, p=1.5)
    assert not F.dropout(x, p=1.0).data.any()  # PyTorch allows p = 1: everything dropped
    w = t(np.ones(5))
    F.dropout(w, p=0.5, seed=1).sum().backward()
    np.testing.assert_allclose(w.grad.data, F.dropout(tg.ones(5, dtype=np.float64), p=0.5, seed=1).data)
