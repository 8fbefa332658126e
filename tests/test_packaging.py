"""`python -m build` makes an sdist and a wheel that `twine check` accepts; the wheel holds the package
(with its py.typed marker) and nothing else, and the sdist holds the package, README and pyproject."""
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import tinygrad_cnn

pytest.importorskip("build")
pytest.importorskip("twine")

ROOT = Path(__file__).resolve().parent.parent
SKIP = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
                              ".ruff_cache", "demo-output", "runs", "out")


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    # Built from a copy so that the build's egg-info and build/ folders stay out of the checkout.
    src = tmp_path_factory.mktemp("src") / "tinygrad_cnn"
    shutil.copytree(ROOT, src, ignore=SKIP)
    out = tmp_path_factory.mktemp("dist")
    # --no-isolation: the build backend comes from the dev extra, so no download is needed. With
    # neither --sdist nor --wheel, build makes the sdist and then the wheel from it, which also checks
    # that the sdist is complete.
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


@pytest.mark.slow
def test_twine_check_accepts_both(dists):
    proc = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("PASSED") == 2


@pytest.mark.slow
def test_wheel_holds_the_package_only(dists):
    _, wheel = dists
    assert wheel.name.startswith(f"tinygrad_cnn-{tinygrad_cnn.__version__}-py3-none-any")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top == {"tinygrad_cnn", f"tinygrad_cnn-{tinygrad_cnn.__version__}.dist-info"}, top
    assert "tinygrad_cnn/py.typed" in names
    package = ROOT / "tinygrad_cnn"
    expected = {p.relative_to(ROOT).as_posix() for p in package.rglob("*.py")} | {"tinygrad_cnn/py.typed"}
    assert {n for n in names if n.startswith("tinygrad_cnn/")} == expected
    assert not [n for n in names if n.endswith((".svg", ".png", ".pyc")) or "/tests/" in n or "benchmarks" in n]
    meta = zipfile.ZipFile(wheel).read(f"tinygrad_cnn-{tinygrad_cnn.__version__}.dist-info/METADATA").decode()
    assert "Provides-Extra: viz" in meta and "Provides-Extra: onnx" in meta
    entry = zipfile.ZipFile(wheel).read(f"tinygrad_cnn-{tinygrad_cnn.__version__}.dist-info/entry_points.txt").decode()
    assert "tinygrad-cnn = tinygrad_cnn.cli:main" in entry


@pytest.mark.slow
def test_sdist_holds_package_readme_and_pyproject(dists):
    sdist, _ = dists
    names = tarfile.open(sdist).getnames()
    root = sdist.name[: -len(".tar.gz")]
    rel = {n[len(root) + 1:] for n in names if n != root}
    assert {"README.md", "pyproject.toml", "tinygrad_cnn/__init__.py", "tinygrad_cnn/py.typed"} <= rel
    assert not [n for n in rel if n.split("/")[0] in {"tests", "benchmarks", "docs", "examples", "scripts"}], sorted(rel)
