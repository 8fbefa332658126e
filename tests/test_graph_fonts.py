"""Graph pictures drawn by a second renderer: every text fits its box.

Graphviz sizes each box by measuring its text; a viewer that shows the text in another font
draws it wider or narrower than the box. Here each SVG text is measured with cairo, the library
cairosvg renders with, choosing the font the way cairosvg does (the first family named), and must
lie inside the outline of its node or cluster, or inside the picture.
"""
from __future__ import annotations

import pathlib
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.viz import draw_model, render

try:  # the dev extra installs cairosvg; it needs the system's cairo library (Graphviz depends on it too)
    import cairocffi as cairo
    import cairosvg
except (ImportError, OSError) as e:
    pytest.skip(f"cairosvg with the cairo library is needed to re-render pictures: {e}", allow_module_level=True)


def _has_dejavu() -> bool:
    fc = shutil.which("fc-match")
    return fc is not None and "DejaVu Sans" in subprocess.run([fc, "DejaVu Sans"], capture_output=True, text=True).stdout


# Without the font on this machine cairo would measure a substitute, not what the pictures name.
pytestmark = pytest.mark.skipif(not _has_dejavu(), reason="the DejaVu Sans font is not installed (fc-match)")

SVG = "{http://www.w3.org/2000/svg}"
IMAGES = pathlib.Path(__file__).resolve().parent.parent / "docs" / "images"
TOL = 1.0  # points: rounding in Graphviz's coordinates


def _measure(ctx, text: str, family: str, size: float, bold: bool) -> float:
    weight = cairo.FONT_WEIGHT_BOLD if bold else cairo.FONT_WEIGHT_NORMAL
    ctx.select_font_face(family, cairo.FONT_SLANT_NORMAL, weight)
    ctx.set_font_size(size)
    return ctx.text_extents(text)[4]  # x_advance, as cairosvg advances along a line


def _xs(el) -> list[float]:
    """The x coordinates of a drawn outline (polygon, path, ellipse)."""
    tag = el.tag.replace(SVG, "")
    if tag in ("polygon", "polyline"):
        return [float(p.split(",")[0]) for p in el.get("points").split()]
    if tag == "path":
        nums = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?", el.get("d"))]
        return nums[0::2]
    if tag == "ellipse":
        cx, rx = float(el.get("cx")), float(el.get("rx"))
        return [cx - rx, cx + rx]
    return []


def overflows(svg_text: str) -> list[str]:
    """Texts that run outside the box of their node or cluster (or outside the picture), or into
    the next piece of their line."""
    root = ET.fromstring(svg_text)
    ctx = cairo.Context(cairo.ImageSurface(cairo.FORMAT_ARGB32, 1, 1))
    # cairosvg draws the picture at 96 pixels per inch: glyph advances are rounded at that size
    width_pt = float(root.get("width").removesuffix("pt"))
    ctx.scale(width_pt * 96 / 72 / float(root.get("viewBox").split()[2]), width_pt * 96 / 72 / float(root.get("viewBox").split()[2]))
    graph = root.find(f"{SVG}g")
    page = _xs(graph.find(f"{SVG}polygon"))
    bad = []
    for g in graph.iter(f"{SVG}g"):
        cls = g.get("class")
        if cls not in ("node", "cluster", "graph"):
            continue
        outline = [x for el in g if el.tag != f"{SVG}text" for x in _xs(el)] if cls != "graph" else []
        # a node drawn without an outline (the legend, a plain-text node) must stay inside the picture
        lo, hi = (min(outline), max(outline)) if cls == "cluster" or (outline and cls == "node" and _filled(g)) else (min(page), max(page))
        spans = []
        for t in g.findall(f"{SVG}text"):
            # what an SVG renderer draws: ordinary spaces at the ends dropped and runs of them
            # collapsed (xml:space default); no-break spaces kept
            drawn = re.sub(" +", " ", t.text or "").strip(" ")
            if not drawn:
                continue
            if t.text[0] == " " and drawn[0] != "\xa0" and spans:  # the only space before it is dropped
                bad.append(f"{g.findtext(f'{SVG}title')}: {t.text!r} starts with a space that SVG viewers drop")
            family = t.get("font-family", "sans-serif").split(",")[0].strip("\"' ")
            size, bold = float(t.get("font-size", "14")), t.get("font-weight") == "bold"
            w = _measure(ctx, drawn, family, size, bold)
            x = float(t.get("x"))
            left = {"start": x, "middle": x - w / 2, "end": x - w}[t.get("text-anchor", "start")]
            title = g.findtext(f"{SVG}title")
            if left < lo - TOL or left + w > hi + TOL:
                bad.append(f"{title}: {drawn!r} spans {left:.1f}..{left + w:.1f}, box {lo:.1f}..{hi:.1f}")
            # where the glyphs start and end: kept blanks at the ends may overlap a neighbour
            lead = _measure(ctx, drawn[: len(drawn) - len(drawn.lstrip())], family, size, bold)
            trail = _measure(ctx, drawn[len(drawn.rstrip()):], family, size, bold)
            spans.append((float(t.get("y")), left + lead, left + w - trail, drawn))
        # pieces of one line (a bold module path, then the class name) must not overlap each other
        spans.sort()
        for (y0, _l0, r0, s0), (y1, l1, _r1, s1) in zip(spans, spans[1:]):
            if y0 == y1 and l1 < r0 - TOL:
                bad.append(f"{title}: {s0!r} ends at {r0:.1f}, after {s1!r} starts at {l1:.1f}")
    return bad


def _filled(g) -> bool:
    """Whether the node draws a visible outline of its own (not only the cells of an HTML table)."""
    first = next((el for el in g if el.tag != f"{SVG}title"), None)
    return first is not None and first.tag != f"{SVG}text" and first.get("stroke") not in (None, "transparent")


def _labelled_net_svg(tmp_path) -> str:
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(1, 4, 3, seed=0), nn.ReLU(), nn.MaxPool2d(2))
            self.classifier_with_a_long_name = nn.Linear(36, 10, seed=1)

        def forward(self, x):
            return self.classifier_with_a_long_name(self.features(x).flatten(1))

    g = draw_model(Net(), tg.randn(2, 1, 8, 8, seed=0), loss_fn=lambda o: F.cross_entropy(o, np.array([1, 7])),
                   view="backward", title="A title wider than the picture would otherwise be, with bold module names")
    return render(g, tmp_path / "net.svg").read_text()


@pytest.mark.skipif(shutil.which("dot") is None, reason="rendering needs Graphviz's dot program")
def test_a_rendered_graph_fits_its_text_in_another_renderer(tmp_path):
    svg = _labelled_net_svg(tmp_path)
    assert 'font-family="DejaVu Sans' in svg and 'font-weight="bold"' in svg
    assert overflows(svg) == []
    png = cairosvg.svg2png(bytestring=svg.encode())
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("path", sorted(IMAGES.glob("*.svg")), ids=lambda p: p.stem)
def test_doc_pictures_fit_their_text_in_another_renderer(path):
    assert overflows(path.read_text()) == []


@pytest.mark.skipif(shutil.which("dot") is None, reason="rendering needs Graphviz's dot program")
def test_the_check_sees_text_wider_than_its_box(tmp_path):
    svg = _labelled_net_svg(tmp_path)
    # Lengthen one node's text after layout, as a wider viewer font would: the check must report it.
    longer = re.sub(r">(Conv2dBackward)</text>", r">\1 and a great deal more text than the box holds</text>", svg, count=1)
    assert longer != svg
    bad = overflows(longer)
    assert len(bad) == 1 and "Conv2dBackward and a great deal" in bad[0]
    # Text measured by Graphviz in one font but shown in another (the old Helvetica labels) does not fit.
    assert overflows(svg.replace("DejaVu Sans,", "DejaVu Sans Mono,")) != []
