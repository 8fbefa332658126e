"""im2col / col2im: shapes of the textbook example, a brute-force reference, adjointness,
dtype, gradients, and errors."""
import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.kernels import conv_algorithm
from tinygrad_cnn.kernels.conv_rows import _row_blocks, by_rows, unfold_width
from tinygrad_cnn.kernels.geometry import Window
from tinygrad_cnn.kernels.im2col import col2im_array, im2col_array, strided_view


def ref_im2col(x, k, s, p, d):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])))
    oh = (h + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
    ow = (w + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    rows = []
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                rows.append(
                    [xp[b, ch, i * s[0] + a * d[0], j * s[1] + e * d[1]] for ch in range(c) for a in range(k[0]) for e in range(k[1])]
                )
    return np.array(rows).reshape(n * oh * ow, c * k[0] * k[1])


@st.composite
def windows(draw):
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    lo = [max(1, d[a] * (k[a] - 1) + 1 - 2 * p[a]) for a in range(2)]
    hw = tuple(draw(st.integers(lo[a], max(lo[a], 6))) for a in range(2))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3))) + hw, k, s, p, d


def test_textbook_shapes():
    assert tg.im2col(tg.randn(1, 3, 7, 7), 5).shape == (9, 75)
    assert tg.im2col(tg.randn(10, 3, 7, 7), 5, stride=1, padding=0).shape == (90, 75)


@pytest.mark.parametrize("unfold", ["one-copy", "two-pass"])
@given(windows(), st.integers(0, 2**16))
@example(((2, 2, 7, 5), (3, 2), (1, 2), (1, 0), (2, 1)), 0)  # stride 1 and dilation 2 along the height
def test_im2col_matches_brute_force(unfold, geom, seed):
    shape, k, s, p, d = geom
    x = np.random.default_rng(seed).standard_normal(shape)
    with conv_algorithm(unfold=unfold):
        cols = tg.im2col(tg.Tensor(x), k, s, p, d)
    np.testing.assert_array_equal(cols.data, ref_im2col(x, k, s, p, d))


def test_two_passes_fill_a_chunk_of_a_bigger_buffer(rng):
    # The conv ops unfold each chunk of images into its block of one buffer (a strided view).
    x = rng.standard_normal((5, 2, 9, 8)).astype(np.float32)
    win = Window((3, 2), (1, 2), (1, 0), (2, 1), (7, 4))
    with conv_algorithm(unfold="one-copy"):
        whole = im2col_array(x, win).copy()
    buf = np.full((12, 5 * 28), np.nan, np.float32)
    with conv_algorithm(unfold="two-pass"):
        im2col_array(x[2:4], win, out=buf[:, 2 * 28 : 4 * 28])
    np.testing.assert_array_equal(buf[:, 2 * 28 : 4 * 28], whole[:, 2 * 28 : 4 * 28])
    assert np.isnan(buf[:, : 2 * 28]).all() and np.isnan(buf[:, 4 * 28 :]).all()


@given(windows(), st.integers(0, 2**16))
def test_col2im_is_the_adjoint_of_im2col(geom, seed):
    shape, k, s, p, d = geom
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    cols = tg.im2col(tg.Tensor(x), k, s, p, d)
    c = rng.standard_normal(cols.shape)
    back = tg.col2im(tg.Tensor(c), shape, k, s, p, d)
    assert back.shape == shape
    np.testing.assert_allclose((cols.data * c).sum(), (x * back.data).sum(), rtol=1e-10)


def test_col2im_accumulates_overlapping_windows():
    ones = tg.ones(1, 1, 3, 3)
    np.testing.assert_array_equal(tg.col2im(tg.im2col(ones, 2), (1, 1, 3, 3), 2).data[0, 0], [[1, 2, 1], [2, 4, 2], [1, 2, 1]])
    # kernel 3 stride 2 on 5x5: the centre is in all four windows, the edges' middles in two
    cover = tg.col2im(tg.im2col(tg.ones(1, 1, 5, 5), 3, 2), (1, 1, 5, 5), 3, 2).data[0, 0]
    assert cover[2, 2] == 4 and cover[0, 2] == 2 and cover[0, 0] == 1


def test_internal_layout_is_the_transpose_of_the_public_one(rng):
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32)
    win = Window((3, 2), (2, 1), (1, 0), (1, 2), (3, 3))  # OH = (6+2-3)//2+1, OW = (5-2-1)//1+1
    cols = im2col_array(x, win)
    assert cols.shape == (2 * 3 * 2, 3 * 3 * 3) and cols.dtype == np.float32
    public = tg.im2col(tg.Tensor(x), (3, 2), (2, 1), (1, 0), (1, 2)).data
    np.testing.assert_array_equal(cols.T, public)
    back = col2im_array(cols, x.shape, win)
    assert back.dtype == np.float32 and back.shape == x.shape


@given(windows(), st.integers(0, 2**16))
def test_row_blocks_of_the_width_unfolding_are_the_im2col_columns_of_each_output_row(geom, seed):
    # kernels/conv_rows.py: block oh of the width-unfolded input, rows ordered (i, c, j) and columns
    # (n, ow), holds exactly im2col's columns (c, i, j) x (n, oh, ow) of output row oh; so does
    # the block of a slice of its images.
    shape, k, s, p, d = geom
    if d[0] != 1:  # the rows algorithm needs dilation 1 along the height
        d = (1, d[1])
    out = tuple((shape[2 + a] + 2 * p[a] - d[a] * (k[a] - 1) - 1) // s[a] + 1 for a in range(2))
    if min(out) < 1:
        return
    x = np.random.default_rng(seed).standard_normal(shape)
    win = Window(k, s, p, d, out)
    blocks = _row_blocks(unfold_width(x, win), win)
    cols = im2col_array(x, win).reshape(shape[1], k[0], k[1], shape[0], *out)
    a, b = shape[0] // 2, shape[0]
    part = _row_blocks(unfold_width(x, win)[:, :, :, a:b], win)
    for oh in range(out[0]):
        expected = cols[:, :, :, :, oh].transpose(1, 0, 2, 3, 4)  # (i, c, j, n, ow)
        np.testing.assert_array_equal(blocks[oh], expected.reshape(blocks.shape[1:]))
        np.testing.assert_array_equal(part[oh], expected[:, :, :, a:b].reshape(part.shape[1:]))


def test_by_rows_is_chosen_for_lenet_convs_only():
    lenet2 = Window((5, 5), (1, 1), (0, 0), (1, 1), (10, 10))
    assert by_rows(lenet2, 1, 16, 6 * 25)
    assert not by_rows(lenet2, 2, 16, 6 * 25)  # groups
    assert not by_rows(Window((5, 5), (1, 1), (0, 0), (2, 1), (6, 10)), 1, 16, 6 * 25)  # dilated rows
    assert not by_rows(Window((5, 5), (1, 1), (0, 0), (1, 1), (24, 24)), 1, 30, 25)  # SimpleConvNet: output taller than columns
    assert not by_rows(Window((11, 11), (4, 4), (0, 0), (1, 1), (55, 55)), 1, 96, 363)  # AlexNet conv1: stride 4
    assert not by_rows(Window((5, 5), (1, 1), (2, 2), (1, 1), (27, 27)), 1, 256, 2400)  # AlexNet conv2: rows long enough


def test_dtype_is_kept():
    x = tg.randn(2, 3, 6, 6)
    cols = tg.im2col(x, 3, padding=1)
    assert cols.dtype == np.float32
    assert tg.col2im(cols, x.shape, 3, padding=1).dtype == np.float32
    assert tg.im2col(x.double(), 3).dtype == np.float64


@settings(max_examples=10)
@given(windows(), st.integers(0, 2**16))
def test_im2col_and_col2im_gradients(geom, seed):
    shape, k, s, p, d = geom
    shape = (1, 1) + shape[2:]
    rng = np.random.default_rng(seed)
    x = tg.Tensor(rng.standard_normal(shape), requires_grad=True)
    assert tg.gradgradcheck(lambda a: tg.im2col(a, k, s, p, d), (x,))
    c = tg.Tensor(rng.standard_normal(tg.im2col(x, k, s, p, d).shape), requires_grad=True)
    assert tg.gradgradcheck(lambda a: tg.col2im(a, shape, k, s, p, d), (c,))


def test_errors():
    with pytest.raises(ValueError, match=r"im2col: input must be 4-D \(N, C, H, W\), got shape \(3, 7, 7\)"):
        tg.im2col(tg.randn(3, 7, 7), 5)
    with pytest.raises(ValueError, match=r"im2col: the kernel \(9, 9\).*larger than the padded input \(7, 7\)"):
        tg.im2col(tg.randn(1, 3, 7, 7), 9)
    with pytest.raises(ValueError, match=r"im2col: stride must be positive"):
        tg.im2col(tg.randn(1, 3, 7, 7), 3, stride=0)
    with pytest.raises(ValueError, match=r"col2im: .* must have shape \(N\*OH\*OW, C\*KH\*KW\) = \(9, 75\), got \(9, 74\)"):
        tg.col2im(tg.zeros(9, 74), (1, 3, 7, 7), 5)
    with pytest.raises(ValueError, match=r"col2im: input_shape must be \(N, C, H, W\)"):
        tg.col2im(tg.zeros(9, 75), (3, 7, 7), 5)


def test_view_as_writes_through_or_refuses_a_copy():
    from tinygrad_cnn.kernels.im2col import view_as

    a = np.zeros((4, 6), np.float32)
    v = view_as(a[1:3], (2, 2, 3))
    v[...] = 1.0
    assert a[1:3].all() and not a[0].any() and not a[3].any()
    with pytest.raises(ValueError, match=r"no view of shape \(24,\)"):
        view_as(a.T, (24,))  # a transpose flattens only by copying
    assert view_as(np.zeros((0, 3)), (3, 0)).shape == (3, 0)


@settings(max_examples=40, deadline=None)
@given(windows(), st.integers(1, 3), st.integers(0, 2**16))
def test_rows_input_gradient_keeps_infinities_and_nan_where_col2im_puts_them(geometry, c_out, seed):
    # The rows kernel folds along the width with a 0/1 matrix product, where 0 * inf is NaN: a
    # non-finite entry must still reach only the input elements whose windows read it.
    from tinygrad_cnn.kernels.conv import conv_transpose2d
    from tinygrad_cnn.kernels.conv_rows import rows_apply

    shape, k, s, p, d = geometry
    d = (1, d[1])  # the rows kernel needs dilation 1 along the height
    oh = (shape[2] + 2 * p[0] - (k[0] - 1) - 1) // s[0] + 1
    ow = (shape[3] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
    if oh < 1 or ow < 1:
        return
    win = Window(k, s, p, d, (oh, ow))
    assert rows_apply(win, 1)
    rng = np.random.default_rng(seed)
    g = rng.standard_normal((shape[0], c_out, oh, ow))
    w = rng.standard_normal((c_out, shape[1], *k))
    special = rng.random(g.shape) < 0.2
    g[special] = rng.choice([np.inf, -np.inf, np.nan], special.sum())
    with np.errstate(all="ignore"):
        with conv_algorithm("rows"):
            rows = conv_transpose2d(g, w, None, win, 1, shape)
        with conv_algorithm("im2col"):
            cols = conv_transpose2d(g, w, None, win, 1, shape)
    np.testing.assert_array_equal(np.isnan(rows), np.isnan(cols))
    np.testing.assert_allclose(rows, cols, rtol=1e-12, atol=1e-12)  # equal infinities count as equal


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    rows=st.integers(1, 6),
    cols=st.integers(1, 6),
    step=st.integers(0, 3),
    transposed=st.booleans(),
)
def test_strided_view_is_as_strided(n, rows, cols, step, transposed):
    """The kernels' strided views show what numpy's as_strided shows, read-only, for a contiguous
    array (built over its buffer) and for a non-contiguous one (as_strided itself)."""
    from numpy.lib.stride_tricks import as_strided

    base = np.arange(2.0 * n * 3).reshape(2 * n, 3)
    a = base.T if transposed else base  # the transpose is not C-contiguous
    item = a.itemsize
    # rows of `cols` consecutive elements (in memory), each starting `step` elements after the last
    cols = min(cols, a.size)
    rows = min(rows, (a.size - cols) // step + 1) if step else rows
    shape, strides = (rows, cols), (step * item, item)
    if transposed:  # walk the transposed view's own first axis instead, which stays inside it
        shape, strides = (min(rows, a.shape[0]), min(cols, a.shape[1])), a.strides
    v = strided_view(a, shape, strides)
    np.testing.assert_array_equal(v, as_strided(a, shape, strides))
    assert not v.flags.writeable and np.shares_memory(v, a)
