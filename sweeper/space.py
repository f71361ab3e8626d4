"""A spec → an Optuna search space (define-by-run), its sampler, and the grid's points.

The space is conditional: `model` is chosen first and only that model's hyperparameters
are suggested, so a baseline is not rerun for every alpha. Seeds are not part of the
space: one configuration trains every seed of the spec (see train.py), and the sampler
is told the mean over seeds.

A grid is not left to GridSampler, which repeats points when trials run in parallel
(optuna#2039): every point is enqueued in the study, and each ask pops exactly one.
"""
from __future__ import annotations

import itertools
from typing import Any

import optuna

from .spec import Grid, Spec


class DefineByRun:
    """What Optuna calls to build one trial's configuration (a class: Tune pickles it)."""

    def __init__(self, spec: Spec):
        self.spec = spec

    def __call__(self, trial: optuna.Trial) -> None:
        model = trial.suggest_categorical("model", list(self.spec.models))
        for name, domain in self.spec.searched(model).items():
            if isinstance(domain, Grid):
                trial.suggest_categorical(name, list(domain.values))
            elif _is_integer(model, name):
                trial.suggest_int(name, int(domain.low), int(domain.high), log=domain.log)
            else:
                trial.suggest_float(name, domain.low, domain.high, log=domain.log)


def grid_points(spec: Spec) -> list[dict[str, Any]]:
    """Every configuration of an all-grid spec: per model, the product of its grids."""
    points = []
    for model in spec.models:
        searched = spec.searched(model)
        for values in itertools.product(*(d.values for d in searched.values())):
            points.append({"model": model, **dict(zip(searched, values))})
    return points


def configuration_count(spec: Spec) -> int:
    """How many configurations the sweep trains (each once per seed)."""
    return len(grid_points(spec)) if spec.sampler == "grid" else spec.trials


def sampler(spec: Spec) -> optuna.samplers.BaseSampler:
    seed = spec.sampler_seed
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    # random; also for a grid, whose points are all enqueued and never sampled
    return optuna.samplers.RandomSampler(seed=seed)


def configuration(spec: Spec, params: dict[str, Any]) -> tuple[str, dict[str, float]]:
    """(model, every hyperparameter of it) for the params Optuna chose."""
    model = params["model"]
    hyper = spec.hyperparameters(model)
    hyper.update({name: params[name] for name in spec.searched(model)})
    return model, hyper


def _is_integer(model: str, name: str) -> bool:
    from . import models

    return models.hyperparameters(model)[name].integer


__all__ = ["configuration", "configuration_count", "DefineByRun", "grid_points", "sampler"]
