"""scripts/setup.sh: what each mode installs, and the stamps that make a repeated `make demo`/`make test`
skip the set-up. Runs the real script against a stand-in Python that records its calls instead of
creating environments or installing anything."""
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

if shutil.which("bash") is None or (shutil.which("sha256sum") is None and shutil.which("shasum") is None):
    pytest.skip("needs bash and sha256sum or shasum", allow_module_level=True)

# Answers the few questions setup.sh asks a Python, and logs every call; `-m venv DIR` makes DIR/bin/python
# a copy of itself, `-m pip ...` only logs (and fails when FAKE_PIP_RC says so).
FAKE_PYTHON = """#!/usr/bin/env bash
echo "$*" >> "$FAKE_LOG"
case "$1" in
  -V) echo "Python $FAKE_PY_VERSION" ;;
  -c) case "$2" in *version_info*) echo cp311 ;; esac ;;
  -m) case "$2" in
        venv) mkdir -p "$3/bin" && cp "$0" "$3/bin/python" ;;
        pip) exit "${FAKE_PIP_RC:-0}" ;;
        *) exit 1 ;;
      esac ;;
esac
"""


@pytest.fixture
def env(tmp_path):
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    shutil.copy(ROOT / "pyproject.toml", repo / "pyproject.toml")
    stub = tmp_path / "python3"
    stub.write_text(FAKE_PYTHON)
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "wheels").mkdir()
    return {"repo": repo, "venv": tmp_path / "venv", "log": tmp_path / "calls.log", "wheels": tmp_path / "wheels",
            "vars": {"PYTHON": str(stub), "VENV": str(tmp_path / "venv"), "FAKE_LOG": str(tmp_path / "calls.log"),
                     "FAKE_PY_VERSION": "3.11.2", "TORCH_WHEEL_DIR": str(tmp_path / "wheels"), "SETUP_APT": "no"}}


def run(env, mode, **extra):
    """Run setup.sh MODE; returns (exit status, output, the stand-in's calls during this run)."""
    before = env["log"].read_text().splitlines() if env["log"].exists() else []
    proc = subprocess.run(["bash", str(env["repo"] / "scripts" / "setup.sh"), mode], cwd=env["repo"].parent,
                          env={**os.environ, **env["vars"], **extra}, capture_output=True, text=True, timeout=60)
    calls = env["log"].read_text().splitlines()[len(before):] if env["log"].exists() else []
    return proc.returncode, proc.stdout + proc.stderr, calls


def pip_calls(calls):
    return [c for c in calls if c.startswith("-m pip")]


def test_demo_installs_viz_and_progress_only_then_is_up_to_date(env):
    rc, out, calls = run(env, "demo")
    assert rc == 0, out
    assert any(c.startswith("-m venv") for c in calls)
    assert pip_calls(calls) == ["-m pip install -q -e .[viz,progress]"]
    assert (env["venv"] / ".setup-demo").read_text().strip() and not (env["venv"] / ".setup-test").exists()
    rc, out, calls = run(env, "demo")
    assert rc == 0 and "up to date" in out, out
    # The repeated run asks the venv's Python only whether it runs and its version: no pip, no imports.
    assert calls == ["-c ", "-V"]


def test_a_change_of_pyproject_setup_script_or_python_reinstalls(env):
    assert run(env, "demo")[0] == 0
    with open(env["repo"] / "pyproject.toml", "a") as f:
        f.write("\n# changed\n")
    assert pip_calls(run(env, "demo")[2])
    assert not pip_calls(run(env, "demo")[2])
    with open(env["repo"] / "scripts" / "setup.sh", "a") as f:
        f.write("\n# changed\n")
    assert pip_calls(run(env, "demo")[2])
    env["vars"]["FAKE_PY_VERSION"] = "3.11.9"
    assert pip_calls(run(env, "demo")[2])
    assert not pip_calls(run(env, "demo")[2])


def test_test_mode_adds_dev_tools_and_the_torch_wheel_on_disk(env):
    wheel = env["wheels"] / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"")
    rc, out, calls = run(env, "test")
    assert rc == 0, out
    assert pip_calls(calls) == ["-m pip install -q -e .[viz,progress,dev,onnx,docs]", f"-m pip install -q {wheel}"]
    # What the demo needs is a subset of the test install: make demo afterwards has nothing to do.
    assert run(env, "demo")[2] == ["-c ", "-V"]
    assert not pip_calls(run(env, "test")[2])


def test_a_torch_wheel_that_appears_later_is_installed(env):
    rc, out, calls = run(env, "test")
    assert rc == 0 and "no PyTorch CPU wheel" in out and len(pip_calls(calls)) == 1
    wheel = env["wheels"] / "torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
    wheel.write_bytes(b"")
    assert pip_calls(run(env, "test")[2])[-1] == f"-m pip install -q {wheel}"
    other = env["wheels"] / "torch-2.13.0+cpu-cp312-cp312-manylinux_2_28_x86_64.whl"  # another Python's wheel changes nothing
    other.write_bytes(b"")
    assert not pip_calls(run(env, "test")[2])


def test_a_failed_install_leaves_no_stamp_and_is_retried(env):
    rc, out, _ = run(env, "demo", FAKE_PIP_RC="1")
    assert rc != 0
    assert not (env["venv"] / ".setup-demo").exists()
    rc, out, calls = run(env, "demo")
    assert rc == 0 and pip_calls(calls), out


@pytest.mark.parametrize("mode", ["", "all", "install"])
def test_unknown_mode_is_a_usage_error(env, mode):
    rc, out, calls = run(env, mode)
    assert rc == 2 and "usage: scripts/setup.sh demo|test" in out and calls == []
