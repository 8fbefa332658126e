"""Learning-rate schedulers: sequences against PyTorch's (when importable) and closed forms,
state_dict round trips, the optimizer working with the scheduler's param-group entries, errors."""
import copy
import doctest
import math
import warnings
from bisect import bisect_right

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tinygrad_cnn as tg
from tinygrad_cnn import optim
from tinygrad_cnn.optim import lr_scheduler as ours

try:
    import torch
except ImportError:  # pragma: no cover - torch is only a reference
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")
N = 30
RTOL = 1e-12

pytestmark = pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)`:UserWarning")


# ---- building the same setting in both libraries ------------------------------------------------
def _groups(lib, opt_name, lrs, **kw):
    """An optimizer of `opt_name` with one parameter group per entry of `lrs`."""
    if lib == "torch":
        ps = [torch.zeros(2, dtype=torch.float64, requires_grad=True) for _ in lrs]
        cls = getattr(torch.optim, {"AdaGrad": "Adagrad"}.get(opt_name, opt_name))
    else:
        ps = [tg.Tensor(np.zeros(2), requires_grad=True) for _ in lrs]
        cls = getattr(optim, opt_name)
    return cls([{"params": [p], "lr": lr} for p, lr in zip(ps, lrs)], lr=lrs[0], **kw)


def _sched_module(lib):
    return torch.optim.lr_scheduler if lib == "torch" else ours


def lam1(epoch):
    return 0.9**epoch


def lam2(epoch):
    return 1.0 / (1 + epoch // 4)


# name -> (optimizer name, optimizer kwargs, scheduler builder(module, opt))
CASES = {
    "StepLR": ("SGD", {}, lambda m, o: m.StepLR(o, step_size=4, gamma=0.3)),
    "MultiStepLR": ("SGD", {}, lambda m, o: m.MultiStepLR(o, milestones=[3, 7, 7, 20], gamma=0.5)),
    "ExponentialLR": ("Adam", {}, lambda m, o: m.ExponentialLR(o, gamma=0.87)),
    "CosineAnnealingLR": ("SGD", {}, lambda m, o: m.CosineAnnealingLR(o, T_max=7, eta_min=0.001)),
    "CosineAnnealingLR-zero": ("SGD", {}, lambda m, o: m.CosineAnnealingLR(o, T_max=10)),
    "LambdaLR": ("SGD", {}, lambda m, o: m.LambdaLR(o, lr_lambda=[lam1, lam2])),
    "LinearLR": ("RMSprop", {}, lambda m, o: m.LinearLR(o, start_factor=0.2, end_factor=0.9, total_iters=11)),
    "OneCycleLR-cos": ("SGD", {"momentum": 0.9}, lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.5], total_steps=N + 1)),
    "OneCycleLR-linear-adam": (
        "Adam",
        {},
        lambda m, o: m.OneCycleLR(o, max_lr=0.01, epochs=4, steps_per_epoch=8, anneal_strategy="linear", pct_start=0.25),
    ),
    "OneCycleLR-three-phase": (
        "AdamW",
        {},
        lambda m, o: m.OneCycleLR(o, max_lr=0.3, total_steps=N + 2, three_phase=True, base_momentum=[0.8, 0.7], div_factor=10.0),
    ),
    "OneCycleLR-no-momentum": ("AdaGrad", {}, lambda m, o: m.OneCycleLR(o, max_lr=0.2, total_steps=N + 1, cycle_momentum=False)),
    "SequentialLR": (
        "SGD",
        {},
        lambda m, o: m.SequentialLR(
            o,
            [m.LinearLR(o, start_factor=0.1, total_iters=5), m.CosineAnnealingLR(o, T_max=12), m.ExponentialLR(o, 0.9)],
            milestones=[5, 17],
        ),
    ),
    "SequentialLR-steps": (
        "SGD",
        {},
        lambda m, o: m.SequentialLR(o, [m.ExponentialLR(o, 0.8), m.MultiStepLR(o, [2, 9]), m.StepLR(o, 3)], milestones=[6, 14]),
    ),
}


def _momentum(group):
    if "betas" in group:
        return float(group["betas"][0])
    return float(group.get("momentum", 0.0))


def _record(opt, sched):
    return [float(g["lr"]) for g in opt.param_groups] + [_momentum(g) for g in opt.param_groups] + [float(x) for x in sched.get_last_lr()]


def run(lib, case, n=N, cut=None):
    """Learning rates (and momenta) of every group after construction and after each of n steps.
    With `cut`, the run is saved after `cut` steps and continued by a new optimizer and scheduler
    that load the saved states."""
    opt_name, okw, build = CASES[case]
    m = _sched_module(lib)
    opt = _groups(lib, opt_name, [0.1, 0.05], **okw)
    sched = build(m, opt)
    out = [_record(opt, sched)]
    for i in range(n):
        if cut is not None and i == cut:
            sd_opt, sd_sched = copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())
            opt = _groups(lib, opt_name, [0.7, 0.3], **okw)  # other lrs: the loaded state must win
            sched = build(m, opt)
            opt.load_state_dict(sd_opt)
            sched.load_state_dict(sd_sched)
        opt.step()
        sched.step()
        out.append(_record(opt, sched))
    return np.array(out)


# ---- against PyTorch ------------------------------------------------------------------------------
@needs_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_sequence_matches_torch(case):
    np.testing.assert_allclose(run("ours", case), run("torch", case), rtol=RTOL, atol=0)


@needs_torch
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("cut", [1, 7, 18])
def test_state_dict_round_trip_matches_torch(case, cut):
    resumed = run("ours", case, cut=cut)
    np.testing.assert_allclose(resumed, run("ours", case), rtol=RTOL, atol=0)
    np.testing.assert_allclose(resumed, run("torch", case, cut=cut), rtol=RTOL, atol=0)


@needs_torch
def test_state_dict_keys_match_torch():
    for case in sorted(CASES):
        opt_name, okw, build = CASES[case]
        a = build(ours, _groups("ours", opt_name, [0.1, 0.05], **okw))
        b = build(torch.optim.lr_scheduler, _groups("torch", opt_name, [0.1, 0.05], **okw))
        assert set(a.state_dict()) == set(b.state_dict()), case


@needs_torch
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_param_group_entries_match_torch(opt_name):
    a = _groups("ours", opt_name, [0.1, 0.05])
    b = _groups("torch", opt_name, [0.1, 0.05])
    ours.OneCycleLR(a, max_lr=0.5, total_steps=10)
    torch.optim.lr_scheduler.OneCycleLR(b, max_lr=0.5, total_steps=10)
    for ga, gb in zip(a.param_groups, b.param_groups):
        extra = set(gb) - set(b.defaults) - {"params"}
        assert extra == {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}
        for k in extra | {"lr"}:
            assert ga[k] == gb[k], k
        assert _momentum(ga) == _momentum(gb)


@st.composite
def settings_(draw):
    kind = draw(st.sampled_from(["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR", "OneCycleLR"]))
    if kind == "StepLR":
        kw = dict(step_size=draw(st.integers(1, 8)), gamma=draw(st.floats(0.05, 1.0)))
    elif kind == "MultiStepLR":
        kw = dict(milestones=draw(st.lists(st.integers(0, N + 2), max_size=5)), gamma=draw(st.floats(0.05, 1.0)))
    elif kind == "ExponentialLR":
        kw = dict(gamma=draw(st.floats(0.5, 1.0)))
    elif kind == "CosineAnnealingLR":
        kw = dict(T_max=draw(st.integers(1, 2 * N)), eta_min=draw(st.sampled_from([0.0, 1e-4, 0.01])))
    elif kind == "LinearLR":
        kw = dict(start_factor=draw(st.floats(0.01, 1.0)), end_factor=draw(st.floats(0.0, 1.0)), total_iters=draw(st.integers(0, 2 * N)))
    else:
        kw = dict(
            max_lr=draw(st.floats(0.01, 2.0)),
            total_steps=N + draw(st.integers(1, 20)),
            pct_start=draw(st.floats(0.1, 0.9)),
            anneal_strategy=draw(st.sampled_from(["cos", "linear"])),
            three_phase=draw(st.booleans()),
            div_factor=draw(st.floats(2.0, 100.0)),
        )
    opt = draw(st.sampled_from([("SGD", {"momentum": 0.5}), ("Adam", {}), ("RMSprop", {})]))
    return kind, kw, opt, draw(st.integers(0, N))


@needs_torch
@given(settings_())
def test_drawn_settings_match_torch(setting):
    kind, kw, (opt_name, okw), cut = setting
    CASES["_drawn"] = (opt_name, okw, lambda m, o: getattr(m, kind)(o, **kw))
    try:
        expected = run("torch", "_drawn")
        np.testing.assert_allclose(run("ours", "_drawn"), expected, rtol=RTOL, atol=0)
        np.testing.assert_allclose(run("ours", "_drawn", cut=cut), expected, rtol=RTOL, atol=0)
    finally:
        del CASES["_drawn"]


def _plateau(lib, metrics, **kw):
    opt = _groups(lib, "SGD", [1.0, 0.5])
    sched = _sched_module(lib).ReduceLROnPlateau(opt, **kw)
    out = []
    for x in metrics:
        sched.step(x)
        out.append([g["lr"] for g in opt.param_groups] + sched.get_last_lr() + [sched.num_bad_epochs, sched.cooldown_counter])
    return np.array(out, dtype=float), sched


@needs_torch
@given(
    st.lists(st.sampled_from([1.0, 0.99995, 0.9, 0.8, 0.5, 1.2, 0.3]), min_size=1, max_size=N),
    st.sampled_from(["min", "max"]),
    st.floats(0.0, 0.9),
    st.integers(0, 4),
    st.sampled_from([0.0, 1e-4, 0.05]),
    st.sampled_from(["rel", "abs"]),
    st.integers(0, 3),
    st.sampled_from([0.0, 0.02, [0.05, 0.0]]),
    st.sampled_from([1e-8, 0.05]),
)
def test_reduce_on_plateau_matches_torch(metrics, mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps):
    kw = dict(mode=mode, factor=factor, patience=patience, threshold=threshold, threshold_mode=threshold_mode, cooldown=cooldown,
              min_lr=min_lr, eps=eps)  # fmt: skip
    a, sa = _plateau("ours", metrics, **kw)
    b, sb = _plateau("torch", metrics, **kw)
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0)
    assert set(sa.state_dict()) == set(sb.state_dict())


@needs_torch
def test_reduce_on_plateau_state_dict_round_trip_matches_torch():
    metrics = [1.0, 0.9, 0.95, 0.95, 0.8, 0.85, 0.85, 0.85, 0.85, 0.7, 0.9, 0.9, 0.9]
    full, _ = _plateau("ours", metrics, patience=1, cooldown=1, factor=0.5)
    np.testing.assert_allclose(full, _plateau("torch", metrics, patience=1, cooldown=1, factor=0.5)[0], rtol=RTOL)
    _, first = _plateau("ours", metrics[:6], patience=1, cooldown=1, factor=0.5)
    opt = _groups("ours", "SGD", [1.0, 0.5])
    opt.load_state_dict(first.optimizer.state_dict())
    sched = ours.ReduceLROnPlateau(opt, mode="max")  # the loaded state replaces the settings
    sched.load_state_dict(copy.deepcopy(first.state_dict()))
    for x, row in zip(metrics[6:], full[6:]):
        sched.step(tg.Tensor(np.array(x)))  # a 0-d Tensor metric works as float()
        assert [g["lr"] for g in opt.param_groups] == list(row[:2])


# ---- without PyTorch: closed forms -------------------------------------------------------------------
def _ours_lrs(build, n=N, opt_name="SGD", **okw):
    opt = _groups("ours", opt_name, [0.1, 0.05], **okw)
    sched = build(opt)
    out = [[g["lr"] for g in opt.param_groups]]
    for _ in range(n):
        opt.step()
        sched.step()
        out.append([g["lr"] for g in opt.param_groups])
    return np.array(out)


BASE = np.array([0.1, 0.05])
E = np.arange(N + 1)[:, None]


@pytest.mark.parametrize(
    "build, closed",
    [
        (lambda o: ours.StepLR(o, 4, 0.3), lambda e: BASE * 0.3 ** (e // 4)),
        (lambda o: ours.ExponentialLR(o, 0.87), lambda e: BASE * 0.87**e),
        (lambda o: ours.MultiStepLR(o, [3, 7, 7]), lambda e: BASE * 0.1 ** np.vectorize(lambda x: bisect_right([3, 7, 7], x))(e)),
        (lambda o: ours.LambdaLR(o, lam1), lambda e: BASE * 0.9**e),
        (lambda o: ours.LinearLR(o, 0.2, 0.9, 11), lambda e: BASE * (0.2 + 0.7 * np.minimum(e, 11) / 11)),
        (lambda o: ours.CosineAnnealingLR(o, 7, 0.001), lambda e: 0.001 + (BASE - 0.001) * (1 + np.cos(np.pi * e / 7)) / 2),
    ],
)
def test_closed_forms(build, closed):
    np.testing.assert_allclose(_ours_lrs(build), closed(E) * np.ones((1, 2)), rtol=1e-9, atol=1e-15)


def test_one_cycle_closed_form():
    total, max_lr, pct = 25, 1.0, 0.3
    lrs = _ours_lrs(lambda o: ours.OneCycleLR(o, max_lr=max_lr, total_steps=total, pct_start=pct), n=total - 1, momentum=0.9)[:, 0]
    init, low = max_lr / 25, max_lr / 25 / 1e4
    up = pct * total - 1

    def cos(a, b, t):
        return b + (a - b) / 2 * (1 + math.cos(math.pi * t))

    want = [cos(init, max_lr, s / up) if s <= up else cos(max_lr, low, (s - up) / (total - 1 - up)) for s in range(total)]
    np.testing.assert_allclose(lrs, want, rtol=1e-12)
    assert lrs[-1] == pytest.approx(low)


def test_one_cycle_cycles_momentum_and_betas():
    opt = _groups("ours", "SGD", [0.1, 0.05], momentum=0.9)
    sched = ours.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.5, anneal_strategy="linear")
    assert opt.param_groups[0]["momentum"] == 0.95
    for _ in range(4):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["momentum"] == pytest.approx(0.85) and opt.param_groups[0]["lr"] == pytest.approx(1.0)
    adam = _groups("ours", "Adam", [0.1, 0.05], betas=(0.8, 0.99))
    ours.OneCycleLR(adam, max_lr=1.0, total_steps=10, max_momentum=0.9)
    assert adam.param_groups[0]["betas"] == (0.9, 0.99)
    with pytest.raises(ValueError, match=r"Tried to step 11 times"):
        for _ in range(10):
            opt.step()
            sched.step()


def test_reduce_on_plateau_by_hand():
    opt = _groups("ours", "SGD", [1.0, 0.5])
    sched = ours.ReduceLROnPlateau(opt, factor=0.5, patience=1, cooldown=1, min_lr=[0.3, 0.0])
    got = []
    for x in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.6, 0.6]:
        sched.step(x)
        got.append(sched.get_last_lr())
    # bad epochs 1, 2 -> reduce at the 3rd; the cooldown swallows the 4th; 1, 2 -> reduce at the 6th
    # (group 0 stops at min_lr); 0.5 is a new best; 0.6, 0.6 -> reduce at the 9th
    assert got == [[1.0, 0.5]] * 2 + [[0.5, 0.25]] * 3 + [[0.3, 0.125]] * 3 + [[0.3, 0.0625]]
    mx = ours.ReduceLROnPlateau(_groups("ours", "SGD", [1.0]), mode="max", threshold=0.1, threshold_mode="abs", patience=0)
    for x in [1.0, 1.05, 1.2]:
        mx.step(x)
    assert mx.get_last_lr() == [0.1]  # 1.05 is no improvement on 1.0 by more than 0.1; 1.2 is


# ---- the optimizer with a scheduler -------------------------------------------------------------------
def test_optimizer_steps_with_the_scheduled_lr_and_momentum():
    w = tg.Tensor(np.zeros(3), requires_grad=True)
    opt = optim.SGD([w], lr=0.1, momentum=0.9)
    sched = ours.OneCycleLR(opt, max_lr=1.0, total_steps=20)
    assert "initial_lr" in opt.param_groups[0]
    for _ in range(3):
        before = w.data.copy()
        lr, mom = opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]
        buf = opt.state.get(w, {}).get("momentum_buffer")
        w.grad = tg.Tensor(np.ones(3))
        opt.step()
        step_dir = np.ones(3) if buf is None else mom * buf + 1.0
        np.testing.assert_allclose(w.data, before - lr * step_dir, rtol=1e-12)
        sched.step()
    assert set(opt.param_groups[0]) >= {"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"}


def test_optimizer_checkpoint_with_scheduler_entries(tmp_path):
    def make():
        w = tg.Tensor(np.arange(3.0), requires_grad=True)
        opt = optim.Adam([w], lr=0.1)
        return w, opt, ours.OneCycleLR(opt, max_lr=0.5, total_steps=30)

    w, opt, sched = make()
    for _ in range(5):
        w.grad = tg.Tensor(np.ones(3))
        opt.step()
        sched.step()
    tg.save({"opt": opt.state_dict(), "sched": sched.state_dict()}, tmp_path / "ck.npz")
    ck = tg.load(tmp_path / "ck.npz")
    w2, opt2, sched2 = make()
    w2.data[...] = w.data
    opt2.load_state_dict(ck["opt"])
    sched2.load_state_dict(ck["sched"])
    assert opt2.param_groups[0]["betas"] == opt.param_groups[0]["betas"]
    for _ in range(5):
        for ww, o, s in ((w, opt, sched), (w2, opt2, sched2)):
            ww.grad = tg.Tensor(np.ones(3))
            o.step()
            s.step()
    np.testing.assert_array_equal(w2.data, w.data)
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_multistep_closed_form_after_checkpoint_file(tmp_path):
    opt = _groups("ours", "SGD", [1.0])
    sched = ours.MultiStepLR(opt, [2, 2, 5])
    tg.save(sched.state_dict(), tmp_path / "s.npz")
    sched.load_state_dict(tg.load(tmp_path / "s.npz"))
    with pytest.warns(UserWarning, match="epoch parameter"):
        sched.step(3)
    assert sched.get_last_lr() == [pytest.approx(0.01)]


def test_resume_with_last_epoch():
    opt = _groups("ours", "SGD", [0.1])
    with pytest.raises(KeyError, match=r"StepLR: param 'initial_lr' is not specified in param_groups\[0\]"):
        ours.StepLR(opt, 3, last_epoch=4)
    opt.param_groups[0]["initial_lr"] = 0.1
    sched = ours.CosineAnnealingLR(opt, T_max=10, last_epoch=4)
    assert sched.last_epoch == 5
    # As in PyTorch 2.x, the constructor's step keeps the (loaded) lr; the next one is recursive from it.
    assert sched.get_last_lr() == [0.1]
    opt.step()
    sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(0.1 * (1 + math.cos(math.pi * 6 / 10)) / (1 + math.cos(math.pi * 5 / 10)), rel=1e-12)


def test_warnings():
    opt = _groups("ours", "SGD", [0.1])
    sched = ours.StepLR(opt, 2)
    with pytest.warns(UserWarning, match=r"before `optimizer.step\(\)`"):
        sched.step()
    with pytest.warns(UserWarning, match="get_last_lr"):
        sched.get_lr()
    opt2 = _groups("ours", "SGD", [0.1])
    s2 = ours.StepLR(opt2, 2)
    opt2.step()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2.step()


# ---- errors -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "build, exc, pattern",
    [
        (lambda o: ours.StepLR(object(), 2), TypeError, r"StepLR: object is not an Optimizer"),
        (lambda o: ours.StepLR(o, 0), ValueError, r"StepLR: step_size=0 is invalid; give a positive int"),
        (lambda o: ours.CosineAnnealingLR(o, 0), ValueError, r"CosineAnnealingLR: T_max=0 is invalid"),
        (lambda o: ours.MultiStepLR(o, 5), TypeError, r"MultiStepLR: milestones=5 is not a list"),
        (lambda o: ours.LinearLR(o, start_factor=0.0), ValueError, r"LinearLR: start_factor=0.0 is invalid"),
        (lambda o: ours.LinearLR(o, end_factor=1.5), ValueError, r"LinearLR: end_factor=1.5 is invalid"),
        (lambda o: ours.LambdaLR(o, [lam1]), ValueError, r"LambdaLR: expected 2 lr_lambdas"),
        (lambda o: ours.LambdaLR(o, 0.5), TypeError, r"LambdaLR: lr_lambda=0.5 is not callable"),
        (lambda o: ours.ReduceLROnPlateau(o, factor=1.0), ValueError, r"ReduceLROnPlateau: factor=1.0 is invalid"),
        (lambda o: ours.ReduceLROnPlateau(o, mode="low"), ValueError, r"mode 'low' is unknown; use 'min'"),
        (lambda o: ours.ReduceLROnPlateau(o, threshold_mode="x"), ValueError, r"threshold mode 'x' is unknown"),
        (lambda o: ours.ReduceLROnPlateau(o, min_lr=[0.1]), ValueError, r"expected 2 min_lrs"),
        (lambda o: ours.OneCycleLR(o, 1.0), ValueError, r"OneCycleLR: you must define either total_steps OR"),
        (lambda o: ours.OneCycleLR(o, 1.0, total_steps=0), ValueError, r"positive integer total_steps, but got 0"),
        (lambda o: ours.OneCycleLR(o, 1.0, epochs=2, steps_per_epoch=1.5), ValueError, r"positive integer steps_per_epoch"),
        (lambda o: ours.OneCycleLR(o, 1.0, total_steps=5, pct_start=1), ValueError, r"float between 0 and 1 pct_start, but got 1"),
        (lambda o: ours.OneCycleLR(o, 1.0, total_steps=5, anneal_strategy="exp"), ValueError, r"'cos' or 'linear', instead got 'exp'"),
        (lambda o: ours.OneCycleLR(o, [1.0], total_steps=5), ValueError, r"max_lr must have the same length as optimizer.param_groups"),
        (lambda o: ours.SequentialLR(o, [], []), ValueError, r"SequentialLR expects at least one scheduler"),
        (lambda o: ours.SequentialLR(o, [ours.StepLR(o, 2)], [3]), ValueError, r"one more than the number of milestone points"),
        (lambda o: ours.SequentialLR(o, [ours.ReduceLROnPlateau(o)], []), ValueError, r"does not support `ReduceLROnPlateau`"),
        (
            lambda o: ours.SequentialLR(o, [ours.StepLR(_groups("ours", "SGD", [0.1]), 2)], []),
            ValueError,
            r"expects all schedulers to belong to the same optimizer",
        ),
    ],
)
def test_bad_arguments(build, exc, pattern):
    with pytest.raises(exc, match=pattern):
        build(_groups("ours", "SGD", [0.1, 0.05]))


def test_one_cycle_needs_momentum():
    with pytest.raises(ValueError, match=r"OneCycleLR: optimizer must support momentum or beta1.*AdaGrad has neither"):
        ours.OneCycleLR(_groups("ours", "AdaGrad", [0.1]), max_lr=1.0, total_steps=5)


def test_docstring_examples():
    result = doctest.testmod(ours, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10 and result.failed == 0
