"""M2 (Kingma et al. 2014): p(x, y, z) = p(y) p(z) p(x | y, z), with q(z | x, y) and q(y | x).

Labelled:   L(x, y) = E_q(z|x,y)[log p(x|y,z)] + log p(y) - KL(q(z|x,y) || p(z))
Unlabelled: U(x)    = sum_y q(y|x) L(x, y) + H(q(y|x))
Loss (per-example means over each batch):
            -mean L(x, y) - mean U(x) + alpha * mean CE(q(y|x), y)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .base import Batch, Model
from .parts import (
    ConditionalMLP,
    GaussianEncoder,
    Hyper,
    bernoulli_log_likelihood,
    entropy,
    enumerate_labels,
    fold_in,
    kl_standard_normal,
    mlp,
    normal,
    one_hot,
    reparameterise,
)


class M2(Model):
    name = "m2"
    summary = "Kingma's M2: VAE with the label as a latent, alpha-weighted classifier"
    weights = {"alpha": Hyper(0.1, low=0.0, help="weight of the labelled cross-entropy")}

    def __init__(self, n_features: int, n_classes: int, hidden: int, latent: int):
        super().__init__(n_features, n_classes)
        self.latent = latent
        self.encoder = GaussianEncoder((n_features, n_classes), hidden, latent)  # q(z|x,y)
        self.decoder = ConditionalMLP((latent, n_classes), hidden, n_features)  # p(x|y,z), logits
        self.classifier = mlp([n_features, hidden, n_classes])  # q(y|x)
        self.log_prior_y = -math.log(n_classes)  # p(y) uniform

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def elbo(self, x: torch.Tensor, y: torch.Tensor, eps: torch.Tensor):
        """L(x, y) for one-hot y, with its reconstruction and KL terms; x and y broadcast."""
        mu, log_var = self.encoder(x, y)
        z = reparameterise(mu, log_var, eps)
        log_px = bernoulli_log_likelihood(self.decoder(z, y), x)
        kl = kl_standard_normal(mu, log_var)
        return log_px + self.log_prior_y - kl, log_px, kl

    def forward(self, batch: Batch, weights: dict[str, torch.Tensor], key: torch.Tensor):
        x_l, x_u = batch.x_labelled, batch.x_unlabelled
        n_l, n_u, k = x_l.shape[0], x_u.shape[0], self.n_classes

        labelled, log_px_l, kl_l = self.elbo(
            x_l, one_hot(batch.y_labelled, k, x_l.dtype), normal(fold_in(key, 0), (n_l, self.latent))
        )

        x_all, y_all = enumerate_labels(x_u, k)  # every label at once: (B_u, 1, D) with (1, K, K)
        every_label, log_px_u, kl_u = self.elbo(x_all, y_all, normal(fold_in(key, 1), (n_u, k, self.latent)))
        logits_u = self.classifier(x_u)
        q_y = logits_u.softmax(-1)
        unlabelled = (q_y * every_label).sum(-1) + entropy(logits_u)

        cross_entropy = F.cross_entropy(self.classifier(x_l), batch.y_labelled)
        loss = -labelled.mean() - unlabelled.mean() + weights["alpha"] * cross_entropy
        parts = {
            "recon": -(log_px_l.mean() + (q_y * log_px_u).sum(-1).mean()),
            "kl": kl_l.mean() + (q_y * kl_u).sum(-1).mean(),
            "ce": cross_entropy,
        }
        return loss, parts
