"""IDX reader/writer, MNIST/Fashion-MNIST lookup and download, transforms, DataLoader."""
import gzip
import hashlib
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinygrad_cnn import Tensor
from tinygrad_cnn.atomic import default_file_mode
from tinygrad_cnn.data import (
    ENV_VAR,
    MNIST,
    Compose,
    DataLoader,
    FashionMNIST,
    IDXError,
    Normalize,
    Pad,
    Resize,
    TensorDataset,
    ToFloat,
    download_file,
    read_idx,
    write_idx,
)
from tinygrad_cnn.data import idx as idx_mod

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")

# ---------------------------------------------------------------------------------------------
# IDX


def _idx_bytes(code: int, dims: tuple, payload: bytes) -> bytes:
    return bytes([0, 0, code, len(dims)]) + struct.pack(f">{len(dims)}I", *dims) + payload


def test_read_idx_parses_hand_made_big_endian_file(tmp_path):
    # Written byte by byte (not with write_idx) so reader and writer cannot share a mistake.
    p = tmp_path / "a-idx2-int"
    p.write_bytes(_idx_bytes(0x0C, (2, 3), struct.pack(">6i", 1, -2, 3, 70000, -5, 6)))
    a = read_idx(p)
    assert a.dtype == np.int32 and a.dtype.isnative and a.shape == (2, 3)
    assert a.tolist() == [[1, -2, 3], [70000, -5, 6]]
    a[0, 0] = 9  # writable


def test_read_idx_gzip_detected_by_content_not_name(tmp_path):
    p = tmp_path / "labels"  # no .gz suffix
    p.write_bytes(gzip.compress(_idx_bytes(0x08, (4,), bytes([7, 0, 255, 3]))))
    assert read_idx(p).tolist() == [7, 0, 255, 3]


@given(
    dtype=st.sampled_from(["uint8", "int8", "int16", "int32", "float32", "float64"]),
    shape=st.lists(st.integers(0, 4), min_size=1, max_size=4).map(tuple),
    gz=st.booleans(),
)
def test_write_read_roundtrip(tmp_path_factory, dtype, shape, gz):
    d = tmp_path_factory.mktemp("idx")
    rng = np.random.default_rng(len(shape))
    a = (rng.standard_normal(shape) * 100).astype(dtype)
    p = write_idx(d / ("x.gz" if gz else "x"), a)
    b = read_idx(p)
    assert b.dtype == a.dtype and b.shape == a.shape
    np.testing.assert_array_equal(a, b)
    assert (p.read_bytes()[:2] == b"\x1f\x8b") == gz


@pytest.mark.parametrize(
    "content, needle",
    [
        (b"", "too short"),
        (b"\x00\x00", "too short"),
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "two zero bytes"),
        (b"\x00\x00\x07\x01" + b"\x00" * 8, "unknown IDX type code 0x07"),
        (b"\x00\x00\x08\x00", "0 dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated header"),
        (_idx_bytes(0x08, (2, 3), b"\x01" * 5), "truncated data"),
        (_idx_bytes(0x0D, (2,), b"\x00" * 4), "need 8 bytes, found 4"),
        (_idx_bytes(0x08, (2,), b"\x01" * 5), "3 unexpected trailing byte"),
        # 2**64 elements: an int64 product wraps to 0 and would match the empty data.
        (_idx_bytes(0x08, (65536,) * 4, b""), "need 18446744073709551616 bytes, found 0"),
    ],
)
def test_read_idx_errors_name_file_and_problem(tmp_path, content, needle):
    p = tmp_path / "bad-file-idx"
    p.write_bytes(content)
    with pytest.raises(IDXError) as e:
        read_idx(p)
    assert str(p) in str(e.value) and needle in str(e.value)


def test_read_idx_truncated_and_corrupt_gzip(tmp_path):
    good = gzip.compress(_idx_bytes(0x08, (1000,), bytes(range(250)) * 4))
    p = tmp_path / "cut.gz"
    p.write_bytes(good[: len(good) // 2])
    with pytest.raises(IDXError, match="gzip stream ends early") as e:
        read_idx(p)
    assert str(p) in str(e.value)
    bad = bytearray(good)
    bad[20:40] = b"\xff" * 20
    p.write_bytes(bytes(bad))
    with pytest.raises(IDXError, match="corrupt gzip|truncated|ends early"):
        read_idx(p)
    with pytest.raises(FileNotFoundError, match="no such file"):
        read_idx(tmp_path / "nope")


def test_write_idx_rejects_bad_arrays(tmp_path):
    with pytest.raises(TypeError, match="no IDX type code"):
        write_idx(tmp_path / "a", np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="1 to 255 dimensions"):
        write_idx(tmp_path / "a", np.float32(1.0))


def test_write_idx_is_atomic(tmp_path, monkeypatch):
    p = tmp_path / "keep.gz"
    write_idx(p, np.arange(5, dtype=np.uint8))

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(idx_mod.os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_idx(p, np.arange(9, dtype=np.uint8))
    monkeypatch.undo()
    assert read_idx(p).tolist() == [0, 1, 2, 3, 4]
    assert [f.name for f in tmp_path.iterdir()] == ["keep.gz"]
    # Not mkstemp's private 0600: the mode a plain open() would give.
    assert p.stat().st_mode & 0o777 == default_file_mode()


# ---------------------------------------------------------------------------------------------
# Datasets: lookup order, errors, download


def _write_split(folder: Path, split: str, n: int, label: int, gz: bool = True) -> None:
    """A fake split of n images whose labels are all ``label`` (to tell folders apart)."""
    img, lbl = MNIST.files[split]
    sfx = ".gz" if gz else ""
    rng = np.random.default_rng(label)
    write_idx(folder / (img + sfx), rng.integers(0, 256, (n, 28, 28)).astype(np.uint8))
    write_idx(folder / (lbl + sfx), np.full(n, label, np.uint8))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No env var, an empty cache, no system folders: only what a test puts there."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(FashionMNIST, "system_dirs", (str(tmp_path / "system"),))
    monkeypatch.setattr(MNIST, "system_dirs", (str(tmp_path / "system-mnist"),))
    # A test that forgets download=False must never reach the network.
    monkeypatch.setattr(FashionMNIST, "mirrors", ("file://" + str(tmp_path / "no-mirror") + "/",))
    monkeypatch.setattr(MNIST, "mirrors", ("file://" + str(tmp_path / "no-mirror") + "/",))
    return tmp_path


def test_lookup_order(isolated, monkeypatch):
    t = isolated
    _write_split(t / "system", "test", 3, label=4)
    assert FashionMNIST(train=False, download=False).targets.tolist() == [4, 4, 4]
    _write_split(t / "cache" / "tinygrad_cnn" / "fashion-mnist", "test", 3, label=3)
    assert FashionMNIST(train=False, download=False).targets.tolist() == [3] * 3
    _write_split(t / "env" / "fashion-mnist", "test", 3, label=2)  # the env var's <name> subfolder
    monkeypatch.setenv(ENV_VAR, str(t / "env"))
    assert FashionMNIST(train=False, download=False).targets.tolist() == [2] * 3
    _write_split(t / "root", "test", 3, label=1, gz=False)  # raw files work too
    ds = FashionMNIST(root=t / "root", train=False, download=False)
    assert ds.targets.tolist() == [1] * 3 and ds.folder == t / "root"
    # The training split is looked for independently: only the system folder has it.
    _write_split(t / "system", "train", 5, label=7)
    monkeypatch.delenv(ENV_VAR)
    (t / "cache").rename(t / "old-cache")
    tr = FashionMNIST(train=True, download=False)
    assert len(tr) == 5 and tr.data.shape == (5, 1, 28, 28) and tr.data.dtype == np.uint8
    assert tr.targets.dtype == np.int64 and tr.folder == t / "system"


def test_explicit_root_without_the_files_never_falls_back(isolated, monkeypatch):
    t = isolated
    _write_split(t / "system", "train", 5, label=7)
    _write_split(t / "cache" / "tinygrad_cnn" / "fashion-mnist", "train", 5, label=3)
    _write_split(t / "root", "test", 3, label=1)  # root holds only the test split
    with pytest.raises(FileNotFoundError) as e:
        FashionMNIST(root=t / "root", train=True, download=False)
    msg = str(e.value)
    for part in ["train-images-idx3-ubyte[.gz]", "train-labels-idx1-ubyte[.gz]", str(t / "root"),
                 str(t / "root" / "fashion-mnist"), "only place searched", "not tried (download=False)"]:
        assert part in msg, (part, msg)
    assert str(t / "system") not in msg and str(t / "cache") not in msg


def test_missing_everywhere_lists_every_place(isolated):
    with pytest.raises(FileNotFoundError) as e:
        FashionMNIST(train=True, download=False)
    msg = str(e.value)
    for part in [
        "Fashion-MNIST (train)",
        "train-images-idx3-ubyte",
        "root argument: not given",
        f"${ENV_VAR}: not set",
        str(isolated / "cache" / "tinygrad_cnn" / "fashion-mnist"),
        str(isolated / "system"),
        "not tried (download=False)",
        "apt-get install dataset-fashion-mnist",
    ]:
        assert part in msg, (part, msg)
    # Order: root before env before cache before system before download.
    keys = ["root argument", f"${ENV_VAR}", "user cache", "system dataset package", "download into"]
    assert [msg.index(k) for k in keys] == sorted(msg.index(k) for k in keys)


def test_partial_folder_names_missing_file(isolated):
    _write_split(isolated / "root", "test", 2, label=0)
    (isolated / "root" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        MNIST(root=isolated / "root", train=False, download=False)


def test_mismatched_files_are_rejected(isolated):
    r = isolated / "root"
    write_idx(r / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    write_idx(r / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(ValueError, match="do not belong together"):
        MNIST(root=r, train=False, download=False)
    write_idx(r / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 12], np.uint8))
    with pytest.raises(ValueError, match="label 12 at index 2"):
        MNIST(root=r, train=False, download=False)
    write_idx(r / "t10k-labels-idx1-ubyte.gz", np.array([0, -1, 3], np.int8))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz has label -1 at index 1 \(1 label\(s\) outside 0\.\.9\)"):
        MNIST(root=r, train=False, download=False)
    write_idx(r / "t10k-labels-idx1-ubyte.gz", np.array([0, 1, 3], np.float32))
    with pytest.raises(ValueError, match="float32 labels"):
        MNIST(root=r, train=False, download=False)


def _mirror(folder: Path, split: str, n: int, label: int) -> dict:
    """Fake mirror files (gz) in ``folder``; returns their SHA-256 by file name."""
    _write_split(folder, split, n, label)
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_download_from_second_mirror_into_cache(isolated, monkeypatch):
    sums = _mirror(isolated / "mirror2", "test", 4, label=6)
    monkeypatch.setattr(FashionMNIST, "sha256", sums)
    monkeypatch.setattr(
        FashionMNIST, "mirrors", ("file://" + str(isolated / "mirror1") + "/", "file://" + str(isolated / "mirror2") + "/")
    )
    ds = FashionMNIST(train=False)  # download=True is the default
    assert ds.targets.tolist() == [6] * 4
    cached = isolated / "cache" / "tinygrad_cnn" / "fashion-mnist"
    assert ds.folder == cached and sorted(p.name for p in cached.iterdir()) == sorted(sums)
    # Found in the cache now: no download needed.
    monkeypatch.setattr(FashionMNIST, "mirrors", ())
    assert FashionMNIST(train=False).targets.tolist() == [6] * 4


def test_download_goes_under_root_when_given(isolated, monkeypatch):
    sums = _mirror(isolated / "m", "test", 2, label=5)
    monkeypatch.setattr(MNIST, "sha256", sums)
    monkeypatch.setattr(MNIST, "mirrors", ("file://" + str(isolated / "m") + "/",))
    ds = MNIST(root=isolated / "r", train=False)
    assert ds.folder == isolated / "r" / "mnist" and len(ds) == 2


def test_download_checksum_mismatch_leaves_no_file(isolated, monkeypatch):
    sums = _mirror(isolated / "m", "test", 2, label=5)
    monkeypatch.setattr(FashionMNIST, "sha256", {k: "0" * 64 for k in sums})
    monkeypatch.setattr(FashionMNIST, "mirrors", ("file://" + str(isolated / "m") + "/",))
    with pytest.raises(FileNotFoundError) as e:
        FashionMNIST(train=False)
    assert "SHA-256 mismatch" in str(e.value) and "download into" in str(e.value)
    cached = isolated / "cache" / "tinygrad_cnn" / "fashion-mnist"
    assert list(cached.iterdir()) == []


def test_interrupted_download_leaves_no_partial_file(tmp_path):
    payload = b"x" * 300_000

    class Dying(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 100_000:
                raise ConnectionResetError("connection dropped")
            return super().read(n)

    def opener(url, timeout):
        return Dying(payload)

    dest = tmp_path / "d" / "f.gz"
    with pytest.raises(OSError) as e:
        download_file(["https://a/f.gz", "https://b/f.gz"], dest, hashlib.sha256(payload).hexdigest(), opener=opener)
    assert "https://a/f.gz: ConnectionResetError" in str(e.value) and "https://b/f.gz" in str(e.value)
    assert list(dest.parent.iterdir()) == []
    # The same bytes from a working opener arrive whole, and an older file is replaced atomically.
    dest.write_bytes(b"old")
    out = download_file(["https://a/f.gz"], dest, hashlib.sha256(payload).hexdigest(), opener=lambda u, timeout: io.BytesIO(payload))
    assert out.read_bytes() == payload and [p.name for p in dest.parent.iterdir()] == ["f.gz"]
    assert out.stat().st_mode & 0o777 == default_file_mode()


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_test_split(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    ds = FashionMNIST(root=SYSTEM_FASHION, train=False, download=False)
    assert ds.data.shape == (10000, 1, 28, 28) and ds.data.dtype == np.uint8
    assert np.bincount(ds.targets).tolist() == [1000] * 10
    assert abs(ds.data.mean() / 255 - 0.2868) < 0.002  # the published mean of the test images
    assert len(FashionMNIST.classes) == 10 and FashionMNIST.classes[9] == "Ankle boot"


# ---------------------------------------------------------------------------------------------
# Transforms


def test_to_float_normalize_pad():
    x = np.arange(2 * 2 * 3 * 3, dtype=np.uint8).reshape(2, 2, 3, 3) * 7
    f = ToFloat()(x)
    assert f.dtype == np.float32 and f.shape == x.shape
    np.testing.assert_allclose(f, x / 255.0, rtol=1e-6)
    n = Normalize([0.1, 0.5], [0.2, 0.25])(f)
    np.testing.assert_allclose(n[:, 0], (f[:, 0] - 0.1) / 0.2, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(n[:, 1], (f[:, 1] - 0.5) / 0.25, rtol=1e-5, atol=1e-6)
    assert n.dtype == np.float32
    # One image (C, H, W) works like a batch.
    np.testing.assert_allclose(Normalize([0.1, 0.5], [0.2, 0.25])(f[1]), n[1], rtol=1e-6)
    p = Pad(2, fill=-1)(n)
    assert p.shape == (2, 2, 7, 7)
    np.testing.assert_array_equal(p[..., 2:5, 2:5], n)
    assert (p[..., :2, :] == -1).all() and (p[..., :, 5:] == -1).all()
    p4 = Pad((1, 2, 3, 4))(f[0])
    assert p4.shape == (2, 3 + 2 + 4, 3 + 1 + 3)
    np.testing.assert_array_equal(p4[:, 2:5, 1:4], f[0])
    c = Compose([ToFloat(), Normalize(0.5, 0.5), Pad(2)])
    out = c(np.full((5, 1, 28, 28), 255, np.uint8))
    assert out.shape == (5, 1, 32, 32) and np.allclose(out[:, :, 2:30, 2:30], 1.0) and (out[:, :, 0] == 0).all()


def _bilinear_reference(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Pixel-by-pixel bilinear interpolation with half-pixel centres (the textbook formula)."""
    h, w = img.shape
    out = np.zeros((oh, ow))
    for i in range(oh):
        for j in range(ow):
            y = min(max((i + 0.5) * h / oh - 0.5, 0), h - 1)
            x = min(max((j + 0.5) * w / ow - 0.5, 0), w - 1)
            y0, x0 = int(y), int(x)
            y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
            dy, dx = y - y0, x - x0
            out[i, j] = (img[y0, x0] * (1 - dy) * (1 - dx) + img[y0, x1] * (1 - dy) * dx
                         + img[y1, x0] * dy * (1 - dx) + img[y1, x1] * dy * dx)
    return out


@given(h=st.integers(1, 7), w=st.integers(1, 7), oh=st.integers(1, 11), ow=st.integers(1, 11))
def test_resize_matches_pixelwise_bilinear(h, w, oh, ow):
    rng = np.random.default_rng(h * 7 + w)
    x = rng.standard_normal((2, 3, h, w))
    y = Resize((oh, ow))(x)
    assert y.shape == (2, 3, oh, ow) and y.dtype == x.dtype
    np.testing.assert_allclose(y[1, 2], _bilinear_reference(x[1, 2], oh, ow), atol=1e-12)
    np.testing.assert_allclose(Resize((oh, ow))(x[0]), y[0], atol=1e-12)  # one image like a batch


def test_resize_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x), size=(227, 227), mode="bilinear", align_corners=False).numpy()
    np.testing.assert_allclose(Resize(227)(x), ref, atol=1e-5)


def test_transform_errors():
    with pytest.raises(TypeError, match="Put ToFloat"):
        Normalize(0.5, 0.5)(np.zeros((1, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="std must be positive"):
        Normalize(0.5, 0.0)
    with pytest.raises(ValueError, match="3 values but the image has 1 channel"):
        Normalize([0.1, 0.2, 0.3], 1.0)(np.zeros((1, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"Add the channel axis"):
        ToFloat()(np.zeros((28, 28), np.uint8))
    with pytest.raises(ValueError, match="Pad: padding"):
        Pad((1, 2, 3))
    with pytest.raises(ValueError, match="Pad: padding"):
        Pad(-1)
    with pytest.raises(ValueError, match="Resize: size"):
        Resize((0, 3))
    with pytest.raises(TypeError, match="Put ToFloat"):
        Resize(4)(np.zeros((1, 2, 2), np.uint8))


# ---------------------------------------------------------------------------------------------
# DataLoader


@given(n=st.integers(1, 40), bs=st.integers(1, 12), shuffle=st.booleans(), drop_last=st.booleans())
def test_loader_covers_each_sample_once(n, bs, shuffle, drop_last):
    if drop_last and n < bs:
        with pytest.raises(ValueError, match="every batch would be dropped"):
            DataLoader(TensorDataset(np.zeros((n, 1)), np.zeros(n)), bs, drop_last=True)
        return
    ds = TensorDataset(np.arange(n, dtype=np.float32)[:, None] * 2, np.arange(n))
    dl = DataLoader(ds, bs, shuffle=shuffle, seed=3, drop_last=drop_last)
    batches = list(dl)
    assert len(batches) == len(dl)
    seen = np.concatenate([y.data for _, y in batches])
    for x, y in batches:
        assert isinstance(x, Tensor) and isinstance(y, Tensor)
        np.testing.assert_array_equal(x.data[:, 0], y.data * 2)  # images and labels stay paired
        assert len(y) == bs or (not drop_last and y is batches[-1][1])
    expected = (n // bs) * bs if drop_last else n
    assert len(seen) == expected and len(set(seen.tolist())) == expected
    if not shuffle:
        assert seen.tolist() == list(range(expected))


def test_loader_shuffle_is_deterministic_per_seed_and_epoch():
    ds = TensorDataset(np.zeros((50, 1), np.float32), np.arange(50))

    def epochs(dl, k):
        return [np.concatenate([y.data for _, y in dl]).tolist() for _ in range(k)]

    a = epochs(DataLoader(ds, 7, shuffle=True, seed=11), 3)
    b = epochs(DataLoader(ds, 7, shuffle=True, seed=11), 3)
    assert a == b and a[0] != a[1] and a[1] != a[2]
    assert epochs(DataLoader(ds, 7, shuffle=True, seed=12), 1)[0] != a[0]
    resumed = DataLoader(ds, 7, shuffle=True, seed=11)
    resumed.set_epoch(2)
    assert epochs(resumed, 1)[0] == a[2]


def test_loader_with_plain_indexable_dataset_and_bad_args():
    class Plain:
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.full((1, 2, 2), i, np.float32), i

    x, y = next(iter(DataLoader(Plain(), 2)))
    assert x.shape == (2, 1, 2, 2) and y.data.tolist() == [0, 1] and (x.data[1] == 1).all()
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be a positive int"):
            DataLoader(Plain(), bad)
    with pytest.raises(ValueError, match="empty"):
        DataLoader(TensorDataset(np.zeros((0, 1)), np.zeros(0)), 1)
    with pytest.raises(ValueError, match="same first dimension"):
        TensorDataset(np.zeros((3, 1)), np.zeros(2))
    with pytest.raises(IndexError, match="out of range"):
        TensorDataset(np.zeros((3, 1)), np.zeros(3))[3]


def test_dataset_transform_applies_to_items_and_batches(isolated):
    _write_split(isolated / "root", "test", 6, label=2)
    tf = Compose([ToFloat(), Pad(2)])
    ds = FashionMNIST(root=isolated / "root", train=False, transform=tf, download=False)
    x, y = ds[1]
    assert x.shape == (1, 32, 32) and x.dtype == np.float32 and y == 2
    np.testing.assert_allclose(x[0, 2:30, 2:30], ds.data[1, 0] / 255.0, rtol=1e-6)
    xb, yb = next(iter(DataLoader(ds, 4)))
    assert xb.shape == (4, 1, 32, 32)
    np.testing.assert_array_equal(xb.data[1], x)
    assert "samples=6" in repr(ds)


def test_env_var_path_is_not_required_to_exist(isolated, monkeypatch):
    monkeypatch.setenv(ENV_VAR, str(isolated / "does-not-exist"))
    with pytest.raises(FileNotFoundError) as e:
        MNIST(train=False, download=False)
    assert f"{isolated / 'does-not-exist'} (no such folder)" in str(e.value)
    assert os.environ[ENV_VAR] in str(e.value)
