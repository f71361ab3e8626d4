"""M1+M2 (Kingma et al. 2014): M2 trained on the latent features of an M1 VAE.

One trial, two stages: while progress < vae_fraction the M1 VAE learns q(z1|x) on all x; then
the VAE is fixed and M2 (Gaussian likelihood, variance sigma2) models z1 ~ q(z1|x) with its own
label and latent z2. Prediction: M2's q(y | z1 = mean of q(z1|x)). `feature_variance: learned` gives
p(z1|y,z2) a variance per dimension that M2's decoder outputs beside the mean, as Kingma's code does
(dpkingma/nips14-ssl, anglepy/models/VAE_YZ_X.py:85-89, out_logvar_w); sigma2 then weighs nothing of M2's.

M1M2 takes every hyperparameter of M2 and hands it on; `network` and `likelihood` are M1's (on the
images), while M2 on the features is always an MLP (of `depth` hidden layers, as M1's) with a
Gaussian likelihood, so sigma2 always applies (to M2, and to M1 when it is Gaussian too). M2's
schedules (kl_warmup, pretrain) count from the start of its own stage.
"""
from __future__ import annotations


import torch

from .base import Batch, Model, Schedule
from .bounds import reparameterise
from .m1 import VAE
from .m2 import LEARNED_VARIANCE, M2
from .networks import Network
from .noise import fold_in, normal


class M1M2(Model):
    name = "m1m2"
    enumerates = True
    built_on = ("m2",)

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, network: str = "mlp", depth: int = 1,
                 likelihood: str = "bernoulli", vae_fraction: float = 0.5, features: int = 50, kl_warmup: int = 0,
                 alpha_scale: str = "batch", weighting: str = "part_means", pretrain: float = 0.0, feature_variance: str = "sigma2"):
        super().__init__(input_shape, n_classes)
        self.vae_fraction = vae_fraction
        self.m1 = VAE(Network(network, self.input_shape, hidden, depth), features, likelihood)
        feature_likelihood = LEARNED_VARIANCE if feature_variance == "learned" else "gaussian"
        self.m2 = M2((features,), n_classes, hidden, latent, "mlp", depth, likelihood=feature_likelihood, kl_warmup=kl_warmup,
                     alpha_scale=alpha_scale, weighting=weighting, pretrain=pretrain)

    def features(self, x: torch.Tensor, key: torch.Tensor | None = None) -> torch.Tensor:
        """z1 ~ q(z1|x), or its mean without a key; never a path for gradients into M1."""
        mu, log_var = self.m1.encoder(x)
        z1 = mu if key is None else reparameterise(mu, log_var, normal(key, mu.shape))
        return z1.detach()

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.m2.classify(self.features(x))

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        if schedule.progress < self.vae_fraction:
            return self.m1.loss(batch, fold_in(key, 0), weights)
        on_features = Batch(self.features(batch.x_labelled, fold_in(key, 1)), batch.y_labelled,
                            self.features(batch.x_unlabelled, fold_in(key, 2)))
        return self.m2(on_features, weights, self.m2_stage(schedule), fold_in(key, 3))

    def m2_stage(self, schedule: Schedule) -> Schedule:
        """The schedule as M2's stage sees it: its epochs counted from the stage's start."""
        if self.vae_fraction >= 1:
            return schedule
        start = self.vae_fraction * schedule.epochs
        return schedule._replace(epoch=schedule.epoch - start, epochs=schedule.epochs - start)
