"""vmap batching of sort/argsort/topk, indexing with per-example indices, the activations, where
across nested levels and modules with backward hooks: each against a loop of plain calls (values,
indices and per-example gradients, float64), nested vmap against a double loop, and no fallback
loop (its warning is an error here)."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn.func import functional_call, get_params, grad, vmap
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.testing import check_vmap

FAST = settings(max_examples=10, deadline=None)


@pytest.fixture(autouse=True)
def no_fallback_loop():
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="vmap: op .* has no batching rule")
        yield


def arr(*shape, seed=0):
    return tg.tensor(np.random.default_rng(seed).standard_normal(shape))


def ints(high, *shape, seed=0):
    return tg.tensor(np.random.default_rng(seed).integers(0, high, shape))


def double_loop(f, *xs):
    """f on each (i, j) example of xs (two batch dims in front), stacked: nested vmap's meaning."""
    n, m = xs[0].shape[:2]
    return [np.stack([np.stack([np.asarray(f(*(x[i][j] for x in xs)).numpy()) for j in range(m)]) for i in range(n)])]


def check_nested(f, *xs, atol=1e-12):
    got = vmap(vmap(f))(*xs)
    np.testing.assert_allclose(got.numpy(), double_loop(f, *xs)[0], atol=atol, rtol=0)


def check_with_grad(f, *args, in_dims=0):
    """vmap(f) and vmap(grad(f)) (f returns a scalar) against loops of f and of grad(f)."""
    check_vmap(f, *args, in_dims=in_dims, atol=1e-12, rtol=0)
    check_vmap(grad(f), *args, in_dims=in_dims, atol=1e-12, rtol=0)


# ---- sort, argsort, topk ------------------------------------------------------------------------
shape_st = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@FAST
@given(shape=shape_st, n=st.integers(1, 3), descending=st.booleans(), ties=st.booleans(), data=st.data())
def test_sort_argsort_values_indices_and_gradients(shape, n, descending, ties, data):
    dim = data.draw(st.integers(-len(shape), len(shape) - 1))
    x = arr(n, *shape)
    if ties:  # repeated values: the stable order must match the loop's
        x = tg.tensor(np.round(x.numpy()))
    w = arr(*shape, seed=1)
    check_vmap(lambda a: tuple(tg.sort(a, dim, descending=descending)), x, atol=0, rtol=0)
    check_vmap(lambda a: a.argsort(dim, descending), x, atol=0, rtol=0)
    check_with_grad(lambda a: (tg.sort(a, dim, descending=descending).values * w).sum(), x)


@FAST
@given(shape=shape_st, n=st.integers(1, 3), largest=st.booleans(), data=st.data())
def test_topk_values_indices_and_gradients(shape, n, largest, data):
    dim = data.draw(st.integers(0, len(shape) - 1))
    k = data.draw(st.integers(0, shape[dim]))
    x = arr(n, *shape)
    w = arr(*shape[:dim], k, *shape[dim + 1:], seed=1)
    check_vmap(lambda a: tuple(tg.topk(a, k, dim, largest=largest)), x, atol=0, rtol=0)
    check_with_grad(lambda a: (tg.topk(a, k, dim, largest=largest).values * w).sum(), x)


def test_sort_topk_nested_and_in_dims():
    x = arr(2, 3, 5)
    check_nested(lambda a: tg.sort(a, descending=True).values, x)
    check_nested(lambda a: tg.topk(a, 2).indices, x)
    check_vmap(lambda a: tg.topk(a, 3, 0).values, arr(5, 4), in_dims=1, atol=0, rtol=0)
    g = vmap(vmap(grad(lambda a: (tg.topk(a, 2).values ** 2).sum())))(x)
    np.testing.assert_allclose(g.numpy(), double_loop(grad(lambda a: (tg.topk(a, 2).values ** 2).sum()), x)[0], atol=1e-12)


def test_sort_of_batched_scalars():
    x = arr(4)
    check_vmap(lambda a: tuple(tg.sort(a)), x, atol=0, rtol=0)


# ---- activations -----------------------------------------------------------------------------------
ACTIVATIONS = {
    "relu": F.relu, "gelu": F.gelu, "gelu_tanh": lambda v: F.gelu(v, approximate="tanh"), "silu": F.silu,
    "leaky_relu": lambda v: F.leaky_relu(v, 0.2), "elu": F.elu, "hardtanh": F.hardtanh,
    "hardtanh_range": lambda v: F.hardtanh(v, -0.5, 2.0), "softmax": lambda v: F.softmax(v, -1),
    "log_softmax": lambda v: F.log_softmax(v, -1), "logsumexp": lambda v: F.logsumexp(v, -1),
}


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_batch_with_gradients_and_nested(name):
    f = ACTIVATIONS[name]
    # Values on hardtanh's and relu's kinks too: the gradient there must be the loop's.
    x = tg.tensor(np.concatenate([arr(3, 4).numpy(), np.array([[-1.0, 1.0, 0.0, -0.5]] * 3), np.array([[2.0, 0.0, -1.0, 3.0]] * 3)], 1))
    w = arr(12, seed=1)
    check_vmap(f, x, atol=1e-12, rtol=0)
    check_with_grad(lambda a: (f(a) * w).sum(), x)
    check_nested(f, tg.tensor(x.numpy().reshape(3, 3, 4)))


def test_hardtanh_gradient_only_strictly_inside():
    g = vmap(grad(lambda a: F.hardtanh(a).sum()))(tg.tensor(np.array([[-1.0, -0.5, 1.0, 2.0], [0.0, -3.0, 0.999, 1.0]])))
    np.testing.assert_array_equal(g.numpy(), [[0.0, 1.0, 0.0, 0.0], [1.0, 0.0, 1.0, 0.0]])


def test_rounding_batches():
    check_vmap(lambda a: a.floor() + a.round() + a.ceil(), arr(3, 4), atol=0, rtol=0)


# ---- indexing with per-example indices --------------------------------------------------------------
@FAST
@given(n=st.integers(1, 3), rows=st.integers(1, 3), cols=st.integers(1, 4), k=st.integers(1, 4), dim=st.integers(0, 1),
       src_batched=st.booleans())
def test_gather_with_batched_index_and_gradients(n, rows, cols, k, dim, src_batched):
    x = arr(n, rows, cols) if src_batched else arr(rows, cols)
    size = (rows, cols)[dim]
    idx = ints(size, n, *((k, cols) if dim == 0 else (rows, k)), seed=2)
    w = arr(*idx.shape[1:], seed=3)
    dims = (0 if src_batched else None, 0)
    check_vmap(lambda a, i: tg.gather(a, dim, i), x, idx, in_dims=dims, atol=0, rtol=0)
    if src_batched:
        check_vmap(grad(lambda a, i: (tg.gather(a, dim, i) * w).sum()), x, idx, in_dims=dims, atol=1e-12, rtol=0)
        return
    # an unbatched source: the gradient (summed over the batch) is the sum of the loop's
    gx = grad(lambda a: vmap(lambda i: (tg.gather(a, dim, i) * w).sum())(idx).sum())(x)
    want = sum(grad(lambda a, i=idx[b]: (tg.gather(a, dim, i) * w).sum())(x).numpy() for b in range(n))
    np.testing.assert_allclose(gx.numpy(), want, atol=1e-12)


def test_gather_batched_source_unbatched_index():
    idx = ints(5, 4, 2, seed=1)
    check_with_grad(lambda a: (tg.gather(a, 1, idx) ** 2).sum(), arr(3, 4, 5))


def test_index_select_scatter_add_masked_fill_with_batched_index():
    x, idx, idx2 = arr(3, 4, 5), ints(5, 3, 6, seed=1), ints(4, 3, 4, 5, seed=2)
    check_with_grad(lambda a, i: (tg.index_select(a, 1, i) ** 2).sum(), x, idx)
    check_vmap(lambda i: tg.index_select(arr(4, 5), 0, i), ints(4, 3, 2), atol=0, rtol=0)
    check_with_grad(lambda s, i: (tg.scatter_add(tg.zeros(4, 5).double(), 0, i, s) ** 2).sum(), x, idx2)
    check_vmap(lambda i: tg.scatter_add(arr(4, 5), 0, i, arr(4, 5, seed=4)), idx2, atol=1e-12, rtol=0)
    check_with_grad(lambda s: (tg.scatter_add(arr(4, 5), 0, idx2[0], s) ** 2).sum(), x)
    mask = tg.tensor(np.random.default_rng(5).random((3, 4, 5)) > 0.5)
    check_with_grad(lambda a, m: (tg.masked_fill(a, m, 2.0) ** 2).sum(), x, mask)
    check_with_grad(lambda a: (tg.masked_fill(a, mask[0], 2.0) ** 2).sum(), x)


def test_indexing_nested_vmap():
    x, idx = arr(2, 3, 4, 5), ints(5, 2, 3, 4, 2, seed=1)
    check_nested(lambda a, i: tg.gather(a, 1, i), x, idx)
    check_nested(lambda a, i: tg.scatter_add(a, 1, i, tg.ones(4, 2).double()), x, idx)
    # source batched at the outer level only, index at the inner only
    got = vmap(lambda a: vmap(lambda i: tg.gather(a, 1, i))(idx[0]))(x[:, 0])
    want = np.stack([np.stack([tg.gather(x[b, 0], 1, idx[0, j]).numpy() for j in range(3)]) for b in range(2)])
    np.testing.assert_array_equal(got.numpy(), want)


def test_batched_index_errors_name_the_op():
    with pytest.raises(TypeError, match="gather: index must be an integer"):
        vmap(lambda i: tg.gather(arr(3, 4), 1, i))(arr(2, 3, 1))
    with pytest.raises(ValueError, match="gather: index of shape"):
        vmap(lambda i: tg.gather(arr(3, 4), 1, i))(ints(3, 2, 3))
    with pytest.raises(IndexError, match="gather: index values must lie"):
        vmap(lambda i: tg.gather(arr(3, 4), 1, i))(tg.tensor(np.full((2, 3, 1), 7)))


# ---- where across nested levels ---------------------------------------------------------------
def test_where_condition_and_operands_at_different_nested_levels():
    x, y = arr(2, 4), arr(3, 4, seed=1)
    # condition batched at the outer level, operand at the inner level, and the converse
    for f in (lambda a, b: tg.where(a > 0, b, a * 2.0), lambda a, b: tg.where(b > 0, a, 0.5),
              lambda a, b: tg.where((a + b) > 0, 1.0, -1.0), lambda a, b: tg.where(a > b, a, b)):
        got = vmap(lambda a, f=f: vmap(lambda b, f=f: f(a, b))(y))(x)
        want = np.stack([np.stack([f(x[i], y[j]).numpy() for j in range(3)]) for i in range(2)])
        np.testing.assert_allclose(got.numpy(), want, atol=1e-12)

    def g(a, b):
        return (tg.where(a > 0, a * b, b) ** 2).sum()

    got = vmap(lambda a: vmap(lambda b: grad(g, argnums=(0, 1))(a, b))(y))(x)
    for k in range(2):
        want = np.stack([np.stack([grad(g, argnums=(0, 1))(x[i], y[j])[k].numpy() for j in range(3)]) for i in range(2)])
        np.testing.assert_allclose(got[k].numpy(), want, atol=1e-12)


# ---- modules with backward hooks ----------------------------------------------------------------------
def hooked_linear():
    tg.manual_seed(0)
    m = tg.nn.Linear(3, 2).double()
    seen = []
    m.register_full_backward_hook(lambda mod, gi, go: seen.append((None if gi[0] is None else gi[0].shape, go[0].shape)))
    return m, seen


def test_module_with_backward_hooks_batches_and_hooks_see_the_batch_after_vmap():
    m, seen = hooked_linear()
    x = arr(4, 3).requires_grad_(True)
    y = vmap(m)(x)
    np.testing.assert_allclose(y.numpy(), m(x).detach().numpy(), atol=1e-12)
    (y * arr(4, 2, seed=1)).sum().backward()
    assert seen == [((4, 3), (4, 2))]  # one call, the whole batch's gradients
    gw = m.weight.grad.numpy().copy()
    m.zero_grad()
    (m(tg.tensor(x.numpy())) * arr(4, 2, seed=1)).sum().backward()
    np.testing.assert_allclose(gw, m.weight.grad.numpy(), atol=1e-12)


def test_backward_hooks_refused_in_a_gradient_inside_vmap():
    # torch.func.vmap(grad(...)) refuses a module with full backward hooks; so does this.
    m, seen = hooked_linear()
    p = get_params(m)
    with pytest.raises(RuntimeError, match="Linear: full backward hooks .* inside vmap"):
        vmap(grad(lambda q, x: functional_call(m, q, x).sum()), in_dims=(None, 0))(p, arr(4, 3))
    assert seen == []
    pre = tg.nn.Linear(3, 2).double()
    pre.register_full_backward_pre_hook(lambda mod, go: seen.append(go[0].shape))
    with pytest.raises(RuntimeError, match="Linear: full backward hooks .* inside vmap"):
        vmap(grad(lambda x: pre(x).sum()))(arr(4, 3))
    assert seen == []
    # without hooks the same per-example gradients are computed
    plain = tg.nn.Linear(3, 2).double()
    assert vmap(grad(lambda x: plain(x).sum()))(arr(4, 3)).shape == (4, 3)


# ---- value-reading helpers that now batch -------------------------------------------------------------
def test_comparisons_any_all_isnan_isfinite_batch():
    x = tg.tensor(np.where(np.random.default_rng(0).random((3, 4, 5)) > 0.8, np.nan, arr(3, 4, 5).numpy()))
    y = arr(3, 4, 5, seed=1)
    for fn in (tg.eq, tg.ne, tg.lt, tg.le, tg.gt, tg.ge):
        check_vmap(fn, x, y, atol=0, rtol=0)
        check_vmap(lambda a, fn=fn: fn(a, 0.0), x, atol=0, rtol=0)
    check_vmap(tg.isnan, x, atol=0, rtol=0)
    check_vmap(tg.isfinite, x, atol=0, rtol=0)
    for dim in (None, 0, 1):
        for keep in (False, True):
            check_vmap(lambda a, d=dim, k=keep: (tg.any(a > 1.0, d, k), tg.all(a < 1.0, d, k)), y, atol=0, rtol=0)
    check_nested(lambda a: tg.any(a > 0.5, 0), y)


def test_clamp_with_tensor_bounds_batches_with_gradients():
    x, lo, hi = arr(3, 4, 5), arr(3, 4, 5, seed=1) - 0.5, arr(4, 5, seed=2) + 0.5
    check_with_grad(lambda a, b: (tg.clamp(a, min=b, max=hi) ** 2).sum(), x, lo)
    check_with_grad(lambda b, a: (tg.clamp(a, min=b) ** 2).sum(), lo, x)


def test_bce_one_hot_max_pool_indices_adaptive_pool_batch():
    p, t = tg.tensor(np.random.default_rng(0).random((3, 4))), tg.tensor(np.random.default_rng(1).random((3, 4)))
    check_with_grad(lambda a, b: F.binary_cross_entropy(a, b), p, t)
    with pytest.raises(ValueError, match="binary_cross_entropy: input must hold probabilities"):
        vmap(F.binary_cross_entropy)(p * 2.0, t)
    cls = ints(5, 3, 4)
    check_vmap(lambda c: F.one_hot(c, 5), cls, atol=0, rtol=0)
    check_nested(lambda c: F.one_hot(c, 6), ints(6, 2, 3, 4))
    with pytest.raises(ValueError, match="one_hot: num_classes=-1 .* inside vmap"):
        vmap(F.one_hot)(cls)
    img = arr(3, 2, 3, 7, 7)
    check_vmap(lambda a: F.max_pool2d(a, 3, stride=2, padding=1, return_indices=True), img, atol=0, rtol=0)
    img_inf = tg.tensor(np.where(np.arange(7) == 3, np.inf, img.numpy()))
    check_with_grad(lambda v: (F.adaptive_avg_pool2d(v, (4, 5)) ** 2).sum(), img)
    check_vmap(lambda v: F.adaptive_avg_pool2d(v, (4, 5)), img_inf, atol=1e-12, rtol=0)  # the path for non-finite inputs


# ---- indexing with a per-example index tensor -----------------------------------------------------
INDEXERS = [
    (lambda a, i: a[i], (3, 2), -4, 4),
    (lambda a, i: a[:, i], (3, 2, 2), 0, 5),
    (lambda a, i: a[1:3, i], (3,), 0, 5),
    (lambda a, i: a[..., i], (3,), 0, 5),
    (lambda a, i: a[i, 1:], (3, 6), 0, 4),
]


@pytest.mark.parametrize("k", range(len(INDEXERS)))
def test_getitem_with_a_batched_index_tensor(k):
    f, shape, lo, hi = INDEXERS[k]
    x = arr(3, 4, 5)
    i = tg.tensor(np.random.default_rng(k).integers(lo, hi, shape))
    check_with_grad(lambda a, j: (f(a, j) ** 2).sum(), x, i)
    check_vmap(lambda j: f(x[0], j), i, atol=0, rtol=0)  # unbatched source


def test_getitem_batched_index_nested_and_errors():
    check_nested(lambda a, j: a[j], arr(2, 3, 4, 5), ints(4, 2, 3, 2))
    x, i = arr(3, 4, 5), ints(4, 3, 2)
    with pytest.raises(NotImplementedError, match="getitem: inside vmap, a per-example boolean mask"):
        vmap(lambda a: a[a > 0])(x)
    with pytest.raises(NotImplementedError, match="one integer index tensor among slices"):
        vmap(lambda a, j: a[j, 0])(x, i)


def test_identity_nodes_of_transforms_batch():
    from tinygrad_cnn.autograd.function import _OnceDifferentiableError
    from tinygrad_cnn.func import _Input

    x, src = arr(3, 4), arr(3, 2, seed=1)
    check_vmap(lambda a: _Input.apply(a), x, atol=0, rtol=0)
    check_vmap(lambda a, s: _OnceDifferentiableError.apply(a, s, op="f"), x, src, atol=0, rtol=0)
    check_vmap(lambda s: _OnceDifferentiableError.apply(x[0], s, op="f"), src, atol=0, rtol=0)


# ---- finite differences and PyTorch ---------------------------------------------------------------
def test_gradcheck_through_vmap_of_sort_topk_gather_hardtanh():
    x = tg.tensor(np.random.default_rng(0).standard_normal((3, 5)), requires_grad=True)
    src = tg.tensor(np.random.default_rng(1).standard_normal((4, 5)), requires_grad=True)
    idx = ints(5, 3, 4, 2, seed=2)

    def f(a, s):
        top = vmap(lambda r: tg.topk(r, 3).values * tg.sort(r, descending=True).values[:3])(a)
        picked = vmap(lambda i: tg.gather(s * 1.5, 1, i))(idx)                  # (3, 4, 2): per-example indices
        return vmap(lambda t, p: F.hardtanh(t * 0.7) * p.sum())(top, picked)

    assert tg.gradcheck(lambda a, s: f(a, s), (x, src))


def test_per_example_gradients_against_torch_func():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w, idx = rng.standard_normal((4, 6)), rng.standard_normal((6, 6)), rng.integers(0, 6, (4, 3))

    def ours(wv, xi, ii):
        h = F.hardtanh((xi @ wv) * 0.5)
        top = tg.topk(h, 3, largest=False).values
        return (top * tg.gather(h, 0, ii) + tg.sort(h).values[-2:].sum()).sum() + F.elu(h[ii]).sum()

    def theirs(wv, xi, ii):
        h = torch.nn.functional.hardtanh((xi @ wv) * 0.5)
        top = torch.topk(h, 3, largest=False).values
        return (top * torch.gather(h, 0, ii) + torch.sort(h).values[-2:].sum()).sum() + torch.nn.functional.elu(h[ii]).sum()

    g = vmap(grad(ours), in_dims=(None, 0, 0))(tg.tensor(w), tg.tensor(x), tg.tensor(idx))
    want = torch.func.vmap(torch.func.grad(theirs), in_dims=(None, 0, 0))(torch.tensor(w), torch.tensor(x), torch.tensor(idx))
    np.testing.assert_allclose(g.numpy(), want.numpy(), atol=1e-12)


def test_layout_queries_and_logical_not_inside_vmap():
    x = arr(3, 4, 5)
    seen = []

    def f(a):
        seen.append((a.stride(), a.stride(1), a.is_contiguous(), a.t().is_contiguous(), a.t().stride()))
        return a.t().contiguous()

    check_vmap(f, x, atol=0, rtol=0)
    assert seen[0] == (x[0].stride(), 1, True, False, x[0].t().stride())  # as on one example
    check_vmap(lambda a: (a > 0).logical_not(), x, atol=0, rtol=0)


def test_mask_logic_floor_division_and_remainder_inside_vmap():
    x, y = arr(3, 4, 5), arr(3, 4, 5, seed=1) + 3.0
    for fn in (lambda a, b: (a > 0) & (b > 3), lambda a, b: (a > 0) | (b > 3), lambda a, b: (a > 0) ^ (b > 3),
               lambda a, b: ~(a > 0), lambda a, b: (a > 0) & (a < 0.5), lambda a, b: a // b, lambda a, b: 2.0 // b):
        check_vmap(fn, x, y, atol=0, rtol=0)
        check_vmap(fn, x, y[0], in_dims=(0, None), atol=0, rtol=0)
    check_with_grad(lambda a, b: (a % b).sum(), x, y)
    check_with_grad(lambda b, a: ((a * 3.0) % b).sum(), y, x)
    ia, ib = ints(9, 3, 4), ints(4, 3, 4, seed=1) + 1
    check_vmap(lambda a, b: (a % b, a // b, a & b), ia, ib, atol=0, rtol=0)
    check_nested(lambda a, b: ((a > 0) & (b > 3)).logical_not(), x, y)


def test_comparisons_across_nested_levels_without_a_loop():
    # One numpy call covers all examples: with a counting ufunc, a nested comparison calls it once.
    calls = []

    def gt(u, v):
        calls.append(u.shape)
        return np.greater(u, v)

    from tinygrad_cnn.ops.batching import compare

    x, y = arr(2, 4), arr(3, 4, seed=1)
    got = vmap(lambda a: vmap(lambda b: compare(gt, a, b))(y))(x)
    assert len(calls) == 1
    np.testing.assert_array_equal(got.numpy(), x.numpy()[:, None] > y.numpy()[None])
