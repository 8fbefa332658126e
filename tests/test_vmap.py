"""vmap: every batching rule against a loop over the batch (check_vmap), on hypothesis-drawn
shapes and in_dims; nested vmap; randomness (nested levels, chunks); out_dims; vmap of grad
(per-example gradients) and grad of vmap; errors."""
import warnings
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.autograd.function import Function
from tinygrad_cnn.func import functional_call, get_params, grad, jacobian, vjp, vmap
from tinygrad_cnn.models import LeNet, SimpleConvNet
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.ops.conv import ConvTranspose2d, ConvWeightGrad
from tinygrad_cnn.ops.elementwise import SigmoidBackward, TanhBackward
from tinygrad_cnn.testing import check_vmap

FAST = settings(max_examples=12, deadline=None)


def arr(*shape, seed=0):
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape))


def batched(shape, dim, n, seed=0):
    """A float64 tensor of per-example ``shape`` with a batch of ``n`` inserted at ``dim``."""
    full = list(shape)
    full.insert(dim, n)
    return arr(*full, seed=seed)


shape_st = st.lists(st.integers(1, 3), min_size=0, max_size=3).map(tuple)


@contextmanager
def rules_called(*ops):
    """Check that the batching rule of every op in ``ops`` runs inside the block (not only that
    the results are right: a composite could reach other ops)."""
    called = set()
    saved = {op: op.__dict__.get("vmap") for op in ops}  # None: the rule is inherited

    def spy(op, rule):
        def vmap_rule(info, *args, **params):
            called.add(op)
            return rule(info, *args, **params)

        return staticmethod(vmap_rule)

    for op in ops:
        op.vmap = spy(op, op.vmap)
    try:
        yield
    finally:
        for op, rule in saved.items():
            if rule is None:
                del op.vmap
            else:
                op.vmap = rule
    assert called == set(ops), f"batching rules never run: {sorted(op.__name__ for op in set(ops) - called)}"


@FAST
@given(shape=shape_st, n=st.integers(1, 3), data=st.data())
def test_unary_elementwise(shape, n, data):
    dim = data.draw(st.integers(0, len(shape)))
    x = batched(shape, dim, n)
    for fn in (lambda v: v.exp(), lambda v: (v * 2.0 + 1.0).tanh(), lambda v: v.sigmoid().log(), lambda v: F.relu(v),
               lambda v: abs(v) ** 1.5, lambda v: v.clamp(-0.5, 0.5), lambda v: -v / 3.0):
        check_vmap(fn, x, in_dims=dim)


@FAST
@given(shape=shape_st, n=st.integers(1, 3), data=st.data())
def test_binary_broadcasting(shape, n, data):
    tail = data.draw(st.integers(0, len(shape)))
    other = shape[len(shape) - tail:]  # a suffix: broadcasts against shape
    da = data.draw(st.one_of(st.none(), st.integers(0, len(shape))))
    db = data.draw(st.integers(0, len(other)))
    a = batched(shape, da, n) if da is not None else arr(*shape)
    b = batched(other, db, n, seed=1)
    for fn in (lambda u, v: u + v, lambda u, v: u * v - v, lambda u, v: u / (v * v + 1.0), lambda u, v: tg.maximum(u, v),
               TanhBackward.apply, SigmoidBackward.apply):
        check_vmap(fn, a, b, in_dims=(da, db))
        check_vmap(lambda u, v, fn=fn: fn(v, u), a, b, in_dims=(da, db))


@FAST
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), n=st.integers(1, 3), data=st.data())
def test_reductions(shape, n, data):
    dim = data.draw(st.integers(0, len(shape)))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    keep = data.draw(st.booleans())
    x = batched(shape, dim, n)
    check_vmap(lambda v: v.sum(), x, in_dims=dim)
    check_vmap(lambda v: v.sum(axis, keepdim=keep), x, in_dims=dim)
    check_vmap(lambda v: v.mean(axis, keepdim=keep), x, in_dims=dim)
    check_vmap(lambda v: v.amax(axis, keepdim=keep), x, in_dims=dim)
    check_vmap(lambda v: tg.prod(v, axis), x, in_dims=dim)
    check_vmap(lambda v: tg.cumsum(v, axis), x, in_dims=dim)
    check_vmap(lambda v: F.softmax(v, dim=axis), x, in_dims=dim)
    check_vmap(lambda v: F.log_softmax(v, dim=axis), x, in_dims=dim)
    check_vmap(lambda v: F.logsumexp(v, dim=axis), x, in_dims=dim)


@FAST
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), n=st.integers(1, 3), data=st.data())
def test_math_rules(shape, n, data):
    from tinygrad_cnn.ops.elementwise import Cos, Expm1, Log1p, Minimum, Pow, Sign
    from tinygrad_cnn.ops.reduce import Min

    dim = data.draw(st.integers(0, len(shape)))
    de = data.draw(st.one_of(st.none(), st.integers(0, len(shape))))  # the second operand batched or not
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = batched(shape, dim, n)
    e = batched(shape, de, n, seed=1) if de is not None else arr(*shape, seed=1)
    with rules_called(Cos, Expm1, Log1p, Sign, Min, Minimum, Pow):
        for fn in (lambda v: v.cos(), tg.expm1, lambda v: tg.log1p(abs(v)), tg.sign, lambda v: v.amin(axis)):
            check_vmap(fn, x, in_dims=dim)
        check_vmap(tg.minimum, x, e, in_dims=(dim, de))
        check_vmap(lambda u, v: abs(u) ** v, x, e, in_dims=(dim, de))


@FAST
@given(shape=st.lists(st.integers(1, 3), min_size=2, max_size=3).map(tuple), n=st.integers(1, 3), data=st.data())
def test_movement(shape, n, data):
    dim = data.draw(st.integers(0, len(shape)))
    x = batched(shape, dim, n)
    check_vmap(lambda v: v.reshape((-1,)), x, in_dims=dim)
    check_vmap(lambda v: v.permute(tuple(range(v.ndim))[::-1]), x, in_dims=dim)
    check_vmap(lambda v: v.transpose(0, 1), x, in_dims=dim)
    check_vmap(lambda v: v.unsqueeze(0).expand((2,) + v.shape), x, in_dims=dim)
    check_vmap(lambda v: v[0], x, in_dims=dim)
    check_vmap(lambda v: v[:, ::2], x, in_dims=dim)
    check_vmap(lambda v: v[np.array([0, 0])], x, in_dims=dim)
    check_vmap(lambda v: tg.cat([v, v * 2.0], dim=-1), x, in_dims=dim)
    check_vmap(lambda v, u: tg.stack([v, u]), x, arr(*shape, seed=3), in_dims=(dim, None))
    check_vmap(lambda v: F.pad(v, (1, 2)), x, in_dims=dim)
    check_vmap(lambda v: v.flatten(), x, in_dims=dim)


@FAST
@given(n=st.integers(1, 3), k=st.integers(1, 3), m=st.integers(1, 3), p=st.integers(1, 3), data=st.data())
def test_matmul(n, k, m, p, data):
    cases = (((m, k), (k, p)), ((k,), (k, p)), ((m, k), (k,)), ((k,), (k,)), ((2, m, k), (k, p)), ((m, k), (2, k, p)),
             ((k,), (2, k, p)), ((2, m, k), (k,)), ((2, 1, m, k), (2, k, p)))
    for sa, sb in cases:
        da = data.draw(st.one_of(st.none(), st.integers(0, len(sa))))
        db = data.draw(st.one_of(st.none(), st.integers(0, len(sb)))) if da is not None else data.draw(st.integers(0, len(sb)))
        a = batched(sa, da, n) if da is not None else arr(*sa)
        b = batched(sb, db, n, seed=1) if db is not None else arr(*sb, seed=1)
        check_vmap(lambda u, v: u @ v, a, b, in_dims=(da, db))
        # The backward rule under vmap too: per-example gradients of both operands.
        check_vmap(grad(lambda u, v: (u @ v).tanh().sum(), argnums=(0, 1)), a, b, in_dims=(da, db))


@FAST
@given(n=st.integers(1, 3), stride=st.integers(1, 2), padding=st.integers(0, 1), groups=st.sampled_from([1, 2]),
       bias=st.booleans(), which=st.sampled_from(["x", "w", "both"]), data=st.data())
def test_conv2d_and_transpose(n, stride, padding, groups, bias, which, data):
    # The batch dim of x and of the weight anywhere (or absent), drawn independently.
    dx = data.draw(st.integers(0, 4)) if which != "w" else None
    dw = data.draw(st.integers(0, 4)) if which != "x" else None
    x = batched((2, 2, 5, 5), dx, n) if dx is not None else arr(2, 2, 5, 5)
    w = batched((4, 2 // groups, 3, 3), dw, n, seed=1) if dw is not None else arr(4, 2 // groups, 3, 3, seed=1)
    b = arr(4, seed=2)

    def conv(u, v, *bb):
        return F.conv2d(u, v, *bb, stride=stride, padding=padding, groups=groups)

    if bias:
        check_vmap(conv, x, w, b, in_dims=(dx, dw, None))
    check_vmap(conv, x, w, in_dims=(dx, dw))
    # A Jacobian inside vmap: the backward ops (ConvWeightGrad, the input's transposed conv) on
    # cotangents batched at the Jacobian's own level.
    with rules_called(ConvWeightGrad, ConvTranspose2d):
        check_vmap(jacobian(lambda u, v: conv(u, v).sum((0, 2, 3)), argnums=(0, 1)), x, w, in_dims=(dx, dw))
    wt = batched((2, 4 // groups, 3, 3), dw, n, seed=4) if dw is not None else arr(2, 4 // groups, 3, 3, seed=4)

    def convt(u, v):
        return F.conv_transpose2d(u, v, stride=stride, padding=padding, groups=groups)

    check_vmap(convt, x, wt, in_dims=(dx, dw))


@FAST
@given(n=st.integers(1, 3), k=st.integers(1, 3), s=st.integers(1, 2), dim=st.integers(0, 4))
def test_pools(n, k, s, dim):
    x = batched((2, 3, 6, 6), dim, n)
    check_vmap(lambda v: F.max_pool2d(v, k, s), x, in_dims=dim)
    check_vmap(lambda v: F.avg_pool2d(v, k, s), x, in_dims=dim)
    check_vmap(lambda v: F.adaptive_avg_pool2d(v, (2, 3)), x, in_dims=dim)


@FAST
@given(n=st.integers(1, 3), c=st.integers(1, 2), hw=st.integers(3, 5), k=st.integers(1, 3), s=st.integers(1, 2), data=st.data())
def test_im2col_col2im_and_avg_pool_backward(n, c, hw, k, s, data):
    from tinygrad_cnn.ops.im2col import Col2Im, Im2Col
    from tinygrad_cnn.ops.pool import AvgPoolSpread

    shape = (2, c, hw, hw)
    dim = data.draw(st.integers(0, 4))
    x = batched(shape, dim, n)
    cols_shape = tuple(tg.im2col(tg.zeros(*shape), k, stride=s).shape)
    dc = data.draw(st.integers(0, 2))
    cols = batched(cols_shape, dc, n, seed=1)
    with rules_called(Im2Col, Col2Im, AvgPoolSpread):
        check_vmap(lambda v: tg.im2col(v, k, stride=s), x, in_dims=dim)
        check_vmap(lambda v: tg.col2im(v, shape, k, stride=s), cols, in_dims=dc)
        # A Jacobian inside vmap runs the backward ops (Col2Im, AvgPool2d's AvgPoolSpread) on
        # cotangents batched at its own level (grad inside vmap runs them on the whole batch).
        check_vmap(jacobian(lambda v: tg.im2col(v, k, stride=s).sum(0)), x, in_dims=dim)
        check_vmap(jacobian(lambda v: F.avg_pool2d(v, k, s).sum((0, 1))), x, in_dims=dim)


@FAST
@given(shape=st.lists(st.integers(1, 3), min_size=2, max_size=3).map(tuple), n=st.integers(1, 3), data=st.data())
def test_composite_functions(shape, n, data):
    dim = data.draw(st.integers(0, len(shape)))
    x = batched(shape, dim, n)
    for fn in (lambda v: F.leaky_relu(v, 0.1), F.elu, F.gelu, F.silu, lambda v: tg.where(v > 0, v, v * v),
               lambda v: tg.gather(v, 0, tg.tensor(np.zeros((1,) + v.shape[1:], dtype=np.int64))),
               lambda v: tg.index_select(v, 1, tg.tensor(np.array([0, 0]))), lambda v: v.var(-1, correction=0),
               lambda v: F.layer_norm(v, v.shape[-1:]),
               lambda v: F.mse_loss(v, v * 0.5), lambda v: F.smooth_l1_loss(v, v * 0.1), lambda v: v.argmax(-1), lambda v: v.argmax(),
               lambda v: v.max(0)[0] + v.min(-1, keepdim=True)[1].float().sum(), lambda v: tg.norm(v, dim=-1), lambda v: tg.norm(v * 0.0),
               lambda v: tg.masked_fill(v, v > 0, 0.0)):
        check_vmap(fn, x, in_dims=dim)


@FAST
@given(n=st.integers(1, 3), rows=st.integers(1, 3), c=st.integers(2, 4), reduction=st.sampled_from(["mean", "sum", "none"]),
       smoothing=st.sampled_from([0.0, 0.1]), weighted=st.booleans(), data=st.data())
def test_cross_entropy(n, rows, c, reduction, smoothing, weighted, data):
    dx = data.draw(st.integers(0, 2))
    dt = data.draw(st.one_of(st.none(), st.integers(0, 1)))
    x = batched((rows, c), dx, n)
    labels = np.random.default_rng(1).integers(0, c, (n, rows))
    t = tg.tensor(labels if dt == 0 else labels.T if dt == 1 else labels[0])
    weight = np.arange(1.0, c + 1.0) if weighted else None

    def loss(u, v):
        return F.cross_entropy(u, v, weight=weight, reduction=reduction, label_smoothing=smoothing)

    check_vmap(loss, x, t, in_dims=(dx, dt))
    check_vmap(grad(lambda u, v: loss(u, v).sum()), x, t, in_dims=(dx, dt))


@FAST
@given(n=st.integers(1, 3), shape=st.sampled_from([(2, 3), (1, 3, 2), (2, 3, 2, 2)]), data=st.data())
def test_batch_norm_in_eval_mode(n, shape, data):
    c = shape[1]
    dx = data.draw(st.integers(0, len(shape)))
    dg = data.draw(st.one_of(st.none(), st.integers(0, 1)))  # a per-example scale too
    x = batched(shape, dx, n)
    rm, rv, b = arr(c, seed=1), abs(arr(c, seed=2)) + 0.5, arr(c, seed=4)
    g = batched((c,), dg, n, seed=3) if dg is not None else arr(c, seed=3)
    check_vmap(lambda u, gg: F.batch_norm(u, rm, rv, gg, b, training=False), x, g, in_dims=(dx, dg))


MODES = ["error", "same", "different"]


def identical(a, axis):
    """Whether ``a`` is the same along ``axis``."""
    return bool((a == np.take(a, [0], axis=axis)).all())


@pytest.mark.parametrize("outer", MODES)
@pytest.mark.parametrize("inner", MODES)
@settings(max_examples=3, deadline=None)
@given(n=st.integers(2, 3), m=st.integers(2, 3), seed=st.integers(0, 2**16))
def test_nested_randomness_applies_each_level_to_its_own_batch_dim(inner, outer, n, m, seed):
    # As torch.func: 'same' shares the draw along that level's dim, 'different' draws along it,
    # and an 'error' anywhere refuses.
    f = vmap(vmap(lambda v: F.dropout(v, 0.5, seed=seed), randomness=inner), randomness=outer)
    x = tg.ones(n, m, 40)
    if "error" in (inner, outer):
        with pytest.raises(RuntimeError, match=r"vmap\(<lambda>\): dropout draws random numbers.*randomness='error'"):
            f(x)
        return
    r = f(x).numpy()
    assert set(np.unique(r)) <= {0.0, 2.0}
    assert identical(r, 0) == (outer == "same")
    assert identical(r, 1) == (inner == "same")


@pytest.mark.parametrize("mode", ["same", "different"])
def test_random_values_follow_the_running_vmaps_not_the_input(mode):
    # The input of dropout batched at the outer level only, or at none: the draws still have a
    # batch dim for exactly the 'different' levels.
    xs, ys = tg.ones(2, 40), tg.zeros(3, 40)
    r = vmap(lambda x: vmap(lambda y: F.dropout(x, 0.5) + y, randomness=mode)(ys), randomness="same")(xs).numpy()
    assert identical(r, 0) and identical(r, 1) == (mode == "same")
    r = vmap(lambda y: F.dropout(tg.ones(40), 0.5) + y, randomness=mode)(ys).numpy()
    assert identical(r, 0) == (mode == "same")
    with pytest.raises(RuntimeError, match="randomness='error'"):
        vmap(lambda y: F.dropout(tg.ones(40), 0.5) + y)(ys)


@settings(max_examples=6, deadline=None)
@given(n=st.integers(2, 6), chunk=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_chunks_draw_as_one_call(n, chunk, seed):
    x = tg.ones(n, 40)
    tg.manual_seed(seed)
    whole = vmap(lambda v: F.dropout(v, 0.5), randomness="same")(x).numpy()
    tg.manual_seed(seed)
    chunked = vmap(lambda v: F.dropout(v, 0.5), randomness="same", chunk_size=chunk)(x).numpy()
    np.testing.assert_array_equal(chunked, whole)  # one draw for all examples, whatever the chunks
    gen = np.random.default_rng(seed)  # a generator of the caller's, as Dropout(seed=...) keeps
    r = vmap(lambda v: F.dropout(v, 0.5, seed=gen), randomness="same", chunk_size=chunk)(x).numpy()
    assert identical(r, 0)
    r = vmap(vmap(lambda v: F.dropout(v, 0.5), randomness="different"), randomness="same", chunk_size=chunk)(tg.ones(n, 3, 40)).numpy()
    assert identical(r, 0) and not identical(r, 1)
    r = vmap(lambda v: F.dropout(v, 0.5), randomness="different", chunk_size=chunk)(x).numpy()
    assert len({row.tobytes() for row in r}) == n  # independent draws, also between chunks


# Each random factory as a function of one example v (float64), drawing v's shape (randperm: 20
# values), and the dtype its draws have.
FACTORIES = {
    "rand": (lambda v: tg.rand(v.shape), np.float32),
    "randn": (lambda v: tg.randn(v.shape, dtype=np.float64), np.float64),
    "randint": (lambda v: tg.randint(0, 10**6, v.shape), np.int64),
    "randperm": (lambda v: tg.randperm(20), np.int64),
    "rand_like": (lambda v: tg.rand_like(v), np.float64),
    "randn_like": (lambda v: tg.randn_like(v), np.float64),
}


@pytest.mark.parametrize("name", FACTORIES)
@pytest.mark.parametrize("outer", MODES)
@pytest.mark.parametrize("inner", MODES)
@settings(max_examples=2, deadline=None)
@given(n=st.integers(2, 3), m=st.integers(2, 3), shape=shape_st)
def test_random_factories_follow_randomness(name, inner, outer, n, m, shape):
    # As torch.func's rand/randn/...: refused under 'error' at any level, a draw per example
    # along each 'different' level's dim, one draw shared along each 'same' level's dim.
    factory, dtype = FACTORIES[name]
    f = vmap(vmap(factory, randomness=inner), randomness=outer)
    x = tg.zeros((n, m) + shape, dtype=np.float64)
    if "error" in (inner, outer):
        with pytest.raises(RuntimeError, match=rf"vmap\(<lambda>\): {name} draws random numbers.*randomness='error'"):
            f(x)
        return
    r = f(x)
    assert r.shape == (n, m) + ((20,) if name == "randperm" else shape) and r.dtype == dtype
    r = r.numpy()
    assert identical(r, 0) == (outer == "same")
    assert identical(r, 1) == (inner == "same")


# A factory of one example v given a generator of the caller's (which only some use).
CHUNKED = {
    "randn": lambda gen: lambda v: tg.randn(4),
    "rand_like": lambda gen: lambda v: tg.rand_like(v),
    "randint with a generator": lambda gen: lambda v: tg.randint(9, (4,), generator=gen),
}


@pytest.mark.parametrize("name", CHUNKED)
@settings(max_examples=4, deadline=None)
@given(n=st.integers(2, 6), chunk=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_random_factories_draw_once_for_all_chunks_under_same(name, n, chunk, seed):
    x = tg.zeros(n, 3)

    def run(chunk_size):
        tg.manual_seed(seed)
        factory = CHUNKED[name](tg.Generator().manual_seed(seed))
        return vmap(factory, randomness="same", chunk_size=chunk_size)(x).numpy()

    whole = run(None)
    np.testing.assert_array_equal(run(chunk), whole)
    assert identical(whole, 0)


def test_random_factories_under_same_draw_what_they_draw_outside_vmap():
    x = tg.zeros(3, 2)
    np.testing.assert_array_equal(vmap(lambda v: tg.randn(4, seed=7), randomness="same")(x).numpy()[0], tg.randn(4, seed=7).numpy())
    np.testing.assert_array_equal(vmap(lambda v: tg.randperm(6, seed=7), randomness="same")(x).numpy()[1], tg.randperm(6, seed=7).numpy())
    # 'different': each example a row of the draw the batch would get outside vmap
    np.testing.assert_array_equal(vmap(lambda v: tg.rand(4, seed=7), randomness="different")(x).numpy(), tg.rand(3, 4, seed=7).numpy())
    assert vmap(lambda v: tg.rand(2, requires_grad=True), randomness="same", out_dims=None)(x).requires_grad
    with pytest.raises(RuntimeError, match=r"rand: requires_grad=True.*randomness='different'"):
        vmap(lambda v: tg.rand(2, requires_grad=True) + v, randomness="different")(x)


FILLS = {"uniform_": lambda t: t.uniform_(-1.0, 1.0), "normal_": lambda t: t.normal_(2.0, 0.5)}


@pytest.mark.parametrize("name", FILLS)
def test_inplace_random_fills_of_an_unbatched_tensor_follow_randomness(name):
    # As torch.func: refused under 'error'; under 'different' too, since an unbatched tensor
    # holds one value for all examples; under 'same' a fill shared by all (also across chunks).
    fill, x = FILLS[name], tg.zeros(4, 3)
    with pytest.raises(RuntimeError, match=rf"{name} draws random numbers.*randomness='error'"):
        vmap(lambda v: v + fill(tg.zeros(3)))(x)
    with pytest.raises(RuntimeError, match=rf"{name} fills an unbatched tensor.*randomness='different'"):
        vmap(lambda v: v + fill(tg.zeros(3)), randomness="different")(x)
    r = vmap(lambda v: v + fill(tg.zeros(3)), randomness="same", chunk_size=3)(x).numpy()
    assert identical(r, 0) and not (r == 0).any()


def test_jacfwd_takes_randomness_for_its_vmap_over_the_basis():
    from tinygrad_cnn.func import jacfwd, jacrev

    x = tg.tensor(np.arange(1.0, 7.0))

    def f(v):
        y = F.dropout(v, 0.5) * v
        return y, y

    with pytest.raises(RuntimeError, match=r"vmap\(jacfwd\(f\)\): dropout draws random numbers.*randomness='error'.*jacfwd"):
        jacfwd(f, has_aux=True)(x)
    # 'same': one draw for the whole Jacobian, also the one aux comes from: d(m v^2)/dv = 2 m v
    J, y = jacfwd(f, has_aux=True, randomness="same")(x)
    np.testing.assert_allclose(J.numpy(), np.diag(2 * y.numpy() / x.numpy()))
    g = lambda w, b: F.dropout(3.0 * w + b, 0.5)  # noqa: E731
    Jw, Jb = jacfwd(g, argnums=(0, 1), randomness="same")(x, x)
    np.testing.assert_array_equal(Jw.numpy(), 3.0 * Jb.numpy())
    # 'different': column i (tangent i) gets row i of the draw for the basis batch
    J = jacfwd(lambda v: F.dropout(v, 0.5, seed=3), randomness="different")(x).numpy()
    keep = np.random.default_rng(3).random((6, 6)) >= 0.5
    np.testing.assert_array_equal(J, np.diag(2.0 * np.diag(keep)))
    # jacrev runs f once, outside its vmap over the cotangents, so it needs no randomness
    np.testing.assert_array_equal(jacrev(lambda v: F.dropout(v, 0.5, seed=3))(x).numpy(),
                                  jacfwd(lambda v: F.dropout(v, 0.5, seed=3), randomness="same")(x).numpy())
    with pytest.raises(ValueError, match=r"jacfwd: randomness must be one of .*'maybe'"):
        jacfwd(f, randomness="maybe")


def test_hessian_has_torchs_shapes_and_draws_a_random_op_once():
    from tinygrad_cnn.func import hessian

    x = tg.tensor([1.0, -2.0, 0.5])
    # a non-scalar f gives O + I + I, as torch.func.hessian
    np.testing.assert_allclose(hessian(lambda v: v**3)(x).numpy(), np.einsum("i,ij,ik->ijk", 6 * x.numpy(), np.eye(3), np.eye(3)))
    # f runs once: one dropout mask m, H = diag(6 x m / (1 - p)^3) with m of zeros and ones
    s = lambda v: (F.dropout(v, 0.5, seed=3) ** 3).sum()  # noqa: E731
    H = hessian(s)(x).numpy()
    kept = F.dropout(tg.ones(3), 0.5, seed=3).numpy() != 0
    np.testing.assert_allclose(H, np.diag(np.where(kept, 6 * x.numpy() / 0.5**3, 0.0)))
    (H, aux) = hessian(lambda v: ((v**3).sum(), v * 2), has_aux=True)(x)
    np.testing.assert_allclose(H.numpy(), np.diag(6 * x.numpy()))
    np.testing.assert_allclose(aux.numpy(), 2 * x.numpy())


def test_out_dims_none_returns_an_unbatched_output_as_it_is():
    x, w = arr(4, 3), arr(3, seed=1)
    for chunk in (None, 3):
        y, c, k = vmap(lambda v: ((v * w).sum(), w * 2.0, 7), out_dims=(0, None, None), chunk_size=chunk)(x)
        assert y.shape == (4,) and k == 7
        np.testing.assert_array_equal(c.numpy(), w.numpy() * 2.0)
    with pytest.raises(ValueError, match=r"vmap\(<lambda>\): out_dims=None for output\[1\], but it is batched \(per-example shape"):
        vmap(lambda v: (v, v * 2.0), out_dims=(0, None))(x)
    with pytest.raises(ValueError, match=r"out_dims for output is \(0,\).*Give one out_dims entry per output"):
        vmap(lambda v: (v, v), out_dims=(0,))(x)


def test_errors_name_the_vmapped_function():
    x, z = arr(3, 2), tg.zeros(2, dtype=np.float64)

    def read(a):
        return a.sum().item()

    def branch(a):
        return a if a.sum() > 0 else -a

    def write(a):
        return z.add_(a)

    def outer(a):  # a is batched by this vmap, read inside another
        return vmap(lambda b: b * a.sum().item())(x)

    for fn, what in ((read, r"\.item\(\)"), (branch, r"bool\(\)"), (write, "add_ writes a batched tensor"), (outer, r"\.item\(\)")):
        with pytest.raises(RuntimeError, match=rf"^vmap\({fn.__name__}\): {what}"):
            vmap(fn)(x)


def test_in_dims_pytrees_out_dims_and_chunks():
    x, y = arr(3, 4), arr(4, 3, seed=1)
    got = check_vmap(lambda d: d["a"] * d["b"][0], {"a": x, "b": (y,)}, in_dims=({"a": 0, "b": (1,)},))
    assert got.shape == (3, 4)
    check_vmap(lambda u, v: (u + v, u * 2.0), x, y, in_dims=(0, 1), out_dims=1)
    check_vmap(lambda u: u * 2.0, x, chunk_size=2)
    out = vmap(lambda u: (u.sum(), u), out_dims=(0, 1))(x)
    assert out[1].shape == (4, 3)


@FAST
@given(shape=st.lists(st.integers(1, 3), min_size=1, max_size=3).map(tuple), n=st.integers(1, 3), m=st.integers(1, 3),
       data=st.data())
def test_nested_vmap_at_drawn_dims(shape, n, m, data):
    inner = data.draw(st.integers(0, len(shape)))  # the inner batch dim, in each outer example
    outer = data.draw(st.integers(0, len(shape) + 1))
    inner_out = data.draw(st.integers(0, len(shape)))
    per_outer = list(shape)
    per_outer.insert(inner, m)
    x = batched(tuple(per_outer), outer, n)
    v = batched(shape, 0, n, seed=1)  # batched at the outer level only

    def f(a, b):
        return F.softmax(a * b, dim=-1) + a.sum()

    check_vmap(vmap(f, in_dims=(inner, None), out_dims=inner_out), x, v, in_dims=(outer, 0))


def test_nested_vmap():
    x, w = arr(2, 3, 4), arr(4, 5, seed=1)
    got = vmap(vmap(lambda u, v: (u @ v).tanh(), in_dims=(0, None)), in_dims=(0, None))(x, w)
    np.testing.assert_allclose(got.numpy(), np.tanh(x.numpy() @ w.numpy()), atol=1e-12)
    check_vmap(vmap(lambda u: F.log_softmax(u, dim=0)), x)
    check_vmap(vmap(lambda u, v: u * v, in_dims=(0, None)), x, arr(3, 4, seed=2), in_dims=(1, 0))


def loss_fn(model):
    def loss(p, x, t):
        return F.cross_entropy(functional_call(model, p, x.unsqueeze(0)), t.unsqueeze(0))

    return loss


@pytest.mark.parametrize("Model", [SimpleConvNet, LeNet])
def test_per_example_gradients_of_cnns(Model):
    model = Model()
    p = {k: v.double() for k, v in get_params(model).items()}
    x = arr(3, 1, 28, 28)
    t = tg.tensor(np.array([1, 7, 3]))
    loss = loss_fn(model)
    g = vmap(grad(loss), in_dims=(None, 0, 0))(p, x, t)
    for i in range(3):
        gi = grad(loss)(p, x[i], t[i])
        for k in p:
            assert g[k].shape == (3,) + p[k].shape
            np.testing.assert_allclose(g[k].numpy()[i], gi[k].numpy(), atol=1e-10, rtol=0)


def test_per_example_gradients_against_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((5, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
    lw = rng.standard_normal((4, 3 * 2 * 2))
    t = np.array([0, 3, 1, 2, 2])

    def ours(p, xi, ti):
        h = F.max_pool2d(F.relu(F.conv2d(xi[None], p["w"], p["b"])), 2)
        return F.cross_entropy(h.reshape((1, -1)) @ p["lw"].T, ti[None])

    def theirs(p, xi, ti):
        h = torch.nn.functional.max_pool2d(torch.relu(torch.nn.functional.conv2d(xi[None], p["w"], p["b"])), 2)
        return torch.nn.functional.cross_entropy(h.reshape(1, -1) @ p["lw"].T, ti[None])

    g = vmap(grad(ours), in_dims=(None, 0, 0))({"w": tg.tensor(w), "b": tg.tensor(b), "lw": tg.tensor(lw)}, tg.tensor(x), tg.tensor(t))
    tp = {"w": torch.tensor(w), "b": torch.tensor(b), "lw": torch.tensor(lw)}
    want = torch.func.vmap(torch.func.grad(theirs), in_dims=(None, 0, 0))(tp, torch.tensor(x), torch.tensor(t))
    for k in g:
        np.testing.assert_allclose(g[k].numpy(), want[k].numpy(), atol=1e-10)


def test_grad_of_vmap_and_gradcheck_through_vmap():
    w = arr(3, 4)
    x = arr(5, 3, seed=1)

    def f(wv):
        return vmap(lambda xi: (xi @ wv).tanh().sum(), in_dims=0)(x).sum()

    g = grad(f)(w)
    want = grad(lambda wv: (x @ wv).tanh().sum())(w)
    np.testing.assert_allclose(g.numpy(), want.numpy(), atol=1e-12)
    xr = tg.tensor(np.random.default_rng(2).standard_normal((4, 3)), requires_grad=True)
    wr = tg.tensor(np.random.default_rng(3).standard_normal((3, 2)), requires_grad=True)
    assert tg.gradcheck(lambda a, b: vmap(lambda r: F.log_softmax((r @ b).sin(), dim=0), in_dims=0)(a), (xr, wr))


def test_vjp_with_batched_cotangents_is_jacobian():
    x = arr(4)
    y, vjp_fn = vjp(lambda v: (v * v).cumsum(0).exp(), x)
    rows = vmap(vjp_fn)(tg.tensor(np.eye(4)))[0]
    np.testing.assert_allclose(rows.numpy(), jacobian(lambda v: (v * v).cumsum(0).exp())(x).numpy(), atol=1e-12)


def test_user_function_rule_and_fallback_warning():
    class Cube(Function):
        @staticmethod
        def forward(ctx, v):
            ctx.save_for_backward(v)
            return v ** 3

        @staticmethod
        def backward(ctx, g):
            (v,) = ctx.saved_tensors
            return g * 3.0 * v * v

    class CubeRuled(Cube):
        calls = 0

        @staticmethod
        def vmap(info, v):
            CubeRuled.calls += 1
            return CubeRuled.apply(v)

    x = arr(3, 2)
    with pytest.warns(RuntimeWarning, match="Cube has no batching rule"):
        check_vmap(lambda v: Cube.apply(v), x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_vmap(lambda v: Cube.apply(v), x)  # warned once per op
        check_vmap(lambda v: CubeRuled.apply(v), x)
    assert CubeRuled.calls == 1

    class Cube(Cube):  # another op of the same name: warned about too
        pass

    with pytest.warns(RuntimeWarning, match="Cube has no batching rule"):
        check_vmap(lambda v: Cube.apply(v), x)


def test_the_loop_fallback_refuses_results_whose_shape_differs_between_examples():
    class Positives(Function):  # a data-dependent output shape, and no batching rule
        @staticmethod
        def forward(ctx, v):
            return v[v > 0]

        @staticmethod
        def backward(ctx, g):
            raise NotImplementedError

    x = tg.Tensor(np.array([[1.0, 2.0], [3.0, -4.0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the loop fallback's warning
        with pytest.raises(ValueError, match=r"op Positives .* shape \(1,\) for example 1 but \(2,\) for example 0"):
            vmap(Positives.apply)(x)


def test_errors():
    x, y = arr(3, 2), arr(4, 2)

    def f(a, b):
        return a + b

    with pytest.raises(ValueError, match=r"vmap\(f\).*different batch sizes.*a: 3, b: 4"):
        vmap(f)(x, y)
    with pytest.raises(ValueError, match=r"in_dims=2 for b.*\[-2, 2\)"):
        vmap(f, in_dims=(0, 2))(x, x)
    with pytest.raises(ValueError, match="no argument is batched"):
        vmap(f, in_dims=None)(x, x)
    with pytest.raises(ValueError, match="in_dims has 1 entries"):
        vmap(f, in_dims=(0,))(x, x)
    with pytest.raises(RuntimeError, match=r"\.item\(\)"):
        vmap(lambda a: a.sum().item())(x)
    with pytest.raises(RuntimeError, match="bool"):
        vmap(lambda a: a * 2 if a.sum() > 0 else a)(x)
    with pytest.raises(RuntimeError, match="numpy"):
        vmap(lambda a: np.asarray(a))(x)
    z = tg.zeros(2, dtype=np.float64)
    with pytest.raises(RuntimeError, match="add_ writes a batched tensor"):
        vmap(lambda a: z.add_(a))(x)
    with pytest.raises(RuntimeError, match="in-place"):
        vmap(lambda a: a.mul_(2.0))(x)
    with pytest.raises(ValueError, match="randomness"):
        vmap(f, randomness="maybe")


def fd_jac(f, x, eps=1e-6):
    y = np.asarray(f(x))
    J = np.zeros(y.shape + x.shape)
    for i in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[i] += eps
        xm[i] -= eps
        J[(...,) + i] = (np.asarray(f(xp)) - np.asarray(f(xm))) / (2 * eps)
    return J


def test_jacrev_jacfwd_hessian_against_finite_differences():
    from tinygrad_cnn.func import hessian, jacfwd, jacrev

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 1, 5, 5))
    w0 = rng.standard_normal((2, 1, 3, 3)) * 0.5

    def f(w):
        h = F.max_pool2d(F.conv2d(tg.tensor(x), w, padding=1).tanh(), 2)
        return F.log_softmax(h.reshape((1, -1)), dim=1)[0, :3]

    def npf(w):
        return f(tg.tensor(w)).numpy()

    want = fd_jac(npf, w0)
    for jac in (jacrev, jacfwd, jacobian):
        np.testing.assert_allclose(jac(f)(tg.tensor(w0)).numpy(), want, atol=1e-7)
    loss = lambda w: (f(w) ** 2).sum()  # noqa: E731
    H = hessian(loss)(tg.tensor(w0)).numpy()
    want_h = fd_jac(lambda w: grad(loss)(tg.tensor(w)).numpy(), w0)
    np.testing.assert_allclose(H, want_h, atol=1e-6)
    np.testing.assert_allclose(jacfwd(grad(loss))(tg.tensor(w0)).numpy(), want_h, atol=1e-6)


def test_transforms_inside_vmap():
    from tinygrad_cnn.func import hessian, jacfwd, jvp, value_and_grad

    rng = np.random.default_rng(5)
    w = tg.tensor(rng.standard_normal((3, 4)))
    xs = tg.tensor(rng.standard_normal((5, 3)))

    def f(x):
        return (x @ w).tanh()

    def s(x):
        return (f(x) ** 2).sum()

    check_vmap(jacobian(f), xs)
    check_vmap(jacfwd(f), xs)
    check_vmap(hessian(s), xs)
    check_vmap(lambda x: jvp(f, (x,), (tg.ones(3, dtype=np.float64),))[1], xs)
    check_vmap(lambda x: vjp(f, x)[1](tg.ones(4, dtype=np.float64))[0], xs)
    check_vmap(lambda x: value_and_grad(s)(x)[1], xs)
    check_vmap(vmap(grad(s)), tg.tensor(rng.standard_normal((2, 5, 3))))

    def penalty(wv, batched):
        g = grad(lambda x, v: ((x @ v).tanh() ** 2).sum(), argnums=1)
        if batched:
            gs = vmap(g, in_dims=(0, None))(xs, wv)
            return (gs * gs).sum()
        return sum(((g(xs[i], wv)) ** 2).sum() for i in range(5))

    np.testing.assert_allclose(grad(lambda v: penalty(v, True))(w).numpy(), grad(lambda v: penalty(v, False))(w).numpy(), atol=1e-10)


@pytest.mark.parametrize("op", ["max", "min"])
def test_max_min_dim_route_the_gradient_to_the_index_under_vmap_as_in_a_loop(op):
    # Ties (and an inf beside the extremum) must not change where the gradient goes: vmap gives
    # the per-example gradients a loop of plain calls gives.
    x = tg.tensor(np.array([[[0.0, 0.0, 1.0], [2.0, 2.0, -np.inf]], [[5.0, 5.0, 5.0], [np.inf, 3.0, 3.0]]]))

    def f(r):
        return getattr(r, op)(dim=1).values.sum()

    batched = vmap(grad(f))(x)
    loop = np.stack([grad(f)(x[i]).numpy() for i in range(x.shape[0])])
    np.testing.assert_array_equal(batched.numpy(), loop)
