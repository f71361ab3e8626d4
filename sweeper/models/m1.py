"""M1 (Kingma et al. 2014): a VAE trained on all data, then a classifier on the means of q(z|x).

Both stages run in one trial: while progress < vae_fraction (or, with m1_epochs, for that many epochs
before the spec's epochs) the loss is the VAE's -mean(E[log p(x|z)] - KL) over labelled and unlabelled
x; afterwards the encoder is fixed and the loss is the classifier's on the means of q(z|x_l). The VAE
may have widths of its own (m1_hidden, m1_depth: Kingma's M1 has two hidden layers). The classifier is
an MLP, logistic regression, or a linear SVM (multiclass hinge with L2), Kingma's M1+TSVM stand-in; the
last two are the same models scikit-learn fits, trained here in torch so they share the training step.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Batch, Model, Schedule
from .bounds import kl_standard_normal, reparameterise
from .m2 import log_likelihood, mean_of
from .networks import Network, mlp
from .noise import fold_in, normal

SVM_L2 = 1e-3


class Stages:
    """When M1's VAE hands over to the next stage (a classifier, or M2): after m1_epochs epochs, the next
    stage then training the rest of the trial (the spec's epochs); or, with m1_epochs 0, after the share
    vae_fraction of the trial's epochs."""

    def __init__(self, vae_fraction: float, m1_epochs: int):
        self.vae_fraction, self.m1_epochs = vae_fraction, m1_epochs

    def training_vae(self, schedule: Schedule) -> bool:
        if self.m1_epochs:
            return schedule.epoch < self.m1_epochs
        return schedule.progress < self.vae_fraction  # as a fraction, as before m1_epochs (no rounding moves the switch)

    def after_vae(self, schedule: Schedule) -> Schedule:
        """The schedule as the next stage sees it: its epochs counted from its start."""
        if not self.m1_epochs and self.vae_fraction >= 1:
            return schedule
        start = self.m1_epochs or self.vae_fraction * schedule.epochs
        return schedule._replace(epoch=schedule.epoch - start, epochs=schedule.epochs - start)


def vae_network(network: str, input_shape, hidden: int, depth: int, m1_hidden: int, m1_depth: int) -> Network:
    """M1's VAE's networks: its own widths where given (M1_NETWORK), else the model's."""
    return Network(network, input_shape, m1_hidden or hidden, m1_depth or depth)


class VAE(nn.Module):
    """q(z|x) and p(x|z): the unsupervised half of M1, also M1+M2's feature extractor."""

    def __init__(self, net: Network, latent: int, likelihood: str):
        super().__init__()
        self.likelihood = likelihood
        self.encoder = net.encoder(latent=latent)
        self.decoder = net.decoder(latent)

    def bound(self, x: torch.Tensor, key: torch.Tensor, weights: dict):
        """(E[log p(x|z)] - KL, log p(x|z), KL, z) per example: one draw of z ~ q(z|x)."""
        mu, log_var = self.encoder(x)
        z = reparameterise(mu, log_var, normal(key, mu.shape))
        log_px = log_likelihood(self.likelihood, self.decoder(z), x, weights)
        kl = kl_standard_normal(mu, log_var)
        return log_px - kl, log_px, kl, z

    def loss(self, batch: Batch, key: torch.Tensor, weights: dict):
        x = torch.cat([batch.x_labelled, batch.x_unlabelled])
        bound, log_px, kl, _ = self.bound(x, key, weights)
        return -bound.mean(), {"recon": -log_px.mean(), "kl": kl.mean()}


class M1(Model):
    name = "m1"

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, network: str = "mlp", depth: int = 1,
                 likelihood: str = "bernoulli", vae_fraction: float = 0.5, m1_epochs: int = 0, m1_hidden: int = 0,
                 m1_depth: int = 0, classifier: str = "mlp"):
        super().__init__(input_shape, n_classes)
        self.stages, self.classifier_kind = Stages(vae_fraction, m1_epochs), classifier
        self.vae = VAE(vae_network(network, self.input_shape, hidden, depth, m1_hidden, m1_depth), latent, likelihood)
        self.head = mlp([latent, hidden, n_classes]) if classifier == "mlp" else nn.Linear(latent, n_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.vae.encoder(x)[0]

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | x) of the VAE (y plays no part)."""
        return self.vae.encoder(x)

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean of the VAE's p(x | z)."""
        return mean_of(self.vae.likelihood, self.vae.decoder(z))

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).float()  # a linear head's scores in bfloat16 under the step's precision

    def reads_unlabelled_at(self, schedule: Schedule) -> bool:
        return self.stages.training_vae(schedule)  # the classifier's stage reads the labelled batch only

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        if self.stages.training_vae(schedule):
            return self.vae.loss(batch, fold_in(key, 0), weights)
        scores = self.head(self.features(batch.x_labelled).detach()).float()
        if self.classifier_kind == "svm":  # Crammer-Singer multiclass hinge, L2 on the weights
            true = scores.gather(-1, batch.y_labelled[:, None])
            margins = (scores - true + 1.0).scatter(-1, batch.y_labelled[:, None], 0.0)
            loss = margins.amax(-1).clamp_min(0).mean() + SVM_L2 * self.head.weight.float().square().sum()
            return loss, {"ce": F.cross_entropy(scores, batch.y_labelled)}
        cross_entropy = F.cross_entropy(scores, batch.y_labelled)
        return cross_entropy, {"ce": cross_entropy}
