"""SVHN from the standard train_32x32.mat and test_32x32.mat (MATLAB files, read by scipy).

Label 10 stands for the digit 0 and becomes 0. Images become (N, 3*32*32), channel planes
first like CIFAR. Split: the last 5,000 training images validate, the rest train.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError
from .base import Dataset, DatasetInfo
from .fetch import Source, ensure

URL = "http://ufldl.stanford.edu/housenumbers/"
TRAIN = Source("train_32x32.mat", (URL + "train_32x32.mat",), md5="e26dedcc434d2e4c54c9b2d4a06d8373")
TEST = Source("test_32x32.mat", (URL + "test_32x32.mat",), md5="eb5a983be6a315427106f1b164d9cef3")
N_VAL = 5_000
INFO = DatasetInfo(n_train=73_257 - N_VAL, n_classes=10, summary="SVHN, 32x32x3, 68257/5000/26032", input_shape=(3, 32, 32))


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path)
        images, labels = mat["X"], mat["y"]
    except (ValueError, KeyError, OSError, TypeError) as e:
        raise DataError(f"{path}: not an SVHN .mat file with X and y ({type(e).__name__}); expected {URL}{path.name}") from None
    if images.ndim != 4 or images.shape[:3] != (32, 32, 3) or images.shape[3] != labels.size:
        raise DataError(f"{path}: X has shape {images.shape} for {labels.size} labels; expected (32, 32, 3, N)")
    flat = images.transpose(3, 2, 0, 1).reshape(images.shape[3], -1)  # (N, channel, row, column)
    y = labels.reshape(-1).astype(np.int64)
    return flat, np.where(y == 10, 0, y)


def load(directory: Path) -> Dataset:
    train_x, train_y = read_mat(ensure(TRAIN, directory))
    test_x, test_y = read_mat(ensure(TEST, directory))
    scale = lambda images: (images / np.float32(255)).astype(np.float32)  # noqa: E731
    x, n = scale(train_x), len(train_y) - N_VAL
    return Dataset("svhn", 10, x[:n], train_y[:n], x[n:], train_y[n:], scale(test_x), test_y, (3, 32, 32))
