"""Module backward hooks (register_full_backward_hook / register_full_backward_pre_hook) against
PyTorch and finite differences; the dtype-casting Module methods."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn


def _net(lib):
    return lib.nn.Sequential(
        lib.nn.Conv2d(2, 3, 3), lib.nn.ReLU(), lib.nn.MaxPool2d(2), lib.nn.Conv2d(3, 2, 1), lib.nn.Flatten(), lib.nn.Linear(8, 3)
    ).double()


def _copy_params(torch_net, net):
    for (name, tp), (gname, gp) in zip(torch_net.named_parameters(), net.named_parameters()):
        assert name == gname
        gp.data[...] = tp.detach().numpy()


def _arrays(grads, to_numpy):
    return [None if g is None else np.array(to_numpy(g)) for g in grads]


def _record(net, log, to_numpy):
    handles = []
    for i, layer in enumerate(net):
        def hook(m, gin, gout, i=i):
            log.append((i, _arrays(gin, to_numpy), _arrays(gout, to_numpy)))
        handles.append(layer.register_full_backward_hook(hook))
    return handles


def test_full_backward_hook_grads_equal_torch_on_a_conv_net():
    torch = pytest.importorskip("torch")
    tnet, net = _net(torch), _net(tg)
    _copy_params(tnet, net)
    x = np.random.default_rng(0).standard_normal((2, 2, 6, 6))
    tlog, glog = [], []
    _record(tnet, tlog, lambda g: g.detach().numpy())
    _record(net, glog, lambda g: g.numpy())
    tx, gx = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    tnet(tx).pow(2).sum().backward()
    net(gx).pow(2).sum().backward()
    assert [e[0] for e in glog] == [e[0] for e in tlog] == [5, 4, 3, 2, 1, 0]
    for (_, tin, tout), (_, gin, gout) in zip(tlog, glog):
        assert len(tin) == len(gin) and len(tout) == len(gout)
        for a, b in zip(tin + tout, gin + gout):
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_allclose(b, a, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


def test_input_that_does_not_require_grad_gives_none_and_hook_still_runs():
    torch = pytest.importorskip("torch")
    tnet, net = _net(torch), _net(tg)
    _copy_params(tnet, net)
    x = np.random.default_rng(1).standard_normal((1, 2, 6, 6))
    tlog, glog = [], []
    _record(tnet, tlog, lambda g: g.detach().numpy())
    _record(net, glog, lambda g: g.numpy())
    with pytest.warns(UserWarning, match="no inputs require gradients"):  # PyTorch's note on this case
        tnet(torch.tensor(x)).sum().backward()
    net(tg.tensor(x)).sum().backward()
    assert glog[-1][0] == tlog[-1][0] == 0 and glog[-1][1] == [None] == tlog[-1][1]
    np.testing.assert_allclose(glog[-1][2][0], tlog[-1][2][0], rtol=1e-10)


def test_hook_that_scales_grad_input_changes_leaf_grads_like_torch():
    torch = pytest.importorskip("torch")
    tnet, net = _net(torch), _net(tg)
    _copy_params(tnet, net)
    x = np.random.default_rng(2).standard_normal((2, 2, 6, 6))
    tnet[3].register_full_backward_hook(lambda m, gin, gout: (gin[0] * 3.0,))
    net[3].register_full_backward_hook(lambda m, gin, gout: (gin[0] * 3.0,))
    tx, gx = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    tnet(tx).pow(2).sum().backward()
    net(gx).pow(2).sum().backward()
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10)
    for (name, tp), gp in zip(tnet.named_parameters(), net.parameters()):
        np.testing.assert_allclose(gp.grad.numpy(), tp.grad.numpy(), rtol=1e-10, err_msg=name)
    # the layers before the hooked one see three times the unhooked gradient
    plain = _net(tg)
    _copy_params(tnet, plain)
    plain(tg.tensor(x)).pow(2).sum().backward()
    np.testing.assert_allclose(net[0].weight.grad.numpy(), 3.0 * plain[0].weight.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(net[5].weight.grad.numpy(), plain[5].weight.grad.numpy(), rtol=1e-10)


def test_pre_hook_replaces_grad_output_like_torch():
    torch = pytest.importorskip("torch")
    tnet, net = _net(torch), _net(tg)
    _copy_params(tnet, net)
    x = np.random.default_rng(3).standard_normal((2, 2, 6, 6))
    seen_t, seen_g = [], []
    for n, log, conv in ((tnet, seen_t, lambda g: g.detach().numpy()), (net, seen_g, lambda g: g.numpy())):
        n[3].register_full_backward_pre_hook(lambda m, gout: (gout[0].clamp(-0.1, 0.1),))
        n[3].register_full_backward_hook(lambda m, gin, gout, log=log, conv=conv: log.append(conv(gout[0]).copy()))
    tx, gx = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
    tnet(tx).pow(2).sum().backward()
    net(gx).pow(2).sum().backward()
    assert np.abs(seen_g[0]).max() <= 0.1
    np.testing.assert_allclose(seen_g[0], seen_t[0], rtol=1e-10)
    np.testing.assert_allclose(gx.grad.numpy(), tx.grad.numpy(), rtol=1e-10)


class _Two(nn.Module):
    """Two inputs (the second optional in grad), two outputs."""

    def forward(self, a, b, c):
        return a * b, (a + c).exp()


def test_several_inputs_and_outputs_like_torch():
    torch = pytest.importorskip("torch")

    class TTwo(torch.nn.Module):
        def forward(self, a, b, c):
            return a * b, (a + c).exp()

    rng = np.random.default_rng(4)
    a, b, c = (rng.standard_normal(3) for _ in range(3))
    logs = {}
    for key, lib, mod in (("t", torch, TTwo()), ("g", tg, _Two())):
        log = logs[key] = []
        mod.register_full_backward_hook(lambda m, gin, gout, log=log: log.append((gin, gout)))
        ta, tb, tc = lib.tensor(a, requires_grad=True), lib.tensor(b), lib.tensor(c, requires_grad=True)
        p, q = mod(ta, tb, tc)
        (p.sum() + (q * q).sum()).backward()
    (tgin, tgout), (ggin, ggout) = logs["t"][0], logs["g"][0]
    # b does not require grad: None here (PyTorch passes zeros for it)
    assert len(logs["g"]) == 1 and len(ggin) == 3 and len(ggout) == 2 and ggin[1] is None and not tgin[1].any()
    for t, g in zip([tgin[0], tgin[2], *tgout], [ggin[0], ggin[2], *ggout]):
        np.testing.assert_allclose(g.numpy(), t.detach().numpy(), rtol=1e-12)


def test_second_order_through_hooked_modules_matches_finite_differences():
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    seen = []
    net[0].register_full_backward_hook(lambda m, gin, gout: seen.append(gin[0].shape))
    net[2].register_full_backward_pre_hook(lambda m, gout: (gout[0] * 1.0,))
    x = tg.tensor(np.random.default_rng(5).standard_normal((4, 3)), requires_grad=True)
    # gradcheck of (x, v) -> vjp(net, x)(v) taken with create_graph=True, through both hooks
    assert tg.gradgradcheck(lambda x: net(x).pow(2), (x,), seed=0)
    assert seen and set(seen) == {(4, 3)}


def test_scaling_hook_under_create_graph_matches_torch_to_second_order():
    torch = pytest.importorskip("torch")
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    net = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    _copy_params(tnet, net)
    x = np.random.default_rng(6).standard_normal((4, 3))
    out = []
    for lib, n in ((torch, tnet), (tg, net)):
        n[0].register_full_backward_hook(lambda m, gin, gout: (gin[0] * 2.0,))
        n[2].register_full_backward_pre_hook(lambda m, gout: (gout[0] * gout[0],))
        xx = lib.tensor(x, requires_grad=True)
        (g,) = lib.autograd.grad(n(xx).pow(2).sum(), xx, create_graph=True)
        (h,) = lib.autograd.grad((g * g).sum(), xx)
        out.append((g.detach().numpy(), h.detach().numpy()))
    np.testing.assert_allclose(out[1][0], out[0][0], rtol=1e-10)
    np.testing.assert_allclose(out[1][1], out[0][1], rtol=1e-10)


def _node_names(root):
    names, stack, seen = [], [root.grad_fn], set()
    while stack:
        n = stack.pop()
        if n is None or not hasattr(n, "next_functions") or id(n) in seen:
            continue
        seen.add(id(n))
        names.append(n.name)
        stack.extend(e[0] for e in n.next_functions)
    return names


def test_no_identity_nodes_without_backward_hooks_and_handles_remove():
    net = _net(tg)
    x = tg.randn(1, 2, 6, 6, dtype=tg.float64, requires_grad=True)
    plain = _node_names(net(x).sum())
    assert not [n for n in plain if "BackwardHook" in n]
    h1 = net[0].register_full_backward_hook(lambda m, gin, gout: None)
    h2 = net[0].register_full_backward_pre_hook(lambda m, gout: None)
    hooked = _node_names(net(x).sum())
    assert sorted(n for n in hooked if "BackwardHook" in n) == ["BackwardHookInputs", "BackwardHookOutputs"]
    h1.remove()
    h2.remove()
    assert _node_names(net(x).sum()) == plain
    with tg.no_grad():
        with net[0].register_full_backward_hook(lambda m, gin, gout: None):
            assert net(x).grad_fn is None


def test_hooks_run_in_registration_order_prepend_and_only_once_per_backward():
    lin = nn.Linear(2, 2)
    order = []
    lin.register_full_backward_hook(lambda m, gin, gout: order.append("a"))
    lin.register_full_backward_hook(lambda m, gin, gout: order.append("b"))
    lin.register_full_backward_hook(lambda m, gin, gout: order.append("first"), prepend=True)
    lin.register_full_backward_pre_hook(lambda m, gout: order.append("pre"))
    lin(tg.ones(3, 2, requires_grad=True)).sum().backward()
    assert order == ["pre", "first", "a", "b"]


def test_bad_hook_returns_raise_clear_errors():
    lin = nn.Linear(2, 2)
    lin.register_full_backward_hook(lambda m, gin, gout: (gin[0], gin[0]))
    with pytest.raises(RuntimeError, match="returned 2 gradient"):
        lin(tg.ones(3, 2, requires_grad=True)).sum().backward()
    lin2 = nn.Linear(2, 2)
    lin2.register_full_backward_hook(lambda m, gin, gout: (tg.ones(5),))
    with pytest.raises(RuntimeError, match="shape"):
        lin2(tg.ones(3, 2, requires_grad=True)).sum().backward()
    lin3 = nn.Linear(2, 2)
    lin3.register_full_backward_hook(lambda m, gin, gout: (tg.ones(3, 2),))
    with pytest.raises(RuntimeError, match="no input of Linear requires grad"):
        lin3(tg.ones(3, 2)).sum().backward()
    with pytest.raises(TypeError, match="must be callable"):
        lin.register_full_backward_pre_hook(3)


@pytest.mark.parametrize("method, dtype", [("half", np.float16), ("double", np.float64), ("float", np.float32)])
def test_module_casts_floating_params_and_buffers_in_place(method, dtype):
    bn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    params = list(bn.parameters())
    assert getattr(bn, method)() is bn
    assert [p is q for p, q in zip(bn.parameters(), params)] == [True] * len(params)
    assert all(t.dtype == dtype for t in [*bn.parameters(), bn[1].running_mean, bn[1].running_var])
    assert bn[1].num_batches_tracked.dtype == np.int64


def test_module_type_casts_like_to():
    lin = nn.Linear(2, 3)
    assert lin.type(tg.float64) is lin and lin.weight.dtype == tg.float64
    with pytest.raises(TypeError, match="floating"):
        lin.type(tg.int64)
    torch = pytest.importorskip("torch")
    tl = torch.nn.Linear(2, 3)
    assert tl.type(torch.float64) is tl and tl.weight.dtype == torch.float64
