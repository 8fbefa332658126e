"""Reference models: SimpleConvNet (chapter API, backprop vs numerical gradient), LeNet-5 and
AlexNet (exact parameter counts, shapes, options), and the layer tables in docs/models.md."""

import pathlib
import re

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.models import AlexNet, LeNet, SimpleConvNet
from tinygrad_cnn.nn import functional as F

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs" / "models.md"


def conv_params(cin, cout, k, groups=1):
    return cout * (cin // groups) * k * k + cout


def fc_params(n_in, n_out):
    return n_in * n_out + n_out


# ---- SimpleConvNet --------------------------------------------------------------------------------
def test_simple_convnet_is_the_chapter_network():
    net = SimpleConvNet(seed=0)
    assert net.num_parameters() == conv_params(1, 30, 5) + fc_params(30 * 12 * 12, 100) + fc_params(100, 10) == 433_890
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {"W1": (30, 1, 5, 5), "b1": (30,), "W2": (4320, 100), "b2": (100,), "W3": (100, 10), "b3": (10,)}
    for k in ("W1", "W2", "W3"):
        assert abs(net.params[k].std() - 0.01) < 0.001, k
    assert not any(net.params[k].any() for k in ("b1", "b2", "b3"))
    x = tg.randn(3, 1, 28, 28, seed=1)
    assert net(x).shape == (3, 10)
    assert [type(m).__name__ for m in net.children()] == ["Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear", "ReLU", "Linear"]
    # Same seed, same network.
    np.testing.assert_array_equal(SimpleConvNet(seed=0).params["W2"], net.params["W2"])


def test_chapter_api_works_on_numpy_and_params_are_views():
    net = SimpleConvNet(input_dim=(1, 12, 12), conv_param={"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1}, hidden_size=8, seed=0)
    rng = np.random.default_rng(0)
    x = rng.random((7, 1, 12, 12))
    t = rng.integers(0, 10, 7)
    onehot = np.eye(10)[t]
    y = net.predict(x)
    assert isinstance(y, np.ndarray) and y.shape == (7, 10) and y.dtype == np.float32
    assert isinstance(net.loss(x, t), float) and net.loss(x, t) == pytest.approx(net.loss(x, onehot), rel=1e-6)
    assert net.loss(x, t) == pytest.approx(F.cross_entropy(net(tg.Tensor(x.astype(np.float32))), t).item(), rel=1e-6)
    expected = float(np.mean(np.argmax(y, axis=1) == t))
    assert net.accuracy(x, t, batch_size=3) == expected == net.accuracy(x, onehot)
    params = net.params
    assert np.shares_memory(params["W2"], net.affine1.weight.data) and params["W2"].shape == (4 * 6 * 6, 8)
    params["b3"][:] = 5.0
    params["b3"][2] = 50.0
    assert (np.argmax(net.predict(x), axis=1) == 2).all()


def test_training_with_the_chapters_update_rule_lowers_the_loss():
    rng = np.random.default_rng(1)
    x = rng.random((32, 1, 12, 12)).astype(np.float32)
    t = rng.integers(0, 2, 32)
    x[t == 1, :, :6] += 1.0  # class 1: a bright top half
    net = SimpleConvNet(
        input_dim=(1, 12, 12),
        conv_param={"filter_num": 6, "filter_size": 3, "pad": 0, "stride": 1},
        hidden_size=20,
        output_size=2,
        weight_init_std=0.1,
        seed=0,
    )
    before = net.loss(x, t)
    for _ in range(30):
        grads = net.gradient(x, t)
        for k in grads:
            net.params[k] -= 0.2 * grads[k]
    assert net.loss(x, t) < 0.2 * before and net.accuracy(x, t) == 1.0


def test_backprop_gradient_agrees_with_numerical_gradient():
    net = SimpleConvNet(
        input_dim=(1, 10, 10),
        conv_param={"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1},
        hidden_size=6,
        output_size=4,
        weight_init_std=0.5,
        dtype=np.float64,
        seed=0,
    )
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 1, 10, 10))
    t = np.array([0, 3, 1])
    g_bp = net.gradient(x, t)
    g_num = net.numerical_gradient(x, t)
    assert g_bp.keys() == g_num.keys() == net.params.keys()
    for k in g_bp:
        assert g_bp[k].shape == net.params[k].shape
        np.testing.assert_allclose(g_bp[k], g_num[k], rtol=1e-5, atol=1e-8, err_msg=k)
        assert np.abs(g_bp[k]).max() > 1e-4, k  # not trivially zero
    # gradient() does not accumulate across calls.
    np.testing.assert_array_equal(net.gradient(x, t)["W1"], g_bp["W1"])


@pytest.mark.parametrize(
    "input_dim, conv_param, msg",
    [
        ((1, 28, 28), {"filter_num": 30, "filter_size": 4, "pad": 0, "stride": 1}, "output height is 25, which 2x2 pooling"),
        (
            (1, 28, 28),
            {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 2},
            r"\(28 \+ 0 - 5\) / 2 \+ 1 = 12.5 is not a positive integer",
        ),
        ((1, 28, 28), {"filter_num": 30, "filter_size": 5}, r"missing \['pad', 'stride'\]"),
        ((1, 4, 4), {"filter_num": 3, "filter_size": 7, "pad": 0, "stride": 1}, "is not a positive integer"),
    ],
)
def test_bad_conv_param_gets_a_clear_error(input_dim, conv_param, msg):
    with pytest.raises(ValueError, match=msg):
        SimpleConvNet(input_dim=input_dim, conv_param=conv_param)


def test_simple_convnet_other_valid_configurations():
    net = SimpleConvNet(input_dim=(3, 32, 32), conv_param={"filter_num": 16, "filter_size": 5, "pad": 2, "stride": 1}, seed=0)
    assert net.affine1.in_features == 16 * 16 * 16
    assert net(tg.randn(2, 3, 32, 32)).shape == (2, 10)
    net = SimpleConvNet(input_dim=(1, 28, 28), conv_param={"filter_num": 5, "filter_size": 4, "pad": 1, "stride": 2}, seed=0)
    assert net.affine1.in_features == 5 * 7 * 7  # conv 14x14
    # Non-square: conv 24x26, both even, so pooling gives 12x13.
    net = SimpleConvNet(input_dim=(1, 28, 30), conv_param={"filter_num": 8, "filter_size": 5, "pad": 0, "stride": 1}, seed=0)
    assert net.affine1.in_features == 8 * 12 * 13
    assert net(tg.randn(2, 1, 28, 30)).shape == (2, 10)


# ---- LeNet ------------------------------------------------------------------------------------------
def test_lenet_parameter_count_and_shapes():
    expected = conv_params(1, 6, 5) + conv_params(6, 16, 5) + conv_params(16, 120, 5) + fc_params(120, 84) + fc_params(84, 10)
    for size in (28, 32):
        net = LeNet(input_size=size, seed=0)
        assert net.num_parameters() == expected == 61_706
        x = tg.randn(2, 1, size, size, seed=0)
        assert net(x).shape == (2, 10)
        assert net.c1.output_shape == (2, 6, 28, 28) and net.s4.output_shape == (2, 16, 5, 5) and net.c5.output_shape == (2, 120, 1, 1)
    assert LeNet(in_channels=3, num_classes=100).num_parameters() == expected + 2 * 6 * 25 + (84 + 1) * 90


def test_lenet_variants_are_one_argument_away():
    classic = LeNet()
    assert isinstance(classic.act1, nn.Sigmoid) and isinstance(classic.s2, nn.AvgPool2d)
    modern = LeNet(activation="relu", pooling="max")
    assert isinstance(modern.act1, nn.ReLU) and isinstance(modern.s4, nn.MaxPool2d)
    assert isinstance(LeNet(activation="tanh").act6, nn.Tanh)
    x = tg.randn(4, 1, 28, 28, seed=0)
    loss = F.cross_entropy(modern(x), np.array([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in modern.parameters())
    with pytest.raises(ValueError, match="activation must be one of"):
        LeNet(activation="gelu")
    with pytest.raises(ValueError, match="pooling must be one of"):
        LeNet(pooling="min")
    with pytest.raises(ValueError, match="input_size must be 28"):
        LeNet(input_size=64)
    with pytest.raises(ValueError, match=r"expected input \(N, 1, 28, 28\)"):
        classic(tg.randn(1, 1, 32, 32))


# ---- AlexNet ----------------------------------------------------------------------------------------
def alexnet_expected(groups, num_classes=1000, cin=3):
    return (
        conv_params(cin, 96, 11)
        + conv_params(96, 256, 5, groups)
        + conv_params(256, 384, 3)
        + conv_params(384, 384, 3, groups)
        + conv_params(384, 256, 3, groups)
        + fc_params(9216, 4096)
        + fc_params(4096, 4096)
        + fc_params(4096, num_classes)
    )


# Building AlexNet draws 62M random weights (seconds): each configuration is built once.
@pytest.fixture(scope="module")
def alexnet1():
    return AlexNet(seed=0)


@pytest.fixture(scope="module")
def alexnet2():
    return AlexNet(groups=2, seed=0)


def test_alexnet_parameter_counts(alexnet1):
    net = alexnet1
    # 62,378,344: the figure usually quoted for the single-tower AlexNet.
    assert net.num_parameters() == alexnet_expected(1) == 62_378_344
    assert net.features.conv2.weight.shape == (256, 96, 5, 5)
    assert abs(net.classifier.fc6.weight.data.std() - 0.01) < 1e-4
    assert (net.features.conv2.bias.data == 1).all() and (net.classifier.fc7.bias.data == 1).all()
    assert not net.features.conv1.bias.data.any() and not net.features.conv3.bias.data.any() and not net.classifier.fc8.bias.data.any()


def test_alexnet_groups_two_parameter_count(alexnet2):
    assert alexnet2.num_parameters() == alexnet_expected(2) == 60_965_224
    f = alexnet2.features
    assert f.conv2.weight.shape == (256, 48, 5, 5) and f.conv3.weight.shape == (384, 256, 3, 3)
    assert f.conv4.weight.shape == (384, 192, 3, 3) and f.conv5.weight.shape == (256, 192, 3, 3)
    with pytest.raises(ValueError, match="groups must be 1 or 2"):
        AlexNet(groups=4)
    with pytest.raises(ValueError, match=r"expected input \(N, 3, 227, 227\), got shape \(1, 3, 224, 224\)"):
        alexnet2(tg.zeros(1, 3, 224, 224))


def test_alexnet_kaiming_init_draws_he_normal_weights_and_zero_biases():
    net = AlexNet(num_classes=10, in_channels=1, init="kaiming", seed=0)
    for name, fan_in in (("features.conv1", 1 * 11 * 11), ("features.conv3", 256 * 3 * 3), ("classifier.fc6", 9216)):
        w = dict(net.named_parameters())[name + ".weight"].data
        assert abs(w.std() / np.sqrt(2.0 / fan_in) - 1) < 0.05, name
    assert all(not p.data.any() for n, p in net.named_parameters() if n.endswith(".bias"))
    with pytest.raises(ValueError, match="init must be 'paper' .* or 'kaiming'"):
        AlexNet(init="xavier")


@pytest.mark.slow
def test_alexnet_forward_backward_float32_batch_of_two(alexnet2):
    x = tg.randn(2, 3, 227, 227, seed=0)
    logits = alexnet2(x)
    assert logits.shape == (2, 1000) and logits.dtype == np.float32
    assert alexnet2.features.pool5.output_shape == (2, 256, 6, 6)
    loss = F.cross_entropy(logits, np.array([3, 999]))
    assert 5.0 < loss.item() < 9.0  # about log(1000) at initialisation
    alexnet2.zero_grad()
    loss.backward()
    for name, p in alexnet2.named_parameters():
        assert p.grad is not None and p.grad.dtype == np.float32 and np.isfinite(p.grad.data).all(), name
    assert np.abs(alexnet2.features.conv1.weight.grad.data).max() > 0
    # The gradient of fc8's bias is softmax(logits) - onehot, averaged over the batch.
    p = np.exp(logits.data - logits.data.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[[0, 1], [3, 999]] -= 1
    np.testing.assert_allclose(alexnet2.classifier.fc8.bias.grad.data, p.mean(0), rtol=1e-4, atol=1e-7)


# ---- the docs' layer tables are the code's ------------------------------------------------------------
@pytest.mark.parametrize(
    "title, make, shape",
    [
        ("SimpleConvNet", lambda r: SimpleConvNet(seed=0), (1, 28, 28)),
        ("LeNet", lambda r: LeNet(seed=0), (1, 28, 28)),
        ("LeNet, modern variant", lambda r: LeNet(activation="relu", pooling="max", seed=0), (1, 28, 28)),
        ("AlexNet", lambda r: r.getfixturevalue("alexnet1"), (3, 227, 227)),
        ("AlexNet, groups=2", lambda r: r.getfixturevalue("alexnet2"), (3, 227, 227)),
    ],
)
def test_docs_layer_tables_match_the_models(title, make, shape, request):
    text = DOCS.read_text()
    m = re.search(rf"<!-- table: {re.escape(title)} -->\n(.*?)\n<!-- end table -->", text, re.S)
    assert m, f"docs/models.md has no table marked '<!-- table: {title} -->'"
    table = make(request).summary(shape)
    assert m.group(1).strip() == table, f"docs/models.md table for {title} is out of date; paste model.summary():\n{table}"
