"""scikit-learn's bundled digits: 1797 images of 8x8 grey levels 0..16, 10 classes.

Scaled to [0, 1]. Fixed split: 1257 train, 180 validation, 360 test.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .base import Dataset, DatasetInfo, fixed_split

INFO = DatasetInfo(n_train=1257, n_classes=10, summary="scikit-learn digits, 8x8, 1257/180/360 split (embedded)", input_shape=(1, 8, 8),
                   smallest_class=113)
SPLIT_SEED = 2014


def _bundled_file() -> Path | None:
    """scikit-learn's own copy of the digits (64 grey levels, then the label, a row an image), found without
    importing scikit-learn: `sklearn.datasets` takes about a second to import, a second of every short sweep's
    start. None where the installed scikit-learn keeps it elsewhere."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root, "datasets", "data", "digits.csv.gz")
        if path.is_file():
            return path
    return None


def pixels_and_labels() -> tuple[np.ndarray, np.ndarray]:
    """The 1797 images as (1797, 64) grey levels 0..16 and their labels, as `sklearn.datasets.load_digits` gives them."""
    path = _bundled_file()
    if path is not None:
        table = np.loadtxt(path, delimiter=",", dtype=np.float64)
        if table.shape == (1797, 65):
            return table[:, :-1], table[:, -1]
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return bunch.data, bunch.target


def load() -> Dataset:
    pixels, labels = pixels_and_labels()
    x = (pixels / 16.0).astype(np.float32)
    y = labels.astype(np.int64)
    train, val, test = fixed_split(len(y), n_val=180, n_test=360, seed=SPLIT_SEED)
    assert len(train) == INFO.n_train
    return Dataset("digits", INFO.n_classes, x[train], y[train], x[val], y[val], x[test], y[test], (1, 8, 8))
