"""The package type-checks: ``mypy`` with the project's configuration (pyproject ``[tool.mypy]``:
default strictness plus ``check_untyped_defs``) reports no error. mypy is in the ``dev`` extra
that ``make test`` installs: without it this test fails rather than skips."""
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _mypy(tmp_path, *args):
    try:
        import mypy  # noqa: F401
    except ImportError as e:  # make test installs the dev extra: a missing one is a set-up bug
        pytest.fail(f"{e}: install the dev extra (pip install -e '.[dev]') to type-check the package")
    cmd = [sys.executable, "-m", "mypy", "--config-file", str(ROOT / "pyproject.toml"), "--cache-dir", str(tmp_path / "cache"), *args]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})


@pytest.mark.slow
def test_package_passes_mypy(tmp_path):
    proc = _mypy(tmp_path)  # the files of the configuration: the package
    assert proc.returncode == 0, f"mypy found errors:\n{proc.stdout}{proc.stderr}"
    assert "no issues found" in proc.stdout


@pytest.mark.slow
def test_public_api_in_typed_user_code(tmp_path):
    """What the README and docs write type-checks from a user's annotated code, and a misuse is
    reported: the configuration checks the bodies of unannotated functions too."""
    good = tmp_path / "user_code.py"
    good.write_text(textwrap.dedent('''
        import numpy as np
        import tinygrad_cnn as tg
        from tinygrad_cnn import nn
        from tinygrad_cnn.optim import SGD, Adam


        class Swish(tg.Function):
            @staticmethod
            def forward(ctx: tg.autograd.Node, x: np.ndarray, beta: float = 1.0) -> np.ndarray:
                ctx.save_for_backward(x)
                return x / (1.0 + np.exp(-beta * x))

            @staticmethod
            def backward(ctx: tg.autograd.Node, g: tg.Tensor) -> tg.Tensor:
                (x,) = ctx.saved_tensors
                beta: float = ctx.params["beta"]
                s = (x * beta).sigmoid()
                return g * (s + beta * x * s * (1 - s))


        def train() -> float:
            model = nn.Sequential(nn.Linear(4, 8, seed=0), nn.ReLU(), nn.Linear(8, 2, seed=1))
            opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
            Adam(model.parameters(), lr=1e-3)
            x = tg.randn(3, 4, seed=0)
            loss = nn.functional.cross_entropy(Swish.apply(model(x)), np.array([0, 1, 0]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            n: int = x.size(0)
            return loss.item() + n
    '''))
    bad = tmp_path / "bad_code.py"
    bad.write_text("import tinygrad_cnn as tg\n\n\ndef f():\n    x: int = tg.Tensor\n    return x\n")
    proc = _mypy(tmp_path, str(good))
    assert proc.returncode == 0, f"mypy rejects typed use of the public API:\n{proc.stdout}{proc.stderr}"
    proc = _mypy(tmp_path, str(bad))
    assert proc.returncode == 1 and "bad_code.py:5: error" in proc.stdout, proc.stdout
