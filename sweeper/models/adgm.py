"""The auxiliary deep generative model (Maaløe et al. 2016).

Generative: p(x|y,z), p(z) = N(0, I), p(y) uniform, and p(a) = N(0, I) as in the poster
(generative_a: prior) or p(a|x,y,z) as in the full paper (generative_a: conditional).
Inference:  q(a|x), q(z|y,x) (poster) or q(z|a,y,x) (z_given_a: yes), q(y|a,x).

With a ~ q(a|x) and z ~ q(z|.), for k Monte Carlo samples (mc_samples) averaged:
  L(x, y) = E[log p(x|y,z) + log p(y) - KL(q(z|.) || p(z)) + log p(a|.) - log q(a|x)]
  U(x)    = E_q(a|x)[sum_y q(y|a,x) L_a(x, y) + H(q(y|a,x))]
  Loss    = -mean L - mean U + alpha * E_q(a|x)[-log q(y|a,x)] - weight_prior * log N(W | 0, I) / N_u
(the last term, off by default, is the prior on the weight matrices W of the authors' code, per unlabelled point).
Prediction averages q(y|a,x) over mc_samples draws of a (a fixed key, so evaluation repeats).
"""
from __future__ import annotations

import math

import torch

from .base import Batch, Model, Schedule
from .bounds import entropy, kl_standard_normal, log_normal, log_weight_prior, reparameterise, semi_supervised_loss
from .enumeration import one_hot, over_labels
from .m2 import log_likelihood, mean_of, scaled_alpha
from .networks import ConditionalMLP, GaussianEncoder, Network
from .noise import fold_in, key, normal


class ADGM(Model):
    name = "adgm"
    enumerates = True

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, network: str = "mlp", depth: int = 1,
                 likelihood: str = "bernoulli", alpha_scale: str = "batch", auxiliary: int = 100, mc_samples: int = 1,
                 generative_a: str = "prior", z_given_a: str = "no", weighting: str = "part_means", activation: str = "softplus"):
        super().__init__(input_shape, n_classes)
        self.latent, self.auxiliary, self.samples, self.likelihood = latent, auxiliary, mc_samples, likelihood
        self.alpha_scale, self.weighting = alpha_scale, weighting
        self.conditional_a, self.z_given_a = generative_a == "conditional", z_given_a == "yes"
        net = Network(network, self.input_shape, hidden, depth, activation)
        self.q_a = net.encoder(latent=auxiliary)  # q(a|x)
        self.q_z = net.encoder(n_classes, *([auxiliary] if self.z_given_a else []), latent=latent)  # q(z|y,x[,a])
        # q(y|a,x): a trunk for x, then an MLP over (x features, a); with `depth` hidden layers, as every MLP here
        # (the authors' code gives q(y|a,x) and p(a|.) the two of its other networks: qy_hid, pa_hid, run_mnist.py:27-28)
        trunk, n = net.features()
        mlp_depth = depth if network == "mlp" else 1  # with a CNN, one hidden layer over its trunk, as before
        self.q_y_trunk, self.q_y_body = trunk, ConditionalMLP((n, auxiliary), hidden, n_classes, net.activation, mlp_depth)
        self.decoder = net.decoder(latent, n_classes)  # p(x|y,z)
        if self.conditional_a:
            self.p_a = GaussianEncoder((self.n_features, n_classes, latent), hidden, auxiliary, depth=mlp_depth,
                                       activation=net.activation)  # p(a|x,y,z)
        self.log_prior_y = -math.log(n_classes)

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z | y, x), or q(z | a, y, x) at the mean of q(a | x)."""
        if self.z_given_a:
            return self.q_z(x, y, self.q_a(x)[0])
        return self.q_z(x, y)

    def auxiliary_posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(a | x): mean and log-variance."""
        return self.q_a(x)

    def generate(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean of p(x | y, z)."""
        return mean_of(self.likelihood, self.decoder(z, y))

    def label_logits(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        return self.q_y_body(self.q_y_trunk(x), a)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        a, _ = self.auxiliary_sample(x, key(0))
        return self.label_logits(x.unsqueeze(0), a).softmax(-1).mean(0).clamp_min(1e-12).log()

    def auxiliary_sample(self, x: torch.Tensor, k: torch.Tensor):
        """a ~ q(a|x), (S, B, A), and log q(a|x)."""
        mu, log_var = self.q_a(x)
        a = reparameterise(mu, log_var, normal(k, (self.samples, *mu.shape)))
        return a, log_normal(a, mu, log_var)

    def bound(self, x, a, y, eps_z, weights):
        """Every term of L that depends on y: log p(x|y,z) + log p(y) - KL_z [+ log p(a|x,y,z)]."""
        mu, log_var = self.q_z(x, y, a) if self.z_given_a else self.q_z(x, y)
        z = reparameterise(mu, log_var, eps_z)
        log_px = log_likelihood(self.likelihood, self.decoder(z, y), x, weights)
        kl = kl_standard_normal(mu, log_var)
        value = log_px + self.log_prior_y - kl
        if self.conditional_a:
            a_mu, a_log_var = self.p_a(x, y, z)
            value = value + log_normal(a, a_mu, a_log_var)
        return value, log_px, kl

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, k: torch.Tensor):
        x_l, x_u, y_l = batch.x_labelled, batch.x_unlabelled, batch.y_labelled
        prior_a = (lambda a: 0.0) if self.conditional_a else (lambda a: log_normal(a, torch.zeros_like(a), torch.zeros_like(a)))

        a_l, log_qa_l = self.auxiliary_sample(x_l, fold_in(k, 0))
        eps_l = normal(fold_in(k, 1), (self.samples, x_l.shape[0], self.latent))
        value_l, log_px_l, kl_l = self.bound(x_l.unsqueeze(0), a_l, one_hot(y_l, self.n_classes, x_l.dtype), eps_l, weights)
        labelled = (value_l + prior_a(a_l) - log_qa_l).mean(0)
        logits_l = self.label_logits(x_l.unsqueeze(0), a_l)
        cross_entropy = -logits_l.log_softmax(-1).gather(-1, y_l.expand(self.samples, -1)[..., None]).squeeze(-1).mean(0)

        a_u, log_qa_u = self.auxiliary_sample(x_u, fold_in(k, 2))
        eps_u = normal(fold_in(k, 3), (self.samples, x_u.shape[0], self.n_classes, self.latent))
        every_label, log_px_u, kl_u = over_labels(
            lambda x, a, y, label: self.bound(x, a, y, eps_u[:, :, label], weights),
            self.n_classes, x_u.unsqueeze(0), a_u, enumeration=self.enumeration,
        )  # (S, B_u, K); x_u's projections are computed once and broadcast over samples and labels
        logits_u = self.label_logits(x_u.unsqueeze(0), a_u)
        q_y = logits_u.softmax(-1)
        unlabelled = ((q_y * every_label).sum(-1) + entropy(logits_u) + prior_a(a_u) - log_qa_u).mean(0)

        loss = semi_supervised_loss(-labelled + scaled_alpha(weights, schedule, self.alpha_scale) * cross_entropy, -unlabelled,
                                    self.weighting, schedule.labelled_share)
        loss = loss - weights["weight_prior"] * log_weight_prior(self) / schedule.unlabelled_count
        return loss, {
            "recon": -(log_px_l.mean() + (q_y * log_px_u).sum(-1).mean()),
            "kl": kl_l.mean() + (q_y * kl_u).sum(-1).mean(),
            "ce": cross_entropy.mean(),
        }
