"""The model registry: every model by its name."""
from __future__ import annotations

from ..hyperparameters import OPTIMISER, Hyper
from .adgm import ADGM
from .base import Batch, Model, Schedule
from .baseline import Baseline
from .jurasinski import Jurasinski
from .jurasinski_simplified import JurasinskiSimplified
from .m1 import M1
from .m1m2 import M1M2
from .m2 import M2
from .m2_adversarial import M2Adversarial
from .optimized_elbo import OptimizedELBO
from .ssgmm import SSGMM

MODELS: dict[str, type[Model]] = {
    cls.name: cls
    for cls in (Baseline, M1, M2, M1M2, ADGM, Jurasinski, JurasinskiSimplified, OptimizedELBO, M2Adversarial, SSGMM)
}


def hyperparameters(model: str) -> dict[str, Hyper]:
    """Every hyperparameter `model` takes, with its default."""
    return MODELS[model].hyperparameters()


def build(model: str, input_shape: tuple[int, ...], n_classes: int, hyper: dict[str, float | str]) -> Model:
    """A fresh `model` for inputs of `input_shape`; sizes and options read from `hyper`."""
    cls = MODELS[model]
    settings = {}
    for name, h in cls.build_options.items():
        value = hyper.get(name, h.default)
        settings[name] = value if h.choices else int(value) if h.integer else float(value)
    return cls(tuple(input_shape), n_classes, **settings)


__all__ = ["MODELS", "OPTIMISER", "Batch", "Hyper", "Model", "Schedule", "build", "hyperparameters"]
