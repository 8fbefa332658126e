"""save/load: round trips, atomic writes, and clear errors for truncated, foreign and mismatched files."""

import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import tinygrad_cnn as tg
from tinygrad_cnn import nn, optim


def small_model():
    return nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.BatchNorm1d(4), nn.Linear(4, 2, seed=1))


def test_roundtrip_keeps_structure_types_and_dtypes(tmp_path):
    obj = {
        "model": {"w": tg.Tensor(np.arange(6, dtype=np.float32).reshape(2, 3)), "n": np.array(7, dtype=np.int64)},
        "optim": {
            "state": {0: {"step": 3, "buf": np.ones(2, dtype=np.float64)}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}],
        },
        "flags": np.array([True, False]),
        "meta": {"name": "run-1", "epoch": 4, "best": float("inf"), "note": None, "ok": True},
        "empty": {},
        "half": np.ones((2, 0), dtype=np.float16),
    }
    p = tmp_path / "ck.npz"
    tg.save(obj, p)
    back = tg.load(p)
    assert list(back) == list(obj)
    np.testing.assert_array_equal(back["model"]["w"], obj["model"]["w"].data)
    # a saved Tensor comes back a Tensor (as with torch.load), a saved array an array
    assert isinstance(back["model"]["w"], tg.Tensor) and not back["model"]["w"].requires_grad
    assert type(back["model"]["n"]) is np.ndarray and type(back["half"]) is np.ndarray
    assert back["model"]["w"].dtype == np.float32 and back["model"]["n"].dtype == np.int64 and back["model"]["n"].shape == ()
    assert list(back["optim"]["state"]) == [0]  # int keys stay ints
    assert back["optim"]["state"][0]["step"] == 3 and type(back["optim"]["state"][0]["step"]) is int
    assert back["optim"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["optim"]["param_groups"][0]["params"] == [0]
    assert back["flags"].dtype == bool and back["meta"] == obj["meta"] and back["empty"] == {}
    assert back["half"].shape == (2, 0) and back["half"].dtype == np.float16
    # Plain numpy can read the arrays under their slash-joined paths.
    with np.load(p, allow_pickle=False) as z:
        assert "model/w" in z.files and "optim/state/0/buf" in z.files


def test_model_and_optimizer_checkpoint_restores_training_state(tmp_path):
    model = small_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = tg.randn(6, 3, seed=0)
    for _ in range(2):
        opt.zero_grad()
        model(x).sum().backward()
        opt.step()
    tg.save({"model": model.state_dict(), "optim": opt.state_dict()}, tmp_path / "c.npz")
    fresh = small_model()
    fresh_opt = optim.SGD(fresh.parameters(), lr=0.5)
    ck = tg.load(tmp_path / "c.npz")
    fresh.load_state_dict(ck["model"])
    fresh_opt.load_state_dict(ck["optim"])
    assert fresh_opt.param_groups[0]["lr"] == 0.1 and fresh_opt.param_groups[0]["momentum"] == 0.9
    for (k, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=k)
    np.testing.assert_array_equal(fresh_opt.state[fresh[0].weight]["momentum_buffer"], opt.state[model[0].weight]["momentum_buffer"])


def test_keys_that_collide_after_joining_are_kept_apart(tmp_path):
    obj = {"a/b": np.ones(2), "a": {"b": np.zeros(3)}, "__tinygrad_cnn__": np.ones(1)}
    tg.save(obj, tmp_path / "c.npz")
    back = tg.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(back["a/b"], np.ones(2))
    np.testing.assert_array_equal(back["a"]["b"], np.zeros(3))
    np.testing.assert_array_equal(back["__tinygrad_cnn__"], np.ones(1))


def test_unsavable_objects_are_named_and_write_nothing(tmp_path):
    p = tmp_path / "c.npz"
    with pytest.raises(TypeError, match=r"'model/x' is an array of dtype object"):
        tg.save({"model": {"x": np.array([{}], dtype=object)}}, p)
    with pytest.raises(TypeError, match="Save its .state_dict"):
        tg.save(small_model(), p)
    with pytest.raises(TypeError, match="dict keys must be str or int"):
        tg.save({(1, 2): 3}, p)
    assert os.listdir(tmp_path) == []


def test_failed_write_leaves_previous_file_intact(tmp_path, monkeypatch):
    p = tmp_path / "c.npz"
    tg.save({"w": np.ones(3)}, p)
    before = p.read_bytes()

    def crash(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        tg.save({"w": np.zeros(3)}, p)
    assert p.read_bytes() == before
    assert os.listdir(tmp_path) == ["c.npz"]  # the temporary file was removed
    monkeypatch.undo()
    np.testing.assert_array_equal(tg.load(p)["w"], np.ones(3))


def test_save_writes_through_a_temp_file_in_the_same_directory(tmp_path, monkeypatch):
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append((a, b)), real(a, b)))
    tg.save({"w": np.ones(2)}, tmp_path / "c.npz")
    ((src, dst),) = calls
    assert os.path.dirname(src) == str(tmp_path) and str(dst) == str(tmp_path / "c.npz") and str(src) != str(dst)


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.9, 0.99, -1])
def test_truncated_file_is_reported(tmp_path, keep):
    p = tmp_path / "c.npz"
    tg.save({"model": small_model().state_dict()}, p)
    data = p.read_bytes()
    p.write_bytes(data[: int(len(data) * keep)] if keep > 0 else data[:-1])
    with pytest.raises(ValueError, match=r"load: '.*c\.npz' .*(truncated|corrupted)"):
        tg.load(p)


def test_corrupted_entry_is_reported(tmp_path):
    p = tmp_path / "c.npz"
    tg.save({"w": np.arange(1000, dtype=np.float64)}, p)
    data = bytearray(p.read_bytes())
    i = data.index(np.arange(1000, dtype=np.float64)[500:501].tobytes())
    data[i] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"entry 'w' could not be read \(truncated or corrupted\)"):
        tg.load(p)


def test_foreign_files_are_reported(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(2))
    with pytest.raises(ValueError, match=r"plain\.npz' is a \.npz archive but not a tinygrad_cnn checkpoint .*\['w'\]"):
        tg.load(plain)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=r"notes\.txt' is not a readable \.npz archive") as e:
        tg.load(text)
    assert "allow_pickle=" not in str(e.value)  # never advise unpickling a weight file
    npy = tmp_path / "a.npy"
    np.save(npy, np.ones(3))
    with pytest.raises(ValueError, match=r"single \.npy array"):
        tg.load(npy)
    with pytest.raises(FileNotFoundError, match="no such file"):
        tg.load(tmp_path / "missing.npz")


class _Payload:
    def __reduce__(self):
        return (open, (os.environ["TG_PICKLE_MARKER"], "w"))


def _rewrite(src, dst, replace):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, replace.get(item.filename, zin.read(item.filename)))


def _npy(a, allow_pickle=False):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_pickled_payload_is_never_executed(tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("TG_PICKLE_MARKER", str(marker))
    good = tmp_path / "good.npz"
    tg.save({"w": np.ones(1)}, good)
    evil = tmp_path / "evil.npz"
    _rewrite(good, evil, {"w.npy": _npy(np.array([_Payload()], dtype=object), allow_pickle=True)})
    with pytest.raises(ValueError, match=r"evil\.npz' entry 'w' could not be read"):
        tg.load(evil)
    pkl = tmp_path / "evil.pkl"
    pkl.write_bytes(pickle.dumps(_Payload()))
    with pytest.raises(ValueError, match="not a readable .npz archive"):
        tg.load(pkl)
    assert not marker.exists()


def test_mismatched_files_are_reported(tmp_path):
    good = tmp_path / "good.npz"
    tg.save({"w": np.ones((2, 3), dtype=np.float32), "b": np.zeros(2)}, good)
    swapped = tmp_path / "swapped.npz"
    _rewrite(good, swapped, {"w.npy": _npy(np.ones((3, 2), dtype=np.float32))})
    with pytest.raises(
        ValueError, match=r"swapped\.npz' entry 'w' has shape \(3, 2\) and dtype float32, but the manifest records \(2, 3\) float32"
    ):
        tg.load(swapped)
    with zipfile.ZipFile(good) as z:
        manifest = json.loads(str(np.load(io.BytesIO(z.read("__tinygrad_cnn__.npy")))))
    manifest["version"] = 99
    newer = tmp_path / "newer.npz"
    _rewrite(good, newer, {"__tinygrad_cnn__.npy": _npy(np.array(json.dumps(manifest)))})
    with pytest.raises(ValueError, match=r"newer\.npz' is checkpoint format version 99"):
        tg.load(newer)
    dropped = tmp_path / "dropped.npz"
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(dropped, "w") as zout:
        for item in zin.infolist():
            if item.filename != "b.npy":
                zout.writestr(item.filename, zin.read(item.filename))
    with pytest.raises(ValueError, match=r"dropped\.npz' does not match its manifest: missing entries \['b'\]"):
        tg.load(dropped)
    # A checkpoint of another architecture: load works, load_state_dict names every difference.
    tg.save({"model": nn.Linear(3, 5).state_dict()}, tmp_path / "other.npz")
    with pytest.raises(ValueError, match=r"0.weight: checkpoint has shape"):
        small_model().load_state_dict({"0." + k: v for k, v in tg.load(tmp_path / "other.npz")["model"].items()})


def _same_tree(a, b):
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(_same_tree(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, tg.Tensor)):
        return type(b) is type(a) and a.dtype == b.dtype and np.array_equal(np.asarray(a), np.asarray(b))
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("compressed", [False, True])
def test_every_byte_flip_raises_checkpoint_error_or_changes_nothing(tmp_path, compressed):
    # A flip in zip bookkeeping that no reader uses (timestamps, local copies of the central
    # directory's fields) leaves the content intact; every other flip must be reported.
    p = tmp_path / "flipped.npz"
    tg.save({"model": nn.Linear(3, 2, seed=0).state_dict(), "epoch": 1, "config": '{"lr": 0.1}'}, p, compressed=compressed)
    good, orig = p.read_bytes(), tg.load(p)
    rng = np.random.default_rng(0)
    raised = 0
    for i in range(len(good)):
        data = bytearray(good)
        data[i] ^= int(rng.integers(1, 256))
        p.write_bytes(bytes(data))
        try:
            back = tg.load(p)
        except tg.CheckpointError as e:
            assert str(p) in str(e), (i, e)
            raised += 1
            continue
        assert _same_tree(back, orig), f"a flip at byte {i} of {len(good)} changed the loaded content silently"
    assert raised > 0.6 * len(good)  # most bytes are entry data or headers that are checked


def test_save_after_a_killed_save_removes_its_orphaned_part_file(tmp_path):
    import signal
    import subprocess
    import sys
    from pathlib import Path

    from tinygrad_cnn.atomic import atomic_open

    killed = (
        "import os, signal, sys\n"
        "from tinygrad_cnn.atomic import atomic_open\n"
        "with atomic_open(sys.argv[1]) as f:\n"
        "    f.write(b'half a checkpoint'); f.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.run([sys.executable, "-c", killed, str(tmp_path / "epoch_003.npz")], cwd=root, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    (orphan,) = tmp_path.glob(".epoch_003.npz.*.part")
    with atomic_open(tmp_path / "other.bin") as live:  # a writer still at work keeps its file
        live.write(b"in progress")
        tg.save({"w": np.ones(2)}, tmp_path / "epoch_004.npz")
        assert not orphan.exists()
        assert len(list(tmp_path.glob(".other.bin.*.part"))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["epoch_004.npz", "other.bin"]
    assert (tmp_path / "other.bin").read_bytes() == b"in progress"
