"""Raj's Optimized-ELBO: M2 with smoothed labels, an entropy penalty and mutual information.

Labelled:   L_eps(x, y) = sum_y' p_eps(y'|y) L_cond(x, y') - KL(p_eps(.|y) || p(y))
            with p_eps the label smoothed by epsilon and L_cond = L of M2 without log p(y)
            (at epsilon = 0 this is M2's L(x, y))
Unlabelled: M(x) = U(x) + gamma * I(y; x) - beta * H(q(y|x)),  I over the batch as
            H(mean q(y|x)) - mean H(q(y|x))
Objective:  sum_labelled [-L_eps + alpha CE(q(y|x), p_eps)] + sum_unlabelled [-M], weighted as M2's
            (parts.semi_supervised_loss); the batch's I(y; x) counts with the unlabelled part.
"""
from __future__ import annotations

import torch

from .base import Batch, Schedule
from .m2 import M2
from .parts import Hyper, entropy, fold_in, mutual_information, smooth_labels


class OptimizedELBO(M2):
    name = "optimized_elbo"
    built_on = ("m2",)
    summary = "Raj's Optimized-ELBO: M2 + label smoothing (epsilon), entropy penalty (beta), mutual information (gamma)"
    loss_weights = {
        **M2.loss_weights,
        "beta": Hyper(0.0, low=0.0, help="entropy penalty on q(y|x) for unlabelled data"),
        "gamma": Hyper(0.0, low=0.0, help="weight of the mutual information I(y; x)"),
        "epsilon": Hyper(0.0, low=0.0, high=0.5, help="label smoothing"),
    }

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        x_l, x_u, k = batch.x_labelled, batch.x_unlabelled, self.n_classes
        smoothed = smooth_labels(batch.y_labelled, k, weights["epsilon"], x_l.dtype)  # p_eps(y'|y), (B_l, K)
        every_label_l, log_px_l, kl_l = self.every_label(x_l, fold_in(key, 0), weights, self.kl_weight(schedule))
        label_kl = (smoothed * (smoothed.clamp_min(1e-12).log() - self.log_prior_y)).sum(-1)
        labelled = (smoothed * (every_label_l - self.log_prior_y)).sum(-1) - label_kl

        every_label_u, log_px_u, kl_u = self.every_label(x_u, fold_in(key, 1), weights, self.kl_weight(schedule))
        logits_u = self.classifier(x_u)
        q_y = logits_u.softmax(-1)
        h_u = entropy(logits_u)
        unlabelled = (q_y * every_label_u).sum(-1) + h_u
        regularised = unlabelled + weights["gamma"] * mutual_information(logits_u) - weights["beta"] * h_u

        cross_entropy = -(smoothed * self.classifier(x_l).log_softmax(-1)).sum(-1)
        loss = self.combine(-labelled + self.alpha(weights, schedule) * cross_entropy, -regularised, schedule)
        return loss, {
            "recon": -((smoothed * log_px_l).sum(-1).mean() + (q_y * log_px_u).sum(-1).mean()),
            "kl": (smoothed * kl_l).sum(-1).mean() + (q_y * kl_u).sum(-1).mean(),
            "ce": cross_entropy.mean(),
        }
