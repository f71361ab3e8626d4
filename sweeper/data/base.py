"""A dataset as whole arrays with a fixed train/validation/test split, and its labelled subset."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
from pydantic import Field

from ..errors import SpecError
from ..schema import Boolean, Choice, Section, checked, number, shown


@dataclass(frozen=True)
class Dataset:
    name: str
    n_classes: int
    x_train: np.ndarray  # float32 (N, D), values in [0, 1]
    y_train: np.ndarray  # int64 (N,)
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    image_shape: tuple[int, int, int] | None = None  # (channels, height, width) of the flat rows

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.image_shape or (self.n_features,)


PREPROCESS = ("scale", "dynamic_binarize", "static_binarize", "standardize")
COORDINATES = ("unit", "raw")  # toy sets: min-max scaled to [0, 1] by the training set, or the generator's own


def _noise(value) -> float:
    if number(value) < 0:
        raise SpecError(f"must be >= 0, got {shown(value)}")
    return float(value)


def _factor(value) -> float:
    if not 0 < number(value) < 1:
        raise SpecError(f"must be between 0 and 1 (the inner circle's radius over the outer), got {shown(value)}")
    return float(value)


class DataOptions(Section):
    """How a spec wants its data: the `data:` mapping of a spec (which datasets take the toy sets' options is
    checked with the datasets, in spec._check_data)."""

    preprocess: Choice(PREPROCESS, "preprocessing") = "scale"  # dynamic_binarize happens per batch in training
    labelled_in_unlabelled: Boolean = False  # do labelled points also appear in the unlabelled set?
    noise: checked(float | None, _noise, Annotated[float, Field(ge=0)]) = None  # toy sets; None: the set's default
    # circles only: the inner circle's radius over the outer's; None: 0.5
    factor: checked(float | None, _factor, Annotated[float, Field(gt=0, lt=1)]) = None
    coordinates: Choice(COORDINATES, "coordinates") = "unit"  # toy sets only


@dataclass(frozen=True)
class DatasetInfo:
    """What the spec checks need to know of a dataset without loading it."""

    n_train: int
    n_classes: int
    summary: str
    input_shape: tuple[int, ...] = ()  # (channels, height, width) or (features,)
    smallest_class: int | None = None  # training points of its rarest class (None: known once loaded)


def fixed_split(n: int, n_val: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of train, validation and test: one permutation, the same on every machine."""
    order = np.random.default_rng(seed).permutation(n)
    return order[n_val + n_test :], order[:n_val], order[n_val : n_val + n_test]


def labelled_split(labels: np.ndarray, label_count: int, n_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A class-balanced labelled subset of `label_count` points chosen by `seed`, and the rest.

    Returns sorted indices into `labels`: (labelled, unlabelled), disjoint, covering all.
    """
    if label_count % n_classes:
        raise ValueError(f"label_count {label_count} is not a multiple of the {n_classes} classes")
    per_class = label_count // n_classes
    rng = np.random.default_rng([seed, 0x5EED])  # a stream of its own, apart from init and batches
    chosen = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise ValueError(f"class {c} has {len(members)} training points, fewer than {per_class} labels")
        chosen.append(rng.choice(members, per_class, replace=False))
    labelled = np.sort(np.concatenate(chosen))
    unlabelled = np.setdiff1d(np.arange(len(labels)), labelled)
    return labelled, unlabelled
