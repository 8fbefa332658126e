"""The batch-chunked thread pool of the conv and pool kernels (kernels/parallel.py): forced on for small inputs, the
chunked paths must give the brute-force results and pass gradcheck, errors in a worker must
reach the caller, and the BLAS thread count must be restored."""
import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_conv import _conv_inputs, _kw, conv_configs, ref_conv2d, ref_conv_transpose2d
from test_pool import pool_configs, ref_avg_pool2d, ref_max_pool2d, tie_free

import tinygrad_cnn as tg
from tinygrad_cnn.kernels import parallel
from tinygrad_cnn.nn import functional as F


@pytest.fixture
def forced():
    """Every conv and pool big enough for two chunks takes the threaded path: convs in chunks of
    one image or more, pools in blocks of a few planes."""
    old = parallel.get_num_threads()
    parallel.set_num_threads(2)
    with parallel.thresholds(min_parallel_flops=1e-9, block_bytes=64):
        yield
    parallel.set_num_threads(old)


def test_chunks_cover_the_range_in_order():
    for n in range(1, 12):
        for parts in range(1, 6):
            got = parallel.chunks(n, parts)
            assert [i for a, b in got for i in range(a, b)] == list(range(n))
            assert len(got) == min(n, parts) and all(b > a for a, b in got)


def test_numpy_openblas_is_found():
    cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    if "openblas" not in cfg.get("name", "").lower():
        pytest.skip(f"numpy is built on {cfg.get('name')}, not OpenBLAS: the conv ops run serially")
    assert parallel.blas_libraries(), "numpy uses OpenBLAS but threadpoolctl did not find it"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is a setting
@given(conv_configs(max_hw=6), st.integers(0, 2**16))
def test_threaded_conv2d_matches_brute_force_and_gradchecks(forced, cfg, seed):
    cfg = dict(cfg, n=max(cfg["n"], 3))  # at least three images: chunks of one image and more
    x, w, b = _conv_inputs(cfg, seed)
    y = F.conv2d(tg.Tensor(x), tg.Tensor(w), None if b is None else tg.Tensor(b), **_kw(cfg))
    np.testing.assert_allclose(y.data, ref_conv2d(x, w, b, **_kw(cfg)), rtol=1e-10, atol=1e-10)
    args = [tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)]
    if b is not None:
        args.append(tg.Tensor(b, requires_grad=True))
    assert tg.gradcheck(lambda *a: F.conv2d(*a, **_kw(cfg)), args)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is a setting
@given(conv_configs(max_hw=4), st.integers(0, 2**16))
def test_threaded_conv2d_gradgradcheck(forced, cfg, seed):
    cfg = dict(cfg, n=max(cfg["n"], 2), bias=True)
    x, w, b = _conv_inputs(cfg, seed)
    args = [tg.Tensor(v, requires_grad=True) for v in (x, w, b)]
    assert tg.gradgradcheck(lambda *a: F.conv2d(*a, **_kw(cfg)), args)


def test_threaded_float32_matches_serial(forced, rng):
    x = rng.standard_normal((7, 3, 12, 12)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    g = rng.standard_normal((7, 5, 10, 10)).astype(np.float32)

    def run():
        X, W, B = (tg.Tensor(v, requires_grad=True) for v in (x, w, b))
        y = F.conv2d(X, W, B)
        y.backward(tg.Tensor(g))
        return [y.data.copy(), X.grad.data, W.grad.data, B.grad.data]

    threaded = run()
    parallel.set_num_threads(1)
    serial = run()
    for a, s in zip(threaded, serial):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, s, rtol=1e-5, atol=1e-4)


def test_worker_errors_reach_the_caller_and_blas_threads_are_restored(forced):
    if not parallel.blas_libraries():
        pytest.skip("no OpenBLAS found: parallel_chunks runs serially")
    before = [lib.num_threads for lib in parallel.blas_libraries()]
    seen = []

    def fn(a, b):
        seen.append(threading.get_ident())
        if a > 0:
            raise RuntimeError(f"chunk {a}:{b} failed")
        return a

    with pytest.raises(RuntimeError, match="chunk .* failed"):
        parallel.parallel_chunks(fn, parallel.plan(8, flops=1e12))
    assert [lib.num_threads for lib in parallel.blas_libraries()] == before
    parts = parallel.plan(8, flops=1e12)
    assert parts == parallel.chunks(8, 2 * parallel.CHUNKS_PER_THREAD)
    assert parallel.parallel_chunks(lambda a, b: (a, b), parts) == parts


def _workers_alive() -> list:
    return [t for t in threading.enumerate() if t.name.startswith("tinygrad_cnn-")]


def test_set_num_threads_replaces_the_workers(forced):
    if not parallel.blas_libraries():
        pytest.skip("no OpenBLAS found: parallel_chunks runs serially")
    parallel.set_num_threads(3)  # closes any earlier pool: wait until its workers have exited
    for t in _workers_alive():
        t.join(timeout=10)
    assert _workers_alive() == []
    out = np.zeros(12)

    def fill(a, b):
        out[a:b] = np.arange(a, b)
        return threading.get_ident()

    parallel.parallel_chunks(fill, parallel.chunks(12, 6))
    np.testing.assert_array_equal(out, np.arange(12))
    old = _workers_alive()
    assert len(old) == 2  # the caller is the third thread
    parallel.set_num_threads(2)  # the old workers are told to exit
    for t in old:
        t.join(timeout=10)
        assert not t.is_alive()
    out[:] = 0
    parallel.parallel_chunks(fill, parallel.chunks(12, 4))
    np.testing.assert_array_equal(out, np.arange(12))
    assert len(_workers_alive()) == 1


def test_plan_keeps_small_work_in_one_chunk():
    assert parallel.plan(100, flops=parallel.MIN_PARALLEL_FLOPS / 4) == [(0, 100)]
    parallel.set_num_threads(1)
    try:
        assert parallel.plan(100, flops=1e12) == [(0, 100)]
    finally:
        parallel.set_num_threads(parallel._default_threads())


@pytest.mark.parametrize(
    "xs, ws, layout",
    [((5, 3, 7, 7), (4, 3, 3, 3), "rows (short rows, columns taller than C_out)"),
     ((3, 1, 8, 8), (12, 1, 3, 3), "image-by-image columns"),
     ((5, 4, 9, 9), (6, 2, 3, 3), "image-by-image columns, groups"),
     ((3, 2, 8, 8), (20, 1, 3, 3), "image-by-image columns, groups")],
)
def test_threaded_layouts_match_brute_force(forced, rng, xs, ws, layout):
    from tinygrad_cnn.kernels.conv_rows import by_rows
    from tinygrad_cnn.kernels.geometry import Window

    groups = xs[1] // ws[1]
    out = (xs[2] - ws[2] + 1, xs[3] - ws[3] + 1)
    assert by_rows(Window(ws[2:], (1, 1), (0, 0), (1, 1), out), groups, ws[0], xs[1] * ws[2] * ws[3]) == layout.startswith("rows")
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    X, W, B = (tg.Tensor(v, requires_grad=True) for v in (x, w, b))
    y = F.conv2d(X, W, B, groups=groups)
    np.testing.assert_allclose(y.data, ref_conv2d(x, w, b, groups=groups), rtol=1e-10, atol=1e-10)
    assert tg.gradgradcheck(lambda *a: F.conv2d(*a, groups=groups), (X, W, B))


@pytest.mark.parametrize("stride, padding, dilation", [((2, 1), (1, 2), (1, 1)), ((3, 1), (0, 1), (1, 2)), ((1, 1), (2, 0), (1, 3))])
def test_threaded_rows_with_stride_padding_and_dilation_match_brute_force(forced, rng, stride, padding, dilation):
    # Chunks of input rows of the rows algorithm's input gradient start and end mid-window.
    from tinygrad_cnn.kernels.conv_rows import by_rows
    from tinygrad_cnn.kernels.geometry import Window

    x, w = rng.standard_normal((2, 2, 9, 8)), rng.standard_normal((3, 2, 4, 3))
    X, W = tg.Tensor(x, requires_grad=True), tg.Tensor(w, requires_grad=True)
    y = F.conv2d(X, W, stride=stride, padding=padding, dilation=dilation)
    assert by_rows(Window(w.shape[2:], stride, padding, dilation, y.shape[2:]), 1, w.shape[0], 2 * 4 * 3)  # the rows path
    np.testing.assert_allclose(y.data, ref_conv2d(x, w, stride=stride, padding=padding, dilation=dilation), rtol=1e-10, atol=1e-10)
    assert tg.gradgradcheck(lambda *a: F.conv2d(*a, stride=stride, padding=padding, dilation=dilation), (X, W))
    kw = dict(stride=stride, padding=padding, dilation=dilation, output_padding=(stride[0] - 1, 0))
    z = F.conv_transpose2d(y, tg.Tensor(w), **kw)
    np.testing.assert_allclose(z.data, ref_conv_transpose2d(y.data, w, **kw), rtol=1e-10, atol=1e-10)


def test_set_num_threads_rejects_bad_values():
    with pytest.raises(ValueError, match="set_num_threads: n must be a positive int, got 0"):
        tg.set_num_threads(0)
    assert tg.get_num_threads() >= 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])  # the fixture is a setting
@given(pool_configs(max_hw=7), st.integers(0, 2**16))
def test_threaded_pools_match_brute_force_and_gradcheck(forced, cfg, seed):
    shape = (max(cfg["n"], 2), max(cfg["c"], 2)) + cfg["hw"]  # at least four planes to share out
    args = (cfg["k"], cfg["s"], cfg["p"], cfg["d"], cfg["ceil_mode"])
    x = tie_free(np.random.default_rng(seed), shape)
    ry, ridx = ref_max_pool2d(x, *args)
    y, idx = F.max_pool2d(tg.Tensor(x), *args, return_indices=True)
    real = np.isfinite(ry)
    np.testing.assert_allclose(y.data, ry, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(idx.data[real], ridx[real])
    if real.all():  # finite differences need every window to see the input
        X = tg.Tensor(x, requires_grad=True)
        assert tg.gradgradcheck(lambda a: F.max_pool2d(a, *args), (X,))
    if cfg["d"] == (1, 1):
        avg = (cfg["k"], cfg["s"], cfg["p"], cfg["ceil_mode"], False)
        np.testing.assert_allclose(F.avg_pool2d(tg.Tensor(x), *avg).data, ref_avg_pool2d(x, *avg), rtol=1e-10, atol=1e-10)
        assert tg.gradgradcheck(lambda a: F.avg_pool2d(a, *avg), (tg.Tensor(x, requires_grad=True),))



def _threaded_conv_in_child(q):
    x = tg.randn(8, 1, 20, 20, seed=0)  # image-ordered columns: batch chunks on the pool
    w = tg.randn(6, 1, 3, 3, seed=1, requires_grad=True)
    F.conv2d(x, w).sum().backward()
    q.put(float(w.grad.data.sum()))


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
# Forking a process whose thread pool is running is the point of the test; Python 3.12+ warns of it.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_can_use_the_thread_pool(forced):
    import multiprocessing as mp

    x = tg.randn(8, 1, 20, 20, seed=0)
    w = tg.randn(6, 1, 3, 3, seed=1, requires_grad=True)
    F.conv2d(x, w).sum().backward()  # the parent's pool exists at fork time; its threads do not in the child
    assert parallel.workers() is not None
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    child = ctx.Process(target=_threaded_conv_in_child, args=(q,))
    child.start()
    child.join(timeout=30)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child hung in the conv thread pool")
    assert child.exitcode == 0
    assert q.get(timeout=5) == pytest.approx(float(w.grad.data.sum()))


@pytest.mark.parametrize(
    "sa, sb",
    [
        ((7, 5), (5, 3)), ((4, 6, 5), (5, 2)), ((2, 1, 7, 3), (4, 3, 6)), ((0, 4), (4, 3)), ((3, 0), (0, 2)),
        # stacks of outer products (inner dimension 1), their batch dimensions broadcast
        ((4, 6, 1), (4, 1, 5)), ((1, 6, 1), (3, 1, 5)), ((3, 1, 7, 1), (2, 1, 4)), ((5, 1), (3, 1, 4)),
    ],
)
def test_matmul_rows_on_the_pool_match_numpy(forced, rng, sa, sb):
    from tinygrad_cnn.kernels.matmul import matmul_array

    for dtype in (np.float32, np.float64):
        a, b = rng.standard_normal(sa).astype(dtype), rng.standard_normal(sb).astype(dtype)
        with parallel.thresholds(one_thread_mnk=0):  # even these small products take the pool
            out = matmul_array(a, b)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, np.matmul(a, b), rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)


def test_a_single_chunk_also_runs_with_openblas_on_one_thread():
    if not parallel.blas_libraries():
        pytest.skip("no OpenBLAS found")
    seen = parallel.parallel_chunks(lambda a, b: [lib.num_threads for lib in parallel.blas_libraries()], [(0, 1)])
    assert seen == [[1] * len(parallel.blas_libraries())]


def test_without_openblas_only_blas_free_chunks_share_the_threads(forced, monkeypatch):
    # numpy built on another BLAS: GEMM chunks run serially, the pools' passes still in parallel.
    monkeypatch.setattr(parallel, "blas_libraries", lambda: [])
    seen = set()

    def serial(a, b):
        seen.add(threading.get_ident())
        return a

    assert parallel.plan(8, flops=1e12) == [(0, 8)]
    assert parallel.parallel_chunks(serial, [(0, 1), (1, 2)]) == [0, 1] and seen == {threading.get_ident()}
    seen.clear()
    both = threading.Barrier(2, timeout=30)  # passes only when two threads run a chunk each at once

    def together(a, b):
        seen.add(threading.get_ident())
        both.wait()
        return a

    assert len(parallel.plan(8, flops=1e12, blas=False)) > 1
    assert parallel.parallel_chunks(together, [(0, 1), (1, 2)], blas=False) == [0, 1] and len(seen) == 2
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 6))
    expect = ref_max_pool2d(x, (2, 2), (2, 2), (0, 0), (1, 1), False)[0]
    np.testing.assert_array_equal(F.max_pool2d(tg.Tensor(x), 2).data, expect)


def test_a_finished_region_keeps_nothing_alive(forced):
    # A worker (or the pool) still holding the last job would keep every conv buffer of the last
    # region allocated until the next one.
    import gc
    import weakref

    class Buffer:
        pass

    buf = Buffer()
    ref = weakref.ref(buf)

    def fn(a, b, buf=buf):
        return a

    assert parallel.parallel_chunks(fn, parallel.chunks(4, 2)) == [0, 2]
    del fn, buf
    gc.collect()
    assert ref() is None


def test_an_interrupt_between_waking_and_waiting_waits_for_the_woken_workers_only(forced):
    # A KeyboardInterrupt raised in the caller after the workers were woken (here from the caller's
    # own share of the job, as a signal handler would raise it) must still wait for every worker
    # that joined the job, and must leave the pool usable.
    import time

    parallel.set_num_threads(3)
    assert parallel.parallel_chunks(lambda a, b: a, parallel.chunks(3, 3)) == [0, 1, 2]  # workers exist
    workers = parallel.workers()
    main = threading.get_ident()
    joined, finished, worker_started = [], [], threading.Event()

    def job():
        if threading.get_ident() == main:
            worker_started.wait(5)
            raise KeyboardInterrupt
        joined.append(1)
        worker_started.set()
        time.sleep(0.05)
        finished.append(1)

    with pytest.raises(KeyboardInterrupt):
        workers.run(job, 2)
    assert 1 <= len(joined) == len(finished)  # no worker still in the job when run returned
    assert not workers.open and workers.joined == [] and workers.job is None
    assert parallel.parallel_chunks(lambda a, b: a, parallel.chunks(6, 6)) == [0, 1, 2, 3, 4, 5]


def test_an_interrupt_before_any_worker_joins_returns_without_waiting(forced):
    # The caller interrupted after opening the job but before waking any worker: it returns at
    # once, and a worker woken later for the closed job does not run it.
    import time

    parallel.set_num_threads(2)  # new workers
    assert parallel.parallel_chunks(lambda a, b: a, parallel.chunks(2, 2)) == [0, 1]  # workers exist
    workers = parallel.workers()
    ran = []
    real = workers.go[0]
    for _ in range(500):  # until the worker has taken its last wake-up and sleeps
        if real.locked():
            break
        time.sleep(0.01)

    class Interrupting:
        def locked(self):
            raise KeyboardInterrupt

    workers.go[0] = Interrupting()
    try:
        with pytest.raises(KeyboardInterrupt):
            workers.run(lambda: ran.append(threading.get_ident()), 1)
    finally:
        workers.go[0] = real
    assert ran == [] and not workers.open and workers.joined == [] and workers.job is None
    real.release()  # the wake-up the interrupt skipped, now for a closed job: the worker goes back to sleep
    assert parallel.parallel_chunks(lambda a, b: a, parallel.chunks(4, 4)) == [0, 1, 2, 3]
    parallel.set_num_threads(2)  # workers made with the real setting again


def test_the_caller_waits_for_a_worker_slower_than_itself(forced):
    # The worker is still busy when the caller has done its share, so the caller sleeps on its event.
    import time

    parallel.set_num_threads(2)
    main = threading.get_ident()
    done, started = [], threading.Event()

    def fn(a, b):
        if threading.get_ident() == main:
            assert started.wait(5)
        else:
            started.set()
            time.sleep(0.02)
        done.append(threading.get_ident() == main)
        return a

    for _ in range(3):
        done.clear()
        started.clear()
        assert parallel.parallel_chunks(fn, parallel.chunks(2, 2)) == [0, 1]
        assert sorted(done) == [False, True]
    parallel.set_num_threads(2)  # workers made with the real setting again
