"""Every ```python block in docs/**/*.md and README.md runs: the blocks of a docs page share one
namespace (a page reads top to bottom), while each README block runs alone in a fresh one, since
readers copy them one at a time. The API reference pages (docs/reference/) hold only mkdocstrings
directives, no python blocks."""
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FILES = sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"```python\n(.*?)```", re.S)
README_BLOCKS = BLOCK.findall(README.read_text())


def _run(code: str, name: str, ns: dict) -> None:
    try:
        exec(compile(code, name, "exec"), ns)
    except Exception as e:  # pragma: no cover - the message is the point
        raise AssertionError(f"{name} failed: {e!r}\n{code}") from e


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_doc_examples_run(path, tmp_path, monkeypatch):
    blocks = BLOCK.findall(path.read_text())
    monkeypatch.chdir(tmp_path)
    ns: dict = {"__name__": f"doc_{path.stem}"}
    for i, code in enumerate(blocks):
        _run(code, f"{path.name}[block {i}]", ns)


@pytest.mark.parametrize("i", range(len(README_BLOCKS)))
def test_readme_block_runs_alone(i, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run(README_BLOCKS[i], f"README.md[block {i}]", {"__name__": "readme_block"})


def test_reference_pages_hold_no_code_to_run():
    pages = sorted((ROOT / "docs" / "reference").glob("*.md"))
    assert pages, "docs/reference/ has no pages"
    for p in pages:
        assert not BLOCK.findall(p.read_text()), f"{p.name}: reference pages are generated from docstrings; put examples there"
