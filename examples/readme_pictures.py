"""Regenerate the matplotlib pictures of README.md and docs/visualization.md.

    python examples/readme_pictures.py            # docs/images/readme/functional_training.png (seconds)
    python examples/readme_pictures.py --demo     # also docs/images/demo/*.png: runs `tinygrad-cnn demo` (minutes)

The functional-model picture comes from running the README's own example block, so picture and
code cannot drift apart. The demo pictures are those `tinygrad-cnn demo` writes (one epoch of
SimpleConvNet on Fashion-MNIST; the data must be installed, see docs/training.md).
"""
from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tinygrad_cnn.train import run_demo  # noqa: E402
from tinygrad_cnn.viz.plots import plot_training_curves  # noqa: E402


def functional_picture() -> Path:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    block = next(b for b in blocks if "def cnn(" in b)
    ns: dict = {}
    exec(compile(block, "README.md[functional example]", "exec"), ns)
    out = ROOT / "docs" / "images" / "readme" / "functional_training.png"
    plot_training_curves(ns["history"], out, title="The functional CNN of the README (each step = one pass over its 200 images)")
    return out


def demo_pictures() -> list[Path]:
    dest = ROOT / "docs" / "images" / "demo"
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        run_demo(tmp, progress=False)
        for name in ("filters.png", "curves.png", "feature_maps_conv1.png", "feature_maps_pool1.png"):
            shutil.copyfile(Path(tmp) / name, dest / name)
            written.append(dest / name)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", action="store_true", help="also rerun the demo for docs/images/demo/")
    args = ap.parse_args()
    paths = [functional_picture()] + (demo_pictures() if args.demo else [])
    print("wrote:\n" + "\n".join(f"  {p.relative_to(ROOT)}" for p in paths))


if __name__ == "__main__":
    main()
