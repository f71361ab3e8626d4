"""Every hyperparameter a model may take: its default, its bounds or choices, and when it applies. No torch:
a spec is checked (`sweeper validate`) without building a model, and each model (sweeper/models/) names its
own here."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .schema import shown


@dataclass(frozen=True)
class Hyper:
    """A hyperparameter a model takes: its default and the values it accepts.

    Numbers have bounds; options (e.g. the likelihood) have `choices` and a text default.
    `applies_if` (option, value): the hyperparameter only matters when that option has that value
    (sigma2 only with a Gaussian likelihood); otherwise a model ignores it.
    """

    default: float | str
    low: float | None = None
    high: float | None = None
    integer: bool = False
    help: str = ""
    choices: tuple[str, ...] | None = None
    applies_if: tuple[str, str] | None = None

    def check(self, value) -> str | None:
        """Why `value` is not allowed, or None."""
        if self.choices is not None:
            ok = isinstance(value, str) and value in self.choices
            return None if ok else f"expected one of {', '.join(self.choices)}, got {shown(value)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"expected a number, got {shown(value)}"
        try:
            number = float(value)
        except OverflowError:
            return f"expected a finite number, got {shown(value)}"
        if not math.isfinite(number):
            return f"expected a finite number, got {shown(value)}"
        if self.integer and not number.is_integer():
            return f"expected an integer, got {shown(value)}"
        if self.integer and abs(number) > 2**31:
            return f"must be at most {2**31}, got {shown(value)}"
        if self.low is not None and value < self.low:
            return f"must be >= {self.low:g}, got {shown(value)}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}, got {shown(value)}"
        return None


# Sizes a spec may ask for: past these a layer or a stack of them needs more memory than any one device has
# (a 65,536-square float32 weight is 16 GiB); what fits a given machine is checked before a sweep (footprint.check_memory).
MAX_WIDTH = 65_536
MAX_DEPTH = 64
MAX_SAMPLES = 1_000

# Network shape hyperparameters shared by the models (Jurasiński / Kingma defaults).
ARCHITECTURE = {
    "hidden": Hyper(500, low=1, high=MAX_WIDTH, integer=True, help="units in each hidden layer"),
    "latent": Hyper(50, low=1, high=MAX_WIDTH, integer=True, help="size of z"),
    "network": Hyper("mlp", choices=("mlp", "cnn"), help="MLP, or Raj's CNN for 28x28x1 and 32x32x3 images"),
    "depth": Hyper(1, low=1, high=MAX_DEPTH, integer=True, help="hidden layers of the MLP encoders and decoders"),
}

# The hidden layers' nonlinearity of the MLP networks (a CNN's is ReLU, as Raj's): networks.ACTIVATIONS builds it.
ACTIVATION = {
    "activation": Hyper("softplus", choices=("softplus", "relu"), applies_if=("network", "mlp"),
                        help="nonlinearity of the MLP hidden layers: softplus (Kingma), relu (Maaløe's code)"),
}

# How the labelled and the unlabelled terms of a semi-supervised objective are weighted.
WEIGHTING = {
    "weighting": Hyper("part_means", choices=("part_means", "dataset_sum"),
                       help="part_means: mean labelled term + mean unlabelled term (Jurasiński); dataset_sum: the "
                            "sum over the training set (Kingma), estimated from the batch, per training point"),
}


# Training the unlabelled term alone first: a VAE pretrained on every x before the labels count
# (Jurasiński §3.2, Fig. 5: M2 started from a pretrained VAE learns to ignore y).
PRETRAIN = {
    "pretrain": Hyper(0.0, low=0.0, high=1.0,
                      help="share of the epochs that train the unlabelled term alone, before the labelled one joins"),
}

# Optimiser settings are hyperparameters of every model. Each may differ between the members of a pack
# (train.Stack applies them member by member); the defaults are Adam at a constant rate, unclipped.
OPTIMISER = {
    "lr": Hyper(1e-3, low=1e-7, high=1.0, help="Adam learning rate"),
    "lr_decay": Hyper(1.0, low=0.0, high=1.0, help="factor the learning rate is multiplied by every lr_decay_every epochs (1: constant)"),
    "lr_decay_every": Hyper(1, low=1, high=1_000_000, integer=True, help="epochs between two multiplications by lr_decay"),
    "lr_min": Hyper(0.0, low=0.0, high=1.0, help="floor of the decayed learning rate"),
    "clip_norm": Hyper(0.0, low=0.0, high=1e12, help="each member's gradient scaled to at most this norm over all its parameters (0: off)"),
    "clip_value": Hyper(0.0, low=0.0, high=1e12, help="each gradient entry clipped to [-clip_value, clip_value], after clip_norm (0: off)"),
}
