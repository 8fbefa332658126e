"""The API reference (mkdocs + mkdocstrings, docs/reference/) builds with ``--strict``; the build
itself checks (scripts/api_reference.py, a mkdocs hook) that every object it shows has a
docstring and every public name is on a page, and these tests check that those checks bite.

mkdocs is part of the ``docs`` extra that ``make test`` installs: without it these tests fail
rather than skip.
"""
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent

spec = importlib.util.spec_from_file_location("api_reference", ROOT / "scripts" / "api_reference.py")
api_reference = importlib.util.module_from_spec(spec)
spec.loader.exec_module(api_reference)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Build the site once (``mkdocs build --strict``, as ``make docs``) and return its directory."""
    out = tmp_path_factory.mktemp("site")
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError as e:  # make test installs the docs extra: a missing one is a set-up bug
        pytest.fail(f"{e}: install the docs extra (pip install -e '.[docs]') to build the API reference")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


@pytest.mark.slow
def test_reference_builds_strict_with_every_docstring_and_name(site):
    assert (site / "index.html").exists()
    assert (site / "reference" / "tensor" / "index.html").exists()
    shown = api_reference.shown(site)
    for ident in ["tinygrad_cnn.tensor.Tensor", "tinygrad_cnn.tensor.Tensor.backward", "tinygrad_cnn.nn.Conv2d", "tinygrad_cnn.cat"]:
        assert ident in shown
    assert len(shown) > 500  # the whole public API, not a handful of pages
    assert api_reference.undocumented(site) == []
    assert api_reference.unlisted(site) == []


def _fake_site(tmp_path, anchors, text=""):
    page = tmp_path / "reference" / "x" / "index.html"
    page.parent.mkdir(parents=True)
    page.write_text("".join(f'<h2 id="{a}">{a.rsplit(".", 1)[-1]}</h2>' for a in anchors) + text)
    return tmp_path


@pytest.mark.slow
def test_missing_docstring_is_caught(tmp_path):
    site = _fake_site(tmp_path, ["tinygrad_cnn.tensor.Tensor", "tinygrad_cnn.tensor.DEFAULT_DTYPE", "tinygrad_cnn.nope"])
    assert api_reference.undocumented(site) == ["tinygrad_cnn.nope (not found)", "tinygrad_cnn.tensor.DEFAULT_DTYPE"]


def test_missing_public_name_is_caught(tmp_path):
    site = _fake_site(tmp_path, ["tinygrad_cnn.models.LeNet"], "<code>float32</code>")
    absent = api_reference.unlisted(site)
    assert "tinygrad_cnn.models.AlexNet" in absent and "tinygrad_cnn.models.LeNet" not in absent
    assert "tinygrad_cnn.float32" not in absent and "tinygrad_cnn.float64" in absent  # constants: named on a page


def test_new_public_module_needs_a_page(monkeypatch, tmp_path):
    monkeypatch.setattr(api_reference, "NOT_PAGES", api_reference.NOT_PAGES - {"cli"})
    absent = api_reference.unlisted(_fake_site(tmp_path, []))
    assert any(a.startswith("tinygrad_cnn.cli (a new public module") for a in absent)
