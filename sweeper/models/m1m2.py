"""M1+M2 (Kingma et al. 2014): M2 trained on the latent features of an M1 VAE.

One trial, two stages (m1.Stages: a share vae_fraction of the epochs, or m1_epochs before the spec's):
the M1 VAE learns q(z1|x) on all x; then the VAE is fixed and M2 (Gaussian likelihood, variance
sigma2) models z1 ~ q(z1|x) with its own label and latent z2. Prediction: M2's q(y | z1 = mean of q(z1|x)). `feature_variance: learned` gives
p(z1|y,z2) a variance per dimension that M2's decoder outputs beside the mean, as Kingma's code does
(dpkingma/nips14-ssl, anglepy/models/VAE_YZ_X.py:85-89, out_logvar_w); sigma2 then weighs nothing of M2's.

M1M2 takes every hyperparameter of M2 and hands it on; `network` and `likelihood` are M1's (on the
images), while M2 on the features is always an MLP (of `depth` hidden layers of `hidden` units, or
m2_hidden; M1's the same unless m1_hidden, m1_depth say otherwise) with a Gaussian likelihood, so
sigma2 always applies (to M2, and to M1 when it is Gaussian too). M2's schedules (kl_warmup, pretrain) count from the start
of its own stage; with m1_epochs that stage is the spec's whole epochs, after M1's own.

`drop_inactive` (Kingma's code: 0.1, dpkingma/nips14-ssl learn_yz_x_ss.py:61-62) leaves out of M2 the
features whose mean under q(z1|x) varies little over the data: standard deviation over the unlabelled
x at most the threshold. Shapes stay fixed (configurations pack): a dropped feature is zero in M2's
inputs, so its weights there get no gradient, and left out of p(z1|y,z2)'s sum, which is dropping it.
The mask is a buffer, made from M1 as M2's stage begins (M1 is fixed from then on) and checkpointed.
"""
from __future__ import annotations


import torch

from .base import Batch, Model, Schedule
from .bounds import reparameterise
from .m1 import VAE, Stages, vae_network
from .m2 import LEARNED_VARIANCE, M2
from .noise import fold_in, normal

CHUNK = 4_096  # rows of x through M1's encoder at once when measuring the features: its activations stay small


def active_features(means: torch.Tensor, threshold: float) -> torch.Tensor:
    """1 for each feature whose mean under q(z1|x) has a standard deviation over the rows of `means` above
    `threshold`, else 0 (Kingma's np.std: the population's, no Bessel correction)."""
    return (means.std(0, correction=0) > threshold).to(means.dtype)


class M1M2(Model):
    name = "m1m2"
    enumerates = True
    built_on = ("m2",)


    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, network: str = "mlp", depth: int = 1,
                 likelihood: str = "bernoulli", vae_fraction: float = 0.5, m1_epochs: int = 0, m1_hidden: int = 0, m1_depth: int = 0,
                 features: int = 50, m2_hidden: int = 0, drop_inactive: float = 0.0, kl_warmup: int = 0, alpha_scale: str = "batch",
                 weighting: str = "part_means", pretrain: float = 0.0, feature_variance: str = "sigma2"):
        super().__init__(input_shape, n_classes)
        self.stages, self.drop_inactive = Stages(vae_fraction, m1_epochs), drop_inactive
        self.m1 = VAE(vae_network(network, self.input_shape, hidden, depth, m1_hidden, m1_depth), features, likelihood)
        feature_likelihood = LEARNED_VARIANCE if feature_variance == "learned" else "gaussian"
        self.m2 = M2((features,), n_classes, m2_hidden or hidden, latent, "mlp", depth, likelihood=feature_likelihood, kl_warmup=kl_warmup,
                     alpha_scale=alpha_scale, weighting=weighting, pretrain=pretrain, masked=bool(drop_inactive))

    def features(self, x: torch.Tensor, key: torch.Tensor | None = None) -> torch.Tensor:
        """z1 ~ q(z1|x), or its mean without a key, with dropped features zeroed; never a path for gradients into M1."""
        mu, log_var = self.m1.encoder(x)
        z1 = mu if key is None else reparameterise(mu, log_var, normal(key, mu.shape))
        return z1.detach() if self.m2.observed is None else z1.detach() * self.m2.observed

    def refresh_due(self, schedule: Schedule) -> bool:
        """M2's features are chosen once, as its stage begins (Model.refresh_due)."""
        starts_m2 = self.stages.training_vae(schedule._replace(epoch=schedule.epoch - 1)) and not self.stages.training_vae(schedule)
        return self.m2.observed is not None and starts_m2

    def refresh(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The features M2 models, from M1 as it is now and the unlabelled x (Model.refresh)."""
        if self.m2.observed is None:
            return {}
        means = torch.cat([self.m1.encoder(chunk)[0] for chunk in x.split(CHUNK)])
        return {"m2.observed": active_features(means, self.drop_inactive)}

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.m2.classify(self.features(x))

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        if self.stages.training_vae(schedule):
            return self.m1.loss(batch, fold_in(key, 0), weights)
        on_features = Batch(self.features(batch.x_labelled, fold_in(key, 1)), batch.y_labelled,
                            self.features(batch.x_unlabelled, fold_in(key, 2)))
        return self.m2(on_features, weights, self.stages.after_vae(schedule), fold_in(key, 3))
