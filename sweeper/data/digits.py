"""scikit-learn's bundled digits: 1797 images of 8x8 grey levels 0..16, 10 classes.

Scaled to [0, 1]. Fixed split: 1257 train, 180 validation, 360 test.
"""
from __future__ import annotations

import numpy as np

from .base import Dataset, DatasetInfo, fixed_split

INFO = DatasetInfo(n_train=1257, n_classes=10, summary="scikit-learn digits, 8x8, 1257/180/360 split (embedded)", input_shape=(1, 8, 8),
                   smallest_class=113)
SPLIT_SEED = 2014


def load() -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    train, val, test = fixed_split(len(y), n_val=180, n_test=360, seed=SPLIT_SEED)
    assert len(train) == INFO.n_train
    return Dataset("digits", INFO.n_classes, x[train], y[train], x[val], y[val], x[test], y[test], (1, 8, 8))
