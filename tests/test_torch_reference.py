"""Forward and gradients against torch.nn.functional on drawn configurations (float64).
Skipped when PyTorch is not importable; it is never a dependency."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.nn import functional as F

torch = pytest.importorskip("torch")
TF = torch.nn.functional


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    # Tiny shapes: torch's thread pool only adds contention on the shared 2-core machine.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _compare(ours, theirs, arrays, seed):
    """Run both functions on the same float64 arrays, backprop the same random cotangent, compare."""
    xs = [tg.Tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = ours(*xs), theirs(*ts)
    assert y.shape == tuple(ty.shape)
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = np.random.default_rng(seed).standard_normal(y.shape)
    y.backward(tg.Tensor(g))
    ty.backward(torch.tensor(g))
    for x, t in zip(xs, ts):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-9, atol=1e-10)


@st.composite
def conv_cfg(draw):
    g = draw(st.sampled_from([1, 2, 3]))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    lo = [max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]) for a in range(2)]
    hw = tuple(draw(st.integers(lo[a], max(lo[a], 9))) for a in range(2))
    return dict(n=draw(st.integers(1, 3)), cg=draw(st.integers(1, 3)), og=draw(st.integers(1, 3)), g=g, k=k, s=s, p=p, d=d, hw=hw,
                bias=draw(st.booleans()))


@given(conv_cfg(), st.integers(0, 2**16))
def test_conv2d_matches_torch(c, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((c["n"], c["cg"] * c["g"]) + c["hw"]), rng.standard_normal((c["og"] * c["g"], c["cg"]) + c["k"])]
    if c["bias"]:
        arrays.append(rng.standard_normal(c["og"] * c["g"]))
    kw = dict(stride=c["s"], padding=c["p"], dilation=c["d"], groups=c["g"])
    _compare(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), arrays, seed)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths:UserWarning")  # PyTorch's own note on its side
@settings(max_examples=15)
@given(conv_cfg(), st.integers(0, 2**16))
def test_conv2d_padding_same_matches_torch(c, seed):
    rng = np.random.default_rng(seed)
    arrays = [rng.standard_normal((c["n"], c["cg"] * c["g"]) + c["hw"]), rng.standard_normal((c["og"] * c["g"], c["cg"]) + c["k"])]
    kw = dict(padding="same", dilation=c["d"], groups=c["g"])
    _compare(lambda *a: F.conv2d(*a, **kw), lambda *a: TF.conv2d(*a, **kw), arrays, seed)


@given(conv_cfg(), st.integers(0, 2**16), st.data())
def test_conv_transpose2d_matches_torch(c, seed, data):
    rng = np.random.default_rng(seed)
    s, d = c["s"], c["d"]
    op = tuple(data.draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    full = [(c["hw"][a] - 1) * s[a] + d[a] * (c["k"][a] - 1) + 1 + op[a] for a in range(2)]
    p = tuple(min(c["p"][a], (full[a] - 1) // 2) for a in range(2))
    arrays = [rng.standard_normal((c["n"], c["cg"] * c["g"]) + c["hw"]), rng.standard_normal((c["cg"] * c["g"], c["og"]) + c["k"])]
    if c["bias"]:
        arrays.append(rng.standard_normal(c["og"] * c["g"]))
    kw = dict(stride=s, padding=p, output_padding=op, groups=c["g"], dilation=d)
    _compare(lambda *a: F.conv_transpose2d(*a, **kw), lambda *a: TF.conv_transpose2d(*a, **kw), arrays, seed)


@st.composite
def pool_cfg(draw, dilation=True):
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2))) if dilation else (1, 1)
    lo = [max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]) for a in range(2)]
    hw = tuple(draw(st.integers(lo[a], max(lo[a], 10))) for a in range(2))
    return dict(k=k, s=s, p=p, d=d, hw=hw, ceil_mode=draw(st.booleans()), n=draw(st.integers(1, 2)), c=draw(st.integers(1, 3)))


@given(pool_cfg(), st.integers(0, 2**16))
def test_max_pool2d_matches_torch(c, seed):
    rng = np.random.default_rng(seed)
    size = c["n"] * c["c"] * c["hw"][0] * c["hw"][1]
    x = (rng.permutation(size) + rng.uniform(0, 0.5, size)).reshape((c["n"], c["c"]) + c["hw"])  # no ties
    kw = dict(kernel_size=c["k"], stride=c["s"], padding=c["p"], dilation=c["d"], ceil_mode=c["ceil_mode"])
    ty = TF.max_pool2d(torch.tensor(x), **kw)
    if not torch.isfinite(ty).all():
        return  # a dilated window wholly in the padding: -inf (tested in test_pool)
    _compare(lambda a: F.max_pool2d(a, **kw), lambda a: TF.max_pool2d(a, **kw), [x], seed)
    _, idx = F.max_pool2d(tg.Tensor(x), return_indices=True, **kw)
    _, tidx = TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)
    np.testing.assert_array_equal(idx.data, tidx.numpy())


def test_max_pool2d_tie_rule_matches_torch():
    x = np.random.default_rng(0).integers(0, 3, (2, 3, 9, 9)).astype(np.float64)  # many ties
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=2), dict(kernel_size=3, stride=1, padding=1)):
        _compare(lambda a: F.max_pool2d(a, **kw), lambda a: TF.max_pool2d(a, **kw), [x], 0)  # noqa: B023
        np.testing.assert_array_equal(F.max_pool2d(tg.Tensor(x), return_indices=True, **kw)[1].data,
                                      TF.max_pool2d(torch.tensor(x), return_indices=True, **kw)[1].numpy())


@given(pool_cfg(), st.integers(0, 2**16))
def test_max_pool2d_nan_indices_and_gradients_match_torch(c, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, (c["n"], c["c"]) + c["hw"]).astype(np.float64)  # ties, too
    x[rng.random(x.shape) < 0.2] = np.nan
    kw = dict(kernel_size=c["k"], stride=c["s"], padding=c["p"], dilation=c["d"], ceil_mode=c["ceil_mode"])
    t = torch.tensor(x, requires_grad=True)
    ty, tidx = TF.max_pool2d(t, return_indices=True, **kw)
    if torch.isneginf(ty).any():
        return  # a dilated window wholly in the padding (tested in test_pool)
    xs = tg.Tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xs, return_indices=True, **kw)
    np.testing.assert_array_equal(y.data, ty.detach().numpy())  # NaN == NaN here
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    g = rng.standard_normal(y.shape)
    y.backward(tg.Tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(xs.grad.data, t.grad.numpy(), rtol=1e-12)


@given(pool_cfg(dilation=False), st.booleans(), st.integers(0, 2**16))
def test_avg_pool2d_matches_torch(c, cip, seed):
    x = np.random.default_rng(seed).standard_normal((c["n"], c["c"]) + c["hw"])
    kw = dict(kernel_size=c["k"], stride=c["s"], padding=c["p"], ceil_mode=c["ceil_mode"], count_include_pad=cip)
    _compare(lambda a: F.avg_pool2d(a, **kw), lambda a: TF.avg_pool2d(a, **kw), [x], seed)


@given(st.integers(1, 13), st.integers(1, 13), st.integers(1, 7), st.integers(1, 7), st.integers(0, 2**16))
def test_adaptive_avg_pool2d_matches_torch(h, w, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((2, 3, h, w))
    _compare(lambda a: F.adaptive_avg_pool2d(a, (oh, ow)), lambda a: TF.adaptive_avg_pool2d(a, (oh, ow)), [x], seed)


@pytest.mark.slow
def test_alexnet_loss_and_every_gradient_match_torch():
    # The whole network (both conv algorithms: conv1-2 by im2col, conv3-5 by rows; LRN, pools,
    # linear layers) against the same network in PyTorch with the same weights; dropout off.
    from tinygrad_cnn.models import AlexNet

    net = AlexNet(num_classes=10, in_channels=1, dropout=0.0, dtype=np.float64, seed=0)
    nn = torch.nn
    lrn = dict(size=5, alpha=1e-4, beta=0.75, k=2.0)
    theirs = nn.Sequential(
        nn.Conv2d(1, 96, 11, stride=4), nn.ReLU(), nn.LocalResponseNorm(**lrn), nn.MaxPool2d(3, 2),
        nn.Conv2d(96, 256, 5, padding=2), nn.ReLU(), nn.LocalResponseNorm(**lrn), nn.MaxPool2d(3, 2),
        nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(), nn.Conv2d(384, 384, 3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
        nn.Linear(9216, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10),
    ).double()
    ours = list(net.named_parameters())
    assert [tuple(p.shape) for _, p in ours] == [tuple(p.shape) for p in theirs.parameters()]
    with torch.no_grad():
        for (_, p), t in zip(ours, theirs.parameters()):
            t.copy_(torch.tensor(p.data))
    x, y = np.random.default_rng(0).random((2, 1, 227, 227)), np.array([3, 7])
    loss = F.cross_entropy(net(tg.Tensor(x)), y)
    loss.backward()
    tloss = TF.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
    tloss.backward()
    np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-12)
    for (name, p), t in zip(ours, theirs.parameters()):
        scale = np.abs(t.grad.numpy()).max()
        np.testing.assert_allclose(p.grad.data, t.grad.numpy(), rtol=0, atol=1e-12 * scale, err_msg=name)
