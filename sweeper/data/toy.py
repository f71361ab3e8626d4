"""Two-dimensional toy sets from scikit-learn's generators (Jurasiński §3.1).

10,000 training points, so that 50 labels (25 per class) leave 9,950 unlabelled; 1,000
validation and 1,000 test points drawn independently. `noise` is the generators' noise and
`factor` the circles' inner radius over the outer (scikit-learn's make_circles; the thesis names
the generator but neither number, so both are sweeper's defaults and spec options). Coordinates
are min-max scaled to [0, 1] with the training set's range (coordinates: unit), or left as the
generator makes them (coordinates: raw: circles of radius 1 and `factor` around 0): the scale a
Gaussian likelihood's sigma^2 is read on.
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
DEFAULT_FACTOR = 0.5


def load(name: str, noise: float | None = None, factor: float | None = None, coordinates: str = "unit") -> Dataset:
    from sklearn.datasets import make_circles, make_moons

    noise = DEFAULT_NOISE[name] if noise is None else noise
    factor = DEFAULT_FACTOR if factor is None else factor
    make = {"moons": lambda n, seed: make_moons(n, noise=noise, random_state=seed),
            "circles": lambda n, seed: make_circles(n, noise=noise, factor=factor, random_state=seed)}[name]
    (x, y), (xv, yv), (xt, yt) = make(N_TRAIN, 0), make(N_VAL, 1), make(N_TEST, 2)
    low, high = (x.min(0), x.max(0)) if coordinates == "unit" else (0.0, 1.0)
    scale = lambda a: ((a - low) / (high - low)).astype(np.float32)  # noqa: E731
    return Dataset(name, 2, scale(x), y.astype(np.int64), scale(xv), yv.astype(np.int64), scale(xt), yt.astype(np.int64))
