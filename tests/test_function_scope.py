"""Function scopes: composite functions recorded on each node like modules, drawn as boxes that
``depth=`` folds; and the backward of ``x ** 2`` records no pow node."""
from __future__ import annotations

import re
import threading

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.autograd import FunctionScope, function_scope, walk
from tinygrad_cnn.autograd.grad_mode import state
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.viz import to_dot


def names(scope: tuple) -> list:
    return [s.name if isinstance(s, FunctionScope) else type(s).__name__ for s in scope]


def clusters_of(src: str) -> dict[str, list[str]]:
    """DOT node name -> the labels of the clusters it is drawn in, outermost first."""
    out: dict[str, list[str]] = {}
    stack: list[str] = []
    for line in src.splitlines():
        s = line.strip()
        if s.startswith("subgraph cluster"):
            stack.append("")
        elif s.startswith("graph [") and stack and stack[-1] == "":
            stack[-1] = re.sub(r"<[^>]*>", "", re.search(r"label=<(.*?)> labeljust", s).group(1))
        elif s == "}" and stack:
            stack.pop()
        elif re.match(r'^"?[\w.]+"? \[label=', s):
            out[s.split(" [")[0].strip('"')] = list(stack)
    return out


def test_decorator_and_context_manager_record_nested_scopes_after_the_modules():
    @function_scope("swish")
    def swish(x):
        return x * x.sigmoid()

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 2, seed=0)

        def forward(self, x):
            with function_scope("block"):
                return swish(self.fc(x))

    net = Net()
    y = net(tg.randn(4, 3, seed=0))
    assert names(y.grad_fn.scope) == ["Net", "block", "swish"] and y.grad_fn.scope[0] is net
    fc_ops = [n for n in walk([y]) if n.name in ("Permute", "MatMul", "Add")]
    assert len(fc_ops) == 3 and all(names(n.scope) == ["Net", "block", "Linear", "linear"] for n in fc_ops)
    assert len({id(n.scope[-1]) for n in fc_ops}) == 1  # one call, one FunctionScope
    assert state().scope == ()
    assert swish.__name__ == "swish"  # functools.wraps


def test_each_call_gets_its_own_scope_and_errors_restore_it():
    a = tg.randn(2, 2, seed=0, requires_grad=True)
    y1, y2 = F.softmax(a, dim=1), F.softmax(a, dim=1)
    assert y1.grad_fn.scope[0] is not y2.grad_fn.scope[0] and names(y1.grad_fn.scope) == ["softmax"]
    with pytest.raises(ValueError, match="linear"):
        F.linear(tg.randn(2, 3), tg.randn(4, 5))
    assert state().scope == ()
    with pytest.raises(RuntimeError):
        with function_scope("outer"):
            raise RuntimeError
    assert state().scope == ()
    with pytest.raises(TypeError, match="non-empty str"):
        function_scope(lambda x: x)


def test_scope_is_per_thread():
    seen = []

    def other():
        seen.append(state().scope)

    with function_scope("main_only"):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert names(state().scope) == ["main_only"]
    assert seen == [()]


def test_cross_entropy_records_its_scope_and_log_softmax_inside():
    logits = tg.randn(4, 3, seed=1, requires_grad=True)
    loss = F.cross_entropy(logits, np.array([0, 2, 1, 1]))
    nodes = walk([loss])
    assert nodes and all(names(n.scope)[:1] == ["cross_entropy"] for n in nodes)
    assert sum(names(n.scope) == ["cross_entropy", "log_softmax"] for n in nodes) == 5
    # the result itself is unchanged by scoping: compare with torch
    torch = pytest.importorskip("torch")
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits.data), torch.tensor([0, 2, 1, 1]))
    assert np.isclose(loss.item(), ref.item(), rtol=1e-6)


def test_linear_is_one_box_and_folds_to_one_node():
    fc = nn.Linear(3, 2, seed=0)
    y = fc(tg.randn(4, 3, seed=0, requires_grad=True))
    src = to_dot(y).source
    where = clusters_of(src)
    ops = [k for k in where if k.split("_")[0] in ("Permute", "MatMul", "Add")]
    assert len(ops) == 3 and all(where[k] == ["Linear  (8 params)", "linear"] for k in ops), where
    assert "dashed boxes: calls of composite functions" in src
    # depth=1: the Linear module stays a box; the linear call inside it is one node with its shapes
    folded = to_dot(y, depth=1).source
    where = clusters_of(folded)
    assert where.get("linear") == ["Linear  (8 params)"] and not [k for k in where if k.startswith("MatMul")]
    label = folded.split("\tlinear [label=")[1].split("\n")[0]
    # the call's inputs are x and the module's weight and bias, which stay outside the folded call
    ins = re.search(r"in (.*?)  \u2192  out \(4, 2\)", label).group(1)
    assert sorted(ins.split(", (")) == sorted(["(2, 3)", "4, 3)", "2,)"]) and "3 ops folded" in label and "peripheries" in label
    assert {"weight", "bias", "leaf"} <= set(where)


def test_a_users_function_at_the_top_folds_at_depth_zero():
    @function_scope("my_loss")
    def my_loss(out, target):
        d = out - target
        return (d * d).mean()

    x = tg.randn(5, 2, seed=0, requires_grad=True)
    loss = my_loss(x, tg.zeros(5, 2))
    where = clusters_of(to_dot(loss, view="backward").source)
    assert sorted(k.split("Backward")[0] for k, w in where.items() if w == ["my_loss"]) == ["Mul", "MulScalar", "Sub", "Sum"]
    assert where["leaf"] == [] and where["output"] == []  # the input stays outside the call
    src0 = to_dot(loss, depth=0).source
    assert "my_loss [label=" in src0 and "in (5, 2)  \u2192  out ()" in src0 and "Mean" not in src0


def test_pow_two_backward_records_no_pow_node_and_stays_exact():
    x = tg.Tensor(np.array([0.5, -1.0, 2.0]), requires_grad=True)
    (x.tanh() ** 2).sum().backward(create_graph=True)
    nodes = walk([x.grad])
    assert not [n for n in nodes if n.name == "PowScalar"]
    assert "exponent=1" not in to_dot(x.grad).source
    assert tg.gradcheck(lambda t: t**2, (tg.randn(4, dtype=np.float64, seed=3, requires_grad=True),))
    assert tg.gradgradcheck(lambda t: t**2, (tg.randn(4, dtype=np.float64, seed=3, requires_grad=True),))
    assert tg.gradgradcheck(lambda t: t**3, (tg.randn(4, dtype=np.float64, seed=4, requires_grad=True),))
    torch = pytest.importorskip("torch")
    tx = torch.tensor([0.5, -1.0, 2.0], requires_grad=True)
    (g,) = torch.autograd.grad((tx.tanh() ** 2).sum(), tx, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), tx)
    (ours,) = tg.autograd.grad(x.grad.sum(), x)
    assert np.allclose(x.grad.data, g.detach().numpy()) and np.allclose(ours.data, gg.numpy())
