"""Regenerate the graph pictures of docs/graphs.md (docs/images/*.svg) with Graphviz's dot.

    python scripts/make_graph_docs.py            # rewrite every picture
    python scripts/make_graph_docs.py lenet_forward alexnet_depth2
    python scripts/make_graph_docs.py --check    # exit 1 if a picture is stale or missing

Each SVG carries a SHA-256 of the structure of the DOT source it was drawn from (a comment on its
second line; the wording inside nodes is left out, see ``dot_hash``).
``--check`` rebuilds only the DOT (no Graphviz needed) and compares, so a change to the drawing
code or a model that changes a picture fails tests/test_viz.py until the pictures are regenerated.
The pictures show no random values, so the DOT is the same on every machine.
"""
from __future__ import annotations

import functools
import hashlib
import pathlib
import re
import sys
from collections.abc import Callable

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tinygrad_cnn as tg  # noqa: E402
from tinygrad_cnn import nn  # noqa: E402
from tinygrad_cnn.autograd import Function, keep_inputs  # noqa: E402
from tinygrad_cnn.nn import functional as F  # noqa: E402
from tinygrad_cnn.viz import Graph, draw_model, render, to_dot  # noqa: E402
from tinygrad_cnn.viz.model_graphs import example_model, model_graph  # noqa: E402

IMAGES = ROOT / "docs" / "images"
MARK = "tinygrad_cnn-dot-sha256:"


# ---- the custom op of docs/graphs.md ---------------------------------------------------------


class Swish(Function):
    """swish(x) = x * sigmoid(beta * x); a user-written primitive with a Tensor-op backward."""

    @staticmethod
    def forward(ctx, x, beta=1.0):
        s = 1.0 / (1.0 + np.exp(-beta * x))
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        beta = ctx.params["beta"]
        return g * (s + beta * x * s * (1 - s))


class SwishMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8, seed=0)
        self.fc2 = nn.Linear(8, 3, seed=1)

    def forward(self, x):
        return self.fc2(Swish.apply(self.fc1(x), beta=1.5))


def custom_op(view: str) -> Graph:
    model = SwishMLP()
    x = tg.Tensor(np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4), name="x")
    labels = np.array([0, 2])
    return draw_model(model, x, loss_fn=lambda out: F.cross_entropy(out, labels), view=view,
                      title=f"A custom op (Swish) in a Module: {view} view")


def higher_order() -> Graph:
    x = tg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True, name="x")
    with keep_inputs():  # so the constants of the backward rules show their values
        (x.tanh() ** 2).sum().backward(create_graph=True)
    return to_dot(x.grad, names={"x.grad": x.grad}, title="The graph of x.grad after backward(create_graph=True)")


def values_and_highlight() -> Graph:
    w = tg.Tensor(np.array([[1.0, -2.0], [0.5, 3.0]], np.float32), requires_grad=True, name="w")
    x = tg.Tensor(np.array([[0.0, 1.0], [2.0, -1.0]], np.float32), name="x")
    with keep_inputs():
        h = x @ w
        with np.errstate(invalid="ignore"):
            y = h.log()  # log of negative numbers: NaN
        loss = y.sum()
    return to_dot(loss, show_values=True, highlight=y, title="show_values=True, highlight=y (log of negative values)")


@functools.cache
def alexnet() -> tuple:
    return example_model("alexnet")  # built once: 62M parameters take a second


PICTURES: dict[str, Callable[[], Graph]] = {
    "simpleconvnet_forward": lambda: model_graph("simpleconvnet"),
    "simpleconvnet_backward": lambda: model_graph("simpleconvnet", view="backward"),
    "lenet_forward": lambda: model_graph("lenet"),
    "lenet_backward": lambda: model_graph("lenet", view="backward"),
    "alexnet_depth1": lambda: model_graph("alexnet", depth=1, example=alexnet()),
    "alexnet_depth2": lambda: model_graph("alexnet", depth=2, example=alexnet()),
    "alexnet_backward_depth2": lambda: model_graph("alexnet", view="backward", depth=2, example=alexnet()),
    "custom_op_forward": lambda: custom_op("forward"),
    "custom_op_backward": lambda: custom_op("backward"),
    "higher_order": higher_order,
    "values_highlight": values_and_highlight,
}


def dot_hash(graph: Graph) -> str:
    """SHA-256 of the picture's structure: the DOT source without the text inside node labels.

    Node names (``Conv2d_1``, ``c1.weight``), edges, module boxes (path, class, parameter count)
    and colours all count; the wording inside a node (an op's attributes, shapes, what a backward
    rule saved) does not, so an op's internals can change without failing the test, while a new
    op, a renamed parameter or a changed module does."""
    source = re.sub(r"\[label=<.*?> (?=fillcolor=|shape=plaintext)", "[", graph.source)
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def stamped_hash(path: pathlib.Path) -> str | None:
    """The DOT hash recorded in a picture, or None when it is missing or unstamped."""
    if not path.exists():
        return None
    m = re.search(rf"<!-- {MARK} ([0-9a-f]{{64}}) -->", path.read_text(encoding="utf-8", errors="replace")[:4000])
    return m.group(1) if m else None


def check(names: list[str] | None = None) -> list[str]:
    """Names of pictures whose SVG is missing or was drawn from a different DOT source."""
    stale = []
    for name in names or list(PICTURES):
        tg.manual_seed(0)
        if stamped_hash(IMAGES / f"{name}.svg") != dot_hash(PICTURES[name]()):
            stale.append(name)
    return stale


def write(name: str) -> pathlib.Path:
    tg.manual_seed(0)
    graph = PICTURES[name]()
    path = render(graph, IMAGES / f"{name}.svg")
    text = path.read_text(encoding="utf-8")
    head, _, rest = text.partition("\n")
    stamped = f"{head}\n<!-- {MARK} {dot_hash(graph)} -->\n{rest}"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(stamped, encoding="utf-8")
    tmp.replace(path)
    return path


def main(argv: list[str]) -> int:
    do_check = "--check" in argv
    names = [a for a in argv if not a.startswith("--")]
    unknown = [n for n in names if n not in PICTURES]
    if unknown:
        print(f"unknown picture(s) {unknown}; choose from {list(PICTURES)}", file=sys.stderr)
        return 2
    if do_check:
        stale = check(names or None)
        for n in stale:
            print(f"stale or missing: docs/images/{n}.svg (run: python scripts/make_graph_docs.py {n})")
        return 1 if stale else 0
    for n in names or list(PICTURES):
        print(write(n).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
