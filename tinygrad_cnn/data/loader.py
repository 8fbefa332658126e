"""``DataLoader``: mini-batches of a dataset as Tensors, shuffled reproducibly."""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..tensor import Tensor, get_rng


class DataLoader:
    """Iterate over ``dataset`` in batches of ``(x, y)`` Tensors.

    ``DataLoader(dataset, batch_size=1, shuffle=False, seed=None, drop_last=False)``. A batch is
    ``x`` of shape (B, *sample_shape) and ``y`` of shape (B,) (labels stay int64). With
    ``shuffle=True`` the order of epoch ``e`` is a permutation drawn from ``(seed, e)`` only, so a
    run is reproducible and a resumed run sees the same batches (``set_epoch`` picks the epoch;
    each full pass advances it by one). ``seed=None`` draws a seed from the global generator
    (``tinygrad_cnn.manual_seed``). Datasets with a ``get_batch(indices)`` method are read one
    whole batch at a time; any other ``dataset[i] -> (x, y)`` works too.

    Example::

        loader = DataLoader(FashionMNIST(transform=ToFloat()), batch_size=100, shuffle=True, seed=0)
        for x, y in loader:           # x: (100, 1, 28, 28) float32, y: (100,) int64
            ...
    """

    def __init__(self, dataset: Any, batch_size: int = 1, shuffle: bool = False, seed: int | None = None, drop_last: bool = False) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}.")
        n = len(dataset)
        if n == 0:
            raise ValueError("DataLoader: the dataset is empty.")
        if drop_last and n < batch_size:
            raise ValueError(
                f"DataLoader: drop_last=True with batch_size={batch_size} but only {n} samples: every batch would be dropped."
            )
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.seed = int(get_rng().integers(2**31)) if seed is None else int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass use the order of ``epoch`` (for resuming a run)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        """The number of batches per pass."""
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self, epoch: int | None = None) -> np.ndarray:
        """The sample indices of one pass (epoch ``epoch``, default the next), in the order served."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        e = self.epoch if epoch is None else epoch
        return np.random.default_rng([self.seed, e]).permutation(n)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        idx = self.order()
        self.epoch += 1
        stop = len(self) * self.batch_size
        get_batch = getattr(self.dataset, "get_batch", None)
        for start in range(0, min(stop, len(idx)), self.batch_size):
            b = idx[start : start + self.batch_size]
            if get_batch is not None:
                x, y = get_batch(b)
            else:
                items = [self.dataset[int(i)] for i in b]
                x = np.stack([np.asarray(it[0]) for it in items])
                y = np.asarray([it[1] for it in items])
            yield Tensor(np.ascontiguousarray(x)), Tensor(np.asarray(y))

    def __repr__(self) -> str:
        return (
            f"DataLoader(batches={len(self)}, batch_size={self.batch_size}, shuffle={self.shuffle}, "
            f"seed={self.seed}, drop_last={self.drop_last})"
        )
