"""The Tensor layer speaks PyTorch: the same snippet, written once as ``fn(lib, *tensors)``, runs
with ``lib = tinygrad_cnn`` and ``lib = torch``; values and gradients must agree in float64.
Without PyTorch the comparison is skipped and the snippet is checked against finite differences
(``tinygrad_cnn.gradcheck``) instead."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg

try:
    import torch
except ImportError:  # the comparison is optional; the snippets still run
    torch = None


def _as_tuple(y):
    return tuple(y) if isinstance(y, tuple) else (y,)


def _dtype_name(d):
    return str(d).replace("torch.", "")


def _run_compare(fn, arrays, seed=0):
    """Run ``fn`` on float64 tensors of both libraries; compare every output's values and the
    gradient of a random projection of the floating outputs with respect to every input."""
    xs = [tg.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    ys = _as_tuple(fn(tg, *xs))
    if torch is None:
        floats = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"]
        if any(y.requires_grad for y in ys):

            def f(*fs):
                args = list(xs)
                for i, v in zip(floats, fs):
                    args[i] = v
                return tuple(y for y in _as_tuple(fn(tg, *args)) if y.dtype.kind == "f")

            assert tg.gradcheck(f, tuple(xs[i] for i in floats))
        return ys
    ts = [torch.tensor(a, requires_grad=a.dtype.kind == "f") for a in arrays]
    tys = _as_tuple(fn(torch, *ts))
    assert len(ys) == len(tys)
    rng = np.random.default_rng(seed)
    ours, theirs = 0.0, 0.0
    for y, ty in zip(ys, tys):
        assert y.shape == tuple(ty.shape), (y.shape, ty.shape)
        assert y.dtype.name == _dtype_name(ty.dtype), (y.dtype, ty.dtype)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-12)
        if y.dtype.kind == "f" and ty.requires_grad:
            g = rng.standard_normal(y.shape)
            ours = ours + (y * tg.tensor(g)).sum()
            theirs = theirs + (ty * torch.tensor(g)).sum()
    if isinstance(ours, tg.Tensor) and ours.requires_grad:
        ours.backward()
        theirs.backward()
        for x, t in zip(xs, ts):
            if t.grad is None:
                assert x.grad is None or not np.any(x.grad.numpy())
            else:
                np.testing.assert_allclose(x.grad.numpy(), t.grad.numpy(), rtol=1e-6, atol=1e-12)
    return ys


RNG = np.random.default_rng(1)
A = RNG.permutation(np.linspace(-2, 2, 12)).reshape(3, 4)  # distinct values: no ties in sorts or maxima
B = RNG.standard_normal((4, 5))
C = RNG.standard_normal((2, 3, 4))
IDX = np.array([[0, 2, 1, 0], [2, 2, 0, 1]])

CASES = {
    # reductions
    "sum": (lambda lib, x: (x.sum(), x.sum(1), x.sum(dim=(0, 1), keepdim=True), lib.sum(x, 0)), [A]),
    "mean": (lambda lib, x: (x.mean(), x.mean(0), x.mean(dim=1, keepdim=True)), [A]),
    "prod": (lambda lib, x: (x.prod(), x.prod(1), x.prod(0, keepdim=True)), [A]),
    "prod_with_zero": (lambda lib, x: (x * (x > 0)).prod(1), [A]),
    "var_std": (lambda lib, x: (x.var(), x.var(1), x.var(1, unbiased=False), x.std(0, correction=0), x.std(1, keepdim=True)), [A]),
    "max_min_whole": (lambda lib, x: (x.max(), x.min()), [A]),
    "max_dim": (lambda lib, x: tuple(x.max(1)) + tuple(x.max(dim=0, keepdim=True)), [A]),
    "min_dim": (lambda lib, x: tuple(x.min(1)) + tuple(lib.min(x, 0)), [A]),
    "amax_amin": (lambda lib, x: (x.amax(1), x.amin(0, keepdim=True), x.amax((0, 1))), [A]),
    "argmax": (lambda lib, x: (x.argmax(), x.argmax(1), x.argmin(0, keepdim=True), lib.argmax(x, dim=1)), [A]),
    "norm": (lambda lib, x: (x.norm(), x.norm(p=1, dim=1), x.norm(dim=0, keepdim=True), x.norm(p=3, dim=1), x.norm(p=math.inf)), [A]),
    "logsumexp": (lambda lib, x: (x.logsumexp(1), x.logsumexp(0, keepdim=True)), [A]),
    "softmax": (lambda lib, x: (x.softmax(1), x.log_softmax(0), lib.softmax(x, dim=0)), [A]),
    "cumsum": (lambda lib, x: (x.cumsum(1), x.cumsum(0), lib.cumsum(x, dim=-1)), [A]),
    "sort": (lambda lib, x: tuple(x.sort(1)) + tuple(x.sort(0, descending=True)) + tuple(lib.sort(x)), [A]),
    "topk": (lambda lib, x: tuple(x.topk(2)) + tuple(x.topk(1, dim=0, largest=False)), [A]),
    "any_all": (lambda lib, x: ((x > 0).any(), (x > 0).all(1), (x > -5).all()), [A]),
    # indexing
    "gather": (lambda lib, x, i: (x.gather(1, i[:, :3]), lib.gather(x, 0, i[:, :2])), [A, IDX]),
    "scatter_add": (
        lambda lib, x, i, s: (x.scatter_add(0, i, s), x.scatter_add(1, i[:, :2], s[:, :2])),
        [A, IDX, RNG.standard_normal((2, 4))],
    ),
    "index_select": (lambda lib, x: (x.index_select(0, lib.tensor([2, 0, 2])), x.index_select(1, lib.tensor([3]))), [A]),
    "masked_fill": (lambda lib, x: (x.masked_fill(x > 0, 0.5), x.masked_fill(lib.tensor([True, False, True, False]), -1.0)), [A]),
    "getitem": (lambda lib, x: (x[1], x[:, 1:3], x[x > 0], x[lib.tensor([0, 0, 2])]), [A]),
    # elementwise
    "unary": (
        lambda lib, x: (
            x.exp(),
            x.abs().log(),
            x.abs().log1p(),
            x.expm1(),
            x.abs().sqrt(),
            (x.abs() + 0.5).rsqrt(),
            abs(x),
            x.sign(),
            x.sin(),
            x.cos(),
            x.tanh(),
            x.sigmoid(),
            x.relu(),
            -x,
        ),
        [A],
    ),
    "clamp": (
        lambda lib, x: (x.clamp(-0.5, 0.5), x.clip(min=0.1), lib.clamp(x, max=0.2), x.clamp(min=lib.zeros(4, dtype=lib.float64))),
        [A],
    ),
    "pow": (lambda lib, x, y: (x.pow(2), x**3, x.abs().pow(y[:, :1]), 2.0**x), [A, RNG.standard_normal((3, 4))]),
    "binary": (
        lambda lib, x, y: (lib.maximum(x, y), lib.minimum(x, y), lib.where(x > y, x, y), x / (y.abs() + 1)),
        [A, RNG.standard_normal((3, 4))],
    ),
    "compare": (
        lambda lib, x, y: (x.eq(y), x.ne(y), x.lt(y), x.le(0.0), x.gt(y), x.ge(y), x.isnan(), x.isfinite()),
        [A, RNG.standard_normal((3, 4))],
    ),
    # shapes
    "transpose": (lambda lib, x, c: (x.t(), x.T, c.mT, c.permute(2, 0, 1), c.permute((1, 0, 2)), c.transpose(0, 2)), [A, C]),
    "flatten": (lambda lib, c: (c.flatten(), c.flatten(1), c.flatten(0, 1), lib.flatten(c, 1), c.flatten(1).unflatten(1, (3, -1))), [C]),
    "view": (lambda lib, c: (c.view(-1), c.view(4, 6), c.reshape((2, -1)), c.reshape(6, 4), c.contiguous(), c.clone()), [C]),
    "squeeze": (
        lambda lib, x: (x.unsqueeze(0), x.unsqueeze(-1).squeeze(-1), x.unsqueeze(1).squeeze(), x.squeeze(0), x[None].squeeze(0)),
        [A],
    ),
    "expand_repeat": (lambda lib, x: (x[:, :1].expand(-1, 5), x.expand(2, 3, 4), x.repeat(2, 1), x.repeat(2, 1, 3), x[0].repeat(2)), [A]),
    "chunk_split": (lambda lib, c: c.chunk(2, 2) + c.chunk(3, 1) + c.split(1) + c.split([1, 3], dim=2) + c.split(3, dim=-1), [C]),
    "cat_stack": (
        lambda lib, x, y: (lib.cat([x, y], 0), lib.cat((x, y), dim=1), lib.concat([x, y]), lib.stack([x, y]), lib.stack([x, y], dim=2)),
        [A, RNG.standard_normal((3, 4))],
    ),
    "matmul": (lambda lib, x, b, c: (lib.matmul(x, b), x @ b, c @ b, x[0] @ b, lib.matmul(b.T, x[0])), [A, B, C]),
    # einsum
    "einsum": (
        lambda lib, x, b, c, s: (
            lib.einsum("ij,jk->ik", x, b),
            lib.einsum("bij,bjk->bik", c, c.transpose(1, 2)),
            lib.einsum("bi,bi->b", x, x),
            lib.einsum("nchw->nhwc", c[None]),
            lib.einsum("ii->", s),
            lib.einsum("ii->i", s),
            lib.einsum("ij->", x),
            lib.einsum("ij,jk", x, b),
            lib.einsum("ij,jk,kl->il", x, b, b.T),
            lib.einsum("i,j->ij", x[0], b[0]),
            lib.einsum("bij->bji", c),
            lib.einsum("iji->j", c.permute(2, 1, 0)[:2, :, :2]),
        ),
        [A, B, C, RNG.standard_normal((4, 4))],
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_snippet_matches_pytorch(name):
    fn, arrays = CASES[name]
    _run_compare(fn, arrays)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_reductions_over_drawn_dims_match_pytorch(shape, data):
    nd = len(shape)
    dim = data.draw(st.integers(-nd, nd - 1))
    keep = data.draw(st.booleans())
    a = np.random.default_rng(data.draw(st.integers(0, 99))).permutation(np.linspace(-1, 1, math.prod(shape))).reshape(shape)

    def fn(lib, x):
        return (
            (
                x.sum(dim, keep),
                x.mean(dim, keep),
                x.prod(dim, keep),
                x.amax(dim, keep),
                x.logsumexp(dim, keep),
                x.cumsum(dim),
                x.softmax(dim),
                x.norm(dim=dim, keepdim=keep),
            )
            + tuple(x.max(dim, keep))
            + tuple(x.sort(dim))
        )

    _run_compare(fn, [a])


@given(n=st.integers(1, 4), m=st.integers(1, 4), k=st.integers(1, 4), b=st.integers(1, 3), seed=st.integers(0, 99))
def test_einsum_matches_pytorch_on_drawn_shapes(n, m, k, b, seed):
    rng = np.random.default_rng(seed)
    x, y, z = rng.standard_normal((b, n, k)), rng.standard_normal((b, k, m)), rng.standard_normal((n, k))

    def fn(lib, x, y, z):
        return (
            lib.einsum("bnk,bkm->bnm", x, y),
            lib.einsum("bnk,nk->b", x, z),
            lib.einsum("bnk->knb", x),
            lib.einsum("nk,bkm->bnm", z, y),
            lib.einsum("bnk,bnk->bn", x, x),
        )

    ys = _run_compare(fn, [x, y, z], seed)
    # brute force, independent of both libraries
    np.testing.assert_allclose(ys[0].numpy(), np.matmul(x, y), rtol=1e-12)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), data=st.data())
def test_gather_scatter_add_on_drawn_shapes(shape, data):
    nd = len(shape)
    dim = data.draw(st.integers(0, nd - 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    ishape = [rng.integers(1, s + 1) for s in shape]
    ishape[dim] = rng.integers(1, 6)
    idx = rng.integers(0, shape[dim], ishape)
    x, src = rng.standard_normal(shape), rng.standard_normal(ishape)
    ys = _run_compare(lambda lib, x, i, s: (x.gather(dim, i), x.scatter_add(dim, i, s)), [x, idx, src])
    # brute force
    expect = x.copy()
    for pos in np.ndindex(*idx.shape):
        target = list(pos)
        target[dim] = idx[pos]
        expect[tuple(target)] += src[pos]
    np.testing.assert_allclose(ys[1].numpy(), expect, rtol=1e-12)


def test_new_primitives_pass_gradcheck_and_gradgradcheck():
    x = tg.tensor(A, requires_grad=True)
    assert tg.gradcheck(lambda x: (x.prod(1), x.prod(), x.cumsum(0), x.sin(), x.cos(), x.abs().log1p(), x.expm1()), (x,))
    assert tg.gradgradcheck(lambda x: (x.prod(1), x.cumsum(1), x.sin(), x.expm1()), (x,))
    assert tg.gradgradcheck(lambda x: x.gather(1, tg.tensor(IDX[:, :3])).scatter_add(0, tg.tensor([[1, 0, 1]]), x[:1, :3]), (x,))
    assert tg.gradgradcheck(lambda x: tg.einsum("ij,kj->ik", x, x), (x,))


# ---- creation and dtypes -------------------------------------------------------------------------
@pytest.mark.parametrize("data", [[0, 1], 3, [True, False], True, [1.5, 2], [[1, 2], [3.0, 4]], 2.0, [[0]]])
def test_tensor_infers_dtypes_as_pytorch_does(data):
    ours = tg.tensor(data)
    expected = {int: "int64", bool: "bool", float: "float32"}
    flat = data
    while isinstance(flat, list):
        flat = (
            [v for item in flat for v in (item if isinstance(item, list) else [item])] if any(isinstance(i, list) for i in flat) else flat
        )
        break
    values = flat if isinstance(flat, list) else [flat]
    kinds = {type(v) for v in values}
    name = "float32" if float in kinds else expected[kinds.pop()]
    assert ours.dtype.name == name
    if torch is not None:
        assert _dtype_name(torch.tensor(data).dtype) == name


def test_tensor_keeps_numpy_dtypes_and_copies():
    for dt in (np.float64, np.float16, np.int32, np.uint8, np.bool_):
        a = np.zeros(3, dt)
        t = tg.tensor(a)
        assert t.dtype == dt and not np.shares_memory(t.numpy(), a)
    assert tg.tensor([1, 2], dtype=tg.float64).dtype == np.float64
    assert tg.tensor(np.float64(1.0)).dtype == tg.float64


def test_dtype_objects_compare_with_numpy_and_are_accepted():
    x = tg.zeros(2)
    assert x.dtype == np.float32 and x.dtype == tg.float32 and x.dtype == tg.float
    assert tg.double == tg.float64 == np.float64 and tg.long == tg.int64 and tg.int == tg.int32 and tg.half == tg.float16
    assert tg.bool == np.bool_ and tg.uint8 == np.uint8 and tg.int8 == np.int8 and tg.int16 == np.int16
    for dt in (tg.float32, tg.float64, tg.float16, tg.int64, tg.int32, tg.int16, tg.int8, tg.uint8, tg.bool):
        assert tg.zeros(2, dtype=dt).dtype == dt
        assert tg.ones(2).to(dt).dtype == dt and tg.ones(2).type(dt).dtype == dt
    assert tg.ones(2, dtype=np.float64).dtype == tg.float64


def test_factories_take_pytorch_argument_forms():
    for f in (tg.zeros, tg.ones, tg.empty, tg.rand, tg.randn):
        assert f(2, 3).shape == (2, 3) == f((2, 3)).shape == f([2, 3]).shape
        assert f(2, dtype=tg.float64).dtype == tg.float64
        assert f(2, requires_grad=True).requires_grad
    assert tg.zeros(2, 3).numpy().sum() == 0 and tg.ones(2, 3).numpy().sum() == 6
    assert tg.full((2,), 7).dtype == tg.int64 and tg.full((2,), 7.0).dtype == tg.float32 and tg.full((2,), True).dtype == tg.bool
    assert tg.arange(5).dtype == tg.int64 and tg.arange(0, 1, 0.25).dtype == tg.float32
    np.testing.assert_allclose(tg.linspace(0, 1, 5).numpy(), np.linspace(0, 1, 5))
    assert tg.eye(3).numpy().trace() == 3 and tg.eye(2, 3).shape == (2, 3)
    r = tg.randint(0, 10, (100,))
    assert r.dtype == tg.int64 and 0 <= r.numpy().min() and r.numpy().max() < 10 and tg.randint(3, (4,)).numpy().max() < 3
    x = tg.zeros(2, 3, dtype=tg.float64)
    for f, value in ((tg.zeros_like, 0), (tg.ones_like, 1)):
        y = f(x)
        assert y.shape == x.shape and y.dtype == x.dtype and (y.numpy() == value).all()
    assert (tg.full_like(x, 0.5).numpy() == 0.5).all() and tg.rand_like(x).dtype == tg.float64
    assert tg.randn_like(x).shape == (2, 3) and tg.empty_like(x).shape == (2, 3)
    if torch is not None:
        for args in ((5,), (1, 7, 2), (0.0, 1.0, 0.25), (-3, 3)):
            assert _dtype_name(torch.arange(*args).dtype) == tg.arange(*args).dtype.name
            np.testing.assert_allclose(tg.arange(*args).numpy(), torch.arange(*args).numpy())



_FACTORIES = {
    "zeros": lambda **kw: tg.zeros(2, 3, **kw), "ones": lambda **kw: tg.ones(2, 3, **kw),
    "empty": lambda **kw: tg.empty(2, 3, **kw), "full": lambda **kw: tg.full((2, 3), 1.5, **kw),
    "arange": lambda **kw: tg.arange(6, **kw), "linspace": lambda **kw: tg.linspace(0, 1, 4, **kw),
    "eye": lambda **kw: tg.eye(3, **kw), "rand": lambda **kw: tg.rand(2, 3, **kw), "randn": lambda **kw: tg.randn(2, 3, **kw),
    "randint": lambda **kw: tg.randint(0, 5, (2, 3), **kw), "randperm": lambda **kw: tg.randperm(4, **kw),
}
_LIKE = {name: (lambda f: lambda **kw: f(tg.ones(2, 3), **kw))(getattr(tg, name))
         for name in ("zeros_like", "ones_like", "empty_like", "rand_like", "randn_like")}
_LIKE["full_like"] = lambda **kw: tg.full_like(tg.ones(2, 3), 0.5, **kw)


@pytest.mark.parametrize("name", sorted(_FACTORIES) + sorted(_LIKE))
def test_factories_accept_pytorch_default_layout_pin_memory_memory_format(name):
    make = {**_FACTORIES, **_LIKE}[name]
    plain = make()
    formats = [None, tg.contiguous_format] + ([tg.preserve_format] if name in _LIKE else [])
    kw_sets = [dict(layout=tg.strided), dict(pin_memory=False), dict(layout=None, pin_memory=False)]
    if name in _LIKE or name == "empty":
        kw_sets += [dict(memory_format=f) for f in formats]
    for kw in kw_sets:
        t = make(**kw)
        assert t.shape == plain.shape and t.dtype == plain.dtype and t.data.flags.c_contiguous
    with pytest.raises(NotImplementedError, match=rf"{name}: layout=tinygrad_cnn.sparse_coo is not supported.*dense.*strided"):
        make(layout=tg.sparse_coo)
    with pytest.raises(NotImplementedError, match=rf"{name}: pin_memory=True is not supported.*CPU only.*pin_memory=False"):
        make(pin_memory=True)
    if name in _LIKE or name == "empty":
        for fmt in (tg.channels_last, tg.channels_last_3d):
            with pytest.raises(NotImplementedError, match=rf"{name}: memory_format=tinygrad_cnn.{fmt.name} is not supported.*NCHW"):
                make(memory_format=fmt)
    else:
        with pytest.raises(TypeError):  # PyTorch's factories without memory_format refuse it too
            make(memory_format=tg.contiguous_format)


def test_tensor_pin_memory_and_to_contiguous_memory_format():
    assert tg.tensor([1.0], pin_memory=False).tolist() == [1.0]
    with pytest.raises(NotImplementedError, match="tensor: pin_memory=True is not supported"):
        tg.tensor([1.0], pin_memory=True)
    x = tg.ones(3, 2, requires_grad=True).t()
    assert not x.data.flags.c_contiguous
    assert x.to(memory_format=tg.preserve_format) is x and x.to(memory_format=tg.contiguous_format) is x
    for y in (x.to(tg.float64, memory_format=tg.contiguous_format), x.to(copy=True, memory_format=tg.contiguous_format)):
        assert y.data.flags.c_contiguous and y.tolist() == x.tolist() and y.requires_grad
    assert x.contiguous(memory_format=tg.contiguous_format).data.flags.c_contiguous
    with pytest.raises(NotImplementedError, match="to: memory_format=tinygrad_cnn.channels_last is not supported"):
        x.to(tg.float64, memory_format=tg.channels_last)
    with pytest.raises(NotImplementedError, match="contiguous: memory_format=tinygrad_cnn.preserve_format is not supported"):
        x.contiguous(memory_format=tg.preserve_format)  # PyTorch refuses preserve_format here too
    if torch is not None:
        tx = torch.ones(3, 2).t()
        assert tx.to(memory_format=torch.contiguous_format) is tx  # only a copy takes the format
        assert tx.to(torch.float64, memory_format=torch.contiguous_format).is_contiguous()
        with pytest.raises(RuntimeError):
            tx.contiguous(memory_format=torch.preserve_format)

def test_generators_and_seeds_reproduce():
    g1, g2 = tg.Generator().manual_seed(3), tg.Generator().manual_seed(3)
    np.testing.assert_array_equal(tg.rand(4, generator=g1).numpy(), tg.rand(4, generator=g2).numpy())
    np.testing.assert_array_equal(tg.randn(4, seed=5).numpy(), tg.randn(4, generator=5).numpy())
    tg.manual_seed(0)
    a = tg.randn(3)
    tg.manual_seed(0)
    np.testing.assert_array_equal(a.numpy(), tg.randn(3).numpy())


# ---- methods and attributes ----------------------------------------------------------------------
def test_size_dim_numel_device():
    x = tg.zeros(2, 3, 4)
    assert x.size() == (2, 3, 4) and x.size(1) == 3 and x.size(-1) == 4
    assert x.dim() == x.ndim == 3 and x.numel() == 24 and len(x) == 2
    with pytest.raises(IndexError, match="size: dim 3 is out of range"):
        x.size(3)
    with pytest.raises(IndexError, match=r"size: dim -4 is out of range .* \[-3, 2\]"):
        x.size(-4)
    with pytest.raises(TypeError, match="size: dim must be an int"):
        x.size(1.0)
    # size is PyTorch's method, never numpy's element-count attribute
    assert callable(x.size) and not isinstance(x.size, int)
    s = x.size()
    assert isinstance(s, tg.Size) and isinstance(s, tuple) and s.numel() == 24 and s[1:] == (3, 4)
    assert x.size(dim=0) == 2 and tg.zeros(()).size() == () and tg.zeros(()).numel() == 1
    assert x.device == "cpu" and str(x.device) == "cpu" and x.device == tg.device("cpu")
    assert x.cpu() is x and x.to("cpu") is x and x.to(tg.device("cpu")) is x
    assert x.to("cpu", tg.float64).dtype == tg.float64 and x.to(device="cpu", dtype=tg.int64).dtype == tg.int64
    assert x.to(tg.zeros(1, dtype=tg.float16)).dtype == tg.float16
    for bad in ("cuda", "cuda:0", "mps"):
        with pytest.raises(RuntimeError, match="CPU only"):
            x.to(bad)
    with pytest.raises(RuntimeError, match="CPU only"):
        x.cuda()
    with pytest.raises(RuntimeError, match="CPU only"):
        tg.zeros(2, device="cuda")


def test_casts_are_differentiable_between_floats():
    x = tg.tensor([1.5, -2.0], dtype=tg.float64, requires_grad=True)
    for name, dt in (
        ("float", tg.float32),
        ("double", tg.float64),
        ("half", tg.float16),
        ("long", tg.int64),
        ("int", tg.int32),
        ("bool", tg.bool),
    ):
        assert getattr(x, name)().dtype == dt
    assert x.long().tolist() == [1, -2] and not x.long().requires_grad
    x.float().sum().backward()
    assert x.grad.dtype == tg.float64 and x.grad.tolist() == [1.0, 1.0]
    assert x.type() == "tinygrad_cnn.DoubleTensor"


def test_clone_detach_contiguous():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not np.shares_memory(c.numpy(), x.numpy())
    (c * 2).sum().backward()
    assert x.grad.tolist() == [[2.0, 2.0], [2.0, 2.0]]
    d = x.detach()
    assert not d.requires_grad and np.shares_memory(d.numpy(), x.numpy())
    t = x.t()
    assert not t.numpy().flags.c_contiguous and t.contiguous().numpy().flags.c_contiguous and x.contiguous() is x


def test_python_protocol():
    x = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    assert float(x[1, 0]) == 3.0 and int(x[1, 1]) == 4 and bool(x[0, 0]) and not bool(tg.tensor(0.0))
    assert abs(-x).tolist() == x.tolist()
    rows = list(x)
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.0]] and x[0, 1].item() == 2.0 and isinstance(x.numpy(), np.ndarray)
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(x)
    with pytest.raises(ValueError, match="one element"):
        float(x)
    with pytest.raises(TypeError, match="0-d"):
        iter(tg.tensor(1.0))


def test_numpy_aliases_still_work():
    a = A
    x = tg.tensor(a)
    np.testing.assert_allclose(x.sum(axis=1, keepdims=True).numpy(), a.sum(axis=1, keepdims=True))
    np.testing.assert_allclose(x.amax(axis=0).numpy(), a.max(axis=0))
    np.testing.assert_allclose(x.var(axis=1, ddof=0).numpy(), a.var(axis=1))
    np.testing.assert_allclose(x.var(axis=1).numpy(), a.var(axis=1, ddof=1))  # PyTorch's default correction=1
    np.testing.assert_allclose(x.std(axis=0, ddof=1).numpy(), a.std(axis=0, ddof=1))
    assert tg.cat([x, x], axis=1).shape == (3, 8) and x.unsqueeze(axis=0).shape == (1, 3, 4)
    with pytest.raises(TypeError, match="both dim"):
        x.sum(0, axis=1)


def test_max_with_dim_is_a_named_tuple_routing_the_gradient_to_the_index():
    x = tg.tensor([[1.0, 3.0, 3.0]], dtype=tg.float64, requires_grad=True)
    values, indices = x.max(1)
    r = x.max(dim=1)
    assert r.values.tolist() == [3.0] and r.indices.tolist() == [1] and indices.dtype == tg.int64
    values.sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0, 0.0]]  # the indexed element only
    x.grad = None
    x.max().backward()
    assert x.grad.tolist() == [[0.0, 0.5, 0.5]]  # the whole-tensor max splits ties
    assert tg.max(x, tg.zeros(1, 3, dtype=tg.float64)).shape == (1, 3)


def test_error_messages_name_the_problem():
    x = tg.zeros(2, 3)
    with pytest.raises(ValueError, match=r"gather: index of shape \(3,\)"):
        x.gather(1, tg.tensor([0, 1, 2]))
    with pytest.raises(IndexError, match=r"gather: index values must lie in \[0, 3\)"):
        x.gather(1, tg.tensor([[5]]))
    with pytest.raises(TypeError, match="integer tensor"):
        x.gather(1, tg.tensor([[0.0]]))
    with pytest.raises(ValueError, match="split: sizes"):
        x.split([1, 1], 1)
    with pytest.raises(ValueError, match="topk: k=4"):
        x.topk(4)
    with pytest.raises(NotImplementedError, match="ellipsis"):
        tg.einsum("...ij->...ji", x)
    with pytest.raises(ValueError, match="label 'j' has size 3 and 2"):
        tg.einsum("ij,jk->ik", x, x)
    with pytest.raises(TypeError, match="softmax: input must be floating point"):
        tg.softmax(tg.tensor([1, 2]), dim=0)
    with pytest.raises(ValueError, match="repeat: needs at least 2"):
        x.repeat(2)
    with pytest.raises(ValueError, match="unflatten"):
        x.unflatten(1, (2, 2))


# ---- in-place operators and writes ---------------------------------------------------------------
def test_manual_sgd_step_updates_in_place_and_keeps_grad():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    data = w.numpy()
    (w * w).sum().backward()
    version = w._version
    with tg.no_grad():
        w -= 0.1 * w.grad
    assert w.numpy() is data and w.requires_grad and w.is_leaf and w.grad is not None
    np.testing.assert_allclose(w.numpy(), [0.8, 1.6], rtol=1e-6)
    assert w._version == version + 1
    with tg.no_grad():
        w += 1
        w *= 2
        w /= 4
    np.testing.assert_allclose(w.numpy(), [0.9, 1.3], rtol=1e-6)


def test_in_place_on_leaf_requiring_grad_is_refused_as_in_pytorch():
    w = tg.tensor([1.0, 2.0], requires_grad=True)
    for op in (lambda: w.__iadd__(1.0), lambda: w.__imul__(2.0), lambda: w.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
            op()
    if torch is not None:
        tw = torch.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place operation"):
            tw += 1.0


def test_in_place_write_is_caught_by_the_version_check():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    x = a * 1.0
    x = x.detach()  # a plain tensor, saved below
    y = (a * x).sum()
    x += 1  # in place: the saved x changed
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


def test_augmented_assignment_on_a_non_leaf_stays_differentiable():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    h = a * 2
    h += a  # rebinds to h + a
    h.sum().backward()
    assert a.grad.tolist() == [3.0, 3.0]


def test_setitem_writes_in_place_like_pytorch():
    x = tg.tensor([[1.0, -2.0], [-3.0, 4.0]])
    v = x._version
    x[x < 0] = 0.0
    x[0, 1] = 7.0
    x[1] = tg.tensor([5.0, 6.0])
    assert x.tolist() == [[1.0, 7.0], [5.0, 6.0]] and x._version == v + 3
    if torch is not None:
        t = torch.tensor([[1.0, -2.0], [-3.0, 4.0]])
        t[t < 0] = 0.0
        t[0, 1] = 7.0
        t[1] = torch.tensor([5.0, 6.0])
        assert t.tolist() == x.tolist()
    with pytest.raises(IndexError, match="setitem"):
        x[5] = 1.0
    i = tg.tensor([1, 2])
    with pytest.raises(RuntimeError, match="can't be cast"):
        i += 0.5


# ---- grad mode and top level -------------------------------------------------------------------
def test_grad_mode_functions():
    x = tg.ones(2, requires_grad=True)
    assert tg.is_grad_enabled()
    with tg.inference_mode():
        assert not tg.is_grad_enabled() and not (x * 2).requires_grad
    assert tg.is_grad_enabled()

    @tg.inference_mode()
    def f(t):
        return t * 2

    assert not f(x).requires_grad and tg.is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert tg.is_grad_enabled()
    tg.set_grad_enabled(False)
    try:
        assert not tg.is_grad_enabled()
    finally:
        tg.set_grad_enabled(True)
    with tg.no_grad():
        assert not (x * 2).requires_grad
    with tg.inference_mode(False):
        assert tg.is_grad_enabled()


def test_top_level_names_exist_and_run(tmp_path):
    x = tg.tensor(A)
    assert tg.allclose(x, x + 1e-9) and not tg.allclose(x, x + 1)
    assert tg.exp(x).shape == tg.log(x.abs()).shape == tg.sqrt(x.abs()).shape == (3, 4)
    assert tg.sum(x).shape == () and tg.mean(x, 1).shape == (3,) and tg.argmax(x).shape == ()
    assert tg.where(x > 0, x, 0.0).shape == (3, 4) and tg.flatten(x).shape == (12,)
    path = tmp_path / "x.npz"
    tg.save({"x": x}, path)
    np.testing.assert_array_equal(np.asarray(tg.load(path)["x"]), x.numpy())


def test_numpy_axis_is_an_alias_of_dim_with_pytorch_semantics():
    x = tg.tensor([[1.0, 5.0, 3.0], [4.0, 2.0, 6.0]])
    assert x.var(axis=1).tolist() == x.var(dim=1).tolist() == [4.0, 4.0]  # correction 1 either way
    assert x.var(axis=1, ddof=0).tolist() == x.var(1, correction=0).tolist()
    values, indices = x.max(axis=1)
    assert values.tolist() == [5.0, 6.0] and indices.tolist() == [1, 2]
    assert x.min(axis=0).indices.tolist() == [0, 1, 0]


def test_max_over_several_dims_points_to_amax():
    x = tg.tensor([[1.0, 5.0], [4.0, 2.0]])
    with pytest.raises(TypeError, match=r"max: dim must be one int .* amax\(x, dim=\(0, 1\)\)"):
        x.max(dim=(0, 1))
    assert x.amax((0, 1)).item() == 5.0


def test_bitwise_operators_on_masks():
    x = tg.tensor([-1.0, 0.5, 2.0])
    np.testing.assert_array_equal(((x > 0) & (x < 1)).numpy(), [False, True, False])
    np.testing.assert_array_equal(((x < 0) | (x > 1)).numpy(), [True, False, True])
    np.testing.assert_array_equal(((x > 0) ^ (x > 1)).numpy(), [False, True, False])
    np.testing.assert_array_equal((~(x > 0)).numpy(), [True, False, False])
    np.testing.assert_array_equal((x > 0).logical_not().numpy(), [True, False, False])
    np.testing.assert_array_equal((tg.tensor([6, 3]) & 5).numpy(), [4, 1])
    assert ((x > 0) & True).dtype == tg.bool
    with pytest.raises(TypeError, match=r"&: defined for bool and integer tensors only, got dtype float32"):
        _ = x & (x > 0)
    with pytest.raises(TypeError, match=r"~: defined for bool and integer tensors only"):
        _ = ~x


def test_composed_methods_gradcheck_and_errors():
    rng = np.random.default_rng(3)
    x = tg.tensor(rng.standard_normal((3, 4)) + 3.0, requires_grad=True)
    b = tg.tensor(rng.uniform(0.5, 2.0, 4), requires_grad=True)
    fns = [
        lambda x: x.flip(0) * x.flip((0, 1)),
        lambda x: x.tril() + x.triu(1) * 2 + x.tril(-1),
        lambda x: x.narrow(1, 1, 2).square()[1:] + x.narrow(0, -2, 2)[:, :2],
        lambda x: x.unbind(1)[2] * x.unbind()[0][:3],
        lambda x: x.log2() + x.log10() + x.sub(x, alpha=0.5).add(x, alpha=2),
        lambda x: x[0].dot(x[1]) + x.mm(x.t()).sum(),
        lambda x: x % 1.5,
        lambda x: (x.floor() + x.round() + x.ceil() + x.trunc()) * x,
    ]
    for f in fns:
        assert tg.gradcheck(f, (x,))
    assert tg.gradcheck(lambda x, b: x % b, (x, b))
    assert (x // 2).requires_grad is False  # piecewise constant: a graph constant
    y = x.floor()
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), 0.0)
    with pytest.raises(ValueError, match=r"dot: expects two 1-D tensors of the same size, got shapes \(3, 4\)"):
        x.dot(x)
    with pytest.raises(ValueError, match="mm: expects two 2-D tensors"):
        tg.mm(x, x[0])
    with pytest.raises(ValueError, match="bmm: expects two 3-D tensors with the same batch size"):
        tg.bmm(x[None], tg.ones(2, 4, 3))
    for bad in (lambda: x % tg.ones(5), lambda: x // tg.ones(5), lambda: (x > 0) & tg.ones(5).bool()):
        with pytest.raises(ValueError, match=r"shapes \(3, 4\) and \(5,\) cannot be broadcast together"):
            bad()
    with pytest.raises(ValueError, match="randperm: n must be non-negative"):
        tg.randperm(-1)
    assert x.stride(-1) == 1 and sorted(tg.randperm(5, seed=0).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match=r"tril: input must have at least 2 dimensions, got shape \(4,\)"):
        x[0].tril()
    with pytest.raises(IndexError, match="narrow: start 3 and length 2 do not fit dim 0 of size 3"):
        x.narrow(0, 3, 2)
    assert f"{tg.tensor(2.5):.2f}" == "2.50" and f"{x}" == repr(x)
    with pytest.raises(TypeError):
        f"{x:.2f}"
