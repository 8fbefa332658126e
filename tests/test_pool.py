"""max_pool2d / avg_pool2d / adaptive_avg_pool2d: brute-force float64 references, gradcheck and
gradgradcheck on tie-free inputs over drawn configurations, the tie rule, and bad input."""
import math

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import pool2d_configs


def out_size(size, k, s, p, d, ceil_mode):
    # Written from PyTorch's documented formula, independently of the implementation.
    o = math.floor((size + 2 * p - d * (k - 1) - 1) / s + (0.999999 if ceil_mode else 0)) + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


def ref_max_pool2d(x, k, s, p, d, ceil_mode):
    n, c, h, w = x.shape
    oh, ow = out_size(h, k[0], s[0], p[0], d[0], ceil_mode), out_size(w, k[1], s[1], p[1], d[1], ceil_mode)
    y = np.full((n, c, oh, ow), -np.inf)
    idx = np.zeros((n, c, oh, ow), dtype=np.int64)
    for i in range(oh):
        for j in range(ow):
            for a in range(k[0]):
                for b in range(k[1]):
                    r, q = i * s[0] - p[0] + a * d[0], j * s[1] - p[1] + b * d[1]
                    if 0 <= r < h and 0 <= q < w:
                        v = x[:, :, r, q]
                        better = v > y[:, :, i, j]  # strict: the first maximum wins
                        y[:, :, i, j] = np.where(better, v, y[:, :, i, j])
                        idx[:, :, i, j] = np.where(better, r * w + q, idx[:, :, i, j])
    return y, idx


def ref_avg_pool2d(x, k, s, p, ceil_mode, count_include_pad):
    n, c, h, w = x.shape
    oh, ow = out_size(h, k[0], s[0], p[0], 1, ceil_mode), out_size(w, k[1], s[1], p[1], 1, ceil_mode)
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            total, inside, in_padded = 0.0, 0, 0
            for a in range(k[0]):
                for b in range(k[1]):
                    r, q = i * s[0] - p[0] + a, j * s[1] - p[1] + b
                    if -p[0] <= r < h + p[0] and -p[1] <= q < w + p[1]:
                        in_padded += 1
                    if 0 <= r < h and 0 <= q < w:
                        total = total + x[:, :, r, q]
                        inside += 1
            y[:, :, i, j] = total / (in_padded if count_include_pad else inside)
    return y


def ref_adaptive_avg_pool2d(x, oh, ow):
    n, c, h, w = x.shape
    y = np.zeros((n, c, oh, ow))
    for i in range(oh):
        for j in range(ow):
            r0, r1 = (i * h) // oh, -(-((i + 1) * h) // oh)
            c0, c1 = (j * w) // ow, -(-((j + 1) * w) // ow)
            y[:, :, i, j] = x[:, :, r0:r1, c0:c1].mean(axis=(2, 3))
    return y


def tie_free(rng, shape):
    """Distinct values (a shuffled, spread-out arange) so every window has one strict maximum and
    finite differences of max pooling are well defined."""
    v = rng.permutation(math.prod(shape)).astype(np.float64) * 0.1 + rng.uniform(0, 0.01, math.prod(shape))
    return v.reshape(shape)


def pool_configs(max_hw=7, dilation=True):
    """The shared strategy (tinygrad_cnn.testing.pool2d_configs) in the dict form these tests use."""
    return pool2d_configs("max" if dilation else "avg", max_channels=2, max_size=max_hw).map(
        lambda c: dict(
            n=c.input_shape[0], c=c.input_shape[1], hw=c.input_shape[2:], k=c.kernel_size, s=c.stride, p=c.padding, d=c.dilation,
            ceil_mode=c.ceil_mode,
        )
    )


@given(pool_configs(max_hw=9), st.integers(0, 2**16))
@example(dict(n=1, c=2, hw=(9, 9), k=(3, 3), s=(2, 2), p=(0, 0), d=(1, 1), ceil_mode=False), 0)  # AlexNet: overlapping windows
def test_max_pool2d_forward_and_indices_match_brute_force(cfg, seed):
    x = tie_free(np.random.default_rng(seed), (cfg["n"], cfg["c"]) + cfg["hw"])
    y, idx = F.max_pool2d(tg.Tensor(x), cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"], return_indices=True)
    ry, ridx = ref_max_pool2d(x, cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"])
    np.testing.assert_allclose(y.data, ry, rtol=1e-10, atol=1e-10)
    assert idx.dtype == np.int64
    real = np.isfinite(ry)  # with dilation a window can lie wholly in the padding: -inf, no index
    np.testing.assert_array_equal(idx.data[real], ridx[real])


@given(pool_configs(max_hw=9, dilation=False), st.integers(0, 2**16), st.booleans())
def test_avg_pool2d_forward_matches_brute_force(cfg, seed, cip):
    x = np.random.default_rng(seed).standard_normal((cfg["n"], cfg["c"]) + cfg["hw"])
    y = F.avg_pool2d(tg.Tensor(x), cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"], cip)
    np.testing.assert_allclose(y.data, ref_avg_pool2d(x, cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"], cip), rtol=1e-10, atol=1e-10)


@given(st.integers(1, 9), st.integers(1, 9), st.integers(1, 5), st.integers(1, 5), st.integers(0, 2**16))
def test_adaptive_avg_pool2d_matches_brute_force(h, w, oh, ow, seed):
    x = np.random.default_rng(seed).standard_normal((2, 2, h, w))
    y = F.adaptive_avg_pool2d(tg.Tensor(x), (oh, ow))
    np.testing.assert_allclose(y.data, ref_adaptive_avg_pool2d(x, oh, ow), rtol=1e-10, atol=1e-10)


@settings(max_examples=15)
@given(pool_configs(max_hw=5), st.integers(0, 2**16))
@example(dict(n=1, c=1, hw=(5, 5), k=(3, 3), s=(2, 2), p=(1, 1), d=(1, 1), ceil_mode=True), 0)
def test_max_pool2d_gradcheck_and_gradgradcheck(cfg, seed):
    x = tg.Tensor(tie_free(np.random.default_rng(seed), (1, cfg["c"]) + cfg["hw"]), requires_grad=True)
    fn = lambda a: F.max_pool2d(a, cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"])  # noqa: E731
    assume(np.isfinite(fn(x).data).all())  # no window wholly in the padding (finite differences of -inf)
    assert tg.gradcheck(fn, (x,), eps=1e-6)
    assert tg.gradgradcheck(fn, (x,))


@settings(max_examples=15)
@given(pool_configs(max_hw=5, dilation=False), st.integers(0, 2**16), st.booleans())
def test_avg_pool2d_gradcheck_and_gradgradcheck(cfg, seed, cip):
    x = tg.Tensor(np.random.default_rng(seed).standard_normal((1, cfg["c"]) + cfg["hw"]), requires_grad=True)
    fn = lambda a: F.avg_pool2d(a, cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"], cip)  # noqa: E731
    assert tg.gradcheck(fn, (x,))
    assert tg.gradgradcheck(fn, (x,))


@settings(max_examples=10)
@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**16))
def test_adaptive_avg_pool2d_gradcheck_and_gradgradcheck(h, w, oh, ow, seed):
    x = tg.Tensor(np.random.default_rng(seed).standard_normal((1, 2, h, w)), requires_grad=True)
    assert tg.gradcheck(lambda a: F.adaptive_avg_pool2d(a, (oh, ow)), (x,))
    assert tg.gradgradcheck(lambda a: F.adaptive_avg_pool2d(a, (oh, ow)), (x,))


def test_overlapping_windows_accumulate_the_gradient():
    # kernel 3, stride 2: the centre element (2, 2) is the maximum of all four windows
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 2, 2] = 10.0
    xt = tg.Tensor(x, requires_grad=True)
    y = F.max_pool2d(xt, 3, 2)
    assert y.shape == (1, 1, 2, 2)
    y.backward(tg.Tensor(np.array([[[[1.0, 2.0], [3.0, 4.0]]]])))
    assert xt.grad.data[0, 0, 2, 2] == 10.0
    assert np.count_nonzero(xt.grad.data) == 1


def test_ties_send_the_gradient_to_the_first_maximum_in_row_major_order():
    x = np.array([[[[1.0, 5.0, 5.0], [5.0, 0.0, 5.0], [2.0, 2.0, 2.0]]]])
    xt = tg.Tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xt, 2, 1, return_indices=True)
    # windows: top-left {1,5,5,0} -> first 5 is (0,1); top-right {5,5,0,5} -> (0,1);
    # bottom-left {5,0,2,2} -> (1,0); bottom-right {0,5,2,2} -> (1,2)
    np.testing.assert_array_equal(idx.data[0, 0], [[1, 1], [3, 5]])
    y.sum().backward()
    np.testing.assert_array_equal(xt.grad.data[0, 0], [[0, 2, 0], [1, 0, 1], [0, 0, 0]])
    # a constant window: everything ties, the top-left element wins
    z = tg.Tensor(np.ones((1, 1, 2, 2)), requires_grad=True)
    F.max_pool2d(z, 2).sum().backward()
    np.testing.assert_array_equal(z.grad.data[0, 0], [[1, 0], [0, 0]])


def test_ceil_mode_drops_a_window_that_would_start_in_the_padding():
    # H=4, k=2, s=2, p=1: ceil gives 3 windows starting at -1, 1, 3; a 4th would start at 5 (padding)
    x = tg.Tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    assert F.max_pool2d(x, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3)
    # H=5, k=2, s=2, p=1: floor gives 3; ceil would give 4 but the 4th window starts at 5 >= H: dropped
    x5 = tg.Tensor(np.arange(25.0).reshape(1, 1, 5, 5))
    assert F.max_pool2d(x5, 2, 2, 1, ceil_mode=True).shape == (1, 1, 3, 3)
    assert F.max_pool2d(x5, 2, 2, 0, ceil_mode=True).shape == (1, 1, 3, 3)
    assert F.max_pool2d(x5, 2, 2, 0, ceil_mode=False).shape == (1, 1, 2, 2)
    assert F.avg_pool2d(x5, 2, 2, 0, ceil_mode=True).data[0, 0, 2, 2] == 24.0  # a 1x1 overhanging window


def test_window_wholly_in_padding_gives_minus_inf_and_no_gradient():
    x = tg.Tensor(np.ones((1, 1, 1, 1)), requires_grad=True)
    y = F.max_pool2d(x, (1, 2), 1, (0, 1), (1, 2))  # window columns -1 and 1 of a width-1 input
    assert y.shape == (1, 1, 1, 1) and y.data[0, 0, 0, 0] == -np.inf
    y.sum().backward()
    assert x.grad.data[0, 0, 0, 0] == 0.0


def test_float32_stays_float32():
    x = tg.Tensor(np.random.default_rng(0).standard_normal((2, 3, 8, 8)).astype(np.float32), requires_grad=True)
    for y in (F.max_pool2d(x, 3, 2, 1), F.avg_pool2d(x, 2), F.adaptive_avg_pool2d(x, 3)):
        assert y.dtype == np.float32
        x.grad = None
        y.sum().backward()
        assert x.grad.dtype == np.float32


def test_pool_bad_input_errors():
    x = tg.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"max_pool2d: input must be 4-D \(N, C, H, W\) or 3-D \(C, H, W\), got shape \(8, 8\)"):
        F.max_pool2d(tg.zeros(8, 8), 2)
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        F.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match=r"avg_pool2d: padding \(2, 2\) must be at most half"):
        F.avg_pool2d(x, 2, padding=2)
    with pytest.raises(ValueError, match=r"max_pool2d: stride must be positive, got \(0, 0\)"):
        F.max_pool2d(x, 2, stride=0)
    with pytest.raises(ValueError, match="max_pool2d: dilation must be positive"):
        F.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match="max_pool2d: kernel_size must be positive"):
        F.max_pool2d(x, 0)
    with pytest.raises(ValueError, match=r"max_pool2d: output size \(0, 0\) is not positive"):
        F.max_pool2d(x, 9)
    with pytest.raises(ValueError, match=r"avg_pool2d: output size \(0, 0\) is not positive.*does not fit the input \(2, 2\)"):
        F.avg_pool2d(tg.zeros(1, 1, 2, 2), 5, padding=1, stride=1)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair"):
        F.max_pool2d(x, (2, 2, 2))
    with pytest.raises(TypeError, match="max_pool2d: input must be floating point"):
        F.max_pool2d(tg.Tensor(np.zeros((1, 1, 4, 4), dtype=np.int64)), 2)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: output_size must be positive"):
        F.adaptive_avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="adaptive_avg_pool2d: input must be 4-D"):
        F.adaptive_avg_pool2d(tg.zeros(8, 8), 2)


def test_max_pool2d_nan_wins_its_window_and_gets_the_gradient():
    # As PyTorch: NaN propagates to the output, and the index (and so the gradient) points at
    # the NaN, the last one when a window holds several.
    x = np.arange(16, dtype=np.float64).reshape(1, 1, 4, 4)
    x[0, 0, 0, 0] = np.nan
    x[0, 0, 2, 2] = x[0, 0, 3, 2] = np.nan
    t = tg.Tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(t, 2, return_indices=True)
    assert np.isnan(y.data[0, 0, 0, 0]) and np.isnan(y.data[0, 0, 1, 1]) and y.data[0, 0, 0, 1] == 7.0
    np.testing.assert_array_equal(idx.data[0, 0], [[0, 7], [13, 14]])
    y.backward(tg.ones_like(y))
    expected = np.zeros((4, 4))
    expected.flat[[0, 7, 13, 14]] = 1.0
    np.testing.assert_array_equal(t.grad.data[0, 0], expected)


@settings(max_examples=300, deadline=None)
@given(
    h=st.integers(1, 9), w=st.integers(1, 9), k=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    s=st.tuples(st.integers(1, 4), st.integers(1, 4)), d=st.tuples(st.integers(1, 2), st.integers(1, 2)), ceil=st.booleans(),
)
def test_window_first_writes_against_a_count_of_the_windows_over_each_element(h, w, k, s, d, ceil):
    # The pools' backward assigns the positions Window.first_writes names (no add, no cleared
    # buffer) and clears only outside their extent: check both claims by counting, position by
    # position, the windows over each padded element.
    from tinygrad_cnn.kernels.geometry import Window, pool_output_size

    out = tuple(pool_output_size(n, kk, ss, 0, dd, ceil) for n, kk, ss, dd in zip((h, w), k, s, d))
    assume(min(out) >= 1)
    win = Window(k, s, (0, 0), d, out)
    fresh, extent = win.first_writes()
    count = np.zeros(win.padded_hw(h, w), dtype=int)
    written = np.zeros_like(count, dtype=bool)
    for pos, (r, c) in win.positions():
        assert (pos in fresh) == (count[r, c] == 0).all(), pos  # fresh exactly when nothing was written there before
        count[r, c] += 1
        if pos in fresh:
            written[r, c] = True
    if extent is not None:
        expected = np.zeros_like(written)
        expected[: extent[0], : extent[1]] = True
        np.testing.assert_array_equal(written, expected)
    if s == k and d == (1, 1) and h % k[0] == 0 and w % k[1] == 0 and not ceil:  # 2x2/2 on an even input
        assert fresh == set(range(k[0] * k[1])) and extent == (h, w)
