"""A spec → an Optuna search space (define-by-run), its sampler, and the grid's points.

The space is conditional: `model` is chosen first and only that model's hyperparameters
are suggested, so a baseline is not rerun for every alpha. Data settings that are lists in
the spec (dataset, label_count, batch) are axes like the hyperparameters; zipped ones are
one categorical over their pairs, which carries any hyperparameter zipped with them (a list under
`fixed`): configuration() hands its element to the models that take it. Seeds are not part of the
space: one configuration trains every seed of the spec (see train.py), and the sampler is told the
mean over seeds.

A grid is not left to GridSampler, which repeats points when trials run in parallel
(optuna#2039): every point is enqueued in the study, tagged with its index, and each ask pops
exactly one. A trial asked once the queue is empty is not a grid point: DefineByRun says so
(NotEnqueued) instead of letting the sampler make one up.
"""
from __future__ import annotations

import itertools
import json
import threading
from dataclasses import dataclass
from typing import Any

import optuna

from . import hyperparameters
from .spec import DATA_AXES, OBJECTIVES, Grid, Spec

ZIP_JOIN = "|"  # joins the values of zipped axes into one categorical value
POINT = "grid_point"  # the trial attribute that says which grid point an enqueued trial is


class NotEnqueued(Exception):
    """study.ask() found the grid's queue empty and made a new trial, which is no grid point."""

    def __init__(self, number: int):
        self.number = number


@dataclass(frozen=True)
class Configuration:
    """What one Tune trial trains, for every seed of the spec."""

    model: str
    hyper: dict[str, float | str]
    dataset: str
    label_count: int
    batch_labelled: int
    batch_unlabelled: int


def _axis_groups(spec: Spec) -> list[tuple[str, tuple]]:
    """The data axes that vary, as (Optuna parameter name, values): zipped ones as one group."""
    axes = spec.data_axes()
    groups = []
    if spec.zip:
        paired = zip(*(axes[a] for a in spec.zip))
        groups.append((ZIP_JOIN.join(spec.zip), tuple(ZIP_JOIN.join(str(v) for v in pair) for pair in paired)))
    groups += [(a, values) for a, values in axes.items() if a not in spec.zip and len(values) > 1]
    return groups


class DefineByRun:
    """What Optuna calls to build one trial's configuration (a class: Tune pickles it)."""

    def __init__(self, spec: Spec):
        self.spec = spec

    def __call__(self, trial: optuna.Trial) -> None:
        if self.spec.sampler == "grid" and POINT not in trial.user_attrs:
            raise NotEnqueued(trial.number)
        for name, values in _axis_groups(self.spec):
            trial.suggest_categorical(name, list(values))
        model = trial.suggest_categorical("model", list(self.spec.models))
        for name, domain in _options_first(model, self.spec.searched(model)).items():
            if name in _ignored(self.spec, model, trial.params):
                continue  # e.g. sigma2 once the likelihood is Bernoulli: no axis of this configuration
            if isinstance(domain, Grid):
                trial.suggest_categorical(name, list(domain.values))
            elif _is_integer(model, name):
                trial.suggest_int(name, int(domain.low), int(domain.high), log=domain.log)
            else:
                trial.suggest_float(name, domain.low, domain.high, log=domain.log)


def _options_first(model: str, searched: dict) -> dict:
    """The searched hyperparameters with the options (text choices) first: what they decide is ignored."""

    taken = hyperparameters.of(model)
    return dict(sorted(searched.items(), key=lambda item: taken[item[0]].choices is None))


def _ignored(spec: Spec, model: str, chosen: dict[str, Any]) -> set[str]:
    """What `model` ignores with the spec's fixed options and those `chosen` so far."""

    return hyperparameters.MODELS[model].ignored({**spec.fixed, **chosen})


def grid_points(spec: Spec) -> list[dict[str, Any]]:
    """Every configuration of an all-grid spec: data axes × per model, its grid as Spec.grid_blocks gives it
    (the rule Spec.grid_size counts by): a hyperparameter the model ignores at a point (sigma2 with a Bernoulli
    likelihood) is left out of it."""
    groups = _axis_groups(spec)
    points = []
    for data_values in itertools.product(*(values for _, values in groups)):
        data = dict(zip((name for name, _ in groups), data_values))
        for model in spec.models:
            order = list(spec.searched(model))  # a point's keys in the spec's order
            for options, axes in spec.grid_blocks(model):
                for values in itertools.product(*axes.values()):
                    chosen = {**options, **dict(zip(axes, values))}
                    points.append({**data, "model": model, **{k: chosen[k] for k in order if k in chosen}})
    return points


def largest_points(spec: Spec) -> list[dict[str, Any]]:
    """Per data combination and model, the point with each searched number at its largest (a range at its
    high end): the sizes that decide what a sampled search's networks may need."""
    groups = _axis_groups(spec)
    points = []
    for data_values in itertools.product(*(values for _, values in groups)):
        data = dict(zip((name for name, _ in groups), data_values))
        for model in spec.models:
            chosen = {}
            for name, domain in spec.searched(model).items():
                values = domain.values if isinstance(domain, Grid) else (domain.high,)
                numbers = [v for v in values if not isinstance(v, str)]
                chosen[name] = max(numbers) if numbers else values[0]
            points.append({**data, "model": model, **chosen})
    return points


def enqueue_grid(study: optuna.Study, spec: Spec) -> None:
    """Put every grid point in the study's queue, each tagged with its index."""
    for number, point in enumerate(grid_points(spec)):
        study.enqueue_trial(point, user_attrs={POINT: number})


def directions(spec: Spec) -> list[str]:
    """The study's direction for each of the spec's objectives."""
    return ["maximize" if OBJECTIVES[o] == "max" else "minimize" for o in spec.objectives]


def point_key(point: dict[str, Any]) -> str:
    """A configuration's search point as text, the same for equal points: what the results store."""
    return json.dumps(point, sort_keys=True)


def configuration_count(spec: Spec) -> int:
    """How many configurations the sweep trains (each once per seed)."""
    return spec.grid_size() if spec.sampler == "grid" else spec.trials


_LOCK = type(threading.Lock())  # what a lock is, to find them among a sampler's attributes


class NSGAIISampler(optuna.samplers.NSGAIISampler):
    """Optuna's NSGA-II, picklable again: Optuna 5.1 gave its genetic samplers a threading.Lock, and Ray
    Tune pickles the searcher, sampler and all, with the experiment's state. The locks stay out of the
    pickle and are made afresh when it is loaded."""

    def __getstate__(self) -> dict:
        locks = [name for name, value in vars(self).items() if isinstance(value, _LOCK)]
        return {**{k: v for k, v in vars(self).items() if k not in locks}, "_locks_left_out": locks}

    def __setstate__(self, state: dict) -> None:
        locks = state.pop("_locks_left_out")
        self.__dict__.update(state, **{name: threading.Lock() for name in locks})


def sampler(spec: Spec) -> optuna.samplers.BaseSampler:
    seed = spec.sampler_seed
    if spec.sampler == "tpe":
        return optuna.samplers.TPESampler(seed=seed, constant_liar=True)  # trials still running steer it away (packs, parallel trials)
    if spec.sampler == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed)
    if spec.sampler == "nsga2":
        return NSGAIISampler(seed=seed)
    # random; also for a grid, whose points are all enqueued and never sampled
    return optuna.samplers.RandomSampler(seed=seed)


def configuration(spec: Spec, params: dict[str, Any]) -> Configuration:
    """The configuration for the params Optuna chose (data axes not chosen take the spec's one value)."""
    data = {axis: values[0] for axis, values in spec.data_axes().items()}
    for name, _ in _axis_groups(spec):
        if name in params:
            parts = str(params[name]).split(ZIP_JOIN) if ZIP_JOIN in name else [params[name]]
            data.update(zip(name.split(ZIP_JOIN), parts))
    model = params["model"]
    hyper = spec.hyperparameters(model)
    hyper.update({name: params[name] for name in spec.searched(model) if name in params})
    hyper.update({name: _number(model, name, data[name]) for name in spec.zip if name in hyper and name not in DATA_AXES})
    labelled, unlabelled = (int(n) for n in str(data["batch"]).split(":"))
    return Configuration(model, hyper, str(data["dataset"]), int(data["label_count"]), labelled, unlabelled)


def _number(model: str, name: str, value) -> float | int:
    """A zipped hyperparameter's value, read back from its place among the zipped values (text there)."""
    number = float(value)
    return int(number) if _is_integer(model, name) else number


def _is_integer(model: str, name: str) -> bool:

    return hyperparameters.of(model)[name].integer


__all__ = ["POINT", "Configuration", "DefineByRun", "NotEnqueued", "configuration", "configuration_count", "directions", "enqueue_grid",
           "grid_points", "largest_points", "point_key", "sampler"]
