"""What every model offers the training loop."""
from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from .parts import ARCHITECTURE, Hyper

# Optimiser settings are hyperparameters of every model.
OPTIMISER = {"lr": Hyper(1e-3, low=1e-7, high=1.0, help="Adam learning rate")}


class Batch(NamedTuple):
    x_labelled: torch.Tensor  # (B_l, D)
    y_labelled: torch.Tensor  # (B_l,) int64
    x_unlabelled: torch.Tensor  # (B_u, D)


class Model(nn.Module):
    """A semi-supervised model: a loss over a batch, and a classifier.

    `forward(batch, weights, key)` returns (loss, parts): `weights` maps each name in
    `weights` to a 0-d tensor, plus the schedule: "epoch" and "progress" (the fraction of
    training done, a float), "data_ratio" (training points per labelled point, for Kingma's
    alpha) and "labelled_share" (N_l / (N_l + N_u), for parts.semi_supervised_loss); `key` is an
    int64 tensor (see parts.normal); `parts` maps names from train.LOSS_PARTS to 0-d
    tensors. No state is kept between calls, so the loss is a pure function of
    (parameters, batch, weights, key) through torch.func.functional_call.

    A model fitted by EM instead defines em_step(x_labelled, y_labelled, x_unlabelled).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    weights: ClassVar[dict[str, Hyper]] = {}  # loss weights, given to forward as tensors
    shape: ClassVar[dict[str, Hyper]] = ARCHITECTURE  # sizes and options, given to __init__
    enumerates: ClassVar[bool] = False  # sums a bound over every label (parts.over_labels)
    built_on: ClassVar[tuple[str, ...]] = ()  # models this one contains: it takes all their hyperparameters

    def __init__(self, input_shape: tuple[int, ...], n_classes: int):
        super().__init__()
        self.input_shape = input_shape
        self.n_features = math.prod(input_shape)
        self.n_classes = n_classes

    @classmethod
    def hyperparameters(cls) -> dict[str, Hyper]:
        return {**cls.weights, **cls.shape, **OPTIMISER}

    @classmethod
    def ignored(cls, hyper: dict) -> set[str]:
        """The hyperparameters this model takes but does not use with the options in `hyper` (e.g. sigma2
        with a Bernoulli likelihood); an option missing from `hyper` has its default."""
        taken = cls.hyperparameters()
        return {name for name, h in taken.items() if h.applies_if is not None and h.applies_if[0] in taken
                and hyper.get(h.applies_if[0], taken[h.applies_if[0]].default) != h.applies_if[1]}

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for x."""
        raise NotImplementedError
