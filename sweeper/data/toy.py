"""Two-dimensional toy sets from scikit-learn's generators (Jurasiński §3.1).

10,000 training points, so that 50 labels (25 per class) leave 9,950 unlabelled; 1,000
validation and 1,000 test points drawn independently. Coordinates are min-max scaled to
[0, 1] with the training set's range. `noise` is the generators' noise.
"""
from __future__ import annotations

import numpy as np

from .base import Dataset, DatasetInfo

N_TRAIN, N_VAL, N_TEST = 10_000, 1_000, 1_000
MOONS = DatasetInfo(n_train=N_TRAIN, n_classes=2, summary="two moons, 2-d, 10000/1000/1000, noise option (default 0.1)",
                    input_shape=(2,), smallest_class=5000)
CIRCLES = DatasetInfo(n_train=N_TRAIN, n_classes=2, summary="concentric circles, 2-d, 10000/1000/1000, noise option (default 0.05)",
                      input_shape=(2,), smallest_class=5000)
DEFAULT_NOISE = {"moons": 0.1, "circles": 0.05}


def load(name: str, noise: float | None = None) -> Dataset:
    from sklearn.datasets import make_circles, make_moons

    noise = DEFAULT_NOISE[name] if noise is None else noise
    make = {"moons": lambda n, seed: make_moons(n, noise=noise, random_state=seed),
            "circles": lambda n, seed: make_circles(n, noise=noise, factor=0.5, random_state=seed)}[name]
    (x, y), (xv, yv), (xt, yt) = make(N_TRAIN, 0), make(N_VAL, 1), make(N_TEST, 2)
    low, high = x.min(0), x.max(0)
    scale = lambda a: ((a - low) / (high - low)).astype(np.float32)  # noqa: E731
    return Dataset(name, 2, scale(x), y.astype(np.int64), scale(xv), yv.astype(np.int64), scale(xt), yt.astype(np.int64))
