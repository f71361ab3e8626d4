"""What every model offers the training loop."""
from __future__ import annotations

import math
from typing import ClassVar, NamedTuple

import torch
from torch import nn

from .. import hyperparameters
from ..hyperparameters import Hyper
from .enumeration import ENUMERATIONS


class Batch(NamedTuple):
    x_labelled: torch.Tensor  # (B_l, D)
    y_labelled: torch.Tensor  # (B_l,) int64
    x_unlabelled: torch.Tensor  # (B_u, D)


class Schedule(NamedTuple):
    """Where training is and how big the data is: what a loss may read besides its batch and weights."""

    epoch: float  # epochs done before this one, from 0
    epochs: float  # the trial's
    data_ratio: float  # training points per labelled point, N / N_l (Kingma's alpha)
    labelled_share: float  # N_l / (N_l + N_u), bounds.semi_supervised_loss's dataset_sum
    unlabelled_count: float  # N_u, the points of the unlabelled set (what Maaløe's weight prior is divided by)

    @property
    def progress(self) -> float:
        """The fraction of training done (M1's stages, pretraining)."""
        return self.epoch / self.epochs


class Model(nn.Module):
    """A semi-supervised model: a loss over a batch, and a classifier.

    A model fitted by gradient (`fitted_by = "gradient"`) defines `forward(batch, loss_weights,
    schedule, key)` returning (loss, parts): `loss_weights` maps each name in `loss_weights` to a
    0-d tensor, `schedule` is a Schedule, `key` an int64 tensor (see noise.normal), and `parts`
    maps names from `loss_parts` to 0-d tensors. No state is kept between calls, so the loss is a
    pure function of (parameters, batch, loss_weights, schedule, key) through
    torch.func.functional_call.

    A model fitted by EM (`fitted_by = "em"`) defines `em_step(x_labelled, y_labelled,
    x_unlabelled)` instead, returning minus the log-likelihood per point.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    fitted_by: ClassVar[str] = "gradient"  # or "em": how train.py fits it (train.fitter)
    loss_weights: ClassVar[dict[str, Hyper]] = {}  # coefficients of the loss, given to forward as tensors
    build_options: ClassVar[dict[str, Hyper]] = {}  # sizes, likelihood, classifier: given to __init__
    loss_parts: ClassVar[tuple[str, ...]] = ("recon", "kl", "ce")  # what forward's parts may hold; each is recorded
    enumerates: ClassVar[bool] = False  # sums a bound over every label (enumeration.over_labels)
    reads_unlabelled: ClassVar[bool] = True  # its loss reads x_unlabelled; if not, the loop hands it an empty batch (reads_unlabelled_at)
    built_on: ClassVar[tuple[str, ...]] = ()  # models this one contains: it takes all their hyperparameters
    enumeration: str = "parallel"  # how enumeration.over_labels sums over labels; not a hyperparameter: the results are the same

    def __init__(self, input_shape: tuple[int, ...], n_classes: int):
        super().__init__()
        self.input_shape = input_shape
        self.n_features = math.prod(input_shape)
        self.n_classes = n_classes

    def __init_subclass__(cls, **kwargs):
        """A model's hyperparameters are declared under its name in sweeper/hyperparameters.py, which imports no
        torch, so that a spec is checked without building a model; the class reads them from there."""
        super().__init_subclass__(**kwargs)
        if "reads_unlabelled" not in cls.__dict__:  # declared by each class: a subclass of the baseline may read them
            cls.reads_unlabelled = True
        if "name" in cls.__dict__:
            declared = hyperparameters.MODELS[cls.name]
            cls.summary, cls.fitted_by = declared.summary, declared.fitted_by
            cls.loss_weights, cls.build_options = declared.loss_weights, declared.build_options

    @classmethod
    def hyperparameters(cls) -> dict[str, Hyper]:
        return hyperparameters.MODELS[cls.name].hyperparameters()

    @classmethod
    def trial_epochs(cls, hyper: dict, epochs: int) -> int:
        """The epochs a trial of this model trains for a spec's `epochs` (Declared.trial_epochs)."""
        return hyperparameters.MODELS[cls.name].trial_epochs(hyper, epochs)

    @classmethod
    def ignored(cls, hyper: dict) -> set[str]:
        """The hyperparameters this model takes but does not use with the options in `hyper` (Declared.ignored)."""
        return hyperparameters.MODELS[cls.name].ignored(hyper)

    def enumerate_labels(self, enumeration: str) -> Model:
        """Sum over labels in one batched pass ("parallel") or one pass per label ("sequential"), in this
        model and every model it contains."""
        if enumeration not in ENUMERATIONS:
            raise ValueError(f"enumeration {enumeration!r}: one of {', '.join(ENUMERATIONS)}")
        for module in self.modules():
            if isinstance(module, Model):
                module.enumeration = enumeration
        return self

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits for x."""
        raise NotImplementedError

    def reads_unlabelled_at(self, schedule: Schedule) -> bool:
        """Whether the loss reads x_unlabelled at this point of training: a stage may not (M1's classifier)."""
        return self.reads_unlabelled

    def refresh_due(self, schedule: Schedule) -> bool:
        """Whether `refresh` sets buffers before this epoch (M1+M2: as M2's stage begins); none by default."""
        return False

    def refresh(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """New values of buffers, by their state_dict names, from the member's unlabelled x: called before an
        epoch where refresh_due, outside the loss, so the loss stays a pure function of its inputs."""
        return {}
