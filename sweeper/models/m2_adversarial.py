"""Adversarial M2 (Jurasiński, Appendix E): an adversary f(y | z') tries to read the label
from the encoder's z', and the encoder is trained to stop it:

    min_f max_{encoder, decoder}  J_M2 + adversary * E_q(z'|x,y)[-log f(y | z')]

played with one optimiser: z' reaches f through a gradient reversal, so f descends its
cross-entropy while the encoder ascends it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, Schedule
from .m2 import M2
from .networks import mlp, reverse_gradient


class M2Adversarial(M2):
    name = "m2_adversarial"
    built_on = ("m2",)
    loss_parts = (*M2.loss_parts, "adversary")

    def __init__(self, input_shape, n_classes: int, hidden: int, latent: int, **options):
        super().__init__(input_shape, n_classes, hidden, latent, **options)
        self.adversary = mlp([latent, hidden, n_classes])  # f(y|z')

    def forward(self, batch: Batch, weights: dict, schedule: Schedule, key: torch.Tensor):
        labelled, unlabelled, parts, bound = self.objective(batch, weights, schedule, key)
        adversary_ce = F.cross_entropy(self.adversary(reverse_gradient(bound.z)), batch.y_labelled, reduction="none")
        loss = self.combine(labelled + weights["adversary"] * adversary_ce, unlabelled, schedule)  # a labelled term
        return loss, {**parts, "adversary": adversary_ce.mean()}
