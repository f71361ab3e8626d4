"""How much compute a spec asks for, measured here: each configuration's real training step
is timed at the spec's shapes on random data, then multiplied by steps, epochs and seeds.

Evaluation (once per epoch) and Ray's per-trial overhead are left out, so the figures are a
floor for the training alone, on this machine's CPU with one thread per trial.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from . import footprint, models, packing, space, train
from .bench import costlier_stage, steps_in_an_epoch, time_stack
from .data import DATASETS
from .spec import Spec


@dataclass(frozen=True)
class Estimate:
    configuration: space.Configuration
    step_s: float  # one training step, measured
    train_s: float  # every epoch of every seed


def estimate(spec: Spec, steps: int = 3) -> list[Estimate]:
    footprint.check_memory(spec)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a trial of one CPU runs
    try:
        return _estimate(spec, steps)
    finally:
        torch.set_num_threads(threads)


def _estimate(spec: Spec, steps: int) -> list[Estimate]:
    if spec.sampler == "grid":
        points = space.grid_points(spec)
    else:  # a sampled sweep: time a few draws, count them `trials` times between them
        import optuna

        study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=spec.sampler_seed))
        points = []
        for _ in range(min(3, spec.trials)):
            trial = study.ask()
            space.DefineByRun(spec)(trial)
            points.append(trial.params)
            study.tell(trial, 0.0)
    estimates, timed = [], {}
    for point in points:
        chosen = space.configuration(spec, point)
        # configurations that would share a pack differ only in loss weights and learning rates: one step's cost,
        # timed once (a grid of 10,000 alphas is one timing, not 10,000)
        shape = (chosen.dataset, packing.pack_key(packing.plan_of(spec, chosen)))
        if shape not in timed:
            timed[shape] = _time_step(spec, chosen, steps)
        step_s = timed[shape]
        per_epoch = 1 if models.MODELS[chosen.model].fitted_by == "em" else steps_in_an_epoch(spec, chosen)
        estimates.append(Estimate(chosen, step_s, step_s * per_epoch * packing.trial_epochs(spec, chosen) * len(spec.seeds)))
    if spec.sampler != "grid":  # scale the draws up to the sampled trial count
        estimates = [Estimate(e.configuration, e.step_s, e.train_s * spec.trials / len(estimates)) for e in estimates]
    return estimates


def _time_step(spec: Spec, chosen: space.Configuration, steps: int) -> float:
    """Seconds of one training step of this configuration, one member, as a sweep steps it; for a model
    fitted by EM, one EM iteration over the whole training set."""
    info = DATASETS[chosen.dataset]
    if models.MODELS[chosen.model].fitted_by == "em":
        model = models.build(chosen.model, info.input_shape, info.n_classes, chosen.hyper)
        x = torch.rand(info.n_train, model.n_features)
        start = time.perf_counter()
        model.em_step(x[: chosen.label_count], torch.arange(chosen.label_count) % info.n_classes, x[chosen.label_count:])
        return time.perf_counter() - start
    hyper = {name: h.default for name, h in models.hyperparameters(chosen.model).items()} | chosen.hyper
    seconds, _ = time_stack(chosen.model, info.input_shape, info.n_classes, [hyper],
                            (chosen.batch_labelled, chosen.batch_unlabelled), torch.device("cpu"), steps, train.bfloat16(spec.step.bf16, "cpu"),
                            spec.step.compile is True, costlier_stage(info.n_train, chosen.label_count, spec.data.labelled_in_unlabelled,
                                                              packing.trial_epochs(spec, chosen)),
                            count_flops=False)
    return seconds
