"""The read-only Node API and the one graph walk that tools (check/, viz/) use, and the package
boundary: the engine does not import the checker, the checker uses no private names."""
import ast
import pathlib
import re

import numpy as np

import tinygrad_cnn as tg
from tinygrad_cnn.autograd import Function, OutputMeta, SavedValue
from tinygrad_cnn.autograd.graph import walk

PKG = pathlib.Path(tg.__file__).resolve().parent


class SaveAll(Function):
    """Saves its input, its output and a constant; two outputs, the second an integer."""

    @staticmethod
    def forward(ctx, x):
        y = x * 2
        idx = np.zeros(x.shape, dtype=np.int64)
        ctx.save_for_backward(x, y, np.float64(3.0))
        ctx.mark_non_differentiable(idx)
        return y, idx

    @staticmethod
    def backward(ctx, g, _g_idx):
        return g * 2


def test_saved_values_output_meta_and_outputs():
    x = tg.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    y, idx = SaveAll.apply(x)
    node = y.grad_fn
    saved = node.saved_values()
    assert [v.kind for v in saved] == ["input", "output", "constant"]
    assert saved[0].value is x and saved[1].index == 0 and saved[1].value is y.data and saved[2].value == 3.0
    assert all(isinstance(v, SavedValue) for v in saved)
    assert node.output_meta == (OutputMeta((2,), np.dtype(np.float64)), OutputMeta((2,), np.dtype(np.int64)))
    assert node.output_shapes == [(2,), (2,)] and node.output_dtypes == [np.dtype(np.float64), np.dtype(np.int64)]
    assert node.output(0) is y and node.output(1) is idx and node.output(2) is None
    assert not node.released
    y.sum().backward()
    assert node.released and node.saved_values() == ()
    del idx
    assert node.output(1) is None  # held weakly


def test_walk_lists_reachable_nodes_in_creation_order():
    x = tg.tensor([1.0, 2.0], requires_grad=True)
    a = x.exp()
    b = x.tanh()
    out = (a * b).sum()
    nodes = walk(out)
    assert [n.sequence_nr for n in nodes] == sorted(n.sequence_nr for n in nodes)
    assert {n.name for n in nodes} >= {"Exp", "Tanh", "Sum"} and nodes[-1] is out.grad_fn
    assert walk([a, out.grad_fn]) == nodes  # Tensors and Nodes, duplicates reached once
    assert walk(b) == [b.grad_fn]
    assert walk(x) == [] and walk([]) == []
    with tg.no_grad():
        assert walk(x * 2) == []


def test_walk_is_iterative():
    x = tg.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0
    nodes = walk(y)
    assert len(nodes) == 5000 and nodes[0] is not nodes[-1] and nodes[-1] is y.grad_fn


def test_the_engine_does_not_import_the_checker():
    # Anywhere in the engine's files, inside functions too: `from .. import check` counts.
    for path in (PKG / "autograd").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = (node.module or "").split(".") + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [part for a in node.names for part in a.name.split(".")]
            else:
                continue
            assert "check" not in names and "testing" not in names, (path.name, ast.unparse(node))


def test_checker_and_renderer_use_no_private_names_of_other_modules():
    sources = list((PKG / "check").glob("*.py")) + [PKG / "viz" / "graph.py"]
    node_internals = re.compile(r"(?<!self)\.(_seq|_saved|_out_meta|_released|_outputs|_fn|_mark|_locked)\b")
    for path in sources:
        text = path.read_text()
        assert not node_internals.search(text), (path.name, node_internals.search(text).group(0))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (path.name, node.module, private)


def test_old_checker_paths_still_work():
    import tinygrad_cnn.autograd as ag
    from tinygrad_cnn import check, testing
    from tinygrad_cnn.autograd import GradcheckError, gradcheck
    from tinygrad_cnn.check import strategies, vmap_check

    assert gradcheck is tg.gradcheck is check.gradcheck and GradcheckError is tg.GradcheckError
    assert ag.check_graph is tg.check_graph and ag.GraphCheckResult is check.GraphCheckResult
    assert all(getattr(testing, n) is getattr(strategies, n) for n in strategies.__all__)
    assert testing.check_vmap is vmap_check.check_vmap and set(testing.__all__) == set(strategies.__all__) | {"check_vmap"}
