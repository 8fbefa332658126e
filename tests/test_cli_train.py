"""`tinygrad-cnn train`, `eval` and `demo` end to end on small IDX files written by the test."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn.cli import main
from tinygrad_cnn.data import ENV_VAR, FashionMNIST, write_idx
from tinygrad_cnn.train import checkpoints, load_checkpoint

ROOT = Path(__file__).resolve().parent.parent


def _fake_fashion(folder: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """A learnable stand-in: class k has a bright horizontal bar at row 2k+4."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = (rng.random((n, 28, 28)) * 50).astype(np.uint8)
        x[np.arange(n), 2 * y + 4, 3:25] = 255
        write_idx(folder / f"{split}-images-idx3-ubyte.gz", x)
        write_idx(folder / f"{split}-labels-idx1-ubyte.gz", y)
    return folder


@pytest.fixture
def data(tmp_path):
    return _fake_fashion(tmp_path / "data")


def test_train_then_resume_then_eval(tmp_path, data, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "simpleconvnet", "--dataset", "fashion-mnist", "--epochs", "1", "--batch-size", "50",
            "--optimizer", "adam", "--lr", "0.002", "--seed", "3", "--out", str(out), "--data-root", str(data), "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert f"training simpleconvnet (433,890 parameters) on fashion-mnist: 300 train / 100 test images from {data}," in text
    assert "epoch 1/1" in text and "final test accuracy" in text
    assert [p.name for p in checkpoints(out)] == ["epoch_001.npz"]
    ck = load_checkpoint(out / "epoch_001.npz")
    assert ck["config"]["model"] == "simpleconvnet" and ck["config"]["lr"] == 0.002 and ck["config"]["seed"] == 3
    # Running again into the same folder without --resume refuses, naming the flag.
    assert main(args) == 1
    assert "--resume" in capsys.readouterr().err
    args[args.index("--epochs") + 1] = "3"
    assert main(args + ["--resume"]) == 0
    text = capsys.readouterr().out
    assert "resumed from" in text and "epoch 3/3" in text
    recs = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    epochs = [r for r in recs if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3]
    assert epochs[-1]["test_acc"] > 0.6  # the bars are easy: it learns even in 3 tiny epochs
    assert (out / "curves.png").exists()
    assert main(["eval", str(out / "epoch_003.npz"), "--data-root", str(data), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert f"accuracy {epochs[-1]['test_acc']:.4f}" in text and "simpleconvnet after epoch 3" in text


@pytest.mark.parametrize("model, extra, params", [("lenet", ["--activation", "relu", "--pooling", "max"], "61,706")])
def test_train_lenet_and_optimizers(tmp_path, data, capsys, model, extra, params):
    for opt in ("sgd", "momentum", "adagrad", "rmsprop"):
        out = tmp_path / opt
        rc = main(["train", "--model", model, *extra, "--epochs", "1", "--optimizer", opt, "--out", str(out),
                   "--data-root", str(data), "--limit-train", "100", "--limit-test", "50", "--no-progress"])
        assert rc == 0
        text = capsys.readouterr().out
        assert f"training {model} ({params} parameters)" in text and "100 train / 50 test" in text
        ck = load_checkpoint(out / "epoch_001.npz")
        assert ck["config"]["optimizer"] == opt and ck["config"]["model_kwargs"] == {"activation": "relu", "pooling": "max"}
        # LeNet sees 32x32 inputs: the padding transform was applied.
        assert ck["model"]["c1.weight"].shape == (6, 1, 5, 5)


def test_missing_data_says_where_it_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(tmp_path / "nowhere"),))
    monkeypatch.setattr(FashionMNIST, "mirrors", ("file://" + str(tmp_path / "no-mirror") + "/",))
    assert main(["demo", "--out", str(tmp_path / "d"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "Fashion-MNIST (train): could not find" in err
    assert str(tmp_path / "nowhere") in err and "apt-get install dataset-fashion-mnist" in err and ENV_VAR in err
    assert main(["train", "--out", str(tmp_path / "t"), "--no-progress"]) == 1
    assert "Looked in, in order" in capsys.readouterr().err


def test_data_root_without_the_data_is_an_error_not_the_system_copy(tmp_path, data, monkeypatch, capsys):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(data),))  # a system copy that must not be used
    monkeypatch.setattr(FashionMNIST, "mirrors", ("file://" + str(tmp_path / "no-mirror") + "/",))
    empty = tmp_path / "typo"
    empty.mkdir()
    rc = main(["train", "--data-root", str(empty), "--epochs", "1", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 1 and not checkpoints(tmp_path / "run")
    assert f"{empty} (missing train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz])" in err
    assert "--data-root) is the only place searched" in err and str(data) not in err


def test_eval_rejects_foreign_checkpoint(tmp_path, capsys):
    import tinygrad_cnn as tg

    tg.save({"model": {}, "epoch": 1}, tmp_path / "x.npz")
    assert main(["eval", str(tmp_path / "x.npz")]) == 1
    assert "not written by `tinygrad-cnn train`" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "missing.npz")]) == 1


@pytest.mark.slow
def test_demo_writes_every_picture(tmp_path, data, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.setenv(ENV_VAR, str(data))  # the demo finds the data through the environment variable
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "tinygrad_cnn", "demo", "--out", str(out), "--no-progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "test accuracy after 1 epoch(s)" in proc.stdout
    assert re.search(r"^time: data \d+\.\d s, training \d+\.\d s, pictures \d+\.\d s$", proc.stdout, re.M), proc.stdout
    for name in ("filters.png", "curves.png", "feature_maps_conv1.png", "feature_maps_pool1.png", "scores.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    graph = out / "model_graph.svg" if (out / "model_graph.svg").exists() else out / "model_graph.dot"
    text = graph.read_text()
    assert "conv1" in text and "affine2" in text
    assert checkpoints(out / "run")[-1].name == "epoch_001.npz"


def test_demo_graph_falls_back_to_dot_source_without_graphviz(tmp_path, monkeypatch):
    import tinygrad_cnn as tg
    import tinygrad_cnn.viz.graph as vg
    from tinygrad_cnn.demo import _draw_graph
    from tinygrad_cnn.models import SimpleConvNet

    def missing():
        raise vg.GraphvizNotFoundError("Graphviz's dot program is not installed.")

    monkeypatch.setattr(vg, "_dot_program", missing)
    said = []
    path = _draw_graph(SimpleConvNet(seed=0), tg.randn(1, 1, 28, 28, seed=0), tmp_path, said.append)
    assert path == tmp_path / "model_graph.dot" and "conv1.weight" in path.read_text()
    assert "not installed" in said[0] and "DOT source" in said[0]


def test_inputs_prepared_per_model():
    from tinygrad_cnn.train import input_transform, make_optimizer, model_options

    x = np.full((2, 1, 28, 28), 255, np.uint8)
    assert input_transform("simpleconvnet")(x).shape == (2, 1, 28, 28)
    lenet = input_transform("lenet")(x)
    assert lenet.shape == (2, 1, 32, 32) and lenet[0, 0, 0, 0] == 0 and lenet[0, 0, 2, 2] == 1
    alex = input_transform("alexnet", normalize=True, mean=0.5, std=0.5)(x)
    assert alex.shape == (2, 1, 227, 227) and np.allclose(alex, 1.0)
    assert model_options("alexnet") == {"num_classes": 10, "in_channels": 1}
    assert model_options("alexnet", init="kaiming") == {"num_classes": 10, "in_channels": 1, "init": "kaiming"}
    assert model_options("lenet", activation="tanh") == {"activation": "tanh"}
    for bad in (lambda: input_transform("vgg"), lambda: model_options("vgg"), lambda: make_optimizer("lbfgs", [])):
        with pytest.raises(ValueError, match="choose one of"):
            bad()


@pytest.mark.parametrize("option, value", [
    ("--epochs", "0"), ("--epochs", "2.5"), ("--batch-size", "-3"), ("--eval-batch-size", "0"), ("--limit-train", "0"),
    ("--limit-test", "-1"), ("--log-every", "0"), ("--keep-checkpoints", "-1"), ("--keep-checkpoints", "0"),
    ("--lr", "0"), ("--lr", "-0.1"), ("--lr", "nan"), ("--lr", "inf"), ("--momentum", "1.5"), ("--seed", "-1"),
])
def test_bad_numbers_are_usage_errors(tmp_path, monkeypatch, capsys, option, value):
    monkeypatch.setattr(FashionMNIST, "mirrors", ("file://" + str(tmp_path / "no-mirror") + "/",))
    with pytest.raises(SystemExit) as e:
        main(["train", "--epochs", "1", option, value, "--data-root", str(tmp_path), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "usage: tinygrad-cnn train" in err
    assert f"argument {option}: expected" in err and repr(value) in err


def test_ctrl_c_names_the_last_checkpoint_and_exits_130(tmp_path, data):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "tinygrad_cnn", "train", "--epochs", "1000", "--batch-size", "50", "--limit-train", "100",
           "--limit-test", "50", "--data-root", str(data), "--out", str(out), "--no-progress"]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    # A job started in the background by a non-interactive shell inherits SIGINT ignored; the
    # child gets the default disposition back so Python installs its Ctrl-C handler.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while not checkpoints(out) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert checkpoints(out), "no checkpoint within 120 s"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    last = checkpoints(out)[-1]
    assert f"interrupted; the last checkpoint is {last} (continue with --resume)." in err
    load_checkpoint(last)  # whole: an interrupted save leaves the previous file
    assert not list(out.glob("*.part"))


def test_ctrl_c_lost_in_a_finalizer_is_delivered_again():
    from tinygrad_cnn.cli import _interrupts_delivered

    class Unraisable:
        exc_type, exc_value, exc_traceback, err_msg, object = KeyboardInterrupt, KeyboardInterrupt(), None, None, None

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # also where the runner ignores SIGINT
    try:
        with pytest.raises(KeyboardInterrupt), _interrupts_delivered():
            sys.unraisablehook(Unraisable())  # what Python does with a KeyboardInterrupt raised in a finalizer
            for _ in range(1000):  # the re-raised signal lands at the next bytecode boundary
                pass
    finally:
        signal.signal(signal.SIGINT, previous)


def test_resume_with_other_settings_refuses_or_follows_override(tmp_path, data, capsys):
    out = tmp_path / "run"
    base = ["train", "--batch-size", "50", "--limit-train", "100", "--limit-test", "50", "--data-root", str(data),
            "--out", str(out), "--no-progress"]
    assert main([*base, "--epochs", "1", "--lr", "0.002", "--seed", "3"]) == 0
    capsys.readouterr()
    # Other lr, batch size and seed: refused, each difference named, nothing trained.
    resume = [*base, "--epochs", "2", "--resume", "--lr", "0.005", "--seed", "4"]
    resume[resume.index("--batch-size") + 1] = "25"
    assert main(resume) == 1
    err = capsys.readouterr().err
    for part in ("lr: 0.002 in the checkpoint, 0.005 now", "batch_size: 50 in the checkpoint, 25 now",
                 "seed: 3 in the checkpoint, 4 now", "--override batch_size,lr,seed"):
        assert part in err, (part, err)
    assert [p.name for p in checkpoints(out)] == ["epoch_001.npz"]
    assert main([*base, "--epochs", "2", "--resume", "--lr", "0.002", "--seed", "3", "--model", "lenet"]) == 1
    assert "model: 'simpleconvnet' in the checkpoint, 'lenet' now" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main([*resume, "--override", "model"])
    assert e.value.code == 2
    assert main([*base, "--epochs", "2", "--lr", "0.005", "--override", "lr"]) == 2  # --override needs --resume
    capsys.readouterr()
    # With --override the new values train and are what the checkpoint records.
    assert main([*resume, "--override", "lr,batch-size,seed"]) == 0
    assert "lr 0.002 -> 0.005" in capsys.readouterr().out
    ck = load_checkpoint(out / "epoch_002.npz")
    assert ck["config"]["lr"] == 0.005 and ck["config"]["batch_size"] == 25 and ck["config"]["seed"] == 4
    assert ck["optimizer"]["param_groups"][0]["lr"] == 0.005
    assert ck["config"]["overrides"] == [
        {"from_epoch": 2, "changed": {"batch_size": [50, 25], "lr": [0.002, 0.005], "seed": [3, 4]}}
    ]
    # A new optimizer starts afresh; the earlier override stays on record.
    sgd = [*resume, "--epochs", "3", "--optimizer", "sgd", "--override", "optimizer"]
    assert main(sgd) == 0
    ck = load_checkpoint(out / "epoch_003.npz")
    assert ck["config"]["optimizer"] == "sgd" and ck["optimizer"]["param_groups"][0]["lr"] == 0.005
    assert [o["from_epoch"] for o in ck["config"]["overrides"]] == [2, 3]
