"""PyTorch's ``torch.utils`` spelling: ``tinygrad_cnn.utils.data`` is :mod:`tinygrad_cnn.data`
(``DataLoader``, ``TensorDataset``), so ``torch.utils.data.DataLoader`` ports by renaming."""
from .. import data

__all__ = ["data"]
