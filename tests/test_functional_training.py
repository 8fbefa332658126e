"""Functional optimizers agree with the object optimizers, and a functional LeNet trains exactly
like the Module LeNet."""
import importlib.util
import pathlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import nn, optim
from tinygrad_cnn.func import get_params, value_and_grad
from tinygrad_cnn.models import LeNet
from tinygrad_cnn.nn import functional as F
from tinygrad_cnn.optim import functional as fopt

_EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "functional_model.py"
_spec = importlib.util.spec_from_file_location("functional_model", _EXAMPLE)
fm = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fm)

CONFIGS = [
    ("sgd", optim.SGD, fopt.sgd, {"lr": 0.1}),
    ("sgd", optim.SGD, fopt.sgd, {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("sgd", optim.SGD, fopt.sgd, {"lr": 0.05, "momentum": 0.5, "dampening": 0.1}),
    ("adam", optim.Adam, fopt.adam, {"lr": 1e-2}),
    ("adam", optim.Adam, fopt.adam, {"lr": 1e-2, "amsgrad": True, "weight_decay": 0.1}),
    ("adamw", optim.AdamW, fopt.adamw, {"lr": 1e-2, "weight_decay": 0.1}),
    ("adagrad", optim.Adagrad, fopt.adagrad, {"lr": 0.1, "lr_decay": 0.01}),
    ("rmsprop", optim.RMSprop, fopt.rmsprop, {"lr": 1e-2, "momentum": 0.9, "centered": True}),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c[0]}-{'-'.join(k for k in c[3] if k != 'lr') or 'plain'}")
@given(seed=st.integers(0, 2**16), dtype=st.sampled_from([np.float32, np.float64]))
def test_functional_optimizer_matches_object_optimizer(cfg, seed, dtype):
    _, Obj, fn, hp = cfg
    rng = np.random.default_rng(seed)
    shapes = {"w": (3, 2), "b": (2,), "deep": [(4,)]}
    init = {
        "w": rng.standard_normal(shapes["w"]).astype(dtype),
        "b": rng.standard_normal(2).astype(dtype),
        "deep": [rng.standard_normal(4).astype(dtype)],
    }
    objs = [nn.Parameter(init["w"].copy()), nn.Parameter(init["b"].copy()), nn.Parameter(init["deep"][0].copy())]
    opt_o = Obj(objs, **hp)
    opt_f = fn(**hp)
    params = {"w": tg.tensor(init["w"].copy()), "b": init["b"].copy(), "deep": [tg.tensor(init["deep"][0].copy())]}
    state = opt_f.init(params)
    for _ in range(4):
        gs = [rng.standard_normal(p.shape).astype(dtype) for p in objs]
        for p, g in zip(objs, gs):
            p.grad = tg.tensor(g)
        opt_o.step()
        params, state = opt_f.update({"w": gs[0], "b": tg.tensor(gs[1]), "deep": [gs[2]]}, state, params)
    # One implementation of the rule: identical numbers, dtype kept, leaf types kept.
    np.testing.assert_array_equal(params["w"].data, objs[0].data)
    np.testing.assert_array_equal(params["b"], objs[1].data)
    np.testing.assert_array_equal(params["deep"][0].data, objs[2].data)
    assert isinstance(params["b"], np.ndarray) and params["w"].dtype == dtype
    assert state.count == 4


def test_functional_optimizer_is_pure_and_supports_schedules():
    p0 = {"w": np.array([1.0, 2.0])}
    opt = fopt.sgd(lambda step: 0.1 / (step + 1), momentum=0.9)
    s0 = opt.init(p0)
    g = {"w": np.array([1.0, -1.0])}
    p1, s1 = opt.update(g, s0, p0)
    np.testing.assert_array_equal(p0["w"], [1.0, 2.0])  # inputs untouched
    assert s0.leaf_states == ({},)
    np.testing.assert_allclose(p1["w"], [0.9, 2.1])
    p2, s2 = opt.update(g, s1, p1)
    # momentum buffer 1.9 * g, lr 0.05
    np.testing.assert_allclose(p2["w"], p1["w"] - 0.05 * 1.9 * g["w"])
    # The same state can be reused: updates are deterministic functions of their inputs.
    p1b, _ = opt.update(g, s0, p0)
    np.testing.assert_array_equal(p1b["w"], p1["w"])


def test_functional_optimizer_errors():
    opt = fopt.adam(lr=1e-3)
    params = {"conv1": {"w": np.ones(2), "b": np.ones(3)}}
    state = opt.init(params)
    with pytest.raises(ValueError, match=r"grads\['conv1'\]\['b'\]: expected a leaf, got None"):
        opt.update({"conv1": {"w": np.ones(2), "b": None}}, state, params)
    with pytest.raises(ValueError, match=r"grads\['conv1'\]\['b'\] has shape \(2,\) but the parameter has shape \(3,\)"):
        opt.update({"conv1": {"w": np.ones(2), "b": np.ones(2)}}, state, params)
    with pytest.raises(TypeError, match=r"params\['conv1'\]\['b'\] is a ndarray .*int64"):
        opt.init({"conv1": {"w": np.ones(2), "b": np.ones(3, dtype=np.int64)}})
    with pytest.raises(ValueError, match="call init"):
        opt.update({"w": np.ones(1)}, state, {"w": np.ones(1)})
    with pytest.raises(TypeError, match="OptState"):
        opt.update(params, {}, params)
    with pytest.raises(ValueError, match=r"lr=-1"):
        fopt.sgd(-1)
    with pytest.raises(ValueError, match="betas"):
        fopt.adam(betas=(0.9, 1.5))
    with pytest.raises(ValueError, match="lr=-0.5"):
        fopt.sgd(lambda s: -0.5).update({"w": np.ones(1)}, fopt.sgd(0.1).init({"w": np.ones(1)}), {"w": np.ones(1)})


# ---- LeNet: the plain function against Modules --------------------------------------------------
def _batches(n, dtype=np.float64):
    return fm.synthetic_batches(n, batch_size=4, seed=3, dtype=dtype)


class _ModuleLeNet(nn.Module):
    """The same network as fm.lenet, written as a Module with Parameters (independent of models/)."""

    def __init__(self, params):
        super().__init__()
        for name, _ in fm.PARAM_SHAPES:
            layer, kind = name.split(".")
            if layer not in self._modules:
                setattr(self, layer, nn.Module())
            setattr(getattr(self, layer), kind, nn.Parameter(params[name].data.copy()))

    def forward(self, x):
        pad = 2 if x.shape[-1] == 28 else 0
        h = F.avg_pool2d(F.conv2d(x, self.c1.weight, self.c1.bias, padding=pad).tanh(), 2)
        h = F.avg_pool2d(F.conv2d(h, self.c3.weight, self.c3.bias).tanh(), 2)
        h = F.conv2d(h, self.c5.weight, self.c5.bias).tanh().flatten(1)
        h = F.linear(h, self.f6.weight, self.f6.bias).tanh()
        return F.linear(h, self.output.weight, self.output.bias)


def _object_losses(model, opt, batches):
    losses = []
    for x, y in batches:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_functional_lenet_trains_like_the_module_version(name):
    Obj, fn, hp = {"sgd": (optim.SGD, fopt.sgd, {"lr": 0.1, "momentum": 0.9}), "adam": (optim.Adam, fopt.adam, {"lr": 1e-3})}[name]
    params = fm.init_lenet(seed=1, dtype=np.float64)
    model = _ModuleLeNet(params)
    assert list(get_params(model)) == [n for n, _ in fm.PARAM_SHAPES]
    batches = _batches(5)
    want = _object_losses(model, Obj(model.parameters(), **hp), batches)
    final, got = fm.train(params, batches, fn(**hp), activation="tanh")
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    for k, v in get_params(model).items():
        np.testing.assert_allclose(final[k].data, v.data, rtol=1e-9, atol=1e-12)


def test_functional_lenet_learns_a_batch():
    _, losses = fm.train(fm.init_lenet(seed=0, dtype=np.float64), _batches(1) * 6, fopt.adam(lr=1e-2), activation="tanh")
    assert losses[-1] < 0.5 * losses[0]


def test_functional_lenet_matches_models_lenet():
    model = LeNet(activation="tanh", pooling="avg", dtype=np.float64, seed=0)
    params = get_params(model)
    assert [(k, v.shape) for k, v in params.items()] == fm.PARAM_SHAPES
    batches = _batches(5)
    hp = {"lr": 0.05, "momentum": 0.9}
    final, got = fm.train(params, batches, fopt.sgd(**hp), activation="tanh", pooling="avg")
    want = _object_losses(model, optim.SGD(model.parameters(), **hp), batches)
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fm.lenet(final, batches[0][0], activation="tanh").data, model(batches[0][0]).data, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("activation,pooling", [("sigmoid", "avg"), ("relu", "max")])
def test_lenet_function_equals_models_lenet_forward(activation, pooling):
    model = LeNet(activation=activation, pooling=pooling, dtype=np.float64, seed=1)
    x = _batches(1)[0][0]
    kw = {} if activation == "sigmoid" else {"activation": activation, "pooling": pooling}  # the defaults are the classic net
    np.testing.assert_allclose(fm.lenet(get_params(model), x, **kw).data, model(x).data, rtol=1e-12, atol=1e-14)


def test_value_and_grad_of_lenet_matches_module_backward():
    params = fm.init_lenet(seed=2, dtype=np.float64)
    model = _ModuleLeNet(params)
    x, y = _batches(1)[0]
    loss, grads = value_and_grad(fm.loss_fn)(params, x, y, activation="tanh")
    ref = F.cross_entropy(model(x), y)
    ref.backward()
    assert loss.item() == pytest.approx(ref.item(), rel=1e-12)
    for k, p in model.named_parameters():
        np.testing.assert_allclose(grads[k].data, p.grad.data, rtol=1e-10, atol=1e-14)
    assert all(v.grad is None for v in params.values())
