"""The training loop: it learns, logs, checkpoints, resumes bit-for-bit, and is seed-deterministic."""
import io
import json
import sys

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn
from tinygrad_cnn.data import DataLoader, TensorDataset
from tinygrad_cnn.optim import SGD, Adam
from tinygrad_cnn.train import (
    Progress,
    ResumeConfigError,
    checkpoints,
    epoch_seed,
    evaluate,
    fit,
    load_checkpoint,
    save_checkpoint,
    train_epoch,
)
from tinygrad_cnn.viz.plots import read_metrics

TIMING = {"seconds", "eval_seconds", "images_per_s"}


def _blobs(n, seed):
    """Three linearly separable classes of 1x4x4 'images'."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    centers = np.random.default_rng(99).standard_normal((3, 16)) * 2
    x = (centers[y] + rng.standard_normal((n, 16)) * 0.5).astype(np.float32).reshape(n, 1, 4, 4)
    return TensorDataset(x, y)


def _model(seed=0, dropout=0.0):
    tg.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 12), nn.ReLU(), nn.Dropout(dropout), nn.Linear(12, 3))


def _loaders():
    return DataLoader(_blobs(240, 1), 16, shuffle=True, seed=5), DataLoader(_blobs(90, 2), 45)


def _weights(m):
    return {k: v.data.copy() for k, v in m.state_dict().items()}


def _strip(recs):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in recs]


def test_fit_learns_logs_and_checkpoints(tmp_path):
    model = _model()
    train, test = _loaders()
    before = evaluate(model, test)["acc"]
    hist = fit(model, Adam(model.parameters(), lr=0.01), train, test, epochs=3, out_dir=tmp_path, seed=0,
               progress=False, log_every=4, config={"model": "tiny", "lr": 0.01}, print_fn=None)
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert hist[-1]["test_acc"] > 0.95 > before
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert [p.name for p in checkpoints(tmp_path)] == ["epoch_001.npz", "epoch_002.npz", "epoch_003.npz"]
    recs = read_metrics(tmp_path / "metrics.jsonl")
    epochs = [r for r in recs if r["type"] == "epoch"]
    steps = [r for r in recs if r["type"] == "step"]
    assert _strip(epochs) == _strip(hist)
    # 15 batches per epoch, a record every 4 and at the epoch's end: 4 per epoch.
    assert len(steps) == 12 and steps[3]["step"] == 15 and steps[3]["progress"] == 1.0
    assert [s["step"] for s in steps[:4]] == [4, 8, 12, 15]
    ck = load_checkpoint(checkpoints(tmp_path)[-1])
    assert ck["epoch"] == 3 and ck["config"] == {"model": "tiny", "lr": 0.01}
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(ck["model"][k], v.data)
    # The epoch's train accuracy is the sample-weighted mean of the logged step accuracies.
    e1 = [s for s in steps if s["epoch"] == 1]
    weights = [4, 4, 4, 3]
    assert abs(sum(s["acc"] * w for s, w in zip(e1, weights)) / 15 - epochs[0]["train_acc"]) < 1e-9


def test_fit_is_deterministic_for_a_seed(tmp_path):
    runs = []
    for d in ("a", "b"):
        model = _model(dropout=0.3)
        train, test = _loaders()
        h = fit(model, SGD(model.parameters(), lr=0.1, momentum=0.9), train, test, epochs=2,
                out_dir=tmp_path / d, seed=7, progress=False, print_fn=None)
        runs.append((_weights(model), _strip(h)))
    assert runs[0][1] == runs[1][1]
    for k in runs[0][0]:
        np.testing.assert_array_equal(runs[0][0][k], runs[1][0][k])
    model = _model(dropout=0.3)
    train, test = _loaders()
    h = fit(model, SGD(model.parameters(), lr=0.1, momentum=0.9), train, test, epochs=2, seed=8, progress=False, print_fn=None)
    assert _strip(h) != runs[0][1]  # another seed, another run (dropout masks differ)


def test_resume_continues_bit_for_bit(tmp_path):
    # Uninterrupted: 3 epochs.
    model = _model(dropout=0.2)
    train, test = _loaders()
    full = fit(model, Adam(model.parameters(), lr=0.01), train, test, epochs=3, out_dir=tmp_path / "full", seed=3,
               progress=False, log_every=5, print_fn=None)
    w_full = _weights(model)
    # Interrupted after 1 epoch, then resumed in a fresh process-like state (other init, fresh optimizer).
    model = _model(dropout=0.2)
    train, test = _loaders()
    fit(model, Adam(model.parameters(), lr=0.01), train, test, epochs=1, out_dir=tmp_path / "part", seed=3,
        progress=False, log_every=5, print_fn=None)
    # A crash mid-epoch 2 leaves step records of epoch 2 behind; resume must drop them.
    with open(tmp_path / "part" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"type": "step", "epoch": 2, "step": 99, "progress": 1.5, "loss": 9.0, "acc": 0.0}) + "\n")
    model2 = _model(seed=123, dropout=0.2)
    train, test = _loaders()
    out = io.StringIO()
    resumed = fit(model2, Adam(model2.parameters(), lr=0.01), train, test, epochs=3, out_dir=tmp_path / "part", seed=3,
                  resume=True, progress=False, log_every=5, print_fn=lambda s: out.write(s + "\n"))
    assert "resumed from" in out.getvalue() and "epoch_001.npz" in out.getvalue()
    assert _strip(resumed) == _strip(full)
    for k, v in _weights(model2).items():
        np.testing.assert_array_equal(v, w_full[k])
    assert _strip(read_metrics(tmp_path / "part" / "metrics.jsonl")) == _strip(read_metrics(tmp_path / "full" / "metrics.jsonl"))
    # Resuming a finished run does nothing; resuming from an explicit file works too.
    assert len(fit(model2, Adam(model2.parameters()), train, test, epochs=3, out_dir=tmp_path / "part", resume=True,
                   progress=False, print_fn=None)) == 3
    m3 = _model(seed=5)
    fit(m3, Adam(m3.parameters(), lr=0.01), train, None, epochs=2, resume=tmp_path / "full" / "epoch_002.npz", seed=3,
        progress=False, print_fn=None)  # no out_dir: nothing written
    assert checkpoints(tmp_path / "full")[-1].name == "epoch_003.npz"


def test_fit_refuses_to_mix_runs_and_keeps_newest(tmp_path):
    model = _model()
    train, test = _loaders()
    opt = SGD(model.parameters(), lr=0.1)
    with pytest.raises(FileNotFoundError, match="no epoch_NNN.npz checkpoint"):
        fit(model, opt, train, test, epochs=1, out_dir=tmp_path, resume=True, progress=False, print_fn=None)
    with pytest.raises(ValueError, match="needs out_dir"):
        fit(model, opt, train, test, epochs=1, resume=True, progress=False, print_fn=None)
    fit(model, opt, train, test, epochs=3, out_dir=tmp_path, keep_checkpoints=1, progress=False, print_fn=None)
    assert [p.name for p in checkpoints(tmp_path)] == ["epoch_003.npz"]
    with pytest.raises(FileExistsError, match="--resume"):
        fit(model, opt, train, test, epochs=1, out_dir=tmp_path, progress=False, print_fn=None)
    fit(model, opt, train, test, epochs=1, out_dir=tmp_path, overwrite=True, progress=False, print_fn=None)
    assert [p.name for p in checkpoints(tmp_path)] == ["epoch_001.npz"]
    assert len([r for r in read_metrics(tmp_path / "metrics.jsonl") if r["type"] == "epoch"]) == 1
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, opt, train, test, epochs=0)
    with pytest.raises(ValueError, match=r"keep_checkpoints must be >= 1 \(or None to keep all\), got 0"):
        fit(model, opt, train, test, epochs=1, out_dir=tmp_path / "k", keep_checkpoints=0, progress=False, print_fn=None)


def test_evaluate_matches_direct_computation_and_restores_mode():
    model = _model()
    _, test = _loaders()
    ev = evaluate(model, test)
    x = np.concatenate([b[0].data for b in test])
    y = np.concatenate([b[1].data for b in test])
    with tg.no_grad():
        logits = model(tg.Tensor(x)).data
    assert ev["n"] == 90 and ev["acc"] == (logits.argmax(1) == y).mean()
    logp = logits - logits.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    assert abs(ev["loss"] + logp[np.arange(90), y].mean()) < 1e-5
    assert model.training
    model.eval()
    evaluate(model, test)
    assert not model.training


def test_nan_loss_stops_with_a_clear_error():
    x = np.full((8, 1, 4, 4), np.nan, np.float32)
    loader = DataLoader(TensorDataset(x, np.zeros(8, np.int64)), 4)
    model = _model()
    with pytest.raises(FloatingPointError, match="loss became nan at batch 0"):
        train_epoch(model, SGD(model.parameters(), lr=0.1), loader, progress=False)


def test_progress_with_and_without_tqdm(monkeypatch):
    pytest.importorskip("tqdm")
    s = io.StringIO()
    p = Progress(4, "epoch 1/1", stream=s)
    for _ in range(4):
        p.update(10, loss=0.5)
    p.close()
    assert "epoch 1/1" in s.getvalue() and "img/s" in s.getvalue() and "loss=0.5000" in s.getvalue()
    monkeypatch.setitem(sys.modules, "tqdm", None)  # as if tqdm were not installed
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    s = io.StringIO()
    p = Progress(20, "epoch 2/3", stream=s)
    for _ in range(20):
        p.update(5, loss=0.25, acc=0.5)
    lines = s.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("epoch 2/3: 100% 20/20") and "loss 0.2500" in lines[-1]
    s = io.StringIO()
    p = Progress(3, "quiet", enabled=False, stream=s)
    p.update(1)
    assert s.getvalue() == "" and p.images == 1


def test_epoch_seed_and_checkpoint_roundtrip(tmp_path):
    assert epoch_seed(0, 1) == epoch_seed(0, 1) != epoch_seed(0, 2) != epoch_seed(1, 2)
    model = _model()
    opt = Adam(model.parameters(), lr=0.01)
    train, _ = _loaders()
    train_epoch(model, opt, train, progress=False)
    save_checkpoint(tmp_path / "c.npz", model, opt, epoch=4, config={"a": [1, 2], "b": None})
    ck = load_checkpoint(tmp_path / "c.npz")
    m2 = _model(seed=9)
    o2 = Adam(m2.parameters(), lr=0.01)
    m2.load_state_dict(ck["model"])
    o2.load_state_dict(ck["optimizer"])
    # Same next step from the restored pair as from the original.
    for m, o in ((model, opt), (m2, o2)):
        tg.manual_seed(0)
        train.set_epoch(0)
        train_epoch(m, o, train, progress=False)
    for k, v in _weights(model).items():
        np.testing.assert_array_equal(v, _weights(m2)[k])
    assert ck["epoch"] == 4 and ck["config"] == {"a": [1, 2], "b": None}
    tg.save({"weights": np.zeros(3)}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        load_checkpoint(tmp_path / "other.npz")


def test_resume_with_another_config_refuses_or_records_the_override(tmp_path):
    train, test = _loaders()
    quiet = {"progress": False, "print_fn": None, "out_dir": tmp_path, "seed": 0}
    model = _model()
    fit(model, SGD(model.parameters(), lr=0.1), train, test, epochs=1, config={"lr": 0.1, "epochs": 1}, **quiet)
    m2 = _model()
    with pytest.raises(ResumeConfigError, match=r"lr: 0.1 in the checkpoint, 0.05 now\n.*override=\['lr'\]"):
        fit(m2, SGD(m2.parameters(), lr=0.05), train, test, epochs=2, resume=True, config={"lr": 0.05, "epochs": 2}, **quiet)
    assert len(checkpoints(tmp_path)) == 1
    opt = SGD(m2.parameters(), lr=0.05)
    fit(m2, opt, train, test, epochs=2, resume=True, config={"lr": 0.05, "epochs": 2}, override=["lr"], **quiet)
    assert opt.param_groups[0]["lr"] == 0.05  # not the checkpoint's 0.1: the config tells the truth
    ck = load_checkpoint(tmp_path / "epoch_002.npz")
    assert ck["config"] == {"lr": 0.05, "epochs": 2, "overrides": [{"from_epoch": 2, "changed": {"lr": [0.1, 0.05]}}]}
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.05
    # Without a config the checkpoint's carries on, and so does the optimizer state's lr.
    m3 = _model()
    opt = SGD(m3.parameters(), lr=1.0)
    fit(m3, opt, train, test, epochs=3, resume=True, **quiet)
    assert opt.param_groups[0]["lr"] == 0.05 and load_checkpoint(tmp_path / "epoch_003.npz")["config"] == ck["config"]


def test_fit_shows_a_progress_bar_for_the_test_pass_too(capsys):
    model = _model()
    train, test = _loaders()  # 15 training batches, 2 test batches per epoch
    fit(model, SGD(model.parameters(), lr=0.1), train, test, epochs=2, seed=0, progress=True, print_fn=None)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "test 1/2" in err and "test 2/2" in err
    fit(model, SGD(model.parameters(), lr=0.1), train, test, epochs=1, seed=0, progress=False, print_fn=None)
    assert capsys.readouterr().err == ""
