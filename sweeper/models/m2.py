"""M2 (Kingma et al. 2014): p(x, y, z) = p(y) p(z) p(x | y, z), with q(z | x, y) and q(y | x).

Labelled:   L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z))
Unlabelled: U(x)    = sum_y q(y|x) L(x, y) + H(q(y|x))
Objective:  J = sum_labelled [-L(x, y) + alpha CE(q(y|x), y)] + sum_unlabelled [-U(x)], through
            bounds.semi_supervised_loss: weighting part_means (today's batch means of each part,
            Jurasiński's equal batches) or dataset_sum (J per training point, Kingma's).

Options: a Bernoulli or a Gaussian likelihood with variance sigma2 (Jurasiński §3.1: sigma2
weighs reconstruction against the KL); KL warm-up over the first kl_warmup epochs; alpha per
example (alpha_scale: batch) or Kingma's alpha x N / N_labelled (alpha_scale: dataset).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from .base import Batch, Model, Schedule
from .bounds import (
    bernoulli_log_likelihood,
    entropy,
    gaussian_log_likelihood,
    gaussian_log_likelihood_learned,
    kl_standard_normal,
    reparameterise,
    semi_supervised_loss,
)
from .enumeration import one_hot, over_labels
from .networks import Network
from .noise import fold_in, normal, normal_at



LEARNED_VARIANCE = "gaussian_learned"  # a Gaussian whose decoder outputs a log-variance per dimension beside the mean


def log_likelihood(kind: str, decoded, x: torch.Tensor, weights: dict, observed: torch.Tensor | None = None) -> torch.Tensor:
    """log p(x | decoded) for the model's likelihood (decoded: logits, means, or (mean, log-variance)); `observed`:
    a 0/1 mask of the dimensions modelled, for the Gaussian likelihoods only (M1+M2's M2 on M1's active features)."""
    if kind == "bernoulli":
        if observed is not None:
            raise ValueError("a mask of observed dimensions is for the Gaussian likelihoods")
        return bernoulli_log_likelihood(decoded, x)
    if kind == LEARNED_VARIANCE:
        return gaussian_log_likelihood_learned(*decoded, x, observed)
    return gaussian_log_likelihood(decoded, x, weights["sigma2"], observed)


def mean_of(kind: str, decoded) -> torch.Tensor:
    """The mean of p(x | decoded): sigmoid of the logits (Bernoulli), or the Gaussian's mean itself."""
    if kind == LEARNED_VARIANCE:
        return decoded[0]
    return decoded.sigmoid() if kind == "bernoulli" else decoded


def scaled_alpha(weights: dict, schedule: Schedule, scale: str) -> torch.Tensor:
    """alpha as given, or Kingma's alpha x N / N_labelled."""
    return weights["alpha"] * (schedule.data_ratio if scale == "dataset" else 1.0)


class Bound(NamedTuple):
    value: torch.Tensor  # L(x, y)
    log_px: torch.Tensor
    kl: torch.Tensor
    z: torch.Tensor


class M2(Model):
    name = "m2"
    enumerates = True

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, network: str = "mlp", depth: int = 1,
                 likelihood: str = "bernoulli", kl_warmup: int = 0, alpha_scale: str = "batch", weighting: str = "part_means",
                 pretrain: float = 0.0, z_given_y: bool = True, masked: bool = False):
        super().__init__(input_shape, n_classes)
        # masked (M1+M2 dropping M1's inactive features): which dimensions of x p(x|y,z) models, set by its owner
        self.register_buffer("observed", torch.ones(self.n_features) if masked else None)
        self.latent, self.likelihood, self.kl_warmup, self.alpha_scale = latent, likelihood, kl_warmup, alpha_scale
        self.weighting, self.pretrain = weighting, pretrain
        net = Network(network, self.input_shape, hidden, depth)
        self.encoder = net.encoder(*([n_classes] if z_given_y else []), latent=latent)  # q(z|x,y), or q(z|x) (Raj's Eq. 5)
        # p(x|y,z); with a learned variance (M1+M2's p(z1|y,z2), Kingma), a Gaussian head as the encoders have
        self.decoder = net.gaussian_decoder(latent, n_classes) if likelihood == LEARNED_VARIANCE else net.decoder(latent, n_classes)
        self.classifier = net.classifier(n_classes)  # q(y|x)
        self.log_prior_y = -math.log(n_classes)  # p(y) uniform

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x, y): mean and log-variance, for one-hot y."""
        return self.encoder(x, y)

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | y, z): pixel probabilities (Bernoulli) or the Gaussian's mean."""
        return mean_of(self.likelihood, self.decoder(z, y))

    def kl_weight(self, schedule: Schedule) -> float:
        return min(1.0, (schedule.epoch + 1) / self.kl_warmup) if self.kl_warmup else 1.0

    def elbo(self, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor, weights: dict, kl_weight: float = 1.0) -> Bound:
        """L(x, y) for one-hot y, with its reconstruction and KL terms; x and y broadcast."""
        mu, log_var = self.encoder(x, y)
        z = reparameterise(mu, log_var, eps)
        log_px = log_likelihood(self.likelihood, self.decoder(z, y), x, weights, self.observed)
        kl = kl_standard_normal(mu, log_var)
        return Bound(log_px + self.log_prior_y - kl_weight * kl, log_px, kl, z)

    def every_label(self, x: torch.Tensor, key: torch.Tensor, weights: dict, kl_weight: float = 1.0) -> tuple[torch.Tensor, ...]:
        """(L, log p(x|y,z), KL) of x with every label, each (B, K): one batched pass."""
        eps = normal(key, (x.shape[0], self.n_classes, self.latent))
        value, log_px, kl, _ = over_labels(lambda x, y, label: self.elbo(x, y, eps[:, label], weights, kl_weight), self.n_classes, x,
                                          enumeration=self.enumeration)
        return value, log_px, kl

    def alpha(self, weights: dict, schedule: Schedule) -> torch.Tensor:
        return scaled_alpha(weights, schedule, self.alpha_scale)

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        labelled, unlabelled, parts, _ = self.objective(batch, weights, schedule, key)
        return self.combine(labelled, unlabelled, schedule), parts

    def combine(self, labelled: torch.Tensor, unlabelled: torch.Tensor, schedule: Schedule) -> torch.Tensor:
        """The loss from per-example labelled and unlabelled losses, weighted as the model's `weighting` says."""
        return semi_supervised_loss(labelled, unlabelled, self.weighting, schedule.labelled_share, schedule.progress < self.pretrain)

    def objective(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        """(per-example labelled loss -L + alpha CE, per-example unlabelled loss -U, parts, the labelled
        Bound): models built on M2 add their terms before combining."""
        x_l, x_u = batch.x_labelled, batch.x_unlabelled
        # the draw every_label would give (example, true label), and only that: element [i, y_i, :]
        # of a (B, K, latent) draw
        rows = torch.arange(x_l.shape[0], device=x_l.device) * self.n_classes + batch.y_labelled
        eps_l = normal_at(fold_in(key, 0), rows[:, None] * self.latent + torch.arange(self.latent, device=x_l.device))
        kl_weight = self.kl_weight(schedule)
        labelled = self.elbo(x_l, one_hot(batch.y_labelled, self.n_classes, x_l.dtype), eps_l, weights, kl_weight)

        every_label, log_px_u, kl_u = self.every_label(x_u, fold_in(key, 1), weights, kl_weight)
        logits_u = self.classifier(x_u)
        q_y = logits_u.softmax(-1)
        unlabelled = (q_y * every_label).sum(-1) + entropy(logits_u)

        cross_entropy = F.cross_entropy(self.classifier(x_l), batch.y_labelled, reduction="none")
        parts = {
            "recon": -(labelled.log_px.mean() + (q_y * log_px_u).sum(-1).mean()),
            "kl": labelled.kl.mean() + (q_y * kl_u).sum(-1).mean(),
            "ce": cross_entropy.mean(),
        }
        return -labelled.value + self.alpha(weights, schedule) * cross_entropy, -unlabelled, parts, labelled
