"""nn.Module: registration order, dotted names, containers, modes, state dicts, repr, scope."""

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.models import LeNet
from tinygrad_cnn.nn import functional as F


class Block(nn.Module):
    def __init__(self, n):
        super().__init__()
        self.fc = nn.Linear(n, n, seed=0)
        self.register_buffer("count", np.zeros(1, dtype=np.float32))
        self.drop = nn.Dropout(0.5, seed=0)

    def forward(self, x):
        return self.drop(F.relu(self.fc(x)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv_like = nn.Linear(3, 4, seed=1)
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.blocks = nn.ModuleList([Block(4), Block(4)])
        self.head = nn.Sequential(nn.Linear(4, 2, seed=2), nn.Tanh())

    def forward(self, x):
        h = self.conv_like(x) * self.scale
        for b in self.blocks:
            h = b(h)
        return self.head(h)


def test_registration_order_and_dotted_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == [
        "scale",  # own parameters come before submodules' (PyTorch order)
        "conv_like.weight",
        "conv_like.bias",
        "blocks.0.fc.weight",
        "blocks.0.fc.bias",
        "blocks.1.fc.weight",
        "blocks.1.fc.bias",
        "head.0.weight",
        "head.0.bias",
    ]
    assert [n for n, _ in net.named_modules()] == [
        "",
        "conv_like",
        "blocks",
        "blocks.0",
        "blocks.0.fc",
        "blocks.0.drop",
        "blocks.1",
        "blocks.1.fc",
        "blocks.1.drop",
        "head",
        "head.0",
        "head.1",
    ]
    assert [type(c).__name__ for c in net.children()] == ["Linear", "ModuleList", "Sequential"]
    assert len(list(net.modules())) == 12
    assert net.num_parameters() == 4 + 3 * 4 + 4 + 2 * (16 + 4) + 4 * 2 + 2
    assert all(p.requires_grad for p in net.parameters())
    assert [n for n, _ in net.named_buffers()] == ["blocks.0.count", "blocks.1.count"]


def test_shared_parameters_and_modules_count_once():
    lin = nn.Linear(3, 3, seed=0)
    seq = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(seq.parameters())) == 2
    assert seq.num_parameters() == 12
    assert list(seq.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


def test_reassignment_moves_between_registries_and_rejects_wrong_types():
    m = nn.Linear(2, 2, seed=0)
    with pytest.raises(TypeError, match="is a Parameter"):
        m.weight = np.zeros((2, 2))
    m.bias = None
    assert [n for n, _ in m.named_parameters()] == ["weight"]
    assert F.linear(tg.ones(1, 2), m.weight).shape == (1, 2) and m(tg.ones(1, 2)).shape == (1, 2)
    del m.weight
    assert list(m.named_parameters()) == []
    with pytest.raises(AttributeError, match="no attribute 'weight'"):
        _ = m.weight

    class Bad(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(1, 1)

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Bad()


def test_call_runs_forward_in_module_scope_and_records_output_shape():
    net = Net()
    x = tg.randn(5, 3, seed=0, requires_grad=True)
    y = net(x)
    assert net.output_shape == (5, 2) and net.blocks[0].fc.output_shape == (5, 4)
    # The tanh node was recorded while net and head and head.1 were running.
    assert y.grad_fn.scope == (net, net.head, net.head[1])
    fc_node = net.blocks[1].fc(tg.randn(2, 4, seed=1)).grad_fn
    # Linear's ops were recorded inside its F.linear call: the function comes after the module.
    assert fc_node.scope[0] is net.blocks[1].fc and [type(s).__name__ for s in fc_node.scope[1:]] == ["FunctionScope"]
    assert fc_node.scope[1].name == "linear"
    # The scope is restored after an exception inside forward.
    with pytest.raises(ValueError):
        net(tg.randn(2, 7, seed=0))
    from tinygrad_cnn.autograd.grad_mode import state

    assert state().scope == ()


def test_train_eval_switch_dropout_recursively():
    net = Net()
    x = tg.randn(64, 3, seed=0)
    assert net.training and net.blocks[1].drop.training
    net.eval()
    assert not any(m.training for m in net.modules())
    np.testing.assert_array_equal(net(x).data, net(x).data)
    net.train()
    assert all(m.training for m in net.modules())
    assert not np.array_equal(net(x).data, net(x).data)  # fresh dropout masks


def test_zero_grad_and_requires_grad():
    net = Net()
    net(tg.randn(4, 3, seed=0)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.requires_grad_(False)
    assert net.num_parameters(trainable_only=True) == 0 and net.num_parameters() > 0


def test_state_dict_shares_memory_and_roundtrips():
    a, b = Net(), Net()
    with tg.no_grad():
        for p in b.parameters():
            p.mul_(0.0)
    sd = a.state_dict()
    assert list(sd) == [
        # PyTorch's order: a module's own parameters, then its own buffers, then its children.
        "scale",
        "conv_like.weight",
        "conv_like.bias",
        "blocks.0.count",
        "blocks.0.fc.weight",
        "blocks.0.fc.bias",
        "blocks.1.count",
        "blocks.1.fc.weight",
        "blocks.1.fc.bias",
        "head.0.weight",
        "head.0.bias",
    ]
    assert all(isinstance(v, tg.Tensor) and not v.requires_grad for v in sd.values())
    assert np.shares_memory(sd["conv_like.weight"].data, a.conv_like.weight.data)
    res = b.load_state_dict({k: v.numpy() for k, v in sd.items()})
    assert res.missing_keys == [] and res.unexpected_keys == []
    for (k, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        np.testing.assert_array_equal(p.data, q.data, err_msg=k)
        assert not np.shares_memory(p.data, q.data)
    x = tg.randn(3, 3, seed=0)
    a.eval(), b.eval()
    np.testing.assert_array_equal(a(x).data, b(x).data)


def test_load_state_dict_lists_all_problems_and_loads_nothing():
    net = Net()
    sd = {k: v.numpy().copy() for k, v in net.state_dict().items()}
    del sd["scale"]
    del sd["head.0.bias"]
    sd["extra.weight"] = np.zeros(3)
    sd["conv_like.weight"] = np.zeros((5, 3), dtype=np.float32)
    sd["blocks.0.fc.weight"] = np.full((4, 4), 7.0, dtype=np.float32)  # valid: must not be written
    before = net.blocks[0].fc.weight.data.copy()
    with pytest.raises(ValueError) as e:
        net.load_state_dict(sd)
    msg = str(e.value)
    for needle in ("'scale'", "'head.0.bias'", "'extra.weight'", "conv_like.weight: checkpoint has shape (5, 3), the model (4, 3)"):
        assert needle in msg
    np.testing.assert_array_equal(net.blocks[0].fc.weight.data, before)
    # strict=False skips missing/unexpected keys but never a shape mismatch.
    with pytest.raises(ValueError, match="shape mismatches"):
        net.load_state_dict(sd, strict=False)
    sd["conv_like.weight"] = np.zeros((4, 3), dtype=np.float64)
    res = net.load_state_dict(sd, strict=False)
    assert res.missing_keys == ["scale", "head.0.bias"] and res.unexpected_keys == ["extra.weight"]
    assert net.conv_like.weight.dtype == np.float32 and not net.conv_like.weight.data.any()
    np.testing.assert_array_equal(net.blocks[0].fc.weight.data, 7.0)


def test_load_state_dict_bumps_versions_so_live_graphs_notice():
    net = nn.Linear(3, 2, seed=0)
    loss = net(tg.randn(4, 3, seed=0)).sum()
    net.load_state_dict(net.state_dict())
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_non_persistent_buffer_not_in_state_dict():
    m = nn.Module()
    m.register_buffer("a", np.zeros(2))
    m.register_buffer("tmp", np.zeros(2), persistent=False)
    assert list(m.state_dict()) == ["a"]
    m.a = np.ones(2)
    assert isinstance(m.a, tg.Tensor) and m.a.data.sum() == 2


def test_containers():
    seq = nn.Sequential(nn.Linear(2, 3, seed=0), nn.ReLU(), nn.Linear(3, 1, seed=1))
    assert len(seq) == 3 and isinstance(seq[-1], nn.Linear)
    assert [type(m).__name__ for m in seq[1:]] == ["ReLU", "Linear"]
    x = tg.randn(4, 2, seed=0)
    np.testing.assert_allclose(seq(x).data, seq[2](seq[1](seq[0](x))).data)
    with pytest.raises(IndexError, match="out of range for 3"):
        seq[3]
    with pytest.raises(TypeError, match="not a Module"):
        nn.Sequential(nn.ReLU(), lambda x: x)
    from collections import OrderedDict

    named = nn.Sequential(OrderedDict(fc=nn.Linear(2, 2), act=nn.ReLU()))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    ml = nn.ModuleList([nn.ReLU()]).append(nn.Linear(1, 1))
    ml[0] = nn.Tanh()
    assert [type(m).__name__ for m in ml] == ["Tanh", "Linear"]
    with pytest.raises(TypeError, match="container without forward"):
        ml(x)
    md = nn.ModuleDict({"a": nn.Linear(1, 2), "b": nn.Linear(2, 1)})
    assert list(md) == ["a", "b"] and "a" in md and [n for n, _ in md.named_parameters()][0] == "a.weight"
    with pytest.raises(KeyError, match="keys are"):
        md["c"]
    with pytest.raises(NotImplementedError, match="does not define forward"):
        nn.Module()(x)


def test_repr_shows_tree_output_shapes_and_parameter_counts():
    net = Net()
    r0 = repr(net)
    assert "(conv_like): Linear(in_features=3, out_features=4, bias=True)  # params=16" in r0
    assert "out=" not in r0
    net(tg.randn(5, 3, seed=0))
    r = repr(net)
    assert "(conv_like): Linear(in_features=3, out_features=4, bias=True)  # out=(5, 4), params=16" in r
    assert "    (0): Block(\n      (fc): Linear(in_features=4, out_features=4, bias=True)  # out=(5, 4), params=20" in r
    assert r.endswith(f")  # out=(5, 2), params={net.num_parameters()}")


def test_summary_table_rows_follow_call_order():
    net = Net()
    table = net.summary((3,))
    lines = table.splitlines()
    assert lines[2] == "| input | | (1, 3) | |"
    assert lines[3] == "| conv_like | Linear(in_features=3, out_features=4, bias=True) | (1, 4) | 16 |"
    assert lines[-1] == f"| **total** | | | **{net.num_parameters()}** |"
    assert [ln.split(" | ")[0][2:] for ln in lines[3:-1]] == [
        "conv_like",
        "blocks.0.fc",
        "blocks.0.drop",
        "blocks.1.fc",
        "blocks.1.drop",
        "head.0",
        "head.1",
    ]
    assert net.training  # mode restored


def test_forward_hook_and_removal():
    lin = nn.Linear(2, 2, seed=0)
    seen = []
    h = lin.register_forward_hook(lambda m, i, o: seen.append(o.shape))
    lin(tg.ones(3, 2))
    h.remove()
    lin(tg.ones(3, 2))
    assert seen == [(3, 2)]


def test_forward_hooks_grab_lenet_feature_maps_and_go_away_with_the_block():
    net = LeNet(activation="relu", pooling="max", seed=0)
    x = tg.randn(2, 1, 28, 28, seed=1)
    maps = {}
    handles = [getattr(net, n).register_forward_hook(lambda m, args, out, n=n: maps.__setitem__(n, out)) for n in ("c1", "c3", "c5")]
    with handles[0], handles[1], handles[2]:
        logits = net(x)
        assert {n: t.shape for n, t in maps.items()} == {"c1": (2, 6, 28, 28), "c3": (2, 16, 10, 10), "c5": (2, 120, 1, 1)}
        np.testing.assert_array_equal(maps["c1"].data, net.c1(x).data)
    maps.clear()
    np.testing.assert_array_equal(net(x).data, logits.data)
    assert maps == {} and not net.c1._forward_hooks  # removed on leaving the block
    handles[0].remove()  # a second removal does nothing


def test_forward_hook_replaces_the_output_in_registration_order():
    net = LeNet(seed=0)
    x = tg.randn(1, 1, 28, 28, seed=1)
    calls = []

    def zero(m, args, out):
        calls.append("zero")
        return out * 0.0

    def second(m, args, out):
        calls.append(("second", bool(out.data.any())))  # False while the first hook zeroes the output

    h1 = net.output.register_forward_hook(zero)
    h2 = net.output.register_forward_hook(second)
    out = net(x)
    assert calls == ["zero", ("second", False)] and out.shape == (1, 10) and not out.data.any()
    h1.remove()
    assert net(x).data.any() and calls[2:] == [("second", True)]
    h2.remove()
    # The replacement is part of the graph: gradients flow through it.
    lin = nn.Linear(3, 2, seed=0)
    with lin.register_forward_hook(lambda m, args, out: out * 2.0):
        lin(tg.ones(1, 3)).sum().backward()
    np.testing.assert_allclose(lin.bias.grad.data, [2.0, 2.0])


def test_forward_pre_hook_replaces_the_input():
    lin = nn.Linear(2, 2, seed=0)
    x = tg.ones(3, 2)
    seen = []
    with lin.register_forward_pre_hook(lambda m, args: seen.append(args) or args[0] * 0.0):  # a single value: wrapped in a tuple
        np.testing.assert_allclose(lin(x).data, np.broadcast_to(lin.bias.data, (3, 2)))
    assert isinstance(seen[0], tuple) and seen[0][0] is x
    np.testing.assert_allclose(lin(x).data, (x.data @ lin.weight.data.T) + lin.bias.data)
    # A tuple replaces all the arguments; the forward hook sees the replaced ones.
    got = []
    plus_one = lin.register_forward_pre_hook(lambda m, args: (args[0] + 1.0,))
    with plus_one, lin.register_forward_hook(lambda m, args, out: got.append(args[0])):
        lin(x)
    np.testing.assert_allclose(got[0].data, 2.0)
    # Pre-hooks run in registration order, each on the previous one's result.
    expected = lin(tg.full((1, 2), 7.0)).data
    with lin.register_forward_pre_hook(lambda m, args: args[0] * 3.0), lin.register_forward_pre_hook(lambda m, args: args[0] + 1.0):
        np.testing.assert_allclose(lin(tg.full((1, 2), 2.0)).data, expected)


def test_hooks_with_kwargs():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    with m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True):
        seen = []
        with m.register_forward_hook(lambda mod, args, kwargs, out: seen.append(kwargs), with_kwargs=True):
            assert m(tg.ones(2)).tolist() == [3.0, 3.0]
        assert seen == [{"factor": 3.0}]
    with m.register_forward_pre_hook(lambda mod, args, kwargs: args, with_kwargs=True):
        with pytest.raises(RuntimeError, match=r"\(new_args, new_kwargs\)"):
            m(tg.ones(2))
    with pytest.raises(TypeError, match="callable"):
        m.register_forward_hook(None)


def test_to_double_keeps_parameter_objects():
    net = Net()
    params = list(net.parameters())
    net.double()
    assert [id(p) for p in net.parameters()] == [id(p) for p in params]
    assert all(p.dtype == np.float64 for p in params)
    assert net(tg.Tensor(np.ones((2, 3)))).dtype == np.float64
    with pytest.raises(TypeError, match="floating"):
        net.to(np.int32)


def test_many_modules_deep_nesting_is_iterative():
    m = nn.Identity()
    for _ in range(3000):
        s = nn.Sequential()
        s.add_module("m", m)
        m = s
    assert len(list(m.named_modules())) == 3001
    assert list(m.state_dict()) == []
