"""What limiting the BLAS to one thread per parallel region costs: the thread pool's way
(``threadpoolctl``: a ``ThreadpoolController`` kept once, its ``.limit()`` per region) against
calling OpenBLAS's own ``openblas_set_num_threads`` through ctypes, on the SimpleConvNet and
LeNet training steps, alternating in one process.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/blas_limit.py [--pairs 21]

Prints, per model, the median step time of each and the median of per-pair ratios
threadpoolctl/ctypes (above 1: threadpoolctl costs that much more), and the cost of one
limit-and-restore of each on its own.
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


class _CtypesLimit:
    """The BLAS limit through OpenBLAS's own get/set functions, found with ctypes in the libraries
    threadpoolctl reports (the comparison's other side only)."""

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

    def limit(self, limits: int) -> _CtypesLimit:
        self.saved = [(set_, get()) for get, set_ in self.fns]
        for set_, _ in self.saved:
            set_(limits)
        return self

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        for set_, old in self.saved:
            set_(old)


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
    raw = _CtypesLimit(tpc.lib_controllers)
    print(f"numpy {np.__version__}, {args.pairs} pairs, settle {args.settle_ms:g} ms, load average {os.getloadavg()[0]:.1f}")
    print(f"one limit + restore: threadpoolctl {per_call_us(tpc):.1f} us, ctypes {per_call_us(raw):.1f} us\n")
    print("| step | threadpoolctl ms | ctypes ms | threadpoolctl / ctypes |")
    print("|---|---|---|---|")
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

        r = alternate(with_(tpc), with_(raw), args.pairs, settle_ms=args.settle_ms)
        print(f"| {name} training step | {r.a_ms:.2f} | {r.b_ms:.2f} | {r.ratio:.3f} |", flush=True)


if __name__ == "__main__":
    main()
