"""Regenerate the matplotlib pictures of README.md and docs/visualization.md.

    python examples/readme_pictures.py            # docs/images/readme/functional_training.png (seconds)
    python examples/readme_pictures.py --demo     # also docs/images/demo/*.png: runs `tinygrad-cnn demo` (minutes)
    python examples/readme_pictures.py --results RUNS   # also docs/images/results/*_curves.png from
                                                        # RUNS/{simpleconvnet,lenet}/metrics.jsonl

The functional-model picture comes from running the README's own example block, so picture and
code cannot drift apart. The demo pictures are those `tinygrad-cnn demo` writes (one epoch of
SimpleConvNet on Fashion-MNIST; the data must be installed, see docs/training.md). The results
curves are redrawn from the metrics logs of the two 20-epoch runs of docs/results.md (its
commands write them to /tmp/tcnn/runs).
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

from tinygrad_cnn.demo import run_demo  # noqa: E402
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
        for name in ("filters.png", "curves.png", "feature_maps_conv1.png", "feature_maps_pool1.png", "scores.png"):
            shutil.copyfile(Path(tmp) / name, dest / name)
            written.append(dest / name)
    return written


RESULTS = {
    "simpleconvnet": "SimpleConvNet on Fashion-MNIST (Adam, lr 0.001, batch 100, weight std 0.01, seed 0)",
    "lenet": "LeNet-5 (relu, max pooling) on Fashion-MNIST (Adam, lr 0.001, batch 100, seed 0)",
}


def results_pictures(runs: Path) -> list[Path]:
    written = []
    for name, title in RESULTS.items():
        log = runs / name / "metrics.jsonl"
        if not log.exists():
            raise SystemExit(f"readme_pictures: no {log}; run the commands of docs/results.md first.")
        out = ROOT / "docs" / "images" / "results" / f"{name}_curves.png"
        plot_training_curves(log, out, title=title)
        written.append(out)
    return written


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--demo", action="store_true", help="also rerun the demo for docs/images/demo/")
    ap.add_argument("--results", type=Path, metavar="RUNS", help="also redraw docs/images/results/ from RUNS/<model>/metrics.jsonl")
    args = ap.parse_args()
    paths = [functional_picture()] + (demo_pictures() if args.demo else [])
    paths += results_pictures(args.results) if args.results else []
    print("wrote:\n" + "\n".join(f"  {p.relative_to(ROOT)}" for p in paths))


if __name__ == "__main__":
    main()
