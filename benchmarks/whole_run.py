"""Whole training runs of our code against an earlier revision of it, each run in a process of its
own: what a user who starts a training script gets, allocator settings and all. ``ab_revision.py``
times single calls instead, many in each process.

Each run trains SimpleConvNet or LeNet-5 with Adam on a fixed random batch of 100 float32 images
(``_steps.training_step``): ``--warmup`` steps, then the median time of ``--steps`` steps, and the
minor page faults per step. The two sides alternate (new, old, new, old, ...) and the figure is
the median of the per-pair ratios new/old.

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/whole_run.py --rev baseline-first-plan [--pairs 5]
(the environment reaches both sides: ``MALLOC_MMAP_THRESHOLD_=33554432
MALLOC_TRIM_THRESHOLD_=268435456`` in front gives the old side the C library settings that
``import tinygrad_cnn`` makes).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def child(name: str, warmup: int, steps: int) -> None:
    """In the run's own process: time the steps of the package on sys.path, print JSON."""
    import numpy as np

    sys.path.insert(0, HERE)
    from _steps import INPUTS, build, training_step

    import tinygrad_cnn as tg

    rng = np.random.default_rng(0)
    x = rng.random((100, 1, INPUTS[name], INPUTS[name]), dtype=np.float32)
    y = rng.integers(0, 10, 100).astype(np.int64)
    step = training_step(tg, build(tg, name), x, y)
    for _ in range(warmup):
        step()
    times, before = [], resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps
    print(json.dumps({"ms": float(np.median(times)) * 1e3, "faults": faults, "package": os.path.dirname(tg.__file__)}))


def run(path: str, name: str, warmup: int, steps: int) -> dict:
    env = dict(os.environ, PYTHONPATH=path)
    cmd = [sys.executable, os.path.abspath(__file__), "--child", name, "--warmup", str(warmup), "--steps", str(steps)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True, cwd=path).stdout
    result = json.loads(out.strip().splitlines()[-1])
    assert os.path.realpath(result["package"]).startswith(os.path.realpath(path)), result  # the side we meant to time
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", default="baseline-first-plan", help="the git revision or tag to compare the working tree with")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--only", default="", help="run only the networks whose name contains this text")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child, a.warmup, a.steps)
    import numpy as np

    sys.path.insert(0, HERE)
    from ab_revision import extract_package

    with tempfile.TemporaryDirectory() as tmp:
        old = extract_package(a.rev, tmp)
        print(f"working tree against {a.rev}: {a.pairs} pairs of processes, {a.steps} steps each, load average {os.getloadavg()[0]:.1f}")
        for name in (n for n in ("SimpleConvNet", "LeNet") if a.only in n):
            pairs = [(run(ROOT, name, a.warmup, a.steps), run(old, name, a.warmup, a.steps)) for _ in range(a.pairs)]
            ratio = float(np.median([n["ms"] / o["ms"] for n, o in pairs]))
            new_ms, old_ms = (float(np.median([p[i]["ms"] for p in pairs])) for i in (0, 1))
            new_f, old_f = (float(np.median([p[i]["faults"] for p in pairs])) for i in (0, 1))
            sides = f"new {new_ms:6.2f} ms ({new_f:5.0f} faults/step)  old {old_ms:6.2f} ms ({old_f:5.0f} faults/step)"
            print(f"{name:14s} {sides}  new/old {ratio:.3f}")


if __name__ == "__main__":
    main()
