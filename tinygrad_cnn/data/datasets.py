"""MNIST and Fashion-MNIST: found on disk (or downloaded) and read with the checked IDX reader.

With a ``root`` argument the files are looked for only there (the folder itself, then
``root/<name>``), then downloaded into ``root/<name>``: an explicit folder never silently gives
way to another copy. Without one, in order (the first folder holding a split's two files wins):

1. the ``TINYGRAD_CNN_DATA`` environment variable (the folder itself, then ``<folder>/<name>``);
2. the user cache, ``~/.cache/tinygrad_cnn/<name>`` (``$XDG_CACHE_HOME`` is honoured);
3. the system's dataset packages (Debian's ``dataset-fashion-mnist`` installs
   ``/usr/share/datasets/fashion-mnist``);
4. a download from the published mirrors into the cache, checked against the published SHA-256
   and written atomically.

Each file may be gzip-compressed (``.gz``) or raw. When nothing works the error lists every
place looked and how to provide the files.
"""
from __future__ import annotations

import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_open
from .idx import read_idx

ENV_VAR = "TINYGRAD_CNN_DATA"
"""The environment variable naming a folder to look in (and download to) before the default cache."""


def cache_dir() -> Path:
    """The user cache folder of tinygrad_cnn (``$XDG_CACHE_HOME/tinygrad_cnn`` or ``~/.cache/tinygrad_cnn``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tinygrad_cnn"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download_file(
    urls: Sequence[str],
    dest: str | os.PathLike,
    sha256: str,
    *,
    opener: Callable[..., Any] | None = None,
    timeout: float = 60.0,
) -> Path:
    """Download ``dest`` from the first of ``urls`` that delivers bytes with the given SHA-256.

    Data is streamed into a temporary file beside ``dest`` and renamed into place only after its
    checksum matched, so an interrupted or failed download never leaves a partial ``dest``.
    ``opener(url, timeout=...)`` defaults to :func:`urllib.request.urlopen` (``file://`` URLs work).
    Raises ``OSError`` listing every URL tried and why it failed.

    Example::

        download_file(["https://mirror/a.gz", "https://other/a.gz"], "data/a.gz", "3aede3...")
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    open_url = opener or urllib.request.urlopen
    failures = []
    for url in urls:
        try:
            with atomic_open(dest) as out, open_url(url, timeout=timeout) as resp:
                h = hashlib.sha256()
                for chunk in iter(lambda: resp.read(1 << 16), b""):  # noqa: B023 - consumed in this iteration
                    h.update(chunk)
                    out.write(chunk)
                if h.hexdigest() != sha256:  # raising inside the block discards the temporary file
                    raise ValueError(f"SHA-256 mismatch (got {h.hexdigest()}, expected {sha256})")
            return dest
        except ValueError as e:
            failures.append(f"{url}: {e}")
        except Exception as e:  # every mirror is tried; the error below lists each failure
            failures.append(f"{url}: {type(e).__name__}: {e}")
    raise OSError(f"download_file: could not download {dest.name}:\n  " + "\n  ".join(failures))


class TensorDataset:
    """Pairs of arrays indexed together: ``TensorDataset(images, labels)[i] == (images[i], labels[i])``.

    ``images`` is (N, ...) and ``labels`` (N,); ``transform`` is applied to images (one or a
    batch). Used with :class:`~tinygrad_cnn.data.DataLoader`.
    """

    def __init__(self, data: np.ndarray, targets: np.ndarray, transform: Callable[[np.ndarray], np.ndarray] | None = None) -> None:
        data, targets = np.asarray(data), np.asarray(targets)
        if data.ndim == 0 or targets.ndim == 0 or len(data) != len(targets):
            raise ValueError(
                f"TensorDataset: data and targets need the same first dimension, got shapes {data.shape} and {targets.shape}."
            )
        self.data = data
        self.targets = targets
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[np.ndarray, Any]:
        n = len(self)
        if not isinstance(index, (int, np.integer)):
            raise TypeError(f"{type(self).__name__}: index must be an int, got {type(index).__name__}; use get_batch for many.")
        if not -n <= index < n:
            raise IndexError(f"{type(self).__name__}: index {index} out of range for {n} samples.")
        x = self.data[index]
        return (self.transform(x) if self.transform else x), self.targets[index]

    def get_batch(self, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The samples at ``indices`` stacked: ``(len(indices), ...)`` images (transformed) and labels."""
        x = self.data[indices]
        return (self.transform(x) if self.transform else x), self.targets[indices]


class MNIST(TensorDataset):
    """The MNIST handwritten digits (LeCun et al. 1998): 60,000 train / 10,000 test, 28x28 grey.

    ``MNIST(root=None, train=True, transform=None, download=True)``. Items are ``(image, label)``
    with image a (1, 28, 28) uint8 array (or whatever ``transform`` makes of it) and label an
    int64. ``data`` holds all images (N, 1, 28, 28) uint8, ``targets`` the labels (N,) int64.
    See the module docstring for where the files are looked for.

    Example::

        train = FashionMNIST(train=True, transform=Compose([ToFloat(), Normalize(0.2860, 0.3530)]))
        x, y = train[0]                   # (1, 28, 28) float32, int
    """

    name = "mnist"
    title = "MNIST"
    classes = ("0", "1", "2", "3", "4", "5", "6", "7", "8", "9")
    mean, std = 0.1307, 0.3081  # of the training images scaled to [0, 1]
    files = {
        "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
    sizes = {"train": 60000, "test": 10000}
    mirrors: tuple[str, ...] = (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    )
    sha256 = {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    }
    system_dirs: tuple[str, ...] = ("/usr/share/datasets/mnist",)
    # No Debian package ships MNIST; /usr/share/datasets/mnist is where a system-wide copy goes,
    # in the layout Debian uses for Fashion-MNIST.
    install_hint = "copy the four *-ubyte.gz files of MNIST into one of the folders above (e.g. /usr/share/datasets/mnist)"

    def __init__(
        self,
        root: str | os.PathLike | None = None,
        train: bool = True,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        download: bool = True,
    ) -> None:
        self.split = "train" if train else "test"
        self.root = Path(root) if root is not None else None
        folder = self._find(download)
        img_name, lbl_name = self.files[self.split]
        images_path, labels_path = (self._file_in(folder, n) for n in (img_name, lbl_name))
        if images_path is None or labels_path is None:  # _find chose a folder holding both: removed since?
            raise FileNotFoundError(f"{self.title}: {folder} no longer holds {img_name} and {lbl_name} (or their .gz).")
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"{self.title}: {images_path} should hold uint8 images (N, H, W), got {images.dtype} {images.shape}.")
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"{self.title}: {labels_path} holds labels of shape {labels.shape} for {len(images)} images in {images_path}; "
                "the two files do not belong together."
            )
        self._check_labels(labels, labels_path)
        self.folder = folder
        super().__init__(images[:, None], labels.astype(np.int64), transform)

    def _check_labels(self, labels: np.ndarray, path: Path) -> None:
        n = len(self.classes)
        if labels.dtype.kind not in "iu":
            raise ValueError(f"{self.title}: {path} holds {labels.dtype} labels; class labels are integers 0..{n - 1}.")
        bad = np.flatnonzero((labels < 0) | (labels >= n))
        if bad.size:
            i = int(bad[0])
            raise ValueError(
                f"{self.title}: {path} has label {int(labels[i])} at index {i} ({bad.size} label(s) outside 0..{n - 1}); "
                f"{self.title} has {n} classes. The file is corrupt or belongs to another dataset."
            )

    # ---- finding the files ---------------------------------------------------------------
    @staticmethod
    def _file_in(folder: Path, stem: str) -> Path | None:
        for name in (stem + ".gz", stem):
            p = folder / name
            if p.is_file():
                return p
        return None

    def _candidates(self) -> list[tuple[str, Path | None, str]]:
        """(label, folder or None, why it is unusable when None) in lookup order."""
        if self.root is not None:
            return [("root argument", self.root, ""), ("root argument", self.root / self.name, "")]
        out: list[tuple[str, Path | None, str]] = [("root argument", None, "not given")]
        env = os.environ.get(ENV_VAR)
        if not env:
            out.append((f"${ENV_VAR}", None, "not set"))
        else:
            out += [(f"${ENV_VAR}", Path(env), ""), (f"${ENV_VAR}", Path(env) / self.name, "")]
        out.append(("user cache", cache_dir() / self.name, ""))
        out += [("system dataset package", Path(d), "") for d in self.system_dirs]
        return out

    def download_dir(self) -> Path:
        """Where a download goes: ``root/<name>`` when a root was given, else the user cache."""
        return (self.root / self.name) if self.root is not None else cache_dir() / self.name

    def _find(self, download: bool) -> Path:
        stems = self.files[self.split]
        looked = []
        for label, folder, why in self._candidates():
            if folder is None:
                looked.append(f"{label}: {why}")
                continue
            present = [self._file_in(folder, s) for s in stems]
            if all(present):
                return folder
            if not folder.is_dir():
                looked.append(f"{label}: {folder} (no such folder)")
            else:
                missing = [s + "[.gz]" for s, p in zip(stems, present) if p is None]
                looked.append(f"{label}: {folder} (missing {', '.join(missing)})")
        dest = self.download_dir()
        if download:
            try:
                for s in stems:
                    gz = s + ".gz"
                    download_file([m + gz for m in self.mirrors], dest / gz, self.sha256[gz])
                return dest
            except OSError as e:
                looked.append(f"download into {dest}: failed:\n      " + str(e).replace("\n", "\n      "))
        else:
            looked.append(f"download into {dest}: not tried (download=False)")
        raise FileNotFoundError(self._not_found(stems, looked))

    def _not_found(self, stems: Sequence[str], looked: list[str]) -> str:
        places = "\n  ".join(f"{i}. {s}" for i, s in enumerate(looked, 1))
        head = f"{self.title} ({self.split}): could not find {stems[0]}[.gz] and {stems[1]}[.gz]. Looked in, in order:\n  {places}\n"
        if self.root is not None:
            return head + (
                f"root={str(self.root)!r} (command line: --data-root) is the only place searched when given. Put the files "
                f"there or in {self.root / self.name}, pass download=True to fetch them into it, or leave root out to search "
                f"${ENV_VAR}, the user cache and the system dataset package."
            )
        return head + (
            f"To provide the files: {self.install_hint}; or put them in a folder of your choice and pass "
            f"root=<folder> (command line: --data-root <folder> or {ENV_VAR}=<folder>); or connect to the internet "
            "and pass download=True."
        )

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(split={self.split!r}, samples={len(self)}, folder={str(self.folder)!r}, transform={self.transform!r})"


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST (Xiao et al. 2017): 10 kinds of clothing, MNIST's sizes and format.

    Same interface as :class:`MNIST`. Debian/Ubuntu ship it: ``apt-get install dataset-fashion-mnist``.
    """

    name = "fashion-mnist"
    title = "Fashion-MNIST"
    classes = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
    mean, std = 0.2860, 0.3530
    mirrors = (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    )
    sha256 = {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    }
    system_dirs = ("/usr/share/datasets/fashion-mnist",)
    install_hint = (
        "install the system package (sudo apt-get install dataset-fashion-mnist), "
        "or copy the four *-ubyte.gz files into one of the folders above"
    )


DATASETS: dict[str, type[MNIST]] = {"mnist": MNIST, "fashion-mnist": FashionMNIST}
"""The dataset classes by their command-line names."""
