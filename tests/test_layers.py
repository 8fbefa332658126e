"""Layers: each equals its functional op with the layer's parameters, matches PyTorch where it is
installed, and the composed ops added for layers (batch_norm, local_response_norm) pass gradcheck."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.nn import init


def t64(a, grad=False):
    return tg.Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---- layers call their functional op ----------------------------------------------------------
def test_linear_is_functional_linear_and_pytorch_init_bounds():
    lin = nn.Linear(50, 7, seed=0)
    assert lin.weight.shape == (7, 50) and lin.bias.shape == (7,) and lin.weight.dtype == np.float32
    bound = 1 / math.sqrt(50)
    assert np.abs(lin.weight.data).max() <= bound and np.abs(lin.weight.data).max() > 0.9 * bound
    x = tg.randn(4, 50, seed=1)
    np.testing.assert_array_equal(lin(x).data, F.linear(x, lin.weight, lin.bias).data)
    np.testing.assert_allclose(lin(x).data, x.data @ lin.weight.data.T + lin.bias.data, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(nn.Linear(50, 7, seed=0).weight.data, lin.weight.data)  # seeded
    assert nn.Linear(3, 2, bias=False).bias is None
    with pytest.raises(ValueError, match="input has 49 features"):
        lin(tg.randn(4, 49))


def test_conv_layers_are_functional_ops():
    conv = nn.Conv2d(4, 6, (3, 5), stride=(2, 1), padding=1, dilation=(1, 2), groups=2, seed=0)
    assert conv.weight.shape == (6, 2, 3, 5)
    bound = 1 / math.sqrt(2 * 3 * 5)
    assert np.abs(conv.weight.data).max() <= bound and np.abs(conv.bias.data).max() <= bound
    x = tg.randn(2, 4, 9, 11, seed=1)
    y = conv(x)
    np.testing.assert_array_equal(y.data, F.conv2d(x, conv.weight, conv.bias, (2, 1), (1, 1), (1, 2), 2).data)
    assert y.shape == (2, 6, 5, 5) and conv.output_shape == (2, 6, 5, 5)
    tconv = nn.ConvTranspose2d(6, 4, 4, stride=2, padding=1, output_padding=1, groups=2, seed=0)
    assert tconv.weight.shape == (6, 2, 4, 4)
    z = tconv(y)
    np.testing.assert_array_equal(z.data, F.conv_transpose2d(y, tconv.weight, tconv.bias, 2, 1, 1, 2).data)
    assert z.shape == (2, 4, 11, 11)
    with pytest.raises(ValueError, match="groups=3 must"):
        nn.Conv2d(4, 6, 3, groups=3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        nn.Conv2d(4, 6, (3, 3, 3))


def test_pool_activation_flatten_layers_are_functional_ops():
    x = tg.randn(2, 3, 8, 7, seed=0)
    pairs = [
        (nn.MaxPool2d(3, stride=2, padding=1), F.max_pool2d(x, 3, 2, 1)),
        (nn.MaxPool2d(2, ceil_mode=True), F.max_pool2d(x, 2, ceil_mode=True)),
        (nn.AvgPool2d(2, padding=1, count_include_pad=False), F.avg_pool2d(x, 2, padding=1, count_include_pad=False)),
        (nn.AdaptiveAvgPool2d((3, 2)), F.adaptive_avg_pool2d(x, (3, 2))),
        (nn.ReLU(), F.relu(x)),
        (nn.Sigmoid(), F.sigmoid(x)),
        (nn.Tanh(), F.tanh(x)),
        (nn.Softmax(dim=1), F.softmax(x, axis=1)),
        (nn.Flatten(), F.flatten(x, 1)),
        (nn.Identity(), x),
    ]
    for layer, expected in pairs:
        np.testing.assert_array_equal(layer(x).data, expected.data, err_msg=repr(layer))
    assert nn.Flatten()(x).shape == (2, 168) and nn.Flatten(0, 1)(x).shape == (6, 8, 7)
    out, idx = nn.MaxPool2d(2, return_indices=True)(x)
    assert idx.shape == out.shape == (2, 3, 4, 3)


def test_dropout_layer_modes_and_seed():
    x = tg.ones(1000)
    d = nn.Dropout(0.25, seed=0)
    y = d(x).data
    assert set(np.unique(y)) <= {0.0, np.float32(1 / 0.75)}
    assert 0.2 < (y == 0).mean() < 0.3
    np.testing.assert_array_equal(nn.Dropout(0.25, seed=0)(x).data, y)
    assert not np.array_equal(d(x).data, y)  # the layer's stream advances
    d.eval()
    np.testing.assert_array_equal(d(x).data, x.data)
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\)"):
        nn.Dropout(1.0)


def test_losses():
    logits = tg.randn(5, 4, seed=0, requires_grad=True)
    labels = np.array([0, 3, 1, 1, 2])
    ce = nn.CrossEntropyLoss()
    np.testing.assert_array_equal(ce(logits, labels).data, F.cross_entropy(logits, labels).data)
    ref = -np.log(np.exp(logits.data) / np.exp(logits.data).sum(1, keepdims=True))[np.arange(5), labels]
    np.testing.assert_allclose(nn.CrossEntropyLoss(reduction="none")(logits, labels).data, ref, rtol=1e-5)
    np.testing.assert_allclose(nn.CrossEntropyLoss(reduction="sum")(logits, labels).item(), ref.sum(), rtol=1e-5)
    target = tg.randn(5, 4, seed=1)
    np.testing.assert_allclose(nn.MSELoss()(logits, target).item(), ((logits.data - target.data) ** 2).mean(), rtol=1e-6)
    with pytest.raises(ValueError, match="reduction must be"):
        nn.CrossEntropyLoss(reduction="avg")  # the first positional argument is weight, as in PyTorch


# ---- batch norm ---------------------------------------------------------------------------------
def ref_batch_norm(x, mean, var, w, b, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return (x - mean.reshape(shape)) / np.sqrt(var.reshape(shape) + eps) * w.reshape(shape) + b.reshape(shape)


def test_batchnorm2d_training_and_eval_by_hand():
    rng = np.random.default_rng(0)
    bn = nn.BatchNorm2d(3, momentum=0.2)
    bn.to(np.float64)
    with tg.no_grad():
        bn.weight.copy_(rng.standard_normal(3))
        bn.bias.copy_(rng.standard_normal(3))
    xs = [rng.standard_normal((4, 3, 5, 2)) * 3 + 1 for _ in range(3)]
    rm, rv = np.zeros(3), np.ones(3)
    for x in xs:
        y = bn(t64(x))
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        np.testing.assert_allclose(y.data, ref_batch_norm(x, mean, var, bn.weight.data, bn.bias.data, 1e-5), rtol=1e-10)
        n = x.size / 3
        rm, rv = 0.8 * rm + 0.2 * mean, 0.8 * rv + 0.2 * var * n / (n - 1)
    np.testing.assert_allclose(bn.running_mean.data, rm, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var.data, rv, rtol=1e-12)
    assert bn.num_batches_tracked.item() == 3
    bn.eval()
    x = rng.standard_normal((2, 3, 4, 4))
    np.testing.assert_allclose(bn(t64(x)).data, ref_batch_norm(x, rm, rv, bn.weight.data, bn.bias.data, 1e-5), rtol=1e-10)
    assert bn.num_batches_tracked.item() == 3  # eval does not count


def test_batchnorm_cumulative_average_and_no_tracking():
    rng = np.random.default_rng(1)
    bn = nn.BatchNorm1d(2, momentum=None)
    xs = [rng.standard_normal((6, 2)).astype(np.float32) for _ in range(4)]
    for x in xs:
        bn(tg.Tensor(x))
    np.testing.assert_allclose(bn.running_mean.data, np.mean([x.mean(0) for x in xs], axis=0), rtol=1e-5, atol=1e-6)
    free = nn.BatchNorm2d(2, track_running_stats=False, affine=False).eval()
    assert list(free.state_dict()) == [] and free.num_parameters() == 0
    x = rng.standard_normal((3, 2, 2, 2))
    np.testing.assert_allclose(free(t64(x)).data, ref_batch_norm(x, x.mean((0, 2, 3)), x.var((0, 2, 3)), np.ones(2), np.zeros(2), 1e-5))
    with pytest.raises(ValueError, match=r"expected input \(N, C, H, W\) with C = 2, got shape \(3, 2\)"):
        free(tg.randn(3, 2))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(2)(tg.randn(1, 2))


def test_batch_norm_gradcheck():
    rng = np.random.default_rng(2)
    x = t64(rng.standard_normal((3, 2, 3, 2)), True)
    w, b = t64(rng.standard_normal(2), True), t64(rng.standard_normal(2), True)
    assert tg.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    assert tg.gradgradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), (x, w, b))
    rm, rv = t64(rng.standard_normal(2)), t64(rng.random(2) + 0.5)
    assert tg.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), (x, w, b))


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    ours, theirs = nn.BatchNorm2d(4).double(), torch.nn.BatchNorm2d(4).double()
    for _ in range(3):
        x = rng.standard_normal((5, 4, 3, 3))
        tx = torch.tensor(x, requires_grad=True)
        ox = t64(x, True)
        y, ty = ours(ox), theirs(tx)
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-12)
        g = rng.standard_normal(y.shape)
        y.backward(t64(g))
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(ox.grad.data, tx.grad.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(ours.weight.grad.data, theirs.weight.grad.numpy(), rtol=1e-8)
    for k, v in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[k].data, v.numpy(), rtol=1e-10, err_msg=k)
    ours.eval(), theirs.eval()
    x = rng.standard_normal((2, 4, 3, 3))
    np.testing.assert_allclose(ours(t64(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10)


# ---- local response norm --------------------------------------------------------------------------
def ref_lrn(x, size, alpha, beta, k):
    # PyTorch's documented formula, one channel at a time.
    c = x.shape[1]
    out = np.empty_like(x)
    for i in range(c):
        lo, hi = max(0, i - size // 2), min(c, i + (size - 1) // 2 + 1)
        out[:, i] = x[:, i] / (k + alpha / size * (x[:, lo:hi] ** 2).sum(axis=1)) ** beta
    return out


@given(size=st.integers(1, 6), c=st.integers(1, 7), alpha=st.floats(1e-4, 1.0), beta=st.floats(0.1, 1.0), k=st.floats(0.5, 3.0))
def test_local_response_norm_formula(size, c, alpha, beta, k):
    x = np.random.default_rng(c).standard_normal((2, c, 3, 2))
    lrn = nn.LocalResponseNorm(size, alpha, beta, k)
    np.testing.assert_allclose(lrn(t64(x)).data, ref_lrn(x, size, alpha, beta, k), rtol=1e-12)


def test_local_response_norm_gradcheck_and_torch():
    x = t64(np.random.default_rng(4).standard_normal((2, 6, 2, 3)), True)
    assert tg.gradcheck(lambda x: F.local_response_norm(x, 5, 0.1, 0.75, 2.0), (x,))
    assert tg.gradgradcheck(lambda x: F.local_response_norm(x, 3, 0.1, 0.75, 1.0), (x,))
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x.data)
    for size in (1, 2, 5):
        np.testing.assert_allclose(
            nn.LocalResponseNorm(size, 1e-2, 0.75, 2.0)(x).data,
            torch.nn.LocalResponseNorm(size, 1e-2, 0.75, 2.0)(tx).numpy(),
            rtol=1e-12,
        )
    with pytest.raises(ValueError, match="at least 3 dimensions"):
        F.local_response_norm(tg.randn(2, 3), 5)


# ---- init ---------------------------------------------------------------------------------------
def test_fans_match_pytorch_definition():
    assert init.fan_in_and_fan_out((30, 1, 5, 5)) == (25, 750)
    assert init.fan_in_and_fan_out((100, 4320)) == (4320, 100)
    torch = pytest.importorskip("torch")
    for shape in [(7, 3), (8, 4, 3, 3), (6, 2, 1, 5)]:
        assert init.fan_in_and_fan_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


@pytest.mark.parametrize(
    "fn, kwargs, std",
    [
        (init.normal_, dict(std=0.01), 0.01),
        (init.uniform_, dict(a=-0.3, b=0.3), 0.3 / math.sqrt(3)),
        (init.xavier_uniform_, {}, math.sqrt(2 / (64 * 9 + 32 * 9))),
        (init.glorot_normal_, dict(gain=2.0), 2 * math.sqrt(2 / (64 * 9 + 32 * 9))),
        (init.kaiming_normal_, dict(nonlinearity="relu"), math.sqrt(2 / (64 * 9))),
        (init.he_uniform_, dict(nonlinearity="relu", mode="fan_out"), math.sqrt(2 / (32 * 9))),
        (init.kaiming_uniform_, dict(a=math.sqrt(5)), 1 / math.sqrt(3 * 64 * 9)),
    ],
)
def test_initialisers_have_their_published_std_and_are_seedable(fn, kwargs, std):
    w = nn.Parameter(np.empty((32, 64, 3, 3), dtype=np.float32))
    version = w._version
    fn(w, seed=0, **kwargs)
    assert w._version > version
    assert abs(w.data.std() - std) < 0.03 * std
    assert abs(w.data.mean()) < 0.05 * std
    first = w.data.copy()
    fn(w, seed=0, **kwargs)
    np.testing.assert_array_equal(w.data, first)
    fn(w, seed=1, **kwargs)
    assert not np.array_equal(w.data, first)
    tg.manual_seed(5)
    fn(w, **kwargs)
    a = w.data.copy()
    tg.manual_seed(5)
    fn(w, **kwargs)
    np.testing.assert_array_equal(w.data, a)


def test_constant_initialisers_and_errors():
    w = nn.Parameter(np.ones((2, 3), dtype=np.float32))
    init.zeros_(w)
    assert not w.data.any()
    init.ones_(w)
    assert (w.data == 1).all()
    init.constant_(w, 0.5)
    assert (w.data == 0.5).all() and w.dtype == np.float32
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(nn.Parameter(np.ones(3)))
    with pytest.raises(ValueError, match="unknown nonlinearity"):
        init.kaiming_normal_(w, nonlinearity="swish")
    with pytest.raises(TypeError, match="expected a Tensor"):
        init.normal_(np.ones(3))
    assert init.calculate_gain("tanh") == 5 / 3 and init.calculate_gain("leaky_relu", 0.2) == math.sqrt(2 / 1.04)


def test_conv_and_linear_layers_match_torch_with_copied_weights():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 4, 9, 8))
    ours = nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2).double()
    theirs = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2).double()
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    np.testing.assert_allclose(ours(t64(x)).data, theirs(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
    lin, tlin = nn.Linear(8, 3).double(), torch.nn.Linear(8, 3).double()
    lin.load_state_dict({k: v.detach().numpy() for k, v in tlin.state_dict().items()})
    np.testing.assert_allclose(lin(t64(x)).data, tlin(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12)
