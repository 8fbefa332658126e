"""Checks of the built API reference, run by mkdocs after each build (``hooks:`` in mkdocs.yml)
and by tests/test_api_docs.py: every object the reference shows has a docstring, and every
public name of the documented modules is on some reference page. A failure stops the build.

mkdocs strict mode already fails on broken references; it does not notice an object without a
docstring (mkdocstrings shows it anyway, ``show_if_no_docstring``), hence these checks.
"""
from __future__ import annotations

import html
import importlib
import inspect
import pathlib
import pkgutil
import re
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent

# The public modules the reference covers: every name in their __all__ must be on some page.
MODULES = [
    "tinygrad_cnn", "tinygrad_cnn.autograd", "tinygrad_cnn.nn", "tinygrad_cnn.nn.functional", "tinygrad_cnn.nn.init",
    "tinygrad_cnn.nn.utils", "tinygrad_cnn.optim", "tinygrad_cnn.optim.rules", "tinygrad_cnn.optim.functional",
    "tinygrad_cnn.optim.lr_scheduler", "tinygrad_cnn.func", "tinygrad_cnn.per_sample", "tinygrad_cnn.pytree", "tinygrad_cnn.check",
    "tinygrad_cnn.check.strategies", "tinygrad_cnn.testing", "tinygrad_cnn.viz", "tinygrad_cnn.viz.plots", "tinygrad_cnn.data",
    "tinygrad_cnn.train", "tinygrad_cnn.demo", "tinygrad_cnn.models", "tinygrad_cnn.onnx", "tinygrad_cnn.onnx.exporter",
    "tinygrad_cnn.onnx.importer", "tinygrad_cnn.onnx.reader",
]  # fmt: skip

# Top-level modules without a page of their own: internals (the primitives, kernels, command
# line) and modules whose public names the pages above cover (Tensor, save/load; utils is
# PyTorch's spelling of data, ``tg.utils.data``).
NOT_PAGES = {"__main__", "atomic", "cli", "kernels", "ops", "tensor", "serialization", "utils"}

_ANCHOR = re.compile(r'id="(tinygrad_cnn(?:\.\w+)*)"')


def _pages(site: pathlib.Path) -> list[str]:
    return [p.read_text() for p in sorted((site / "reference").rglob("*.html"))]


def shown(site: pathlib.Path) -> set[str]:
    """The identifiers of every object the reference renders (mkdocstrings' heading anchors)."""
    return {m for text in _pages(site) for m in _ANCHOR.findall(text)}


def undocumented(site: pathlib.Path) -> list[str]:
    """The objects the built reference in ``site`` shows that have no docstring, as Griffe (with the
    reference's extension, scripts/griffe_docstrings.py) reads them."""
    import griffe

    extensions = griffe.load_extensions(f"{ROOT / 'scripts' / 'griffe_docstrings.py'}:RestToMarkdown")
    pkg = griffe.load("tinygrad_cnn", search_paths=[str(ROOT)], extensions=extensions, resolve_aliases=True, resolve_external=False)
    missing = []
    for ident in sorted(shown(site)):
        try:
            obj = pkg[ident.split(".", 1)[1]] if "." in ident else pkg
        except KeyError:
            missing.append(f"{ident} (not found)")
            continue
        if not (obj.docstring and obj.docstring.value.strip()):
            missing.append(ident)
    return missing


def public_names(mod: Any) -> list[str]:
    """``__all__``, or for a module without one the functions and classes it defines."""
    if hasattr(mod, "__all__"):
        return list(mod.__all__)
    return [n for n, v in vars(mod).items() if not n.startswith("_") and getattr(v, "__module__", None) == mod.__name__]


def unlisted(site: pathlib.Path) -> list[str]:
    """The public names of :data:`MODULES` the reference leaves out. A class or function must be
    rendered under that path, or under another public path of the same object and named on a
    page (``tg.divide``, numpy's name of ``div``); a constant must be named on a page."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    anchors = shown(site)
    text = html.unescape("\n".join(_pages(site)))
    public = [(m, n, getattr(mod, n)) for m in MODULES for mod in [importlib.import_module(m)] for n in public_names(mod)]
    paths: dict[int, set[str]] = {}  # every public path of each object (tg.cat is also tg.nn.functional.cat)
    for m, n, obj in public:
        paths.setdefault(id(obj), set()).add(f"{m}.{n}")
        if hasattr(obj, "__qualname__") and hasattr(obj, "__module__"):
            paths[id(obj)].add(f"{obj.__module__}.{obj.__qualname__}")
    pkg = importlib.import_module("tinygrad_cnn")
    covered = {m.split(".")[1] for m in MODULES if "." in m} | NOT_PAGES
    absent = [
        f"tinygrad_cnn.{info.name} (a new public module: give it a page in docs/reference/, add it to MODULES here)"
        for info in pkgutil.iter_modules(pkg.__path__)
        if info.name not in covered and not info.name.startswith("_")
    ]
    for m, n, obj in public:
        if inspect.ismodule(obj) or f"{m}.{n}" in anchors:
            continue  # a submodule is checked through MODULES
        named = f">{n}<" in text or f">tg.{n}<" in text
        if (paths[id(obj)] & anchors or not callable(obj)) and named:
            continue
        absent.append(f"{m}.{n}")
    return absent


def on_post_build(config: Any, **kwargs: Any) -> None:
    """mkdocs hook: fail the build when the reference misses a docstring or a public name."""
    from mkdocs.exceptions import PluginError

    site = pathlib.Path(config["site_dir"])
    problems = [f"no docstring: {x}" for x in undocumented(site)]
    problems += [f"not in docs/reference/*.md: {x}" for x in unlisted(site)]
    if problems:
        raise PluginError(f"API reference: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
