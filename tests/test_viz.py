"""Graph pictures: the DOT of small known graphs (nodes, edges, labels, clusters, folding), real
SVG/PNG/PDF from Graphviz's dot, and the failure modes."""
import re
import shutil
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.autograd import Function, Node, keep_inputs
from tinygrad_cnn.autograd.graph import walk
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.viz import Graph, GraphvizNotFoundError, draw_model, render, to_dot
from tinygrad_cnn.viz import graph as vg

HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="Graphviz 'dot' is not installed (apt-get install graphviz)")

_ID = r'"(?:[^"\\]|\\.)*"|[A-Za-z_][A-Za-z0-9_]*'
NODE = re.compile(rf"^\t*({_ID}) \[label=", re.M)
EDGE = re.compile(rf"^\t*({_ID}) -> ({_ID})", re.M)


def _unq(s):
    return s[1:-1].replace('\\"', '"').replace("\\\\", "\\") if s.startswith('"') else s


def parse(g):
    """(node -> its DOT line, list of edges, node -> enclosing cluster labels outermost first)."""
    nodes, edges, clusters, stack = {}, [], {}, []
    for line in g.source.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster_"):
            stack.append(None)
        elif s.startswith("graph [") and stack and stack[-1] is None:
            stack[-1] = re.search(r"label=<(.*?)> labeljust", s).group(1)
        elif s == "}":
            if stack:
                stack.pop()
        elif m := NODE.match(line):
            name = _unq(m.group(1))
            nodes[name] = line
            clusters[name] = list(stack)
        elif m := EDGE.match(line):
            a, b = _unq(m.group(1)), _unq(m.group(2))
            edges.append((b, a) if "dir=back" in line else (a, b))  # as drawn: dir=back flips the arrow
    nodes.pop("legend", None)
    return nodes, edges, clusters


def plain(label_line):
    text = re.sub(r"<BR/>", "\n", label_line)
    return re.sub(r"<[^>]+>", "", text).replace("&gt;", ">").replace("&lt;", "<")


# ---- small hand-made graphs ------------------------------------------------------------------


def test_forward_view_of_a_small_graph_has_exactly_its_tensors_ops_and_edges():
    x = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True, name="x")
    w = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True, name="w")
    y = (x * w).relu().sum()
    nodes, edges, clusters = parse(to_dot(y))
    assert set(nodes) == {"x", "w", "Mul_1", "ReLU_1", "Sum_1", "output"}
    assert sorted(edges) == sorted([("x", "Mul_1"), ("w", "Mul_1"), ("Mul_1", "ReLU_1"), ("ReLU_1", "Sum_1"), ("Sum_1", "output")])
    assert "(2, 3) float32" in plain(nodes["x"])
    assert "\u2192 (2, 3)" in plain(nodes["Mul_1"]) and "\u2192 ()" in plain(nodes["Sum_1"])
    assert all(c == [] for c in clusters.values())  # no modules, no clusters


def test_backward_view_shows_gradient_functions_and_what_each_saved():
    x = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True, name="x")
    w = tg.Tensor(np.ones((2, 3), np.float32), requires_grad=True, name="w")
    y = (x * w).exp().sum()
    g = to_dot(y, view="backward")
    nodes, edges, _ = parse(g)
    assert set(nodes) == {"MulBackward_1", "ExpBackward_1", "SumBackward_1", "x", "w", "output"}
    # arrows follow the gradient: output -> ... -> leaves
    chain = [("output", "SumBackward_1"), ("SumBackward_1", "ExpBackward_1"), ("ExpBackward_1", "MulBackward_1")]
    assert sorted(edges) == sorted(chain + [("MulBackward_1", "x"), ("MulBackward_1", "w")])
    assert "saved: x (2, 3), w (2, 3)" in plain(nodes["MulBackward_1"])
    assert "saved: result (2, 3)" in plain(nodes["ExpBackward_1"])
    y.backward()  # frees what was saved: the picture says so
    nodes, _, _ = parse(to_dot(y, view="backward"))
    assert "freed by backward()" in plain(nodes["MulBackward_1"])


def test_same_tensor_saved_twice_is_named_by_each_argument():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    nodes, _, _ = parse(to_dot(x * x, view="backward"))
    assert "saved: a (3,), b (3,)" in plain(nodes["MulBackward_1"])


def test_gradient_graph_after_create_graph_can_be_drawn():
    x = tg.Tensor(np.array([0.5, 2.0]), requires_grad=True, name="x")
    (x ** 3).sum().backward(create_graph=True)
    gx = x.grad
    assert gx.grad_fn is not None
    # the ops reachable from the gradient, walked here independently (small graph: recursion is fine)
    expected = set()

    def walk(n):
        if n is None or not isinstance(n, Node) or id(n) in {id(e) for e in expected}:
            return
        expected.add(n)
        for m, _ in n.next_functions:
            walk(m)

    walk(gx.grad_fn)
    for view, suffix in (("forward", ""), ("backward", "Backward")):
        nodes, edges, _ = parse(to_dot(gx, view=view))
        ops = [k for k in nodes if "_" in k and k not in ("x",)]
        assert sorted(re.sub(r"_\d+$", "", k) for k in ops) == sorted(n.name + suffix for n in expected)
        assert "x" in nodes and any("x" in e for e in edges)


def test_op_attributes_constants_and_multi_outputs_are_labelled():
    class Split(Function):
        @staticmethod
        def forward(ctx, x, *, at, stride):
            return x[:at] * stride[0], x[at:]

        @staticmethod
        def backward(ctx, g0, g1):
            return F.cat([g0 * ctx.params["stride"][0], g1])

    x = tg.Tensor(np.arange(5, dtype=np.float32), requires_grad=True, name="x")
    a, b = Split.apply(x, at=2, stride=(3, 3))
    y = a.sum() + (b * tg.tensor(2.0)).sum()
    g = to_dot(y)
    nodes, edges, _ = parse(g)
    assert "at=2" in plain(nodes["Split_1"]) and "stride=3" in plain(nodes["Split_1"])
    assert "\u2192 (2,), (3,)" in plain(nodes["Split_1"])
    assert re.search(r"Split_1 -> Sum_\d \[label=out0", g.source) and re.search(r"Split_1 -> Mul_1 \[label=out1", g.source)
    # a scalar constant is unknown without keep_inputs, shown inline with it
    assert "b=const" in plain(nodes["Mul_1"])
    with keep_inputs():
        y2 = (x * tg.tensor(2.0)).sum()
    assert "b=2" in plain(parse(to_dot(y2))[0]["Mul_1"])
    # a Python number is a parameter of the scalar op, always shown
    assert "c=2" in plain(parse(to_dot((x * 2.0).sum()))[0]["MulScalar_1"])


def test_non_grad_tensor_inputs_appear_when_inputs_are_kept():
    w = tg.Tensor(np.ones((3, 2), np.float32), requires_grad=True, name="w")
    data = tg.Tensor(np.ones((4, 3), np.float32), name="data")
    with keep_inputs():
        y = (data @ w).sum()
    nodes, edges, _ = parse(to_dot(y))
    assert ("data", "MatMul_1") in edges and "(4, 3) float32" in plain(nodes["data"])
    assert vg.STYLE["input"][0] in nodes["data"]


def test_named_intermediate_tensors_are_drawn_as_tensor_nodes():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="x")
    h = x.exp()
    h.name = "h"
    y = (h * h).sum()
    nodes, edges, _ = parse(to_dot(y, names={"input x": x}))
    assert ("Exp_1", "h") in edges and edges.count(("h", "Mul_1")) == 2
    assert "input_x" in nodes and ("input_x", "Exp_1") in edges  # names= overrides, ids stay valid


# ---- modules: names, clusters, folding -----------------------------------------------------------


class Block(nn.Module):
    def __init__(self, d_in, d_out, seed):
        super().__init__()
        self.fc = nn.Linear(d_in, d_out, seed=seed)

    def forward(self, x):
        y = F.relu(self.fc(x))
        return y + x if y.shape == x.shape else y


class Net(nn.Module):
    def __init__(self, widths=(8, 8, 8, 8)):
        super().__init__()
        self.inp = nn.Linear(4, widths[0], seed=0)
        self.blocks = nn.Sequential(*[Block(a, b, seed=i + 1) for i, (a, b) in enumerate(zip(widths, widths[1:]))])
        self.head = nn.Linear(widths[-1], 2, seed=7)

    def forward(self, x):
        return self.head(self.blocks(self.inp(x).tanh()))


def test_parameters_are_named_by_module_path_and_ops_clustered_by_module():
    net = Net()
    x = tg.randn(5, 4, seed=0)
    g = to_dot(net(x), fold_repeats=False)  # the module is found from the node scopes
    nodes, edges, clusters = parse(g)
    assert {"inp.weight", "inp.bias", "blocks.1.fc.weight", "head.bias"} <= set(nodes)
    assert "(8, 4) float32" in plain(nodes["inp.weight"])
    paths = [plain(c).split(":")[0].split("(")[0].strip() for c in clusters["blocks.1.fc.weight"]]
    assert paths == ["Net", "blocks", "blocks.1", "blocks.1.fc"]
    labels = {plain(c) for cs in clusters.values() for c in cs}
    assert "Net  (274 params)" in labels  # 40 + 3 * 72 + 18
    assert any(lbl.startswith("blocks.0: Block  (72 params)") for lbl in labels)
    relu = [n for n, cs in clusters.items() if n.startswith("ReLU")]
    assert len(relu) == 3 and all(len(clusters[n]) == 3 for n in relu)  # in Net > blocks > blocks.k


def test_depth_folds_modules_into_nodes_with_input_and_output_shapes():
    net = Net()
    x = tg.randn(5, 4, seed=0)
    nodes, edges, _ = parse(draw_model(net, x, depth=1, fold_repeats=False))
    assert set(nodes) == {"input", "inp", "Tanh_1", "blocks", "head", "output"}
    assert sorted(edges) == sorted([("input", "inp"), ("inp", "Tanh_1"), ("Tanh_1", "blocks"), ("blocks", "head"), ("head", "output")])
    assert "in (5, 4)  \u2192  out (5, 8)" in plain(nodes["inp"]) and "Linear  40 params" in plain(nodes["inp"])
    assert "in (5, 8)  \u2192  out (5, 8)" in plain(nodes["blocks"]) and "Sequential  216 params" in plain(nodes["blocks"])
    nodes0, edges0, _ = parse(draw_model(net, x, depth=0))
    assert set(nodes0) == {"input", "Net", "output"} and sorted(edges0) == [("Net", "output"), ("input", "Net")]
    assert "in (5, 4)  \u2192  out (5, 2)" in plain(nodes0["Net"])


def test_identical_consecutive_blocks_fold_into_one_with_a_count():
    net = Net()
    out = net(tg.randn(5, 4, seed=0))
    nodes, edges, clusters = parse(to_dot(out, depth=2))
    assert "blocks.0" in nodes and "blocks.1" not in nodes and "blocks.2" not in nodes
    assert "blocks.0 .. blocks.2  x3" in plain(nodes["blocks.0"]) and "Block  72 params" in plain(nodes["blocks.0"])
    assert ("Tanh_1", "blocks.0") in edges
    (after,) = [d for s, d in edges if s == "blocks.0"]  # the run's output goes on into head
    assert clusters[after][-1].startswith("<B>head")
    # expanded: the first block drawn once inside a cluster saying x3; the rest of the graph
    # continues from its output
    nodes, edges, clusters = parse(to_dot(out))
    assert "blocks.0.fc.weight" in nodes and "blocks.1.fc.weight" not in nodes
    assert any("blocks.0 .. blocks.2: Block x3" in plain(c) for c in clusters["blocks.0.fc.weight"])
    in_run = {n for n, cs in clusters.items() if any("x3" in c for c in cs)}
    leaving = [(s, d) for s, d in edges if s in in_run and d not in in_run]
    assert len(leaving) == 1 and leaving[0][0].startswith("Add") and len(clusters[leaving[0][0]]) == 3  # the residual add
    # it goes into head's first layer, whose ops sit in the box of their F.linear call
    assert [plain(c).split(":")[0] for c in clusters[leaving[0][1]][-2:]] == ["head", "linear"]


def test_blocks_that_differ_or_do_not_chain_are_not_folded():
    net = Net(widths=(8, 6, 6, 6))  # blocks.0 differs; blocks.1 and blocks.2 are identical
    nodes, _, _ = parse(to_dot(net(tg.randn(5, 4, seed=0)), depth=2))
    assert "blocks.0" in nodes and "blocks.1" in nodes and "blocks.2" not in nodes
    assert "x2" in plain(nodes["blocks.1"]) and "x" not in plain(nodes["blocks.0"]).split("Block")[0].replace("blocks.0", "")

    class Parallel(nn.Module):  # two identical blocks on the same input: not a chain
        def __init__(self):
            super().__init__()
            self.a, self.b = Block(4, 4, 0), Block(4, 4, 0)

        def forward(self, x):
            return self.a(x) + self.b(x)

    nodes, _, _ = parse(to_dot(Parallel()(tg.randn(2, 4, seed=0)), depth=1))
    assert {"a", "b"} <= set(nodes)


def test_folding_keeps_every_edge_between_visible_elements(rng):
    net = Net()
    out = net(tg.randn(5, 4, seed=0))
    for depth in (None, 0, 1, 2, 3):
        for fold in (False, True):
            nodes, edges, _ = parse(to_dot(out, depth=depth, fold_repeats=fold))
            assert all(s in nodes and d in nodes for s, d in edges)
            # connected from every node to the output
            reach, stack = {"output"}, ["output"]
            while stack:
                n = stack.pop()
                for s, d in edges:
                    if d == n and s not in reach:
                        reach.add(s)
                        stack.append(s)
            assert reach == set(nodes), (depth, fold)


def test_draw_model_names_input_loss_and_shows_values_and_gradient_norms():
    net = Net()
    x = tg.randn(5, 4, seed=0)
    g = draw_model(net, x, loss_fn=lambda o: (o * o).mean(), backward=True, show_values=True, fold_repeats=False)
    nodes, edges, clusters = parse(g)
    assert "input" in nodes and "loss" in nodes and clusters["input"] == []
    w = net.inp.weight
    expect = f"|grad| {np.sqrt((w.grad.data.astype(np.float64) ** 2).sum()):.3g}"
    assert expect in plain(nodes["inp.weight"])
    assert f"min {w.data.min():.3g}  max {w.data.max():.3g}" in plain(nodes["inp.weight"])
    # every op's value is known while drawing (kept inputs): its output stats are shown
    assert all("mean" in plain(line) for n, line in nodes.items() if re.match(r"[A-Z][a-zA-Z]+_\d+$", n))


def test_nan_and_inf_are_flagged_red():
    x = tg.Tensor(np.array([np.nan, 1.0, np.inf], np.float32), requires_grad=True, name="x")
    y = (x * 2.0).sum()
    assert "value not kept" in plain(parse(to_dot(y, show_values=True))[0]["MulScalar_1"])  # intermediates are held weakly
    with keep_inputs():
        y = (x * 2.0).sum()
    nodes, _, _ = parse(to_dot(y, show_values=True))
    assert "NaN x1 Inf x1" in plain(nodes["x"]) and f'color="{vg.BAD}"' in nodes["x"]
    assert f'color="{vg.BAD}"' in nodes["MulScalar_1"]
    ok = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="ok")
    nodes, _, _ = parse(to_dot((ok * 2.0).sum(), show_values=True))
    assert vg.BAD not in nodes["ok"] and vg.BAD not in nodes["MulScalar_1"]


def test_highlight_accepts_nodes_tensors_and_gradcheck_results():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="x")
    h = x.exp()
    y = h.sin().sum() if hasattr(h, "sin") else h.tanh().sum()

    class Result:
        failing_nodes = [h.grad_fn]

    red = f'fillcolor="{vg.HIGHLIGHT[0]}"'
    for hl in (h, h.grad_fn, Result(), [h.grad_fn]):
        g = to_dot(y, highlight=hl)
        nodes, _, _ = parse(g)
        assert red in nodes["Exp_1"] and not any(red in line for n, line in nodes.items() if n != "Exp_1")
        assert "highlighted" in g.source  # the legend explains the colour
    nodes, _, _ = parse(to_dot(y, highlight=x))
    assert red in nodes["x"]
    with pytest.raises(TypeError, match="failing_nodes"):
        to_dot(y, highlight=3.5)


def test_legend_lists_the_kinds_present():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="x")
    g = to_dot(x.exp().sum())
    assert "legend" in g.source and "output" in g.source and "parameter (named" not in g.source
    assert "legend" not in to_dot(x.exp().sum(), legend=False).source


def test_bad_arguments_say_what_is_allowed():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True)
    y = x.exp()
    with pytest.raises(ValueError, match="view must be one of"):
        to_dot(y, view="sideways")
    with pytest.raises(ValueError, match="depth must be None or an integer >= 0"):
        to_dot(y, depth=-1)
    with pytest.raises(ValueError, match="rankdir"):
        to_dot(y, rankdir="XY")
    with pytest.raises(TypeError, match="outputs must be Tensors"):
        to_dot(np.ones(3))
    with pytest.raises(ValueError, match="no outputs"):
        to_dot()
    with pytest.raises(ValueError, match="format must be one of"):
        render(y, "out.gif", format="gif")
    with pytest.raises(TypeError, match="callable"):
        draw_model(3, x)
    with pytest.raises(ValueError, match="does not require grad"):
        draw_model(lambda t: t * 2, np.ones(3, np.int64))  # integers cannot require grad


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 100), st.integers(0, 100)), min_size=1, max_size=25))
def test_random_graphs_draw_every_node_once_with_every_edge(ops):
    leaves = [tg.Tensor(np.ones(2, np.float32), requires_grad=True, name=f"p{i}") for i in range(3)]
    vals = list(leaves)
    for kind, i, j in ops:
        a, b = vals[i % len(vals)], vals[j % len(vals)]
        vals.append(a.exp() if kind == 0 else a.tanh() if kind == 1 else a * b if kind == 2 else a + b)
    out = vals[-1] if vals[-1].grad_fn is not None else vals[-1] * 1.0
    for view in ("forward", "backward"):
        g = to_dot(out, view=view)
        nodes, edges, _ = parse(g)
        walked = walk(out)
        n_edges = sum(e is not None for n in walked for e in n.next_edges) + 1
        used_leaves = {id(e[0]) for n in walked for e in n.next_edges if e is not None and not isinstance(e[0], Node)}
        assert len(nodes) == len(walked) + len(used_leaves) + 1
        assert len(edges) == n_edges
        assert all(g.node_id(n) in nodes for n in walked)


@pytest.mark.slow
def test_hundred_thousand_op_chain_makes_dot_without_recursion():
    x = tg.Tensor(np.ones(1, np.float32), requires_grad=True, name="x")
    y = x
    for _ in range(100_000):
        y = y * 1.0
    g = to_dot(y)
    assert g.source.count("MulScalar_") >= 100_000 and "MulScalar_100000" in g.source
    assert g.node_id(y.grad_fn) == "MulScalar_100000" and g.node_id(y) == "output" and g.node_id(x) == "x"


# ---- Graphviz programs: rendering, Jupyter, missing dot ---------------------------------------


@needs_dot
def test_render_svg_is_well_formed_xml_with_the_node_titles(tmp_path):
    net = Net()
    x = tg.randn(5, 4, seed=0)
    g = draw_model(net, x, fold_repeats=False)
    path = render(g, tmp_path / "net.svg")
    root = ET.parse(path).getroot()
    ns = {"s": "http://www.w3.org/2000/svg"}
    titles = {t.text for t in root.iterfind(".//s:g[@class='node']/s:title", ns)}
    assert {"input", "inp.weight", "blocks.2.fc.bias", "head.weight", "output", "legend"} <= titles
    assert any(t.text and t.text.startswith("cluster_") for t in root.iterfind(".//s:g[@class='cluster']/s:title", ns))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.svg"]  # written atomically, no temp files left


@needs_dot
def test_render_png_and_pdf_and_suffix_handling(tmp_path):
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="x")
    y = x.exp().sum()
    assert render(y, tmp_path / "a.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    p = render(y, tmp_path / "b", format="pdf", view="backward")
    assert p.name == "b.pdf" and p.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(TypeError, match="already built"):
        render(to_dot(y), tmp_path / "c.svg", view="backward")


@needs_dot
def test_graph_displays_as_svg_in_jupyter():
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="x")
    g = to_dot(x.exp().sum())
    assert isinstance(g, Graph)
    bundle = g._repr_mimebundle_()
    assert "<svg" in bundle["image/svg+xml"]


def test_without_dot_render_says_how_to_install_and_to_dot_still_works(monkeypatch, tmp_path):
    monkeypatch.setattr(vg.shutil, "which", lambda name: None)
    x = tg.Tensor(np.ones(3, np.float32), requires_grad=True, name="x")
    y = x.exp().sum()
    g = to_dot(y)
    assert "Exp_1" in g.source
    with pytest.raises(GraphvizNotFoundError) as err:
        render(y, tmp_path / "y.svg")
    msg = str(err.value)
    assert "'dot'" in msg and "apt-get install graphviz" in msg and "brew install graphviz" in msg and "conda install graphviz" in msg
    assert not list(tmp_path.iterdir())
    assert "apt-get install graphviz" in g._repr_mimebundle_()["text/plain"]


# ---- convolutional layers ---------------------------------------------------------------------


class TinyCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 2, 3, stride=2, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(2, 3, 3, padding=1, dilation=1, groups=1)
        self.fc = nn.Linear(3, 2)

    def forward(self, x):
        x = self.pool(F.relu(self.conv1(x)))
        x = self.pool(F.relu(self.conv2(x)))
        return self.fc(x.flatten(1))


def test_conv_and_pool_ops_show_their_attributes_and_a_reused_module_gets_a_cluster_per_call():
    tg.manual_seed(0)
    m = TinyCNN()
    g = draw_model(m, tg.randn(2, 1, 8, 8, seed=0))
    nodes, edges, clusters = parse(g)
    conv = plain(nodes["Conv2d_1"])
    assert "stride=2  padding=1  dilation=1  groups=1" in conv and "\u2192 (2, 2, 4, 4)" in conv
    pool = plain(nodes["MaxPool2d_1"])
    assert "kernel=2  stride=2  padding=0  dilation=1" in pool and "\u2192 (2, 2, 2, 2)" in pool
    assert ("input", "Conv2d_1") in edges and ("conv1.weight", "Conv2d_1") in edges and ("conv1.bias", "Conv2d_1") in edges
    assert plain(clusters["MaxPool2d_1"][-1]) == "pool: MaxPool2d (call 1 of 2)"
    assert plain(clusters["MaxPool2d_2"][-1]) == "pool: MaxPool2d (call 2 of 2)"
    assert "label=out0" not in g.source  # a single differentiable output needs no port label
    bwd, _, _ = parse(draw_model(m, tg.randn(2, 1, 8, 8, seed=0), view="backward"))
    assert "saved: x (2, 2, 2, 2), conv2.weight (3, 2, 3, 3)" in plain(bwd["Conv2dBackward_2"])


def test_wrong_backward_found_by_check_graph_is_drawn_red():
    class BadSquare(Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x * x

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # wrong on purpose: d(x^2)/dx is 2x

    x = tg.Tensor(np.array([0.1, 0.2, 0.3]), requires_grad=True, name="x")
    with keep_inputs():
        y = BadSquare.apply(x.exp()).sum()
    res = tg.check_graph(y)
    assert [n.name for n in res.failing_nodes] == ["BadSquare"]
    red = f'fillcolor="{vg.HIGHLIGHT[0]}"'
    for g in (to_dot(y, highlight=res), to_dot(res.failing_nodes[0], highlight=res)):  # a Node is a valid root too
        nodes, _, _ = parse(g)
        assert red in nodes["BadSquare_1"] and not any(red in line for n, line in nodes.items() if n != "BadSquare_1")
    assert "output" not in parse(to_dot(res.failing_nodes[0]))[0]


def test_parameters_used_by_one_op_sit_on_its_rank_on_alternating_sides():
    tg.manual_seed(0)
    g = draw_model(TinyCNN(), tg.randn(1, 1, 8, 8, seed=0))
    assert '{rank=same; "conv1.weight"; Conv2d_1}' in g.source and '{rank=same; "conv1.bias"; Conv2d_1}' in g.source
    # weight declared into the op (left of it), bias declared out of it and drawn backwards (right)
    assert re.search(r'"conv1.weight" -> Conv2d_1\n', g.source)
    assert re.search(r'Conv2d_1 -> "conv1.bias" \[dir=back\]', g.source)


# ---- the reference models, the command line and the doc pictures --------------------------------


def _script():
    import runpy

    return runpy.run_path(str(vg.pathlib.Path(__file__).resolve().parent.parent / "scripts" / "make_graph_docs.py"))


def test_lenet_parameters_and_layers_are_named():
    from tinygrad_cnn.viz.model_graphs import model_graph

    nodes, edges, clusters = parse(model_graph("lenet"))
    assert {"input", "c1.weight", "c1.bias", "c3.weight", "f6.weight", "output.bias", "output"} <= set(nodes)
    assert ("input", "Conv2d_1") in edges and "\u2192 (1, 6, 28, 28)" in plain(nodes["Conv2d_1"])
    assert plain(clusters["c1.weight"][-1]) == "c1: Conv2d  (156 params)"
    nodes, _, _ = parse(model_graph("lenet", view="backward", depth=1))
    assert {"c1", "c3", "c5", "f6", "output"} <= set(nodes) and "loss" in nodes


@pytest.mark.slow
@needs_dot
def test_alexnet_forward_and_backward_render_to_svg(tmp_path):
    from tinygrad_cnn.viz.model_graphs import example_model, model_graph

    example = example_model("alexnet")
    for view in ("forward", "backward"):
        g = model_graph("alexnet", view=view, example=example)
        path = render(g, tmp_path / f"alexnet_{view}.svg")
        titles = {t.text for t in ET.parse(path).getroot().iterfind(".//{http://www.w3.org/2000/svg}title")}
        assert {"features.conv1.weight", "classifier.fc8.bias", "input"} <= titles


def test_graph_command_writes_the_picture(tmp_path, capsys):
    import argparse

    from tinygrad_cnn.cli import add_graph_arguments, graph_command

    p = argparse.ArgumentParser()
    add_graph_arguments(p)
    assert graph_command(p.parse_args(["simpleconvnet", "--view", "backward", "--format", "dot", "-o", str(tmp_path / "s")])) == 0
    out = tmp_path / "s.dot"
    assert capsys.readouterr().out.strip() == str(out) and "conv1.weight" in out.read_text() and "Conv2dBackward" in out.read_text()
    assert graph_command(p.parse_args(["lenet", "--depth", "-1"])) == 2
    if HAS_DOT:
        assert graph_command(p.parse_args(["lenet", "--depth", "1", "-o", str(tmp_path / "l.png")])) == 0
        assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"


def test_graph_command_without_dot_points_to_the_install_and_to_dot_format(tmp_path, monkeypatch, capsys):
    import argparse

    from tinygrad_cnn.cli import add_graph_arguments, graph_command

    monkeypatch.setattr(vg.shutil, "which", lambda name: None)
    p = argparse.ArgumentParser()
    add_graph_arguments(p)
    assert graph_command(p.parse_args(["lenet", "-o", str(tmp_path / "l.svg")])) == 1
    err = capsys.readouterr().err
    assert "apt-get install graphviz" in err and "--format dot" in err and not list(tmp_path.iterdir())


def test_doc_pictures_exist_are_stamped_and_their_script_runs():
    script = _script()
    docs = (vg.pathlib.Path(__file__).resolve().parent.parent / "docs" / "graphs.md").read_text()
    shown = re.findall(r"\(images/(\w+)\.svg\)", docs)
    assert sorted(shown) == sorted(script["PICTURES"]), "docs/graphs.md and the script must list the same pictures"
    for name in shown:
        path = script["IMAGES"] / f"{name}.svg"
        assert script["stamped_hash"](path), f"{path} is missing or was not made by scripts/make_graph_docs.py"
        ET.parse(path)  # well-formed SVG
    # Rebuilding every picture's DOT exercises the script end to end. A picture that no longer
    # matches the code (a model or an op changed its structure) is reported, not failed: other
    # people's changes must not break the build; `make_graph_docs.py --check` is the strict form.
    stale = script["check"]()
    if stale:
        import warnings

        warnings.warn(f"docs/images out of date: {stale}; run python scripts/make_graph_docs.py", stacklevel=1)


def test_backward_view_folds_and_counts_repeated_blocks_too():
    out = Net()(tg.randn(5, 4, seed=0))
    nodes, edges, clusters = parse(to_dot(out.sum(), view="backward", depth=2))
    assert "blocks.0 .. blocks.2  x3" in plain(nodes["blocks.0"]) and "blocks.1" not in nodes
    assert "in (5, 8)  \u2192  out (5, 8)" in plain(nodes["blocks.0"])
    (into,) = [s for s, d in edges if d == "blocks.0"]  # the gradient arrives from head, leaves to Tanh
    assert clusters[into][-1].startswith("<B>head")
    assert [d for s, d in edges if s == "blocks.0"] == ["TanhBackward_1"]
    assert "rankdir=LR" in to_dot(out, rankdir="LR").source


def test_cli_graph_subcommand(tmp_path, capsys):
    from tinygrad_cnn.cli import main

    out = tmp_path / "lenet.dot"
    assert main(["graph", "lenet", "--view", "backward", "--depth", "1", "--format", "dot", "-o", str(out)]) == 0
    nodes, edges, _ = parse(vg.graphviz.Source(out.read_text()))
    assert {"c1", "c3", "c5", "f6", "output", "loss", "input"} <= set(nodes) and ("loss", "SumBackward_2") not in edges
    assert capsys.readouterr().out.strip() == str(out)
    with pytest.raises(SystemExit):
        main(["graph", "resnet"])  # argparse lists the three models


def test_model_argument_names_parameters_of_functional_code():
    w = tg.Tensor(np.ones((3, 2), np.float32), requires_grad=True)
    b = tg.Tensor(np.zeros(2, np.float32), requires_grad=True)
    x = tg.Tensor(np.ones((4, 3), np.float32), requires_grad=True, name="x")
    y = (x @ w + b).sum()
    nodes, edges, _ = parse(to_dot(y, model={"fc.weight": w, "fc.bias": b}))
    assert ("fc.weight", "MatMul_1") in edges and ("fc.bias", "Add_1") in edges
    assert vg.STYLE["param"][0] in nodes["fc.weight"] and vg.STYLE["leaf"][0] in nodes["x"]
    with pytest.raises(TypeError, match="names must map a name to a Tensor"):
        to_dot(y, names={"x": np.ones(3)})


# ---- the drawing code's structure ------------------------------------------------------------

STAGES = ("walk", "elements", "cluster", "dot", "graph")  # graph.py runs the stages and is the public API


def test_drawing_stages_import_one_way_and_no_private_names():
    import ast

    viz = vg.pathlib.Path(vg.__file__).parent
    node_internals = re.compile(r"(?<!self)\.(_seq|_saved|_out_meta|_released|_outputs|_fn|_mark|_locked)\b")
    for i, name in enumerate(STAGES):
        text = (viz / f"{name}.py").read_text()
        assert not node_internals.search(text), (name, node_internals.search(text).group(0))
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, (name, node.module, private)
                if node.level == 1 and node.module in STAGES:
                    assert STAGES.index(node.module) < i, f"{name}.py imports the later stage {node.module}"


def test_old_graph_module_names_still_import():
    from tinygrad_cnn import viz
    from tinygrad_cnn.viz import dot, elements

    assert all(getattr(vg, n) is getattr(viz, n) for n in viz.__all__)
    assert vg.STYLE is dot.STYLE and vg.HIGHLIGHT is dot.HIGHLIGHT and vg.BAD is elements.BAD
    assert vg.FORMATS == ("svg", "png", "pdf") and vg.Graph is dot.Graph
