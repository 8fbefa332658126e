"""The nn.Module API and the layers' constructors as PyTorch's: the same snippet run against
torch.nn and tinygrad_cnn.nn gives the same names, orders, values and errors (float64)."""
import inspect
import warnings

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn

torch = pytest.importorskip("torch")


def net(lib):
    """The same small CNN in either library (PyTorch's argument forms only)."""
    m = lib.nn
    return m.Sequential(
        m.Conv2d(1, 4, 3, padding=1),
        m.BatchNorm2d(4),
        m.ReLU(),
        m.MaxPool2d(2),
        m.Flatten(),
        m.Sequential(m.Linear(4 * 4 * 4, 8), m.LayerNorm(8), m.GELU()),
        m.Linear(8, 3),
    )


def copy_weights(theirs, ours):
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


def test_names_of_parameters_buffers_modules_and_state_dict_match_torch():
    a, b = net(torch).double(), net(tg).double()
    assert [n for n, _ in a.named_parameters()] == [n for n, _ in b.named_parameters()]
    assert [n for n, _ in a.named_buffers()] == [n for n, _ in b.named_buffers()]
    assert [n for n, _ in a.named_modules()] == [n for n, _ in b.named_modules()]
    assert [n for n, _ in a.named_children()] == [n for n, _ in b.named_children()]
    assert list(a.state_dict()) == list(b.state_dict())
    assert [tuple(v.shape) for v in a.state_dict().values()] == [v.shape for v in b.state_dict().values()]


def test_state_dict_round_trip_with_torch_in_both_directions():
    a, b = net(torch).double(), net(tg).double()
    x = np.random.default_rng(0).standard_normal((5, 1, 8, 8))
    copy_weights(a, b)
    for m in (a, b):
        m.eval()
    np.testing.assert_allclose(b(tg.tensor(x)).data, a(torch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-12)
    # and back: our state dict loads into torch and reproduces the same outputs after training-mode steps
    b.train()
    b(tg.tensor(x))  # updates the running statistics
    a2 = net(torch).double()
    a2.load_state_dict({k: torch.tensor(v.numpy()) for k, v in b.state_dict().items()}, strict=True)
    b.eval()
    a2.eval()
    np.testing.assert_allclose(b(tg.tensor(x)).data, a2(torch.tensor(x)).detach().numpy(), rtol=1e-6, atol=1e-12)


def test_load_state_dict_errors_and_strict_false_like_torch():
    a, b = net(torch), net(tg)
    sd = {k: v.detach().numpy() for k, v in a.state_dict().items()}
    del sd["6.bias"]
    sd["extra.weight"] = np.zeros(2)
    ra = a.load_state_dict({k: torch.tensor(v) for k, v in sd.items()}, strict=False)
    rb = b.load_state_dict(sd, strict=False)
    assert (rb.missing_keys, rb.unexpected_keys) == (ra.missing_keys, ra.unexpected_keys) == (["6.bias"], ["extra.weight"])
    with pytest.raises(RuntimeError, match="Missing key"):
        a.load_state_dict({k: torch.tensor(v) for k, v in sd.items()})
    with pytest.raises(nn.StateDictError, match=r"missing key\(s\).*'6.bias'") as e:
        b.load_state_dict(sd)
    assert isinstance(e.value, RuntimeError) and isinstance(e.value, ValueError)
    assert e.value.missing_keys == ["6.bias"] and e.value.unexpected_keys == ["extra.weight"]
    sd = {k: v.numpy() for k, v in b.state_dict().items()}
    sd["6.weight"] = np.zeros((3, 9), dtype=np.float32)
    with pytest.raises(nn.StateDictError, match=r"size mismatch for 6.weight: copying a param with shape \(3, 9\)") as e:
        b.load_state_dict(sd, strict=False)  # shapes are always checked, as in PyTorch
    assert e.value.mismatched == [("6.weight", (3, 9), (3, 8))]


def test_load_state_dict_assign_replaces_the_tensors():
    b = net(tg)
    sd = {k: v.numpy() * 2 for k, v in net(tg).state_dict().items()}
    old = b[6].weight
    b.load_state_dict(sd, assign=True)
    assert b[6].weight is not old and isinstance(b[6].weight, nn.Parameter) and b[6].weight.requires_grad
    np.testing.assert_array_equal(b[6].weight.data, sd["6.weight"])
    np.testing.assert_array_equal(b.get_buffer("1.running_var").data, sd["1.running_var"])


def test_sequential_indexing_slicing_and_editing_like_torch():
    def ops(lib):
        m = lib.nn
        s = m.Sequential(m.Linear(2, 3), m.ReLU(), m.Linear(3, 4), m.Tanh(), m.Linear(4, 1))
        out = [len(s), type(s[-1]).__name__, [type(x).__name__ for x in s[1:4]], list(s[1:4]._modules), list(s[::2]._modules)]
        s.append(m.Sigmoid())
        s.insert(1, m.Identity())
        s.insert(-1, m.Identity())
        out.append(list(s._modules))
        s[0] = m.Linear(2, 3, bias=False)
        del s[2]
        popped = s.pop(0)
        out += [type(popped).__name__, list(s._modules), [type(x).__name__ for x in s]]
        s.extend([m.ReLU()])
        out.append(len(s))
        return out

    assert ops(tg) == ops(torch)
    s = nn.Sequential(nn.ReLU())
    with pytest.raises(IndexError, match="index 3 out of range for 1 modules"):
        s[3]
    with pytest.raises(TypeError, match="not a Module"):
        s.append(lambda x: x)


def test_apply_visits_modules_in_torchs_order():
    seen = {"torch": [], "tg": []}
    for lib, key in ((torch, "torch"), (tg, "tg")):
        m = net(lib)
        names = {id(mod): n for n, mod in m.named_modules()}
        m.apply(lambda mod, key=key, names=names: seen[key].append(names[id(mod)]))
    assert seen["tg"] == seen["torch"]


def test_requires_grad_zero_grad_get_submodule_like_torch():
    for lib in (torch, tg):
        m = net(lib)
        m.requires_grad_(False)
        assert not any(p.requires_grad for p in m.parameters())
        m[5].requires_grad_()
        assert [n for n, p in m.named_parameters() if p.requires_grad] == ["5.0.weight", "5.0.bias", "5.1.weight", "5.1.bias"]
        assert m.get_submodule("5.1") is m[5][1] and m.get_parameter("5.0.bias") is m[5][0].bias
        x = lib.ones(2, 1, 8, 8)
        m(x).sum().backward()
        m.zero_grad()  # set_to_none=True is the default in both
        assert all(p.grad is None for p in m.parameters())
    with pytest.raises(AttributeError, match="has no submodule 'nine'"):
        net(tg).get_submodule("5.nine")


def test_devices_and_dtypes_as_in_torch():
    m = net(tg)
    assert m.to("cpu") is m and m.cpu() is m and m.to(tg.device("cpu")) is m
    m.to(tg.float64)
    assert all(p.dtype == np.float64 for p in m.parameters())
    m.to("cpu", tg.float32)
    assert m[0].weight.dtype == np.float32 and m[1].num_batches_tracked.dtype == np.int64
    m.to(dtype=tg.float64, device="cpu")
    assert m[6].bias.dtype == np.float64
    for bad in (lambda: m.to("cuda"), lambda: m.to("cuda:0", tg.float64), m.cuda, lambda: nn.Linear(2, 3, device="cuda"),
                lambda: nn.Conv2d(1, 2, 3, device="mps"), lambda: nn.BatchNorm2d(3, device="cuda"), lambda: nn.LayerNorm(3, device="cuda")):
        with pytest.raises(RuntimeError, match="not available; tinygrad_cnn computes with numpy on the CPU only"):
            bad()
    assert nn.Linear(2, 3, device="cpu", dtype=tg.float64).weight.dtype == np.float64
    assert nn.Conv2d(1, 2, 3, dtype=tg.float64).weight.dtype == np.float64
    with pytest.raises(TypeError, match="dtype must be a floating type"):
        nn.Linear(2, 3, dtype=tg.int64)


# ---- constructors -------------------------------------------------------------------------------
MODULES = ["Identity", "Flatten", "Unflatten", "LayerNorm", "GELU", "SiLU", "LeakyReLU", "Dropout", "Dropout2d", "AdaptiveAvgPool2d",
           "Upsample", "Linear", "Conv2d", "ConvTranspose2d", "BatchNorm1d", "BatchNorm2d", "MaxPool2d", "AvgPool2d", "ReLU", "Sigmoid",
           "Tanh", "Softmax", "LogSoftmax", "ELU", "Hardtanh", "LocalResponseNorm", "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss",
           "SmoothL1Loss", "BCELoss", "BCEWithLogitsLoss", "Sequential", "ModuleList", "ModuleDict"]
# Arguments of PyTorch's constructors not taken here: Hardtanh's long-deprecated min_value/max_value.
NOT_TAKEN = {"Hardtanh": {"min_value", "max_value"}}


@pytest.mark.parametrize("name", MODULES)
def test_constructor_signatures_match_torch(name):
    ours = dict(list(inspect.signature(getattr(nn, name).__init__).parameters.items())[1:])
    theirs = dict(list(inspect.signature(getattr(torch.nn, name).__init__).parameters.items())[1:])
    theirs = {k: p for k, p in theirs.items() if k not in NOT_TAKEN.get(name, ())}
    pos = lambda ps: [k for k, p in ps.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]  # noqa: E731
    assert pos(ours) == pos(theirs)
    assert set(ours) - set(theirs) <= {"seed"}  # the reproducible-init keyword, keyword-only
    assert all(ours["seed"].kind is inspect.Parameter.KEYWORD_ONLY for _ in [0] if "seed" in ours)
    for k, p in theirs.items():
        if p.default is not inspect.Parameter.empty:
            assert ours[k].default == p.default, k


def test_conv_padding_modes_match_torch():
    x = np.random.default_rng(1).standard_normal((2, 3, 7, 6))
    for mode in ("zeros", "reflect", "replicate", "circular"):
        a = torch.nn.Conv2d(3, 4, 3, stride=2, padding=(2, 1), padding_mode=mode).double()
        b = nn.Conv2d(3, 4, 3, stride=2, padding=(2, 1), padding_mode=mode, dtype=tg.float64)
        copy_weights(a, b)
        xt, xb = torch.tensor(x, requires_grad=True), tg.tensor(x, requires_grad=True)
        ya, yb = a(xt), b(xb)
        np.testing.assert_allclose(yb.data, ya.detach().numpy(), rtol=1e-10, atol=1e-12)
        (ya**2).sum().backward()
        (yb**2).sum().backward()
        np.testing.assert_allclose(xb.grad.data, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
        assert ("padding_mode" in repr(b)) == (mode != "zeros")
    with pytest.raises(ValueError, match="padding_mode must be"):
        nn.Conv2d(1, 1, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="only padding_mode='zeros'"):
        nn.ConvTranspose2d(1, 1, 3, padding_mode="reflect")


def test_avg_pool_divisor_override_matches_torch_and_gradchecks():
    x = np.random.default_rng(2).standard_normal((2, 2, 7, 7))
    for kw in (dict(kernel_size=3, stride=2, padding=1, divisor_override=4), dict(kernel_size=2, divisor_override=3)):
        want = torch.nn.AvgPool2d(**kw)(torch.tensor(x)).numpy()
        np.testing.assert_allclose(nn.AvgPool2d(**kw)(tg.tensor(x)).data, want, rtol=1e-12)
    assert tg.gradcheck(nn.AvgPool2d(3, 2, 1, divisor_override=5), (tg.tensor(x[:1, :1, :5, :5], requires_grad=True),))
    with pytest.raises(NotImplementedError, match="divisor_override together with ceil_mode=True"):
        nn.AvgPool2d(2, ceil_mode=True, divisor_override=2)


def test_max_pool_positional_return_indices_like_torch():
    x = np.random.default_rng(3).standard_normal((1, 1, 4, 4))
    va, ia = torch.nn.MaxPool2d(2, 2, 0, 1, True)(torch.tensor(x))  # return_indices is the 5th argument
    vb, ib = nn.MaxPool2d(2, 2, 0, 1, True)(tg.tensor(x))
    np.testing.assert_array_equal(vb.data, va.numpy())
    np.testing.assert_array_equal(np.asarray(ib.data), ia.numpy())


def test_softmax_without_dim_like_torch_where_torch_is_unambiguous():
    """1-D and 2-D inputs: PyTorch's implicit dim (the last); 3-D and more: a TypeError asking for
    dim (PyTorch would pick dim 0 or 1, a documented difference)."""
    for shape in [(5,), (3, 5)]:
        x = np.random.default_rng(4).standard_normal(shape)
        with pytest.warns(UserWarning, match="Implicit dimension"):
            want = torch.nn.Softmax()(torch.tensor(x)).numpy()
        np.testing.assert_allclose(nn.Softmax()(tg.tensor(x)).data, want, rtol=1e-12)
        np.testing.assert_allclose(nn.LogSoftmax()(tg.tensor(x)).data, np.log(want), rtol=1e-10)
    with pytest.raises(TypeError, match="dim"):
        nn.Softmax()(tg.ones(2, 3, 4))


@pytest.mark.parametrize("size_average, reduce", [(None, False), (False, None), (True, True), (False, True)])
def test_losses_read_the_legacy_reduction_arguments_like_torch(size_average, reduce):
    x, y = np.random.default_rng(5).standard_normal((2, 4, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = torch.nn.MSELoss(size_average, reduce)(torch.tensor(x), torch.tensor(y)).numpy()
    with pytest.warns(UserWarning, match="size_average and reduce are deprecated"):
        got = nn.MSELoss(size_average, reduce)(tg.tensor(x), tg.tensor(y)).data
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_unsupported_arguments_say_what_to_use():
    with pytest.raises(ValueError, match="reduction must be 'mean', 'sum' or 'none', got 'batchmean'"):
        nn.CrossEntropyLoss(reduction="batchmean")
    with pytest.raises(ValueError, match="inplace"):
        nn.ReLU(inplace=True)
    with pytest.raises(ValueError, match="inplace"):
        nn.Dropout(0.2, True)


def test_identity_unflatten_flatten_like_torch():
    x = np.arange(24.0).reshape(2, 12)
    a = torch.nn.Sequential(torch.nn.Identity(3, k=1), torch.nn.Unflatten(1, (3, 2, 2)), torch.nn.Flatten(2))
    b = nn.Sequential(nn.Identity(3, k=1), nn.Unflatten(1, (3, 2, 2)), nn.Flatten(2))
    np.testing.assert_array_equal(b(tg.tensor(x)).data, a(torch.tensor(x)).numpy())
    assert b[1].extra_repr() == "dim=1, unflattened_size=(3, 2, 2)"


def test_load_state_dict_refuses_values_that_are_not_numbers():
    lin = nn.Linear(2, 2)
    before = lin.bias.data.copy()
    with pytest.raises(nn.StateDictError, match=r"values that are not numbers: weight: checkpoint has dtype <U1"):
        lin.load_state_dict({"weight": np.array([["a", "b"], ["c", "d"]]), "bias": np.zeros(2)})
    np.testing.assert_array_equal(lin.bias.data, before)  # nothing loaded


def test_module_method_signatures_match_torch():
    for name in ["named_parameters", "named_buffers", "named_modules", "modules", "state_dict", "load_state_dict", "apply",
                 "register_forward_hook", "register_forward_pre_hook", "register_buffer", "register_module", "add_module",
                 "get_submodule", "zero_grad", "requires_grad_", "train", "eval", "children", "named_children", "parameters", "buffers"]:
        ours = [(k, p.default, p.kind) for k, p in inspect.signature(getattr(nn.Module, name)).parameters.items()]
        theirs = [(k, p.default, p.kind) for k, p in inspect.signature(getattr(torch.nn.Module, name)).parameters.items()]
        assert ours == theirs, name


def test_duplicates_memo_prefix_destination_like_torch():
    def build(lib):
        shared = lib.nn.Linear(2, 2)
        return lib.nn.Sequential(shared, lib.nn.ReLU(), shared)

    a, b = build(torch), build(tg)
    for kw in ({}, {"remove_duplicate": False}, {"prefix": "m"}):
        assert [n for n, _ in a.named_parameters(**kw)] == [n for n, _ in b.named_parameters(**kw)], kw
        assert [n for n, _ in a.named_modules(**kw)] == [n for n, _ in b.named_modules(**kw)], kw
    assert [n for n, _ in a.named_modules(memo={a[1]})] == [n for n, _ in b.named_modules(memo={b[1]})] == ["", "0"]
    dest = {}
    assert b.state_dict(destination=dest, prefix="net.") is dest and list(dest) == list(a.state_dict(prefix="net."))
    assert list(b.state_dict(None, "p.")) == ["p.0.weight", "p.0.bias", "p.2.weight", "p.2.bias"]


def test_forward_hook_prepend_and_always_call_like_torch():
    def run(lib):
        calls = []

        class Boom(lib.nn.Module):
            def forward(self, x):
                if x.sum().item() > 100:
                    raise ValueError("boom")
                return x

        m = Boom()
        m.register_forward_hook(lambda mod, args, out: calls.append("a"))
        m.register_forward_hook(lambda mod, args, out: calls.append("b"), prepend=True)
        m.register_forward_pre_hook(lambda mod, args: calls.append("pre-a"))
        m.register_forward_pre_hook(lambda mod, args: calls.append("pre-b"), prepend=True)
        m.register_forward_hook(lambda mod, args, out: calls.append(f"always {out is None}"), always_call=True)
        m(lib.ones(2))
        with pytest.raises(ValueError, match="boom"):
            m(lib.ones(2) * 100)
        return calls

    assert run(tg) == run(torch)


def test_module_list_and_dict_editing_like_torch():
    def ops(lib):
        m = lib.nn
        ml = m.ModuleList([m.Linear(1, 1), m.ReLU(), m.Tanh()])
        ml.insert(1, m.Sigmoid())
        ml.insert(3, m.Identity())
        ml += [m.ELU()]
        del ml[0]
        out = [type(ml.pop(1)).__name__, list(ml._modules), [type(x).__name__ for x in ml]]
        del ml[1:3]
        out.append([type(x).__name__ for x in ml])
        md = m.ModuleDict({"a": m.ReLU(), "b": m.Tanh()})
        out += [type(md.pop("a")).__name__, list(md.keys())]
        md.clear()
        out.append(len(md))
        return out

    assert ops(tg) == ops(torch)


def test_batch_norm_without_bias_matches_torch():
    x = np.random.default_rng(6).standard_normal((4, 3, 2, 2))
    a = torch.nn.BatchNorm2d(3, bias=False).double()
    b = nn.BatchNorm2d(3, bias=False, dtype=tg.float64)
    assert list(a.state_dict()) == list(b.state_dict()) and b.bias is None
    with torch.no_grad():
        a.weight.mul_(2.0)
    copy_weights(a, b)
    np.testing.assert_allclose(b(tg.tensor(x)).data, a(torch.tensor(x)).detach().numpy(), rtol=1e-10)
