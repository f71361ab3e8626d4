"""Jurasiński's "ours, simplified": p(x, y | z) = p(x | z) p(y | z).

Labelled:   L(x, y) = E_q(z|x)[log p(x|z) + log p(y|z)] - KL(q(z|x) || p(z))
Unlabelled: U(x)    = E_q(z|x)[log p(x|z)] - KL(q(z|x) || p(z))      (a plain VAE bound)
Objective:  sum_labelled [-lam L] + sum_unlabelled [-U]
            = sum_labelled lam [-VAE(x) + CE(p(y|z), y)] + sum_unlabelled [-VAE(x)],
            weighted by bounds.semi_supervised_loss (part_means: -(lam * mean L + mean U))
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, Model, Schedule
from .bounds import semi_supervised_loss
from .m1 import VAE
from .m2 import mean_of
from .networks import Network, mlp
from .noise import fold_in


class JurasinskiSimplified(Model):
    name = "jurasinski_simplified"

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, network: str = "mlp", depth: int = 1,
                 likelihood: str = "bernoulli", weighting: str = "part_means", pretrain: float = 0.0):
        super().__init__(input_shape, n_classes)
        self.weighting, self.pretrain = weighting, pretrain
        self.vae = VAE(Network(network, self.input_shape, hidden, depth), latent, likelihood)  # q(z|x), p(x|z)
        self.label_given_z = mlp([latent, hidden, n_classes])  # p(y|z)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.label_given_z(self.vae.encoder(x)[0])

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): mean and log-variance (y plays no part)."""
        return self.vae.encoder(x)

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | z): this model's x does not depend on y given z."""
        return mean_of(self.vae.likelihood, self.vae.decoder(z))

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        vae_l, log_px_l, kl_l, z_l = self.vae.bound(batch.x_labelled, fold_in(key, 0), weights)
        vae_u, log_px_u, kl_u, _ = self.vae.bound(batch.x_unlabelled, fold_in(key, 1), weights)
        cross_entropy = F.cross_entropy(self.label_given_z(z_l), batch.y_labelled, reduction="none")  # -log p(y|z)
        loss = semi_supervised_loss(weights["lam"] * (-vae_l + cross_entropy), -vae_u, self.weighting, schedule.labelled_share,
                                    schedule.progress < self.pretrain)
        return loss, {"recon": -(log_px_l.mean() + log_px_u.mean()), "kl": kl_l.mean() + kl_u.mean(), "ce": cross_entropy.mean()}
