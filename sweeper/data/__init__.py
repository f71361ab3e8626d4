"""Datasets by name: what the spec checks need (DATASETS), loading, preprocessing, splits.

Files live in DATA_DIR/<dataset>/ (see fetch.data_dir); digits and the toy sets need none.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np

from . import cifar, digits, mnist, svhn, toy
from .base import PREPROCESS, DataOptions, Dataset, DatasetInfo, labelled_split
from .fetch import data_dir

_LOADERS = {
    "digits": (digits.INFO, lambda directory, options: digits.load()),
    "mnist": (mnist.MNIST, lambda directory, options: mnist.load_mnist(directory / "mnist")),
    "fashion_mnist": (mnist.FASHION_MNIST, lambda directory, options: mnist.load_fashion_mnist(directory / "fashion_mnist")),
    "cifar10": (cifar.INFO, lambda directory, options: cifar.load(directory / "cifar10")),
    "svhn": (svhn.INFO, lambda directory, options: svhn.load(directory / "svhn")),
    "moons": (toy.MOONS, lambda directory, options: toy.load("moons", options.noise, coordinates=options.coordinates)),
    "circles": (toy.CIRCLES, lambda directory, options: toy.load("circles", options.noise, options.factor, options.coordinates)),
}
DATASETS: dict[str, DatasetInfo] = {name: info for name, (info, _) in _LOADERS.items()}
TOY = ("moons", "circles")
STATIC_BINARIZE_SEED = 1


def load(name: str, directory: str | Path | None = None, options: DataOptions = DataOptions()) -> Dataset:  # noqa: B008 - frozen
    """The dataset `name`, verified, split and preprocessed (read once per process)."""
    generated = DataOptions(noise=options.noise, factor=options.factor, coordinates=options.coordinates)  # what the loaders read
    return _preprocess(_load(name, data_dir(directory), generated), options.preprocess)


@lru_cache(maxsize=4)
def _load(name: str, directory: Path, options: DataOptions) -> Dataset:
    return _LOADERS[name][1](directory, options)


def _preprocess(data: Dataset, how: str) -> Dataset:
    splits = ("x_train", "x_val", "x_test")
    if how in ("scale", "dynamic_binarize"):  # loaders scale to [0, 1]; dynamic binarisation is per batch
        return data
    if how == "static_binarize":  # one Bernoulli draw per pixel, the same for every run
        rng = np.random.default_rng(STATIC_BINARIZE_SEED)
        return replace(data, **{s: (rng.random(getattr(data, s).shape) < getattr(data, s)).astype(np.float32) for s in splits})
    if how == "standardize":  # zero mean, unit variance per feature, from the training split
        mean, std = data.x_train.mean(0), np.maximum(data.x_train.std(0), 1e-3)
        return replace(data, **{s: ((getattr(data, s) - mean) / std).astype(np.float32) for s in splits})
    raise ValueError(f"unknown preprocessing {how!r}; one of {PREPROCESS}")


__all__ = ["DATASETS", "PREPROCESS", "TOY", "DataOptions", "Dataset", "DatasetInfo", "data_dir", "labelled_split", "load"]
