"""Learning-rate schedules in training: the --lr-schedule specs build the schedulers PyTorch
would (same lr sequences), fit() steps them per epoch (OneCycleLR per batch), checkpoints carry
their state, and a resumed run follows the schedule bit for bit."""
import json

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn, optim
from tinygrad_cnn.cli import main
from tinygrad_cnn.data import DataLoader, TensorDataset, write_idx
from tinygrad_cnn.train import fit, load_checkpoint, make_scheduler, parse_lr_schedule

EPOCHS, STEPS = 6, 5


def test_specs_parse_and_bad_ones_name_the_forms():
    assert parse_lr_schedule("constant") == ("constant", ())
    assert parse_lr_schedule("step:3") == ("step", (3, 0.1))
    assert parse_lr_schedule("step:3:0.5") == ("step", (3, 0.5))
    assert parse_lr_schedule("multistep:2,5:0.3") == ("multistep", ((2, 5), 0.3))
    assert parse_lr_schedule("exp:0.9") == ("exp", (0.9,))
    assert parse_lr_schedule("cosine") == ("cosine", (0.0,)) and parse_lr_schedule("cosine:1e-4") == ("cosine", (1e-4,))
    assert parse_lr_schedule("onecycle") == ("onecycle", (0.3,)) and parse_lr_schedule("onecycle:0.25") == ("onecycle", (0.25,))
    for bad, why in [("linear", "unknown form"), ("step", "unknown form"), ("step:0", "step size '0' is out of range"),
                     ("step:x", "is not an integer"), ("multistep:5,2", "milestones must increase"), ("exp:1.5", "out of range"),
                     ("onecycle:1", "out of range"), ("constant:1", "unknown form")]:
        with pytest.raises(ValueError, match=why + r".*use one of constant, step:N\[:GAMMA\]"):
            parse_lr_schedule(bad)


def _torch_scheduler(torch, spec, opt):
    S = torch.optim.lr_scheduler
    kind, a = parse_lr_schedule(spec)
    return {
        "step": lambda: S.StepLR(opt, a[0], a[1]),
        "multistep": lambda: S.MultiStepLR(opt, list(a[0]), a[1]),
        "exp": lambda: S.ExponentialLR(opt, a[0]),
        "cosine": lambda: S.CosineAnnealingLR(opt, EPOCHS, a[0]),
        "onecycle": lambda: S.OneCycleLR(opt, max_lr=0.1, epochs=EPOCHS, steps_per_epoch=STEPS, pct_start=a[0]),
    }[kind]()


@pytest.mark.parametrize("spec", ["step:2:0.5", "multistep:1,4", "exp:0.8", "cosine:0.001", "onecycle", "onecycle:0.4"])
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_spec_lr_sequences_match_torch(spec, opt_name):
    torch = pytest.importorskip("torch")
    kw = {"momentum": 0.9} if opt_name == "SGD" else {}
    ours_opt = getattr(optim, opt_name)([nn.Parameter(np.zeros(2))], lr=0.1, **kw)
    theirs_opt = getattr(torch.optim, opt_name)([torch.zeros(2, requires_grad=True)], lr=0.1, **kw)
    ours, interval = make_scheduler(spec, ours_opt, EPOCHS, STEPS)
    theirs = _torch_scheduler(torch, spec, theirs_opt)
    assert interval == ("step" if spec.startswith("onecycle") else "epoch")
    n = EPOCHS * STEPS if interval == "step" else EPOCHS
    got, want = [], []
    for _ in range(n - 1):
        ours_opt.step()
        theirs_opt.step()
        ours.step()
        theirs.step()
        for groups, out in ((ours_opt.param_groups, got), (theirs_opt.param_groups, want)):
            g = groups[0]
            out.append((g["lr"], g.get("momentum", g.get("betas", [0])[0])))
    np.testing.assert_allclose(np.array(got), np.array(want), rtol=1e-12, atol=1e-15)


def test_constant_and_onecycle_without_momentum():
    p = nn.Parameter(np.zeros(2))
    assert make_scheduler("constant", optim.SGD([p], lr=0.1), 3, 4) == (None, "epoch")
    sched, _ = make_scheduler("onecycle", optim.SGD([p], lr=0.1), 3, 4)  # plain SGD: no momentum to cycle
    assert sched.cycle_momentum is False


# ---- fit ---------------------------------------------------------------------------------------
def _data(n, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.random.default_rng(99).standard_normal((3, 16)) * 2
    return TensorDataset((centers[y] + rng.standard_normal((n, 16)) * 0.5).astype(np.float32).reshape(n, 1, 4, 4), y)


def _run(tmp, spec, epochs, resume=False, seed=0):
    tg.manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Linear(12, 3))
    opt = optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    train = DataLoader(_data(80, 1), 16, shuffle=True, seed=5)
    sched, interval = make_scheduler(spec, opt, 4, len(train))
    hist = fit(model, opt, train, DataLoader(_data(30, 2), 30), epochs=epochs, out_dir=tmp, resume=resume, seed=3, progress=False,
               print_fn=None, scheduler=sched, scheduler_interval=interval, config={"lr_schedule": spec})
    return model, opt, hist


@pytest.mark.parametrize("spec, lrs", [("step:2:0.5", [0.2, 0.2, 0.1, 0.1]), ("multistep:1,3:0.1", [0.2, 0.02, 0.02, 0.002])])
def test_fit_steps_per_epoch_and_resumes_bit_for_bit(tmp_path, spec, lrs):
    full_model, _, full = _run(tmp_path / "full", spec, 4)
    np.testing.assert_allclose([r["lr"] for r in full], lrs, rtol=1e-12)
    _run(tmp_path / "part", spec, 2)
    ck = load_checkpoint(tmp_path / "part" / "epoch_002.npz")
    assert ck["scheduler"]["last_epoch"] == 2
    model, opt, resumed = _run(tmp_path / "part", spec, 4, resume=True, seed=42)  # other init: the checkpoint wins
    assert [r["lr"] for r in resumed] == [r["lr"] for r in full]
    for (k, a), b in zip(model.state_dict().items(), full_model.state_dict().values()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=k)


def test_onecycle_steps_per_batch_and_resumes_bit_for_bit(tmp_path):
    full_model, full_opt, full = _run(tmp_path / "full", "onecycle", 4)
    assert full[0]["lr"] == pytest.approx(0.2 / 25, rel=1e-12)  # starts at max_lr / div_factor
    assert full_opt.param_groups[0]["initial_lr"] == pytest.approx(0.2 / 25) and full_opt.param_groups[0]["max_lr"] == 0.2
    _run(tmp_path / "part", "onecycle", 1)
    assert load_checkpoint(tmp_path / "part" / "epoch_001.npz")["scheduler"]["last_epoch"] == 5
    model, opt, resumed = _run(tmp_path / "part", "onecycle", 4, resume=True, seed=7)
    assert [r["lr"] for r in resumed] == [r["lr"] for r in full] and opt.param_groups[0]["lr"] == full_opt.param_groups[0]["lr"]
    assert opt.param_groups[0]["momentum"] == full_opt.param_groups[0]["momentum"]
    for a, b in zip(model.parameters(), full_model.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


# ---- the command line --------------------------------------------------------------------------
def _fake_fashion(folder, n_train=100, n_test=40):
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = (rng.random((n, 28, 28)) * 50).astype(np.uint8)
        x[np.arange(n), 2 * y + 4, 3:25] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", y)
    return folder


def test_cli_lr_schedule_trains_checkpoints_and_resumes(tmp_path, capsys):
    data = _fake_fashion(tmp_path / "data")
    out = tmp_path / "run"
    args = ["train", "--epochs", "2", "--batch-size", "50", "--optimizer", "momentum", "--lr", "0.04", "--lr-schedule", "step:1:0.5",
            "--out", str(out), "--data-root", str(data), "--no-progress"]
    assert main(args) == 0
    assert "(schedule step:1:0.5)" in capsys.readouterr().out
    ck = load_checkpoint(out / "epoch_002.npz")
    assert ck["config"]["lr_schedule"] == "step:1:0.5" and ck["scheduler"]["last_epoch"] == 2
    args[args.index("--epochs") + 1] = "3"
    assert main(args + ["--resume"]) == 0
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in recs if r["type"] == "epoch"] == pytest.approx([0.04, 0.02, 0.01], rel=1e-12)
    # Another schedule on resume is refused unless overridden; then it starts afresh at the resume point.
    args[args.index("--epochs") + 1] = "4"
    args[args.index("--lr-schedule") + 1] = "exp:0.1"
    assert main(args + ["--resume"]) == 1
    assert "lr_schedule" in capsys.readouterr().err
    assert main(args + ["--resume", "--override", "lr_schedule"]) == 0
    assert "schedule starts afresh" in capsys.readouterr().out


def test_cli_rejects_a_bad_spec(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--lr-schedule", "cosine:fast", "--out", str(tmp_path)])
    assert e.value.code == 2
    assert "eta_min 'fast' is not a number" in capsys.readouterr().err
