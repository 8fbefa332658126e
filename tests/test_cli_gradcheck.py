"""`tinygrad-cnn gradcheck module:op --shape ...`: prints the report, exit 0 on pass, 1 on failure."""
import os
import subprocess
import sys
import textwrap

import pytest

from tinygrad_cnn.cli import main

MODULE = textwrap.dedent(
    """
    import numpy as np
    from tinygrad_cnn.autograd import Function


    class Swish(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x / (1 + np.exp(-x))

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            s = x.sigmoid()
            return g * (s + x * s * (1 - s))


    class BrokenSwish(Swish):
        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            s = x.sigmoid()
            return g * (s + x * s * (1 + s))


    class RawSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            from tinygrad_cnn import Tensor
            return g * Tensor(2 * x.data)


    def conv_layer(x, w):
        from tinygrad_cnn.nn import functional as F
        return F.conv2d(x, w, padding=1).relu()


    def needs_positive(x):
        return x.log()


    not_callable = 3
    """
)


@pytest.fixture
def ops_module(tmp_path, monkeypatch):
    (tmp_path / "my_ops_for_cli.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    sys.modules.pop("my_ops_for_cli", None)


def test_passing_op_exits_0_and_prints_the_report(ops_module, capsys):
    assert main(["gradcheck", "my_ops_for_cli:Swish", "--shape", "2,3"]) == 0
    out = capsys.readouterr().out
    assert "gradcheck passed" in out and "x (2, 3) -> output (2, 3): ok" in out


def test_failing_op_exits_1_and_says_where(ops_module, capsys):
    assert main(["gradcheck", "my_ops_for_cli:BrokenSwish", "--shape", "2,3"]) == 1
    out = capsys.readouterr().out
    assert "gradcheck FAILED" in out and "6 of 6 element(s) wrong" in out and "worst: x[" in out


def test_double_checks_second_derivatives(ops_module, capsys):
    assert main(["gradcheck", "my_ops_for_cli:RawSquare", "--shape", "4"]) == 0
    assert main(["gradcheck", "my_ops_for_cli:RawSquare", "--shape", "4", "--double"]) == 1
    out = capsys.readouterr().out
    assert "gradgradcheck FAILED" in out and "grad x" in out


def test_several_inputs_fast_mode_and_float32(ops_module, capsys):
    args = ["gradcheck", "my_ops_for_cli:conv_layer", "--shape", "2,3,8,8", "--shape", "4,3,3,3", "--fast", "--dtype", "float32"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fast mode" in out and "w (4, 3, 3, 3) -> output (2, 4, 8, 8): ok" in out and "float32" in out


def test_range_option_and_user_errors(ops_module, capsys):
    assert main(["gradcheck", "my_ops_for_cli:needs_positive", "--shape", "5", "--range", "0.5,2"]) == 0
    assert main(["gradcheck", "my_ops_for_cli:missing", "--shape", "2"]) == 2
    assert main(["gradcheck", "my_ops_for_cli:not_callable", "--shape", "2"]) == 2
    assert main(["gradcheck", "no_such_module_xyz:f", "--shape", "2"]) == 2
    assert main(["gradcheck", "my_ops_for_cli", "--shape", "2"]) == 2
    assert main(["gradcheck", "my_ops_for_cli:Swish", "--shape", "2", "--shape", "3"]) == 2  # forward gets 2 inputs
    err = capsys.readouterr().err
    assert "has no attribute 'missing'" in err and "not a function" in err and "cannot import module" in err
    assert "module:" in err or "my_module:my_op" in err
    assert "raised TypeError" in err
    with pytest.raises(SystemExit):
        main(["gradcheck", "my_ops_for_cli:Swish", "--shape", "2,-3"])


def test_console_entry_point_with_pythonpath(ops_module):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ops_module), os.getcwd()]))
    ok = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "gradcheck", "my_ops_for_cli:Swish", "--shape", "3"],
                        capture_output=True, text=True, env=env, cwd=ops_module)
    bad = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "gradcheck", "my_ops_for_cli:BrokenSwish", "--shape", "3"],
                         capture_output=True, text=True, env=env, cwd=ops_module)
    assert (ok.returncode, bad.returncode) == (0, 1), ok.stderr + bad.stderr
    assert "passed" in ok.stdout and "FAILED" in bad.stdout
