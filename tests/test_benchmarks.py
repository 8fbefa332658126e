"""The benchmark scripts still run (one pair, no settling, smallest cases): they are not timed
here, only kept from rotting; a broken import or a renamed API fails this."""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize(
    "script, args, expect",
    [
        ("conv.py", ["--pairs", "1", "--settle-ms", "0", "--only", "SimpleConvNet"], "| SimpleConvNet conv |"),
        ("train_step.py", ["--pairs", "1", "--settle-ms", "0", "--batch", "4"], "LeNet (relu, max)"),
        ("ab_revision.py", ["--pairs", "1", "--settle-ms", "0", "--only", "training"], "LeNet training step"),
        ("ab_revision.py", ["--pairs", "1", "--settle-ms", "0", "--only", "LeNet conv2", "--one-process"], "LeNet conv2 forward"),
        ("ab_revision.py", ["--pairs", "2", "--settle-ms", "0", "--only", "max_pool2d 2x2", "--processes", "2"], "(process pairs: "),
        ("per_example.py", ["--pairs", "1", "--batch", "4", "--rev", ""], "per-example grads"),
        ("whole_run.py", ["--rev", "HEAD", "--pairs", "1", "--warmup", "1", "--steps", "2", "--only", "LeNet"], "LeNet "),
    ],
)
def test_benchmark_script_runs(script, args, expect):
    if script in ("ab_revision.py", "whole_run.py") and not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("ab_revision.py compares against a git revision")
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", script), *args], capture_output=True, text=True, timeout=240, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert expect in out.stdout, out.stdout[-2000:]


def test_named_baselines_are_commits_of_this_repository():
    # The revisions docs/benchmarks.md names resolve in any full clone, tags or not.
    if not os.path.isdir(os.path.join(ROOT, ".git")):
        pytest.skip("needs the git history")
    shallow = subprocess.run(["git", "-C", ROOT, "rev-parse", "--is-shallow-repository"], capture_output=True, text=True)
    if shallow.stdout.strip() == "true":
        pytest.skip("a shallow clone lacks the earlier revisions")
    sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
    try:
        from ab_revision import BASELINES
    finally:
        sys.path.remove(os.path.join(ROOT, "benchmarks"))
    docs = open(os.path.join(ROOT, "docs", "benchmarks.md")).read()
    for name, commit in BASELINES.items():
        assert f"`{name}`" in docs
        found = subprocess.run(["git", "-C", ROOT, "cat-file", "-e", commit + "^{commit}"], capture_output=True)
        assert found.returncode == 0, f"{name}: {commit} is not a commit of this clone ({found.stderr.decode()})"
