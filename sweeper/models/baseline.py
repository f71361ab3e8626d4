"""Supervised baseline: the classifier q(y|x) trained on the labelled data alone."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .base import Batch, Model, Schedule
from .networks import Network


class Baseline(Model):
    name = "baseline"
    reads_unlabelled = False

    def __init__(self, input_shape, n_classes: int, hidden: int, network: str = "mlp"):
        super().__init__(input_shape, n_classes)
        self.classifier = Network(network, self.input_shape, hidden).classifier(n_classes)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(x)

    def forward(self, batch: Batch, weights: dict[str, torch.Tensor], schedule: Schedule, key: torch.Tensor):
        cross_entropy = F.cross_entropy(self.classifier(batch.x_labelled), batch.y_labelled)
        return cross_entropy, {"ce": cross_entropy}
