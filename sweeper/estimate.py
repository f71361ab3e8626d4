"""How much compute a spec asks for, measured here: each configuration's real training step
is timed at the spec's shapes on random data, then multiplied by steps, epochs and seeds.

Evaluation (once per epoch) and Ray's per-trial overhead are left out, so the figures are a
floor for the training alone, on this machine's CPU with one thread per trial.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from . import models, space
from .data import DATASETS
from .models import Batch
from .models.parts import fold_in, key
from .spec import Spec
from .train import schedule, steps_per_epoch


@dataclass(frozen=True)
class Estimate:
    configuration: space.Configuration
    step_s: float  # one training step, measured
    train_s: float  # every epoch of every seed


def estimate(spec: Spec, steps: int = 3) -> list[Estimate]:
    torch.set_num_threads(1)
    if spec.sampler == "grid":
        points = space.grid_points(spec)
    else:  # a sampled sweep: time a few draws, count them `trials` times between them
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.sampler_seed))
        points = []
        for _ in range(min(3, spec.trials)):
            trial = study.ask()
            space.DefineByRun(spec)(trial)
            points.append(trial.params)
            study.tell(trial, 0.0)
    estimates = []
    for point in points:
        chosen = space.configuration(spec, point)
        step_s = _time_step(chosen, steps)
        per_epoch = 1 if hasattr(models.MODELS[chosen.model], "em_step") else steps_in_an_epoch(spec, chosen)
        estimates.append(Estimate(chosen, step_s, step_s * per_epoch * spec.epochs * len(spec.seeds)))
    if spec.sampler != "grid":  # scale the draws up to the sampled trial count
        estimates = [Estimate(e.configuration, e.step_s, e.train_s * spec.trials / len(estimates)) for e in estimates]
    return estimates


def steps_in_an_epoch(spec: Spec, chosen: space.Configuration) -> int:
    """Training steps in one epoch of this configuration on its dataset's full training split."""
    info = DATASETS[chosen.dataset]
    n_unlabelled = info.n_train if spec.data.labelled_in_unlabelled else info.n_train - chosen.label_count
    return steps_per_epoch(n_unlabelled, chosen.batch_unlabelled)


def _time_step(chosen: space.Configuration, steps: int) -> float:
    info = DATASETS[chosen.dataset]
    model = models.build(chosen.model, info.input_shape, info.n_classes, chosen.hyper)
    d = model.n_features
    batch = Batch(torch.rand(chosen.batch_labelled, d), torch.randint(0, info.n_classes, (chosen.batch_labelled,)),
                  torch.rand(chosen.batch_unlabelled, d))
    if hasattr(model, "em_step"):  # an EM iteration over the whole training set
        x = torch.rand(info.n_train, d)
        start = time.perf_counter()
        model.em_step(x[: chosen.label_count], torch.arange(chosen.label_count) % info.n_classes, x[chosen.label_count :])
        return time.perf_counter() - start
    weights = {name: torch.tensor(float(chosen.hyper[name])) for name in type(model).weights}
    n_unlabelled = info.n_train - chosen.label_count
    weights.update(schedule(0, 1, info.n_train, chosen.label_count, n_unlabelled), progress=0.99)  # the costlier stage of two
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    times = []
    for step in range(steps + 1):  # the first step warms up
        start = time.perf_counter()
        loss, _ = model(batch, weights, fold_in(key(0), step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    return min(times[1:])
