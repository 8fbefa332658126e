"""nn.functional against PyTorch: names, signatures, defaults and values (float64, rtol 1e-6),
gradients by finite differences, and the errors for arguments PyTorch accepts but we do not.
The PyTorch comparisons are skipped without torch; the gradient checks always run."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F

try:
    import torch
except ImportError:  # the PyTorch comparisons are skipped without it
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch not installed")
TF = torch.nn.functional if torch is not None else None


def t64(a, grad=False):
    return tg.tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def close(ours, theirs, rtol=1e-6, atol=1e-9):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    np.testing.assert_allclose(np.asarray(ours.data if hasattr(ours, "data") else ours), theirs, rtol=rtol, atol=atol)


def same_grads(fn, tfn, arrays, seed=0):
    """Values and input gradients (for a random cotangent) of ours and PyTorch's on the same arrays."""
    xs = [t64(a, grad=True) for a in arrays]
    ts = [torch.tensor(np.asarray(a, dtype=np.float64), requires_grad=True) for a in arrays]
    y, ty = fn(*xs), tfn(*ts)
    assert y.shape == tuple(ty.shape)
    close(y, ty)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(tg.tensor(g))
    ty.backward(torch.tensor(g))
    for x, tt in zip(xs, ts):
        close(x.grad, tt.grad)


def gradcheck(fn, *arrays):
    assert tg.gradcheck(fn, tuple(t64(a, grad=True) for a in arrays))


# ---- pad --------------------------------------------------------------------------------------
@needs_torch
@given(
    st.sampled_from(["constant", "reflect", "replicate", "circular"]),
    st.lists(st.integers(0, 2), min_size=2, max_size=6).filter(lambda p: len(p) % 2 == 0),
    st.integers(0, 2**16),
)
def test_pad_matches_torch(mode, pad, seed):
    if mode != "constant" and len(pad) == 2:
        pad = pad + [1, 0]  # PyTorch's non-constant modes pad 2 or 3 dimensions of a 4-D input (ours also 1)
    x = np.random.default_rng(seed).standard_normal((2, 3, 4, 5))
    kw = {"value": 1.5} if mode == "constant" else {}
    same_grads(lambda a: F.pad(a, pad, mode=mode, **kw), lambda a: TF.pad(a, pad, mode=mode, **kw), [x], seed)


@needs_torch
def test_pad_last_dimension_first_and_negative_crops():
    x = np.arange(24.0).reshape(2, 3, 4)
    assert F.pad(t64(x), (1, 1)).shape == (2, 3, 6)
    assert F.pad(t64(x), (1, 1, 2, 0)).shape == (2, 5, 6)
    same_grads(lambda a: F.pad(a, (-1, 2, 0, -1)), lambda a: TF.pad(a, (-1, 2, 0, -1)), [x])


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_gradcheck(mode):
    x = np.random.default_rng(1).standard_normal((1, 2, 3, 4))
    gradcheck(lambda a: F.pad(a, (2, 1, 1, 2), mode=mode), x)
    assert tg.gradgradcheck(lambda a: F.pad(a, (1, 2), mode=mode), (t64(x, grad=True),))


def test_pad_errors():
    x = tg.ones(1, 2, 3)
    with pytest.raises(ValueError, match=r"pad: pad must have an even length.*got \(1, 2, 3\)"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"pad: 4 \(before, after\) pairs given for an input with only 3 dimensions"):
        F.pad(x, (1,) * 8)
    with pytest.raises(ValueError, match=r"pad: mode must be 'constant', 'reflect', 'replicate' or 'circular', got 'bogus'"):
        F.pad(x, (1, 1), mode="bogus")
    with pytest.raises(ValueError, match=r"pad: mode='reflect' needs amounts between 0 and 2 for dimension 2 of size 3"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(TypeError, match="flat sequence of ints"):
        F.pad(x, ((0, 0), (1, 1)))


# ---- softmax family ----------------------------------------------------------------------------
@needs_torch
@given(st.integers(0, 2), st.booleans(), st.integers(0, 2**16))
def test_softmax_family_matches_torch(dim, keepdim, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, 4)) * 5
    same_grads(lambda a: F.softmax(a, dim), lambda a: torch.softmax(a, dim), [x], seed)
    same_grads(lambda a: F.log_softmax(a, dim=dim), lambda a: torch.log_softmax(a, dim=dim), [x], seed)
    same_grads(lambda a: F.logsumexp(a, dim, keepdim), lambda a: torch.logsumexp(a, dim, keepdim), [x], seed)


def test_softmax_axis_aliases_and_conflicts():
    x = t64(np.random.default_rng(0).standard_normal((2, 3)))
    np.testing.assert_array_equal(F.softmax(x, axis=0).data, F.softmax(x, dim=0).data)
    np.testing.assert_array_equal(F.logsumexp(x, axis=1, keepdims=True).data, F.logsumexp(x, dim=1, keepdim=True).data)
    assert F.logsumexp(x, 1, keepdims=True).shape == (2, 1)
    with pytest.raises(TypeError, match=r"softmax: got both dim=0 and its numpy alias axis=1"):
        F.softmax(x, dim=0, axis=1)
    with pytest.raises(ValueError, match=r"log_softmax: dim must be an int in \[-2, 2\).*got 2"):
        F.log_softmax(x, 2)
    assert F.softmax(tg.tensor([1, 2]), dtype=np.float64).dtype == np.float64


# ---- activations ---------------------------------------------------------------------------------
ACTIVATIONS = [
    ("gelu", lambda a: F.gelu(a), lambda a: TF.gelu(a)),
    ("gelu_tanh", lambda a: F.gelu(a, approximate="tanh"), lambda a: TF.gelu(a, approximate="tanh")),
    ("silu", F.silu, lambda a: TF.silu(a)),
    ("leaky_relu", lambda a: F.leaky_relu(a), lambda a: TF.leaky_relu(a)),
    ("leaky_relu_0.2", lambda a: F.leaky_relu(a, 0.2), lambda a: TF.leaky_relu(a, 0.2)),
    ("elu", lambda a: F.elu(a), lambda a: TF.elu(a)),
    ("elu_0.5", lambda a: F.elu(a, alpha=0.5), lambda a: TF.elu(a, alpha=0.5)),
    ("hardtanh", lambda a: F.hardtanh(a), lambda a: TF.hardtanh(a)),
    ("hardtanh_range", lambda a: F.hardtanh(a, -2.0, 0.5), lambda a: TF.hardtanh(a, -2.0, 0.5)),
    ("relu", F.relu, lambda a: TF.relu(a)),
]


@needs_torch
@pytest.mark.parametrize("name, ours, theirs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations_match_torch(name, ours, theirs):
    # Includes the kinks (0 and the hardtanh edges) and large magnitudes (overflow of the unused branch).
    x = np.concatenate([np.random.default_rng(0).standard_normal(20) * 3, [0.0, -1.0, 1.0, 0.5, -2.0, 800.0, -800.0]])
    same_grads(ours, theirs, [x])


@pytest.mark.parametrize("name, ours, theirs", ACTIVATIONS, ids=[a[0] for a in ACTIVATIONS])
def test_activations_gradcheck(name, ours, theirs):
    x = np.random.default_rng(3).standard_normal((3, 4)) * 2
    x = x[np.abs(x) > 0.1].reshape(-1)  # keep away from the kinks, where finite differences disagree
    x = x[np.abs(np.abs(x) - 1.0) > 0.1]
    x = x[np.abs(x - 0.5) > 0.1]
    gradcheck(ours, x)
    assert tg.gradgradcheck(ours, (t64(x, grad=True),))


def test_activation_option_errors():
    with pytest.raises(ValueError, match=r"gelu: approximate must be 'none' or 'tanh', got 'erf'"):
        F.gelu(tg.ones(2), approximate="erf")
    with pytest.raises(ValueError, match=r"relu: inplace=True is not supported"):
        F.relu(tg.ones(2), inplace=True)


# ---- losses -------------------------------------------------------------------------------------
REDUCTIONS = ["mean", "sum", "none"]


@needs_torch
@given(
    st.sampled_from(REDUCTIONS),
    st.booleans(),
    st.sampled_from([-100, 1]),
    st.sampled_from([0.0, 0.3]),
    st.sampled_from([(), (2,)]),
    st.integers(0, 2**16),
)
def test_cross_entropy_class_indices_matches_torch(reduction, weighted, ignore_index, smoothing, extra, seed):
    rng = np.random.default_rng(seed)
    n, c = 5, 4
    x = rng.standard_normal((n, c) + extra) * 3
    target = rng.integers(0, c, (n,) + extra)
    target.flat[0] = 0  # at least one sample that is never ignored
    weight = rng.uniform(0.5, 2.0, c) if weighted else None
    kw = dict(ignore_index=ignore_index, reduction=reduction, label_smoothing=smoothing)
    tw = torch.tensor(weight) if weighted else None
    same_grads(
        lambda a: F.cross_entropy(a, target, weight=weight, **kw),
        lambda a: TF.cross_entropy(a, torch.tensor(target), weight=tw, **kw),
        [x],
        seed,
    )


@needs_torch
@given(st.sampled_from(REDUCTIONS), st.booleans(), st.sampled_from([0.0, 0.2]), st.integers(0, 2**16))
def test_cross_entropy_probabilities_matches_torch(reduction, weighted, smoothing, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3, 4, 2))
    p = rng.dirichlet(np.ones(4), (3, 2)).transpose(0, 2, 1)
    weight = rng.uniform(0.5, 2.0, 4) if weighted else None
    tw = torch.tensor(weight) if weighted else None
    kw = dict(reduction=reduction, label_smoothing=smoothing)
    same_grads(lambda a, b: F.cross_entropy(a, b, weight=weight, **kw), lambda a, b: TF.cross_entropy(a, b, weight=tw, **kw), [x, p], seed)


@needs_torch
def test_cross_entropy_unbatched_and_all_ignored():
    x = np.array([1.0, 2.0, 0.5])
    same_grads(lambda a: F.cross_entropy(a, np.array(2)), lambda a: TF.cross_entropy(a, torch.tensor(2)), [x])
    logits = t64(np.zeros((2, 3)))
    ours = F.cross_entropy(logits, np.array([-100, -100]))
    theirs = TF.cross_entropy(torch.zeros(2, 3, dtype=torch.float64), torch.tensor([-100, -100]))
    assert np.isnan(ours.item()) and np.isnan(theirs.item())


@needs_torch
@given(st.sampled_from(REDUCTIONS), st.booleans(), st.sampled_from([-100, 0]), st.integers(0, 2**16))
def test_nll_loss_matches_torch(reduction, weighted, ignore_index, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((6, 3))
    target = rng.integers(0, 3, 6)
    target[0] = 1
    weight = rng.uniform(0.5, 2.0, 3) if weighted else None
    tw = torch.tensor(weight) if weighted else None
    kw = dict(ignore_index=ignore_index, reduction=reduction)
    same_grads(lambda a: F.nll_loss(a, target, weight, **kw), lambda a: TF.nll_loss(a, torch.tensor(target), tw, **kw), [x], seed)


def test_cross_entropy_and_nll_gradcheck():
    rng = np.random.default_rng(2)
    x, target, w = rng.standard_normal((4, 3)), np.array([0, 2, -100, 1]), np.array([1.0, 2.0, 0.5])
    gradcheck(lambda a: F.cross_entropy(a, target, weight=w, label_smoothing=0.1), x)
    gradcheck(lambda a: F.nll_loss(a, target, reduction="sum"), x)
    gradcheck(lambda a, p: F.cross_entropy(a, F.softmax(p, 1)), x, rng.standard_normal((4, 3)))  # gradients reach the target too
    assert tg.gradgradcheck(lambda a: F.cross_entropy(a, target), (t64(x, grad=True),))


@needs_torch
@given(st.sampled_from(REDUCTIONS), st.booleans(), st.booleans(), st.integers(0, 2**16))
def test_binary_cross_entropies_match_torch(reduction, weighted, pos_weighted, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((4, 3)) * 4
    y = rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2, (3,)) if weighted else None
    pw = rng.uniform(0.5, 3, (3,)) if pos_weighted else None
    tw, tpw = (torch.tensor(w) if weighted else None), (torch.tensor(pw) if pos_weighted else None)
    same_grads(
        lambda a, b: F.binary_cross_entropy_with_logits(a, b, w, reduction=reduction, pos_weight=pw),
        lambda a, b: TF.binary_cross_entropy_with_logits(a, b, tw, reduction=reduction, pos_weight=tpw),
        [x, y],
        seed,
    )
    p = 1 / (1 + np.exp(-x / 4))
    same_grads(
        lambda a, b: F.binary_cross_entropy(a, b, w, reduction=reduction),
        lambda a, b: TF.binary_cross_entropy(a, b, tw, reduction=reduction),
        [p, y],
        seed,
    )


@needs_torch
def test_binary_cross_entropy_edges_match_torch():
    # log(0) clamps at -100; the logits loss is exact at 0 and for huge logits.
    p, y = np.array([0.0, 1.0, 0.5]), np.array([1.0, 0.0, 1.0])
    theirs = TF.binary_cross_entropy(torch.tensor(p), torch.tensor(y), reduction="none")
    close(F.binary_cross_entropy(t64(p), t64(y), reduction="none"), theirs)
    same_grads(
        lambda a: F.binary_cross_entropy_with_logits(a, t64([1.0, 0.0, 1.0, 0.5])),
        lambda a: TF.binary_cross_entropy_with_logits(a, torch.tensor([1.0, 0.0, 1.0, 0.5], dtype=torch.float64)),
        [np.array([0.0, 1000.0, -1000.0, 0.0])],
    )


def test_binary_cross_entropy_gradcheck():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((3, 2)), rng.uniform(0, 1, (3, 2))
    gradcheck(lambda a, b: F.binary_cross_entropy_with_logits(a, b, pos_weight=np.array([2.0, 0.5])), x, y)
    gradcheck(lambda a, b: F.binary_cross_entropy(a, b), rng.uniform(0.1, 0.9, (3, 2)), y)
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities in \[0, 1\]"):
        F.binary_cross_entropy(t64([1.5]), t64([1.0]))


@needs_torch
@given(st.sampled_from(REDUCTIONS), st.sampled_from([1.0, 0.5, 0.0]), st.integers(0, 2**16))
def test_regression_losses_match_torch(reduction, beta, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    same_grads(lambda x, y: F.mse_loss(x, y, reduction=reduction), lambda x, y: TF.mse_loss(x, y, reduction=reduction), [a, b], seed)
    same_grads(lambda x, y: F.l1_loss(x, y, reduction=reduction), lambda x, y: TF.l1_loss(x, y, reduction=reduction), [a, b], seed)
    same_grads(
        lambda x, y: F.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
        lambda x, y: TF.smooth_l1_loss(x, y, reduction=reduction, beta=beta),
        [a, b],
        seed,
    )


def test_regression_losses_gradcheck():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)) + 3  # |a - b| away from beta and 0
    for fn in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, lambda x, y: F.smooth_l1_loss(x, y, beta=10.0)):
        gradcheck(fn, a, b)


@pytest.mark.parametrize(
    "call",
    [
        lambda: F.cross_entropy(tg.zeros(2, 3), np.array([0, 1]), reduction="foo"),
        lambda: F.nll_loss(tg.zeros(2, 3), np.array([0, 1]), reduction="foo"),
        lambda: F.mse_loss(tg.zeros(2), tg.zeros(2), reduction="foo"),
        lambda: F.l1_loss(tg.zeros(2), tg.zeros(2), reduction="foo"),
        lambda: F.smooth_l1_loss(tg.zeros(2), tg.zeros(2), reduction="foo"),
        lambda: F.binary_cross_entropy(tg.zeros(2), tg.zeros(2), reduction="foo"),
        lambda: F.binary_cross_entropy_with_logits(tg.zeros(2), tg.zeros(2), reduction="foo"),
    ],
)
def test_bad_reduction_names_the_function_and_value(call):
    with pytest.raises(ValueError, match=r"^[a-z0-9_]+: reduction must be 'mean', 'sum' or 'none', got 'foo'\.$"):
        call()


def test_one_hot():
    y = F.one_hot(np.array([[0, 2], [1, 0]]))
    assert y.dtype == np.int64 and y.shape == (2, 2, 3)
    assert y.tolist() == [[[1, 0, 0], [0, 0, 1]], [[0, 1, 0], [1, 0, 0]]]
    assert F.one_hot(tg.tensor(np.array([1])), num_classes=4).tolist() == [[0, 1, 0, 0]]
    if torch is not None:
        np.testing.assert_array_equal(F.one_hot(np.array([3, 0, 1])).data, TF.one_hot(torch.tensor([3, 0, 1])).numpy())
    with pytest.raises(ValueError, match="num_classes=2 must be positive and greater than the largest index"):
        F.one_hot(np.array([2]), 2)
    with pytest.raises(TypeError, match="one_hot: input must hold integer class indices"):
        F.one_hot(np.array([1.0]))


# ---- dropout ------------------------------------------------------------------------------------
def test_dropout2d_zeroes_whole_channels():
    x = tg.ones(4, 16, 3, 3)
    y = F.dropout2d(x, p=0.5, seed=0).numpy().reshape(64, 9)
    assert set(np.unique(y)) <= {0.0, 2.0} and (y.std(axis=1) == 0).all()
    assert 0.2 < (y[:, 0] == 0).mean() < 0.8
    assert F.dropout2d(x, training=False) is x
    with pytest.raises(ValueError, match=r"dropout2d: input must be 4-D \(N, C, H, W\), got shape \(16, 3, 3\)"):
        F.dropout2d(tg.ones(16, 3, 3))
    w = t64(np.ones((2, 3, 2, 2)), grad=True)
    y = F.dropout2d(w, 0.5, seed=1)
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, y.data)


# ---- interpolate --------------------------------------------------------------------------------
@needs_torch
@given(
    st.sampled_from(["nearest", "bilinear"]),
    st.sampled_from([None, False, True]),
    st.one_of(st.tuples(st.integers(1, 9), st.integers(1, 9)), st.integers(1, 8)),
    st.integers(0, 2**16),
)
def test_interpolate_size_matches_torch(mode, align_corners, size, seed):
    if mode == "nearest":
        align_corners = None
    x = np.random.default_rng(seed).standard_normal((2, 3, 4, 5))
    kw = dict(size=size, mode=mode, align_corners=align_corners)
    same_grads(lambda a: F.interpolate(a, **kw), lambda a: TF.interpolate(a, **kw), [x], seed)


@needs_torch
@given(
    st.sampled_from(["nearest", "bilinear"]),
    st.sampled_from([0.5, 1.5, 2.0, (2.0, 0.75), 3.3]),
    st.sampled_from([None, True]),
    st.integers(0, 2**16),
)
def test_interpolate_scale_factor_matches_torch(mode, scale, recompute, seed):
    x = np.random.default_rng(seed).standard_normal((1, 2, 5, 6))
    kw = dict(scale_factor=scale, mode=mode, recompute_scale_factor=recompute)
    same_grads(lambda a: F.interpolate(a, **kw), lambda a: TF.interpolate(a, **kw), [x], seed)


def test_interpolate_gradcheck_and_errors():
    x = np.random.default_rng(6).standard_normal((1, 2, 3, 4))
    gradcheck(lambda a: F.interpolate(a, size=(5, 3), mode="bilinear"), x)
    gradcheck(lambda a: F.interpolate(a, scale_factor=2), x)
    with pytest.raises(ValueError, match=r"interpolate: mode must be 'nearest' or 'bilinear', got 'bicubic'"):
        F.interpolate(t64(x), size=2, mode="bicubic")
    with pytest.raises(ValueError, match="give exactly one of size and scale_factor"):
        F.interpolate(t64(x))
    with pytest.raises(ValueError, match="align_corners can only be set with mode='bilinear'"):
        F.interpolate(t64(x), size=2, align_corners=True)


# ---- normalization --------------------------------------------------------------------------------
@needs_torch
@given(st.sampled_from([(4,), (3, 4), 4]), st.booleans(), st.integers(0, 2**16))
def test_layer_norm_matches_torch(shape, affine, seed):
    rng = np.random.default_rng(seed)
    norm = (shape,) if isinstance(shape, int) else shape
    arrays = [rng.standard_normal((2, 3, 4))]
    if affine:
        arrays += [rng.standard_normal(norm), rng.standard_normal(norm)]
    same_grads(lambda *a: F.layer_norm(a[0], shape, *a[1:]), lambda *a: TF.layer_norm(a[0], norm, *a[1:]), arrays, seed)


def test_layer_norm_gradcheck_and_errors():
    rng = np.random.default_rng(7)
    gradcheck(lambda x, w, b: F.layer_norm(x, (3,), w, b), rng.standard_normal((2, 3)), rng.standard_normal(3), rng.standard_normal(3))
    with pytest.raises(ValueError, match=r"layer_norm: normalized_shape \(4,\) must be the last dimensions"):
        F.layer_norm(tg.ones(2, 3), 4)


@needs_torch
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch_signature(training):
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(3), rng.standard_normal(3)
    rm, rv = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    ours_rm, ours_rv = t64(rm), t64(rv)
    their_rm, their_rv = torch.tensor(rm), torch.tensor(rv)
    same_grads(
        lambda a, c, d: F.batch_norm(a, ours_rm, ours_rv, c, d, training, 0.3, 1e-3),
        lambda a, c, d: TF.batch_norm(a, their_rm, their_rv, c, d, training, 0.3, 1e-3),
        [x, w, b],
    )
    close(ours_rm, their_rm)
    close(ours_rv, their_rv)


def test_adaptive_avg_pool2d_gradcheck():
    gradcheck(lambda a: F.adaptive_avg_pool2d(a, (2, 3)), np.random.default_rng(9).standard_normal((1, 2, 5, 7)))


# ---- modules -------------------------------------------------------------------------------------
MODULES = [
    (lambda: nn.GELU(), lambda: torch.nn.GELU()),
    (lambda: nn.GELU(approximate="tanh"), lambda: torch.nn.GELU(approximate="tanh")),
    (lambda: nn.SiLU(), lambda: torch.nn.SiLU()),
    (lambda: nn.LeakyReLU(0.1), lambda: torch.nn.LeakyReLU(0.1)),
    (lambda: nn.ELU(alpha=0.7), lambda: torch.nn.ELU(alpha=0.7)),
    (lambda: nn.Hardtanh(-0.5, 0.5), lambda: torch.nn.Hardtanh(-0.5, 0.5)),
    (lambda: nn.Softmax(dim=1), lambda: torch.nn.Softmax(dim=1)),
    (lambda: nn.LogSoftmax(dim=1), lambda: torch.nn.LogSoftmax(dim=1)),
    (lambda: nn.Upsample(scale_factor=2), lambda: torch.nn.Upsample(scale_factor=2)),
    (
        lambda: nn.Upsample(size=(3, 5), mode="bilinear", align_corners=True),
        lambda: torch.nn.Upsample(size=(3, 5), mode="bilinear", align_corners=True),
    ),
    (lambda: nn.AdaptiveAvgPool2d((1, 3)), lambda: torch.nn.AdaptiveAvgPool2d((1, 3))),
    (lambda: nn.LayerNorm(4, dtype=np.float64), lambda: torch.nn.LayerNorm(4, dtype=torch.float64)),
    (lambda: nn.LayerNorm((2, 4), elementwise_affine=False), lambda: torch.nn.LayerNorm((2, 4), elementwise_affine=False)),
]


@needs_torch
@pytest.mark.parametrize("ours, theirs", MODULES)
def test_modules_match_torch(ours, theirs):
    x = np.random.default_rng(10).standard_normal((2, 3, 2, 4))
    same_grads(ours(), theirs(), [x])


def _w(*v):
    return torch.tensor(v, dtype=torch.float64)


LOSS_MODULES = [
    (lambda: nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=2),
     lambda: torch.nn.CrossEntropyLoss(label_smoothing=0.1, ignore_index=2),
     "index"),
    (lambda: nn.CrossEntropyLoss(weight=np.array([1.0, 2.0, 3.0])), lambda: torch.nn.CrossEntropyLoss(weight=_w(1.0, 2.0, 3.0)), "index"),
    (lambda: nn.NLLLoss(reduction="sum"), lambda: torch.nn.NLLLoss(reduction="sum"), "index"),
    (lambda: nn.BCELoss(), lambda: torch.nn.BCELoss(), "prob"),
    (lambda: nn.BCEWithLogitsLoss(pos_weight=np.array([2.0, 1.0, 0.5])), lambda: torch.nn.BCEWithLogitsLoss(pos_weight=_w(2.0, 1.0, 0.5)),
     "real"),
    (lambda: nn.L1Loss(reduction="none"), lambda: torch.nn.L1Loss(reduction="none"), "real"),
    (lambda: nn.SmoothL1Loss(beta=0.5), lambda: torch.nn.SmoothL1Loss(beta=0.5), "real"),
    (lambda: nn.MSELoss(), lambda: torch.nn.MSELoss(), "real"),
]  # fmt: skip


@needs_torch
@pytest.mark.parametrize("ours, theirs, kind", LOSS_MODULES)
def test_loss_modules_match_torch(ours, theirs, kind):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((5, 3))
    if kind == "index":
        y = rng.integers(0, 3, 5)
        same_grads(lambda a: ours()(a, y), lambda a: theirs()(a, torch.tensor(y)), [x])
    elif kind == "prob":
        same_grads(ours(), theirs(), [1 / (1 + np.exp(-x)), rng.uniform(0, 1, (5, 3))])
    else:
        same_grads(ours(), theirs(), [x, rng.standard_normal((5, 3))])


def test_dropout2d_module_and_reprs():
    m = nn.Dropout2d(0.25)
    x = tg.ones(2, 4, 3, 3)
    assert m.eval()(x) is x
    assert "p=0.25" in repr(m)
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.LogSoftmax(dim=1)) == "LogSoftmax(dim=1)"
    with pytest.raises(ValueError, match=r"BCELoss: reduction must be 'mean', 'sum' or 'none', got 'foo'"):
        nn.BCELoss(reduction="foo")
    ln = nn.LayerNorm(4)
    assert [n for n, _ in ln.named_parameters()] == ["weight", "bias"]


def test_softmax_without_dim_only_where_pytorch_implies_the_last():
    # PyTorch's implicit dim is the last one for 1-D and 2-D inputs (same result here); for
    # 3-D and 4-D it is 0 and 1, so a missing dim there is an error rather than another result.
    x = t64(np.random.default_rng(0).standard_normal((2, 3)))
    np.testing.assert_array_equal(F.softmax(x).data, F.softmax(x, dim=1).data)
    np.testing.assert_array_equal(tg.nn.LogSoftmax()(x[0]).data, F.log_softmax(x[0], dim=0).data)
    y = tg.zeros(2, 3, 4, 4)
    for f in (F.softmax, F.log_softmax, tg.nn.Softmax(), tg.nn.LogSoftmax()):
        with pytest.raises(TypeError, match=r"softmax: give dim for a 4-D input \(of shape \(2, 3, 4, 4\)\)"):
            f(y)
    assert F.softmax(y, dim=1).shape == y.shape and F.logsumexp(y).shape == (2, 3, 4)
