"""conv2d / conv_transpose2d: brute-force float64 references, gradcheck and gradgradcheck over
hypothesis-drawn configurations, the backward ops' structure, and the bad-input errors."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import grad
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.ops.conv import Conv2d, ConvTranspose2d, ConvWeightGrad
from tinygrad_cnn.testing import conv2d_configs


# ---- brute-force references (loops over output pixels; independent of im2col) -------------------
def ref_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    n, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, padding, dilation
    xp = np.zeros((n, c, h + 2 * ph, wd + 2 * pw))
    xp[:, :, ph : ph + h, pw : pw + wd] = x
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((n, co, oh, ow))
    per = co // groups
    for o in range(co):
        gi = o // per
        for i in range(oh):
            for j in range(ow):
                patch = xp[:, gi * cg : (gi + 1) * cg, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw]
                y[:, o, i, j] = (patch * w[o]).sum(axis=(1, 2, 3))
    if b is not None:
        y += b.reshape(1, -1, 1, 1)
    return y


def ref_conv_transpose2d(x, w, b=None, stride=(1, 1), padding=(0, 0), output_padding=(0, 0), groups=1, dilation=(1, 1)):
    n, c, h, wd = x.shape
    _, og, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw), (oph, opw) = stride, padding, dilation, output_padding
    full_h = (h - 1) * sh + dh * (kh - 1) + 1 + oph
    full_w = (wd - 1) * sw + dw * (kw - 1) + 1 + opw
    y = np.zeros((n, og * groups, full_h, full_w))
    cg = c // groups
    for ci in range(c):
        gi = ci // cg
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for e in range(kw):
                        y[:, gi * og : (gi + 1) * og, i * sh + a * dh, j * sw + e * dw] += x[:, ci, i, j, None] * w[ci, :, a, e]
    y = y[:, :, ph : full_h - ph, pw : full_w - pw]
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return y


# ---- drawn configurations --------------------------------------------------------------------
def conv_configs(max_hw=6):
    """The shared strategy (tinygrad_cnn.testing.conv2d_configs) in the dict form these tests use."""
    return conv2d_configs(max_channels=4, max_size=max_hw, max_stride=3).map(
        lambda c: dict(
            n=c.input_shape[0], c=c.input_shape[1], co=c.out_channels, groups=c.groups, k=c.kernel_size, stride=c.stride,
            padding=c.padding, dilation=c.dilation, hw=c.input_shape[2:], bias=c.bias,
        )
    )


def _conv_inputs(cfg, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["n"], cfg["c"]) + cfg["hw"]).astype(dtype)
    w = rng.standard_normal((cfg["co"], cfg["c"] // cfg["groups"]) + cfg["k"]).astype(dtype)
    b = rng.standard_normal(cfg["co"]).astype(dtype) if cfg["bias"] else None
    return x, w, b


def _kw(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])


@given(conv_configs(max_hw=8), st.integers(0, 2**16))
def test_conv2d_forward_matches_brute_force(cfg, seed):
    x, w, b = _conv_inputs(cfg, seed)
    y = F.conv2d(tg.Tensor(x), tg.Tensor(w), None if b is None else tg.Tensor(b), **_kw(cfg))
    np.testing.assert_allclose(y.data, ref_conv2d(x, w, b, **_kw(cfg)), rtol=1e-10, atol=1e-10)


@given(conv_configs(max_hw=5), st.integers(0, 2**16), st.data())
def test_conv_transpose2d_forward_matches_brute_force(cfg, seed, data):
    rng = np.random.default_rng(seed)
    g = cfg["groups"]
    x = rng.standard_normal((cfg["n"], cfg["c"]) + cfg["hw"])
    w = rng.standard_normal((cfg["c"], cfg["co"] // g) + cfg["k"])
    b = rng.standard_normal(cfg["co"]) if cfg["bias"] else None
    s, d = cfg["stride"], cfg["dilation"]
    op = tuple(data.draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    full = [(cfg["hw"][a] - 1) * s[a] + d[a] * (cfg["k"][a] - 1) + 1 + op[a] for a in range(2)]
    p = tuple(min(cfg["padding"][a], (full[a] - 1) // 2) for a in range(2))  # keep the output non-empty
    kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    y = F.conv_transpose2d(tg.Tensor(x), tg.Tensor(w), None if b is None else tg.Tensor(b), **kw)
    np.testing.assert_allclose(y.data, ref_conv_transpose2d(x, w, b, **kw), rtol=1e-10, atol=1e-10)


def test_conv2d_padding_same_and_valid_match_explicit_padding(rng):
    x = rng.standard_normal((2, 3, 7, 6))
    for k, d in (((3, 3), (1, 1)), ((4, 2), (1, 1)), ((3, 2), (2, 3))):
        w = rng.standard_normal((4, 3) + k)
        y = F.conv2d(tg.Tensor(x), tg.Tensor(w), padding="same", dilation=d)
        assert y.shape == (2, 4, 7, 6)
        total = [d[a] * (k[a] - 1) for a in range(2)]
        # PyTorch's rule: the odd extra row/column goes at the bottom/right
        xp = np.pad(x, ((0, 0), (0, 0), (total[0] // 2, total[0] - total[0] // 2), (total[1] // 2, total[1] - total[1] // 2)))
        np.testing.assert_allclose(y.data, ref_conv2d(xp, w, dilation=d), rtol=1e-10, atol=1e-10)
    w = rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(F.conv2d(tg.Tensor(x), tg.Tensor(w), padding="valid").data, ref_conv2d(x, w), rtol=1e-10, atol=1e-10)


@settings(max_examples=12)
@given(conv_configs(max_hw=4), st.integers(0, 2**16))
def test_conv2d_gradcheck(cfg, seed):
    x, w, b = _conv_inputs(cfg, seed)
    ins = [tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)]
    if b is not None:
        ins.append(tg.Tensor(b, requires_grad=True))
    assert tg.gradcheck(lambda *a: F.conv2d(*a, **_kw(cfg)), tuple(ins))


@settings(max_examples=6)
@given(conv_configs(max_hw=3), st.integers(0, 2**16))
def test_conv2d_gradgradcheck(cfg, seed):
    cfg = dict(cfg, n=1)
    x, w, _ = _conv_inputs(cfg, seed)
    ins = (tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True))
    assert tg.gradgradcheck(lambda a, b: F.conv2d(a, b, **_kw(cfg)), ins)


@settings(max_examples=6)
@given(conv_configs(max_hw=3), st.integers(0, 2**16), st.data())
def test_conv_transpose2d_gradcheck_and_gradgradcheck(cfg, seed, data):
    rng = np.random.default_rng(seed)
    g = cfg["groups"]
    x = tg.Tensor(rng.standard_normal((1, cfg["c"]) + cfg["hw"]), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((cfg["c"], cfg["co"] // g) + cfg["k"]), requires_grad=True)
    b = tg.Tensor(rng.standard_normal(cfg["co"]), requires_grad=True)
    s, d = cfg["stride"], cfg["dilation"]
    op = tuple(data.draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    full = [(cfg["hw"][a] - 1) * s[a] + d[a] * (cfg["k"][a] - 1) + 1 + op[a] for a in range(2)]
    p = tuple(min(cfg["padding"][a], (full[a] - 1) // 2) for a in range(2))
    kw = dict(stride=s, padding=p, output_padding=op, groups=g, dilation=d)
    assert tg.gradcheck(lambda *a: F.conv_transpose2d(*a, **kw), (x, w, b))
    assert tg.gradgradcheck(lambda a, c: F.conv_transpose2d(a, c, **kw), (x, w))


def test_backward_is_built_from_conv_ops_and_double_backward_works(rng):
    x = tg.Tensor(rng.standard_normal((2, 2, 6, 6)), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((3, 2, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, stride=2, padding=1)
    gx, gw = grad((y * y).sum(), (x, w), create_graph=True)
    ops = set()
    stack = [gx.grad_fn, gw.grad_fn]
    while stack:
        n = stack.pop()
        if n is None or not hasattr(n, "op"):
            continue
        ops.add(n.op)
        stack += [e[0] for e in n.next_edges if e is not None]
    assert {Conv2d, ConvTranspose2d, ConvWeightGrad} <= ops
    # d/dw of sum(gx): a third-order path through ConvWeightGrad's and ConvTranspose2d's backward
    (ggw,) = grad(gx.sum() + gw.sum(), (w,))
    assert ggw.shape == w.shape and np.isfinite(ggw.data).all()


def test_float32_stays_float32_and_no_float64_buffers(rng, algorithm):
    x = tg.Tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    b = tg.Tensor(np.zeros(4, np.float32), requires_grad=True)
    y = F.conv2d(x, w, b, padding=1)
    assert y.dtype == np.float32
    assert y.grad_fn.saved_arrays[2].dtype == np.float32  # the columns or the width-unfolded input
    y.sum().backward()
    assert x.grad.dtype == w.grad.dtype == b.grad.dtype == np.float32
    z = F.conv_transpose2d(x, tg.Tensor(w.data.transpose(1, 0, 2, 3).copy()), stride=2)
    assert z.dtype == np.float32


@pytest.mark.parametrize("c_out, stride, kept", [(3, 1, (5 * 2 * 3 * 2 * 3,)), (20, 1, (2 * 9, 2 * 9)), (20, 2, (2 * 9, 2 * 4))])
def test_weight_grad_reuses_the_forward_unfolding_and_frees_it(rng, c_out, stride, kept):
    # 3 output channels: by rows, the width-unfolded input is kept (Hp*C*KW*N*OW numbers, chunk-major);
    # 20 (more than the 18 column rows): im2col, one column buffer (C*KH*KW, N*OH*OW).
    x = tg.Tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    w = tg.Tensor(rng.standard_normal((c_out, 2, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, stride=stride)
    saved = y.grad_fn.saved_arrays
    assert saved[2].shape == kept
    g = rng.standard_normal(y.shape)
    y.backward(tg.Tensor(g))
    np.testing.assert_allclose(w.grad.data, ref_conv_weight_grad(x.data, g, (3, 3), stride), rtol=1e-10)
    with pytest.raises(RuntimeError, match="second time"):
        y.grad_fn.saved_tensors  # noqa: B018  (released after backward)
    x2 = tg.Tensor(x.data)  # no grad for the weight: nothing kept
    assert F.conv2d(x2, tg.Tensor(w.data)).grad_fn is None
    y3 = F.conv2d(tg.Tensor(x.data, requires_grad=True), tg.Tensor(w.data))
    assert y3.grad_fn.saved_arrays[2] is None


def ref_conv_weight_grad(x, g, k, s=1):
    n, c, h, w = x.shape
    out = np.zeros((g.shape[1], c) + k)
    for i in range(k[0]):
        for j in range(k[1]):
            patch = x[:, :, i : i + s * g.shape[2] : s, j : j + s * g.shape[3] : s]
            out[:, :, i, j] = np.einsum("nchw,nohw->oc", patch, g)
    return out


# ---- bad input -------------------------------------------------------------------------------
def test_bad_input_errors_name_the_op_shapes_and_fix():
    x = tg.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"conv2d: input has 3 channels but weight expects 1 \(weight shape \(30, 1, 5, 5\)\)"):
        F.conv2d(x, tg.zeros(30, 1, 5, 5))
    with pytest.raises(ValueError, match=r"conv2d: kernel \(9, 9\).*larger than the padded input \(8, 8\)"):
        F.conv2d(x, tg.zeros(4, 3, 9, 9))
    with pytest.raises(ValueError, match=r"conv2d: kernel \(5, 5\) \(dilated extent \(9, 9\)\)"):
        F.conv2d(x, tg.zeros(4, 3, 5, 5), dilation=2)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        F.conv2d(tg.zeros(1, 4, 5, 5), tg.zeros(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match="groups must be a positive int"):
        F.conv2d(x, tg.zeros(3, 3, 3, 3), groups=0)
    with pytest.raises(ValueError, match=r"conv2d: input must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got shape \(8, 8\)"):
        F.conv2d(tg.zeros(8, 8), tg.zeros(4, 3, 3, 3))
    with pytest.raises(ValueError, match="weight must be 4-D"):
        F.conv2d(x, tg.zeros(4, 3, 3))
    with pytest.raises(ValueError, match=r"conv2d: stride must be positive, got \(0, 0\)"):
        F.conv2d(x, tg.zeros(4, 3, 3, 3), stride=0)
    with pytest.raises(ValueError, match=r"conv2d: dilation must be positive, got \(1, -1\)"):
        F.conv2d(x, tg.zeros(4, 3, 3, 3), dilation=(1, -1))
    with pytest.raises(ValueError, match="padding must be non-negative"):
        F.conv2d(x, tg.zeros(4, 3, 3, 3), padding=-1)
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        F.conv2d(x, tg.zeros(4, 3, 3, 3), padding="same", stride=2)
    with pytest.raises(ValueError, match="padding must be an int, a pair, 'valid' or 'same'"):
        F.conv2d(x, tg.zeros(4, 3, 3, 3), padding="full")
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\)"):
        F.conv2d(x, tg.zeros(4, 3, 3, 3), tg.zeros(3))
    with pytest.raises(TypeError, match="stride must be an int or a pair"):
        F.conv2d(x, tg.zeros(4, 3, 3, 3), stride=(1, 2, 3))
    with pytest.raises(TypeError, match="weight has dtype float64 but input has float32"):
        F.conv2d(x, tg.Tensor(np.zeros((4, 3, 3, 3))))
    with pytest.raises(ValueError, match="conv_transpose2d: input has 3 channels but weight expects 4"):
        F.conv_transpose2d(x, tg.zeros(4, 2, 3, 3))
    with pytest.raises(ValueError, match="output_padding .* must be smaller than either stride"):
        F.conv_transpose2d(x, tg.zeros(3, 2, 3, 3), stride=2, output_padding=2)
    with pytest.raises(ValueError, match="conv_transpose2d: output size .* is not positive"):
        F.conv_transpose2d(tg.zeros(1, 3, 1, 1), tg.zeros(3, 2, 1, 1), padding=1)
    with pytest.raises(ValueError, match="conv_transpose2d: groups=2 must divide the input channels"):
        F.conv_transpose2d(x, tg.zeros(3, 2, 3, 3), groups=2)


@pytest.fixture(params=["rows", "im2col", "im2col-one-copy"])
def algorithm(request):
    """Force one of the conv algorithms wherever it applies (rows: where the rows kernels can;
    im2col: everywhere, its columns built in two passes from the width-unfolded input where
    kernels.im2col.two_pass says so, or, "one-copy", never), through the documented setting."""
    from tinygrad_cnn.kernels import conv_algorithm

    name, unfold = {"rows": ("rows", "auto"), "im2col": ("im2col", "auto"), "im2col-one-copy": ("im2col", "one-copy")}[request.param]
    with conv_algorithm(name, unfold=unfold):
        yield request.param


# The fixture's setting is the same for every drawn input, so sharing it across them is intended.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(conv_configs(max_hw=5), st.integers(0, 2**16), st.data())
def test_each_algorithm_matches_brute_force_and_gradgradchecks(algorithm, cfg, seed, data):
    x, w, b = _conv_inputs(cfg, seed)
    y = F.conv2d(tg.Tensor(x), tg.Tensor(w), None if b is None else tg.Tensor(b), **_kw(cfg))
    np.testing.assert_allclose(y.data, ref_conv2d(x, w, b, **_kw(cfg)), rtol=1e-10, atol=1e-10)
    # the transposed conv on its own (the input gradient's op), with output padding
    s, d = cfg["stride"], cfg["dilation"]
    op = tuple(data.draw(st.integers(0, max(s[a], d[a]) - 1)) for a in range(2))
    kw = dict(stride=s, padding=(0, 0), output_padding=op, groups=cfg["groups"], dilation=d)
    wt = np.random.default_rng(seed).standard_normal((cfg["c"], cfg["co"] // cfg["groups"]) + cfg["k"])
    z = F.conv_transpose2d(tg.Tensor(x), tg.Tensor(wt), **kw)
    np.testing.assert_allclose(z.data, ref_conv_transpose2d(x, wt, **kw), rtol=1e-10, atol=1e-10)
    xs = tg.Tensor(x[:2], requires_grad=True)
    ws = tg.Tensor(w, requires_grad=True)
    bs = None if b is None else tg.Tensor(b, requires_grad=True)
    assert tg.gradgradcheck(lambda *a: F.conv2d(*a, **_kw(cfg)), (xs, ws) if bs is None else (xs, ws, bs))


@pytest.mark.parametrize("xs, ws", [((0, 6, 14, 14), (16, 6, 5, 5)), ((0, 1, 28, 28), (30, 1, 5, 5)), ((0, 4, 9, 9), (6, 2, 3, 3))])
def test_an_empty_batch_gives_empty_outputs_and_zero_weight_gradients(xs, ws):
    # As in PyTorch: N = 0 is valid input.
    groups = xs[1] // ws[1]
    x = tg.Tensor(np.zeros(xs), requires_grad=True)
    w = tg.Tensor(np.ones(ws), requires_grad=True)
    b = tg.Tensor(np.ones(ws[0]), requires_grad=True)
    y = F.conv2d(x, w, b, groups=groups)
    assert y.shape == (0, ws[0], xs[2] - ws[2] + 1, xs[3] - ws[3] + 1)
    (y * 2).sum().backward()
    assert x.grad.shape == xs and w.grad.shape == ws and b.grad.shape == (ws[0],)
    assert not w.grad.data.any() and not b.grad.data.any()
    t = F.conv_transpose2d(tg.Tensor(np.zeros((0, ws[0], 4, 4)), requires_grad=True), w, groups=groups)
    assert t.shape == (0, xs[1], 4 + ws[2] - 1, 4 + ws[3] - 1)
    t.sum().backward()
    assert tg.gradgradcheck(lambda a, c: F.conv2d(a, c, groups=groups), (x, w))


ONE_IMAGE = {
    "conv2d": lambda x: F.conv2d(x, tg.Tensor(np.linspace(-1, 1, 4 * 3 * 9).reshape(4, 3, 3, 3)), padding=1, stride=2),
    "conv_transpose2d": lambda x: F.conv_transpose2d(x, tg.Tensor(np.linspace(-1, 1, 3 * 2 * 4).reshape(3, 2, 2, 2)), stride=2),
    "max_pool2d": lambda x: F.max_pool2d(x, 3, 2, 1),
    "max_pool2d_indices": lambda x: F.max_pool2d(x, 2, return_indices=True),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 2),
    "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, (3, 2)),
}


@pytest.mark.parametrize("name", list(ONE_IMAGE))
def test_one_image_is_a_batch_of_one_without_its_batch_axis(name):
    # As in PyTorch: a (C, H, W) input gives the batch-of-one result with the batch axis dropped,
    # gradients included, and inside vmap a function of one image runs unchanged.
    from tinygrad_cnn.func import vmap

    f = ONE_IMAGE[name]
    data = np.random.default_rng(0).standard_normal((3, 7, 6))
    x, xb = tg.Tensor(data, requires_grad=True), tg.Tensor(data[None], requires_grad=True)
    outs, batched = f(x), f(xb)
    outs, batched = (outs, batched) if isinstance(outs, tuple) else ((outs,), (batched,))
    for o, b in zip(outs, batched):
        assert o.shape == b.shape[1:]
        np.testing.assert_array_equal(o.numpy(), b.numpy()[0])
    outs[0].sum().backward()
    batched[0].sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), xb.grad.numpy()[0])
    many = np.random.default_rng(1).standard_normal((2, 3, 7, 6))
    mapped = vmap(lambda im: f(im)[0] if isinstance(f(im), tuple) else f(im))(tg.Tensor(many))
    direct = f(tg.Tensor(many))
    np.testing.assert_allclose(mapped.numpy(), (direct[0] if isinstance(direct, tuple) else direct).numpy(), rtol=1e-12)
