"""The model registry: every model by its name."""
from __future__ import annotations

from .base import OPTIMISER, Batch, Model
from .baseline import Baseline
from .m2 import M2
from .parts import Hyper

MODELS: dict[str, type[Model]] = {cls.name: cls for cls in (Baseline, M2)}


def hyperparameters(model: str) -> dict[str, Hyper]:
    """Every hyperparameter `model` takes, with its default."""
    return MODELS[model].hyperparameters()


def build(model: str, n_features: int, n_classes: int, hyper: dict[str, float]) -> Model:
    """A fresh `model` for data of this size; network sizes read from `hyper`."""
    cls = MODELS[model]
    sizes = {name: int(hyper.get(name, h.default)) for name, h in cls.shape.items()}
    return cls(n_features, n_classes, **sizes)


__all__ = ["MODELS", "OPTIMISER", "Batch", "Hyper", "Model", "build", "hyperparameters"]
