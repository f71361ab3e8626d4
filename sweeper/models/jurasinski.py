"""Jurasiński's "ours": a classifier p(y | z) on the latent, and conditional generation.

Labelled:   L_our(x, y) = E_q(z|x)[log p(x|y,z) + log p(y|z)] - KL(q(z|x) || p(z))
Unlabelled: U_our(x)    = E_q(z|x)[sum_y p(y|z) log p(x|y,z)] - KL(q(z|x) || p(z))
Objective:  sum_labelled [-lam L_our] + sum_unlabelled [-U_our], weighted by bounds.semi_supervised_loss
            (part_means: -(lam * mean L_our + mean U_our), the thesis' equal batches)
Prediction: p(y | z = mean of q(z|x)).
"""
from __future__ import annotations

import torch

from .base import Batch, Model, Schedule
from .bounds import kl_standard_normal, reparameterise, semi_supervised_loss
from .enumeration import over_labels
from .m2 import log_likelihood, mean_of
from .networks import Network, mlp
from .noise import fold_in, normal



class Jurasinski(Model):
    name = "jurasinski"
    enumerates = True

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, network: str = "mlp", depth: int = 1,
                 likelihood: str = "bernoulli", weighting: str = "part_means", pretrain: float = 0.0):
        super().__init__(input_shape, n_classes)
        self.latent, self.likelihood, self.weighting, self.pretrain = latent, likelihood, weighting, pretrain
        net = Network(network, self.input_shape, hidden, depth)
        self.encoder = net.encoder(latent=latent)  # q(z|x)
        self.decoder = net.decoder(latent, n_classes)  # p(x|y,z)
        self.label_given_z = mlp([latent, hidden, n_classes])  # p(y|z)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.label_given_z(self.encoder(x)[0])

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x): mean and log-variance (y plays no part)."""
        return self.encoder(x)

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | y, z)."""
        return mean_of(self.likelihood, self.decoder(z, y))

    def latent_sample(self, x: torch.Tensor, key: torch.Tensor):
        mu, log_var = self.encoder(x)
        return reparameterise(mu, log_var, normal(key, mu.shape)), kl_standard_normal(mu, log_var)

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        x_l, y_l, x_u = batch.x_labelled, batch.y_labelled, batch.x_unlabelled
        z_l, kl_l = self.latent_sample(x_l, fold_in(key, 0))
        y_onehot = torch.nn.functional.one_hot(y_l, self.n_classes).to(x_l.dtype)
        log_px_l = log_likelihood(self.likelihood, self.decoder(z_l, y_onehot), x_l, weights)
        log_py_l = self.label_given_z(z_l).log_softmax(-1).gather(-1, y_l[:, None]).squeeze(-1)
        labelled = log_px_l + log_py_l - kl_l

        z_u, kl_u = self.latent_sample(x_u, fold_in(key, 1))
        p_y = self.label_given_z(z_u).softmax(-1)
        log_px_u = over_labels(lambda z, x, y, label: log_likelihood(self.likelihood, self.decoder(z, y), x, weights),
                               self.n_classes, z_u, x_u, enumeration=self.enumeration)  # (B_u, K)
        unlabelled = (p_y * log_px_u).sum(-1) - kl_u

        loss = semi_supervised_loss(-weights["lam"] * labelled, -unlabelled, self.weighting, schedule.labelled_share,
                                    schedule.progress < self.pretrain)
        return loss, {
            "recon": -(log_px_l.mean() + (p_y * log_px_u).sum(-1).mean()),
            "kl": kl_l.mean() + kl_u.mean(),
            "ce": -log_py_l.mean(),
        }
