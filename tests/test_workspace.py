"""The kernels' workspace: large buffers are lent and given back explicitly, and a buffer that a
graph still needs is never lent to another call; with glibc, freed memory is reused without
mapping its pages again."""
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn.kernels import workspace
from tinygrad_cnn.nn.functional import conv2d

BIG = (workspace.MIN_BYTES // 4 + 1024,)  # float32 elements just over the workspace's threshold


def address(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def empty_workspace():
    workspace.empty_cache()
    yield
    workspace.empty_cache()


def test_released_buffer_is_lent_again():
    lease = workspace.Lease(BIG, np.float32)
    first = address(lease.array)
    lease.release()
    assert lease.array is None
    assert workspace.free_bytes() >= BIG[0] * 4
    with workspace.Lease(BIG, np.float32) as again:
        assert address(again) == first
        assert workspace.free_bytes() == 0  # lent out, not free


def test_held_buffer_is_not_lent_twice():
    a = workspace.Lease(BIG, np.float32)
    b = workspace.Lease(BIG, np.float32)
    assert not np.shares_memory(a.array, b.array)
    a.release()
    a.release()  # a second release gives nothing back twice
    c = workspace.Lease(BIG, np.float32)
    d = workspace.Lease(BIG, np.float32)
    assert not np.shares_memory(c.array, d.array)
    assert not np.shares_memory(b.array, c.array) and not np.shares_memory(b.array, d.array)
    for lease in (b, c, d):
        lease.release()


def test_small_arrays_bypass_the_workspace():
    with workspace.Lease((10, 10), np.float64) as a:
        assert a.shape == (10, 10) and a.dtype == np.float64
    assert workspace.free_bytes() == 0


def test_free_buffers_are_capped(monkeypatch):
    monkeypatch.setattr(workspace, "MAX_FREE_BYTES", BIG[0] * 4 * 2)
    leases = [workspace.Lease(BIG, np.float32) for _ in range(4)]
    for lease in leases:
        lease.release()
    assert workspace.free_bytes() <= BIG[0] * 4 * 2


def big_conv_inputs(seed):
    # Columns of 576 x 7688 float32 (17.7 MB): over the workspace's threshold.
    rng = np.random.default_rng(seed)
    x = tg.tensor(rng.standard_normal((2, 64, 64, 64)).astype(np.float32))
    w = tg.tensor(rng.standard_normal((8, 64, 3, 3)).astype(np.float32), requires_grad=True)
    return x, w


def reference_weight_grad(x, w, g):
    w2 = tg.tensor(w.data.copy(), requires_grad=True)
    conv2d(tg.tensor(x.data.copy()), w2).backward(g)
    return w2.grad.data


def test_kept_columns_return_after_backward_and_not_before():
    x, w = big_conv_inputs(0)
    y = conv2d(x, w)
    assert workspace.free_bytes() == 0  # the forward kept its columns for the weight gradient
    y.sum().backward()
    assert workspace.free_bytes() >= 576 * 7688 * 4


def test_graph_alive_keeps_its_columns_while_others_reuse_memory():
    # Two graphs alive; the first's backward returns its columns, a third conv borrows them and
    # overwrites them; the second graph's weight gradient must be unaffected.
    xa, wa = big_conv_inputs(1)
    xb, wb = big_conv_inputs(2)
    ga = np.ones((2, 8, 62, 62), np.float32)
    gb = np.random.default_rng(3).standard_normal((2, 8, 62, 62)).astype(np.float32)
    ya, yb = conv2d(xa, wa), conv2d(xb, wb)
    ya.backward(tg.tensor(ga))
    xc, wc = big_conv_inputs(4)
    with tg.no_grad():
        conv2d(xc * 3.0, wc)  # unfolds into the buffer the first graph gave back
    yb.backward(tg.tensor(gb))
    np.testing.assert_array_equal(wb.grad.data, reference_weight_grad(xb, wb, tg.tensor(gb)))


def test_retained_graph_keeps_its_columns():
    x, w = big_conv_inputs(5)
    y = conv2d(x, w)
    y.sum().backward(retain_graph=True)
    first = w.grad.data.copy()
    assert workspace.free_bytes() == 0
    with tg.no_grad():
        conv2d(x * -1.0, w)  # would take the columns' buffer, were it free
    w.grad = None
    y.sum().backward()
    np.testing.assert_array_equal(w.grad.data, first)


def test_on_release_runs_once_with_the_saved_values():
    calls = []

    class Double(tg.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.on_release(lambda: calls.append("released"))
            return x * 2

        @staticmethod
        def backward(ctx, g):
            return g * 2

    x = tg.tensor([1.0, 2.0], requires_grad=True)
    y = Double.apply(x).sum()
    y.backward(retain_graph=True)
    assert calls == []
    y.backward()
    assert calls == ["released"]
    y.grad_fn.release()  # already released: the callback does not run again
    assert calls == ["released"]


# A step that writes 32 MiB in 2 MiB arrays and frees them all at once, as a training step frees
# its activations: prints the page faults of ten such steps after the first.
STEPS = """
import resource, numpy as np, tinygrad_cnn
def step():
    arrays = [np.ones(1 << 19, np.float32) for _ in range(16)]
    del arrays
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="retain_freed_memory sets glibc's thresholds only")
def test_import_keeps_freed_memory_for_the_next_step_unless_the_environment_says_0():
    def faults(setting: str) -> int:
        env = dict(os.environ, **{workspace.RETAIN_ENV_VAR: setting})
        return int(subprocess.run([sys.executable, "-c", STEPS], env=env, capture_output=True, text=True, check=True).stdout)

    kept, returned = faults("1"), faults("0")
    pages = 10 * 32 * 2**20 // 4096
    assert returned >= pages // 2, returned  # glibc's defaults hand the heap top back: the pages fault again
    assert kept < pages // 100, kept
