"""Our code against an earlier revision of itself: conv forward+backward and forward alone
(no_grad), pool forward+backward, and the SimpleConvNet / LeNet training steps, timed
alternately (median of per-pair ratios new/old; below 1 the working tree is faster).

Run: env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/ab_revision.py [--rev HEAD] [--only LeNet]
[--pairs 21] [--processes 3] [--threads 1] [--one-process]

The old revision's package is taken with ``git archive REV tinygrad_cnn`` into a temporary
directory. Each case runs on each side in a process of its own, which builds only that case, as
a user's script would; this script asks the two processes for one timing at a time, new and old
in turn, so both meet the same machine drift. Why separate processes: two packages in one
process share the C library's heap, and whichever side's buffers land on pages mapped earlier
(4 KiB ones, where a fresh block of 4 MiB or more gets huge pages) runs the same kernels several
percent slower, which side that is depending on the order of allocations; a process that built
the other cases first carries their allocations' history the same way. ``--one-process``
imports the old package as ``tg_old`` beside the new one instead. A process's heap layout alone
moves a 1-3 ms case by several percent, the same way for all of that process's timings:
``--processes K`` times each case in K fresh process pairs (``--pairs`` each) and quotes the
median over all their pairs, with each pair of processes' own median beside it. Each timed call follows
``--settle-ms`` of untimed calls of the same side (see _timing.settle).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _shapes import CONVS, POOLS  # noqa: E402
from _steps import INPUTS, build, training_step  # noqa: E402
from _timing import SETTLE_MS, PairResult, alternate, alternate_measures, settle, timed  # noqa: E402

# The earlier revisions docs/benchmarks.md measures against, by name. A clone need not carry
# tags, so the names resolve to their commits here (a tag of the same name is not consulted).
BASELINES = {
    "baseline-first-plan": "c044b01cf89cd90952071008392a787c5b7d984b",  # before the integrity checks
    "baseline-before-torch-api": "9dd0f1c2208235c0d38c0e3ea76bca9bcc9f6e11",  # before the PyTorch-named Tensor API
    "baseline-row-loop-jacobian": "d75f6f4f9a111d181c81e52cd2319a2d1ed7a33e",  # per-example grads by a row loop
}


def extract_package(rev: str, into: str) -> str:
    """``git archive`` of the package (``tinygrad_cnn/``) at revision ``rev`` (a commit, tag,
    branch, or one of the names in ``BASELINES``), unpacked in ``into``; returns ``into``, the
    folder to put on the import path."""
    root = os.path.dirname(HERE)
    commit = BASELINES.get(rev, rev)
    run = subprocess.run(["git", "-C", root, "archive", commit, "tinygrad_cnn"], capture_output=True)
    if run.returncode != 0:
        raise SystemExit(
            f"git archive {commit} failed: {run.stderr.decode(errors='replace').strip()}\n"
            f"--rev must name a commit of this clone (a shallow clone lacks the earlier ones: git fetch --unshallow)."
        )
    archive = run.stdout
    path = os.path.join(into, "old.tar")
    with open(path, "wb") as f:
        f.write(archive)
    with tarfile.open(path) as t:
        # Our own git archive; the "data" filter where this Python has it (3.11.4+, 3.12+; Debian
        # 12's 3.11.2 has not).
        t.extractall(into, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    return into


def load_old(rev: str, into: str):
    """The package at git revision ``rev``, imported as ``tg_old``."""
    extract_package(rev, into)
    os.rename(os.path.join(into, "tinygrad_cnn"), os.path.join(into, "tg_old"))
    sys.path.insert(0, into)
    import tg_old
    import tg_old.models  # noqa: F401
    import tg_old.nn.functional  # noqa: F401
    import tg_old.optim  # noqa: F401

    return tg_old


def conv_step(tg, x, w, g, s, p, x_grad):
    X, W, G = tg.Tensor(x, requires_grad=x_grad), tg.Tensor(w, requires_grad=True), tg.Tensor(g)
    B = tg.Tensor(np.zeros(w.shape[0], np.float32), requires_grad=True)

    def step():
        X.grad = W.grad = B.grad = None
        tg.nn.functional.conv2d(X, W, B, stride=s, padding=p).backward(G)

    return step


def conv_forward(tg, x, w, s, p):
    X, W, B = tg.Tensor(x), tg.Tensor(w), tg.Tensor(np.zeros(w.shape[0], np.float32))

    def step():
        with tg.no_grad():
            tg.nn.functional.conv2d(X, W, B, stride=s, padding=p)

    return step


def pool_step(tg, x, g, k, s):
    X, G = tg.Tensor(x, requires_grad=True), tg.Tensor(g)

    def step():
        X.grad = None
        tg.nn.functional.max_pool2d(X, k, s).backward(G)

    return step


def builders() -> dict[str, Callable]:
    """Every case by name: a function of the package ``tg`` that draws the case's data (from a
    generator seeded by the case's place in the list, so both sides get the same data) and
    returns the step to time."""

    def conv(xs, ws, s, p, x_grad, forward):
        def make(tg, rng):
            x, w = rng.standard_normal(xs).astype(np.float32), (rng.standard_normal(ws) * 0.1).astype(np.float32)
            if forward:
                return conv_forward(tg, x, w, s, p)
            oh = (xs[2] + 2 * p - ws[2]) // s + 1
            return conv_step(tg, x, w, rng.standard_normal((xs[0], ws[0], oh, oh)).astype(np.float32), s, p, x_grad)

        return make

    def pool(xs, k, s):
        def make(tg, rng):
            oh = (xs[2] - k) // s + 1
            x, g = rng.standard_normal(xs).astype(np.float32), rng.standard_normal((xs[0], xs[1], oh, oh)).astype(np.float32)
            return pool_step(tg, x, g, k, s)

        return make

    def training(name, hw):
        def make(tg, rng):
            x, y = rng.random((100, 1, hw, hw), dtype=np.float32), rng.integers(0, 10, 100).astype(np.int64)
            return training_step(tg, build(tg, name), x, y)

        return make

    out: dict[str, Callable] = {}
    for name, xs, ws, s, p, x_grad in CONVS:
        out[name] = conv(xs, ws, s, p, x_grad, False)
        out[f"{name} forward"] = conv(xs, ws, s, p, x_grad, True)
    for name, xs, k, s in POOLS:
        out[name] = pool(xs, k, s)
    for name, hw in INPUTS.items():
        out[f"{name} training step"] = training(name, hw)
    return out


def make_case(tg, name: str) -> Callable[[], None]:
    """The step of case ``name`` on the package ``tg``."""
    import importlib

    for sub in ("models", "nn.functional", "optim"):
        importlib.import_module(f"{tg.__name__}.{sub}")
    cases = builders()
    return cases[name](tg, np.random.default_rng(list(cases).index(name)))


def serve(threads: int, name: str) -> None:
    """One side's process for case ``name``: build it on the package on sys.path, then answer
    requests from stdin, one JSON line each: ``settle_ms`` -> the seconds of one call after
    settling, ``null`` -> null after two untimed calls (the warm-up)."""
    import tinygrad_cnn as tg

    if threads:
        tg.set_num_threads(threads)
    step = make_case(tg, name)
    print(json.dumps(os.path.dirname(tg.__file__)), flush=True)
    for line in sys.stdin:
        settle_ms = json.loads(line)
        if settle_ms is None:
            step()
            step()
            answer = None
        else:
            settle(step, settle_ms)
            answer = timed(step)
        print(json.dumps(answer), flush=True)


class Side:
    """A process of ours serving one case on the package found at ``path`` (see :func:`serve`)."""

    def __init__(self, path: str, threads: int, name: str) -> None:
        cmd = [sys.executable, os.path.abspath(__file__), "--serve", name, "--threads", str(threads)]
        env = dict(os.environ, PYTHONPATH=path)
        self.proc = subprocess.Popen(cmd, env=env, cwd=path, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        package = self._answer()
        assert os.path.realpath(package).startswith(os.path.realpath(path)), package  # the side we meant to time

    def _answer(self):
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"ab_revision: the process serving {self.proc.args} exited with code {self.proc.wait()}")
        return json.loads(line)

    def ask(self, request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        return self._answer()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="the git revision to compare the working tree with")
    ap.add_argument("--only", default="", help="run only the cases whose name contains this text")
    ap.add_argument("--pairs", type=int, default=21)
    ap.add_argument("--settle-ms", type=float, default=SETTLE_MS)
    ap.add_argument("--threads", type=int, default=0, help="set_num_threads on both sides (0: their defaults)")
    ap.add_argument(
        "--processes", type=int, default=1, help="process pairs per case, each timing --pairs pairs; the median is over all"
    )
    ap.add_argument("--one-process", action="store_true", help="both sides in this process (they then share its heap)")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        return serve(args.threads, args.serve)
    with tempfile.TemporaryDirectory() as tmp:
        where = "one process" if args.one_process else "a process each"
        print(f"working tree against {args.rev}: {args.pairs} pairs, {where}, threads {args.threads or 'default'}, "
              f"settle {args.settle_ms:g} ms, load average {os.getloadavg()[0]:.1f}")
        if args.one_process:
            sys.path.insert(0, os.path.dirname(HERE))
            import tinygrad_cnn as new

            old = load_old(args.rev, tmp)
            if args.threads:
                new.set_num_threads(args.threads)
                old.set_num_threads(args.threads)
            for name in builders():
                if args.only in name:
                    report(name, alternate(make_case(new, name), make_case(old, name), args.pairs, settle_ms=args.settle_ms))
            return
        old_path = extract_package(args.rev, tmp)
        for name in builders():
            if args.only in name:
                runs = [served_pairs(name, old_path, args) for _ in range(args.processes)]
                report(name, pooled(runs), [r.ratio for r in runs] if len(runs) > 1 else None)


def served_pairs(name: str, old_path: str, args):
    """``args.pairs`` alternating timings of case ``name`` by a new pair of processes."""
    sides = [Side(os.path.dirname(HERE), args.threads, name), Side(old_path, args.threads, name)]
    try:
        for side in sides:
            side.ask(None)
        a, b = (lambda side=side: side.ask(args.settle_ms) for side in sides)
        return alternate_measures(a, b, args.pairs)
    finally:
        for side in sides:
            side.close()


def pooled(runs: list):
    """The timings of several process pairs as one result: medians over all their pairs."""
    if len(runs) == 1:
        return runs[0]
    return PairResult(
        a_ms=statistics.median(r.a_ms for r in runs),
        b_ms=statistics.median(r.b_ms for r in runs),
        ratio=statistics.median(x for r in runs for x in r.ratios),
        ratios=[x for r in runs for x in r.ratios],
    )


def report(name: str, r, per_process: list[float] | None = None) -> None:
    spread = "" if per_process is None else "  (process pairs: " + ", ".join(f"{x:.3f}" for x in per_process) + ")"
    print(f"{name:22s} new {r.a_ms:8.2f} ms  old {r.b_ms:8.2f} ms  new/old {r.ratio:.3f}{spread}")


if __name__ == "__main__":
    main()
