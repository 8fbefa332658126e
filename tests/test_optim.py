"""Optimizers against their published update rules, computed by hand in numpy (and, when torch is
installed, against torch.optim); groups, state dicts, and the live-graph protection."""

import gc

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn, optim
from tinygrad_cnn.optim import rules

STEPS = 6


def grads_for(p, k):
    # A gradient that depends on the parameter and on the step, so state matters.
    return np.cos(3.0 * p + k) + 0.1 * k


# ---- reference updates, written from the papers / PyTorch docs, independent of rules.py ----
def ref_sgd(p, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    buf = None
    for k in range(STEPS):
        d = grads_for(p, k) + weight_decay * p
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + (1 - dampening) * d
            d = d + momentum * buf if nesterov else buf
        p = p - lr * d
    return p


def ref_adagrad(p, lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10):
    G = np.full_like(p, initial_accumulator_value)
    for k in range(STEPS):
        g = grads_for(p, k) + weight_decay * p
        G += g**2
        p = p - lr / (1 + k * lr_decay) * g / (np.sqrt(G) + eps)
    return p


def ref_rmsprop(p, lr, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
    E2 = np.zeros_like(p)
    Eg = np.zeros_like(p)
    b = np.zeros_like(p)
    for k in range(STEPS):
        g = grads_for(p, k) + weight_decay * p
        E2 = alpha * E2 + (1 - alpha) * g**2
        Eg = alpha * Eg + (1 - alpha) * g
        rms = np.sqrt(E2 - Eg**2 if centered else E2) + eps
        if momentum:
            b = momentum * b + g / rms
            p = p - lr * b
        else:
            p = p - lr * g / rms
    return p


def ref_adam(p, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, decoupled=False):
    # Kingma & Ba, Algorithm 1 (with AMSGrad's max of v, and AdamW's decoupled decay).
    b1, b2 = betas
    m = np.zeros_like(p)
    v = np.zeros_like(p)
    vmax = np.zeros_like(p)
    for t in range(1, STEPS + 1):
        g = grads_for(p, t - 1)
        if decoupled:
            p = p - lr * weight_decay * p
        else:
            g = g + weight_decay * p
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat = m / (1 - b1**t)
        vmax = np.maximum(vmax, v)
        v_hat = (vmax if amsgrad else v) / (1 - b2**t)
        p = p - lr * m_hat / (np.sqrt(v_hat) + eps)
    return p


CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    (optim.AdaGrad, ref_adagrad, dict(lr=0.1)),
    (optim.AdaGrad, ref_adagrad, dict(lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.5)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.02)),
    (optim.Adam, ref_adam, dict(lr=0.01)),
    (optim.Adam, ref_adam, dict(lr=0.02, betas=(0.8, 0.9), weight_decay=0.1, amsgrad=True)),
    (optim.AdamW, lambda p, **k: ref_adam(p, decoupled=True, **{"weight_decay": 1e-2, **k}), dict(lr=0.01)),
    (optim.AdamW, lambda p, **k: ref_adam(p, decoupled=True, **k), dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
]


def run(cls, p0, **hp):
    p = nn.Parameter(p0.copy())
    opt = cls([p], **hp)
    for k in range(STEPS):
        opt.zero_grad()
        p.grad = tg.Tensor(grads_for(p.data, k))
        opt.step()
    return p.data


@pytest.mark.parametrize("cls, ref, hp", CASES, ids=lambda c: getattr(c, "__name__", None) if isinstance(c, type) else None)
def test_matches_hand_computed_rule(cls, ref, hp):
    p0 = np.random.default_rng(0).standard_normal((3, 4))
    got = run(cls, p0, **hp)
    np.testing.assert_allclose(got, ref(p0.copy(), **hp), rtol=1e-12, atol=1e-13)
    assert not np.allclose(got, p0)


@pytest.mark.parametrize("cls, ref, hp", CASES, ids=lambda c: getattr(c, "__name__", None) if isinstance(c, type) else None)
def test_matches_torch_optim(cls, ref, hp):
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(1).standard_normal((5,))
    tp = torch.nn.Parameter(torch.tensor(p0.copy()))
    name = {"AdaGrad": "Adagrad"}.get(cls.__name__, cls.__name__)
    topt = getattr(torch.optim, name)([tp], **hp)
    for k in range(STEPS):
        topt.zero_grad()
        tp.grad = torch.tensor(grads_for(tp.detach().numpy(), k))
        topt.step()
    np.testing.assert_allclose(run(cls, p0, **hp), tp.detach().numpy(), rtol=1e-10, atol=1e-12)


def test_rules_are_pure_and_keep_dtype():
    p = np.array([1.0, -2.0], dtype=np.float32)
    g = np.array([0.5, 0.25], dtype=np.float32)
    for name, rule in rules.RULES.items():
        hp = {"lr": 0.1} if name == "sgd" else {}
        if name in ("sgd", "rmsprop"):
            hp["momentum"] = 0.9
        state: dict = {}
        p1, s1 = rule(p, g, state, **hp)
        p2, s2 = rule(p1, g, s1, **hp)
        assert state == {} and p.tolist() == [1.0, -2.0] and g.tolist() == [0.5, 0.25], name
        assert p1.dtype == p2.dtype == np.float32, name
        assert all(v.dtype == np.float32 for v in s2.values() if isinstance(v, np.ndarray)), name
        snapshot = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s1.items()}
        rule(p1, g, s1, **hp)
        for k, v in snapshot.items():
            np.testing.assert_array_equal(s1[k], v)
    with pytest.raises(ValueError, match="gradient shape"):
        rules.sgd(p, g[:1], {}, lr=0.1)


def test_param_groups_use_their_own_hyperparameters():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = tg.Tensor(np.ones(2)), tg.Tensor(np.ones(3))
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)
    c = nn.Parameter(np.ones(1))
    opt.add_param_group({"params": [c], "momentum": 0.9})
    assert opt.param_groups[2]["lr"] == 0.1 and opt.param_groups[2]["momentum"] == 0.9
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": [a]})


def test_step_skips_parameters_without_grad_and_runs_closure():
    a, b = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(2))
    opt = optim.Adam([a, b], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (a * a).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 2.0
    assert not np.allclose(a.data, 1.0) and np.array_equal(b.data, np.ones(2))
    assert b not in opt.state and opt.state[a]["step"] == 1


def test_bad_arguments_are_named():
    p = nn.Parameter(np.ones(2))
    with pytest.raises(ValueError, match="SGD: no learning rate"):
        optim.SGD([p], lr=None)
    with pytest.raises(ValueError, match="lr=-1"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam([p], betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="empty parameter list"):
        optim.Adam([])
    with pytest.raises(TypeError, match="single Tensor"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="not a leaf"):
        optim.Adam([p * 2])
    with pytest.raises(ValueError, match="unknown hyperparameter"):
        optim.Adam([{"params": [p], "momentum": 0.9}])


def test_state_dict_roundtrip_continues_identically(tmp_path):
    def make():
        model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.Tanh(), nn.Linear(4, 2, seed=1))
        opt = optim.Adam([{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 0.05}], lr=0.01, amsgrad=True)
        return model, opt

    def train(model, opt, ks):
        for k in ks:
            opt.zero_grad()
            model(tg.randn(8, 3, seed=k)).sum().backward()
            opt.step()

    m1, o1 = make()
    train(m1, o1, range(3))
    tg.save({"model": m1.state_dict(), "optim": o1.state_dict()}, tmp_path / "ckpt.npz")
    train(m1, o1, range(3, 6))

    m2, o2 = make()
    ck = tg.load(tmp_path / "ckpt.npz")
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["optim"])
    assert o2.param_groups[1]["lr"] == 0.05 and o2.param_groups[0]["betas"] == (0.9, 0.999)
    assert o2.state[m2[0].weight]["step"] == 3 and isinstance(o2.state[m2[0].weight]["step"], int)
    train(m2, o2, range(3, 6))
    for (k, a), (_, b) in zip(m1.state_dict().items(), m2.state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=k)


def test_load_state_dict_checks_structure():
    p, q = nn.Parameter(np.ones(2)), nn.Parameter(np.ones(3))
    opt = optim.SGD([p, q], lr=0.1, momentum=0.9)
    p.grad, q.grad = tg.Tensor(np.ones(2)), tg.Tensor(np.ones(3))
    opt.step()
    sd = opt.state_dict()
    other = optim.SGD([q, p], lr=0.1, momentum=0.9)  # same count, swapped shapes
    with pytest.raises(ValueError, match="'momentum_buffer' of parameter 0 has shape \\(2,\\), the parameter \\(3,\\)"):
        other.load_state_dict(sd)
    assert other.state == {}
    with pytest.raises(ValueError, match="1 parameter group"):
        optim.SGD([{"params": [p]}, {"params": [q]}], lr=0.1).load_state_dict(sd)
    with pytest.raises(ValueError, match="group 0 has 2 parameter"):
        optim.SGD([p], lr=0.1).load_state_dict(sd)


def test_step_trips_the_saved_array_check_of_a_live_graph():
    model = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.Linear(4, 1, seed=1))
    opt = optim.SGD(model.parameters(), lr=0.1)
    x = tg.randn(5, 3, seed=0, requires_grad=True)
    loss = model(x).sum()
    loss.backward(retain_graph=True)
    stale = model(x).sum()  # recorded before the step, backward after it
    opt.step()
    with pytest.raises(RuntimeError, match="modified in place"):
        stale.backward()
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()
    del loss, stale
    gc.collect()
    # A raw numpy write to a saved weight is refused outright while a graph holds it.
    live = model(x).sum()
    with pytest.raises(ValueError, match="read-only"):
        model[0].weight.data[0, 0] = 1.0
    live.backward()
    model[0].weight.data[0, 0] = 1.0  # released after backward: writable again


def test_sgd_trains_a_small_model():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 2)).astype(np.float32)
    y = (x[:, 0] * x[:, 1] > 0).astype(np.int64)
    model = nn.Sequential(nn.Linear(2, 16, seed=0), nn.Tanh(), nn.Linear(16, 2, seed=1))
    opt = optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    first = None
    for _ in range(100):
        opt.zero_grad()
        loss = loss_fn(model(tg.Tensor(x)), y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.3 * first


def test_constructors_take_the_rules_hyperparameters_and_defaults():
    import inspect

    from tinygrad_cnn.optim import functional as fopt

    for cls, fn, name in ((optim.SGD, fopt.sgd, "sgd"), (optim.AdaGrad, fopt.adagrad, "adagrad"), (optim.RMSprop, fopt.rmsprop, "rmsprop"),
                          (optim.Adam, fopt.adam, "adam"), (optim.AdamW, fopt.adamw, "adamw")):
        declared = {p.name: p.default for p in rules.hyperparameters(name)}
        obj = dict(list(inspect.signature(cls).parameters.items())[1:])
        hps = {k: p for k, p in obj.items() if k in declared}
        assert set(hps) == set(declared) and list(declared) == list(inspect.signature(fn).parameters), name
        assert set(obj) - set(declared) == {"foreach", "fused", "capturable", "differentiable"}, name
        assert {k: p.default for k, p in hps.items()} == rules.DEFAULTS[name] == declared, name
        assert {k: p.default for k, p in inspect.signature(fn).parameters.items()} == declared, name
    a = nn.Parameter(np.ones(2))
    assert list(optim.SGD([a], 0.1, 0.9).param_groups[0])[:2] == ["lr", "momentum"]  # positional, in the rule's order
    with pytest.raises(TypeError, match="Adam: got an unexpected keyword argument 'betas2'"):
        optim.Adam([a], betas2=0.9)
    with pytest.raises(TypeError, match="SGD: too many positional arguments"):
        optim.SGD([a], 0.1, 0.9, 0.0, 0.0, False, True)  # maximize is keyword-only, as in PyTorch


def test_signatures_match_torch_optim():
    """Names, positional order and defaults of every constructor argument PyTorch 2 has: a call
    written for torch.optim binds the same way here."""
    import inspect

    torch = pytest.importorskip("torch")
    for name in ("SGD", "Adam", "AdamW", "RMSprop", "Adagrad"):
        ours = inspect.signature(getattr(optim, name)).parameters
        theirs = dict(list(inspect.signature(getattr(torch.optim, name).__init__).parameters.items())[1:])
        pos = lambda ps: [k for k, p in ps.items() if p.kind is p.POSITIONAL_OR_KEYWORD]  # noqa: E731
        # RMSprop and Adagrad take maximize/foreach/... positionally in PyTorch; keyword-only here.
        extra_pos = {"capturable", "foreach", "maximize", "differentiable"}
        assert pos(ours) == [k for k in pos(theirs) if k not in extra_pos], name
        assert set(theirs) <= set(ours), name
        assert set(ours) - set(theirs) <= {"capturable", "fused", "foreach", "differentiable"}, name  # switches, at their defaults
        for k, p in ours.items():
            if k in theirs and k != "params":
                assert p.default == theirs[k].default, (name, k)


def test_sgd_positional_arguments_bind_like_torch():
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(2).standard_normal(4)
    tp = torch.nn.Parameter(torch.tensor(p0.copy()))
    topt = torch.optim.SGD([tp], 0.05, 0.9, 0.1, 0.01)  # lr, momentum, dampening, weight_decay
    p = nn.Parameter(p0.copy())
    opt = optim.SGD([p], 0.05, 0.9, 0.1, 0.01)
    for k in range(STEPS):
        tp.grad = torch.tensor(grads_for(tp.detach().numpy(), k))
        p.grad = tg.Tensor(grads_for(p.data, k))
        topt.step()
        opt.step()
    np.testing.assert_allclose(p.data, tp.detach().numpy(), rtol=1e-12)
    assert optim.SGD([p]).param_groups[0]["lr"] == torch.optim.SGD([tp]).param_groups[0]["lr"] == 1e-3


@pytest.mark.parametrize("hp", [dict(lr=0.02, weight_decay=0.1), dict(lr=0.02, weight_decay=0.1, amsgrad=True, maximize=True)])
def test_adam_decoupled_weight_decay_matches_torch_and_adamw(hp):
    torch = pytest.importorskip("torch")
    p0 = np.random.default_rng(3).standard_normal((5,))
    tp = torch.nn.Parameter(torch.tensor(p0.copy()))
    topt = torch.optim.Adam([tp], decoupled_weight_decay=True, **hp)
    for k in range(STEPS):
        tp.grad = torch.tensor(grads_for(tp.detach().numpy(), k))
        topt.step()
    got = run(optim.Adam, p0, decoupled_weight_decay=True, **hp)
    np.testing.assert_allclose(got, tp.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, run(optim.AdamW, p0, **hp), rtol=0, atol=0)


def test_per_group_options_and_add_param_group_match_torch():
    """The PyTorch recipe: no weight decay on biases, a second group added later with its own lr."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    w0, b0, h0 = rng.standard_normal((3, 2)), rng.standard_normal(3), rng.standard_normal(2)

    def build(lib):
        P = torch.nn.Parameter if lib is torch else nn.Parameter
        w, b, h = (P(lib.tensor(a.copy())) for a in (w0, b0, h0))
        opt = lib.optim.SGD([{"params": [w]}, {"params": [b], "weight_decay": 0.0}], lr=0.1, momentum=0.9, weight_decay=0.05)
        return opt, (w, b, h)

    (ta, tps), (oa, ops) = build(torch), build(tg)
    for k in range(STEPS):
        if k == 2:
            ta.add_param_group({"params": [tps[2]], "lr": 0.01, "nesterov": True})
            oa.add_param_group({"params": [ops[2]], "lr": 0.01, "nesterov": True})
            assert [g["lr"] for g in oa.param_groups] == [g["lr"] for g in ta.param_groups]
            assert oa.param_groups[2]["momentum"] == 0.9 and oa.param_groups[1]["weight_decay"] == 0.0
        for tp, op in zip(tps, ops):
            tp.grad = torch.tensor(grads_for(tp.detach().numpy(), k))
            op.grad = tg.Tensor(grads_for(op.data, k))
        ta.step()
        oa.step()
    for tp, op in zip(tps, ops):
        np.testing.assert_allclose(op.data, tp.detach().numpy(), rtol=1e-12)


def test_named_parameters_are_accepted_as_in_torch():
    model = nn.Linear(3, 2, dtype=np.float64)
    opt = optim.Adam(model.named_parameters(), lr=0.1)
    assert opt.param_groups[0]["params"] == list(model.parameters())


@pytest.mark.parametrize("flag, value", [("foreach", True), ("fused", True), ("capturable", True), ("differentiable", True)])
def test_cuda_implementation_switches_are_refused_clearly(flag, value):
    p = nn.Parameter(np.ones(2))
    with pytest.raises(NotImplementedError, match=rf"Adam: {flag}=True is not supported in tinygrad_cnn.*Leave {flag} at its default"):
        optim.Adam([p], **{flag: value})
    opt = optim.SGD([p], lr=0.1, **{flag: False})  # False (and the default) select what exists here
    assert flag not in opt.param_groups[0]


def test_a_pytorch_style_custom_optimizer_works_with_schedulers():
    """The torch.optim.Optimizer subclass pattern: defaults dict, own step() over param_groups and
    state; a scheduler sees its steps (no 'scheduler before optimizer' warning)."""
    import warnings

    class SignSGD(optim.Optimizer):
        def __init__(self, params, lr=0.01):
            super().__init__(params, dict(lr=lr))

        @tg.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self.state.setdefault(p, {"n": 0})["n"] += 1
                        p.sub_(p.grad.sign() * group["lr"])

    class Counted(optim.SGD):
        def step(self, closure=None):
            return super().step(closure)

    p = nn.Parameter(np.array([1.0, -2.0]))
    for opt in (SignSGD([p], lr=0.5), Counted([p], lr=0.5)):
        sched = optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.1)
        p.grad = tg.tensor([3.0, -0.1], dtype=tg.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            opt.step()
            sched.step()
        assert opt.step_count == 1 and opt.param_groups[0]["lr"] == pytest.approx(0.05)
    np.testing.assert_allclose(p.data, [1.0 - 0.5 - 1.5, -2.0 + 0.5 + 0.05])
    assert SignSGD([p]).defaults == {"lr": 0.01}
