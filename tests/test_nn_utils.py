"""nn.utils: gradient clipping and parameter vectors, against PyTorch (when importable) and by hand."""
import doctest
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.nn import utils

try:
    import torch
except ImportError:  # pragma: no cover - torch is only a reference
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def _params(grads):
    """Our parameters with the given gradient arrays (None: no gradient), and torch's copies."""
    ours, theirs = [], []
    for g in grads:
        p = tg.Tensor(np.zeros(g.shape if g is not None else (2,)), requires_grad=True)
        if g is not None:
            p.grad = tg.Tensor(g.copy())
        ours.append(p)
        if torch is not None:
            t = torch.zeros(p.shape, dtype=torch.float64, requires_grad=True)
            if g is not None:
                t.grad = torch.tensor(g.copy())
            theirs.append(t)
    return ours, theirs


grads_st = st.lists(
    st.one_of(st.none(), st.tuples(st.integers(1, 4), st.integers(1, 5))), min_size=1, max_size=4
).filter(lambda gs: any(g is not None for g in gs))


@needs_torch
@given(grads_st, st.sampled_from([2.0, 1.0, math.inf, 3.0, 0.5, 0.0, -math.inf]), st.floats(0.01, 10.0), st.integers(0, 2**16))
def test_clip_grad_norm_matches_torch(shapes, norm_type, max_norm, seed):
    rng = np.random.default_rng(seed)
    grads = [None if s is None else rng.standard_normal(s) * rng.uniform(0.1, 3) for s in shapes]
    ours, theirs = _params(grads)
    held = [p.grad for p in ours]
    total = utils.clip_grad_norm_(ours, max_norm, norm_type=norm_type)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type=norm_type)
    assert total.dtype == np.float64 and total.shape == ()
    np.testing.assert_allclose(total.item(), t_total.item(), rtol=1e-12)
    for p, t, g in zip(ours, theirs, held):
        assert p.grad is g  # in place: the same Tensors
        if g is None:
            assert t.grad is None
        else:
            np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-300)


@needs_torch
@given(grads_st, st.floats(-2.0, 2.0), st.integers(0, 2**16))
def test_clip_grad_value_matches_torch(shapes, clip_value, seed):
    rng = np.random.default_rng(seed)
    grads = [None if s is None else rng.standard_normal(s) * 2 for s in shapes]
    ours, theirs = _params(grads)
    held = [p.grad for p in ours]
    assert utils.clip_grad_value_(ours, clip_value) is None
    torch.nn.utils.clip_grad_value_(theirs, clip_value)
    for p, t, g in zip(ours, theirs, held):
        assert p.grad is g
        if g is not None:
            np.testing.assert_array_equal(p.grad.data, t.grad.numpy())


@needs_torch
@pytest.mark.parametrize("bad", [math.inf, math.nan])
def test_non_finite_norm_matches_torch(bad):
    grads = [np.array([1.0, bad, -2.0]), np.array([[3.0, 4.0]])]
    ours, theirs = _params(grads)
    total = utils.clip_grad_norm_(ours, 1.0)
    t_total = torch.nn.utils.clip_grad_norm_(theirs, 1.0)
    np.testing.assert_array_equal(total.numpy(), t_total.numpy())
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, t.grad.numpy())
    ours, theirs = _params(grads)
    with pytest.raises(RuntimeError) as ours_err:
        utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError) as torch_err:
        torch.nn.utils.clip_grad_norm_(theirs, 1.0, error_if_nonfinite=True)
    assert str(ours_err.value) == str(torch_err.value)
    np.testing.assert_array_equal(ours[0].grad.data, grads[0])  # nothing changed


@needs_torch
def test_parameters_to_vector_and_back_match_torch(rng):
    arrays = [rng.standard_normal(s) for s in [(2, 3), (4,), (1, 2, 2)]]
    ours = [tg.Tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    v, tv = utils.parameters_to_vector(ours), torch.nn.utils.parameters_to_vector(theirs)
    np.testing.assert_array_equal(v.data, tv.detach().numpy())
    w = rng.standard_normal(v.shape)
    (v * tg.Tensor(w)).sum().backward()
    (tv * torch.tensor(w)).sum().backward()
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad.data, t.grad.numpy())
    new = rng.standard_normal(v.shape)
    utils.vector_to_parameters(tg.Tensor(new), ours)
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(torch.tensor(new), theirs)
    for p, t in zip(ours, theirs):
        np.testing.assert_array_equal(p.data, t.detach().numpy())


# ---- without PyTorch ----------------------------------------------------------------------------------
def test_clip_grad_norm_by_hand():
    ours, _ = _params([np.array([3.0, 0.0]), None, np.array([[0.0], [4.0]])])
    versions = [p.grad._version for p in ours if p.grad is not None]
    total = utils.clip_grad_norm_(ours, 2.0)
    assert total.item() == 5.0
    coef = 2.0 / (5.0 + 1e-6)
    np.testing.assert_allclose(ours[0].grad.data, [3.0 * coef, 0.0], rtol=1e-15)
    np.testing.assert_allclose(ours[2].grad.data, [[0.0], [4.0 * coef]], rtol=1e-15)
    assert [p.grad._version for p in ours if p.grad is not None] == [v + 1 for v in versions]
    # Below max_norm nothing changes; the inf-norm is the largest absolute value.
    assert utils.clip_grad_norm_(ours, 10.0, norm_type="inf").item() == pytest.approx(4.0 * coef)
    np.testing.assert_allclose(ours[0].grad.data, [3.0 * coef, 0.0], rtol=1e-15)
    one = tg.Tensor(np.zeros(2), requires_grad=True)
    one.grad = tg.Tensor(np.array([-1.0, 1.0], dtype=np.float32))
    total = utils.clip_grad_norm_(one, 1.0, norm_type=1)  # a single Tensor works too
    assert total.dtype == np.float32 and one.grad.dtype == np.float32 and total.item() == 2.0


def test_clip_grad_norm_with_grad_mode_on_and_grads_requiring_grad():
    w = tg.Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (w * w).sum().backward(create_graph=True)
    assert w.grad.requires_grad
    utils.clip_grad_norm_([w], 1.0)  # under no_grad inside, so the in-place update is allowed
    np.testing.assert_allclose(w.grad.data, np.array([2.0, 4.0]) / (math.sqrt(20) + 1e-6), rtol=1e-14)


def test_empty_parameters():
    total = utils.clip_grad_norm_([], 1.0)
    assert total.item() == 0.0 and total.dtype == np.float32
    with pytest.warns(UserWarning, match="empty generator"):
        utils.clip_grad_norm_((p for p in []), 1.0)
    p = tg.Tensor(np.zeros(2), requires_grad=True)
    assert utils.clip_grad_norm_([p], 1.0).item() == 0.0  # no gradients at all
    utils.clip_grad_value_([p], 1.0)
    assert p.grad is None


def test_clip_grad_value_by_hand():
    ours, _ = _params([np.array([-3.0, 0.2, math.nan, 5.0])])
    utils.clip_grad_value_(ours, 1.0)
    np.testing.assert_array_equal(ours[0].grad.data, [-1.0, 0.2, math.nan, 1.0])


def test_vector_round_trip_and_errors():
    ps = [tg.Tensor(np.arange(6.0).reshape(2, 3)), tg.Tensor(np.array([7.0]))]
    v = utils.parameters_to_vector(ps)
    np.testing.assert_array_equal(v.data, [0, 1, 2, 3, 4, 5, 7])
    utils.vector_to_parameters(v * 2.0, ps)
    np.testing.assert_array_equal(ps[0].data, [[0, 2, 4], [6, 8, 10]])
    assert ps[0].shape == (2, 3)
    with pytest.raises(TypeError, match="expected Tensor, but got: ndarray"):
        utils.vector_to_parameters(np.zeros(7), ps)
    with pytest.raises(RuntimeError, match=r"vec has 4 elements, too few for parameter 1 of shape \(1,\)"):
        utils.vector_to_parameters(tg.Tensor(np.zeros(6))[:4], [tg.Tensor(np.zeros((2, 2))), tg.Tensor(np.zeros(1))])
    with pytest.raises(TypeError, match=r"clip_grad_norm_: parameters\[1\] is a ndarray, not a Tensor"):
        utils.clip_grad_norm_([ps[0], np.zeros(2)], 1.0)
    with pytest.raises(ValueError, match="parameters_to_vector: got no parameters"):
        utils.parameters_to_vector([])


def test_reachable_from_nn():
    import tinygrad_cnn.nn as nn

    assert nn.utils.clip_grad_norm_ is utils.clip_grad_norm_
    assert "utils" in nn.__all__


def test_docstring_examples():
    result = doctest.testmod(utils, extraglobs={"np": np, "Tensor": tg.Tensor}, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 5 and result.failed == 0
