"""What limiting the BLAS to one thread per parallel region costs, on the SimpleConvNet and LeNet
training steps, alternating in one process: the thread pool's way, ``threadpoolctl``'s
``ThreadpoolController.limit()`` on a controller kept once, against two cheaper ways, the
get/set methods of threadpoolctl's library controllers alone and OpenBLAS's own
``openblas_set_num_threads`` called through ctypes.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/blas_limit.py [--pairs 21]

Prints the cost of one limit-and-restore of each way on its own, then per model and cheaper way
the median step time of each side and the median of per-pair ratios limit()/other (above 1:
``limit()`` costs that much more).
"""
from __future__ import annotations

import argparse
import ctypes
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from _steps import INPUTS, build, training_step  # noqa: E402
from _timing import alternate  # noqa: E402

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn.kernels import parallel  # noqa: E402


class _Restore:
    def __init__(self, saved: list) -> None:
        self.saved = saved

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        for set_, n in self.saved:
            set_(n)


class LibControllers:
    """``limit()`` through the get/set methods of threadpoolctl's library controllers only."""

    def __init__(self, libs: list) -> None:
        self.lib_controllers = libs

    def limit(self, limits: int) -> _Restore:
        saved = [(lib.set_num_threads, lib.get_num_threads()) for lib in self.lib_controllers]
        for set_, _ in saved:
            set_(limits)
        return _Restore(saved)


class Ctypes:
    """``limit()`` through OpenBLAS's own get/set functions, called with ctypes in the libraries
    threadpoolctl reports."""

    def __init__(self, libs: list) -> None:
        self.lib_controllers = libs
        self.fns = []
        for lib in libs:
            dll = ctypes.CDLL(lib.filepath)
            for prefix, suffix in (("scipy_openblas", "64_"), ("openblas", "64_"), ("scipy_openblas", ""), ("openblas", "")):
                get = getattr(dll, f"{prefix}_get_num_threads{suffix}", None)
                set_ = getattr(dll, f"{prefix}_set_num_threads{suffix}", None)
                if get is not None and set_ is not None:
                    get.restype, set_.argtypes = ctypes.c_int, [ctypes.c_int]
                    self.fns.append((get, set_))
                    break

    def limit(self, limits: int) -> _Restore:
        saved = [(set_, get()) for get, set_ in self.fns]
        for set_, _ in saved:
            set_(limits)
        return _Restore(saved)


def per_call_us(controller, n: int = 5000) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        with controller.limit(limits=1):
            pass
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=21)
    ap.add_argument("--settle-ms", type=float, default=100.0)
    args = ap.parse_args()
    tpc = parallel._blas_controller()
    if not tpc.lib_controllers or tpc.lib_controllers[0].internal_api != "openblas":
        sys.exit("numpy's BLAS is not OpenBLAS: nothing to compare")
    others = {"library controllers": LibControllers(tpc.lib_controllers), "ctypes": Ctypes(tpc.lib_controllers)}
    print(f"numpy {np.__version__}, {args.pairs} pairs, settle {args.settle_ms:g} ms, load average {os.getloadavg()[0]:.1f}")
    costs = ", ".join(f"{k} {per_call_us(c):.1f} us" for k, c in {"limit()": tpc, **others}.items())
    print(f"one limit + restore: {costs}\n")
    print("| step | other way | limit() ms | other ms | limit() / other |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for name, hw in INPUTS.items():
        x = rng.random((100, 1, hw, hw), dtype=np.float32)
        y = rng.integers(0, 10, 100).astype(np.int64)
        step = training_step(tg, build(tg, name), x, y)

        def with_(controller, step=step):
            def run() -> None:
                parallel._blas = controller
                try:
                    step()
                finally:
                    parallel._blas = tpc

            return run

        for k, other in others.items():
            r = alternate(with_(tpc), with_(other), args.pairs, settle_ms=args.settle_ms)
            print(f"| {name} training step | {k} | {r.a_ms:.2f} | {r.b_ms:.2f} | {r.ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
