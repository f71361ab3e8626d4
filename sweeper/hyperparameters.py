"""Every hyperparameter a model may take: its default, its bounds or choices, and when it applies. No torch:
a spec is checked (`sweeper validate`) without building a model, and each model (sweeper/models/) names its
own here."""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

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
        if self.low is not None and value < self.low:
            return f"must be >= {self.low:g}, got {shown(value)}"
        if self.high is not None and value > self.high:
            return f"must be <= {self.high:g}, got {shown(value)}"
        if self.integer and abs(number) > 2**31:  # beyond any bound a hyperparameter states: what torch's sizes take
            return f"must be at most {2**31}, got {shown(value)}"
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

# ---------------------------------------------------------------- the terms of the objectives

LIKELIHOOD = {
    "likelihood": Hyper("bernoulli", choices=("bernoulli", "gaussian"), help="p(x|...): Bernoulli, or Gaussian with variance sigma2"),
}
ALPHA = {"alpha": Hyper(0.1, low=0.0, help="weight of the labelled cross-entropy")}
ALPHA_SCALE = {
    "alpha_scale": Hyper("batch", choices=("batch", "dataset"), help="batch: alpha as given; dataset: alpha x N / N_labelled (Kingma)"),
}
SIGMA2 = {"sigma2": Hyper(1.0, low=1e-6, help="variance of the Gaussian likelihood: its reconstruction weight",
                         applies_if=("likelihood", "gaussian"))}
KL_WARMUP = {"kl_warmup": Hyper(0, low=0, integer=True, help="epochs over which the KL weight rises to 1 (0: none)")}
LAMBDA = {"lam": Hyper(1.0, low=0.0, help="weight of the labelled bound (lambda)")}
STAGES = {
    "vae_fraction": Hyper(0.5, low=0.0, high=1.0, help="share of the epochs that train the VAE before the classifier (or M2)"),
    "m1_epochs": Hyper(0, low=0, high=10**6, integer=True,
                       help="epochs that train the VAE before the next stage, which then trains the spec's full epochs "
                            "(the trial runs both; 0: vae_fraction splits the spec's epochs)"),
}
# M1's VAE apart from the rest (Kingma's M1 has two hidden layers of 500; the M2 on its features one)
M1_NETWORK = {
    "m1_hidden": Hyper(0, low=0, high=MAX_WIDTH, integer=True, help="units in each hidden layer of M1's VAE (0: hidden)"),
    "m1_depth": Hyper(0, low=0, high=MAX_DEPTH, integer=True, help="hidden layers of M1's VAE's MLPs (0: depth)"),
}


# ---------------------------------------------------------------- every model's


@dataclass(frozen=True)
class Declared:
    """What a model takes. `loss_weights` reach its loss as tensors, so they may differ between the members of a
    pack; `build_options` reach its constructor and shape its networks, so a pack shares them; a model fitted by
    gradient also takes the OPTIMISER's settings, one fitted by EM does not."""

    summary: str
    loss_weights: dict[str, Hyper]
    build_options: dict[str, Hyper]
    fitted_by: str = "gradient"  # or "em": how train.py fits it

    def hyperparameters(self) -> dict[str, Hyper]:
        return {**self.loss_weights, **self.build_options, **(OPTIMISER if self.fitted_by == "gradient" else {})}

    def trial_epochs(self, hyper: dict, epochs: int) -> int:
        """The epochs a trial trains for a spec's `epochs`: more where a stage trains before them (M1's m1_epochs)."""
        return epochs + int(hyper.get("m1_epochs", 0)) if "m1_epochs" in self.build_options else epochs

    def ignored(self, hyper: dict) -> set[str]:
        """The hyperparameters taken but unused with the options in `hyper` (sigma2 with a Bernoulli likelihood); an
        option missing from `hyper` has its default."""
        taken = self.hyperparameters()
        return {name for name, h in taken.items() if h.applies_if is not None and h.applies_if[0] in taken
                and hyper.get(h.applies_if[0], taken[h.applies_if[0]].default) != h.applies_if[1]}


M2_OPTIONS = {**ARCHITECTURE, **LIKELIHOOD, **KL_WARMUP, **ALPHA_SCALE, **WEIGHTING, **PRETRAIN}
M2_WEIGHTS = {**ALPHA, **SIGMA2}

MODELS: dict[str, Declared] = {
    "baseline": Declared("the classifier alone, trained on labelled data only", {},
                         {"hidden": ARCHITECTURE["hidden"], "network": ARCHITECTURE["network"]}),
    "m1": Declared("Kingma's M1: a VAE, then a classifier (mlp, logistic or svm) on the means of q(z|x)", dict(SIGMA2), {
        **ARCHITECTURE, **LIKELIHOOD, **STAGES, **M1_NETWORK,
        "classifier": Hyper("mlp", choices=("mlp", "logistic", "svm"), help="the classifier on the features"),
    }),
    "m2": Declared("Kingma's M2: VAE with the label as a latent, alpha-weighted classifier", M2_WEIGHTS, M2_OPTIONS),
    "m1m2": Declared("Kingma's M1+M2: M2 on the latent features of an M1 VAE trained first in the same trial",
                     {**ALPHA, "sigma2": replace(SIGMA2["sigma2"], applies_if=None)}, {  # M2 here is always Gaussian
        **ARCHITECTURE, **LIKELIHOOD, **STAGES, **M1_NETWORK,
        "features": Hyper(50, low=1, high=MAX_WIDTH, integer=True, help="size of M1's z1, the features M2 models"),
        "m2_hidden": Hyper(0, low=0, high=MAX_WIDTH, integer=True, help="units in each hidden layer of M2 on the features (0: hidden)"),
        "drop_inactive": Hyper(0.0, low=0.0, help="leave out of M2 the features whose q(z1|x) mean has a std over x at "
                                                  "most this (Kingma's code: 0.1); 0: M2 models every feature"),
        "feature_variance": Hyper("sigma2", choices=("sigma2", "learned"),
                                  help="p(z1|y,z2): variance sigma2, or one per dimension that M2's decoder outputs (Kingma's code)"),
        **KL_WARMUP, **ALPHA_SCALE, **WEIGHTING, **PRETRAIN,
    }),
    "adgm": Declared("Maaløe's auxiliary deep generative model, k Monte Carlo samples (mc_samples)", {
        **M2_WEIGHTS,
        "weight_prior": Hyper(0.0, low=0.0, high=1e6, help="weight of -log N(W | 0, I) / N_u in the loss, W every weight matrix "
                                                           "(Maaløe's code: 1; 0: no prior)"),
    }, {
        **ARCHITECTURE, **ACTIVATION, **LIKELIHOOD, **ALPHA_SCALE, **WEIGHTING,
        "auxiliary": Hyper(100, low=1, high=MAX_WIDTH, integer=True, help="size of the auxiliary a"),
        "mc_samples": Hyper(1, low=1, high=MAX_SAMPLES, integer=True, help="Monte Carlo samples of a and z (the paper: 1 and 10)"),
        "generative_a": Hyper("prior", choices=("prior", "conditional"), help="p(a) = N(0, I), or p(a|x,y,z)"),
        "z_given_a": Hyper("no", choices=("no", "yes"), help="q(z|y,x), or q(z|a,y,x)"),
    }),
    "jurasinski": Declared("Jurasiński's 'ours': p(y|z) on the latent, labelled bound weighted by lam", {**LAMBDA, **SIGMA2},
                           {**ARCHITECTURE, **LIKELIHOOD, **WEIGHTING, **PRETRAIN}),
    "jurasinski_simplified": Declared("Jurasiński's 'ours, simplified': a VAE and p(y|z) trained together, weighted by lam",
                                      {**LAMBDA, **SIGMA2}, {**ARCHITECTURE, **LIKELIHOOD, **WEIGHTING, **PRETRAIN}),
    "optimized_elbo": Declared("Raj's Optimized-ELBO: M2 + label smoothing (epsilon), entropy penalty (beta), mutual information (gamma)", {
        **M2_WEIGHTS,
        "beta": Hyper(0.0, low=0.0, help="entropy penalty on q(y|x) for unlabelled data"),
        "gamma": Hyper(0.0, low=0.0, help="weight of the mutual information I(y; x)"),
        "epsilon": Hyper(0.0, low=0.0, high=0.5, help="label smoothing"),
        "temperature": Hyper(1.0, low=0.01, high=100.0, help="the Gumbel-softmax draw's temperature tau (Raj gives none)",
                             applies_if=("label_sampling", "gumbel")),
    }, {
        **M2_OPTIONS,
        "posterior": Hyper("xy", choices=("xy", "x"), help="q(z|X, y) as M2 (his Eq. 6), or q(z|X) as his Eq. 5 and §3.4"),
        "label_sampling": Hyper("enumerate", choices=("enumerate", "gumbel"),
                                help="the unlabelled expectation over q(y|X): summed over labels, or one Gumbel-softmax draw"),
        "labelled_kl": Hyper("smoothed", choices=("smoothed", "section_3_4", "section_3_6"),
                             help="the labelled bound's label terms: -KL(p_eps||p(y)), + -KL(q||p(y)) (§3.4), or §3.6's"),
    }),
    "m2_adversarial": Declared("M2 with an adversary that predicts y from z', played against the encoder", {
        **M2_WEIGHTS, "adversary": Hyper(1.0, low=0.0, help="weight of the adversary's cross-entropy in the game"),
    }, M2_OPTIONS),
    "ssgmm": Declared("semi-supervised Gaussian mixture fitted by EM (epochs are EM iterations)", {}, {
        "covariance": Hyper("full", choices=("full", "diag"), help="full or diagonal covariance per class"),
        "cov_floor": Hyper(1e-3, low=0.0, help="added to every variance: keeps covariances invertible"),
    }, fitted_by="em"),
}


def of(model: str) -> dict[str, Hyper]:
    """Every hyperparameter `model` takes, with its default: `hyperparameters.of("m2")`."""
    return MODELS[model].hyperparameters()
