"""Raj's Optimized-ELBO: M2 with smoothed labels, an entropy penalty and mutual information.

Labelled:   L_eps(x, y) = sum_y' p_eps(y'|y) L_cond(x, y') - KL(p_eps(.|y) || p(y))
            with p_eps the label smoothed by epsilon and L_cond = L of M2 without log p(y)
            (at epsilon = 0 this is M2's L(x, y))
Unlabelled: M(x) = U(x) + gamma * I(y; x) - beta * H(q(y|x)),  I over the batch as
            H(mean q(y|x)) - mean H(q(y|x))
Objective:  sum_labelled [-L_eps + alpha CE(q(y|x), p_eps)] + sum_unlabelled [-M], weighted as M2's
            (bounds.semi_supervised_loss); the batch's I(y; x) counts with the unlabelled part.

Where the paper is ambiguous, options (no code was published; the paper decides):
- posterior: `xy`, q(z, y|X) = q(y|X) q(z|X, y) as M2 (his labelled bound, Eq. 6), or `x`, q(z|X) q(y|X)
  as his Eq. (5) and §3.4 write it: z is then drawn once, whatever the label.
- label_sampling: `enumerate`, the expectation over q(y|X) summed exactly over the labels, or `gumbel`,
  one Gumbel-softmax draw of y (§2.7.2) at `temperature` (the paper gives none), from the key.
- labelled_kl: the labelled bound's label terms. `smoothed` (default): - KL(p_eps || p(y)), the classifier
  trained by the alpha-weighted cross-entropy against p_eps; `section_3_4`: also - KL(q(y|X) || p(y));
  `section_3_6`: - KL(q(y|X) || p(y)) - KL(q(y|X) || p_eps) in place of - KL(p_eps || p(y)).
"""
from __future__ import annotations

import torch

from .base import Batch, Schedule
from .bounds import entropy, kl_standard_normal, mutual_information, reparameterise, smooth_labels
from .m2 import M2, log_likelihood
from .noise import fold_in, normal, uniform


class OptimizedELBO(M2):
    name = "optimized_elbo"
    built_on = ("m2",)

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, posterior: str = "xy", label_sampling: str = "enumerate",
                 labelled_kl: str = "smoothed", **m2_options):
        super().__init__(input_shape, n_classes, hidden, latent, z_given_y=posterior == "xy", **m2_options)
        self.z_given_y, self.gumbel, self.labelled_kl = posterior == "xy", label_sampling == "gumbel", labelled_kl

    def posterior(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder(x, y) if self.z_given_y else self.encoder(x)

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        x_l, x_u, k = batch.x_labelled, batch.x_unlabelled, self.n_classes
        smoothed = smooth_labels(batch.y_labelled, k, weights["epsilon"], x_l.dtype)  # p_eps(y'|y), (B_l, K)
        kl_weight = self.kl_weight(schedule)
        log_px_l, kl_l = self.per_label(x_l, fold_in(key, 0), weights)
        logits_l = self.classifier(x_l)
        labelled = (smoothed * (log_px_l - kl_weight * kl_l)).sum(-1) - self.label_terms(smoothed, logits_l)

        logits_u = self.classifier(x_u)
        q_y = logits_u.softmax(-1)
        h_u = entropy(logits_u)
        if self.gumbel:  # one draw of y ~ q(y|X), relaxed: E_q(y)[log p(x|z,y)] estimated at it
            log_px_u, kl_u = self.at_drawn_label(x_u, logits_u, fold_in(key, 1), weights)
            recon_u, kl_z_u = log_px_u, kl_u
        else:
            log_px_u, kl_u = self.per_label(x_u, fold_in(key, 1), weights)
            recon_u, kl_z_u = (q_y * log_px_u).sum(-1), (q_y * kl_u).sum(-1)
        unlabelled = recon_u - kl_weight * kl_z_u + self.log_prior_y + h_u  # - KL(q(y|X) || p(y)) = H + log p(y)
        regularised = unlabelled + weights["gamma"] * mutual_information(logits_u) - weights["beta"] * h_u

        cross_entropy = -(smoothed * logits_l.log_softmax(-1)).sum(-1)
        loss = self.combine(-labelled + self.alpha(weights, schedule) * cross_entropy, -regularised, schedule)
        return loss, {
            "recon": -((smoothed * log_px_l).sum(-1).mean() + recon_u.mean()),
            "kl": (smoothed * kl_l).sum(-1).mean() + kl_z_u.mean(),
            "ce": cross_entropy.mean(),
        }

    def per_label(self, x: torch.Tensor, key: torch.Tensor, weights: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(log p(x|z,y), KL(q(z|.) || p(z))) for every label y, each (B, K): z from q(z|X, y) per label, or
        from q(z|X) once for every label."""
        if self.z_given_y:
            _, log_px, kl = self.every_label(x, key, weights)
            return log_px, kl
        mu, log_var = self.encoder(x)
        z = reparameterise(mu, log_var, normal(key, mu.shape))
        labels = torch.eye(self.n_classes, dtype=x.dtype, device=x.device).expand(x.shape[0], -1, -1)
        log_px = log_likelihood(self.likelihood, self.decoder(z.unsqueeze(-2).expand(*labels.shape[:-1], -1), labels), x.unsqueeze(-2),
                                weights)
        return log_px, kl_standard_normal(mu, log_var).unsqueeze(-1).expand_as(log_px)

    def at_drawn_label(self, x: torch.Tensor, logits: torch.Tensor, key: torch.Tensor, weights: dict):
        """(log p(x|z,y), KL of q(z|.)) at y = softmax((log q(y|X) + g) / tau), g ~ Gumbel(0, 1) from the key (§2.7.2)."""
        g = -torch.log(-torch.log(uniform(fold_in(key, 0), logits.shape, logits.dtype)))
        y = ((logits.log_softmax(-1) + g) / weights["temperature"]).softmax(-1)
        mu, log_var = self.encoder(x, y) if self.z_given_y else self.encoder(x)
        z = reparameterise(mu, log_var, normal(fold_in(key, 1), mu.shape))
        return log_likelihood(self.likelihood, self.decoder(z, y), x, weights), kl_standard_normal(mu, log_var)

    def label_terms(self, smoothed: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """What the labelled bound subtracts for the label, as `labelled_kl` reads the paper."""
        log_prior = self.log_prior_y
        kl_smoothed_prior = (smoothed * (smoothed.clamp_min(1e-12).log() - log_prior)).sum(-1)
        if self.labelled_kl == "smoothed":
            return kl_smoothed_prior
        q_y, log_q = logits.softmax(-1), logits.log_softmax(-1)
        kl_q_prior = (q_y * (log_q - log_prior)).sum(-1)
        if self.labelled_kl == "section_3_4":
            return kl_q_prior + kl_smoothed_prior
        return kl_q_prior + (q_y * (log_q - smoothed.clamp_min(1e-12).log())).sum(-1)
