"""The conv ops' buffers never depend on interpreter details: results are the same when
``sys.getrefcount`` answers differently (CPython 3.14 passes fast locals to calls as borrowed
references, so a count is one lower there than on 3.11-3.13), and no array an op hands out or
keeps for backward shares memory with another live one."""
import sys

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.models import LeNet, SimpleConvNet
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.optim import Adam


def _one_less(monkeypatch):
    # Through this lambda the real count includes one reference more than a direct call would
    # see (the lambda's parameter): minus one answers as CPython 3.11-3.13 would, minus two as
    # 3.14 does, where the call's argument is a borrowed reference and does not count.
    real = sys.getrefcount
    monkeypatch.setattr(sys, "getrefcount", lambda o: real(o) - 2)


def _train(name, steps=3):
    model = SimpleConvNet(seed=0) if name == "SimpleConvNet" else LeNet(input_size=32, activation="relu", pooling="max", seed=0)
    hw = 28 if name == "SimpleConvNet" else 32
    rng = np.random.default_rng(1)
    x = tg.Tensor(rng.random((100, 1, hw, hw), dtype=np.float32))
    y = rng.integers(0, 10, 100).astype(np.int64)
    opt = Adam(model.parameters(), lr=0.001)
    losses, grads = [], []
    for _ in range(steps):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        losses.append(loss.data.copy())
        grads.append([p.grad.data.copy() for p in model.parameters()])
        opt.step()
    return losses, grads


@pytest.mark.parametrize("name", ["SimpleConvNet", "LeNet"])
def test_training_does_not_depend_on_reference_counts(monkeypatch, name):
    losses, grads = _train(name)
    with monkeypatch.context() as m:
        _one_less(m)
        sim_losses, sim_grads = _train(name)
    for a, b in zip(losses, sim_losses):
        assert np.array_equal(a, b)
    for step, (ga, gb) in enumerate(zip(grads, sim_grads)):
        for i, (a, b) in enumerate(zip(ga, gb)):
            assert np.array_equal(a, b), f"step {step}, parameter {i}"


@pytest.mark.parametrize("simulated", [False, True], ids=["normal", "one-less-refcount"])
@pytest.mark.parametrize("grad", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize(
    "xs, ws",
    [((100, 1, 28, 28), (30, 1, 5, 5)), ((100, 6, 14, 14), (16, 6, 5, 5))],
    ids=["im2col", "rows"],
)
def test_no_live_array_shares_memory_with_another(monkeypatch, simulated, grad, xs, ws):
    # Several same-shaped convs kept alive (with their graphs when training): their outputs, the
    # arrays their nodes keep for backward and the gradients must all be distinct memory.
    if simulated:
        _one_less(monkeypatch)
    rng = np.random.default_rng(0)
    live = []
    for _ in range(4):
        x = tg.Tensor(rng.standard_normal(xs).astype(np.float32), requires_grad=grad)
        w = tg.Tensor(rng.standard_normal(ws).astype(np.float32), requires_grad=grad)
        y = F.conv2d(x, w)
        live.append((x, w, y, y.data.copy()))
    arrays = []
    for x, w, y, _ in live:
        arrays.append(y.data)
        if grad:
            saved = [getattr(a, "array", a) for a in y.grad_fn.saved_arrays]  # an Unfolded input holds its buffer in .array
            arrays += [a for a in saved if isinstance(a, np.ndarray) and a is not x.data and a is not w.data]
    for i, a in enumerate(arrays):
        for b in arrays[i + 1 :]:
            assert not np.shares_memory(a, b)
    for _, _, y, expect in live:
        assert np.array_equal(y.data, expect)  # no later call wrote into an earlier output
    if not grad:
        return
    grads = []
    for x, w, y, _ in live:
        y.backward(tg.Tensor(np.ones(y.shape, np.float32)))
        grads += [w.grad.data, x.grad.data]
    for i, a in enumerate(grads):
        for b in grads[i + 1 :]:
            assert not np.shares_memory(a, b)
    for _, _, y, expect in live:
        assert np.array_equal(y.data, expect)


def _kernels():
    """Each internal kernel that returns a buffer it filled, as a callable of a seed."""
    from tinygrad_cnn.kernels.conv_rows import conv_rows, input_grad_rows, unfold_width, weight_grad_rows
    from tinygrad_cnn.kernels.geometry import Window
    from tinygrad_cnn.kernels.im2col import col2im_array, im2col_array, unfold_width_cn

    def data(seed, shape):
        return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)

    lenet2 = Window((5, 5), (1, 1), (0, 0), (1, 1), (10, 10))
    padded = Window((3, 3), (1, 1), (1, 1), (1, 1), (14, 14))
    wide = Window((5, 5), (1, 1), (0, 0), (1, 1), (24, 24))
    x2, w2, g2 = (100, 6, 14, 14), (16, 6, 5, 5), (100, 16, 10, 10)
    return {
        "im2col_array": lambda s: im2col_array(data(s, (100, 1, 28, 28)), wide),
        "im2col_array two-pass": lambda s: im2col_array(data(s, x2), lenet2),
        "unfold_width_cn": lambda s: unfold_width_cn(data(s, x2), lenet2),
        "unfold_width": lambda s: unfold_width(data(s, x2), lenet2),
        "col2im_array": lambda s: col2im_array(data(s, (6 * 9, 100 * 14 * 14)), x2, padded),
        "col2im_array unpadded": lambda s: col2im_array(data(s, (6 * 25, 100 * 10 * 10)), x2, lenet2),
        "conv_rows": lambda s: conv_rows(data(s, x2), data(s + 1, w2), data(s + 2, (16,)), lenet2)[:2],
        "input_grad_rows": lambda s: input_grad_rows(data(s, g2), data(s + 1, w2), lenet2, x2),
        "weight_grad_rows": lambda s: weight_grad_rows(data(s, x2), data(s + 1, g2), lenet2, bias=True),
    }


@pytest.mark.parametrize("simulated", [False, True], ids=["normal", "one-less-refcount"])
@pytest.mark.parametrize("kernel", list(_kernels()))
def test_kernels_never_return_memory_a_live_result_holds(monkeypatch, simulated, kernel):
    # The kernels' own callers keep exactly one reference to a result: the case where counting
    # references goes wrong first.
    if simulated:
        _one_less(monkeypatch)
    fn = _kernels()[kernel]
    results = [fn(seed) for seed in range(3)]
    flat = [a for r in results for a in (r if isinstance(r, tuple) else (r,))]
    copies = [a.copy() for a in flat]
    more = fn(3)
    for a, b in zip(flat, copies):
        assert np.array_equal(a, b)  # a later call wrote into nothing still alive
        for c in more if isinstance(more, tuple) else (more,):
            assert not np.shares_memory(a, c)
    for i, a in enumerate(flat):
        for b in flat[i + 1 :]:
            assert not np.shares_memory(a, b)
