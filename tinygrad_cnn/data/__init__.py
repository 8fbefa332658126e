"""Datasets (MNIST, Fashion-MNIST), the checked IDX reader, transforms and the DataLoader."""
from .datasets import DATASETS, ENV_VAR, MNIST, FashionMNIST, TensorDataset, cache_dir, download_file
from .idx import IDXError, read_idx, write_idx
from .loader import DataLoader
from .transforms import Compose, Normalize, Pad, Resize, ToFloat

__all__ = [
    "DATASETS",
    "ENV_VAR",
    "MNIST",
    "Compose",
    "DataLoader",
    "FashionMNIST",
    "IDXError",
    "Normalize",
    "Pad",
    "Resize",
    "TensorDataset",
    "ToFloat",
    "cache_dir",
    "download_file",
    "read_idx",
    "write_idx",
]
