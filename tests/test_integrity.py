"""The autograd's guarantees: a gradient is right or an error. Saved inputs and outputs are
version-checked, in-place writes never go through shared memory, a consumed graph cannot be
run again, integer results carry no gradient, dtypes promote as in PyTorch, modes are per
thread, tensor() copies, and tensor hooks see every gradient."""
from __future__ import annotations

import threading

import numpy as np
import pytest

import tinygrad_cnn as tg
import tinygrad_cnn.nn as nn
import tinygrad_cnn.nn.functional as F
import tinygrad_cnn.optim as optim
from tinygrad_cnn import Function
from tinygrad_cnn.autograd import is_grad_enabled
from tinygrad_cnn.autograd.function import result_type

try:
    import torch
except ImportError:  # the PyTorch comparisons are skipped without it
    torch = None


# ---- saved outputs ---------------------------------------------------------------------------
@pytest.mark.parametrize("op", ["exp", "sigmoid", "tanh", "sqrt"])
def test_modified_saved_output_raises(op):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = getattr(x, op)()
    z = y.sum()
    with tg.no_grad():
        y.zero_()
    with pytest.raises(RuntimeError, match=r"output 0 of .* modified in place \(version 0 when saved, now 1\)"):
        z.backward()


def test_modified_saved_output_through_a_view_raises():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = y.sum()
    with tg.no_grad():
        y.detach()[0:1].fill_(5.0)  # a view of y shares its version counter
    with pytest.raises(RuntimeError, match="Exp"):
        z.backward()


class _SavesOutput(Function):
    @staticmethod
    def forward(ctx, x):
        y = x * 3
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, g):
        (y,) = ctx.saved_tensors
        return g * y / y * 3


def test_users_function_saving_its_output_is_checked():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = _SavesOutput.apply(x)
    loss = y.sum()
    with tg.no_grad():
        y.mul_(0.0)
    with pytest.raises(RuntimeError, match="_SavesOutput"):
        loss.backward()


def test_unmodified_saved_output_still_works():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.exp().sum().backward()
    np.testing.assert_allclose(x.grad.data, np.exp([1.0, 2.0]), rtol=1e-6)


# ---- aliasing writes ---------------------------------------------------------------------------
def test_grad_owns_its_memory():
    x = tg.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x.sum().backward()  # the gradient of sum is a broadcast view of one number
    x.grad.add_(tg.tensor([1.0, 2.0, 3.0]))
    assert x.grad.tolist() == [2.0, 3.0, 4.0]


def test_two_leaves_never_share_a_grad_array():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward()  # Add passes the same gradient to both
    with tg.no_grad():
        a.grad.mul_(10.0)
    assert b.grad.tolist() == [1.0, 1.0]


def test_create_graph_grads_of_two_leaves_are_separate_tensors():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    (a + b).sum().backward(create_graph=True)
    with tg.no_grad():
        a.grad.mul_(10.0)
    assert b.grad.tolist() == [1.0, 1.0]


def test_grad_does_not_alias_the_seed_gradient():
    x = tg.tensor([[1.0, 2.0]], requires_grad=True)
    seed = np.array([5.0, 6.0], dtype=np.float32)
    x.reshape(2).backward(seed)
    seed[:] = 0.0
    assert x.grad.tolist() == [[5.0, 6.0]]


class PassThrough(tg.autograd.Function):
    """Promises new gradients, and keeps the promise by returning its incoming gradient unchanged."""

    new_gradients = True

    @staticmethod
    def forward(ctx, x):
        return x * 1.0

    @staticmethod
    def backward(ctx, g):
        return g


class SameForBoth(tg.autograd.Function):
    """Promises new gradients, and returns one new array for both inputs."""

    new_gradients = True

    @staticmethod
    def forward(ctx, a, b):
        return a + b

    @staticmethod
    def backward(ctx, g):
        shared = g * 1.0
        return shared, shared


def test_grad_taken_without_copy_still_never_aliases_the_seed():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    seed = np.array([5.0, 6.0], dtype=np.float32)
    PassThrough.apply(x).backward(seed)
    seed[:] = 0.0
    assert x.grad.tolist() == [5.0, 6.0]


def test_grad_taken_without_copy_goes_to_one_leaf_only():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor([3.0, 4.0], requires_grad=True)
    SameForBoth.apply(a, b).sum().backward()
    with tg.no_grad():
        a.grad.mul_(10.0)
    assert b.grad.tolist() == [1.0, 1.0]


def test_grad_is_copied_when_a_leaf_hook_saw_it():
    seen = []
    x = tg.tensor(np.ones((1, 1, 4, 4), np.float32), requires_grad=True)
    x.register_hook(seen.append)
    tg.nn.functional.max_pool2d(x, 2).sum().backward()
    with tg.no_grad():
        x.grad.mul_(0.0)
    assert seen[0].data.sum() == 4.0  # what the hook kept is unchanged


@pytest.mark.parametrize("op", ["conv", "pool"])
def test_new_input_gradient_of_a_conv_or_pool_belongs_to_the_grad(op):
    # The conv and pool backward kernels make new arrays, which .grad takes as they are; a second
    # backward accumulates into a new array, leaving the first one as it was.
    x = tg.tensor(np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32), requires_grad=True)
    w = tg.tensor(np.ones((4, 3, 3, 3), np.float32))

    def f():
        return tg.nn.functional.conv2d(x, w) if op == "conv" else tg.nn.functional.max_pool2d(x, 2)

    f().sum().backward()
    first = x.grad
    kept = first.data.copy()
    f().sum().backward()
    np.testing.assert_array_equal(first.data, kept)
    np.testing.assert_allclose(x.grad.data, 2 * kept)


@pytest.mark.parametrize("write", [lambda t: t.add_(1.0), lambda t: t.mul_(2.0), lambda t: t.fill_(0.0), lambda t: t.zero_()])
def test_inplace_into_expanded_tensor_raises(write):
    a = tg.tensor([1.0, 2.0, 3.0])
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor"):
        write(a.expand(2, 3))
    assert a.tolist() == [1.0, 2.0, 3.0]


def test_inplace_into_an_ordinary_view_still_writes_through():
    a = tg.tensor([[1.0, 2.0], [3.0, 4.0]])
    a[0].add_(10.0)
    assert a.tolist() == [[11.0, 12.0], [3.0, 4.0]]


# ---- consumed graphs ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda x: (x * 2.0).sum(), lambda x: x.sum(), lambda x: (x + x).sum()])
def test_second_backward_without_retain_graph_raises(make):
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = make(x)
    y.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_second_backward_with_retain_graph_accumulates():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.0).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert x.grad.tolist() == [4.0, 4.0]


def test_grad_consumes_the_graph_too():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = (x * 2.0).sum()
    tg.autograd.grad(y, x)
    with pytest.raises(RuntimeError, match="second time"):
        tg.autograd.grad(y, x)


# ---- casts and promotion -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["int64", "int32", "bool", "uint8"])
def test_cast_to_integer_or_bool_does_not_require_grad(dtype):
    x = tg.tensor([1.5, 2.5], requires_grad=True)
    y = x.astype(dtype)
    assert not y.requires_grad and y.grad_fn is None
    z = (x * y.astype("float32")).sum()  # the cast path carries no gradient
    z.backward()
    assert x.grad.tolist() == y.astype("float32").tolist()


def test_single_output_marked_non_differentiable_carries_no_gradient():
    class Indices(Function):
        @staticmethod
        def forward(ctx, x):
            out = x * 0 + 1
            ctx.mark_non_differentiable(out)
            return out

        @staticmethod
        def backward(ctx, g):
            raise AssertionError("never called")

    y = Indices.apply(tg.tensor([1.0], requires_grad=True))
    assert not y.requires_grad


def _arr(dtype, ndim):
    return np.ones((2,) * ndim, dtype=dtype)


DTYPES = ["bool", "uint8", "int8", "int32", "int64", "float16", "float32", "float64"]


@pytest.mark.skipif(torch is None, reason="PyTorch not installed")
@pytest.mark.parametrize("da", DTYPES)
@pytest.mark.parametrize("db", DTYPES)
@pytest.mark.parametrize("dims", [(1, 1), (1, 0), (0, 1), (0, 0)])
def test_result_type_matches_pytorch(da, db, dims):
    a, b = _arr(da, dims[0]), _arr(db, dims[1])
    expected = (torch.from_numpy(a) + torch.from_numpy(b)).numpy().dtype
    assert result_type(a, b) == expected
    assert (tg.from_numpy(a) + tg.from_numpy(b)).dtype == expected


def test_float32_with_int64_tensor_stays_float32():
    a = tg.tensor([1.0, 2.0], requires_grad=True)
    b = tg.tensor(np.array([3, 4]))
    for y in (a + b, a * b, b - a, a / b, b * a):
        assert y.dtype == np.float32
    (a * b).sum().backward()
    assert a.grad.dtype == np.float32 and a.grad.tolist() == [3.0, 4.0]


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_python_scalars_never_widen(dtype):
    x = tg.tensor(np.ones(2, dtype))
    for y in (x + 2, x * 2.5, x - 1.5, 2.0 * x, x / 3.0, 1.0 - x, x**2.0):
        assert y.dtype == np.dtype(dtype)


def test_integer_tensor_with_float_scalar_gives_float32():
    i = tg.tensor(np.array([1, 2]))
    assert (i * 2.5).dtype == np.float32 and (i + 0.5).dtype == np.float32
    assert (i * 2).dtype == np.int64 and (i**2).dtype == np.int64
    assert (i / 2).dtype == np.float32 and (i / i).dtype == np.float32 and (i**2.5).dtype == np.float32
    assert (i / 2).tolist() == [0.5, 1.0]
    assert (tg.tensor(np.array([True, False])) + 1).dtype == np.int64


def test_mixed_float_widths_promote_and_cast_the_gradient_back():
    a = tg.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    b = tg.tensor(np.array([3.0, 4.0], np.float64), requires_grad=True)
    y = a * b
    assert y.dtype == np.float64
    (g,) = tg.autograd.grad(y.sum(), a, create_graph=True)
    assert g.dtype == np.float32 and g.tolist() == [3.0, 4.0]
    (gg,) = tg.autograd.grad(g.sum(), b)  # the promotion's cast is in the graph: higher order works
    assert gg.tolist() == [1.0, 1.0]


# ---- per-thread modes ------------------------------------------------------------------------------
def _train(seed: int, steps: int) -> list:
    rng = np.random.default_rng(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    for p in model.parameters():
        p.data[...] = rng.standard_normal(p.shape).astype(np.float32) * 0.1
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = tg.tensor(rng.standard_normal((8, 1, 8, 8)).astype(np.float32))
    y = tg.tensor(rng.integers(0, 3, 8))
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses + [p.data.copy() for p in model.parameters()]


def _evaluate(stop: threading.Event, seen: list) -> None:
    w = tg.tensor(np.ones((3, 3), np.float32), requires_grad=True)
    while not stop.is_set():
        with tg.no_grad():
            seen.append((w @ w).requires_grad)


def test_training_threads_and_an_evaluating_thread_run_at_once():
    serial = [_train(seed, 15) for seed in (1, 2)]
    results: dict = {}
    errors: list = []
    stop, seen = threading.Event(), []

    def train(seed: int) -> None:
        try:
            results[seed] = _train(seed, 15)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    evaluator = threading.Thread(target=_evaluate, args=(stop, seen))
    evaluator.start()
    trainers = [threading.Thread(target=train, args=(s,)) for s in (1, 2)]
    for t in trainers:
        t.start()
    for t in trainers:
        t.join(timeout=60)
    stop.set()
    evaluator.join(timeout=10)
    assert not errors, errors
    for s, expected in zip((1, 2), serial):
        for got, want in zip(results[s], expected):
            np.testing.assert_array_equal(got, want)
    assert seen and not any(seen)  # the evaluator's no_grad held in its own thread
    assert is_grad_enabled()


def test_a_new_thread_starts_with_grad_enabled():
    seen = []
    with tg.no_grad():
        t = threading.Thread(target=lambda: seen.append(is_grad_enabled()))
        t.start()
        t.join()
        assert not is_grad_enabled()
    assert seen == [True]


def test_set_grad_enabled_as_a_plain_call():
    try:
        tg.set_grad_enabled(False)
        assert not is_grad_enabled()
        assert not (tg.tensor([1.0], requires_grad=True) * 2).requires_grad
    finally:
        tg.set_grad_enabled(True)
    assert is_grad_enabled()
    with tg.set_grad_enabled(False):
        assert not is_grad_enabled()
    assert is_grad_enabled()

    @tg.set_grad_enabled(False)
    def f():
        return is_grad_enabled()

    assert is_grad_enabled() and f() is False and is_grad_enabled()


# ---- tensor() copies, from_numpy shares ---------------------------------------------------------------
def test_tensor_copies_its_data():
    a = np.array([1.0, 2.0], np.float32)
    t = tg.tensor(a, requires_grad=True)
    y = (t * t).sum()  # t is saved for backward
    a[0] = 5.0  # the caller's array stays theirs: writable, and not linked to t
    assert t.tolist() == [1.0, 2.0]
    y.backward()
    assert t.grad.tolist() == [2.0, 4.0]
    assert not np.shares_memory(tg.tensor(t).data, t.data)


def test_from_numpy_shares_memory():
    a = np.zeros(3, np.float64)
    t = tg.from_numpy(a)
    a[0] = 1.0
    assert t.tolist() == [1.0, 0.0, 0.0] and t.dtype == np.float64
    with pytest.raises(TypeError, match="from_numpy: expected a numpy.ndarray, got list"):
        tg.from_numpy([1.0])


# ---- tensor hooks ---------------------------------------------------------------------------------------
def test_leaf_hook_replaces_the_gradient_and_is_removable():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    h = x.register_hook(lambda g: g * 2)
    (x * x).sum().backward()
    assert x.grad.tolist() == [4.0, 8.0]
    h.remove()
    x.grad = None
    (x * x).sum().backward()
    assert x.grad.tolist() == [2.0, 4.0]


def test_non_leaf_hooks_run_in_order_before_retain_grad():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.retain_grad()
    seen = []
    y.register_hook(lambda g: seen.append(g.tolist()))
    with y.register_hook(lambda g: g * 10):
        (y * y).sum().backward()
    assert seen == [[6.0, 12.0]]
    assert y.grad.tolist() == [60.0, 120.0] and y.retains_grad
    assert x.grad.tolist() == [180.0, 360.0]


def test_hooks_apply_to_grad_as_well():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    x.register_hook(lambda g: g + 1)
    (g,) = tg.autograd.grad((x * x).sum(), x)
    assert g.tolist() == [3.0, 5.0]


def test_register_hook_on_a_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        tg.tensor([1.0]).register_hook(lambda g: g)


def test_clone_is_a_differentiable_copy():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert not np.shares_memory(c.data, x.data)
    (c * 2.0).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0]
    e = tg.tensor([1.0, 2.0]).expand(2, 2).clone()
    e.add_(1.0)  # a clone of an expanded tensor owns each element
    assert e.tolist() == [[2.0, 3.0], [2.0, 3.0]]
